"""``bioplastic sweep SPEC.toml``: a grid of seeds x parameters, locally or on Dask."""
from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser("sweep", help="run a grid of seeds x parameters (local processes or a dask cluster)",
                       description="Run a sweep spec; finished jobs are skipped on re-run; writes "
                                   "OUT/runs/*.h5, OUT/summary.csv and OUT/summary.h5.")
    p.add_argument("spec", help="sweep spec (TOML), see docs/sweeps.md")
    p.add_argument("--out", default=None, help="output folder (default runs/<spec name>)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a running dask.distributed scheduler (e.g. tcp://host:8786)")
    p.add_argument("--workers", type=int, default=None, help="local processes (default: spec or 2)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args):
    from pathlib import Path

    from ..sweep import run_sweep

    out = Path(args.out) if args.out else Path("runs") / Path(args.spec).stem
    res = run_sweep(args.spec, out, scheduler=args.scheduler, workers=args.workers,
                    progress=not args.no_progress)
    n = len(res["rows"])
    solved = sum(r["status"] == "converged" for r in res["rows"])
    print(f"{n} jobs on {res['backend']} in {res['wall_seconds']:.1f} s; {solved} reached criterion")
    print(f"summary: {out / 'summary.csv'}")
    return 0
