"""Forward map and BPTT adjoint of the piecewise-linear RNN (PLRNN).

Model (SPEC 1; Durstewitz 2017), batch-row convention, for t = 0..T-1::

    z[t+1] = A * z[t] + r[t] W^T + drive[t] + noise[t]
    r[t]   = relu(z[t])

with ``A`` the diagonal (auto-regressive) weights stored as a vector,
``drive[t] = u[t] C^T + h`` precomputed by the caller in one BLAS call and
``noise[t] = sqrt(alpha) sigma xi[t]`` already scaled. The readout (from ``z``
or from ``relu(z)``) is applied by the caller.

Kernels take and return plain arrays; allocation and checks happen in
:mod:`bioplastic.networks.plrnn`.
"""
import numpy as np
from numba import njit


@njit(cache=True)
def plrnn_forward_(z0, drive, noise, A, WT, zs, rs):
    """Iterate the PLRNN map T times in place.

    Parameters
    ----------
    z0 : (B, N) initial state.
    drive : (T, B, N) external drive ``u C^T + h``.
    noise : (T, B, N) scaled noise, or an array with ``noise.shape[0] == 0``
        for a noiseless run.
    A : (N,) diagonal of the auto-regressive matrix.
    WT : (N, N) transposed off-diagonal weights (``W.T``, C-contiguous).
    zs, rs : (T+1, B, N) outputs: states z and rates relu(z); index 0 is the
        start.
    """
    T = drive.shape[0]
    B, N = z0.shape
    has_noise = noise.shape[0] > 0
    zs[0] = z0
    for b in range(B):
        for i in range(N):
            v = z0[b, i]
            rs[0, b, i] = v if v > 0 else 0.0
    for t in range(T):
        rec = np.dot(rs[t], WT)
        zt = zs[t]
        zn = zs[t + 1]
        rn = rs[t + 1]
        dr = drive[t]
        if has_noise:
            nz = noise[t]
            for b in range(B):
                for i in range(N):
                    zn[b, i] = A[i] * zt[b, i] + rec[b, i] + dr[b, i] + nz[b, i]
        else:
            for b in range(B):
                for i in range(N):
                    zn[b, i] = A[i] * zt[b, i] + rec[b, i] + dr[b, i]
        for b in range(B):
            for i in range(N):
                v = zn[b, i]
                rn[b, i] = v if v > 0 else 0.0


@njit(cache=True)
def plrnn_backward_(zs, A, W, g_r, g_z, az):
    """Adjoint (reverse) pass: total derivative of the loss w.r.t. each state.

    Recursion, for s = T..0, with ``az[T+1] = 0``::

        az[s] = relu'(z[s]) * (g_r[s] + az[s+1] W) + A * az[s+1] + g_z[s]

    Parameters
    ----------
    zs : (T+1, B, N) states of the forward pass.
    A : (N,) diagonal weights.
    W : (N, N) off-diagonal weights (C-contiguous).
    g_r : (T+1, B, N) direct partial derivatives of the loss w.r.t. rates.
    g_z : (T+1, B, N) direct partials w.r.t. states, or empty
        (shape[0] == 0).
    az : (T+1, B, N) output, dL/dz[s]. Parameter gradients follow from it,
        e.g. ``dL/dW = sum_s az[s+1]^T r[s]`` and
        ``dL/dA = sum_{s,b} az[s+1] * z[s]`` (done by the caller).
    """
    T1, B, N = zs.shape
    has_gz = g_z.shape[0] > 0
    zT = zs[T1 - 1]
    for b in range(B):
        for i in range(N):
            v = g_r[T1 - 1, b, i] if zT[b, i] > 0 else 0.0
            if has_gz:
                v += g_z[T1 - 1, b, i]
            az[T1 - 1, b, i] = v
    for s in range(T1 - 2, -1, -1):
        back = np.dot(az[s + 1], W)
        a_next = az[s + 1]
        a_s = az[s]
        zt = zs[s]
        gr = g_r[s]
        for b in range(B):
            for i in range(N):
                v = A[i] * a_next[b, i]
                if zt[b, i] > 0:
                    v += gr[b, i] + back[b, i]
                a_s[b, i] = v
        if has_gz:
            gz = g_z[s]
            for b in range(B):
                for i in range(N):
                    a_s[b, i] += gz[b, i]
