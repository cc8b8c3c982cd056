"""e-prop (RFLO for rate units) fused with the Euler forward pass (SPEC 3).

Network in the leaky form of :mod:`bioplastic.kernels.stp` (LFRNN, rank-one
RNN, PLRNN), optionally with TCR short-term plasticity ``S``::

    x[t+1] = leak * x[t] + gain * (r[t] (W + S[t])^T + u[t] W_in^T + b) + noise[t]
    y[t]   = a[t+1] W_out^T + b_out,      a = r (rates) or x (``read_states``)

Eligibility traces run forward in time with each unit's own leak, dropping
the dependence through other units (Murray 2019; Bellec et al. 2020)::

    eps_ij[t+1]  = leak_i eps_ij[t]  + gain r_j[t]        (recurrent W)
    epsu_ij[t+1] = leak_i epsu_ij[t] + gain u_j[t]        (input W_in)
    epsb_i[t+1]  = leak_i epsb_i[t]  + gain               (bias b)
    epsa_i[t+1]  = leak_i epsa_i[t]  + x_i[t]             (leak A, PLRNN)

The learning signal of unit i after step t broadcasts the output error
through feedback weights ``F`` (O, N) (``W_out``: symmetric e-prop; fixed
random: random e-prop)::

    e[t]   = dL/dy[t] = cmask[t] * (y[t] - y*[t])
    L_i[t] = sum_k e_k[t] F_ki * phi'(x_i[t+1])        (no phi' when reading x)
    dW_ij  = sum_{t,b} L_i[t] eps_ij[t+1],  likewise W_in, b, A
    dW_out = sum_{t,b} e[t] a[t+1]^T,  db_out = sum_{t,b} e[t]   (exact)

The result is in gradient convention (the descent direction of the task
loss). When every unit has the same leak (LFRNN), ``eps_ij = eps_j`` is a
presynaptic trace (B, N) and the sums over (t, b) are flushed to BLAS every
``K`` steps from chunk buffers; otherwise (PLRNN) traces are per synapse,
(B, N, N). Working memory never depends on T: only the optional ``outputs``
buffer (T, B, O) does.
"""
import numpy as np
from numba import njit

from ..errors import ShapeError
from .activations import N_CONSTANTS, dphi_row_, fill_constants_, phi_row_
from ..machinery.blas import gemm_
from ..machinery.panels import pack_columns, panel_product_
from ..machinery.small import readout_rows_
from .stp import _stp_matvec, stp_step_
from .tcr import sum_sq_diff_
from ..machinery.threads import n_blocks, run_blocks
from ..machinery.vector import prefer_wide_vectors

#: Steps per flush of the chunk buffers (uniform-leak path).
CHUNK = 16


