"""Temporal consistency loss (SPEC 4) and its gradient, as numba kernels.

    L_TCR = sum_{t,b,i} e[t,b] (a[t+1,b,i] - a[t,b,i])^2 / n,   n = N sum(e)
    dL/da[s] = (2/n) (e[s-1] (a[s] - a[s-1]) - e[s] (a[s+1] - a[s]))

(terms with s-1 < 0 or s >= T absent). The helpers work on one step ``s``
and a row block ``b0:b1`` of the (T+1, B, N) activity, so that the LFRNN's
adjoint kernel can add the TCR term while the rates are in cache instead of
reading a separate gradient array (:mod:`.lfrnn`); :func:`tcr_loss_` runs
them over the whole array for the other models.
"""
from numba import njit

from ..machinery.vector import prefer_wide_vectors


@njit(cache=True, nogil=True, fastmath=True)
def sum_sq_diff_(a, b):
    """sum_i (a[i] - b[i])^2, vectorised (fastmath: the sum is split over
    SIMD lanes, so its rounding depends on the vector width)."""
    prefer_wide_vectors()
    acc = 0.0
    for i in range(a.shape[0]):
        d = a[i] - b[i]
        acc += d * d
    return acc


@njit(cache=True, nogil=True, error_model="numpy")
def tcr_step_sum_(act, s, b0, b1, weights):
    """sum_{b in b0:b1} e[s-1,b] ||a[s,b] - a[s-1,b]||^2 for s >= 1 (0 for s = 0).

    ``weights`` is the (T, B) epoch mask e, or a (0, 0) array for all ones.
    """
    if s == 0:
        return 0.0
    if weights.shape[0] == 0:
        return sum_sq_diff_(act[s, b0:b1].reshape(-1), act[s - 1, b0:b1].reshape(-1))
    total = 0.0
    for b in range(b0, b1):
        w = weights[s - 1, b]
        if w != 0:
            total += w * sum_sq_diff_(act[s, b], act[s - 1, b])
    return total


@njit(cache=True, nogil=True, error_model="numpy")
def tcr_step_grad_(act, s, b0, b1, weights, c, out, accumulate):
    """Write (or add, ``accumulate``) ``c (e[s-1] (a[s] - a[s-1]) - e[s] (a[s+1] - a[s]))``
    for the rows b0:b1 into the flat ``out`` (rows x N).

    ``c`` is 2 lambda_TCR / n; ``weights`` the (T, B) epoch mask or (0, 0).
    """
    prefer_wide_vectors()
    T1, _, N = act.shape
    has_prev, has_next = s > 0, s < T1 - 1
    a_s = act[s, b0:b1].reshape(-1)
    if weights.shape[0] == 0:
        if not accumulate:
            out[:] = 0.0
        if has_prev and has_next:
            a_p, a_n = act[s - 1, b0:b1].reshape(-1), act[s + 1, b0:b1].reshape(-1)
            for j in range(out.shape[0]):
                out[j] += c * ((a_s[j] - a_p[j]) - (a_n[j] - a_s[j]))
        elif has_prev:
            a_p = act[s - 1, b0:b1].reshape(-1)
            for j in range(out.shape[0]):
                out[j] += c * (a_s[j] - a_p[j])
        elif has_next:
            a_n = act[s + 1, b0:b1].reshape(-1)
            for j in range(out.shape[0]):
                out[j] -= c * (a_n[j] - a_s[j])
        return
    zero = out.dtype.type(0.0)  # a float literal would promote float32 loops to float64
    for b in range(b0, b1):
        o = out[(b - b0) * N:(b - b0 + 1) * N]
        if not accumulate:
            o[:] = 0.0
        cp = c * weights[s - 1, b] if has_prev else zero
        cn = c * weights[s, b] if has_next else zero
        r = act[s, b]
        if cp != 0:
            rp = act[s - 1, b]
            for i in range(N):
                o[i] += cp * (r[i] - rp[i])
        if cn != 0:
            rn = act[s + 1, b]
            for i in range(N):
                o[i] -= cn * (rn[i] - r[i])


@njit(cache=True, nogil=True, error_model="numpy")
def tcr_loss_(act, weights, grad_scale, grad):
    """Return the weighted sum of squared changes; write the scaled gradient.

    Parameters
    ----------
    act : (T+1, B, N) activity a, C-contiguous.
    weights : (T, B) epoch weights e, or an empty (0, 0) array for all ones.
    grad_scale : float, the factor c in ``grad = c * 2 * (...)``: pass
        lambda_TCR / n to get lambda_TCR dL_TCR/da.
    grad : (T+1, B, N) output, or an empty (0, 0, 0) array to skip it.

    Returns
    -------
    float, sum_{t,b} e[t,b] ||a[t+1,b] - a[t,b]||^2 (not yet divided by n).
    """
    T1, B, N = act.shape
    want_grad = grad.shape[0] > 0
    total = 0.0
    for s in range(T1):
        total += tcr_step_sum_(act, s, 0, B, weights)
        if want_grad:
            tcr_step_grad_(act, s, 0, B, weights, 2.0 * grad_scale, grad[s].reshape(-1), False)
    return total
