"""The delayed addition ("adding") task (Hochreiter & Schmidhuber 1997)."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..validation import positive
from .base import Task, TaskBatch, integer


class DelayedAddition(Task):
    """Report the sum of two marked values at the end of the trial.

    Input channel 0 carries a value drawn uniformly from [0, 1] at every step
    (including the response window). Input channel 1 is 1 at two marked steps
    and 0 elsewhere: ``mark_step_0`` uniform in ``[0, S // 2)`` and
    ``mark_step_1`` uniform in ``[S // 2, S)``, where
    ``S = n_steps - response_steps`` is the step at which the response window
    starts. The single output's target is
    ``value_0 + value_1`` (in [0, 2]) during the last ``response_steps``
    steps, where the loss mask is 1; elsewhere target and mask are 0.

    A trial is correct if ``|mean_{response} output - target| < tolerance``;
    accuracy is the fraction of correct trials. The memory variant stretches
    the period before the response ``factor`` times (marks spread over it),
    so each value is held ``factor`` times longer on average. The sum is a
    continuous memory (a line or plane attractor), so the task states no
    count of stable fixed points (``n_memories`` is None).

    Parameters
    ----------
    dt : float, default 1.0
        Step duration in the network's time units (``tau=10`` gives alpha 0.1).
    n_steps : int, default 60
        Trial length T (>= response_steps + 4).
    response_steps : int, default 5
        Length of the response window at the end of the trial (>= 1).
    tolerance : float, default 0.04
        Largest absolute error of a correct trial.
    criterion : float, default 0.9
        Accuracy at which the task counts as solved.

    Notes
    -----
    Trial table columns (besides ``trial``, ``start_step``, ``stop_step``):
    ``mark_step_0``, ``mark_step_1``, ``value_0``, ``value_1``, ``target``,
    ``response_start``. Epochs: ``'delay'`` (after the second mark, before the
    response window; may be empty) and ``'response'``.

    Examples
    --------
    >>> import numpy as np
    >>> task = DelayedAddition()
    >>> batch = task.sample(8, np.random.default_rng(0))
    >>> batch.inputs.shape, batch.targets.shape
    ((60, 8, 2), (60, 8, 1))
    >>> task.accuracy(batch.targets, batch)
    1.0
    """

    name = "delayed_addition"
    n_inputs = 2
    n_outputs = 1
    min_steps = 5
    defaults = {
        **Task.defaults,
        "n_steps": 60,
        "response_steps": 5,
        "tolerance": 0.04,
        "criterion": 0.9,
    }

    def _validate(self, s):
        s = super()._validate(s)
        s["response_steps"] = integer("response_steps", s["response_steps"], minimum=1)
        if s["n_steps"] < s["response_steps"] + 4:
            raise ConfigError(
                f"n_steps must be >= response_steps + 4 = {s['response_steps'] + 4}, got {s['n_steps']}"
            )
        s["tolerance"] = positive("tolerance", s["tolerance"])
        return s

    @property
    def response_start(self) -> int:
        """First step of the response window."""
        return self.n_steps - self.response_steps

    def _sample(self, batch_size, rng):
        T, B, S = self.n_steps, batch_size, self.response_start
        trials = np.arange(B)
        values = rng.random((T, B))
        mark_0 = rng.integers(0, S // 2, size=B)
        mark_1 = rng.integers(S // 2, S, size=B)
        marks = np.zeros((T, B))
        marks[mark_0, trials] = 1.0
        marks[mark_1, trials] = 1.0
        value_0, value_1 = values[mark_0, trials], values[mark_1, trials]
        total = value_0 + value_1

        steps = np.arange(T)[:, None]
        response = np.broadcast_to(steps >= S, (T, B)).copy()
        targets = np.where(response, total, 0.0)[:, :, None]
        table = self._trial_table(
            B,
            mark_step_0=mark_0.astype(np.int64),
            mark_step_1=mark_1.astype(np.int64),
            value_0=value_0,
            value_1=value_1,
            target=total,
            response_start=np.full(B, S, dtype=np.int64),
        )
        return TaskBatch(
            inputs=np.stack([values, marks], axis=2),
            targets=targets,
            loss_mask=response[:, :, None].astype(np.float64),
            trial_table=table,
            epochs={"delay": (steps > mark_1) & ~response, "response": response},
            dt=self.dt,
        )

    memory_epoch = "delay"
    # Solved: held-out task loss <= 0.01 (94% of the target's variance, 1/6,
    # explained) on 3 evaluations in a row. The accuracy (|error| < 0.04)
    # sits on a knife edge once the RMS error nears 0.03 and jumps between 0
    # and 0.95 from one evaluation to the next (docs/tasks.md).
    success = {"kind": "loss", "threshold": 0.01}

    def _memory_settings(self, factor):
        # The marks are spread over a pre-response period ``factor`` times longer,
        # so the values must be held ``factor`` times longer on average.
        pre = int(round(self.response_start * factor))
        return {"n_steps": pre + self.response_steps}

    def _accuracy(self, outputs, batch):
        response = batch.epochs["response"]
        mean_output = (outputs[:, :, 0] * response).sum(axis=0) / response.sum(axis=0)
        errors = mean_output - batch.trial_table["target"]
        return np.mean(np.abs(errors) < self.tolerance)