@njit(cache=True, nogil=True, error_model="numpy")
def eprop_(b0, x0, inputs, targets, cmask, noise, P, bias, W_out, b_out, F, leak, gain, phi_code,
           read_states, per_synapse, eta_s, decay_s, zero_diag, S, outputs,
           E, Eu, Eb, Ea, Lbuf, Rbuf, Ubuf, gW, gWin, gb, gWout, gbout, ga, stats):
    """Forward pass with e-prop traces; accumulates the gradient estimates.

    Works on the B trials ``b0:b0+B`` of the (T, B_all, .) arrays ``inputs``,
    ``targets``, ``cmask``, ``noise`` and ``outputs``; every other array holds
    only those trials (or none), so row blocks need no copies and memory stays
    independent of T.

    Parameters
    ----------
    b0 : int, first trial of this block in the full batch.
    x0 : (B, N) initial state.
    inputs : (T, B, I) inputs u.
    targets : (T, B, O) targets y*.
    cmask : (T, B, O) loss weights: dL/dy = cmask * (y - y*) (``2 m / sum(m)``).
    noise : (T, B, N) scaled noise or ``shape[0] == 0``.
    P : ``[W^T; W_in^T]``, (N + I) x N, packed by :func:`bioplastic.machinery.panels.pack_columns`:
        the drive ``r W^T + u W_in^T`` is one panel product. bias : (N,).
    W_out : (O, N), b_out : (O,) readout.
    F : (O, N) feedback weights carrying the error to the units.
    leak : (N,), gain : float, phi_code : int (see module docstring).
    read_states : bool, readout from x instead of phi(x).
    per_synapse : bool, traces per synapse (unit-dependent leak).
    eta_s, decay_s, zero_diag, S : STP as in :func:`leaky_stp_forward_`
        (``S.shape[0] == 0``: no STP); ``S`` holds ``S[T]`` on exit.
    outputs : (T, B, O) buffer for y, or ``shape[0] == 0`` to skip.
    E : (B, N, N) per-synapse or (B, 1, N) presynaptic recurrent traces (zeros).
    Eu : (B, N, I) or (B, 1, I) input traces; Eb : (N,) bias traces;
    Ea : (B, N) leak traces (``shape[0] == 0`` to skip the leak gradient).
    Lbuf, Rbuf : (CHUNK*B, N), Ubuf : (CHUNK*B, I) chunk buffers (uniform path).
    gW, gWin, gb, gWout, gbout, ga : gradient accumulators (zeros on entry).
    stats : (2,) out: masked squared error ``0.5 sum cmask (y-y*)^2`` (the
        task loss) and ``sum (r[t+1] - r[t])^2``.
    """
    prefer_wide_vectors()
    T = inputs.shape[0]
    B, N = x0.shape
    O = W_out.shape[0]
    I = inputs.shape[2]
    has_noise = noise.shape[0] > 0
    has_stp = S.shape[0] > 0
    rec_out = outputs.shape[0] > 0
    do_leak = Ea.shape[0] > 0
    one = x0.dtype.type(1.0)  # float literals would promote float32 loops to float64
    lk = leak[0]
    c = np.empty(N_CONSTANTS, x0.dtype)
    fill_constants_(c)
    x = x0.copy()
    r = np.empty((B, N), dtype=x0.dtype)
    phi_row_(x.reshape(-1), r.reshape(-1), phi_code, c)
    xn = np.empty_like(x)
    rn = np.empty_like(x)
    rec = np.empty_like(x)
    d = np.empty_like(x)
    L = np.empty_like(x)
    srec = np.zeros_like(x)
    y = np.empty((B, O), dtype=x0.dtype)
    err = np.empty((B, O), dtype=x0.dtype)
    if has_stp:
        _stp_matvec(S, r, srec)
    no_base = np.empty((0, 0), dtype=x0.dtype)
    k = 0
    for t in range(T):
        # x[t+1] = leak x[t] + gain (r (W + S)^T + u W_in^T + b) + noise
        ut = inputs[t, b0:b0 + B]
        panel_product_(r, ut, False, P, rec, no_base, 0.0, no_base)
        for b in range(B):
            xr, xo, rr = x[b], xn[b], rec[b]
            if has_stp:
                sr = srec[b]
                for i in range(N):
                    xo[i] = leak[i] * xr[i] + gain * (rr[i] + sr[i] + bias[i])
            else:
                for i in range(N):
                    xo[i] = leak[i] * xr[i] + gain * (rr[i] + bias[i])
            if has_noise:
                nz = noise[t, b0 + b]
                for i in range(N):
                    xo[i] += nz[i]
        phi_row_(xn.reshape(-1), rn.reshape(-1), phi_code, c)
        # eligibility traces eps[t+1] from eps[t] and the activity at step t
        if per_synapse:
            for b in range(B):
                for i in range(N):
                    li = leak[i]
                    for j in range(N):
                        E[b, i, j] = li * E[b, i, j] + gain * r[b, j]
                    for j in range(I):
                        Eu[b, i, j] = li * Eu[b, i, j] + gain * ut[b, j]
        else:
            Ef, rf = E.reshape(-1), r.reshape(-1)
            for j in range(Ef.shape[0]):
                Ef[j] = lk * Ef[j] + gain * rf[j]
            for b in range(B):
                for j in range(I):
                    Eu[b, 0, j] = lk * Eu[b, 0, j] + gain * ut[b, j]
        for i in range(N):
            Eb[i] = leak[i] * Eb[i] + gain
        if do_leak:
            for b in range(B):
                for i in range(N):
                    Ea[b, i] = leak[i] * Ea[b, i] + x[b, i]
        # readout, error, exact readout gradient
        read = xn if read_states else rn
        readout_rows_(y, read, W_out, b_out)
        for b in range(B):
            for o in range(O):
                acc = y[b, o]
                e = cmask[t, b0 + b, o] * (acc - targets[t, b0 + b, o])
                err[b, o] = e
                stats[0] += 0.5 * e * (acc - targets[t, b0 + b, o])
                gbout[o] += e
                if rec_out:
                    outputs[t, b0 + b, o] = acc
        gemm_(one, err, read, one, gWout, True, False)
        # learning signal L = (err F) * phi'(x[t+1])
        gemm_(one, err, F, 0.0, L)
        if not read_states:
            dphi_row_(xn.reshape(-1), rn.reshape(-1), d.reshape(-1), phi_code)
            Lf, df = L.reshape(-1), d.reshape(-1)
            for j in range(Lf.shape[0]):
                Lf[j] *= df[j]
        # accumulate L * eps
        for b in range(B):
            Lb = L[b]
            for i in range(N):
                gb[i] += Lb[i] * Eb[i]
        if do_leak:
            for b in range(B):
                for i in range(N):
                    ga[i] += L[b, i] * Ea[b, i]
        if per_synapse:
            for b in range(B):
                for i in range(N):
                    li = L[b, i]
                    if li != 0.0:
                        for j in range(N):
                            gW[i, j] += li * E[b, i, j]
                        for j in range(I):
                            gWin[i, j] += li * Eu[b, i, j]
        else:
            base = k * B
            Lbuf[base:base + B] = L
            Rbuf[base:base + B] = E[:, 0, :]
            Ubuf[base:base + B] = Eu[:, 0, :]
            k += 1
            if k * B == Lbuf.shape[0]:
                gemm_(one, Lbuf, Rbuf, one, gW, True, False)
                if I > 0:
                    gemm_(one, Lbuf, Ubuf, one, gWin, True, False)
                k = 0
        # short-term plasticity and the TCR measure
        if has_stp:
            stp_step_(S, x, xn, r, rn, eta_s, decay_s, zero_diag, srec)
        stats[1] += sum_sq_diff_(rn.reshape(-1), r.reshape(-1))
        x, xn = xn, x
        r, rn = rn, r
    if not per_synapse and k > 0:
        n = k * B
        gemm_(one, Lbuf[:n], Rbuf[:n], one, gW, True, False)
        if I > 0:
            gemm_(one, Lbuf[:n], Ubuf[:n], one, gWin, True, False)


