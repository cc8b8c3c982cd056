"""First-order optimisers (Adam, SGD) and gradient-norm clipping.

Optimisers update a :class:`~bioplastic.networks.Params` in place, only the
arrays in ``params.trainable``, masking gradients and enforcing constraints.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..kernels.linalg import sum_squares_
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
        """Apply one update in place to the trainable arrays of ``params``."""
        reference = params.copy()
        for name in params.trainable:
            g = grads[name]
            c = params.constraints.get(name)
            if c is not None:
                g = c.mask_gradient(g)
            params[name] = params[name] - self._delta(name, g).astype(params[name].dtype, copy=False)
        params.enforce(reference)

    def _delta(self, name, grad):  # pragma: no cover - overridden
        return self.lr * grad

    #: Names of the per-parameter state slots (dicts name -> array or int).
    _slots: tuple[str, ...] = ()

    def state_dict(self) -> dict:
        """Per-parameter state, ``{slot: {param: value}}``, for checkpoints."""
        return {slot: dict(getattr(self, slot)) for slot in self._slots}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (resume)."""
        for slot in self._slots:
            setattr(self, slot, dict(state.get(slot, {})))


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

    _slots = ("_m", "_v", "_t")

    def _delta(self, name, grad):
        t = self._t.get(name, 0) + 1
        m = self.beta1 * self._m.get(name, 0) + (1 - self.beta1) * grad
        v = self.beta2 * self._v.get(name, 0) + (1 - self.beta2) * grad * grad
        self._m[name], self._v[name], self._t[name] = m, v, t
        m_hat = m / (1 - self.beta1 ** t)
        v_hat = v / (1 - self.beta2 ** t)
        return self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


def make_optimizer(name: str, **settings) -> Optimizer:
    """Build a registered optimiser ("adam", "sgd") from settings."""
    cls = OPTIMIZERS.get(name)
    try:
        return cls(**settings)
    except TypeError as exc:
        raise ConfigError(f"bad settings for optimizer {name!r}: {exc}") from exc
