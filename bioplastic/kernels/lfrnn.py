"""Euler forward pass and BPTT adjoint of the leaky firing-rate RNN (LFRNN).

Model (SPEC 1), batch-row convention, for t = 0..T-1::

    x[t+1] = (1 - alpha) x[t] + alpha (r[t] W^T + u[t] W_in^T + b) + s_noise xi[t]
    r[t]   = phi(x[t]),        y[t] = r[t+1] W_out^T + b_out

with ``s_noise = sqrt(alpha) sigma``. The readout is computed in the kernels
too, row by row, and so is its gradient in the adjoint.

Each kernel works on the batch rows ``b0:b1`` for all T steps (the ``_rows_``
functions, compiled ``nogil``), so that :mod:`bioplastic.kernels.threads` can
run disjoint row blocks on several cores with no synchronisation per step.
Per step, a row block costs one BLAS product ``r W^T`` (or ``a W`` backwards)
and fused elementwise loops that LLVM vectorises: input drive (I is small),
leak, noise and the vectorised tanh of :mod:`.activations`.

The rank-one RNN runs on these kernels with ``W = g chi + m n^T / N``.
Kernels take and return plain arrays; allocation and checks happen in
:mod:`bioplastic.networks.lfrnn`.
"""
import numpy as np
from numba import njit

from .activations import N_CONSTANTS, dphi_row_, fill_constants_, phi_row_
from .linalg import vdot_


@njit(cache=True, nogil=True, error_model="numpy")
def lfrnn_forward_rows_(block, b0, b1, x0, inputs, W_inT, bias, noise, noise_scale, WT, alpha, phi_code,
                        W_out, b_out, xs, rs, ys):
    """Integrate T Euler steps in place for the batch rows ``b0:b1``.

    Parameters
    ----------
    block, b0, b1 : int, the block index (unused here) and its row range.
    x0 : (B, N) initial state.
    inputs : (T, B, I) inputs u.
    W_inT : (I, N) transposed input weights, C-contiguous.
    bias : (N,) bias b.
    noise : (T, B, N) standard-normal noise, or an array with
        ``noise.shape[0] == 0`` for a noiseless run.
    noise_scale : float, sqrt(alpha) sigma.
    WT : (N, N) transposed recurrent weights (``W.T``, C-contiguous).
    alpha : float, dt / tau.
    phi_code : int, see ``PHI_CODES``.
    W_out : (O, N) readout weights; b_out : (O,) readout bias.
    xs, rs : (T+1, B, N) outputs: states and rates, index 0 is the start.
    ys : (T, B, O) output: the readout y[t] = r[t+1] W_out^T + b_out.
    """
    T, _, I = inputs.shape
    O = W_out.shape[0]
    N = x0.shape[1]
    has_noise = noise.shape[0] > 0
    leak = 1.0 - alpha
    c = np.empty(N_CONSTANTS, xs.dtype)
    fill_constants_(c)
    # float32: OpenBLAS's sgemm is about 1.5x faster for W (r^T) than for
    # r W^T at these shapes (measured, 16 rows x 100 units), so float32 takes
    # the product transposed and reads its columns; float64 gains nothing.
    transposed = xs.itemsize == 4
    rec = np.empty((b1 - b0, N), dtype=xs.dtype)
    recT = np.empty((N, b1 - b0) if transposed else (0, 0), dtype=xs.dtype)
    W = np.ascontiguousarray(WT.T) if transposed else WT[:0]
    for b in range(b0, b1):
        xs[0, b] = x0[b]
    phi_row_(xs[0, b0:b1].reshape(-1), rs[0, b0:b1].reshape(-1), phi_code, c)
    for t in range(T):
        if transposed:
            np.dot(W, rs[t, b0:b1].T, recT)
        else:
            np.dot(rs[t, b0:b1], WT, rec)
        for b in range(b0, b1):
            h = rec[b - b0]  # becomes the total input r W^T + u W_in^T + b
            if transposed:
                for i in range(N):
                    h[i] = recT[i, b - b0] + bias[i]
            else:
                for i in range(N):
                    h[i] += bias[i]
            for k in range(I):
                uk = inputs[t, b, k]
                wk = W_inT[k]
                for i in range(N):
                    h[i] += uk * wk[i]
            xt = xs[t, b]
            xn = xs[t + 1, b]
            if has_noise:
                nz = noise[t, b]
                for i in range(N):
                    xn[i] = leak * xt[i] + alpha * h[i] + noise_scale * nz[i]
            else:
                for i in range(N):
                    xn[i] = leak * xt[i] + alpha * h[i]
        # phi over the block's rows at once: they are contiguous, and one
        # long vector loop costs less than a call per row.
        phi_row_(xs[t + 1, b0:b1].reshape(-1), rs[t + 1, b0:b1].reshape(-1), phi_code, c)
        # The readout here, not as one BLAS call afterwards: O is small,
        # and a threaded BLAS call would leave OpenBLAS threads spinning
        # against this kernel's threads on the next call.
        for b in range(b0, b1):
            rn = rs[t + 1, b]
            for o in range(O):
                ys[t, b, o] = b_out[o] + vdot_(W_out[o], rn)