def eprop_leaky(x0, inputs, targets, cmask, noise, W_in, bias, W, W_out, b_out, feedback, leak, gain,
                phi_code, *, read_states=False, leak_grad=False, eta_s=0.0, decay_s=1.0, stp=False,
                zero_diag=False, record_outputs=True):
    """Run :func:`eprop_` on checked arrays and return its results.

    Parameters
    ----------
    x0 : (B, N); inputs : (T, B, I); targets, cmask : (T, B, O)
    noise : (T, B, N) scaled noise or None
    W_in : (N, I); bias : (N,); W : (N, N); W_out : (O, N); b_out : (O,)
    feedback : (O, N) feedback weights F (``W_out`` for symmetric e-prop)
    leak : (N,) or float; gain : float; phi_code : int
    read_states : bool, readout from the states
    leak_grad : bool, also estimate the gradient of a per-unit leak (PLRNN A)
    eta_s, decay_s, stp, zero_diag : TCR short-term plasticity (``stp`` on/off)
    record_outputs : bool, keep the outputs y (T, B, O)

    Returns
    -------
    dict with ``W``, ``W_in``, ``b``, ``W_out``, ``b_out`` (and ``leak`` when
    ``leak_grad``) gradient estimates, ``outputs`` (or None), ``S_end``
    (B, N, N) or None, ``task_loss`` and ``tcr_sum`` (sum of squared rate
    changes).
    """
    x0 = np.ascontiguousarray(x0)
    dtype = x0.dtype
    B, N = x0.shape
    inputs = np.ascontiguousarray(inputs, dtype=dtype)
    T, _, I = inputs.shape
    O = np.shape(W_out)[0]
    targets = np.ascontiguousarray(targets, dtype=dtype)
    cmask = np.ascontiguousarray(cmask, dtype=dtype)
    for name, arr, shape in (("inputs", inputs, (T, B, I)), ("targets", targets, (T, B, O)),
                             ("cmask", cmask, (T, B, O)), ("W_in", np.shape(W_in), (N, I)),
                             ("W", np.shape(W), (N, N)), ("W_out", np.shape(W_out), (O, N)),
                             ("feedback", np.shape(feedback), (O, N))):
        got = arr.shape if isinstance(arr, np.ndarray) else arr
        if tuple(got) != shape:
            raise ShapeError(f"{name} must have shape {shape}, got {tuple(got)}")
    leak = np.ascontiguousarray(np.broadcast_to(np.asarray(leak, dtype=dtype), (N,)))
    per_synapse = bool(np.any(leak != leak[0]))
    empty3 = np.zeros((0, 0, 0), dtype=dtype)
    empty2 = np.zeros((0, 0), dtype=dtype)
    noise = empty3 if noise is None else np.ascontiguousarray(noise, dtype=dtype)
    if noise.shape[0] and noise.shape != (T, B, N):
        raise ShapeError(f"noise must have shape ({T}, {B}, {N}), got {noise.shape}")
    S = np.zeros((B, N, N), dtype=dtype) if stp else empty3
    outputs = np.empty((T, B, O), dtype=dtype) if record_outputs else empty3
    if per_synapse:
        E, Eu = np.zeros((B, N, N), dtype=dtype), np.zeros((B, N, I), dtype=dtype)
    else:
        E, Eu = np.zeros((B, 1, N), dtype=dtype), np.zeros((B, 1, I), dtype=dtype)
    Ea = np.zeros((B, N), dtype=dtype) if leak_grad else empty2
    c = lambda a: np.ascontiguousarray(a, dtype=dtype)  # noqa: E731
    weights = (pack_columns(np.vstack([np.asarray(W, dtype=dtype).T, np.asarray(W_in, dtype=dtype).T])), c(bias),
               c(W_out), c(b_out), c(feedback), leak,
               dtype.type(gain), int(phi_code), bool(read_states), per_synapse, dtype.type(eta_s),
               dtype.type(decay_s), bool(zero_diag))
    # Trials are independent: row blocks run on the kernel threads, each
    # with its own traces, buffers and gradient sums (summed below).
    blocks = n_blocks(B, T, N * N)
    parts = [None] * blocks

    def block(k, b0, b1):
        rows = slice(b0, b1)
        nb = b1 - b0
        if per_synapse:
            Lbuf = Rbuf = Ubuf = empty2
        else:
            Lbuf, Rbuf = np.zeros((CHUNK * nb, N), dtype=dtype), np.zeros((CHUNK * nb, N), dtype=dtype)
            Ubuf = np.zeros((CHUNK * nb, I), dtype=dtype)
        g = {"W": np.zeros((N, N), dtype=dtype), "W_in": np.zeros((N, I), dtype=dtype),
             "b": np.zeros(N, dtype=dtype), "W_out": np.zeros((O, N), dtype=dtype),
             "b_out": np.zeros(O, dtype=dtype), "leak": np.zeros(N if leak_grad else 0, dtype=dtype)}
        stats = np.zeros(2, dtype=np.float64)
        # views of the block's trials (leading axis: no copies)
        eprop_(b0, x0[rows], inputs, targets, cmask, noise, *weights, S[rows] if stp else S, outputs,
               E[rows], Eu[rows], np.zeros(N, dtype=dtype), Ea[rows] if leak_grad else Ea, Lbuf, Rbuf, Ubuf,
               g["W"], g["W_in"], g["b"], g["W_out"], g["b_out"], g["leak"], stats)
        parts[k] = (g, stats)

    run_blocks(block, B, blocks)
    g = {name: sum(part[0][name] for part in parts) for name in parts[0][0]}
    stats = sum(part[1] for part in parts)
    if not leak_grad:
        del g["leak"]
    g.update(outputs=outputs if record_outputs else None, S_end=S if stp else None,
             task_loss=float(stats[0]), tcr_sum=float(stats[1]))
    return g
