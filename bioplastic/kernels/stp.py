"""Euler forward pass of leaky rate networks with TCR short-term plasticity (SPEC 4).

One kernel serves the LFRNN, the rank-one RNN and the PLRNN, written in the
common *leaky form* (batch-row convention, for t = 0..T-1)::

    x[t+1] = leak * x[t] + gain * (r[t] (W + S[t])^T + drive[t]) + noise[t]
    r[t]   = phi(x[t])
    S[t+1] = decay_s * S[t] - eta_s * (x[t+1] - x[t]) r[t]^T        (per trial)

=========  =====================  ====================================
symbol     LFRNN / rank-one       PLRNN
=========  =====================  ====================================
x          state x                state z
leak       1 - alpha (all units)  A (diagonal, per unit)
gain       alpha = dt / tau       1
phi        tanh / relu / ...      relu
drive      u W_in^T + b           u C^T + h
=========  =====================  ====================================

``S`` is the fast synaptic component of every recurrent synapse, one matrix
per trial, reset by the caller at trial start; ``decay_s = 1 - dt / tau_s``.
The network runs on ``W + S``. The increment ``-eta_s (x_i[t+1] - x_i[t])
r_j[t]`` is ``-(eta_s / (2 gain))`` times the derivative of the one-step TCR
term ``(x_i[t+1] - x_i[t])^2`` with respect to ``W_ij`` taken with ``x[t]``
held fixed, so it opposes change of each unit's activity.

``drive`` may also carry an additive perturbation of the input current (node
perturbation): the caller adds it before calling.
"""
import numpy as np
from numba import njit

from ..errors import ShapeError
from .activations import phi_


@njit(cache=True)
def _stp_matvec(S, r, out):
    """out[b, i] = sum_j S[b, i, j] r[b, j]."""
    B, N = r.shape
    for b in range(B):
        for i in range(N):
            acc = 0.0
            for j in range(N):
                acc += S[b, i, j] * r[b, j]
            out[b, i] = acc


@njit(cache=True)
def stp_step_(S, x_old, x_new, r_old, r_new, eta_s, decay_s, zero_diag, srec):
    """S <- decay_s S - eta_s (x_new - x_old) r_old^T in place, and srec = S r_new.

    The update of S and the product with the next rates share one pass over
    the (B, N, N) array.
    """
    B, N = x_old.shape
    for b in range(B):
        for i in range(N):
            dx = eta_s * (x_new[b, i] - x_old[b, i])
            acc = 0.0
            for j in range(N):
                s = decay_s * S[b, i, j] - dx * r_old[b, j]
                S[b, i, j] = s
                acc += s * r_new[b, j]
            if zero_diag:
                acc -= S[b, i, i] * r_new[b, i]
                S[b, i, i] = 0.0
            srec[b, i] = acc


@njit(cache=True)
def leaky_stp_forward_(x0, drive, noise, WT, leak, gain, phi_code, eta_s, decay_s, zero_diag, S, xs, rs):
    """Integrate T steps of the leaky form with STP, in place.

    Parameters
    ----------
    x0 : (B, N) initial state.
    drive : (T, B, N) input current ``u W_in^T + b`` (plus any perturbation).
    noise : (T, B, N) scaled noise, or an array with ``shape[0] == 0``.
    WT : (N, N) transposed long-term recurrent weights ``W.T`` (C-contiguous).
    leak : (N,) per-unit leak (``1 - alpha`` or the PLRNN's ``A``).
    gain : float, factor of the input current (``alpha`` or 1).
    phi_code : int, see ``PHI_CODES``.
    eta_s, decay_s : float, STP rate and per-step decay ``1 - dt / tau_s``.
    zero_diag : bool, keep ``S_ii = 0`` (PLRNN: self-coupling is ``A``'s job).
    S : (B, N, N) fast weights, ``S[0]`` on entry and ``S[T]`` on exit; an
        array with ``shape[0] == 0`` runs without STP.
    xs, rs : (T+1, B, N) outputs: states and rates, index 0 the start.
    """
    T = drive.shape[0]
    B, N = x0.shape
    has_noise = noise.shape[0] > 0
    has_stp = S.shape[0] > 0
    xs[0] = x0
    phi_(xs[0], rs[0], phi_code)
    srec = np.zeros((B, N), dtype=x0.dtype)
    if has_stp:
        _stp_matvec(S, rs[0], srec)
    for t in range(T):
        rec = np.dot(rs[t], WT)
        xt = xs[t]
        xn = xs[t + 1]
        dr = drive[t]
        for b in range(B):
            for i in range(N):
                v = leak[i] * xt[b, i] + gain * (rec[b, i] + srec[b, i] + dr[b, i])
                if has_noise:
                    v += noise[t, b, i]
                xn[b, i] = v
        phi_(xn, rs[t + 1], phi_code)
        if has_stp:
            stp_step_(S, xt, xn, rs[t], rs[t + 1], eta_s, decay_s, zero_diag, srec)


def leaky_stp_forward(x0, drive, noise, W, leak, gain, phi_code, *, eta_s=0.0, decay_s=1.0,
                      zero_diag=False, S0=None, stp=True):
    """Run :func:`leaky_stp_forward_` on checked arrays; returns ``(xs, rs, S_end)``.

    Parameters
    ----------
    x0 : (B, N) array
    drive : (T, B, N) array, input current (any perturbation already added)
    noise : (T, B, N) scaled noise or None
    W : (N, N) long-term recurrent weights
    leak : (N,) array or float
    gain : float
    phi_code : int
    eta_s, decay_s : float
    zero_diag : bool
    S0 : (B, N, N) initial fast weights or None (zeros)
    stp : bool, False runs the plain leaky network (``S_end`` is None)

    Returns
    -------
    xs, rs : (T+1, B, N) arrays
    S_end : (B, N, N) array (the fast weights after the last step) or None
    """
    x0 = np.ascontiguousarray(x0)
    dtype = x0.dtype
    B, N = x0.shape
    drive = np.ascontiguousarray(drive, dtype=dtype)
    if drive.ndim != 3 or drive.shape[1:] != (B, N):
        raise ShapeError(f"drive must have shape (T, {B}, {N}), got {drive.shape}")
    T = drive.shape[0]
    W = np.asarray(W, dtype=dtype)
    if W.shape != (N, N):
        raise ShapeError(f"W must have shape ({N}, {N}), got {W.shape}")
    leak = np.ascontiguousarray(np.broadcast_to(np.asarray(leak, dtype=dtype), (N,)))
    empty = np.zeros((0, 0, 0), dtype=dtype)
    if noise is None:
        noise = empty
    else:
        noise = np.ascontiguousarray(noise, dtype=dtype)
        if noise.shape != (T, B, N):
            raise ShapeError(f"noise must have shape ({T}, {B}, {N}), got {noise.shape}")
    if stp:
        S = np.zeros((B, N, N), dtype=dtype) if S0 is None else np.array(S0, dtype=dtype, order="C")
        if S.shape != (B, N, N):
            raise ShapeError(f"S0 must have shape ({B}, {N}, {N}), got {S.shape}")
    else:
        S = empty
    xs = np.empty((T + 1, B, N), dtype=dtype)
    rs = np.empty_like(xs)
    leaky_stp_forward_(x0, drive, noise, np.ascontiguousarray(W.T), leak, dtype.type(gain), int(phi_code),
                       dtype.type(eta_s), dtype.type(decay_s), bool(zero_diag), S, xs, rs)
    return xs, rs, (S if stp else None)
