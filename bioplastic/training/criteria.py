"""What "solved" means: a criterion sustained over held-out evaluations (SPEC 2).

A single crossing of an accuracy threshold on the training batch is not
success: a flip-flop network passes sign accuracy 0.95 with a slowly
decaying state and no attractor, and one noisy batch can cross a threshold
the network does not hold. So a run is judged on **held-out evaluations**:

* every ``eval_every`` iterations (and at the last one) the parameters are
  run on a fresh batch of ``eval_batch_size`` trials from the run's "eval"
  stream, with the training noise, and the task accuracy and task loss
  (masked MSE) are recorded (history columns ``eval_accuracy`` and
  ``eval_loss``, NaN between evaluations);
* an evaluation **passes** when, for ``kind="accuracy"``, accuracy >=
  ``threshold`` (default: the task's ``criterion``) or, for
  ``kind="loss"``, task loss <= ``threshold``;
* the run is **solved** once ``consecutive`` (K, default 3) evaluations in
  a row pass. ``converged_at`` is the iteration of the first of them (when
  the sustained success began: "iterations to criterion"),
  ``confirmed_at`` the iteration of the K-th (when it could be known; an
  early-stopping run stops there, or ``continue_after`` iterations later).

Both iterations are recorded whether or not training stops. This is the
project's definition; the paper's is not available.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..errors import ConfigError

KINDS = ("accuracy", "loss")


@dataclass(frozen=True)
class SuccessCriterion:
    """A sustained success criterion (see the module docstring).

    Parameters
    ----------
    kind : {"accuracy", "loss"}
        Held-out task accuracy at least ``threshold``, or held-out task loss
        at most ``threshold``.
    threshold : float or None
        None: the task's ``criterion`` (accuracy only; a loss criterion
        needs a threshold).
    consecutive : int, default 3
        K, evaluations in a row that must pass.
    eval_every : int, default 10
        Iterations between held-out evaluations.

    Examples
    --------
    >>> c = SuccessCriterion(kind="loss", threshold=0.05, consecutive=2)
    >>> c.passes(accuracy=0.5, loss=0.01), c.passes(accuracy=1.0, loss=0.2)
    (True, False)
    """

    kind: str = "accuracy"
    threshold: float | None = None
    consecutive: int = 3
    eval_every: int = 10

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConfigError(f"criterion kind must be one of {KINDS}, got {self.kind!r}")
        for name in ("consecutive", "eval_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"criterion {name} must be a positive integer, got {v!r}")
        if self.threshold is not None:
            try:
                t = float(self.threshold)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"criterion threshold must be a number, got {self.threshold!r}") from exc
            if not np.isfinite(t) or t < 0 or (self.kind == "accuracy" and not 0 < t <= 1):
                raise ConfigError(f"criterion threshold {self.threshold!r} is not valid for kind {self.kind!r} "
                                  "(accuracy: in (0, 1]; loss: finite and >= 0)")
        elif self.kind == "loss":
            raise ConfigError("a loss criterion needs a threshold (e.g. {'kind': 'loss', 'threshold': 0.01})")

    def resolve(self, task) -> "SuccessCriterion":
        """This criterion with the task's accuracy criterion filled in."""
        if self.threshold is not None:
            return self
        return SuccessCriterion(self.kind, float(task.criterion), self.consecutive, self.eval_every)

    def passes(self, accuracy: float, loss: float) -> bool:
        """Whether one held-out evaluation meets the threshold (NaN never does)."""
        if self.threshold is None:
            raise ConfigError("criterion has no threshold yet: call resolve(task) first")
        if self.kind == "accuracy":
            return bool(np.isfinite(accuracy) and accuracy >= self.threshold)
        return bool(np.isfinite(loss) and loss <= self.threshold)

    def describe(self) -> dict:
        return asdict(self)


def make_criterion(spec, task=None) -> SuccessCriterion:
    """Build a criterion from None (the task's default), a mapping or a SuccessCriterion.

    ``None`` means the task's own definition (:attr:`Task.success`; for
    most tasks held-out accuracy >= the task's criterion, for delayed
    addition a loss threshold); with ``task`` the threshold is resolved
    (see :meth:`SuccessCriterion.resolve`).

    Raises
    ------
    ConfigError
        On an unknown key (named) or an invalid value.
    """
    if spec is None:
        spec = dict(getattr(task, "success", {}) or {})
    if isinstance(spec, dict) and not spec:
        c = SuccessCriterion()
    elif isinstance(spec, SuccessCriterion):
        c = spec
    elif isinstance(spec, dict):
        known = set(SuccessCriterion.__dataclass_fields__)
        bad = sorted(set(spec) - known)
        if bad:
            raise ConfigError(f"unknown criterion setting(s) {bad}; known: {sorted(known)}")
        c = SuccessCriterion(**spec)
    else:
        raise ConfigError(f"criterion must be None, a mapping or a SuccessCriterion, got {spec!r}")
    return c if task is None else c.resolve(task)


