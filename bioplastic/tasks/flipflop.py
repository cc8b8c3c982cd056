"""The n-bit flip-flop task (Sussillo & Barak 2013)."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .scan import flipflop_scan_
from .base import Task, TaskBatch, fraction, integer


#: Steps scored at the end of each silent gap in the memory test.
MEMORY_SCORE_STEPS = 5


class FlipFlop(Task):
    """n-bit flip-flop: each output holds the sign of its channel's last pulse.

    Each of ``n_bits`` input channels carries sparse pulses of amplitude +1 or
    -1 (sign drawn with equal probability), each lasting ``pulse_steps``
    steps. Pulse onsets occur independently per step and channel with
    probability ``pulse_prob``, except that an onset closer than
    ``max(pulse_steps, settle_steps + 1)`` steps to the previous one on the
    same channel is dropped, so pulses never overlap. One extra onset per
    channel is forced at a uniform step in the first 10 % of the trial, so
    every channel is pulsed early.

    Target ``y*_c[t]`` is the sign of the last pulse onset on channel ``c`` at
    or before step ``t`` (it switches at the onset) and 0 before the first.
    The loss mask is 1 from the first onset on, except in the ``settle_steps``
    steps starting at each onset. A solved network has ``2**n_bits`` stable
    fixed points (8 for the 3-bit task).

    Accuracy is the fraction of masked entries where
    ``sign(output) == sign(target)``. The memory variant
    (:meth:`~bioplastic.tasks.Task.memory_variant`) makes trials ``factor``
    times longer with pulses ``factor`` times rarer, so the silent gaps
    between pulses are ``factor`` times longer, and scores only the last
    :data:`MEMORY_SCORE_STEPS` steps of each gap (``score_steps``).

    Parameters
    ----------
    dt : float, default 1.0
        Step duration in the network's time units (``tau=10`` gives alpha 0.1).
    n_steps : int, default 100
        Trial length T (>= 10).
    n_bits : int, default 3
        Number of input and output channels.
    pulse_prob : float, default 0.04
        Probability of a pulse onset per step and channel, in [0, 1].
    pulse_steps : int, default 3
        Pulse duration in steps, in [1, n_steps // 4].
    settle_steps : int, default 0
        Steps after each onset excluded from loss and accuracy, in
        [0, n_steps // 4].
    score_steps : int, default 0
        0: score every step from the first onset on. n > 0: score only the
        last n steps before each onset and before the trial end, per
        channel, i.e. whether each bit survived the whole silent interval
        before it (the memory test uses this).
    criterion : float, default 0.95
        Accuracy at which the task counts as solved.

    Notes
    -----
    Trial table columns (besides ``trial``, ``start_step``, ``stop_step``):
    ``n_pulses_<c>`` and ``first_pulse_step_<c>`` for each channel ``c``.
    Epochs: ``'hold'``, true where at least one channel has been pulsed.

    Examples
    --------
    >>> import numpy as np
    >>> task = FlipFlop()
    >>> batch = task.sample(4, np.random.default_rng(0))
    >>> batch.inputs.shape, batch.targets.shape
    ((100, 4, 3), (100, 4, 3))
    >>> task.accuracy(batch.targets, batch)
    1.0
    """

    name = "flipflop"
    n_inputs = 3
    n_outputs = 3
    min_steps = 10
    defaults = {
        **Task.defaults,
        "n_steps": 100,
        "n_bits": 3,
        "pulse_prob": 0.04,
        "pulse_steps": 3,
        "settle_steps": 0,
        "score_steps": 0,
        "criterion": 0.95,
    }

    def __init__(self, **settings):
        super().__init__(**settings)
        self.n_inputs = self.n_outputs = self.n_bits

    def _validate(self, s):
        s = super()._validate(s)
        quarter = s["n_steps"] // 4
        s["n_bits"] = integer("n_bits", s["n_bits"], minimum=1)
        s["pulse_prob"] = fraction("pulse_prob", s["pulse_prob"])
        s["pulse_steps"] = integer("pulse_steps", s["pulse_steps"], minimum=1)
        s["settle_steps"] = integer("settle_steps", s["settle_steps"], minimum=0)
        s["score_steps"] = integer("score_steps", s["score_steps"], minimum=0)
        for key in ("pulse_steps", "settle_steps"):
            if s[key] > quarter:
                raise ConfigError(f"{key} must be <= n_steps // 4 = {quarter}, got {s[key]}")
        return s

    @property
    def min_gap(self) -> int:
        """Smallest number of steps between two onsets on one channel."""
        return max(self.pulse_steps, self.settle_steps + 1)

    def _sample(self, batch_size, rng):
        T, B, C = self.n_steps, batch_size, self.n_bits
        draws = rng.random((T, B, C)) < self.pulse_prob
        signs = np.where(rng.random((T, B, C)) < 0.5, -1.0, 1.0)
        forced = rng.integers(0, max(1, T // 10), size=(B, C))
        b, c = np.meshgrid(np.arange(B), np.arange(C), indexing="ij")
        draws[forced, b, c] = True

        onsets, inputs, targets, settling = flipflop_scan_(draws, signs, self.min_gap, self.pulse_steps,
                                                           self.settle_steps)
        started = np.logical_or.accumulate(onsets, axis=0)
        scored = started & ~settling
        if self.score_steps:
            scored &= self._gap_ends(onsets)
        loss_mask = scored.astype(np.float64)

        first = np.argmax(onsets, axis=0)  # every channel has an onset
        columns = {}
        for ch in range(C):
            columns[f"n_pulses_{ch}"] = onsets[:, :, ch].sum(axis=0).astype(np.int64)
        for ch in range(C):
            columns[f"first_pulse_step_{ch}"] = first[:, ch].astype(np.int64)
        return TaskBatch(
            inputs=inputs,
            targets=targets,
            loss_mask=loss_mask,
            trial_table=self._trial_table(B, **columns),
            epochs={"hold": started.any(axis=2)},
            dt=self.dt,
        )

    def _gap_ends(self, onsets):
        """True in the last ``score_steps`` steps before each onset and before the trial end."""
        T = onsets.shape[0]
        until_next = np.empty(onsets.shape, dtype=np.int64)  # steps until the next onset (or T)
        nxt = np.full(onsets.shape[1:], T)
        for t in range(T - 1, -1, -1):
            until_next[t] = nxt - t
            nxt = np.where(onsets[t], t, nxt)
        return until_next <= self.score_steps

    memory_epoch = "hold"

    @property
    def n_memories(self) -> int:
        """``2**n_bits`` stable fixed points, one per combination of held signs."""
        return 2 ** self.n_bits

    def _memory_settings(self, factor):
        # Pulses ``factor`` times rarer in a trial ``factor`` times longer: about
        # as many pulses per trial, with gaps ``factor`` times longer between them.
        return {"n_steps": int(round(self.n_steps * factor)), "pulse_prob": self.pulse_prob / factor}

    # The memory test scores only the ends of the silent gaps: a memory counts
    # when it survived the whole gap, not while it is still fading.
    memory_test_scoring = {"score_steps": MEMORY_SCORE_STEPS}

    def _accuracy(self, outputs, batch):
        mask = batch.loss_mask > 0
        hits = np.sign(outputs[mask]) == np.sign(batch.targets[mask])
        return hits.mean()
