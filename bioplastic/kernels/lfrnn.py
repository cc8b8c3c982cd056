"""Euler forward pass and BPTT adjoint of the leaky firing-rate RNN (LFRNN).

Model (SPEC 1), batch-row convention, for t = 0..T-1::

    x[t+1] = (1 - alpha) x[t] + alpha (r[t] W^T + drive[t]) + noise[t]
    r[t]   = phi(x[t])

with ``drive[t] = u[t] W_in^T + b`` precomputed by the caller in one BLAS
call, and ``noise[t] = sqrt(alpha) sigma xi[t]`` already scaled. The readout
``y[t] = r[t+1] W_out^T + b_out`` is also applied by the caller.

The rank-one RNN runs on these kernels with ``W = g chi + m n^T / N``.
Kernels take and return plain arrays; allocation and checks happen in
:mod:`bioplastic.networks.lfrnn`.
"""
import numpy as np
from numba import njit

from .activations import dphi_, phi_


@njit(cache=True)
def lfrnn_forward_(x0, drive, noise, WT, alpha, phi_code, xs, rs):
    """Integrate T Euler steps in place.

    Parameters
    ----------
    x0 : (B, N) initial state.
    drive : (T, B, N) external drive ``u W_in^T + b``.
    noise : (T, B, N) scaled noise, or an array with ``noise.shape[0] == 0``
        for a noiseless run.
    WT : (N, N) transposed recurrent weights (``W.T``, C-contiguous).
    alpha : float, dt / tau.
    phi_code : int, see ``PHI_CODES``.
    xs, rs : (T+1, B, N) outputs: states and rates, index 0 is the start.
    """
    T = drive.shape[0]
    B, N = x0.shape
    has_noise = noise.shape[0] > 0
    xs[0] = x0
    phi_(xs[0], rs[0], phi_code)
    leak = 1.0 - alpha
    for t in range(T):
        rec = np.dot(rs[t], WT)
        xt = xs[t]
        xn = xs[t + 1]
        dr = drive[t]
        if has_noise:
            nz = noise[t]
            for b in range(B):
                for i in range(N):
                    xn[b, i] = leak * xt[b, i] + alpha * (rec[b, i] + dr[b, i]) + nz[b, i]
        else:
            for b in range(B):
                for i in range(N):
                    xn[b, i] = leak * xt[b, i] + alpha * (rec[b, i] + dr[b, i])
        phi_(xn, rs[t + 1], phi_code)


@njit(cache=True)
def lfrnn_backward_(xs, rs, W, alpha, phi_code, g_r, g_x, ax):
    """Adjoint (reverse) pass: total derivative of the loss w.r.t. each state.

    Recursion, for s = T..0, with ``ax[T+1] = 0``::

        ax[s] = phi'(x[s]) * (g_r[s] + alpha ax[s+1] W) + (1 - alpha) ax[s+1] + g_x[s]

    Parameters
    ----------
    xs, rs : (T+1, B, N) states and rates of the forward pass.
    W : (N, N) recurrent weights (C-contiguous).
    g_r : (T+1, B, N) direct partial derivatives of the loss w.r.t. rates.
    g_x : (T+1, B, N) direct partials w.r.t. states, or empty (shape[0] == 0).
    ax : (T+1, B, N) output, dL/dx[s]. Parameter gradients follow from it as
        ``dL/dW = alpha sum_s ax[s+1]^T r[s]`` (done by the caller with BLAS).
    """
    T1, B, N = xs.shape
    has_gx = g_x.shape[0] > 0
    leak = 1.0 - alpha
    d = np.empty((B, N), dtype=xs.dtype)
    # s = T: no future state.
    dphi_(xs[T1 - 1], rs[T1 - 1], d, phi_code)
    for b in range(B):
        for i in range(N):
            ax[T1 - 1, b, i] = d[b, i] * g_r[T1 - 1, b, i]
            if has_gx:
                ax[T1 - 1, b, i] += g_x[T1 - 1, b, i]
    for s in range(T1 - 2, -1, -1):
        back = np.dot(ax[s + 1], W)
        dphi_(xs[s], rs[s], d, phi_code)
        a_next = ax[s + 1]
        a_s = ax[s]
        gr = g_r[s]
        for b in range(B):
            for i in range(N):
                a_s[b, i] = d[b, i] * (gr[b, i] + alpha * back[b, i]) + leak * a_next[b, i]
        if has_gx:
            gx = g_x[s]
            for b in range(B):
                for i in range(N):
                    a_s[b, i] += gx[b, i]
