"""Forward pass and BPTT adjoint of the LSTM cell.

Model (SPEC 1; Hochreiter & Schmidhuber 1997, with forget gate), batch-row
convention, gate blocks ordered ``[i | f | g | o]`` along the last axis of
the 4H pre-activations, for t = 0..T-1::

    pre[t]   = h[t] W_h^T + drive[t]                   (B, 4H)
    i, f, o  = sigmoid(pre_i), sigmoid(pre_f), sigmoid(pre_o)
    g        = tanh(pre_g)
    c[t+1]   = f * c[t] + i * g + noise[t]
    h[t+1]   = o * tanh(c[t+1])

with ``drive[t] = [u[t], 1] V``, ``V = [W_x^T; b]`` (as for the LFRNN) and
``noise[t] = sqrt(alpha) sigma xi[t]`` (private noise enters the cell
state). The forward step's products (recurrent, input drive, bias, and the
previous step's readout) are one packed-panel product, as for the LFRNN
(:mod:`bioplastic.machinery.panels`). The readout ``y[t] = h[t+1] W_out^T + b_out`` is computed in the
kernel, and in the adjoint its gradient with every parameter gradient: no
NumPy product runs between kernels (NumPy's threaded OpenBLAS on the small
per-call products cost more than the whole pass on the 2-core machine).

Both kernels work on the batch rows ``b0:b1`` (compiled ``nogil``), so that
:func:`bioplastic.machinery.threads.run_blocks` runs row blocks on several threads. The gate
nonlinearities are the vectorised tanh of :mod:`.activations`, with
``sigmoid(x) = (1 + tanh(x / 2)) / 2`` (absolute error about 1e-16).

Kernels take and return plain arrays; allocation and checks happen in
:mod:`bioplastic.networks.lstm`.
"""
import numpy as np
from numba import njit

from .activations import N_CONSTANTS, fill_constants_, tanh_row_
from ..machinery.blas import gemm_
from ..machinery.panels import panel_product_
from ..machinery.small import readout_rows_
from ..machinery.vector import prefer_wide_vectors


