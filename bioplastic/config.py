"""Global switches, in one place, with defaults and a reset.

Experiment settings (gains, learning rates, seeds) live in spec files, not
here. These are process-wide preferences only.

Examples
--------
>>> from bioplastic import config
>>> config.set(dtype="float32")
>>> config.get("dtype")
'float32'
>>> config.reset()
"""
from __future__ import annotations

import numpy as np

from .errors import ConfigError

_DEFAULTS = {
    # Floating-point type of parameters and simulations when not given.
    "dtype": "float64",
    # Show tqdm progress bars in long loops (training, protocols).
    "progress": True,
    # Seconds between writes of a running run file at the most: checkpoints taken faster are
    # written together at the next write (bioplastic.training.writes); 0: at every checkpoint.
    "min_write_interval": 0.25,
}
#: Switches whose default an environment variable sets (for the command line and its workers),
#: read when first asked for, so that a bad value is a one-line error of the command, not of the import.
_ENVIRONMENT = {"min_write_interval": "BIOPLASTIC_MIN_WRITE_INTERVAL"}
_FROM_ENVIRONMENT = object()
_values = {**_DEFAULTS, **{name: _FROM_ENVIRONMENT for name in _ENVIRONMENT}}

_ALLOWED_DTYPES = ("float32", "float64")


def get(name: str):
    """Return the current value of the switch ``name``."""
    if name not in _values:
        raise ConfigError(f"unknown config switch {name!r}; known: {sorted(_values)}")
    if _values[name] is _FROM_ENVIRONMENT:
        from .validation import env_number

        seconds = env_number(_ENVIRONMENT[name], float, 0, "a number of seconds >= 0")
        _values[name] = _DEFAULTS[name] if seconds is None else _seconds(_ENVIRONMENT[name], seconds)
    return _values[name]


def set(**switches):  # noqa: A001 - mirrors get/reset
    """Set one or more switches, e.g. ``config.set(dtype="float32")``."""
    for name, value in switches.items():
        if name not in _values:
            raise ConfigError(f"unknown config switch {name!r}; known: {sorted(_values)}")
        if name == "dtype":
            value = resolve_dtype(value).name
        if name == "min_write_interval":
            value = _seconds(name, value)
        _values[name] = value


def reset():
    """Restore every switch to its default (the environment's, where it sets one)."""
    _values.clear()
    _values.update(_DEFAULTS)
    _values.update({name: _FROM_ENVIRONMENT for name in _ENVIRONMENT})


def resolve_dtype(dtype=None) -> np.dtype:
    """Return a numpy float dtype; ``None`` means the configured default."""
    if dtype is None:
        dtype = _values["dtype"]
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise ConfigError(f"dtype {dtype!r} is not a numpy dtype") from exc
    if dt.name not in _ALLOWED_DTYPES:
        raise ConfigError(f"dtype must be one of {_ALLOWED_DTYPES}, got {dt.name!r}")
    return dt


def _seconds(name, value) -> float:
    """``value`` as a finite number of seconds >= 0, or ConfigError naming ``name``."""
    import math

    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{name} must be a number of seconds >= 0, got {value!r}")
    return float(value)
