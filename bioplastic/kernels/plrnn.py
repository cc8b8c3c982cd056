"""Forward map and BPTT adjoint of the piecewise-linear RNN (PLRNN).

Model (SPEC 1; Durstewitz 2017), batch-row convention, for t = 0..T-1::

    z[t+1] = A * z[t] + r[t] W^T + drive[t] + noise[t]
    r[t]   = relu(z[t])

with ``A`` the diagonal (auto-regressive) weights stored as a vector,
``drive[t] = [u[t], 1] V`` with ``V = [C^T; h]`` (as for the LFRNN, see
:mod:`.lfrnn`) and ``noise[t] = sqrt(alpha) sigma xi[t]``. The forward
step's products (recurrent, input drive, bias, and for a readout from
relu(z) the previous step's readout) are one packed-panel product, as for
the LFRNN (:mod:`bioplastic.machinery.panels`). The readout ``y[t] = a[t+1] W_out^T + b_out``
(``a = z`` or ``relu(z)``) is computed in the kernel, and its gradient in
the adjoint, together with every parameter
gradient: no NumPy product runs between the kernels. (NumPy's threaded
OpenBLAS on these small products cost more than the whole forward pass on
the 2-core machine: 8 ms per N = 100 forward pass before, 2 ms on one BLAS
thread.)

Both kernels work on the batch rows ``b0:b1`` (compiled ``nogil``), so that
:func:`bioplastic.machinery.threads.run_blocks` runs row blocks on several threads.

Kernels take and return plain arrays; allocation and checks happen in
:mod:`bioplastic.networks.plrnn`.
"""
import numpy as np
from numba import njit

from ..machinery.blas import gemm_
from ..machinery.panels import panel_product_
from ..machinery.small import readout_rows_
from ..machinery.vector import prefer_wide_vectors


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def plrnn_forward_rows_(block, b0, b1, z0, inputs, P, noise, noise_scale, A, read_z, W_out, b_out,
                        zs, rs, ys):
    """Iterate the PLRNN map T times in place, for the batch rows ``b0:b1``.

    Per step and row block (rows b0:b1 of every array)::

        z[t+1] = [r[t], u[t], 1] B[:, :N]                  one pass (panels.panel_product_)
        y[t-1] = [r[t], u[t], 1] B[:, N:]                  in the same pass (readout from r)
        z[t+1] += A * z[t] (+ s_noise xi[t]),  r[t+1] = relu(z[t+1])   one loop over the block
        y[t] = b_out + z[t+1] W_out^T                      one loop per row (readout from z)

    with ``B = [[W^T, W_out^T], [C^T, 0], [h, b_out]]`` packed in ``P``
    (:func:`bioplastic.machinery.panels.forward_panels`; without the ``W_out`` columns when the
    readout is from z, which is no operand of the product). A readout from
    r comes out of the next step's product; the last one is a row loop
    after the steps.

    Parameters
    ----------
    block, b0, b1 : int, the block index (unused) and its row range.
    z0 : (B, N) initial state.
    inputs : (T, B, I) inputs u.
    P : the packed B above, N + I + 1 rows by N + O columns (N with read_z).
    noise : (T, B, N) standard-normal noise, or an array with
        ``noise.shape[0] == 0`` for a noiseless run.
    noise_scale : float, sqrt(alpha) sigma.
    A : (N,) diagonal of the auto-regressive matrix.
    read_z : bool, read the output from z (else from relu(z)).
    W_out : (O, N), b_out : (O,) readout.
    zs, rs : (T+1, B, N) outputs: states z and rates relu(z); index 0 is the
        start.
    ys : (T, B, O) output: the readout.
    """
    prefer_wide_vectors()
    T = inputs.shape[0]
    N = z0.shape[1]
    has_noise = noise.shape[0] > 0
    zero = zs.dtype.type(0.0)
    no_base = np.empty((0, 0), zs.dtype)
    no_outputs = np.empty((0, ys.shape[2]), ys.dtype)
    for b in range(b0, b1):
        for i in range(N):
            v = z0[b, i]
            zs[0, b, i] = v
            rs[0, b, i] = v if v > zero else zero
    for t in range(T):
        panel_product_(rs[t, b0:b1], inputs[t, b0:b1], True, P, zs[t + 1, b0:b1], no_base, 0.0,
                       ys[t - 1, b0:b1] if t > 0 and not read_z else no_outputs)
        for b in range(b0, b1):
            zt, zn, rn = zs[t, b], zs[t + 1, b], rs[t + 1, b]
            if has_noise:
                nz = noise[t, b]
                for i in range(N):
                    v = A[i] * zt[i] + zn[i] + noise_scale * nz[i]
                    zn[i] = v
                    rn[i] = v if v > zero else zero
            else:
                for i in range(N):
                    v = A[i] * zt[i] + zn[i]
                    zn[i] = v
                    rn[i] = v if v > zero else zero
        if read_z:
            readout_rows_(ys[t, b0:b1], zs[t + 1, b0:b1], W_out, b_out)
    if T > 0 and not read_z:
        readout_rows_(ys[T - 1, b0:b1], rs[T, b0:b1], W_out, b_out)


