"""First-order optimisers (Adam, SGD) and gradient-norm clipping.

Optimisers update a :class:`~bioplastic.networks.Params` in place, only the
arrays in ``params.trainable``, masking gradients and enforcing constraints.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ..errors import ConfigError
from ..machinery.linalg import sum_squares_
from ..machinery.vector import prefer_wide_vectors
from ..registry import Registry
from ..validation import positive

OPTIMIZERS = Registry("optimizer")


def global_norm(grads: dict) -> float:
    """sqrt of the summed squares of every gradient array (no BLAS call)."""
    return float(np.sqrt(sum(sum_squares_(np.ascontiguousarray(g).reshape(-1)) for g in grads.values())))


def clip_by_global_norm(grads: dict, max_norm: float | None) -> tuple[dict, float]:
    """Scale all gradients by min(1, max_norm / ||g||); returns (grads, ||g||)."""
    norm = global_norm(grads)
    if max_norm is not None and norm > max_norm > 0:
        scale = max_norm / norm
        grads = {k: g * scale for k, g in grads.items()}
    return grads, norm


class Optimizer:
    """Base: holds the learning rate and the reference parameters for constraints."""

    def __init__(self, lr):
        self.lr = positive("lr", lr)

    def step(self, params, grads: dict) -> None:
        """Update the trainable arrays of ``params`` (each gets a new array;
        arrays handed out before, e.g. to a checkpoint, keep their values)."""
        reference = params.copy() if params.constraints else None
        for name in params.trainable:
            g = grads[name]
            c = params.constraints.get(name)
            if c is not None:
                g = c.mask_gradient(g)
            params[name] = self._updated(name, params[name], g)
        if reference is not None:
            params.enforce(reference)

    def _updated(self, name, value, grad):
        """The new value of parameter ``name`` (a new array)."""
        return value - self._delta(name, grad).astype(value.dtype, copy=False)

    def _delta(self, name, grad):  # pragma: no cover - overridden
        return self.lr * grad

    #: Names of the per-parameter state slots (dicts name -> array or int).
    _slots: tuple[str, ...] = ()

    def state_dict(self) -> dict:
        """Per-parameter state, ``{slot: {param: value}}``, for checkpoints (copies)."""
        return {slot: {k: np.array(v, copy=True) if isinstance(v, np.ndarray) else v
                       for k, v in getattr(self, slot).items()} for slot in self._slots}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (resume)."""
        for slot in self._slots:
            setattr(self, slot, {k: np.array(v, copy=True) if isinstance(v, np.ndarray) else v
                                 for k, v in state.get(slot, {}).items()})


@OPTIMIZERS.register("sgd")
class SGD(Optimizer):
    """Plain gradient descent, theta <- theta - lr g (optional momentum)."""

    def __init__(self, lr=1e-2, momentum=0.0):
        super().__init__(lr)
        if not 0 <= momentum < 1:
            raise ConfigError(f"momentum must be in [0, 1), got {momentum!r}")
        self.momentum = momentum
        self._v = {}

    _slots = ("_v",)

    def _delta(self, name, grad):
        if self.momentum == 0:
            return self.lr * grad
        v = self._v.get(name, 0) * self.momentum + grad
        self._v[name] = v
        return self.lr * v


@OPTIMIZERS.register("adam")
class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction.

    m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;
    theta <- theta - lr * m_hat / (sqrt(v_hat) + eps)
    """

    def __init__(self, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__(lr)
        for n, b in (("beta1", beta1), ("beta2", beta2)):
            if not 0 <= b < 1:
                raise ConfigError(f"{n} must be in [0, 1), got {b!r}")
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self._m, self._v, self._t = {}, {}, {}
        self._constants_cache = None  # ((t, dtype, settings), constants) of the last step

    _slots = ("_m", "_v", "_t")

    def _updated(self, name, value, grad):
        # One compiled pass instead of ten NumPy temporaries; the moments are
        # updated in place (state_dict hands out copies). The arithmetic is
        # NumPy's, in the parameter's dtype and order, so results are the same bits.
        grad = np.ascontiguousarray(grad, dtype=value.dtype)
        value = np.ascontiguousarray(value)
        t = self._t.get(name, 0) + 1
        m, v = self._m.get(name), self._v.get(name)
        if not (isinstance(m, np.ndarray) and m.shape == value.shape and m.dtype == value.dtype
                and isinstance(v, np.ndarray) and v.shape == value.shape and v.dtype == value.dtype):
            m = np.zeros_like(value) if m is None else np.array(np.broadcast_to(m, value.shape), dtype=value.dtype)
            v = np.zeros_like(value) if v is None else np.array(np.broadcast_to(v, value.shape), dtype=value.dtype)
        self._m[name], self._v[name], self._t[name] = m, v, t
        out = np.empty_like(value)
        # Arrays of any shape go in as they are and the kernel flattens them:
        # five reshapes per array cost a few microseconds each step.
        _adam_(value, grad, m, v, out, self._constants(t, value.dtype))
        return out

    def _constants(self, t, dtype) -> np.ndarray:
        """``[lr, b1, 1-b1, b2, 1-b2, 1-b1^t, 1-b2^t, eps]`` in ``dtype``, built
        once per step count (all arrays of a step share it) and again when a
        setting changes (a hand-made lr schedule sets ``opt.lr``)."""
        key = (t, dtype, self.lr, self.beta1, self.beta2, self.eps)
        cached = self._constants_cache
        if cached is None or cached[0] != key:
            c = np.array([self.lr, self.beta1, 1 - self.beta1, self.beta2, 1 - self.beta2,
                          1 - self.beta1 ** t, 1 - self.beta2 ** t, self.eps], dtype=dtype)
            cached = self._constants_cache = (key, c)
        return cached[1]


@njit(cache=True, nogil=True, error_model="numpy")
def _adam_(p, g, m, v, out, c):
    """One Adam step, written to ``out``; ``m`` and ``v`` updated in place
    (C-contiguous arrays of one shape, any number of dimensions)::

        m = b1 m + (1-b1) g;   v = b2 v + ((1-b2) g) g
        out = p - (lr m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)

    ``c = [lr, b1, 1-b1, b2, 1-b2, 1-b1^t, 1-b2^t, eps]`` in the dtype of p.
    """
    prefer_wide_vectors()
    p, g, m, v, out = p.reshape(p.size), g.reshape(g.size), m.reshape(m.size), v.reshape(v.size), out.reshape(out.size)
    lr, b1, c1, b2, c2, bias1, bias2, eps = c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
    for i in range(p.shape[0]):
        gi = g[i]
        mi = b1 * m[i] + c1 * gi
        vi = b2 * v[i] + c2 * gi * gi
        m[i] = mi
        v[i] = vi
        out[i] = p[i] - lr * (mi / bias1) / (np.sqrt(vi / bias2) + eps)


def make_optimizer(name: str, **settings) -> Optimizer:
    """Build a registered optimiser ("adam", "sgd") from settings."""
    cls = OPTIMIZERS.get(name)
    try:
        return cls(**settings)
    except TypeError as exc:
        raise ConfigError(f"bad settings for optimizer {name!r}: {exc}") from exc
