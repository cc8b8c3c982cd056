"""``bioplastic export FORMAT ...``: export a trained run to another simulator or format.

Each format is a sub-command registered in :data:`FORMATS` as
``name -> (add_arguments(parser), run(args))``; a new format (say ``nwb``)
adds one entry and its two functions.

``bioplastic export brian2 RUN.h5 --mode rate|spiking|lif --out DIR [--run] [--force]``
writes ``DIR/brian2_<mode>.py`` and ``DIR/weights.npz`` (a standalone Brian2
script and its weights); with ``--run`` it runs the script in a fresh
isolated Python process (``python -I``) and writes ``DIR/comparison.png``
(rate network vs Brian2 traces) and ``DIR/agreement.json``.

``bioplastic export nwb RUN.h5 OUT.nwb [--checkpoints all|last|ITER,ITER] [--experimenter 'LAST, FIRST']
[--institution ...] [--lab ...] [--keywords A,B] [--session-description ...]`` writes every recorded
checkpoint (or those chosen) to one NWB file ready to share (docs/nwb.md).
"""
from __future__ import annotations

import json

from ..errors import ConfigError


def add_brian2_arguments(p):
    from ..export.brian2_lif import LIF_DEFAULTS as L
    from ..export.brian2_spiking import SPIKING_DEFAULTS as D
    from ..export.lif_transfer import LAMBDA_GRID

    p.add_argument("run_file", metavar="RUN.h5", help="trained bioplastic run file")
    p.add_argument("--mode", choices=("rate", "spiking", "lif"), default="rate",
                   help="rate: the same equations (reproduces the trajectory); spiking: Poisson populations "
                        "driven by the rate units; lif: a network of LIF neurons doing the task itself")
    p.add_argument("--out", required=True, help="output folder (must be new or empty unless --force)")
    p.add_argument("--run", action="store_true",
                   help="run the script now and write comparison.png and agreement.json")
    p.add_argument("--force", action="store_true", help="write into an existing non-empty folder")
    p.add_argument("--trials", type=int, default=8, help="task trials stored with the weights (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of those trials (default 0)")
    p.add_argument("--time-unit-ms", type=float, default=10.0,
                   help="ms per time unit of the rate network (default 10: dt=1 -> 10 ms, tau=10 -> 100 ms)")
    p.add_argument("--codegen", choices=("auto", "numpy", "cython"), default="auto",
                   help="brian2 runtime code generation target (default auto: cython when a C compiler "
                        "works, else numpy with a message)")
    g = p.add_argument_group("spiking mode")
    g.add_argument("--n-per-pop", type=int, default=D["n_per_pop"], help=f"neurons per unit (default {D['n_per_pop']})")
    g.add_argument("--nu-max", type=float, default=D["nu_max"], help=f"max rate, Hz (default {D['nu_max']:g})")
    g.add_argument("--tau-syn", type=float, default=D["tau_syn"], help=f"synaptic filter, ms (default {D['tau_syn']:g})")
    g.add_argument("--tau-out", type=float, default=D["tau_out"], help=f"readout filter, ms (default {D['tau_out']:g})")
    g.add_argument("--dt-spike", type=float, default=None,
                   help=f"spiking step, ms (default {D['dt_spike']:g}; lif mode {L['dt_spike']:g})")
    g.add_argument("--spike-seed", type=int, default=D["seed"], help="brian2 seed of the spikes (default 0)")
    g = p.add_argument_group("lif mode (docs/brian2.md; --spike-seed and --dt-spike also apply)")
    g.add_argument("--n-per-unit", type=int, default=L["n_per_unit"],
                   help=f"LIF neurons per rate unit, weights divided among them (default {L['n_per_unit']})")
    g.add_argument("--lam", type=float, default=None,
                   help="rate (Hz) standing for the top of phi's range, the rate-to-spike weight scaling "
                        "(default: searched on held-out trials)")
    g.add_argument("--lam-grid", default=",".join(f"{v:g}" for v in LAMBDA_GRID), metavar="HZ,HZ,...",
                   help="lambda values searched (default %(default)s)")
    g.add_argument("--search-trials", type=int, default=16, help="held-out trials of the search (default 16)")
    g.add_argument("--tau-mem", type=float, default=L["tau_mem"], help=f"membrane time constant, ms (default {L['tau_mem']:g})")
    g.add_argument("--t-ref", type=float, default=L["t_ref"], help=f"refractory period, ms (default {L['t_ref']:g})")
    g.add_argument("--membrane-noise", type=float, default=L["membrane_noise"],
                   help=f"membrane noise std, in units of the threshold (default {L['membrane_noise']:g})")
    g.add_argument("--lif-tau-out", type=float, default=L["tau_out"],
                   help=f"readout filter of the spike trains, ms (default {L['tau_out']:g})")


