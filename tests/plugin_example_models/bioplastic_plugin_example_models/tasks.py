"""A task registered as a bioplastic plugin: hold one bit."""
import numpy as np

from bioplastic.tasks import Task, TaskBatch
from bioplastic.tasks.base import integer


class HoldBit(Task):
    """Hold one bit: report the sign of one early pulse until the trial ends.

    The input channel carries one pulse of amplitude +1 or -1 (sign drawn
    with equal probability), ``pulse_steps`` steps long, starting at a
    uniform step in the first quarter of the trial. The target is that sign
    from the pulse onset on (0 before); the loss mask is 1 after the pulse
    (the ``hold`` epoch). Accuracy is the fraction of trials whose output at
    the last step has the pulse's sign. A solution holds 2 stable fixed
    points at zero input. The memory variant makes trials ``factor`` times
    longer, so the bit is held ``factor`` times longer.

    Parameters
    ----------
    dt : float, default 1.0
        Step duration in the network's time units.
    n_steps : int, default 40
        Trial length T (>= 8).
    pulse_steps : int, default 2
        Pulse duration, in [1, n_steps // 4].
    criterion : float, default 0.9
        Accuracy at which the task counts as solved.

    Notes
    -----
    Trial table columns (besides ``trial``, ``start_step``, ``stop_step``):
    ``sign`` (+1 or -1) and ``pulse_step`` (the onset). Epochs: ``cue``
    (the pulse) and ``hold`` (after it).

    Examples
    --------
    >>> task = HoldBit(n_steps=20)
    >>> batch = task.sample(4, np.random.default_rng(0))
    >>> batch.inputs.shape, task.accuracy(batch.targets, batch)
    ((20, 4, 1), 1.0)
    """

    name = "hold_bit"                  # registry name = entry-point name
    n_inputs = 1
    n_outputs = 1
    min_steps = 8                      # the onset window, n_steps // 4, is never empty
    defaults = {**Task.defaults, "n_steps": 40, "pulse_steps": 2, "criterion": 0.9}
    memory_epoch = "hold"

    def _validate(self, s):
        s = super()._validate(s)       # dt, n_steps, criterion
        s["pulse_steps"] = integer("pulse_steps", s["pulse_steps"], minimum=1, maximum=s["n_steps"] // 4)
        return s

    @property
    def n_memories(self):
        return 2

    def _sample(self, batch_size, rng):
        T, B = self.n_steps, batch_size
        sign = np.where(rng.random(B) < 0.5, -1.0, 1.0)      # (B,) every draw from rng: seeded
        onset = rng.integers(0, T // 4, size=B)                # (B,)
        t = np.arange(T)[:, None]                              # (T, 1)
        cue = (t >= onset) & (t < onset + self.pulse_steps)    # (T, B)
        hold = t >= onset + self.pulse_steps                   # (T, B)
        return TaskBatch(
            inputs=np.where(cue, sign, 0.0)[:, :, None],
            targets=np.where(t >= onset, sign, 0.0)[:, :, None],
            loss_mask=hold[:, :, None].astype(np.float64),
            trial_table=self._trial_table(B, sign=sign.astype(np.int64), pulse_step=onset.astype(np.int64)),
            epochs={"cue": cue, "hold": hold},
            dt=self.dt,
        )

    def _accuracy(self, outputs, batch):
        return np.mean(np.sign(outputs[-1, :, 0]) == batch.trial_table["sign"])

    def _memory_settings(self, factor):
        return {"n_steps": int(round(self.n_steps * factor))}
