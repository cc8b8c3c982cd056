"""``bioplastic analyze RUN.h5``: fixed points, GR events, abrupt learning, slow dynamics, figures."""
from __future__ import annotations

from pathlib import Path

from .. import config as global_config
from ..errors import ConfigError


def add_parser(sub):
    p = sub.add_parser(
        "analyze", help="geometry of a training run: fixed points, GR events, plateau/drop, figures",
        description="Analyse a run file (SPEC 5): fixed and slow points at every checkpoint, GR events, "
                    "the search-phase plateau and drop of the loss, slow dynamics. Writes RUN.analysis.h5 "
                    "next to the run file (the run file is not modified) and PNG figures.")
    p.add_argument("run_file", metavar="RUN.h5", help="run file written by `bioplastic train` or a protocol")
    p.add_argument("--out", default=None, help="folder for the figures (default: the run file's folder)")
    p.add_argument("--analysis-file", default=None, help="where to write the analysis (default: RUN.analysis.h5)")
    p.add_argument("--n-init", type=int, default=256, help="initial states of the fixed-point search (default 256)")
    p.add_argument("--seed", type=int, default=0, help="seed of the analysis trials and initial states")
    p.add_argument("--epoch", default=None, help="task epoch for slow dynamics (default: delay, else hold)")
    p.add_argument("--inputs", choices=("zero", "epoch_mean"), default="zero",
                   help="constant input at which fixed points are sought (default zero)")
    p.add_argument("--no-figures", action="store_true", help="write only the analysis file")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar (stderr)")
    p.set_defaults(func=run)


def run(args):
    from ..analysis import analyze_run, make_figures, write_analysis

    from ..preflight import check_output_file

    if args.n_init < 1:
        raise ConfigError(f"--n-init must be >= 1, got {args.n_init}")
    # outputs checked before a minute of work, and never onto the run file itself
    if args.analysis_file is not None:
        check_output_file(args.analysis_file, inputs=(args.run_file,), what="--analysis-file")
    if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
        raise ConfigError(f"cannot create figure folder {str(args.out)!r}: it is a file")
    # a minute of work: show it as training does (on unless --no-progress or the "progress" switch is off)
    progress = not args.no_progress and bool(global_config.get("progress"))
    result = analyze_run(args.run_file, n_init=args.n_init, seed=args.seed, epoch=args.epoch, inputs=args.inputs,
                         progress=progress)
    path = write_analysis(result, args.analysis_file)
    gr, ab = result.gr, result.abrupt
    print(f"{result.settings['model']} on {result.settings['task']} (seed {result.seed}): "
          f"{len(gr.iterations)} checkpoints, stable fixed points {gr.n_stable[0]} -> {gr.n_stable[-1]}")
    print(f"GR events at iterations: {gr.events.tolist() or 'none'}")
    if ab.detected:
        print(f"plateau {ab.plateau_start:.0f}-{ab.plateau_end:.0f}, drop at {ab.drop_iteration:.0f} "
              f"({ab.drop_size:.2f} decades); GR lead time: {result.lead['lead']}")
    else:
        print(f"no abrupt drop: {ab.reason}")
    print(f"analysis file: {path}")
    if not args.no_figures:
        out = Path(args.out) if args.out else Path(args.run_file).parent
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create figure folder {str(out)!r}: {exc}") from exc
        stem = Path(args.run_file).stem
        for f in make_figures(result, out, prefix=f"{stem}_", progress=progress):
            print(f"figure: {f}")
    return 0
