"""What every task is: a batch container and an abstract task class.

A task turns a seeded :class:`numpy.random.Generator` into a
:class:`TaskBatch`: inputs, targets and a loss mask, time-first ``(T, B, ...)``,
plus a trial table and epoch masks that export to NWB trials. It also says how
to score a network's outputs (:meth:`Task.accuracy`) and when the task counts
as solved (:attr:`Task.criterion`).

Time is counted in steps throughout (trial-table columns, epoch boundaries,
durations); ``dt`` converts steps to the time units of the network's ``tau``.
"""
from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..errors import ConfigError, ShapeError
from ..validation import as_array, expect_shape, positive

#: Trial-table columns every batch carries.
REQUIRED_COLUMNS = ("trial", "start_step", "stop_step")


@dataclass(frozen=True, eq=False)
class TaskBatch:
    """One batch of trials of a task, time-first.

    Parameters
    ----------
    inputs : ndarray, shape (T, B, I), float64
        Input presented to the network at each step.
    targets : ndarray, shape (T, B, O), float64
        Desired output at each step (only meaningful where ``loss_mask`` is 1).
    loss_mask : ndarray, shape (T, B, O), float64
        1 where the output is scored, 0 elsewhere.
    trial_table : dict of str to ndarray, each shape (B,)
        One row per trial. Always holds ``trial`` (index), ``start_step`` (0)
        and ``stop_step`` (T); tasks add conditions and epoch boundaries, in
        steps.
    epochs : dict of str to ndarray, each shape (T, B), bool
        Named epoch masks (e.g. ``'delay'``, ``'response'``).
    dt : float
        Duration of one step, in the time units of the network's ``tau``.

    Raises
    ------
    ShapeError
        If the arrays do not agree on ``T`` and ``B``.
    """

    inputs: np.ndarray
    targets: np.ndarray
    loss_mask: np.ndarray
    trial_table: dict[str, np.ndarray]
    epochs: dict[str, np.ndarray]
    dt: float

    def __post_init__(self):
        for field in ("inputs", "targets", "loss_mask"):
            arr = getattr(self, field)
            if not isinstance(arr, np.ndarray) or arr.ndim != 3:
                raise ShapeError(f"TaskBatch.{field} must be a 3-D array (T, B, ...)")
        T, B = self.inputs.shape[:2]
        if self.targets.shape[:2] != (T, B):
            raise ShapeError(
                f"TaskBatch.targets shape {self.targets.shape} does not start with (T, B) = {(T, B)}"
            )
        if self.loss_mask.shape != self.targets.shape:
            raise ShapeError(
                f"TaskBatch.loss_mask shape {self.loss_mask.shape} != targets shape {self.targets.shape}"
            )
        missing = [c for c in REQUIRED_COLUMNS if c not in self.trial_table]
        if missing:
            raise ConfigError(f"TaskBatch.trial_table lacks required column(s) {missing}")
        for key, col in self.trial_table.items():
            if np.shape(col) != (B,):
                raise ShapeError(f"trial_table[{key!r}] must have shape ({B},), got {np.shape(col)}")
        for key, mask in self.epochs.items():
            if np.shape(mask) != (T, B) or np.asarray(mask).dtype != bool:
                raise ShapeError(f"epochs[{key!r}] must be a bool array of shape {(T, B)}")

    @property
    def T(self) -> int:  # noqa: N802 - the notation of the spec
        """Number of time steps."""
        return self.inputs.shape[0]

    @property
    def batch_size(self) -> int:
        """Number of trials B."""
        return self.inputs.shape[1]

    @property
    def n_inputs(self) -> int:
        """Number of input channels I."""
        return self.inputs.shape[2]

    @property
    def n_outputs(self) -> int:
        """Number of output channels O."""
        return self.targets.shape[2]