@njit(cache=True, nogil=True, error_model="numpy")
def lfrnn_backward_rows_(block, b0, b1, xs, rs, inputs, W, alpha, phi_code, g_r, g_x, g_y, W_out,
                         ax, gW, gW_inT, gb, gW_out, gb_out):
    """Adjoint (reverse) pass for the rows ``b0:b1``, and their share of the
    parameter gradients.

    Recursion, for s = T..0, with ``ax[T+1] = 0``::

        ax[s] = phi'(x[s]) * (g_r[s] + g_y[s-1] W_out + alpha ax[s+1] W) + (1 - alpha) ax[s+1] + g_x[s]

    where the ``g_y`` term (the readout's share: y[s-1] reads r[s]) is absent
    at s = 0. The gradients are sums over these rows, written to index
    ``block`` of the accumulators (the caller sums the blocks)::

        gW = sum_s ax[s]^T r[s-1]      gW_inT = sum_s u[s-1]^T ax[s]      gb = sum_s ax[s]
        gW_out = sum_t g_y[t]^T r[t+1]  gb_out = sum_t g_y[t]

    (s = 1..T; dL/dW = alpha gW, dL/dW_in = alpha gW_inT^T, dL/db = alpha gb.)

    Parameters
    ----------
    block, b0, b1 : int, the block index and its row range.
    xs, rs : (T+1, B, N) states and rates of the forward pass.
    inputs : (T, B, I) inputs of the forward pass.
    W : (N, N) recurrent weights (C-contiguous).
    g_r : (T+1, B, N) other direct partials dL/dr (e.g. TCR), or empty
        (``shape[0] == 0``).
    g_x : (T+1, B, N) direct partials dL/dx, or empty.
    g_y : (T, B, O) dL/dy.
    W_out : (O, N) readout weights.
    ax : (T+1, B, N) output, dL/dx[s].
    gW : (blocks, N, N), gW_inT : (blocks, I, N), gb : (blocks, N),
    gW_out : (blocks, O, N), gb_out : (blocks, O): zeroed accumulators.
    """
    T1, _, N = xs.shape
    I = inputs.shape[2]
    O = W_out.shape[0]
    has_gr = g_r.shape[0] > 0
    has_gx = g_x.shape[0] > 0
    leak = 1.0 - alpha
    D = np.empty((b1 - b0, N), dtype=xs.dtype)  # phi'(x[s]) of the block's rows
    h = np.empty(N, dtype=xs.dtype)
    back = np.empty((b1 - b0, N), dtype=xs.dtype)
    outer = np.empty((N, N), dtype=xs.dtype)
    transposed = xs.itemsize == 4  # see lfrnn_forward_rows_
    backT = np.empty((N, b1 - b0) if transposed else (0, 0), dtype=xs.dtype)
    WT = np.ascontiguousarray(W.T) if transposed else W[:0]
    dW, dW_inT, db, dW_out, db_out = gW[block], gW_inT[block], gb[block], gW_out[block], gb_out[block]
    for s in range(T1 - 1, -1, -1):
        last = s == T1 - 1
        dphi_row_(xs[s, b0:b1].reshape(-1), rs[s, b0:b1].reshape(-1), D.reshape(-1), phi_code)
        if not last:
            if transposed:
                np.dot(WT, ax[s + 1, b0:b1].T, backT)
            else:
                np.dot(ax[s + 1, b0:b1], W, back)
        for b in range(b0, b1):
            # h = every direct partial dL/dr[s] plus the recurrent share
            if last:
                for i in range(N):
                    h[i] = 0.0
            else:
                if transposed:
                    for i in range(N):
                        h[i] = alpha * backT[i, b - b0]
                else:
                    bk = back[b - b0]
                    for i in range(N):
                        h[i] = alpha * bk[i]
            if has_gr:
                gr = g_r[s, b]
                for i in range(N):
                    h[i] += gr[i]
            if s > 0:
                r_s = rs[s, b]
                for o in range(O):
                    go = g_y[s - 1, b, o]
                    wo = W_out[o]
                    gwo = dW_out[o]
                    for i in range(N):
                        h[i] += go * wo[i]
                        gwo[i] += go * r_s[i]
                    db_out[o] += go
            d = D[b - b0]
            a_s = ax[s, b]
            if last:
                for i in range(N):
                    a_s[i] = d[i] * h[i]
            else:
                a_next = ax[s + 1, b]
                for i in range(N):
                    a_s[i] = d[i] * h[i] + leak * a_next[i]
            if has_gx:
                gx = g_x[s, b]
                for i in range(N):
                    a_s[i] += gx[i]
            if s > 0:
                for i in range(N):
                    db[i] += a_s[i]
                for k in range(I):
                    uk = inputs[s - 1, b, k]
                    wk = dW_inT[k]
                    for i in range(N):
                        wk[i] += uk * a_s[i]
        if s > 0:
            # ax[s]^T r[s-1] over the block's rows: one small BLAS product per
            # step. (One large product over all steps afterwards was no
            # faster: OpenBLAS serialises large GEMMs called from two threads
            # at once, and threaded it leaves spinning threads behind.)
            np.dot(ax[s, b0:b1].T, rs[s - 1, b0:b1], outer)
            for i in range(N):
                oi = outer[i]
                wi = dW[i]
                for j in range(N):
                    wi[j] += oi[j]

