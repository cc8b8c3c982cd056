"""The Euler step's products with one small dimension, as fused row loops.

Besides the N x N recurrent product, an Euler step has two products whose
inner or outer size is the number of inputs or outputs (1 to 4 in the tasks
here): the input drive ``v V`` and the readout ``r W_out^T``. In BLAS each
costs about a microsecond of call and packing overhead per step at N = 100,
more than its arithmetic; written as one loop per row, with the small
dimension unrolled in groups of four (and the leak fused in), they stream
each row once: the forward pass got 12 to 20% faster.

Since 2026-12-02 the LFRNN step does the drive and the readout inside its
packed-panel product (:mod:`.panels`), so :func:`combine_rows_` is no longer
on a training path: it stays as the yardstick that ``bench.parts`` times the
panel product against. :func:`readout_rows_` still gives the LFRNN's last
readout and e-prop's outputs.

The adjoint's small products (``g_y W_out``, ``v^T a``, ``g_y^T r``) stay in
BLAS: as row loops they were 4 to 6 times slower, because either the output
aliases an input or four output rows are written at once, and LLVM then
gives up vectorising (its run-time alias checks exceed their budget).

Both functions work on (rows, N) row blocks in place and compute in the
arrays' dtype (float literals would promote float32 loops to float64).
"""
from numba import njit

from .vector import prefer_wide_vectors


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def combine_rows_(out, base, base_scale, coef, M, coef_scale):
    """``out[b] = base_scale base[b] + coef_scale sum_k coef[b, k] M[k]`` for every row b.

    ``coef`` may have one column fewer than ``M`` has rows: the missing last
    coefficient is then 1, so that ``M``'s last row acts as a bias (the
    inputs ``u`` with ``M = [W_in^T; b]``, with no ``[u, 1]`` copy).

    Parameters
    ----------
    out, base : (rows, N), not overlapping (else the loop runs unvectorised).
    base_scale, coef_scale : float
    coef : (rows, K) or (rows, K - 1); M : (K, N), K >= 1 (any size; groups of four).
    """
    prefer_wide_vectors()
    rows, N = out.shape
    K = M.shape[0]
    Kc = coef.shape[1]  # K, or K - 1 with an implicit trailing coefficient 1
    zero, one = out.dtype.type(0.0), out.dtype.type(1.0)
    for b in range(rows):
        o, cb = out[b], coef[b]
        for g in range(0, K, 4):
            n = min(4, K - g)
            # missing terms of a short group read row g with coefficient 0
            c0 = coef_scale * (cb[g] if g < Kc else one)
            c1 = coef_scale * (cb[g + 1] if g + 1 < Kc else one) if n > 1 else zero
            c2 = coef_scale * (cb[g + 2] if g + 2 < Kc else one) if n > 2 else zero
            c3 = coef_scale * (cb[g + 3] if g + 3 < Kc else one) if n > 3 else zero
            m0, m1 = M[g], M[g + 1 if n > 1 else g]
            m2, m3 = M[g + 2 if n > 2 else g], M[g + 3 if n > 3 else g]
            if g == 0:
                x = base[b]
                for i in range(N):
                    o[i] = base_scale * x[i] + c0 * m0[i] + c1 * m1[i] + c2 * m2[i] + c3 * m3[i]
            else:
                for i in range(N):
                    o[i] += c0 * m0[i] + c1 * m1[i] + c2 * m2[i] + c3 * m3[i]


@njit(cache=True, nogil=True, error_model="numpy", fastmath=True)
def readout_rows_(y, r, W_out, b_out):
    """``y[b, o] = b_out[o] + sum_i r[b, i] W_out[o, i]`` for every row b.

    Three outputs share one pass over a row. ``fastmath`` lets the sums
    split over SIMD lanes (their rounding then depends on the vector width).
    """
    prefer_wide_vectors()
    rows, N = r.shape
    O = W_out.shape[0]
    zero = y.dtype.type(0.0)
    for b in range(rows):
        rb = r[b]
        o = 0
        while o + 3 <= O:
            w0, w1, w2 = W_out[o], W_out[o + 1], W_out[o + 2]
            a0, a1, a2 = zero, zero, zero
            for i in range(N):
                a0 += rb[i] * w0[i]
                a1 += rb[i] * w1[i]
                a2 += rb[i] * w2[i]
            y[b, o], y[b, o + 1], y[b, o + 2] = b_out[o] + a0, b_out[o + 1] + a1, b_out[o + 2] + a2
            o += 3
        while o < O:
            w0 = W_out[o]
            a0 = zero
            for i in range(N):
                a0 += rb[i] * w0[i]
            y[b, o] = b_out[o] + a0
            o += 1