def run_brian2(args):
    """Write a standalone Brian2 script and weights file for a trained run (rate, spiking or LIF mode);
    with --run, run it in a fresh Python process and compare it with the rate network."""
    import sys

    from ..export import brian2 as b2x
    from ..export.brian2_lif import LIF_DEFAULTS as L
    from ..export.brian2_spiking import SPIKING_DEFAULTS as D

    spiking, lif, grid = {}, {}, None
    if args.mode == "spiking":
        spiking = {"n_per_pop": args.n_per_pop, "nu_max": args.nu_max, "tau_syn": args.tau_syn,
                   "tau_out": args.tau_out, "dt_spike": args.dt_spike or D["dt_spike"], "seed": args.spike_seed}
    if args.mode == "lif":
        lif = {"n_per_unit": args.n_per_unit, "lam": args.lam, "tau_mem": args.tau_mem, "t_ref": args.t_ref,
               "membrane_noise": args.membrane_noise, "tau_out": args.lif_tau_out, "seed": args.spike_seed,
               "dt_spike": args.dt_spike or L["dt_spike"]}
        try:
            grid = [float(v) for v in args.lam_grid.split(",")]
        except ValueError:
            raise ConfigError(f"--lam-grid must be comma-separated rates in Hz, got {args.lam_grid!r}") from None
    if args.trials < 1:
        raise ConfigError(f"--trials must be >= 1, got {args.trials}")
    try:
        exp = b2x.write_export(args.run_file, args.out, mode=args.mode, force=args.force, trials=args.trials,
                               trial_seed=args.seed, time_unit=args.time_unit_ms * 1e-3, codegen=args.codegen,
                               spiking=spiking, lif=lif, lam_grid=grid, search_trials=args.search_trials,
                               progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    except ValueError as exc:  # option checks of the brian2-only modules
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(str(exc)) from exc
    paths = exp["paths"]
    print(f"wrote {paths['script']}")
    print(f"wrote {paths['weights']}")
    if args.mode == "lif":
        o = exp["settings"]["lif"]
        print(f"lambda = {o['lam']:g} Hz (mu0 = {o['mu0']:.3f}, gain = {o['gain']:.3f})")
    if args.run:
        summary = b2x.run_script_and_compare(exp)
        print(json.dumps(summary, indent=2))
        print(f"wrote {paths['script'].parent / 'comparison.png'}")
        print(f"wrote {paths['script'].parent / 'agreement.json'}")
    return 0


def add_nwb_arguments(p):
    p.add_argument("run_file", metavar="RUN.h5", help="run file with recordings (train with record=...)")
    p.add_argument("out", metavar="OUT.nwb", help="NWB file to write")
    p.add_argument("--checkpoints", default="all", metavar="all|last|ITER,ITER",
                   help="recorded iterations to include (default all, in one file)")
    p.add_argument("--time-unit-ms", type=float, default=10.0,
                   help="ms per time unit of the network's tau and dt (default 10, as for brian2)")
    p.add_argument("--force", action="store_true", help="replace OUT.nwb if it exists")
    g = p.add_argument_group("metadata (also the keys of an [nwb] spec table)")
    g.add_argument("--experimenter", action="append", metavar="'LAST, FIRST'",
                   help="who ran the simulation (repeat for several)")
    g.add_argument("--institution", help="institution where the simulation was run")
    g.add_argument("--lab", help="lab where the simulation was run")
    g.add_argument("--keywords", metavar="A,B,...",
                   help="comma-separated keywords (default: simulation, model, task, rule)")
    g.add_argument("--session-description", help="one-line description (default: network, task, trials, checkpoints)")
    g.add_argument("--experiment-description", help="description of the experiment (default: model, task, rule, seed)")
    g.add_argument("--species",
                   help="Latin binomial or NCBI Taxonomy IRI (default: NCBITaxon_32630, synthetic construct)")


def run_nwb(args):
    """Write the recordings of a run, every checkpoint (or those chosen) in one NWB file: activity per
    checkpoint in acquisition, inputs and targets in stimulus, trials with their conditions (seconds),
    task epochs, sharing metadata and provenance (docs/nwb.md)."""
    from ..export.nwb import export_nwb, nwb_metadata_from_spec

    if not args.time_unit_ms > 0:
        raise ConfigError(f"--time-unit-ms must be > 0, got {args.time_unit_ms}")
    meta = nwb_metadata_from_spec({k: v for k, v in {
        "checkpoints": args.checkpoints, "experimenter": args.experimenter, "institution": args.institution,
        "lab": args.lab, "keywords": args.keywords, "session_description": args.session_description,
        "experiment_description": args.experiment_description, "species": args.species}.items() if v is not None})
    out = export_nwb(args.run_file, args.out, time_unit=args.time_unit_ms * 1e-3, overwrite=args.force, **meta)
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
