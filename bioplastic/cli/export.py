"""``bioplastic export FORMAT ...``: export a trained run to another simulator or format.

Each format is a sub-command registered in :data:`FORMATS` as
``name -> (add_arguments(parser), run(args))``; a new format (say ``nwb``)
adds one entry and its two functions.

``bioplastic export brian2 RUN.h5 --mode rate|spiking --out DIR [--run] [--force]``
writes ``DIR/brian2_<mode>.py`` and ``DIR/weights.npz`` (a standalone Brian2
script and its weights); with ``--run`` it runs the script in a fresh
isolated Python process (``python -I``) and writes ``DIR/comparison.png``
(rate network vs Brian2 traces) and ``DIR/agreement.json``.
"""
from __future__ import annotations

import json

from ..errors import ConfigError


def add_brian2_arguments(p):
    from ..export.brian2_spiking import SPIKING_DEFAULTS as D

    p.add_argument("run_file", metavar="RUN.h5", help="trained bioplastic run file")
    p.add_argument("--mode", choices=("rate", "spiking"), default="rate",
                   help="rate: the same equations (reproduces the trajectory); spiking: Poisson populations")
    p.add_argument("--out", required=True, help="output folder (must be new or empty unless --force)")
    p.add_argument("--run", action="store_true",
                   help="run the script now and write comparison.png and agreement.json")
    p.add_argument("--force", action="store_true", help="write into an existing non-empty folder")
    p.add_argument("--trials", type=int, default=8, help="task trials stored with the weights (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of those trials (default 0)")
    p.add_argument("--time-unit-ms", type=float, default=10.0,
                   help="ms per time unit of the rate network (default 10: dt=1 -> 10 ms, tau=10 -> 100 ms)")
    p.add_argument("--codegen", choices=("numpy", "cython"), default="numpy",
                   help="brian2 runtime code generation target (default numpy: no compiler needed)")
    g = p.add_argument_group("spiking mode")
    g.add_argument("--n-per-pop", type=int, default=D["n_per_pop"], help=f"neurons per unit (default {D['n_per_pop']})")
    g.add_argument("--nu-max", type=float, default=D["nu_max"], help=f"max rate, Hz (default {D['nu_max']:g})")
    g.add_argument("--tau-syn", type=float, default=D["tau_syn"], help=f"synaptic filter, ms (default {D['tau_syn']:g})")
    g.add_argument("--tau-out", type=float, default=D["tau_out"], help=f"readout filter, ms (default {D['tau_out']:g})")
    g.add_argument("--dt-spike", type=float, default=D["dt_spike"], help=f"spiking step, ms (default {D['dt_spike']:g})")
    g.add_argument("--spike-seed", type=int, default=D["seed"], help="brian2 seed of the spikes (default 0)")


def run_brian2(args):
    """Write a standalone Brian2 script and weights file for a trained run (rate or spiking mode);
    with --run, run it in a fresh Python process and compare it with the rate network."""
    from ..export import brian2 as b2x

    spiking = {}
    if args.mode == "spiking":
        spiking = {"n_per_pop": args.n_per_pop, "nu_max": args.nu_max, "tau_syn": args.tau_syn,
                   "tau_out": args.tau_out, "dt_spike": args.dt_spike, "seed": args.spike_seed}
    if args.trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {args.trials}")
    try:
        exp = b2x.write_export(args.run_file, args.out, mode=args.mode, force=args.force, trials=args.trials,
                               trial_seed=args.seed, time_unit=args.time_unit_ms * 1e-3, codegen=args.codegen,
                               spiking=spiking)
    except ValueError as exc:  # option checks of the brian2-only modules
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(str(exc)) from exc
    paths = exp["paths"]
    print(f"wrote {paths['script']}")
    print(f"wrote {paths['weights']}")
    if args.run:
        summary = b2x.run_script_and_compare(exp)
        print(json.dumps(summary, indent=2))
        print(f"wrote {paths['script'].parent / 'comparison.png'}")
        print(f"wrote {paths['script'].parent / 'agreement.json'}")
    return 0


def add_nwb_arguments(p):
    p.add_argument("run_file", metavar="RUN.h5", help="run file with recordings (train with record=...)")
    p.add_argument("out", metavar="OUT.nwb", help="NWB file to write")
    p.add_argument("--checkpoint", type=int, default=None, help="training iteration to export (default: last)")
    p.add_argument("--time-unit-ms", type=float, default=10.0,
                   help="ms per time unit of the network's tau and dt (default 10, as for brian2)")
    p.add_argument("--force", action="store_true", help="replace OUT.nwb if it exists")


def run_nwb(args):
    """Write the recorded activity of a run (rates, states, outputs, inputs, targets) as NWB time
    series, with the task's trial table as NWB trials and its epochs as NWB epochs."""
    from ..export.nwb import export_nwb

    out = export_nwb(args.run_file, args.out, checkpoint=args.checkpoint, time_unit=args.time_unit_ms * 1e-3,
                     overwrite=args.force)
    print(f"wrote {out}")
    return 0


#: export formats: name -> (add_arguments, run)
FORMATS = {"brian2": (add_brian2_arguments, run_brian2), "nwb": (add_nwb_arguments, run_nwb)}


def add_parser(sub):
    p = sub.add_parser("export", help="export a trained run (formats: " + ", ".join(FORMATS) + ")",
                       description="Export a trained run file to another simulator or format.")
    formats = p.add_subparsers(dest="format", metavar="FORMAT")
    formats.required = True
    for name, (add_arguments, run) in FORMATS.items():
        fp = formats.add_parser(name, help=f"export to {name}", description=(run.__doc__ or "").strip() or None)
        add_arguments(fp)
        fp.set_defaults(func=run)


def run(args):
    return args.func(args)