class Task(abc.ABC):
    """Abstract task: settings in, seeded batches and scores out.

    A subclass sets the class attributes ``name``, ``n_inputs``, ``n_outputs``
    and ``defaults`` (every setting with its default, including those of
    :attr:`Task.defaults`), may extend :meth:`_validate`, and implements
    :meth:`_sample` and :meth:`_accuracy`. The public methods validate their
    arguments and then call those.

    Parameters
    ----------
    **settings
        Any key of ``defaults``. Common to all tasks:

        dt : float, default 1.0
            Step duration, in the time units of the network's ``tau``
            (a network with ``tau=10`` then has ``alpha = 0.1``).
        n_steps : int
            Trial length T in steps (default set per task).
        criterion : float
            Accuracy in (0, 1] at which the task counts as solved.

    Raises
    ------
    ConfigError
        On an unknown setting (named in the message) or an invalid value.
    """

    name: ClassVar[str] = ""
    n_inputs: int = 0
    n_outputs: int = 0
    #: Smallest trial length a task accepts.
    min_steps: ClassVar[int] = 2
    #: Every setting and its default.
    defaults: ClassVar[dict] = {"dt": 1.0, "n_steps": 100, "criterion": 0.9}

    dt: float
    n_steps: int
    criterion: float

    def __init__(self, **settings):
        unknown = sorted(set(settings) - set(self.defaults))
        if unknown:
            raise ConfigError(
                f"unknown setting(s) {', '.join(map(repr, unknown))} for task {self.name!r}; "
                f"known: {', '.join(sorted(self.defaults))}"
            )
        values = self._validate({**self.defaults, **settings})
        self._settings = values
        for key, value in values.items():
            setattr(self, key, value)

    def _validate(self, s: dict) -> dict:
        """Check and normalize the settings common to all tasks; return them."""
        s["dt"] = positive("dt", s["dt"])
        s["n_steps"] = integer("n_steps", s["n_steps"], minimum=self.min_steps)
        s["criterion"] = fraction("criterion", s["criterion"])
        if s["criterion"] == 0:
            raise ConfigError("criterion must be in (0, 1], got 0")
        return s

    def settings(self) -> dict:
        """Return the resolved constructor settings (a copy, for recording in files).

        ``type(task)(**task.settings())`` rebuilds an identical task.
        """
        return dict(self._settings)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._settings.items())
        return f"{type(self).__name__}({args})"

    # -- sampling -----------------------------------------------------------
    def sample(self, batch_size: int, rng: np.random.Generator) -> TaskBatch:
        """Draw a batch of trials.

        Parameters
        ----------
        batch_size : int
            Number of trials B (positive).
        rng : numpy.random.Generator
            The only source of randomness: the same seed gives the same batch.

        Returns
        -------
        TaskBatch
            Inputs ``(T, B, n_inputs)``, targets and loss mask
            ``(T, B, n_outputs)``, all float64.

        Raises
        ------
        ConfigError
            If ``batch_size`` is not a positive int or ``rng`` is not a Generator.
        """
        batch_size = integer("batch_size", batch_size, minimum=1)
        if not isinstance(rng, np.random.Generator):
            raise ConfigError(
                "rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
                f"got {type(rng).__name__}"
            )
        return self._sample(batch_size, rng)

    @abc.abstractmethod
    def _sample(self, batch_size: int, rng: np.random.Generator) -> TaskBatch:
        """Draw a batch; arguments already checked."""

    def _trial_table(self, batch_size: int, **columns) -> dict[str, np.ndarray]:
        """Return the required columns followed by ``columns``."""
        table = {
            "trial": np.arange(batch_size, dtype=np.int64),
            "start_step": np.zeros(batch_size, dtype=np.int64),
            "stop_step": np.full(batch_size, self.n_steps, dtype=np.int64),
        }
        table.update(columns)
        return table

    # -- scoring ------------------------------------------------------------
    def accuracy(self, outputs, batch: TaskBatch) -> float:
        """Score network outputs on a batch (task-specific, in [0, 1]).

        Parameters
        ----------
        outputs : array_like, shape (T, B, n_outputs)
            Network outputs on ``batch``.
        batch : TaskBatch
            The batch the outputs answer.

        Raises
        ------
        ShapeError
            If ``outputs`` does not match ``batch.targets`` in shape or holds
            NaN or inf, or the batch is not of this task's sizes.
        """
        if not isinstance(batch, TaskBatch):
            raise ConfigError(f"batch must be a TaskBatch, got {type(batch).__name__}")
        # a batch of another task's channels would be scored by the wrong columns
        expect_shape("batch.inputs", batch.inputs, (None, None, self.n_inputs), f"(T, B, n_inputs) of {self.name}")
        expect_shape("batch.targets", batch.targets, (None, None, self.n_outputs),
                     f"(T, B, n_outputs) of {self.name}")
        outputs = as_array("outputs", outputs, np.float64, shape=batch.targets.shape,
                           what="(T, B, n_outputs) of the batch's targets")
        return float(self._accuracy(outputs, batch))

    @abc.abstractmethod
    def _accuracy(self, outputs: np.ndarray, batch: TaskBatch) -> float:
        """Score checked float64 outputs of the batch's shape."""

    def is_solved(self, outputs, batch: TaskBatch) -> bool:
        """Return ``accuracy(outputs, batch) >= criterion``."""
        return self.accuracy(outputs, batch) >= self.criterion

    #: What "solved" means for this task: keyword arguments of
    #: :class:`~bioplastic.training.criteria.SuccessCriterion` used when a run
    #: gives no criterion (empty: held-out accuracy >= ``criterion``, K = 3).
    success: ClassVar[dict] = {}

    # -- memory ---------------------------------------------------------------
    #: Name of the epoch in which the network must hold a memory without input
    #: (TCR can be restricted to it; slow dynamics are measured in it).
    memory_epoch: ClassVar[str | None] = None

    @property
    def n_memories(self) -> int | None:
        """Stable fixed points a solution needs at zero input (None: not a count,
        e.g. a continuous attractor)."""
        return None

    #: Settings the memory test adds to the stretched task (e.g. how it is scored).
    memory_test_scoring: ClassVar[dict] = {}

    def memory_settings(self, factor: float) -> dict:
        """This task's settings with its silent (memory) intervals ``factor`` times longer.

        Used both for the memory test (:meth:`memory_variant`) and to train on
        longer memories (e.g. ``get_task(name, **task.memory_settings(2))``).
        Subclasses implement :meth:`_memory_settings`.

        Raises
        ------
        ConfigError
            If ``factor`` is not > 1 or the task defines no way to stretch its silences.
        """
        f = positive("memory factor", factor)
        if f <= 1:
            raise ConfigError(f"memory factor must be > 1 (longer silences than in training), got {factor!r}")
        settings = self._memory_settings(f)
        if settings is None:
            raise ConfigError(f"task {self.name!r} defines no memory variant (implement _memory_settings)")
        return {**self.settings(), **settings}

    def memory_variant(self, factor: float) -> "Task":
        """The memory test's task: silent intervals ``factor`` times longer
        (:meth:`memory_settings`), scored as :attr:`memory_test_scoring` says.

        The **memory test** scores a trained network on these trials: a
        network that holds its memories in attractors keeps them over longer
        silences, one that relies on a slowly decaying state does not.
        """
        return type(self)(**{**self.memory_settings(factor), **self.memory_test_scoring})

    def _memory_settings(self, factor: float) -> dict | None:
        """Settings that stretch the task's silent intervals by ``factor`` (None: no variant)."""
        return None


# -- setting checks -----------------------------------------------------------
def integer(name: str, value, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as int, raising ConfigError unless an integer in range."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be <= {maximum}, got {value}")
    return value


def fraction(name: str, value) -> float:
    """Return ``value`` as float, raising ConfigError unless in [0, 1]."""
    v = non_negative(name, value)
    if v > 1:
        raise ConfigError(f"{name} must be in [0, 1], got {value!r}")
    return v


def non_negative(name: str, value) -> float:
    """Return ``value`` as float, raising ConfigError unless finite and >= 0."""
    if isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a number, got {value!r}") from exc
    if not np.isfinite(v) or v < 0:
        raise ConfigError(f"{name} must be finite and >= 0, got {value!r}")
    return v