def gate_scales(H, dtype):
    """Column scales of the packed step matrix: 1/2 on the i, f, o blocks, 1 on g.

    ``sigmoid(x) = (1 + tanh(x / 2)) / 2``; halving the packed weights gives
    exactly half of each pre-activation (a power of 2 commutes with
    rounding), so the kernel needs no halving pass.
    """
    s = np.full(4 * H, 0.5, dtype=dtype)
    s[2 * H:3 * H] = 1.0
    return s


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def lstm_forward_rows_(block, b0, b1, h0, c0, inputs, P, noise, noise_scale, W_out, b_out,
                       hs, cs, gates, ys):
    """Run T LSTM steps in place for the batch rows ``b0:b1``.

    Per step and row block::

        [pre / 2 | y[t-1]] = [h[t], u[t], 1] B           one pass (panels.panel_product_)
        [i | f | g | o] = tanh of pre (halved for i, f, o), then (1 + .) / 2 for i, f, o
        c[t+1] = f * c[t] + i * g (+ s_noise xi[t]);   h[t+1] = o * tanh(c[t+1])

    with ``B = [[S W_h^T, W_out^T], [S W_x^T, 0], [S b, b_out]]`` packed in
    ``P`` (:func:`bioplastic.machinery.panels.forward_panels` with the column scales ``S`` of
    :func:`gate_scales`: "pre / 2" is the i, f, o blocks halved, g whole).
    The readout ``y[t-1] = h[t] W_out^T + b_out`` comes out of step t's
    product, the last one from a row loop after the steps.

    Parameters
    ----------
    block, b0, b1 : int, the block index (unused) and its row range.
    h0, c0 : (B, H) initial hidden and cell states.
    inputs : (T, B, I) inputs u.
    P : the packed B above, H + I + 1 rows by 4H + O columns.
    noise : (T, B, H) standard-normal cell noise, or an array with
        ``noise.shape[0] == 0`` for a noiseless run.
    noise_scale : float, sqrt(alpha) sigma.
    W_out : (O, H), b_out : (O,) readout.
    hs, cs : (T+1, B, H) outputs: hidden and cell states, index 0 the start.
    gates : (T, B, 4H) output: gate activations ``[i | f | g | o]`` of each
        step (after their nonlinearities), kept for the adjoint.
    ys : (T, B, O) output: the readout.
    """
    prefer_wide_vectors()
    T = inputs.shape[0]
    H = h0.shape[1]
    G = 4 * H
    rows = b1 - b0
    has_noise = noise.shape[0] > 0
    half = hs.dtype.type(0.5)
    consts = np.empty(N_CONSTANTS, hs.dtype)
    fill_constants_(consts)
    Pre = np.empty((rows, G), dtype=hs.dtype)  # pre-activations of the block, i, f, o halved
    TC = np.empty(rows * H, dtype=hs.dtype)  # tanh(c[t+1])
    no_base = np.empty((0, 0), hs.dtype)
    no_outputs = np.empty((0, ys.shape[2]), ys.dtype)  # step 0 reads h[0], whose readout is no output
    for b in range(b0, b1):
        for j in range(H):
            hs[0, b, j] = h0[b, j]
            cs[0, b, j] = c0[b, j]
    for t in range(T):
        panel_product_(hs[t, b0:b1], inputs[t, b0:b1], True, P, Pre, no_base, 0.0,
                       ys[t - 1, b0:b1] if t > 0 else no_outputs)
        gt = gates[t, b0:b1]
        tanh_row_(Pre.reshape(-1), gt.reshape(-1), consts)
        for b in range(rows):
            g = gt[b]
            for k in range(2 * H):
                g[k] = half + half * g[k]
            for k in range(3 * H, G):
                g[k] = half + half * g[k]
        for b in range(rows):
            g, ct, cn = gt[b], cs[t, b0 + b], cs[t + 1, b0 + b]
            for j in range(H):
                cn[j] = g[H + j] * ct[j] + g[j] * g[2 * H + j]
            if has_noise:
                nz = noise[t, b0 + b]
                for j in range(H):
                    cn[j] += noise_scale * nz[j]
        tanh_row_(cs[t + 1, b0:b1].reshape(-1), TC, consts)
        for b in range(rows):
            g, hn = gt[b], hs[t + 1, b0 + b]
            for j in range(H):
                hn[j] = g[3 * H + j] * TC[b * H + j]
    if T > 0:
        readout_rows_(ys[T - 1, b0:b1], hs[T, b0:b1], W_out, b_out)


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def lstm_backward_rows_(block, b0, b1, hs, cs, gates, drive_in, PA, g_h, g_c, g_y,
                        gW_h, gV, gW_out, gb_out):
    """Adjoint (reverse) pass for the rows ``b0:b1``, and their share of the
    parameter gradients.

    With ``dh[s]``, ``dc[s]`` the total derivatives of the loss w.r.t.
    ``h[s]``, ``c[s]``, for s = T..1 (``dpre[T] = 0``)::

        dh[s] = g_h[s] + [dpre[s], g_y[s-1]] [W_h; W_out]      (one panel product)
        dc[s] = g_c[s] + f[s] * dc[s+1] + dh[s] o tanh'(c[s])
        dpre[s-1] = [dc[s] g i(1-i) | dc[s] c[s-1] f(1-f) |
                     dc[s] i (1-g^2) | dh[s] tanh(c[s]) o(1-o)]

    and, summed over s = 1..T and these rows into index ``block``::

        gW_h = sum dpre[s-1]^T h[s-1]     gV = sum [u[s-1], 1]^T dpre[s-1]   (W_x^T over b)
        gW_out = sum g_y[s-1]^T h[s]      gb_out = sum g_y[s-1]

    Parameters
    ----------
    block, b0, b1 : int, the block index and its row range.
    hs, cs : (T+1, B, H) hidden and cell states of the forward pass.
    gates : (T, B, 4H) gate activations of the forward pass.
    drive_in : (T, B, I+1) inputs with a column of ones, ``[u, 1]``.
    PA : ``[W_h; W_out]`` packed, (4H + O) x H (:func:`bioplastic.machinery.panels.adjoint_panels`
        with alpha 1).
    g_h : (T+1, B, H) direct partials dL/dh, or empty (``shape[0] == 0``).
    g_c : (T+1, B, H) direct partials dL/dc, or empty.
    g_y : (T, B, O) dL/dy.
    gW_h : (blocks, 4H, H), gV : (blocks, I+1, 4H), gW_out : (blocks, O, H),
    gb_out : (blocks, O): zeroed accumulators.
    """
    prefer_wide_vectors()
    T1, _, H = hs.shape
    T = T1 - 1
    G = 4 * H
    O = g_y.shape[2]
    rows = b1 - b0
    has_gh = g_h.shape[0] > 0
    has_gc = g_c.shape[0] > 0
    one = hs.dtype.type(1.0)
    consts = np.empty(N_CONSTANTS, hs.dtype)
    fill_constants_(consts)
    DP = np.zeros((2, rows, G), dtype=hs.dtype)  # dpre[s-1] in DP[s % 2], dpre[s] in the other
    DH = np.empty((rows, H), dtype=hs.dtype)
    no_base = np.empty((0, 0), dtype=hs.dtype)
    carry = np.zeros((rows, H), dtype=hs.dtype)  # f[s] * dc[s+1]
    TC = np.empty(rows * H, dtype=hs.dtype)
    dWh, dV, dW_out = gW_h[block], gV[block], gW_out[block]
    db_out = np.zeros(O, dtype=hs.dtype)
    for s in range(T, 0, -1):
        cur, nxt = DP[s % 2], DP[(s + 1) % 2]  # nxt is dpre[T] = 0 at s = T
        gy = g_y[s - 1, b0:b1]
        panel_product_(nxt, gy, False, PA, DH, no_base, 0.0, no_base)
        tanh_row_(cs[s, b0:b1].reshape(-1), TC, consts)
        for b in range(rows):
            gt, dp, dh, cr = gates[s - 1, b0 + b], cur[b], DH[b], carry[b]
            c_prev = cs[s - 1, b0 + b]
            if has_gh:
                gh = g_h[s, b0 + b]
                for j in range(H):
                    dh[j] += gh[j]
            if has_gc:
                gc = g_c[s, b0 + b]
                for j in range(H):
                    cr[j] += gc[j]
            for j in range(H):
                ig, fg, gg, og = gt[j], gt[H + j], gt[2 * H + j], gt[3 * H + j]
                tc = TC[b * H + j]
                dc = cr[j] + dh[j] * og * (one - tc * tc)
                dp[j] = dc * gg * ig * (one - ig)
                dp[H + j] = dc * c_prev[j] * fg * (one - fg)
                dp[2 * H + j] = dc * ig * (one - gg * gg)
                dp[3 * H + j] = dh[j] * tc * og * (one - og)
                cr[j] = dc * fg
        gemm_(one, cur, hs[s - 1, b0:b1], one, dWh, True, False)
        gemm_(one, drive_in[s - 1, b0:b1], cur, one, dV, True, False)
        gemm_(one, gy, hs[s, b0:b1], one, dW_out, True, False)
        for b in range(rows):
            for o in range(O):
                db_out[o] += gy[b, o]
    for o in range(O):
        gb_out[block, o] = db_out[o]
