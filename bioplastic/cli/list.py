"""``bioplastic list``: what is registered or shipped."""
from __future__ import annotations

WHAT = ("tasks", "models", "specs", "protocols")


def add_parser(sub):
    p = sub.add_parser("list", help="list tasks, model kinds, model specs or protocols",
                       description="List what is available. A task or model from a plugin package (registered "
                                   "through the bioplastic.tasks / bioplastic.models entry points) is "
                                   "followed by that package's name and version.")
    p.add_argument("what", choices=WHAT)
    p.set_defaults(func=run)


def _with_sources(registry) -> list[str]:
    """One name per line; a plugin's name followed by its package and version
    (plugins are discovered here)."""
    names = registry.names()
    width = max((len(n) for n in names), default=0)
    sources = {n: registry.sources.get(n, "?") for n in names}
    return [f"{n:<{width}}  {'' if sources[n] == 'bioplastic' else sources[n]}".rstrip() for n in names]


def run(args):
    if args.what == "tasks":
        from ..tasks import TASKS

        lines = _with_sources(TASKS)
    elif args.what == "models":
        from ..networks import MODELS

        lines = _with_sources(MODELS)
    else:
        from ..io.specs import search_dirs

        folder, suffix = ("models", ".toml") if args.what == "specs" else ("protocols", ".py")
        lines = sorted({f.stem for d in search_dirs(folder) for f in d.glob(f"*{suffix}")
                        if not f.stem.startswith("_")})
    print("\n".join(lines))
    return 0
