"""Does a network hold its task's memories in attractors? Stable fixed points
at the memory input against the number the task needs (SPEC 2 and 5).

:func:`memory_attractors` runs the network on task trials, samples visited
states, finds fixed points of the autonomous map at zero input (the silent
memory periods of the built-in tasks) with
:func:`~bioplastic.analysis.fixed_points.find_fixed_points`, and compares the
number of stable ones with :attr:`Task.n_memories` (flip-flop: ``2**bits``;
evidence accumulation: 2; delayed addition: None, a continuous memory).
"""
from __future__ import annotations

import numpy as np

from .fixed_points import find_fixed_points, sample_states
from .maps import trajectory_states


def memory_attractors(network, params, task, *, n_init=128, batch_size=64, seed=0, settle_steps=1000,
                      inputs=None) -> dict:
    """Count the stable fixed points of a trained network and compare with the task's need.

    Parameters
    ----------
    network, params : the network and its parameters
    task : Task (its :attr:`n_memories` is the number needed)
    n_init : int, visited states that start the search (each also run
        ``settle_steps`` steps forward, see :func:`find_fixed_points`)
    batch_size : int, task trials whose states are sampled
    seed : int, seed of the trials and of the sampling
    inputs : (I,) array or None, the constant input of the map (zeros)

    Returns
    -------
    dict with ``n_stable``, ``n_fixed``, ``n_slow`` (slow points),
    ``n_required`` (None when the task states no count), ``formed``
    (``n_stable >= n_required``, None without a count) and ``seconds``.
    A network whose states diverge on task trials has ``n_stable`` None.
    """
    rng = np.random.default_rng(seed)
    batch = task.sample(int(batch_size), rng)
    required = task.n_memories
    with np.errstate(over="ignore", invalid="ignore"):
        traj = network.forward(params, batch.inputs)
    S = trajectory_states(network, traj)
    if not np.all(np.isfinite(S)):
        return {"n_stable": None, "n_fixed": None, "n_slow": None, "n_required": required, "formed": False,
                "seconds": 0.0}
    X0 = sample_states(S, int(n_init), rng)
    fp = find_fixed_points(network, params, X0, inputs=inputs, settle_steps=int(settle_steps))
    n_stable = fp.n_stable
    return {"n_stable": n_stable, "n_fixed": fp.n_fixed, "n_slow": len(fp) - fp.n_fixed, "n_required": required,
            "formed": None if required is None else bool(n_stable >= required),
            "seconds": float(fp.info["seconds"])}
