"""Schedules for the TCR weight lambda_TCR(k), k the training iteration (SPEC 4).

Every schedule is called as ``schedule(k, accuracy)`` where ``accuracy`` is the
task accuracy measured on the batch of iteration k-1 (None at k = 0), and
returns the lambda to use at iteration k. Schedules are built from a number or
a small mapping by :func:`make_schedule`, e.g. ``{"kind": "linear", "value":
0.1, "iterations": 500}``.
"""
from __future__ import annotations

import math

from ..errors import ConfigError
from ..registry import Registry

SCHEDULES = Registry("lambda_TCR schedule")


def _nonneg(name, v):
    try:
        v = float(v)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a number, got {v!r}") from exc
    if not math.isfinite(v) or v < 0:
        raise ConfigError(f"{name} must be finite and >= 0, got {v!r}")
    return v


class Schedule:
    """Base class: ``__call__(k, accuracy) -> lambda``; ``describe()`` for files."""

    kind = ""

    def describe(self) -> dict:
        """Settings (public attributes), JSON-serialisable."""
        return {"kind": self.kind, **{k: v for k, v in vars(self).items() if not k.startswith("_")}}

    def observe(self, k, task_loss, accuracy) -> None:
        """Called by the training loop after iteration k's batch (task loss and
        accuracy); schedules that react to training (a controller) override it."""

    def state(self) -> dict:
        """Internal state (private attributes), for resuming a run."""
        return {k: v for k, v in vars(self).items() if k.startswith("_")}

    def load_state(self, state: dict) -> None:
        vars(self).update(state)

    def __repr__(self):
        return f"{type(self).__name__}({self.describe()})"


@SCHEDULES.register("constant")
class Constant(Schedule):
    """lambda(k) = value."""

    kind = "constant"

    def __init__(self, value=0.0):
        self.value = _nonneg("lambda_TCR value", value)

    def __call__(self, k, accuracy=None):
        return self.value


@SCHEDULES.register("step_off")
class StepOff(Schedule):
    """lambda(k) = value until the batch accuracy first reaches ``threshold``, then 0."""

    kind = "step_off"

    def __init__(self, value=0.1, threshold=0.9):
        self.value = _nonneg("lambda_TCR value", value)
        self.threshold = _nonneg("threshold", threshold)
        self._off = False

    def __call__(self, k, accuracy=None):
        if accuracy is not None and accuracy >= self.threshold:
            self._off = True
        return 0.0 if self._off else self.value


@SCHEDULES.register("linear")
class LinearDecay(Schedule):
    """lambda(k) = value * max(0, 1 - k / iterations)."""

    kind = "linear"

    def __init__(self, value=0.1, iterations=1000):
        self.value = _nonneg("lambda_TCR value", value)
        self.iterations = _nonneg("iterations", iterations)
        if self.iterations == 0:
            raise ConfigError("linear schedule needs iterations > 0")

    def __call__(self, k, accuracy=None):
        return self.value * max(0.0, 1.0 - k / self.iterations)


@SCHEDULES.register("exponential")
class ExponentialDecay(Schedule):
    """lambda(k) = value * 2^(-k / half_life)."""

    kind = "exponential"

    def __init__(self, value=0.1, half_life=200):
        self.value = _nonneg("lambda_TCR value", value)
        self.half_life = _nonneg("half_life", half_life)
        if self.half_life == 0:
            raise ConfigError("exponential schedule needs half_life > 0")

    def __call__(self, k, accuracy=None):
        return self.value * 2.0 ** (-k / self.half_life)


@SCHEDULES.register("window")
class Window(Schedule):
    """lambda(k) = value for start <= k < stop, else 0 (``stop`` None: no end).

    Blocks TCR (or its STP term, for local rules) outside a window of
    iterations: ``{"kind": "window", "value": 1, "start": 300}`` blocks it
    for the first 300 iterations, ``{"kind": "window", "value": 1, "stop":
    300}`` from iteration 300 on.
    """

    kind = "window"

    def __init__(self, value=1.0, start=0, stop=None):
        self.value = _nonneg("lambda_TCR value", value)
        self.start = int(_nonneg("start", start))
        self.stop = None if stop is None else int(_nonneg("stop", stop))
        if self.stop is not None and self.stop < self.start:
            raise ConfigError(f"window schedule needs start <= stop, got start={self.start}, stop={self.stop}")

    def __call__(self, k, accuracy=None):
        return self.value if self.start <= k and (self.stop is None or k < self.stop) else 0.0


@SCHEDULES.register("search_phase")
class SearchPhase(Schedule):
    """lambda(k) = value during the search phase, 0 once the loss has dropped (a controller).

    The loop reports each iteration's training task loss (:meth:`observe`).
    The schedule keeps an exponential moving average ``m(k)`` of
    ``log10(loss)`` (``half_life`` iterations) and switches TCR off for good
    at the first iteration ``k >= warmup + window`` where
    ``m(k - window) - m(k) >= drop`` decades: a fall of a factor
    ``10**drop`` within ``window`` iterations, i.e. the end of the plateau
    (the drop the abrupt-learning detector also looks for, 0.3 decades by
    default). Only averages from ``k >= warmup`` are compared, which keeps
    the fast initial transient, in which the output learns the target
    mean, from counting as a drop. This controller
    is the project's reconstruction of "TCR on during the search phase only".
    """

    kind = "search_phase"

    def __init__(self, value=0.1, drop=0.3, window=100, half_life=10, warmup=100):
        self.value = _nonneg("lambda_TCR value", value)
        self.drop = _nonneg("drop", drop)
        self.window = int(_nonneg("window", window))
        self.half_life = _nonneg("half_life", half_life)
        self.warmup = int(_nonneg("warmup", warmup))
        if self.drop == 0 or self.window < 1 or self.half_life == 0:
            raise ConfigError("search_phase schedule needs drop > 0, window >= 1 and half_life > 0")
        self._ema = None
        self._past = []  # EMA of the last `window` + 1 iterations
        self._off_at = None

    def __call__(self, k, accuracy=None):
        return 0.0 if self._off_at is not None else self.value

    def observe(self, k, task_loss, accuracy) -> None:
        if self._off_at is not None or not (task_loss > 0 and math.isfinite(task_loss)):
            return
        y = math.log10(task_loss)
        a = 1.0 - 2.0 ** (-1.0 / self.half_life)
        self._ema = y if self._ema is None else (1 - a) * self._ema + a * y
        if k < self.warmup:
            return
        self._past.append(self._ema)
        if len(self._past) > self.window + 1:
            self._past.pop(0)
        if len(self._past) == self.window + 1 and self._past[0] - self._ema >= self.drop:
            self._off_at = int(k)


def make_schedule(spec) -> Schedule:
    """Build a schedule from a number (constant), a Schedule, or a mapping with ``kind``."""
    if isinstance(spec, Schedule):
        return spec
    if spec is None:
        return Constant(0.0)
    if isinstance(spec, (int, float)) and not isinstance(spec, bool):
        return Constant(spec)
    if isinstance(spec, dict):
        spec = dict(spec)
        kind = spec.pop("kind", "constant")
        cls = SCHEDULES.get(kind)
        try:
            return cls(**spec)
        except TypeError as exc:
            raise ConfigError(f"bad settings for schedule {kind!r}: {exc}") from exc
    raise ConfigError(f"cannot build a lambda_TCR schedule from {spec!r}")
