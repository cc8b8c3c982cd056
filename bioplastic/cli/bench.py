"""``bioplastic bench``: time forward and BPTT against PyTorch (SPEC 10).

Prints the machine, library versions and a table of median times; with
``--json FILE`` also writes the records. See :mod:`bioplastic.bench`;
``python -m bioplastic.bench`` is the same command.
"""
from __future__ import annotations

import sys

HELP = "time LFRNN forward and BPTT against a PyTorch peer"


def configure_parser(parser):
    """Add the bench options to an argparse parser."""
    parser.add_argument("--json", metavar="FILE", default=None,
                        help="also write the records as a JSON list to FILE (atomically)")
    parser.add_argument("--repeats", metavar="R", type=int, default=None,
                        help="timed repeats per case (default: 20 for small cases, fewer for big ones)")
    parser.add_argument("--quick", action="store_true",
                        help="a tiny run (small cases, 3 repeats) to check that everything works")
    parser.add_argument("--rules", action="store_true",
                        help="also time one update of the local rules (what = eprop, node_perturbation) "
                             "against a forward pass, and e-prop's peak memory at two T")
    parser.add_argument("--models", action="store_true",
                        help="also time forward and loss-and-gradients of every model kind (lfrnn, rank1, "
                             "plrnn, lstm) at N=100 B=32 T=100 float64, against the LFRNN")
    parser.add_argument("--checkpoints", action="store_true",
                        help="instead, time the run-file writes: 400 training iterations (lfrnn on flipflop) "
                             "with a checkpoint every iteration against every 100, and every iteration with "
                             "the file written at each one (min_write_interval 0), median of 3 repeats "
                             "(--repeats); --quick: 40 iterations, every 1 against every 10")
    return parser


def add_parser(subparsers):
    """Register ``bench`` on the CLI's subparsers; returns the parser."""
    parser = subparsers.add_parser("bench", help=HELP, description=HELP + " (medians, in ms).")
    configure_parser(parser)
    parser.set_defaults(func=run)
    return parser


def run(args) -> int:
    """Run the benchmark, print header and table, write JSON if asked."""
    from ..bench import cpu_snapshot, format_header, format_table, machine_info, run_benchmark
    from ..errors import ConfigError

    if args.repeats is not None and args.repeats < 1:
        raise ConfigError(f"--repeats must be >= 1, got {args.repeats}")
    _check_json(args)
    info = machine_info()
    print(format_header(info), flush=True)
    if getattr(args, "checkpoints", False):
        return run_checkpoints(args)
    if info["torch"] is None:
        print("torch is not installed: only bioplastic is timed (pip install torch for ratios)")
    before = cpu_snapshot()
    records = run_benchmark(repeats=args.repeats, quick=args.quick,
                            log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print()
    print(format_table(records))
    print("times are medians in ms; ratio = torch_ms / bioplastic_ms (the careful torch loop);\n"
          "ratio_module = torch_module_ms / bioplastic_ms (the same network as an idiomatic nn.Module)")
    _print_load(before)
    if args.rules:
        from ..bench import eprop_memory, format_rule_table, run_rule_benchmark

        rule_records = run_rule_benchmark(repeats=args.repeats, quick=args.quick,
                                          log=lambda msg: print(msg, file=sys.stderr, flush=True))
        memory = eprop_memory(n_steps=(20, 200) if args.quick else (100, 1000))
        print()
        print(format_rule_table(rule_records, memory))
        records = records + rule_records
    if args.models:
        from ..bench import format_model_table, run_model_benchmark

        model_records = run_model_benchmark(repeats=args.repeats, quick=args.quick)
        print()
        print(format_model_table(model_records))
        records = records + model_records
    _save(records, args.json)
    return 0


def _check_json(args) -> None:
    """``--json`` must be writable before minutes of benchmarking, not after."""
    if args.json:
        from ..preflight import check_output_file

        check_output_file(args.json, what="--json file")


def run_checkpoints(args) -> int:
    """``bioplastic bench --checkpoints``: the cost of writing the run file at every checkpoint."""
    from ..bench import cpu_snapshot, format_checkpoint_table, run_checkpoint_benchmark

    before = cpu_snapshot()
    records = run_checkpoint_benchmark(repeats=args.repeats or 3, quick=args.quick,
                                       log=lambda msg: print(msg, file=sys.stderr, flush=True))
    print()
    print(format_checkpoint_table(records))
    print("x sparsest = median time over that of the run with the fewest checkpoints: what writing the run "
          "file costs;\nwrite interval = min_write_interval (bioplastic.config): checkpoints taken faster are "
          "written together; 0: the file is written at every checkpoint")
    _print_load(before)
    _save(records, args.json, every_key=True)
    return 0


def _print_load(before) -> None:
    """Say how much of the CPUs other processes took since ``before`` (a :func:`cpu_snapshot`)."""
    from ..bench import cpu_snapshot, other_load

    load = other_load(before, cpu_snapshot())
    if load is not None:
        print(f"other processes used {100 * load:.0f}% of the CPUs during the run"
              + (" -- timings are unreliable, re-run on an idle machine" if load > 0.1 else ""))


def _save(records, path, every_key=False) -> None:
    """Write the records as JSON to ``path`` (atomically), if a path was given; the peer suite's
    records keep :data:`~bioplastic.bench.RECORD_KEYS`, the others (``every_key``) all theirs."""
    if path:
        from ..bench import RECORD_KEYS, write_json

        write_json(records, path, keys=None if every_key else RECORD_KEYS)
        print(f"wrote {path}")
