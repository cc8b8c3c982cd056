"""``bioplastic compare MODEL DATA``: model activity vs recorded activity, by trial condition.

MODEL is a run file with recordings or an NWB file (one bioplastic wrote,
or any session with a trials table); DATA is an NWB file (or a run file).
Both are read with :func:`bioplastic.io.nwb_read.read_activity`, matched by
trial condition and compared with
:func:`bioplastic.compare.compare_conditions`, which prints the Procrustes
distance and mean CCA of the condition-averaged activity next to the data's
split-half noise ceiling.
"""
from __future__ import annotations

import json

from ..errors import ConfigError


def add_parser(sub):
    p = sub.add_parser("compare", help="compare model activity with an NWB recording, by trial condition",
                       description="Compare model activity (a run file with recordings, or an NWB file) with "
                                   "recorded activity (an NWB file with a trials table) by trial condition: "
                                   "Procrustes distance and mean CCA of the condition-averaged activity, each "
                                   "beside the data's split-half noise ceiling (docs/nwb.md).")
    p.add_argument("model", metavar="MODEL", help="run file with recordings (RUN.h5) or NWB file")
    p.add_argument("data", metavar="DATA.nwb", help="NWB file with a trials table (or a run file)")
    p.add_argument("--series", default="rates", help="model series (default rates)")
    p.add_argument("--data-series", default=None,
                   help="data series: a TimeSeries name or path, or 'units' to bin spike times (default: --series)")
    p.add_argument("--checkpoint", type=int, default=None, help="model training iteration (default: last)")
    p.add_argument("--by", default="condition", metavar="COL,COL",
                   help="trial-table columns that define a condition, on both sides (default condition)")
    p.add_argument("--window", default=None, metavar="T0,T1",
                   help="seconds from each data trial's start to compare (default: shortest trial)")
    p.add_argument("--bin-width", type=float, default=0.01, help="spike-count bin, s (--data-series units)")
    p.add_argument("--time-unit-ms", type=float, default=10.0, help="ms per model time unit of a run file")
    p.add_argument("--n-components", type=int, default=3, help="principal components compared (default 3)")
    p.add_argument("--splits", type=int, default=20, help="random split halves of the noise ceiling (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the splits (default 0)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.set_defaults(func=run)


def run(args):
    from ..compare import compare_conditions
    from ..io.nwb_read import read_activity

    if args.splits < 1:
        raise ConfigError(f"--splits must be >= 1, got {args.splits}")
    window = None
    if args.window is not None:
        try:
            window = tuple(float(v) for v in args.window.split(","))
        except ValueError:
            raise ConfigError(f"--window must be T0,T1 in seconds, got {args.window!r}") from None
        if len(window) != 2 or not window[0] < window[1]:
            raise ConfigError(f"--window must be two times T0,T1 in seconds with T0 < T1, got {args.window!r}")
    if not args.time_unit_ms > 0:
        raise ConfigError(f"--time-unit-ms must be > 0, got {args.time_unit_ms}")
    by = [c.strip() for c in args.by.split(",") if c.strip()]
    model = read_activity(args.model, args.series, checkpoint=args.checkpoint, time_unit=args.time_unit_ms * 1e-3)
    data = read_activity(args.data, args.data_series or args.series, window=window, bin_width=args.bin_width,
                         time_unit=args.time_unit_ms * 1e-3)
    res = compare_conditions(model.activity, model.trials, data.activity, data.trials,
                             by=by[0] if len(by) == 1 else by, n_components=args.n_components,
                             n_splits=args.splits, seed=args.seed)
    if args.json:
        print(json.dumps(res, indent=2))
        return 0
    c = res["ceiling"]
    at = f" at iteration {model.checkpoint}" if model.checkpoint is not None else ""
    print(f"model: {args.model} ({model.series}{at}); data: {args.data} ({data.series}, {data.source})")
    print(f"{res['n_conditions']} conditions matched by {args.by} (model trials per condition "
          f"{min(res['model_trials'])}-{max(res['model_trials'])}, data {min(res['data_trials'])}-"
          f"{max(res['data_trials'])}; unmatched: {res['unmatched']['model_only']} model, "
          f"{res['unmatched']['data_only']} data); top {res['n_components']} PCs")
    if c["cca_mean"] is None:
        ceiling_d = ceiling_r = f"n/a ({c['reason']})"
    else:
        ceiling_d = f"{c['procrustes']:.3f}"
        ceiling_r = f"{c['cca_mean']:.3f} (Spearman-Brown {c['cca_mean_spearman_brown']:.3f})"
    print(f"Procrustes distance {res['procrustes']:.3f}   data split-half ceiling: {ceiling_d}")
    print(f"mean CCA            {res['cca_mean']:.3f}   data split-half ceiling: {ceiling_r}")
    print(f"(ceiling: median over {c['n_splits']} random halves of each condition's data trials, "
          f"{c['n_conditions']} conditions with >= 2 trials, seed {c['seed']}; a lower distance and a higher CCA "
          "are more similar)")
    if "score_same_conditions" in c:
        same = c["score_same_conditions"]
        print(f"on those {c['n_conditions']} conditions only: Procrustes distance {same['procrustes']:.3f}, "
              f"mean CCA {same['cca_mean']:.3f}")
    return 0
