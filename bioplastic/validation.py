"""Argument checks shared by public wrappers: shapes, dtypes, finiteness."""
from __future__ import annotations

import numpy as np

from .errors import ConfigError, ShapeError


def as_array(name: str, value, dtype, ndim: int | None = None, shape=None, finite=True):
    """Return ``value`` as a C-contiguous array of ``dtype``, checked.

    ``shape`` may hold ``None`` for free dimensions. Raises ShapeError naming
    ``name`` on a wrong number of dimensions, wrong shape or non-finite entries.
    """
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise ShapeError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if ndim is not None and arr.ndim != ndim:
        raise ShapeError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    if shape is not None:
        if arr.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, arr.shape)):
            want = "(" + ", ".join("?" if s is None else str(s) for s in shape) + ")"
            raise ShapeError(f"{name} must have shape {want}, got {arr.shape}")
    if finite and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ShapeError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")
    return arr


def positive(name: str, value) -> float:
    """Return ``value`` as float, raising ConfigError unless finite and > 0."""
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a number, got {value!r}") from exc
    if not np.isfinite(v) or v <= 0:
        raise ConfigError(f"{name} must be positive and finite, got {value!r}")
    return v
