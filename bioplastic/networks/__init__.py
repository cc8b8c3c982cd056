"""Rate network models, registered by kind ("lfrnn", "plrnn", "rank1", "lstm")."""
from __future__ import annotations

from ..registry import Registry, check_keys
from .base import Constraint, Network, Params, Trajectory
from .lfrnn import LFRNN

MODELS = Registry("model")


def register_model(cls):
    """Register a Network subclass under its ``kind`` (usable as decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, Network) and cls.kind):
        raise TypeError(f"{cls!r} is not a Network subclass with a kind")
    MODELS.register(cls.kind, cls)
    return cls


def make_network(kind: str, n_inputs: int, n_outputs: int, **settings) -> Network:
    """Build a network of registered ``kind``; unknown settings raise ConfigError."""
    import inspect

    cls = MODELS.get(kind)
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "n_inputs", "n_outputs"}
    check_keys(f"unknown setting(s) for model {kind!r}", settings, accepted)
    return cls(n_inputs=n_inputs, n_outputs=n_outputs, **settings)


def list_models() -> list[str]:
    return MODELS.names()


register_model(LFRNN)

__all__ = ["Constraint", "Network", "Params", "Trajectory", "LFRNN", "MODELS", "register_model",
           "make_network", "list_models"]

from .lstm import LSTM  # noqa: E402
from .plrnn import PLRNN  # noqa: E402
from .rank1 import RankOneRNN  # noqa: E402

register_model(PLRNN)
register_model(RankOneRNN)
register_model(LSTM)
