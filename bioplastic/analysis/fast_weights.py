"""What a paired recording would see of TCR short-term plasticity: the fast weights S.

With TCR as short-term synaptic plasticity (SPEC 4) every recurrent synapse
carries, within a trial, a fast component ``S_ij`` on top of its long-term
weight ``W_ij``::

    S[t+1] = (1 - dt/tau_s) S[t] - eta_s (x_i[t+1] - x_i[t]) r_j[t],     S[0] = 0

A paired recording of two connected neurons measures the efficacy change of
one synapse over a trial, relative to its baseline efficacy. The statistics
here summarise ``S`` at the end of held-out trials against ``W`` so that a
protocol can state, as numbers, how large the fast changes are and whether
they depress (``S_ij`` opposite in sign to ``W_ij``, moving the efficacy
toward zero) or potentiate existing synapses, at any point of training.
"""
from __future__ import annotations

import numpy as np


def fast_weight_statistics(network, params, task, stp, *, n_trials=32, seed=0) -> dict:
    """Size and sign of the TCR-STP fast weights at the end of held-out trials.

    Parameters
    ----------
    network, params : a leaky rate network (LFRNN, rank-one, PLRNN) and its parameters
    task : Task, whose trials are run (noise off)
    stp : (eta_s, tau_s), the effective TCR-STP setting
    n_trials : int
    seed : int, seed of the trials

    Returns
    -------
    dict
        ``relative_size``: median_ij |S_ij[T]| / median_ij |W_ij| (S averaged
        over nothing: per trial, then the median over trials);
        ``sign_index``: mean_{b,ij} sign(S_ij) sign(W_ij), from -1 (every fast
        change depresses its synapse) to +1 (every one potentiates);
        ``depressing_fraction``: fraction of (trial, synapse) pairs with
        sign(S_ij) = -sign(W_ij); ``mean_S``: mean_{b,ij} S_ij; ``mean_abs_S``;
        ``mean_abs_W``. All None when the trajectory is not finite.
    """
    from ..rules.context import stp_kernel_args
    from ..rules.models import leaky_form, simulate

    batch = task.sample(int(n_trials), np.random.default_rng(seed))
    inputs = np.ascontiguousarray(batch.inputs, dtype=network.dtype)
    with np.errstate(over="ignore", invalid="ignore"):
        traj = simulate(network, params, inputs, stp=stp_kernel_args(tuple(stp), network.dt))
    S = np.asarray(traj.extra["S_end"], dtype=float)           # (B, N, N)
    W = np.asarray(leaky_form(network, params).W, dtype=float)  # (N, N)
    keys = ("relative_size", "sign_index", "depressing_fraction", "mean_S", "mean_abs_S", "mean_abs_W")
    if not (np.all(np.isfinite(S)) and np.all(np.isfinite(W))):
        return dict.fromkeys(keys)
    off = ~np.eye(W.shape[0], dtype=bool) if network.kind == "plrnn" else np.ones(W.shape, dtype=bool)
    s, w = S[:, off], W[off]                                   # (B, M), (M,)
    scale = float(np.median(np.abs(w)))
    sw = np.sign(s) * np.sign(w)
    return {"relative_size": float(np.median(np.median(np.abs(s), axis=1)) / scale) if scale > 0 else None,
            "sign_index": float(sw.mean()), "depressing_fraction": float(np.mean(sw < 0)),
            "mean_S": float(s.mean()), "mean_abs_S": float(np.abs(s).mean()), "mean_abs_W": float(np.abs(w).mean())}
