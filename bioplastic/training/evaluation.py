"""Held-out evaluations and the memory test of a trained network (SPEC 2).

Both run the network, with the training noise, on trials it never trained
on. ``simulate`` lets a caller run other dynamics than ``network.forward``
(e.g. with the TCR short-term plasticity of a local rule switched on).
"""
from __future__ import annotations

import numpy as np

from .loss import task_loss


def _outputs(network, params, batch, rng, simulate):
    noise = network.draw_noise(rng, batch.T, batch.batch_size)
    with np.errstate(over="ignore", invalid="ignore"):
        if simulate is None:
            return network.forward(params, batch.inputs, noise=noise).outputs
        return simulate(network, params, batch.inputs, noise)


def held_out_evaluation(network, params, task, batch_size: int, rng, simulate=None) -> tuple[float, float]:
    """Task accuracy and task loss (masked MSE) on a fresh batch of ``batch_size`` trials.

    A network whose outputs are not finite scores accuracy 0 and loss inf.
    """
    batch = task.sample(batch_size, rng)
    out = _outputs(network, params, batch, rng, simulate)
    if not np.all(np.isfinite(out)):
        return 0.0, float("inf")
    loss, _ = task_loss(np.asarray(out, dtype=np.float64), batch.targets, batch.loss_mask)
    return float(task.accuracy(out, batch)), float(loss)


#: Default memory test: silent intervals 10 times longer than in training, 128 trials
#: (why 10 and not less: docs/tasks.md, "The memory test").
MEMORY_TEST = {"factor": 10.0, "n_trials": 128}


def memory_test_settings(spec) -> dict | None:
    """``None``/``False``: no test; ``True``: :data:`MEMORY_TEST`; a mapping overrides its keys."""
    from ..errors import ConfigError

    if spec is None or spec is False:
        return None
    if spec is True:
        return dict(MEMORY_TEST)
    if not isinstance(spec, dict):
        raise ConfigError(f"memory_test must be True, False, None or a mapping, got {spec!r}")
    bad = sorted(set(spec) - set(MEMORY_TEST))
    if bad:
        raise ConfigError(f"unknown memory_test setting(s) {bad}; known: {sorted(MEMORY_TEST)}")
    out = {**MEMORY_TEST, **spec}
    if not float(out["factor"]) > 1:
        raise ConfigError(f"memory_test factor must be > 1, got {out['factor']!r}")
    if isinstance(out["n_trials"], bool) or not isinstance(out["n_trials"], int) or out["n_trials"] < 1:
        raise ConfigError(f"memory_test n_trials must be a positive integer, got {out['n_trials']!r}")
    return out


def memory_generalization(network, params, task, rng, *, factor=MEMORY_TEST["factor"],
                          n_trials=MEMORY_TEST["n_trials"], simulate=None) -> dict:
    """The memory test: accuracy on trials whose silent intervals are ``factor`` times longer.

    The trials come from ``task.memory_variant(factor)`` (flip-flop: gaps
    between pulses; delayed addition and evidence accumulation: delays).
    A network scores the task's accuracy on them; ``passes`` compares it
    with the task's criterion.

    Returns
    -------
    dict with ``accuracy`` (the ``memory_generalization`` of a run),
    ``passes``, ``factor``, ``n_steps`` (trial length of the test) and
    ``n_trials``; or, for a task without a memory variant, ``accuracy``
    None and ``skipped`` giving the reason.
    """
    from ..errors import ConfigError

    try:
        long_task = task.memory_variant(factor)
    except ConfigError as exc:
        return {"accuracy": None, "passes": None, "factor": float(factor), "n_trials": int(n_trials),
                "skipped": str(exc)}
    batch = long_task.sample(int(n_trials), rng)
    out = _outputs(network, params, batch, rng, simulate)
    acc = float(long_task.accuracy(out, batch)) if np.all(np.isfinite(out)) else 0.0
    return {"accuracy": acc, "passes": bool(acc >= task.criterion), "factor": float(factor),
            "n_steps": int(long_task.n_steps), "n_trials": int(n_trials)}
