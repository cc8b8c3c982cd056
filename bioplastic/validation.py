"""Argument checks shared by public wrappers: shapes, dtypes, finiteness."""
from __future__ import annotations

import os

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


def shape_text(shape) -> str:
    """``(3, ?, 2)``: a shape with ``?`` for free (``None``) dimensions."""
    return "(" + ", ".join("?" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def shape_error(name: str, shape, got, what: str | None = None) -> ShapeError:
    """The one-line ShapeError of a misshaped argument, e.g. ``targets must have
    shape (100, 8, 3), got (100, 8, 2): (T, B, n_outputs) of the outputs``."""
    return ShapeError(f"{name} must have shape {shape_text(shape)}, got {tuple(got)}"
                      + ("" if what is None else f": {what}"))


def matches(got, shape) -> bool:
    """Whether the tuple ``got`` fits ``shape`` (``None`` entries: any size)."""
    return len(got) == len(shape) and all(s is None or s == g for s, g in zip(shape, got))


def expect_shape(name: str, array, shape, what: str | None = None) -> tuple:
    """Return the shape of ``array``, raising :func:`shape_error` unless it fits ``shape``.

    ``shape`` may hold ``None`` for free dimensions; ``what`` says where the
    expected sizes come from (e.g. ``"(T, B, n_outputs) of the outputs"``).
    No copy, no cast and no scan of the values (a few hundred ns): for
    checking arrays against each other on hot paths before a kernel indexes
    one by another's sizes.

    Examples
    --------
    >>> import numpy as np
    >>> expect_shape("x0", np.zeros((4, 3)), (4, None))
    (4, 3)
    >>> expect_shape("x0", np.zeros((5, 3)), (4, 3), "(B, N)")
    Traceback (most recent call last):
    ...
    bioplastic.errors.ShapeError: x0 must have shape (4, 3), got (5, 3): (B, N)
    """
    got = array.shape if isinstance(array, np.ndarray) else np.shape(array)
    if not matches(got, shape):
        raise shape_error(name, shape, got, what)
    return got


def as_array(name: str, value, dtype, ndim: int | None = None, shape=None, finite=True, what=None):
    """Return ``value`` as a C-contiguous array of ``dtype``, checked.

    ``shape`` may hold ``None`` for free dimensions; ``what`` describes it in
    the message (see :func:`expect_shape`). Raises ShapeError naming ``name``
    on a wrong number of dimensions, wrong shape or non-finite entries.
    """
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise ShapeError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if ndim is not None and arr.ndim != ndim:
        raise ShapeError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    if shape is not None and not matches(arr.shape, shape):
        raise shape_error(name, shape, arr.shape, what)
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


def finite_number(name: str, value, minimum=None) -> float:
    """``value`` as a float, or ConfigError naming ``name``: not a number, NaN or
    infinite, or below ``minimum``."""
    from .errors import ConfigError

    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name} must be >= {minimum:g}, got {value!r}")
    return value


def env_number(name: str, convert, minimum, what: str):
    """The environment variable ``name`` converted by ``convert``, or None when unset
    (or empty); a one-line ConfigError naming it when it is not ``what`` (below
    ``minimum`` or not convertible: ``BIOPLASTIC_NUM_THREADS`` = "two")."""
    env = os.environ.get(name)
    if not env:
        return None
    try:
        value = convert(env)
    except ValueError:
        raise ConfigError(f"{name} must be {what}, got {env!r}") from None
    if not value >= minimum:
        raise ConfigError(f"{name} must be {what}, got {env!r}")
    return value