def sustained_onset(passes, consecutive: int) -> int | None:
    """Index of the first of ``consecutive`` passing evaluations in a row, or None.

    Parameters
    ----------
    passes : sequence of bool, one per evaluation in order
    consecutive : int, K

    Examples
    --------
    >>> sustained_onset([True, False, True, True, True, False], 3)
    2
    >>> sustained_onset([True, True, False, True, True], 3) is None
    True
    """
    if isinstance(consecutive, bool) or not isinstance(consecutive, (int, np.integer)) or consecutive < 1:
        raise ConfigError(f"consecutive must be a positive integer, got {consecutive!r}")
    run = 0
    for i, ok in enumerate(passes):
        run = run + 1 if ok else 0
        if run == consecutive:
            return i - consecutive + 1
    return None


def sustained_success(eval_iterations, values, criterion: SuccessCriterion) -> tuple[int | None, int | None]:
    """``(converged_at, confirmed_at)`` of a recorded evaluation trace.

    Parameters
    ----------
    eval_iterations : (E,) iterations of the held-out evaluations, increasing
    values : (E,) held-out accuracy (kind "accuracy") or task loss (kind "loss")
    criterion : SuccessCriterion with a threshold

    Returns
    -------
    The iteration of the first and of the K-th evaluation of the first run of
    K passing evaluations, or ``(None, None)``.

    Examples
    --------
    >>> c = SuccessCriterion(threshold=0.9, consecutive=2, eval_every=10)
    >>> sustained_success([0, 10, 20, 30, 40], [0.5, 0.95, 0.8, 0.92, 0.97], c)
    (30, 40)
    """
    its = np.asarray(eval_iterations)
    v = np.asarray(values, dtype=float)
    if its.shape != v.shape or its.ndim != 1:
        raise ConfigError(f"eval_iterations and values must be 1-D of equal length, got {its.shape}, {v.shape}")
    if criterion.kind == "accuracy":
        passes = [criterion.passes(x, float("nan")) for x in v]
    else:
        passes = [criterion.passes(float("nan"), x) for x in v]
    i = sustained_onset(passes, criterion.consecutive)
    if i is None:
        return None, None
    return int(its[i]), int(its[i + criterion.consecutive - 1])


def success_from_history(history: dict, criterion: SuccessCriterion) -> tuple[int | None, int | None]:
    """``(converged_at, confirmed_at)`` recomputed from a run's history columns
    (``eval_accuracy``/``eval_loss``), e.g. for another K or threshold."""
    column = "eval_accuracy" if criterion.kind == "accuracy" else "eval_loss"
    if column not in history:
        raise ConfigError(f"history has no {column!r} column (a run file written before held-out evaluations "
                          "were recorded?)")
    its = np.asarray(history["iteration"])
    v = np.asarray(history[column], dtype=float)
    sel = np.isfinite(v)
    return sustained_success(its[sel], v[sel], criterion)


class SuccessTracker:
    """Online bookkeeping of a sustained criterion during training.

    Call :meth:`update` with each held-out evaluation; it returns True at the
    evaluation that confirms success. ``converged_at``/``confirmed_at`` keep
    the first sustained success (later failures do not undo it).
    """

    def __init__(self, criterion: SuccessCriterion):
        if criterion.threshold is None:
            raise ConfigError("SuccessTracker needs a resolved criterion (call make_criterion(spec, task))")
        self.criterion = criterion
        self.run_start: int | None = None
        self.run_length = 0
        self.converged_at: int | None = None
        self.confirmed_at: int | None = None

    def due(self, k: int, last: int) -> bool:
        """Whether iteration ``k`` has a held-out evaluation (``last``: the budget)."""
        return k % self.criterion.eval_every == 0 or k == last

    def update(self, k: int, accuracy: float, loss: float) -> bool:
        if self.converged_at is not None:
            return False
        if self.criterion.passes(accuracy, loss):
            if self.run_length == 0:
                self.run_start = k
            self.run_length += 1
            if self.run_length >= self.criterion.consecutive:
                self.converged_at, self.confirmed_at = self.run_start, k
                return True
        else:
            self.run_start, self.run_length = None, 0
        return False

    def state(self) -> dict:
        return {"run_start": self.run_start, "run_length": self.run_length, "converged_at": self.converged_at,
                "confirmed_at": self.confirmed_at}

    def load_state(self, state: dict) -> None:
        for key in ("run_start", "run_length", "converged_at", "confirmed_at"):
            setattr(self, key, state[key])
