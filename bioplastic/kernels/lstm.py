"""Forward pass and BPTT adjoint of the LSTM cell.

Model (SPEC 1; Hochreiter & Schmidhuber 1997, with forget gate), batch-row
convention, gate blocks ordered ``[i | f | g | o]`` along the last axis of
the 4H pre-activations, for t = 0..T-1::

    pre[t]   = h[t] W_h^T + drive[t]                   (B, 4H)
    i, f, o  = sigmoid(pre_i), sigmoid(pre_f), sigmoid(pre_o)
    g        = tanh(pre_g)
    c[t+1]   = f * c[t] + i * g + noise[t]
    h[t+1]   = o * tanh(c[t+1])

with ``drive[t] = u[t] W_x^T + b`` precomputed by the caller in one BLAS call
and ``noise[t] = sqrt(alpha) sigma xi[t]`` already scaled (private noise
enters the cell state). The readout ``y[t] = h[t+1] W_out^T + b_out`` is
applied by the caller.

Kernels take and return plain arrays; allocation and checks happen in
:mod:`bioplastic.networks.lstm`.
"""
import numpy as np
from numba import njit


@njit(cache=True)
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@njit(cache=True)
def _tanh(x):
    # one exp instead of libm's tanh (as in activations.phi_); abs error ~3e-16
    e = np.exp(-(abs(x) + abs(x)))
    t = (1.0 - e) / (1.0 + e)
    return t if x >= 0 else -t


@njit(cache=True)
def lstm_forward_(h0, c0, drive, noise, WhT, hs, cs, gates):
    """Run T LSTM steps in place.

    Parameters
    ----------
    h0, c0 : (B, H) initial hidden and cell states.
    drive : (T, B, 4H) external drive ``u W_x^T + b``.
    noise : (T, B, H) scaled cell noise, or an array with
        ``noise.shape[0] == 0`` for a noiseless run.
    WhT : (H, 4H) transposed recurrent weights (``W_h.T``, C-contiguous).
    hs, cs : (T+1, B, H) outputs: hidden and cell states, index 0 the start.
    gates : (T, B, 4H) output: gate activations ``[i | f | g | o]`` of each
        step (after their nonlinearities), kept for the adjoint.
    """
    T = drive.shape[0]
    B, H = h0.shape
    has_noise = noise.shape[0] > 0
    hs[0] = h0
    cs[0] = c0
    for t in range(T):
        pre = np.dot(hs[t], WhT)
        dr = drive[t]
        gt = gates[t]
        ct = cs[t]
        cn = cs[t + 1]
        hn = hs[t + 1]
        for b in range(B):
            for j in range(H):
                ig = _sigmoid(pre[b, j] + dr[b, j])
                fg = _sigmoid(pre[b, H + j] + dr[b, H + j])
                gg = _tanh(pre[b, 2 * H + j] + dr[b, 2 * H + j])
                og = _sigmoid(pre[b, 3 * H + j] + dr[b, 3 * H + j])
                gt[b, j] = ig
                gt[b, H + j] = fg
                gt[b, 2 * H + j] = gg
                gt[b, 3 * H + j] = og
                c = fg * ct[b, j] + ig * gg
                if has_noise:
                    c += noise[t, b, j]
                cn[b, j] = c
                hn[b, j] = og * _tanh(c)


@njit(cache=True)
def lstm_backward_(hs, cs, gates, W_h, g_h, g_c, dpre):
    """Adjoint (reverse) pass down to the gate pre-activations.

    With ``dh[s]``, ``dc[s]`` the total derivatives of the loss w.r.t.
    ``h[s]``, ``c[s]`` and gates of step s-1, for s = T..1::

        dh[s] = g_h[s] + dpre[s] W_h                    (no second term at s=T)
        dc[s] = g_c[s] + f[s] * dc[s+1] + dh[s] o tanh'(c[s])
        dpre[s-1] = [dc[s] g i(1-i) | dc[s] c[s-1] f(1-f) |
                     dc[s] i (1-g^2) | dh[s] tanh(c[s]) o(1-o)]

    Parameters
    ----------
    hs, cs : (T+1, B, H) hidden and cell states of the forward pass.
    gates : (T, B, 4H) gate activations of the forward pass.
    W_h : (4H, H) recurrent weights (C-contiguous).
    g_h : (T+1, B, H) direct partial derivatives of the loss w.r.t. h.
    g_c : (T+1, B, H) direct partials w.r.t. c, or empty (shape[0] == 0).
    dpre : (T, B, 4H) output, dL/dpre[t]. Parameter gradients follow as
        ``dL/dW_h = sum_t dpre[t]^T h[t]``, ``dL/dW_x = sum_t dpre[t]^T u[t]``
        and ``dL/db = sum_{t,b} dpre[t]`` (done by the caller with BLAS).
    """
    T1, B, H = hs.shape
    T = T1 - 1
    has_gc = g_c.shape[0] > 0
    dc_carry = np.zeros((B, H), dtype=hs.dtype)  # f[s] * dc[s+1]
    back = np.zeros((B, H), dtype=hs.dtype)
    for s in range(T, 0, -1):
        if s < T:
            back = np.dot(dpre[s], W_h)
        gt = gates[s - 1]
        dp = dpre[s - 1]
        c_s = cs[s]
        c_prev = cs[s - 1]
        gh = g_h[s]
        for b in range(B):
            for j in range(H):
                ig = gt[b, j]
                fg = gt[b, H + j]
                gg = gt[b, 2 * H + j]
                og = gt[b, 3 * H + j]
                tc = _tanh(c_s[b, j])
                dh = gh[b, j] + back[b, j]
                dc = dc_carry[b, j] + dh * og * (1.0 - tc * tc)
                if has_gc:
                    dc += g_c[s, b, j]
                dp[b, j] = dc * gg * ig * (1.0 - ig)
                dp[b, H + j] = dc * c_prev[b, j] * fg * (1.0 - fg)
                dp[b, 2 * H + j] = dc * ig * (1.0 - gg * gg)
                dp[b, 3 * H + j] = dh * tc * og * (1.0 - og)
                dc_carry[b, j] = dc * fg
