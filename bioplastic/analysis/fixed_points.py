"""Fixed and slow points of a network's one-step map (SPEC 5; Sussillo & Barak 2013).

A fixed point of the map ``F`` (see :mod:`bioplastic.analysis.maps`) is a
state with ``F(x*) = x*``; a slow point is a local minimum of the speed
function

    q(x) = 1/2 |F(x) - x|^2

that is small but not zero. :func:`find_fixed_points` minimises q from many
initial states in two stages, all batched over the states:

1. **Adam on q** with the analytic gradient ``grad q = (J - I)^T (F(x) - x)``
   and a per-state step size that halves whenever q rises and grows by 5 %
   while it falls, until ``q <= adam_tol`` or ``max_iter`` steps.
2. **Newton refinement** on the distinct candidates: damped Gauss-Newton
   (Levenberg-Marquardt) steps on the residual ``G(x) = F(x) - x``,
   ``dx = -((J-I)^T (J-I) + mu I)^{-1} (J-I)^T G``, where a step is kept only
   if it lowers q (mu / 10), otherwise mu * 10. With mu -> 0 this is Newton's
   method, quadratically convergent at isolated fixed points; the damping
   keeps it well defined at singular Jacobians (line attractors).

Candidates closer than ``dedup_tol * s`` (``s`` the RMS norm of the initial
states) are merged, keeping the slowest. Each survivor carries its speed
``|F(x) - x|`` (per step), the eigenvalues of its Jacobian, and a stability
label for the discrete-time map: *stable* if every ``|lambda| < 1 - eps``,
*saddle* if some but not all ``|lambda| > 1 + eps``, *unstable* if all are,
*marginal* otherwise. A point is a **fixed point** when its speed is at most
``speed_tol``; the others are kept as **slow points** when
``q <= slow_frac * median q(initial states)`` (slow relative to the flow
where the network actually goes), and dropped otherwise.

The thresholds are this project's choices, not the paper's (its body is not
available); see docs/analysis.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, ShapeError
from ..networks.base import Network
from ..validation import expect_shape
from .maps import StateMap, autonomous_map

#: Stability labels; their index is the code stored in files.
STABILITY = ("stable", "marginal", "saddle", "unstable")


@dataclass
class FixedPoints:
    """Distinct fixed and slow points of one map.

    Attributes
    ----------
    states : (K, D) array, positions (fixed points first, then slow points,
        each sorted by speed)
    q : (K,) array, q(x) = 1/2 |F(x) - x|^2
    eigenvalues : (K, D) complex array, Jacobian eigenvalues sorted by
        decreasing modulus
    is_fixed : (K,) bool, speed <= speed_tol
    eps : float, the margin around |lambda| = 1 used for the labels
    info : dict, search diagnostics (iterations, timings, tolerances)
    """

    states: np.ndarray
    q: np.ndarray
    eigenvalues: np.ndarray
    is_fixed: np.ndarray
    eps: float = 1e-6
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        # the arrays are indexed by one another (labels, subsets, matching): one K, one D
        K, D = expect_shape("FixedPoints.states", self.states, (None, None), "(K, D)")
        expect_shape("FixedPoints.q", self.q, (K,), "(K,) of the states")
        expect_shape("FixedPoints.is_fixed", self.is_fixed, (K,), "(K,) of the states")
        if K or np.size(self.eigenvalues):
            expect_shape("FixedPoints.eigenvalues", self.eigenvalues, (K, D), "(K, D) of the states")

    def __len__(self):
        return self.states.shape[0]

    @property
    def speed(self) -> np.ndarray:
        """|F(x) - x| per step, (K,)."""
        return np.sqrt(2.0 * np.maximum(self.q, 0.0))

    @property
    def max_abs_eig(self) -> np.ndarray:
        """Spectral radius of the Jacobian at each point, (K,)."""
        if self.eigenvalues.size == 0:
            return np.zeros(len(self))
        return np.abs(self.eigenvalues).max(axis=1)

    @property
    def n_unstable(self) -> np.ndarray:
        """Number of eigenvalues with |lambda| > 1 + eps, (K,)."""
        return (np.abs(self.eigenvalues) > 1 + self.eps).sum(axis=1)

    @property
    def stability_code(self) -> np.ndarray:
        """Index into :data:`STABILITY` for each point, (K,) int."""
        nu = self.n_unstable
        D = self.eigenvalues.shape[1] if self.eigenvalues.ndim == 2 else 0
        code = np.ones(len(self), dtype=np.int8)  # marginal
        code[self.max_abs_eig < 1 - self.eps] = 0
        code[(nu > 0) & (nu < D)] = 2
        code[(nu == D) & (D > 0)] = 3
        return code

    @property
    def stability(self) -> np.ndarray:
        """Stability label of each point (see :data:`STABILITY`), (K,) str."""
        return np.array(STABILITY, dtype=object)[self.stability_code].astype(str)

    @property
    def is_stable(self) -> np.ndarray:
        return self.stability_code == 0

    @property
    def n_fixed(self) -> int:
        return int(self.is_fixed.sum())

    @property
    def n_stable(self) -> int:
        """Number of stable *fixed* points (slow points excluded)."""
        return int((self.is_fixed & self.is_stable).sum())

    def subset(self, mask) -> "FixedPoints":
        """The points where ``mask`` is true."""
        mask = np.asarray(mask, dtype=bool)
        expect_shape("mask", mask, (len(self),), "(K,) of the points")
        return FixedPoints(self.states[mask], self.q[mask], self.eigenvalues[mask], self.is_fixed[mask],
                           self.eps, dict(self.info))

    def fixed(self) -> "FixedPoints":
        """Only the fixed points."""
        return self.subset(self.is_fixed)

    def summary(self) -> str:
        fp = self.fixed()
        counts = {s: int((fp.stability == s).sum()) for s in STABILITY}
        parts = ", ".join(f"{v} {k}" for k, v in counts.items() if v)
        return f"{self.n_fixed} fixed points ({parts or 'none'}), {len(self) - self.n_fixed} slow points"


def sample_states(states, n: int, rng: np.random.Generator, *, noise: float = 0.0) -> np.ndarray:
    """Draw ``n`` initial states from visited states, optionally jittered.

    Parameters
    ----------
    states : (..., D) array
        Visited states, e.g. a trajectory (T+1, B, D); all leading axes are
        pooled.
    n : int
        Number of states (drawn without replacement when possible).
    rng : numpy.random.Generator
    noise : float
        Std of Gaussian jitter, in units of the per-dimension std of ``states``.

    Returns
    -------
    (n, D) array
    """
    X = np.asarray(states, dtype=np.float64)
    if X.ndim < 2 or X.shape[-1] < 1:
        raise ShapeError(f"states must have shape (..., D), got {X.shape}")
    X = X.reshape(-1, X.shape[-1])
    if X.shape[0] == 0:
        raise ShapeError("states is empty: no visited state to start from")
    if not np.all(np.isfinite(X)):
        raise ShapeError("states contain NaN or inf (did the network diverge?)")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ConfigError(f"number of initial states must be a positive integer, got {n!r}")
    idx = rng.choice(X.shape[0], size=n, replace=n > X.shape[0])
    out = X[idx].copy()
    if noise:
        out += noise * X.std(axis=0) * rng.standard_normal(out.shape)
    return out


def _adam(F: StateMap, X, *, lr, max_iter, tol, stall_window=100):
    """Stage 1: per-state adaptive Adam on q. Returns (X, q, iterations used)."""
    K = X.shape[0]
    m = np.zeros_like(X)
    v = np.zeros_like(X)
    b1, b2, e = 0.9, 0.999, 1e-12
    step = np.full(K, lr)
    q, g = F.q_and_grad(X)
    active = q > tol
    q_ref = q.copy()
    it = 0
    for it in range(1, max_iter + 1):
        if it % stall_window == 0:
            # progress check: a state whose q fell by less than 10 % over the
            # window sits at (or crawls towards) a minimum; Newton takes over.
            active &= q < 0.9 * q_ref
            q_ref = q.copy()
        idx = np.nonzero(active)[0]
        if idx.size == 0:
            break
        m[idx] = b1 * m[idx] + (1 - b1) * g[idx]
        v[idx] = b2 * v[idx] + (1 - b2) * g[idx] ** 2
        mh = m[idx] / (1 - b1 ** it)
        vh = v[idx] / (1 - b2 ** it)
        Xn = X[idx] - step[idx, None] * mh / (np.sqrt(vh) + e)
        qn, gn = F.q_and_grad(Xn)
        up = qn > q[idx]
        step[idx] = np.where(up, 0.5 * step[idx], np.minimum(1.05 * step[idx], lr))
        X[idx], q[idx], g[idx] = Xn, qn, gn
        active[idx] = (qn > tol) & (step[idx] > 1e-12 * lr)
    return X, q, it


def _newton(F: StateMap, X, *, max_iter, tol):
    """Stage 2: Levenberg-Marquardt on G(x) = F(x) - x. Returns (X, q, iterations)."""
    K, D = X.shape
    eye = np.eye(D)
    G = F.residual(X)
    q = 0.5 * np.einsum("kd,kd->k", G, G)
    mu = np.full(K, 1e-8)
    active = q > tol
    it = 0
    for it in range(1, max_iter + 1):
        idx = np.nonzero(active)[0]
        if idx.size == 0:
            break
        Jg = F.jacobian(X[idx]) - eye
        JtJ = np.matmul(Jg.transpose(0, 2, 1), Jg)
        scale = np.maximum(np.einsum("kii->k", JtJ) / D, 1e-300)
        rhs = -np.einsum("kji,kj->ki", Jg, G[idx])
        A = JtJ + (mu[idx] * scale)[:, None, None] * eye
        try:
            dx = np.linalg.solve(A, rhs[:, :, None])[:, :, 0]
        except np.linalg.LinAlgError:
            dx = np.stack([np.linalg.lstsq(a, r, rcond=None)[0] for a, r in zip(A, rhs)])
        Xn = X[idx] + dx
        Gn = F.residual(Xn)
        qn = 0.5 * np.einsum("kd,kd->k", Gn, Gn)
        better = np.isfinite(qn) & (qn < q[idx])
        keep = idx[better]
        X[keep], G[keep], q[keep] = Xn[better], Gn[better], qn[better]
        mu[idx] = np.where(better, np.maximum(mu[idx] / 10, 1e-12), mu[idx] * 10)
        active[idx] = (q[idx] > tol) & (mu[idx] < 1e8)
    return X, q, it


def deduplicate(X, q, tol) -> np.ndarray:
    """Indices of distinct points: greedy from the slowest, merging within ``tol``."""
    order = np.argsort(q, kind="stable")
    keep = []
    taken = np.zeros(X.shape[0], dtype=bool)
    for i in order:
        if taken[i]:
            continue
        keep.append(i)
        d = np.linalg.norm(X - X[i], axis=1)
        taken |= d <= tol
    return np.asarray(keep, dtype=np.int64)


def find_fixed_points(network_or_map, params=None, initial_states=None, *, inputs=None, max_iter=500,
                      lr=0.01, adam_tol=1e-12, newton_iter=30, speed_tol=1e-7, slow_frac=1e-3,
                      dedup_tol=1e-3, eps=1e-6, settle_steps=0) -> FixedPoints:
    """Find fixed and slow points by minimising q(x) = 1/2 |F(x) - x|^2.

    Parameters
    ----------
    network_or_map : Network or StateMap
        The model (with ``params`` and ``inputs``) or a ready map.
    params : Params or dict, the network's parameters (ignored for a map)
    initial_states : (K, D) array
        Starting states, typically :func:`sample_states` of a trajectory
        (use :func:`~bioplastic.analysis.maps.trajectory_states` for the LSTM).
    inputs : (I,) array or None, the constant input u (default zeros)
    max_iter : int, Adam steps at most (stage 1)
    lr : float, Adam step size, in units of the RMS norm of the initial
        states per dimension
    adam_tol : float, stage 1 stops for a state once q <= adam_tol
    newton_iter : int, Levenberg-Marquardt steps at most (stage 2)
    speed_tol : float, a point with |F(x) - x| <= speed_tol is a fixed point
    slow_frac : float, non-fixed minima with q <= slow_frac * median q of the
        initial states are kept as slow points
    dedup_tol : float, merge radius in units of the RMS norm of the
        initial states
    eps : float, margin around |lambda| = 1 for the stability labels
    settle_steps : int
        If > 0, every initial state is also run forward this many steps of F
        and the end point added as a further start (2K starts in all). The
        search then also finds attractors that the sampled trajectories only
        approach, instead of stopping at the slow "ghost" minima of q on the
        way there.

    Returns
    -------
    FixedPoints

    Raises
    ------
    ShapeError
        If the parameters or initial states are misshaped or not finite.

    Examples
    --------
    Two decoupled self-exciting tanh units (``W = 2 I``) are each bistable,
    so the network has four stable fixed points:

    >>> import numpy as np
    >>> from bioplastic.networks import LFRNN
    >>> net = LFRNN(2, 1, 1)
    >>> params = {"W": 2 * np.eye(2), "W_in": np.zeros((2, 1)), "b": np.zeros(2),
    ...           "W_out": np.zeros((1, 2)), "b_out": np.zeros(1)}
    >>> x0 = np.random.default_rng(0).uniform(-3, 3, (64, 2))
    >>> fp = find_fixed_points(net, params, x0)
    >>> fp.n_fixed, fp.n_stable
    (9, 4)
    """
    import time

    if isinstance(network_or_map, StateMap):
        F = network_or_map
    elif isinstance(network_or_map, Network):
        if params is None:
            raise ConfigError("find_fixed_points needs the network's params")
        F = autonomous_map(network_or_map, params, inputs)
    else:
        raise ConfigError(f"expected a Network or StateMap, got {type(network_or_map).__name__}")
    if initial_states is None:
        raise ConfigError("find_fixed_points needs initial_states (K, D); see sample_states")
    X0 = np.array(initial_states, dtype=np.float64)
    if X0.ndim != 2 or X0.shape[1] != F.dim or X0.shape[0] == 0:
        raise ShapeError(f"initial_states must have shape (K, {F.dim}) with K >= 1, got {X0.shape}")
    if not np.all(np.isfinite(X0)):
        raise ShapeError("initial_states contain NaN or inf")
    for name, val in (("max_iter", max_iter), ("newton_iter", newton_iter), ("settle_steps", settle_steps)):
        if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < 0:
            raise ConfigError(f"{name} must be a non-negative integer, got {val!r}")
    for name, val in (("lr", lr), ("speed_tol", speed_tol), ("dedup_tol", dedup_tol)):
        if not np.isfinite(val) or val <= 0:
            raise ConfigError(f"{name} must be positive, got {val!r}")

    t0 = time.perf_counter()
    scale = float(np.sqrt(np.mean(X0 ** 2))) or 1.0
    q0 = F.q(X0)
    if settle_steps:
        Y = X0.copy()
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(int(settle_steps)):
                Y = F.step(Y)
        Y = Y[np.all(np.isfinite(Y), axis=1)]  # a diverging map leaves no usable end point
        X0 = np.concatenate([X0, Y])
    X, q, n_adam = _adam(F, X0.copy(), lr=lr * scale, max_iter=int(max_iter), tol=adam_tol)
    t1 = time.perf_counter()
    keep = deduplicate(X, q, dedup_tol * scale)
    Xc, n_newton = X[keep], 0
    if newton_iter:
        Xc, _, n_newton = _newton(F, Xc, max_iter=int(newton_iter), tol=0.5 * (0.01 * speed_tol) ** 2)
    qc = F.q(Xc)
    keep = deduplicate(Xc, qc, dedup_tol * scale)
    Xc, qc = Xc[keep], qc[keep]
    is_fixed = np.sqrt(2 * qc) <= speed_tol
    slow_limit = slow_frac * float(np.median(q0))
    sel = is_fixed | (qc <= slow_limit)
    Xc, qc, is_fixed = Xc[sel], qc[sel], is_fixed[sel]
    order = np.lexsort((qc, ~is_fixed))
    Xc, qc, is_fixed = Xc[order], qc[order], is_fixed[order]
    t2 = time.perf_counter()
    if len(Xc):
        eig = np.linalg.eigvals(F.jacobian(Xc))
        eig = np.take_along_axis(eig, np.argsort(-np.abs(eig), axis=1, kind="stable"), axis=1)
    else:
        eig = np.zeros((0, F.dim), dtype=complex)
    t3 = time.perf_counter()
    info = {"n_initial": int(X0.shape[0]), "adam_iterations": int(n_adam), "newton_iterations": int(n_newton),
            "scale": scale, "median_q_initial": float(np.median(q0)), "slow_q_limit": slow_limit,
            "speed_tol": float(speed_tol), "seconds_adam": t1 - t0, "seconds_newton": t2 - t1,
            "seconds_eig": t3 - t2, "seconds": t3 - t0, "kind": F.kind}
    return FixedPoints(Xc, qc, eig, is_fixed, float(eps), info)
