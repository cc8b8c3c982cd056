"""``bioplastic plot RUN.h5``: training curves of a run file as one PNG."""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError


def add_parser(sub):
    p = sub.add_parser(
        "plot", help="training curves of a run file: loss, accuracy, lambda_TCR, BPTT alignment",
        description="Draw the training curves recorded in a run file's history (task and held-out loss, "
                    "training and held-out accuracy, the TCR measure and lambda_TCR, and for local rules the "
                    "alignment with the BPTT gradient) as one PNG, RUN_curves.png, next to the run file.")
    p.add_argument("run_file", metavar="RUN.h5", help="run file written by `bioplastic train` or a protocol")
    p.add_argument("--out", default=None, help="folder for the figure (default: the run file's folder)")
    p.set_defaults(func=run)


def title_of(data) -> str:
    """``MODEL on TASK, RULE (seed S, STATUS)`` from a run file's config."""
    cfg = data.config
    model = cfg.get("model", {}).get("kind", "model")
    task = cfg.get("task", {}).get("name", "task")
    rule = cfg.get("training", {}).get("rule") or "bptt"
    rule = rule.get("name", "local rule") if isinstance(rule, dict) else str(rule)
    return f"{model} on {task}, {rule} (seed {data.seed}, {data.status})"


def accuracy_criterion(data):
    """The accuracy threshold the run trained to (its criterion, else the task's), or None."""
    crit = data.config.get("training", {}).get("criterion")
    if isinstance(crit, dict) and crit.get("kind") == "accuracy" and crit.get("threshold") is not None:
        return float(crit["threshold"])
    return data.config.get("task", {}).get("criterion")


def run(args):
    from ..io.runfile import read_run
    from ..plotting import training_curves

    src = Path(args.run_file)
    if not src.is_file():
        raise ConfigError(f"run file {str(src)!r} does not exist")
    out = Path(args.out) if args.out else src.parent
    if out.exists() and not out.is_dir():
        raise ConfigError(f"cannot write figures into {str(out)!r}: it is a file")
    data = read_run(src)  # SchemaError for anything but a run file
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create figure folder {str(out)!r}: {exc}") from exc
    path = training_curves(data.history, out / f"{src.stem}_curves.png", title=title_of(data),
                           criterion=accuracy_criterion(data))
    print(f"figure: {path}")
    return 0
