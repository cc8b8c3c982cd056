"""Temporal consistency loss (SPEC 4) and its gradient in one pass.

    L_TCR = sum_{t,b,i} e[t,b] (a[t+1,b,i] - a[t,b,i])^2 / n,   n = N sum(e)
    dL/da[s] = (2/n) (e[s-1] (a[s] - a[s-1]) - e[s] (a[s+1] - a[s]))

(terms with s-1 < 0 or s >= T absent). The NumPy form of
:func:`bioplastic.training.loss.tcr_loss` made five passes over the
(T+1, B, N) activity and four temporaries; this makes one, in place.
"""
from numba import njit


@njit(cache=True, nogil=True, fastmath=True)
def _weighted_sq_diff(a, b, w):
    """w * sum_i (a[i] - b[i])^2, vectorised (fastmath: lane-split sum)."""
    acc = 0.0
    for i in range(a.shape[0]):
        d = a[i] - b[i]
        acc += d * d
    return w * acc


@njit(cache=True, nogil=True, error_model="numpy")
def tcr_loss_(act, weights, grad_scale, grad):
    """Return the weighted sum of squared changes; write the scaled gradient.

    Parameters
    ----------
    act : (T+1, B, N) activity a.
    weights : (T, B) epoch weights e, or an empty (0, 0) array for all ones.
    grad_scale : float, the factor c in ``grad = c * 2 * (...)``: pass
        lambda_TCR / n to get lambda_TCR dL_TCR/da.
    grad : (T+1, B, N) output, or an empty (0, 0, 0) array to skip it.

    Returns
    -------
    float, sum_{t,b} e[t,b] ||a[t+1,b] - a[t,b]||^2 (not yet divided by n).
    """
    T1, B, N = act.shape
    has_w = weights.shape[0] > 0
    want_grad = grad.shape[0] > 0
    total = 0.0
    two_c = 2.0 * grad_scale
    for s in range(T1):
        for b in range(B):
            a_s = act[s, b]
            w_prev = 0.0
            if s > 0:
                w_prev = weights[s - 1, b] if has_w else 1.0
                total += _weighted_sq_diff(a_s, act[s - 1, b], w_prev)
            if not want_grad:
                continue
            w_next = 0.0
            if s < T1 - 1:
                w_next = weights[s, b] if has_w else 1.0
            g = grad[s, b]
            cp = two_c * w_prev
            cn = two_c * w_next
            if s > 0 and s < T1 - 1:
                a_p, a_n = act[s - 1, b], act[s + 1, b]
                for i in range(N):
                    g[i] = cp * (a_s[i] - a_p[i]) - cn * (a_n[i] - a_s[i])
            elif s > 0:
                a_p = act[s - 1, b]
                for i in range(N):
                    g[i] = cp * (a_s[i] - a_p[i])
            elif s < T1 - 1:
                a_n = act[s + 1, b]
                for i in range(N):
                    g[i] = -cn * (a_n[i] - a_s[i])
            else:
                for i in range(N):
                    g[i] = 0.0
    return total
