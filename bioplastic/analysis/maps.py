"""The one-step map ``x -> F(x)`` of each model at constant input, with its Jacobian.

Fixed-point analysis (SPEC 5) treats a network at a constant input ``u`` as a
discrete-time autonomous map ``x[t+1] = F(x[t])`` (noise off). This module
builds that map for every model, batched over K states (rows):

=========  ===============================================  =====================================
model      F(x)                                             Jacobian J = dF/dx
=========  ===============================================  =====================================
lfrnn,     ``(1-a) x + a (W phi(x) + W_in u + b)``          ``(1-a) I + a W diag(phi'(x))``
rank1      (``W = g chi + m n^T / N`` for rank1)
plrnn      ``A z + W relu(z) + C u + h``                     ``diag(A) + W diag(1[z > 0])``
lstm       state ``s = [h, c]`` (D = 2H):                    analytic, see :class:`LSTMMap`
           ``c' = f c + i g``, ``h' = o tanh(c')``
=========  ===============================================  =====================================

Each map offers ``step(X)``, ``jacobian(X)`` and ``vjp(X, V)`` (rows of
``V J``, i.e. ``J^T v`` per state), from which the gradient of the speed
function ``q(x) = 1/2 |F(x) - x|^2`` is ``(J - I)^T (F(x) - x)``. The maps are
exactly the models' Euler steps (the forward kernels), which the tests check.

The STP state of SPEC 4 is not part of the state here: the analysis is of the
network with its long-term weights only.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..errors import ConfigError, ShapeError
from ..kernels.activations import PHI_CODES, dphi_, phi_
from ..networks.base import Network
from ..validation import expect_shape

#: Model kinds with a map (the rank-one RNN runs on the LFRNN's).
SUPPORTED = ("lfrnn", "rank1", "plrnn", "lstm")


class StateMap(ABC):
    """Base class: the autonomous map of one network at one constant input.

    Attributes
    ----------
    dim : int
        State dimension D (N, or 2H for the LSTM).
    kind : str
        Model kind.
    """

    kind = ""

    def __init__(self, dim: int):
        self.dim = int(dim)

    def _check(self, X) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.dim:
            raise ShapeError(f"states must have shape (K, {self.dim}), got {X.shape}")
        return X

    def _check_pair(self, X, V) -> tuple[np.ndarray, np.ndarray]:
        """States and the vectors of :meth:`vjp`, row for row (NumPy would
        broadcast one vector over all states silently)."""
        X = self._check(X)
        V = np.asarray(V, dtype=np.float64)
        expect_shape("V", V, X.shape, "(K, D) of the states")
        return X, V

    @abstractmethod
    def step(self, X) -> np.ndarray:
        """F(x) for each row of ``X`` (K, D)."""

    @abstractmethod
    def jacobian(self, X) -> np.ndarray:
        """dF/dx at each row of ``X``: (K, D, D), ``J[k, i, j] = dF_i/dx_j``."""

    @abstractmethod
    def vjp(self, X, V) -> np.ndarray:
        """Rows ``v^T J(x)`` (= ``J(x)^T v``) for each pair of rows of ``X`` and ``V``."""

    def residual(self, X) -> np.ndarray:
        """G(x) = F(x) - x, the per-step velocity (K, D)."""
        X = self._check(X)
        return self.step(X) - X

    def q(self, X) -> np.ndarray:
        """Speed function q(x) = 1/2 |F(x) - x|^2, shape (K,)."""
        G = self.residual(X)
        return 0.5 * np.einsum("kd,kd->k", G, G)

    def q_and_grad(self, X):
        """(q (K,), grad q (K, D)) with grad q = (J - I)^T (F(x) - x)."""
        X = self._check(X)
        G = self.step(X) - X
        return 0.5 * np.einsum("kd,kd->k", G, G), self.vjp(X, G) - G


class LeakyMap(StateMap):
    """LFRNN / rank-one map ``F(x) = (1-a) x + a (W phi(x) + c)``, ``c = W_in u + b``.

    Parameters
    ----------
    W : (N, N) effective recurrent weights
    c : (N,) constant drive ``W_in u + b``
    alpha : float, dt / tau
    nonlinearity : str, a key of ``PHI_CODES``
    """

    kind = "lfrnn"

    def __init__(self, W, c, alpha, nonlinearity):
        W = np.ascontiguousarray(W, dtype=np.float64)
        N = expect_shape("W", W, (None, None))[0]
        expect_shape("W", W, (N, N), "(N, N): square")
        super().__init__(N)
        self.W = W
        self.WT = np.ascontiguousarray(self.W.T)
        self.c = np.asarray(c, dtype=np.float64)
        expect_shape("c", self.c, (N,), "(N,) of W")
        self.alpha = float(alpha)
        self.code = PHI_CODES[nonlinearity]

    def _phi(self, X):
        R = np.empty_like(X)
        phi_(X, R, self.code)
        return R

    def _dphi(self, X, R):
        D = np.empty_like(X)
        dphi_(X, R, D, self.code)
        return D

    def step(self, X):
        X = self._check(X)
        a = self.alpha
        return (1 - a) * X + a * (self._phi(X) @ self.WT + self.c)

    def jacobian(self, X):
        X = self._check(X)
        a = self.alpha
        D = self._dphi(X, self._phi(X))
        J = a * self.W[None, :, :] * D[:, None, :]
        J[:, np.arange(self.dim), np.arange(self.dim)] += 1 - a
        return J

    def vjp(self, X, V):
        X, V = self._check_pair(X, V)
        a = self.alpha
        D = self._dphi(X, self._phi(X))
        return (1 - a) * V + a * D * (V @ self.W)


class PLRNNMap(StateMap):
    """PLRNN map ``F(z) = A z + W relu(z) + c``, ``c = C u + h``.

    Parameters
    ----------
    A : (N,) diagonal auto-regression
    W : (N, N) coupling
    c : (N,) constant drive ``C u + h``
    """

    kind = "plrnn"

    def __init__(self, A, W, c):
        W = np.ascontiguousarray(W, dtype=np.float64)
        N = expect_shape("W", W, (None, None))[0]
        expect_shape("W", W, (N, N), "(N, N): square")
        super().__init__(N)
        self.A = np.asarray(A, dtype=np.float64)
        self.W = W
        self.WT = np.ascontiguousarray(self.W.T)
        self.c = np.asarray(c, dtype=np.float64)
        expect_shape("A", self.A, (N,), "(N,) of W")
        expect_shape("c", self.c, (N,), "(N,) of W")

    def step(self, X):
        X = self._check(X)
        return self.A * X + np.maximum(X, 0.0) @ self.WT + self.c

    def jacobian(self, X):
        X = self._check(X)
        J = self.W[None, :, :] * (X > 0)[:, None, :]
        J[:, np.arange(self.dim), np.arange(self.dim)] += self.A
        return J

    def vjp(self, X, V):
        X, V = self._check_pair(X, V)
        return self.A * V + (X > 0) * (V @ self.W)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class LSTMMap(StateMap):
    """LSTM map on the state ``s = [h, c]`` (D = 2H), at constant input.

    ``pre = W_h h + d`` with ``d = W_x u + b``; gates ``i, f, o = sigmoid``,
    ``g = tanh`` of their blocks (order ``[i | f | g | o]``)::

        c' = f c + i g,          h' = o tanh(c')

    Jacobian blocks (``k = tanh(c')``, ``W_i`` etc. the H-row blocks of W_h)::

        dc'/dh = diag(c f(1-f)) W_f + diag(g i(1-i)) W_i + diag(i (1-g^2)) W_g
        dc'/dc = diag(f)
        dh'/dh = diag(k o(1-o)) W_o + diag(o (1-k^2)) dc'/dh
        dh'/dc = diag(o (1-k^2) f)
    """

    kind = "lstm"

    def __init__(self, W_h, d):
        W_h = np.ascontiguousarray(W_h, dtype=np.float64)
        H = expect_shape("W_h", W_h, (None, None))[1]
        expect_shape("W_h", W_h, (4 * H, H), "(4H, H): four gate blocks")
        super().__init__(2 * H)
        self.H = H
        self.W_h = W_h
        self.W_hT = np.ascontiguousarray(self.W_h.T)
        self.d = np.asarray(d, dtype=np.float64)
        expect_shape("d", self.d, (4 * H,), "(4H,) of W_h")

    def _gates(self, X):
        H = self.H
        h, c = X[:, :H], X[:, H:]
        pre = h @ self.W_hT + self.d
        i = _sigmoid(pre[:, :H])
        f = _sigmoid(pre[:, H:2 * H])
        g = np.tanh(pre[:, 2 * H:3 * H])
        o = _sigmoid(pre[:, 3 * H:])
        cn = f * c + i * g
        k = np.tanh(cn)
        return c, i, f, g, o, cn, k

    def step(self, X):
        X = self._check(X)
        _, _, _, _, o, cn, k = self._gates(X)
        return np.concatenate([o * k, cn], axis=1)

    def jacobian(self, X):
        X = self._check(X)
        H = self.H
        c, i, f, g, o, cn, k = self._gates(X)
        Wi, Wf, Wg, Wo = (self.W_h[j * H:(j + 1) * H] for j in range(4))
        dc_dh = ((c * f * (1 - f))[:, :, None] * Wf + (g * i * (1 - i))[:, :, None] * Wi
                 + (i * (1 - g * g))[:, :, None] * Wg)
        ok = o * (1 - k * k)
        dh_dh = (k * o * (1 - o))[:, :, None] * Wo + ok[:, :, None] * dc_dh
        K = X.shape[0]
        J = np.zeros((K, 2 * H, 2 * H))
        idx = np.arange(H)
        J[:, :H, :H] = dh_dh
        J[:, H:, :H] = dc_dh
        J[:, idx, H + idx] = ok * f
        J[:, H + idx, H + idx] = f
        return J

    def vjp(self, X, V):
        X, V = self._check_pair(X, V)
        H = self.H
        c, i, f, g, o, cn, k = self._gates(X)
        vh, vc = V[:, :H], V[:, H:]
        dcn = vc + vh * o * (1 - k * k)
        dpre = np.concatenate([dcn * g * i * (1 - i), dcn * c * f * (1 - f),
                               dcn * i * (1 - g * g), vh * k * o * (1 - o)], axis=1)
        return np.concatenate([dpre @ self.W_h, dcn * f], axis=1)


def constant_input(network: Network, inputs=None) -> np.ndarray:
    """The constant input ``u`` (I,) the map is taken at (default zeros)."""
    if inputs is None:
        return np.zeros(network.n_inputs)
    u = np.asarray(inputs, dtype=np.float64)
    if u.shape != (network.n_inputs,):
        raise ShapeError(f"constant input must have shape ({network.n_inputs},), got {u.shape}")
    if not np.all(np.isfinite(u)):
        raise ShapeError("constant input contains NaN or inf")
    return u


def checked_params(network: Network, params):
    """``network.check_params`` with a message that says the model is unusable."""
    try:
        return network.check_params(params)
    except ShapeError as exc:
        raise ShapeError(f"cannot analyse this {network.kind} model: {exc}") from exc


def autonomous_map(network: Network, params, inputs=None) -> StateMap:
    """Build the map ``F`` of ``network`` with ``params`` at constant input ``inputs``.

    Parameters
    ----------
    network : Network
        An LFRNN, rank-one RNN, PLRNN or LSTM.
    params : Params or dict of arrays
        Its parameters; non-finite weights raise :class:`ShapeError`.
    inputs : (I,) array or None
        The constant input u (default zeros: the memory period of the tasks).

    Returns
    -------
    StateMap

    Raises
    ------
    ConfigError
        For a model kind without a map.
    ShapeError
        For missing, misshaped or non-finite parameters or input.

    Examples
    --------
    >>> import numpy as np
    >>> from bioplastic.networks import LFRNN
    >>> net = LFRNN(5, 1, 1)
    >>> params = net.init_params(np.random.default_rng(0))
    >>> F = autonomous_map(net, params)
    >>> F.jacobian(np.zeros((2, 5))).shape
    (2, 5, 5)
    """
    if not isinstance(network, Network):
        raise ConfigError(f"network must be a bioplastic Network, got {type(network).__name__}")
    if network.kind not in SUPPORTED:
        own = getattr(network, "autonomous_map", None)  # a plugin model brings its own map
        if own is None:
            raise ConfigError(f"no fixed-point map for model kind {network.kind!r}; supported: {SUPPORTED}, "
                              "or a model with an autonomous_map(params, u) method (docs/extending.md)")
        return own(checked_params(network, params), constant_input(network, inputs))
    params = checked_params(network, params)
    u = constant_input(network, inputs)
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    if network.kind in ("lfrnn", "rank1"):
        W = np.asarray(network.recurrent_weights(p), dtype=np.float64)
        m = LeakyMap(W, p["W_in"] @ u + p["b"], network.alpha, network.nonlinearity)
        m.kind = network.kind
        return m
    if network.kind == "plrnn":
        return PLRNNMap(p["A"], p["W"], p["C"] @ u + p["h"])
    return LSTMMap(p["W_h"], p["W_x"] @ u + p["b"])


def trajectory_states(network: Network, traj) -> np.ndarray:
    """The map's state along a trajectory, (T+1, B, D).

    For the LSTM the state is ``[h, c]`` (``traj.rates``, ``traj.states``);
    for the other models it is ``traj.states``.
    """
    N = network.n_units
    for name in ("states", "rates") if network.kind == "lstm" else ("states",):
        if not hasattr(traj, name):
            raise ShapeError(f"traj must be a Trajectory of this {network.kind}, got {type(traj).__name__}")
        expect_shape(f"traj.{name}", getattr(traj, name), (None, None, N), f"(T+1, B, n_units) of this {network.kind}")
    if network.kind == "lstm":
        expect_shape("traj.rates", traj.rates, traj.states.shape, "the shape of traj.states")
        return np.concatenate([traj.rates, traj.states], axis=2)
    return traj.states
