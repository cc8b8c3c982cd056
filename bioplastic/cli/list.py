"""``bioplastic list``: what is registered or shipped."""
from __future__ import annotations

WHAT = ("tasks", "models", "specs", "protocols")


def add_parser(sub):
    p = sub.add_parser("list", help="list tasks, model kinds, model specs or protocols")
    p.add_argument("what", choices=WHAT)
    p.set_defaults(func=run)


def run(args):
    if args.what == "tasks":
        from ..tasks import list_tasks

        names = list_tasks()
    elif args.what == "models":
        from ..networks import list_models

        names = list_models()
    else:
        from ..io.specs import search_dirs

        folder, suffix = ("models", ".toml") if args.what == "specs" else ("protocols", ".py")
        names = sorted({f.stem for d in search_dirs(folder) for f in d.glob(f"*{suffix}")
                        if not f.stem.startswith("_")})
    print("\n".join(names))
    return 0
