"""Evidence accumulation: integrate noisy evidence, hold it, report its sign."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .base import Task, TaskBatch, integer, non_negative


class EvidenceAccumulation(Task):
    """Report the sign of the evidence summed over a noisy stimulus, after a delay.

    A trial has four epochs of fixed length, in steps: fixation
    (``fixation_steps``, no input), stimulus (``stim_steps``), delay
    (``delay_steps``, no input) and response (``response_steps``), where
    ``stim_steps = n_steps - fixation_steps - delay_steps - response_steps``.

    Each trial draws a coherence magnitude uniformly from ``coherences`` and a
    sign with equal probability; during the stimulus input channel 0 is
    ``e[t] = coherence + noise * xi[t]`` with ``xi[t] ~ N(0, 1)``. Input
    channel 1 is a go cue, 1 during the response epoch. The target of the
    single output during the response epoch (the only masked epoch) is the
    sign of the evidence actually presented, ``choice = sign(sum_t e[t])``
    (the coherence sign on an exact tie), not the sign of the coherence.

    A trial is correct if ``sign(mean_{response} output) == choice``; accuracy
    is the fraction of correct trials. The memory variant makes the delay
    ``factor`` times longer (5 * factor steps when it is 0). A solution that
    holds the choice in attractors has two stable fixed points at zero
    input (``n_memories``); one that holds the accumulated evidence on a
    line attractor is a valid alternative this count does not see.

    Parameters
    ----------
    dt : float, default 1.0
        Step duration in the network's time units (``tau=10`` gives alpha 0.1).
    n_steps : int, default 80
        Trial length T; the stimulus gets what the other epochs leave (45).
    fixation_steps : int, default 5
        Steps of silence before the stimulus (>= 0).
    delay_steps : int, default 20
        Steps of silence between stimulus and response (>= 0).
    response_steps : int, default 10
        Steps of the response epoch (>= 1).
    coherences : sequence of float, default (0.05, 0.1, 0.2, 0.4)
        Coherence magnitudes (mean evidence per step), each >= 0.
    noise : float, default 0.5
        Standard deviation of the evidence noise per step (>= 0).
    criterion : float, default 0.9
        Accuracy at which the task counts as solved.

    Notes
    -----
    Trial table columns (besides ``trial``, ``start_step``, ``stop_step``):
    ``coherence`` (signed), ``evidence_sum``, ``choice`` (+1 or -1),
    ``stim_start``, ``stim_stop``, ``delay_stop``. Epochs: ``'fixation'``,
    ``'stimulus'``, ``'delay'``, ``'response'``.

    Examples
    --------
    >>> import numpy as np
    >>> task = EvidenceAccumulation()
    >>> batch = task.sample(8, np.random.default_rng(0))
    >>> batch.inputs.shape, batch.targets.shape
    ((80, 8, 2), (80, 8, 1))
    >>> task.accuracy(batch.targets, batch)
    1.0
    """

    name = "evidence_accumulation"
    n_inputs = 2
    n_outputs = 1
    min_steps = 2
    defaults = {
        **Task.defaults,
        "n_steps": 80,
        "fixation_steps": 5,
        "delay_steps": 20,
        "response_steps": 10,
        "coherences": (0.05, 0.1, 0.2, 0.4),
        "noise": 0.5,
        "criterion": 0.9,
    }

    def _validate(self, s):
        s = super()._validate(s)
        s["fixation_steps"] = integer("fixation_steps", s["fixation_steps"], minimum=0)
        s["delay_steps"] = integer("delay_steps", s["delay_steps"], minimum=0)
        s["response_steps"] = integer("response_steps", s["response_steps"], minimum=1)
        other = s["fixation_steps"] + s["delay_steps"] + s["response_steps"]
        if s["n_steps"] <= other:
            raise ConfigError(
                f"n_steps must exceed fixation_steps + delay_steps + response_steps = {other} "
                f"to leave a stimulus epoch, got {s['n_steps']}"
            )
        coherences = np.atleast_1d(np.asarray(s["coherences"], dtype=object))
        if coherences.ndim != 1 or coherences.size == 0:
            raise ConfigError(f"coherences must be a non-empty sequence of numbers, got {s['coherences']!r}")
        s["coherences"] = tuple(non_negative("coherences entry", c) for c in coherences)
        s["noise"] = non_negative("noise", s["noise"])
        return s

    @property
    def stim_start(self) -> int:
        """First step of the stimulus epoch."""
        return self.fixation_steps

    @property
    def stim_stop(self) -> int:
        """First step after the stimulus epoch."""
        return self.n_steps - self.delay_steps - self.response_steps

    @property
    def delay_stop(self) -> int:
        """First step of the response epoch."""
        return self.n_steps - self.response_steps

    def _sample(self, batch_size, rng):
        T, B = self.n_steps, batch_size
        start, stop, go = self.stim_start, self.stim_stop, self.delay_stop
        magnitude = rng.choice(np.asarray(self.coherences), size=B)
        sign = np.where(rng.random(B) < 0.5, -1.0, 1.0)
        coherence = sign * magnitude
        evidence = coherence + self.noise * rng.standard_normal((stop - start, B))
        evidence_sum = evidence.sum(axis=0)
        choice = np.where(evidence_sum != 0, np.sign(evidence_sum), sign)

        inputs = np.zeros((T, B, 2))
        inputs[start:stop, :, 0] = evidence
        inputs[go:, :, 1] = 1.0
        steps = np.arange(T)[:, None]

        def epoch(lo, hi):
            return np.broadcast_to((steps >= lo) & (steps < hi), (T, B)).copy()

        epochs = {
            "fixation": epoch(0, start),
            "stimulus": epoch(start, stop),
            "delay": epoch(stop, go),
            "response": epoch(go, T),
        }
        targets = np.where(epochs["response"], choice, 0.0)[:, :, None]

        def column(value):
            return np.full(B, value, dtype=np.int64)

        table = self._trial_table(
            B,
            coherence=coherence,
            evidence_sum=evidence_sum,
            choice=choice.astype(np.int64),
            stim_start=column(start),
            stim_stop=column(stop),
            delay_stop=column(go),
        )
        return TaskBatch(
            inputs=inputs,
            targets=targets,
            loss_mask=epochs["response"][:, :, None].astype(np.float64),
            trial_table=table,
            epochs=epochs,
            dt=self.dt,
        )

    memory_epoch = "delay"

    @property
    def n_memories(self) -> int:
        """Two stable fixed points, one per choice, held through the delay."""
        return 2

    def _memory_settings(self, factor):
        delay = int(round(self.delay_steps * factor)) if self.delay_steps else int(round(5 * factor))
        return {"delay_steps": delay, "n_steps": self.n_steps + delay - self.delay_steps}

    def _accuracy(self, outputs, batch):
        response = batch.epochs["response"]
        mean_output = (outputs[:, :, 0] * response).sum(axis=0) / response.sum(axis=0)
        return np.mean(np.sign(mean_output) == batch.trial_table["choice"])
