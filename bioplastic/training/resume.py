"""Continue an interrupted run from its run file, BPTT or local rule, bit for bit.

Its own module because it dispatches to both training loops
(:mod:`.loop` for BPTT, :mod:`.local` for local rules), which do not import
each other.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .loop import TrainResult, train


def check_resumable(data, run_file) -> None:
    """SchemaError naming ``run_file`` and the defect unless ``data`` (from
    :func:`~bioplastic.io.runfile.read_run`) holds all a resume needs: the
    config sections, a history with a row for every iteration before the one
    the run resumes from, the checkpoint of that iteration with every
    parameter, and (local-rule runs) the rule's state."""
    from ..errors import SchemaError
    from ..seeding import STREAMS

    def bad(what):
        return SchemaError(f"run file {str(run_file)!r} {what}; it cannot be resumed")

    cfg, state = data.config, data.resume
    missing = [k for k in ("model", "task", "training") if not isinstance(cfg.get(k), dict)]
    missing += [f"{k}.{sub}" for k, sub in (("model", "kind"), ("task", "name")) if sub not in cfg.get(k, {})]
    if missing:
        raise bad(f"has a config without {', '.join(missing)}")
    k = state["iteration"]
    if "iteration" not in data.history:
        raise bad("lacks /history/iteration")
    short = {c: len(v) for c, v in data.history.items() if np.ndim(v) != 1 or len(v) < k}
    if short:
        rows = ", ".join(f"{c} ({n})" for c, n in sorted(short.items()))
        raise bad(f"is truncated: it resumes at iteration {k}, which needs {k} history rows, but the history "
                  f"has fewer: {rows}")
    if k not in data.checkpoints:
        raise bad(f"lacks checkpoint {k} (/checkpoints/{k:08d}), the parameters the run resumes from")
    lost = sorted(set(data.params) - set(data.checkpoints[k]))
    if lost:
        raise bad(f"has checkpoint {k} without {', '.join(lost)}")
    bad_entry = _first_non_finite(state.get("optimizer", {}), "optimizer")
    if bad_entry:  # resuming would train on it and write NaN checkpoints into the run
        raise bad(f"has a non-finite value (NaN or inf) in its resume state at {bad_entry}")
    unknown = sorted(set(state["streams"]) - set(STREAMS))
    if unknown:
        raise bad(f"has a resume state with unknown random streams {', '.join(unknown)}")
    if isinstance(cfg["training"].get("rule", "bptt"), dict):
        lacks = [key for key in ("diag_rng", "success", "rule_state") if key not in state]
        if lacks:
            raise bad(f"is a local-rule run whose resume state lacks {', '.join(lacks)}"
                      + (" (the rule's state)" if lacks == ["rule_state"] else ""))


def _first_non_finite(tree, where: str):
    """Path of the first float array in a nested dict holding NaN or inf, else None."""
    import numpy as np

    if isinstance(tree, dict):
        for key, value in tree.items():
            found = _first_non_finite(value, f"{where}/{key}")
            if found:
                return found
        return None
    arr = np.asarray(tree)
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        return where
    return None


def warn_other_version(data, run_file) -> None:
    """UserWarning if ``run_file`` was written by another bioplastic version
    (its ``package_version`` attribute): the resumed part is computed by
    this version, so it may not continue the run bit for bit."""
    import warnings

    from .._version import __version__

    written = str(data.attrs.get("package_version", "unknown"))
    if written != __version__:
        warnings.warn(f"run file {str(run_file)!r} was written by bioplastic {written}, this is bioplastic "
                      f"{__version__}: the resumed iterations may differ from what {written} would compute",
                      UserWarning, stacklevel=3)


def resume(run_file, *, iterations=None, progress=None) -> TrainResult:
    """Continue an interrupted run from the last checkpoint in its run file.

    The network, task and training settings come from the file's config; the
    random streams, optimiser and schedule state were saved with the
    checkpoint, so the resumed run ends with the same parameters as an
    uninterrupted run with the same seed. ``iterations`` may raise the budget.
    BPTT runs continue in :func:`train`; local-rule runs (the config's
    ``training.rule`` is a rule description) in
    :func:`~bioplastic.training.local.train_local`, with the rule rebuilt by
    :func:`~bioplastic.rules.rule_from_description` and its state (random
    feedback, baselines, the freeze-in controller...) read from the file.

    Raises
    ------
    SchemaError
        If the file is not a run file or holds no resume state (it finished,
        diverged, or was written before its first checkpoint), or if it is
        truncated or corrupt (:func:`check_resumable`); nothing is written.
    ConfigError
        If ``iterations`` is below the iteration the run resumes from.

    Warns
    -----
    UserWarning
        If the file was written by another bioplastic version (both named).
    """
    from ..errors import SchemaError
    from ..io.runfile import read_run
    from ..networks import make_network
    from ..tasks import get_task

    data = read_run(run_file)
    if data.resume is None:
        raise SchemaError(f"run file {str(run_file)!r} has no resume state (status {data.status!r}); "
                          "only a run interrupted after a checkpoint can be resumed")
    check_resumable(data, run_file)
    cfg = data.config
    model = dict(cfg["model"])
    kind = model.pop("kind")
    task_cfg = dict(cfg["task"])
    task = get_task(task_cfg.pop("name"), **task_cfg)
    net = make_network(kind, **model)
    tr = dict(cfg["training"])
    if "record" in cfg:
        tr["record"] = cfg["record"]
    rule = tr.pop("rule", "bptt")
    if rule != "bptt" and not isinstance(rule, dict):
        raise SchemaError(f"run file {str(run_file)!r} names the rule {rule!r}, neither 'bptt' nor a rule "
                          "description; it cannot be resumed")
    if iterations is not None:
        if iterations < data.resume["iteration"]:
            raise ConfigError(f"iterations={iterations} is below iteration {data.resume['iteration']}, "
                              f"where run file {str(run_file)!r} resumes")
        tr["iterations"] = iterations
    warn_other_version(data, run_file)
    extra = {k: v for k, v in cfg.items() if k not in ("model", "task", "training", "seed", "record")}
    constraints = data.constraints
    from ..networks.base import Params

    checkpoints = {k: Params(v, constraints, net.trainable) for k, v in data.checkpoints.items()}
    state = dict(data.resume, checkpoints=checkpoints, history=data.history,
                 recordings=(data.recordings or {}).get("at", {}))
    common = dict(seed=data.seed, run_file=run_file, progress=progress,
                  extra_config={**extra, "resumed_at": state["iteration"]}, _resume=state)
    if rule == "bptt":
        return train(net, task, **common, **tr)
    from ..rules import rule_from_description
    from .local import local_kwargs, train_local

    for key in ("local", "modifies"):  # recorded for readers; follow from the rule
        tr.pop(key, None)
    return train_local(net, task, rule_from_description(rule), **common, **local_kwargs(tr))
