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

The caller negates (gradient convention) and scales. The sums over t are
split into :data:`SUM_CHUNKS` time chunks that run on the kernel threads,
each a BLAS product on one thread.
"""
import numpy as np
from numba import njit

from ..errors import ShapeError
from ..validation import as_array
from ..machinery.blas import gemm_
from ..machinery.threads import n_blocks, run_blocks
from ..machinery.vector import prefer_wide_vectors


#: Fixed number of time chunks the sums are split into: each has its own
#: accumulators, summed in order, so results do not depend on the thread count.
SUM_CHUNKS = 4


@njit(cache=True, nogil=True, error_model="numpy")
def node_perturbation_(chunk, c0, c1, bounds, xi, mod, pre, pre_in, dpre, g, g_in, g_bias, g_diag):
    """Accumulate the modulated eligibilities of time chunks ``c0:c1``.

    Chunk k covers the steps ``bounds[k]:bounds[k+1]`` and writes its own
    accumulators ``g[k]``, ``g_in[k]``, ``g_bias[k]``, ``g_diag[k]`` (the
    caller sums them); :mod:`bioplastic.machinery.threads` runs ranges of chunks in parallel.

    Parameters
    ----------
    chunk : int, unused (the row-block index of :func:`bioplastic.machinery.threads.run_blocks`).
    c0, c1 : int, the chunks to do; bounds : (SUM_CHUNKS + 1,) int64 steps.
    xi : (T, B, N) perturbations of the postsynaptic units.
    mod : (B,) modulation per trial, ``(R_b - Rbase_b) / sigma^2``.
    pre : (T, B, M) presynaptic activity, or ``shape[0] == 0`` to skip ``g``.
    pre_in : (T, B, I) second presynaptic array (inputs), or skip.
    dpre : (T, B, N) same-unit activity for a diagonal weight, or skip.
    g : (chunks, N, M), g_in : (chunks, N, I), g_bias : (chunks, N),
    g_diag : (chunks, N): zeroed accumulators.
    """
    prefer_wide_vectors()
    T, B, N = xi.shape
    one = xi.dtype.type(1.0)
    for k in range(c0, c1):
        t0, t1 = bounds[k], bounds[k + 1]
        if t1 <= t0:
            continue
        rows = (t1 - t0) * B
        w = np.empty((rows, N), dtype=xi.dtype)  # w[(t, b)] = mod[b] xi[t, b]
        gb = g_bias[k]
        for t in range(t0, t1):
            for b in range(B):
                m = mod[b]
                x, wr = xi[t, b], w[(t - t0) * B + b]
                for i in range(N):
                    v = m * x[i]
                    wr[i] = v
                    gb[i] += v
        if pre.shape[0] > 0:
            gemm_(one, w, pre[t0:t1].reshape(rows, pre.shape[2]), one, g[k], True, False)
        if pre_in.shape[0] > 0:
            gemm_(one, w, pre_in[t0:t1].reshape(rows, pre_in.shape[2]), one, g_in[k], True, False)
        if dpre.shape[0] > 0:
            gd = g_diag[k]
            for t in range(t0, t1):
                for b in range(B):
                    wr, dp = w[(t - t0) * B + b], dpre[t, b]
                    for i in range(N):
                        gd[i] += wr[i] * dp[i]


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
    C = SUM_CHUNKS
    g = np.zeros((C, N, p.shape[2] if p.shape[0] else 0), dtype=dtype)
    g_in = np.zeros((C, N, p_in.shape[2] if p_in.shape[0] else 0), dtype=dtype)
    g_bias = np.zeros((C, N), dtype=dtype)
    g_diag = np.zeros((C, N), dtype=dtype)
    bounds = np.array([k * T // C for k in range(C + 1)], dtype=np.int64)
    M = p.shape[2] if p.shape[0] else 0
    threads = n_blocks(C, T * B, N * max(M, 1) // C)
    run_blocks(node_perturbation_, C, threads, bounds, xi, mod, p, p_in, dp, g, g_in, g_bias, g_diag)

    def total(parts):  # in chunk order, whatever thread ran which chunk
        out = parts[0].copy()
        for k in range(1, C):
            out += parts[k]
        return out

    return {"pre": total(g) if pre is not None else None, "pre_in": total(g_in) if pre_in is not None else None,
            "bias": total(g_bias), "diag": total(g_diag) if dpre is not None else None}
