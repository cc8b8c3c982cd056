"""Argument checks shared by public wrappers: shapes, dtypes, finiteness."""
from __future__ import annotations

import numpy as np
from numba import njit

from .errors import ConfigError, ShapeError


@njit(cache=True, nogil=True)
def _count_non_finite(flat):
    """Number of NaN or inf entries of a 1-D float array, in one pass without
    temporaries (``np.isfinite`` allocates a boolean array per check, which
    costs as much as a small kernel when parameters are checked every call)."""
    bad = 0
    for i in range(flat.shape[0]):
        v = flat[i]
        if v - v != 0:  # NaN - NaN and inf - inf are NaN
            bad += 1
    return bad


def count_non_finite(arr: np.ndarray) -> int:
    """How many entries of ``arr`` are NaN or inf (0 for integer arrays)."""
    if arr.dtype.kind != "f":
        return 0
    if arr.dtype.itemsize < 4 or arr.dtype.itemsize > 8:  # float16, longdouble: not numba types
        return int(arr.size - np.count_nonzero(np.isfinite(arr)))
    return int(_count_non_finite(np.ascontiguousarray(arr).reshape(-1)))


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
    if finite:
        bad = count_non_finite(arr)
        if bad:
            raise ShapeError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")
    return arr


def positive_int(name: str, value, allow_zero: bool = False) -> int:
    """Return ``value`` as int, raising ConfigError unless an integer > 0 (>= 0 with ``allow_zero``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or \
            value < (0 if allow_zero else 1):
        raise ConfigError(f"{name} must be a {'non-negative' if allow_zero else 'positive'} integer, "
                          f"got {value!r}")
    return int(value)


def positive(name: str, value) -> float:
    """Return ``value`` as float, raising ConfigError unless finite and > 0."""
    if isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a number, got {value!r}") from exc
    if not np.isfinite(v) or v <= 0:
        raise ConfigError(f"{name} must be positive and finite, got {value!r}")
    return v
