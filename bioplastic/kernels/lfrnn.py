"""Euler forward pass and BPTT adjoint of the leaky firing-rate RNN (LFRNN).

Model (SPEC 1), batch-row convention, for t = 0..T-1::

    x[t+1] = (1 - alpha) x[t] + alpha (r[t] W^T + u[t] W_in^T + b) + s_noise xi[t]
    r[t]   = phi(x[t]),        y[t] = r[t+1] W_out^T + b_out

with ``s_noise = sqrt(alpha) sigma``. The forward step is one product of the
row ``[r[t], u[t], 1]`` with the packed matrix
``[[alpha W^T, W_out^T], [alpha W_in^T, 0], [alpha b, b_out]]``
(:func:`bioplastic.machinery.panels.forward_panels`), which gives the leaked state and the
previous step's readout in one pass (:func:`bioplastic.machinery.panels.panel_product_`); the
adjoint's ``alpha a W + g_y W_out`` is one product with ``[alpha W; W_out]``
the same way (so do the PLRNN's and the LSTM's forward steps). The drive
inputs ``v[t] = [u[t], 1]`` (:func:`drive_inputs`) serve the gradient
``v^T a`` of every model's adjoint; ``W^T`` and ``V = [W_in^T; b]``
(:func:`forward_weights`) only the BLAS yardstick of
:mod:`bioplastic.bench.parts`.

Each kernel works on the batch rows ``b0:b1`` for all T steps (compiled
``nogil``), so that :mod:`bioplastic.machinery.threads` can run disjoint row
blocks on several cores with no synchronisation per step. A row block of a
trajectory, ``xs[t, b0:b1]``, is a contiguous (rows, N) matrix. The
adjoint's weight-gradient products are BLAS ``gemm`` calls that accumulate
into such blocks in place (:func:`bioplastic.machinery.blas.gemm_`, ``beta = 1``); the
elementwise work is one vectorised loop over the whole block. At N = 100 a
BLAS call or a loop per row costs more in set-up than in arithmetic, so these
choices were measured one by one (docs/benchmarks.md).

The rank-one RNN runs on these kernels with ``W = g chi + m n^T / N``.
Kernels take and return plain arrays; allocation and checks happen in
:mod:`bioplastic.networks.lfrnn`.
"""
import numpy as np
from numba import njit

from .activations import N_CONSTANTS, dphi_row_, fill_constants_, phi_row_
from ..machinery.blas import gemm_
from ..machinery.panels import panel_product_
from ..machinery.small import readout_rows_
from .tcr import tcr_step_grad_, tcr_step_sum_
from ..machinery.vector import prefer_wide_vectors


def drive_inputs(inputs, dtype):
    """``v = [u, 1]``: (T, B, I) inputs with a column of ones appended."""
    T, B, I = inputs.shape
    v = np.empty((T, B, I + 1), dtype=dtype)
    _append_ones(np.ascontiguousarray(inputs, dtype=dtype), v)
    return v


@njit(cache=True, nogil=True)
def _append_ones(u, v):
    # one pass over rows; NumPy's two strided assignments cost 20 us at T=100, B=32
    T, B, I = u.shape
    uf = u.reshape(T * B, I)
    vf = v.reshape(T * B, I + 1)
    one = v.dtype.type(1.0)
    # the tasks' widths (1 to 3) spelt out: an inner loop per row costs 3x more
    if I == 1:
        for r in range(T * B):
            vf[r, 0], vf[r, 1] = uf[r, 0], one
    elif I == 2:
        for r in range(T * B):
            vf[r, 0], vf[r, 1], vf[r, 2] = uf[r, 0], uf[r, 1], one
    elif I == 3:
        for r in range(T * B):
            vf[r, 0], vf[r, 1], vf[r, 2], vf[r, 3] = uf[r, 0], uf[r, 1], uf[r, 2], one
    else:
        _append_ones_any(uf, vf, one)


@njit(cache=True, nogil=True)
def _append_ones_any(uf, vf, one):
    I = uf.shape[1]
    for r in range(uf.shape[0]):
        for k in range(I):
            vf[r, k] = uf[r, k]
        vf[r, I] = one


def forward_weights(W, W_in, b):
    """``(W^T, [W_in^T; b])`` as new C-contiguous arrays, in one compiled call.

    The operands of the BLAS forward step that the packed panels replaced,
    kept for :mod:`bioplastic.bench.parts` to time against (W may be
    rectangular); built with NumPy, ``W.T`` and the stacking took 10 to 20
    us per call.
    """
    M, I = W_in.shape
    WT = np.empty((W.shape[1], W.shape[0]), dtype=W.dtype)
    V = np.empty((I + 1, M), dtype=W.dtype)
    _fill_forward_weights(W, W_in, b, WT, V)
    return WT, V


@njit(cache=True, nogil=True)
def _fill_forward_weights(W, W_in, b, WT, V):
    R, C = W.shape
    tile = 16  # transpose in tiles: both the reads and the writes stay in cache lines
    for i0 in range(0, R, tile):
        for j0 in range(0, C, tile):
            for i in range(i0, min(i0 + tile, R)):
                for j in range(j0, min(j0 + tile, C)):
                    WT[j, i] = W[i, j]
    M, I = W_in.shape
    for j in range(M):
        for k in range(I):
            V[k, j] = W_in[j, k]
        V[I, j] = b[j]


