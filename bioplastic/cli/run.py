"""``bioplastic run PROTOCOL``: run a protocol script into an output folder."""
from __future__ import annotations


def add_parser(sub):
    p = sub.add_parser("run", help="run a protocol (name in protocols/ or a path)",
                       description="Run a protocol and write HDF5 runs, figures, predictions.json and report.md.")
    p.add_argument("protocol", help="protocol name (see `bioplastic list protocols`) or path to a .py")
    p.add_argument("--quick", action="store_true", help="small version that finishes in minutes")
    p.add_argument("--out", default=None, help="output folder (default runs/PROTOCOL)")
    p.add_argument("--seeds", type=int, default=None, help="number of seeds (default: the protocol's)")
    p.add_argument("--workers", type=int, default=None, help="local worker processes (default 2, one per core)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the protocol's jobs on this Dask scheduler (e.g. tcp://host:8786) instead")
    p.set_defaults(func=run)


def run(args):
    from ..protocol import run_protocol

    run_protocol(args.protocol, args.out, quick=args.quick, seeds=args.seeds, workers=args.workers,
                 scheduler=args.scheduler)
    return 0
