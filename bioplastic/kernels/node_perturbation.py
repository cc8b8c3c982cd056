"""Reward-modulated eligibility sums of node perturbation (SPEC 3).

Node perturbation (Fiete & Seung 2006) adds noise ``xi_i[t]`` (std sigma) to
the input current of unit i. The eligibility of synapse (i, j) is the
perturbation times the presynaptic activity, ``e_ij = sum_t xi_i[t] pre_j[t]``,
and the update multiplies it by the trial's reward relative to a baseline::

    dW_ij = eta (R - R_baseline) e_ij / sigma^2

With one perturbation per trial b and ``mod[b] = (R_b - Rbase_b) / sigma^2``
the kernel forms, in one pass and one matrix product per presynaptic array::

    g_ij    = sum_{t,b} mod[b] xi[t,b,i] pre[t,b,j]       (W, W_in, W_out)
    g_i     = sum_{t,b} mod[b] xi[t,b,i]                  (biases: pre = 1)
    gdiag_i = sum_{t,b} mod[b] xi[t,b,i] dpre[t,b,i]      (diagonal, PLRNN A)

The caller negates (gradient convention) and scales.
"""
import numpy as np
from numba import njit

from ..errors import ShapeError
from ..validation import as_array


@njit(cache=True)
def node_perturbation_(xi, mod, pre, pre_in, dpre, g, g_in, g_bias, g_diag):
    """Accumulate the modulated eligibilities into ``g``, ``g_in``, ``g_bias``, ``g_diag``.

    Parameters
    ----------
    xi : (T, B, N) perturbations of the postsynaptic units.
    mod : (B,) modulation per trial, ``(R_b - Rbase_b) / sigma^2``.
    pre : (T, B, M) presynaptic activity, or ``shape[0] == 0`` to skip ``g``.
    pre_in : (T, B, I) second presynaptic array (inputs), or skip.
    dpre : (T, B, N) same-unit activity for a diagonal weight, or skip.
    g : (N, M), g_in : (N, I), g_bias : (N,), g_diag : (N,) accumulators.
    """
    T, B, N = xi.shape
    w = np.empty((T * B, N), dtype=xi.dtype)
    for t in range(T):
        for b in range(B):
            m = mod[b]
            row = t * B + b
            for i in range(N):
                v = m * xi[t, b, i]
                w[row, i] = v
                g_bias[i] += v
    if pre.shape[0] > 0:
        g += np.dot(w.T, pre.reshape(T * B, pre.shape[2]))
    if pre_in.shape[0] > 0:
        g_in += np.dot(w.T, pre_in.reshape(T * B, pre_in.shape[2]))
    if dpre.shape[0] > 0:
        for t in range(T):
            for b in range(B):
                row = t * B + b
                for i in range(N):
                    g_diag[i] += w[row, i] * dpre[t, b, i]


def node_perturbation_sums(xi, modulation, pre=None, pre_in=None, dpre=None):
    """Modulated eligibility sums of node perturbation, checked.

    Parameters
    ----------
    xi : (T, B, N) perturbation of the units (its std is sigma)
    modulation : (B,) ``(R_b - Rbase_b) / sigma^2`` per trial; must be finite
    pre : (T, B, M) presynaptic activity or None
    pre_in : (T, B, I) a second presynaptic array or None
    dpre : (T, B, N) same-unit activity for a diagonal weight or None

    Returns
    -------
    dict with ``pre`` (N, M), ``pre_in`` (N, I), ``bias`` (N,) and ``diag``
    (N,) sums (None for arrays not given).

    Raises
    ------
    ShapeError
        On mismatched shapes or a non-finite modulation (reward).
    """
    xi = np.ascontiguousarray(xi)
    if xi.ndim != 3:
        raise ShapeError(f"xi must have shape (T, B, N), got {xi.shape}")
    dtype = xi.dtype
    T, B, N = xi.shape
    mod = as_array("reward modulation (R - R_baseline) / sigma^2", modulation, dtype, shape=(B,))
    empty = np.zeros((0, 0, 0), dtype=dtype)

    def prep(name, a, last=None):
        if a is None:
            return empty
        a = np.ascontiguousarray(a, dtype=dtype)
        if a.ndim != 3 or a.shape[:2] != (T, B) or (last is not None and a.shape[2] != last):
            raise ShapeError(f"{name} must have shape ({T}, {B}, {'M' if last is None else last}), got {a.shape}")
        return a

    p, p_in, dp = prep("pre", pre), prep("pre_in", pre_in), prep("dpre", dpre, N)
    g = np.zeros((N, p.shape[2] if p.shape[0] else 0), dtype=dtype)
    g_in = np.zeros((N, p_in.shape[2] if p_in.shape[0] else 0), dtype=dtype)
    g_bias = np.zeros(N, dtype=dtype)
    g_diag = np.zeros(N, dtype=dtype)
    node_perturbation_(xi, mod, p, p_in, dp, g, g_in, g_bias, g_diag)
    return {"pre": g if pre is not None else None, "pre_in": g_in if pre_in is not None else None,
            "bias": g_bias, "diag": g_diag if dpre is not None else None}