@njit(cache=True, nogil=True, error_model="numpy")
def lfrnn_forward_rows_(block, b0, b1, x0, inputs, P, noise, noise_scale, alpha, phi_code,
                        W_out, b_out, xs, rs, ys):
    """Integrate T Euler steps in place for the batch rows ``b0:b1``.

    Per step and row block (rows b0:b1 of every array)::

        x[t+1] = (1 - alpha) x[t] + [r[t], u[t], 1] B[:, :N]    one pass (panels.panel_product_)
        y[t-1] = [r[t], u[t], 1] B[:, N:]                      in the same pass
        x[t+1] += s_noise xi[t]                                one loop over the block
        r[t+1] = phi(x[t+1])                                   one loop over the block

    with ``B = [[alpha W^T, W_out^T], [alpha W_in^T, 0], [alpha b, b_out]]``
    packed in ``P`` (:func:`bioplastic.machinery.panels.forward_panels`): the readout of step t
    comes out of step t+1's product, and the last one is a row loop
    (:func:`bioplastic.machinery.small.readout_rows_`) after the steps.

    Parameters
    ----------
    block, b0, b1 : int, the block index (unused here) and its row range.
    x0 : (B, N) initial state.
    inputs : (T, B, I) inputs u.
    P : the packed B above, N + I + 1 rows by N + O columns.
    noise : (T, B, N) standard-normal noise, or an array with
        ``noise.shape[0] == 0`` for a noiseless run.
    noise_scale : float, sqrt(alpha) sigma.
    alpha : float, dt / tau.
    phi_code : int, see ``PHI_CODES``.
    W_out : (O, N) readout weights; b_out : (O,) readout bias.
    xs, rs : (T+1, B, N) outputs: states and rates, index 0 is the start.
    ys : (T, B, O) output: the readout y[t] = r[t+1] W_out^T + b_out.
    """
    prefer_wide_vectors()
    T = inputs.shape[0]
    has_noise = noise.shape[0] > 0
    leak = xs.dtype.type(1.0) - alpha  # in the data's dtype: a float literal would promote float32 loops to float64
    c = np.empty(N_CONSTANTS, xs.dtype)
    fill_constants_(c)
    no_outputs = np.empty((0, ys.shape[2]), ys.dtype)  # step 0 reads r[0], whose readout is no output
    for b in range(b0, b1):
        xs[0, b] = x0[b]
    phi_row_(xs[0, b0:b1].reshape(-1), rs[0, b0:b1].reshape(-1), phi_code, c)
    for t in range(T):
        xn = xs[t + 1, b0:b1].reshape(-1)
        panel_product_(rs[t, b0:b1], inputs[t, b0:b1], True, P, xs[t + 1, b0:b1], xs[t, b0:b1], leak,
                       ys[t - 1, b0:b1] if t > 0 else no_outputs)
        if has_noise:
            nz = noise[t, b0:b1].reshape(-1)
            for j in range(xn.shape[0]):
                xn[j] += noise_scale * nz[j]
        phi_row_(xn, rs[t + 1, b0:b1].reshape(-1), phi_code, c)
    if T > 0:
        readout_rows_(ys[T - 1, b0:b1], rs[T, b0:b1], W_out, b_out)


@njit(cache=True, nogil=True, error_model="numpy")
def _add_tcr(act, s, b0, b1, weights, c, out):
    """Add the TCR gradient of step s to the flat ``out`` (unless ``c`` is 0)
    and return the step's weighted sum of squared changes."""
    if c != 0:
        tcr_step_grad_(act, s, b0, b1, weights, c, out, True)
    return tcr_step_sum_(act, s, b0, b1, weights)


