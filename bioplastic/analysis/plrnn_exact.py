"""Exact fixed points of a PLRNN, one linear region at a time (SPEC 5).

The PLRNN map ``F(z) = A z + W relu(z) + c`` (``c = C u + h``) is linear in
each orthant. With ``d in {0, 1}^N`` marking the units with ``z_i > 0``
(``D = diag(d)``), inside that region

    F(z) = M_d z + c,     M_d = diag(A) + W D,

so a fixed point of the region solves the linear system

    (I - M_d) z* = c

and is a fixed point of F exactly when it lies in the region it was solved
for: ``z*_i > 0`` where ``d_i = 1`` and ``z*_i <= 0`` where ``d_i = 0``
(relu(0) = 0 puts the boundary in the "off" side, as in the forward kernel).
Its Jacobian is ``M_d``, whose eigenvalues give the stability (discrete-time
map). Singular systems (``I - M_d`` not invertible: a continuum or no fixed
point in the region) are counted and skipped. Durstewitz (2017) and Schmidt
et al. (2021) use the same construction.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError, ShapeError
from ..networks.base import Network
from .fixed_points import FixedPoints, deduplicate
from .maps import checked_params, constant_input

#: Largest N for which ``regions="all"`` enumerates every orthant.
MAX_ALL_UNITS = 16


def visited_regions(states) -> np.ndarray:
    """Distinct sign patterns ``z > 0`` among visited states (..., N) -> (R, N) bool."""
    Z = np.asarray(states, dtype=np.float64)
    if Z.ndim < 2:
        raise ShapeError(f"states must have shape (..., N), got {Z.shape}")
    Z = Z.reshape(-1, Z.shape[-1])
    if not np.all(np.isfinite(Z)):
        raise ShapeError("states contain NaN or inf")
    return np.unique(Z > 0, axis=0)


def all_regions(n_units: int) -> np.ndarray:
    """Every sign pattern of N units, (2^N, N) bool."""
    if n_units > MAX_ALL_UNITS:
        raise ConfigError(f"regions='all' enumerates 2^N orthants; N={n_units} > {MAX_ALL_UNITS}. "
                          "Pass visited states instead.")
    codes = np.arange(2 ** n_units)[:, None]
    return ((codes >> np.arange(n_units)[None, :]) & 1).astype(bool)


def plrnn_exact_fixed_points(network: Network, params, *, states=None, regions=None, inputs=None,
                             eps=1e-6, tol=1e-9, max_cond=1e12) -> FixedPoints:
    """All fixed points of a PLRNN in the given linear regions, by linear algebra.

    Parameters
    ----------
    network : PLRNN
    params : Params or dict, its parameters (``A``, ``W``, ``C``, ``h``, ...)
    states : (..., N) array or None
        Visited states; their sign patterns are the regions searched
        ("each visited linear region").
    regions : "all", (R, N) bool array or None
        Instead of ``states``: every orthant (N <= 16) or explicit patterns.
    inputs : (I,) array or None, the constant input u (default zeros)
    eps : float, margin around |lambda| = 1 for the stability labels
    tol : float, a solution may violate its region's signs by at most this
    max_cond : float, systems with a larger condition number count as singular

    Returns
    -------
    FixedPoints
        Every point has ``is_fixed = True``; ``info`` holds ``n_regions``
        (searched) and ``n_singular``.

    Examples
    --------
    A PLRNN with no coupling is linear: ``z* = h / (1 - A)``.

    >>> import numpy as np
    >>> from bioplastic.networks import PLRNN
    >>> net = PLRNN(2, 1, 1)
    >>> p = {"A": np.array([0.5, 0.8]), "W": np.zeros((2, 2)), "C": np.zeros((2, 1)),
    ...      "h": np.array([1.0, -0.2]), "W_out": np.zeros((1, 2)), "b_out": np.zeros(1)}
    >>> fp = plrnn_exact_fixed_points(net, p, regions="all")
    >>> fp.states.round(6).tolist(), fp.eigenvalues.real.round(6).tolist()
    ([[2.0, -1.0]], [[0.8, 0.5]])
    """
    if not isinstance(network, Network) or network.kind != "plrnn":
        raise ConfigError(f"exact fixed points need a PLRNN, got {getattr(network, 'kind', type(network).__name__)!r}")
    params = checked_params(network, params)
    u = constant_input(network, inputs)
    N = network.n_units
    A = np.asarray(params["A"], dtype=np.float64)
    W = np.asarray(params["W"], dtype=np.float64)
    c = np.asarray(params["C"], dtype=np.float64) @ u + np.asarray(params["h"], dtype=np.float64)

    if (states is None) == (regions is None):
        raise ConfigError("give exactly one of states= (visited regions) or regions= ('all' or patterns)")
    if states is not None:
        D = visited_regions(states)
        if D.shape[1] != N:
            raise ShapeError(f"states must have {N} units in the last axis, got {D.shape[1]}")
    elif isinstance(regions, str):
        if regions != "all":
            raise ConfigError(f"regions must be 'all' or a bool array, got {regions!r}")
        D = all_regions(N)
    else:
        D = np.asarray(regions)
        if D.ndim != 2 or D.shape[1] != N or D.dtype != bool:
            raise ShapeError(f"regions must be a bool array (R, {N}), got {D.dtype} {D.shape}")

    M = W[None, :, :] * D[:, None, :].astype(np.float64)
    M[:, np.arange(N), np.arange(N)] += A
    S = np.eye(N)[None] - M
    cond = np.linalg.cond(S)
    ok = np.isfinite(cond) & (cond < max_cond)
    Z = np.full((len(D), N), np.nan)
    if ok.any():
        Z[ok] = np.linalg.solve(S[ok], np.broadcast_to(c, (int(ok.sum()), N))[:, :, None])[:, :, 0]
    consistent = ok & np.all(np.where(D, Z > -tol, Z < tol), axis=1)
    Zf, Mf = Z[consistent], M[consistent]
    if len(Zf):
        # Re-evaluate through the real map: a point on a region boundary must still be fixed.
        G = A * Zf + np.maximum(Zf, 0) @ W.T + c - Zf
        good = np.linalg.norm(G, axis=1) <= 1e3 * tol * (1 + np.linalg.norm(Zf, axis=1))
        Zf, Mf = Zf[good], Mf[good]
        q = 0.5 * np.einsum("kd,kd->k", G[good], G[good])
        keep = deduplicate(Zf, q, 1e-9 * (1 + np.abs(Zf).max())) if len(Zf) else np.zeros(0, int)
        Zf, Mf, q = Zf[keep], Mf[keep], q[keep]
        eig = np.linalg.eigvals(Mf)
        eig = np.take_along_axis(eig, np.argsort(-np.abs(eig), axis=1, kind="stable"), axis=1)
    else:
        q = np.zeros(0)
        eig = np.zeros((0, N), dtype=complex)
    info = {"n_regions": int(len(D)), "n_singular": int((~ok).sum()), "kind": "plrnn", "method": "exact"}
    return FixedPoints(Zf, q, eig, np.ones(len(Zf), dtype=bool), float(eps), info)
