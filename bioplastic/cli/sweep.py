"""``bioplastic sweep SPEC.toml``: a grid of seeds x parameters, locally or on Dask."""
from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser("sweep", help="run a grid of seeds x parameters (local processes or a dask cluster)",
                       description="Run a sweep spec; finished jobs whose settings are unchanged are reused "
                                   "on re-run, jobs whose settings changed are trained again (their old run "
                                   "files moved aside); writes OUT/runs/*.h5, OUT/summary.csv and "
                                   "OUT/summary.h5.")
    p.add_argument("spec", help="sweep spec (TOML) or its name in protocols/sweeps/, see docs/sweeps.md")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE", dest="overrides",
                   help="override a key of the sweep's spec (repeatable), e.g. model.n_units=16, sweep.seeds=2, "
                        "training.iterations=100, rule.tcr_stp.eta_s=0.05; grid keys still win per job")
    p.add_argument("--out", default=None, help="output folder (default runs/<spec name>)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="address of a running dask.distributed scheduler (e.g. tcp://host:8786)")
    p.add_argument("--workers", type=int, default=None, help="local processes (default: spec or 2)")
    p.add_argument("--refuse-stale", action="store_true",
                   help="stop before running anything if a run file was made with other settings than its "
                        "job's (default: move it aside as <name>.stale-<hash>.h5 and train the job again)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args):
    """Run the sweep of ``args`` (see :func:`add_parser`); returns the exit code."""
    import sys
    from pathlib import Path

    from ..sweep import run_sweep

    out = Path(args.out) if args.out else Path("runs") / Path(args.spec).stem
    if args.workers is not None and args.workers < 1:
        from ..errors import ConfigError

        raise ConfigError(f"--workers must be a positive integer, got {args.workers}")
    if args.scheduler is not None:
        from ..backends import check_scheduler_address

        check_scheduler_address(args.scheduler)
    res = run_sweep(args.spec, out, scheduler=args.scheduler, workers=args.workers,
                    progress=not args.no_progress, refuse_stale=args.refuse_stale,
                    log=lambda message: print(message, file=sys.stderr, flush=True), overrides=args.overrides)
    n = len(res["rows"])
    solved = sum(r["status"] == "converged" for r in res["rows"])
    rerun = f" ({len(res['changed'])} because their settings changed)" if res["changed"] else ""
    print(f"{n} jobs on {res['backend']} in {res['wall_seconds']:.1f} s: {len(res['reused'])} of {n} reused, "
          f"{len(res['trained'])} trained{rerun}; {solved} reached criterion")
    print(f"summary: {out / 'summary.csv'}")
    return 0