@njit(cache=True, nogil=True, error_model="numpy")
def lfrnn_backward_rows_(block, b0, b1, xs, rs, drive_in, PA, alpha, phi_code, g_r, g_x, g_y,
                         tcr_on, tcr_weights, tcr_c, gW, gV, gW_out, gb_out, tcr_sum):
    """Adjoint (reverse) pass for the rows ``b0:b1``, and their share of the
    parameter gradients.

    Recursion for the adjoint ``a[s] = dL/dx[s]``, s = T..0, with ``a[T+1] = 0``::

        h[s] = [a[s+1], g_y[s-1]] [alpha W; W_out] + g_r[s]     (one panel product, loop)
        a[s] = phi'(x[s]) * h[s] + (1 - alpha) a[s+1] + g_x[s]    (loop over the block)

    where the ``g_y`` term (the readout's share: y[s-1] reads r[s]) is absent
    at s = 0. With ``tcr_on`` set, the TCR term of :mod:`.tcr` is added while
    the activity is in cache, to g_r (rates) or g_x (states)::

        c (e[s-1] (a[s] - a[s-1]) - e[s] (a[s+1] - a[s])),    c = 2 lambda_TCR / n

    and the block's weighted sum of squared changes is written to
    ``tcr_sum[block]`` (the caller divides by n). The gradients are sums over
    these rows, accumulated by gemm into index ``block`` of the
    accumulators (the caller sums the blocks)::

        gW = sum_s a[s]^T r[s-1]         gV = sum_s v[s-1]^T a[s]
        gW_out = sum_t g_y[t]^T r[t+1]   gb_out = sum_t g_y[t]

    (s = 1..T; dL/dW = alpha gW, and ``alpha gV`` stacks dL/dW_in^T over
    dL/db, because ``v = [u, 1]``.) Only a[s+1] and a[s] are kept, in two
    (rows, N) buffers that stay in cache: the whole adjoint is never stored.

    Parameters
    ----------
    block, b0, b1 : int, the block index and its row range.
    xs, rs : (T+1, B, N) states and rates of the forward pass.
    drive_in : (T, B, I+1) drive inputs ``[u, 1]`` of the forward pass.
    PA : the packed ``[alpha W; W_out]``, (N + O) x N (:func:`bioplastic.machinery.panels.adjoint_panels`).
    g_r : (T+1, B, N) other direct partials dL/dr (e.g. TCR), or empty
        (``shape[0] == 0``).
    g_x : (T+1, B, N) direct partials dL/dx, or empty.
    g_y : (T, B, O) dL/dy.
    tcr_on : int, 0 (no TCR term), 1 (on the rates) or 2 (on the states).
    tcr_weights : (T, B) epoch mask e, or (0, 0) for all ones.
    tcr_c : float, 2 lambda_TCR / n (0: only the sum is measured).
    gW : (blocks, N, N), gV : (blocks, I+1, N), gW_out : (blocks, O, N),
    gb_out : (blocks, O), tcr_sum : (blocks,): zeroed accumulators.
    """
    prefer_wide_vectors()
    T1, _, N = xs.shape
    O = g_y.shape[2]
    rows = b1 - b0
    has_gr = g_r.shape[0] > 0
    has_gx = g_x.shape[0] > 0
    one = xs.dtype.type(1.0)  # float literals would promote float32 loops to float64
    leak = one - alpha
    H = np.zeros((rows, N), dtype=xs.dtype)
    no_gy = np.zeros((rows, O), dtype=xs.dtype)  # y[s-1] reads r[s] for s >= 1 only
    no_base = np.empty((0, 0), dtype=xs.dtype)
    D = np.empty(rows * N if phi_code != 0 else 0, dtype=xs.dtype)  # phi'(x[s]), tanh inlines it
    h = H.reshape(-1)
    A = np.zeros((2, rows, N), dtype=xs.dtype)  # a[s] in A[s % 2], a[s+1] in the other
    dW, dV, dW_out = gW[block], gV[block], gW_out[block]
    # the block's rows of gb_out and tcr_sum share cache lines with the other
    # blocks': sum here, write once at the end
    db_out = np.zeros(O, dtype=xs.dtype)
    tcr_total = 0.0
    for s in range(T1 - 1, -1, -1):
        a_rows, next_rows = A[s % 2], A[(s + 1) % 2]  # next_rows is a[T+1] = 0 at s = T
        panel_product_(next_rows, g_y[s - 1, b0:b1] if s > 0 else no_gy, False, PA, H, no_base, 0.0, no_base)
        if has_gr:
            gr = g_r[s, b0:b1].reshape(-1)
            for j in range(h.shape[0]):
                h[j] += gr[j]
        if tcr_on == 1:
            tcr_total += _add_tcr(rs, s, b0, b1, tcr_weights, tcr_c, h)
        a_s, a_next = a_rows.reshape(-1), next_rows.reshape(-1)
        r_s = rs[s, b0:b1].reshape(-1)
        if phi_code == 0:  # tanh: phi' = 1 - r^2, fused
            for j in range(a_s.shape[0]):
                a_s[j] = (one - r_s[j] * r_s[j]) * h[j] + leak * a_next[j]
        else:
            dphi_row_(xs[s, b0:b1].reshape(-1), r_s, D, phi_code)
            for j in range(a_s.shape[0]):
                a_s[j] = D[j] * h[j] + leak * a_next[j]
        if has_gx:
            gx = g_x[s, b0:b1].reshape(-1)
            for j in range(a_s.shape[0]):
                a_s[j] += gx[j]
        if tcr_on == 2:
            tcr_total += _add_tcr(xs, s, b0, b1, tcr_weights, tcr_c, a_s)
        if s > 0:
            gemm_(1.0, a_rows, rs[s - 1, b0:b1], 1.0, dW, True, False)
            gemm_(1.0, drive_in[s - 1, b0:b1], a_rows, 1.0, dV, True, False)
            gy = g_y[s - 1, b0:b1]
            gemm_(1.0, gy, rs[s, b0:b1], 1.0, dW_out, True, False)
            for b in range(rows):
                for o in range(O):
                    db_out[o] += gy[b, o]
    for o in range(O):
        gb_out[block, o] = db_out[o]
    tcr_sum[block] = tcr_total