@njit(cache=True, nogil=True, error_model="numpy")
def plrnn_backward_rows_(block, b0, b1, zs, rs, drive_in, A, W, read_z, g_r, g_z, g_y, W_out,
                         gA, gW, gV, gW_out, gb_out):
    """Adjoint (reverse) pass for the rows ``b0:b1``, and their share of the
    parameter gradients.

    Recursion for ``az[s] = dL/dz[s]``, s = T..0, with ``az[T+1] = 0`` and
    ``d[s] = g_y[s-1] W_out`` the readout's share (absent at s = 0)::

        az[s] = relu'(z[s]) * (g_r[s] + az[s+1] W + d[s]) + A * az[s+1] + g_z[s]

    for a readout from relu(z); from z, ``d[s]`` is added outside the
    ``relu'`` factor. Gradients, sums over s = 1..T and these rows,
    accumulated into index ``block`` (the caller sums the blocks)::

        gW = sum az[s]^T r[s-1]        gV = sum [u[s-1], 1]^T az[s]   (C^T over h)
        gA = sum az[s] * z[s-1]        gW_out = sum g_y[s-1]^T a[s],  gb_out = sum g_y

    Only ``az[s]`` and ``az[s+1]`` are kept, in two (rows, N) buffers.

    Parameters
    ----------
    block, b0, b1 : int, the block index and its row range.
    zs, rs : (T+1, B, N) states and rates of the forward pass.
    drive_in : (T, B, I+1) inputs with a column of ones, ``[u, 1]``.
    A : (N,) diagonal weights; W : (N, N) off-diagonal weights (C-contiguous).
    read_z : bool, the output was read from z (else from relu(z)).
    g_r : (T+1, B, N) direct partials dL/dr, or empty (``shape[0] == 0``).
    g_z : (T+1, B, N) direct partials dL/dz, or empty.
    g_y : (T, B, O) dL/dy; W_out : (O, N) readout weights.
    gA : (blocks, N), gW : (blocks, N, N), gV : (blocks, I+1, N),
    gW_out : (blocks, O, N), gb_out : (blocks, O): zeroed accumulators.
    """
    prefer_wide_vectors()
    T1, _, N = zs.shape
    O = W_out.shape[0]
    rows = b1 - b0
    has_gr = g_r.shape[0] > 0
    has_gz = g_z.shape[0] > 0
    zero = zs.dtype.type(0.0)
    one = zs.dtype.type(1.0)
    H = np.empty((rows, N), dtype=zs.dtype)
    h = H.reshape(-1)
    Abuf = np.zeros((2, rows, N), dtype=zs.dtype)  # az[s] in Abuf[s % 2], az[s+1] in the other
    dW, dV, dW_out, dA = gW[block], gV[block], gW_out[block], gA[block]
    db_out = np.zeros(O, dtype=zs.dtype)  # summed here, written once (shared cache lines)
    for s in range(T1 - 1, -1, -1):
        a_rows, next_rows = Abuf[s % 2], Abuf[(s + 1) % 2]  # next_rows is az[T+1] = 0 at s = T
        gemm_(one, next_rows, W, zero, H)
        if has_gr:
            gr = g_r[s, b0:b1].reshape(-1)
            for j in range(h.shape[0]):
                h[j] += gr[j]
        if s > 0 and not read_z:
            gemm_(one, g_y[s - 1, b0:b1], W_out, one, H)
        a_s, a_next = a_rows.reshape(-1), next_rows.reshape(-1)
        z_s = zs[s, b0:b1].reshape(-1)
        for b in range(rows):
            for i in range(N):
                j = b * N + i
                v = A[i] * a_next[j]
                a_s[j] = v + h[j] if z_s[j] > zero else v
        if has_gz:
            gz = g_z[s, b0:b1].reshape(-1)
            for j in range(a_s.shape[0]):
                a_s[j] += gz[j]
        if s > 0 and read_z:
            gemm_(one, g_y[s - 1, b0:b1], W_out, one, a_rows)
        if s > 0:
            gemm_(one, a_rows, rs[s - 1, b0:b1], one, dW, True, False)
            gemm_(one, drive_in[s - 1, b0:b1], a_rows, one, dV, True, False)
            z_prev = zs[s - 1, b0:b1]
            for b in range(rows):
                ab, zb = a_rows[b], z_prev[b]
                for i in range(N):
                    dA[i] += ab[i] * zb[i]
            gy = g_y[s - 1, b0:b1]
            gemm_(one, gy, zs[s, b0:b1] if read_z else rs[s, b0:b1], one, dW_out, True, False)
            for b in range(rows):
                for o in range(O):
                    db_out[o] += gy[b, o]
    for o in range(O):
        gb_out[block, o] = db_out[o]
