"""``bioplastic run PROTOCOL``: run a protocol script into an output folder."""
from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser("run", help="run a protocol (name in protocols/ or a path)",
                       description="Run a protocol and write HDF5 runs, figures, predictions.json and report.md.")
    p.add_argument("protocol", help="protocol name (see `bioplastic list protocols`) or path to a .py")
    p.add_argument("--quick", action="store_true", help="small version that finishes in minutes")
    p.add_argument("--out", default=None, help="output folder (default runs/PROTOCOL)")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the protocol's)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="change one of the protocol's settings (repeatable), e.g. seeds=3, budgets.flipflop=500, "
                        "tasks=flipflop,delayed_addition; unknown keys are refused naming the closest one; "
                        "see --show-settings and docs/specs.md")
    p.add_argument("--show-settings", action="store_true",
                   help="print the settings the protocol would run with (after --quick, --set and --seeds) "
                        "as JSON, and exit")
    p.add_argument("--workers", type=int, default=None, help="local worker processes (default 2, one per core)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the protocol's jobs on this Dask scheduler (e.g. tcp://host:8786) instead")
    p.set_defaults(func=run)


def run(args):
    """Run (or, with ``--show-settings``, describe) the protocol of ``args``; returns the exit code."""
    from ..errors import ConfigError
    from ..protocol import load_protocol, override_settings, run_protocol

    # counts checked here, before the protocol makes its output folder
    if args.seeds is not None and args.seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {args.seeds}")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be a positive integer, got {args.workers}")
    if args.scheduler is not None:
        from ..backends import check_scheduler_address

        check_scheduler_address(args.scheduler)
    if args.show_settings:
        import json

        settings = override_settings(load_protocol(args.protocol), args.overrides, quick=args.quick)
        if args.seeds is not None:
            settings["seeds"] = int(args.seeds)
        print(json.dumps(settings, indent=2, default=str))
        return 0
    run_protocol(args.protocol, args.out, quick=args.quick, seeds=args.seeds, workers=args.workers,
                 scheduler=args.scheduler, overrides=args.overrides)
    return 0
