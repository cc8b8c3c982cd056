"""Rate network models, registered by kind ("lfrnn", "plrnn", "rank1", "lstm").

A new model subclasses :class:`Network` and is registered with
:func:`register_model`, or, from a package, through the entry-point group
``bioplastic.models`` (loaded the first time a kind is not a built-in, or
when models are listed; see docs/extending.md).
"""
from __future__ import annotations

import inspect

from ..errors import ConfigError
from ..registry import Registry, check_keys, check_plugin_class
from .base import Constraint, Network, Params, Trajectory
from .lfrnn import LFRNN

#: Entry-point group of third-party models.
GROUP = "bioplastic.models"


def validate_model_class(cls, name: str | None = None) -> str:
    """Check that ``cls`` can serve as a model; return its registry name (its ``kind``).

    Parameters
    ----------
    cls : object
        The candidate class.
    name : str or None
        The name it is registered under (an entry point's name), which must
        equal ``cls.kind``; None: not checked.

    Raises
    ------
    ConfigError
        If ``cls`` is not a Network subclass, has no ``kind`` or
        ``param_names``, leaves an abstract method (``param_shapes``,
        ``_init_arrays``, ``_forward``, ``_backward``) unimplemented, or is
        registered under another name.
    """
    kind = check_plugin_class(cls, Network, "kind", "model", name)
    if not cls.param_names:
        raise ConfigError(f"model class {cls.__name__} must list its parameter arrays in `param_names`")
    return kind


#: Every known model class, by lower-case kind (plugins join on first lookup).
MODELS = Registry("model", group=GROUP, validate=validate_model_class)


def register_model(cls, *, overwrite: bool = False):
    """Register a Network subclass under its ``kind``; usable as a decorator.

    Raises
    ------
    ConfigError
        If ``cls`` is not a complete Network subclass with a kind, or the
        kind is taken (unless ``overwrite``).
    """
    return MODELS.register(validate_model_class(cls), cls, overwrite=overwrite)


def make_network(kind: str, n_inputs: int, n_outputs: int, **settings) -> Network:
    """Build a network of registered ``kind`` (built-in or plugin); unknown settings raise ConfigError."""
    cls = MODELS.get(kind)
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "n_inputs", "n_outputs"}
    check_keys(f"unknown setting(s) for model {kind!r}", settings, accepted)
    return cls(n_inputs=n_inputs, n_outputs=n_outputs, **settings)


def list_models() -> list[str]:
    """Registered model kinds (built-ins and plugins), sorted."""
    return MODELS.names()


register_model(LFRNN)

__all__ = ["Constraint", "Network", "Params", "Trajectory", "LFRNN", "MODELS", "register_model",
           "make_network", "list_models", "validate_model_class"]

from .lstm import LSTM  # noqa: E402
from .plrnn import PLRNN  # noqa: E402
from .rank1 import RankOneRNN  # noqa: E402

register_model(PLRNN)
register_model(RankOneRNN)
register_model(LSTM)
