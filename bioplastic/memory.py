"""Keep freed memory in the process, so that large arrays are reused warm.

Every forward pass allocates its trajectory (T+1, B, N states and rates, a
few MB), and every BPTT iteration frees and allocates several such arrays.
glibc's malloc serves blocks this size with fresh ``mmap`` pages, or trims
its heap when they are freed, so each iteration pays a page fault per 4 KiB
touched: 0.7 ms of a 1.6 ms float32 forward pass at N=100, B=32, T=100 on
our benchmark machine. :func:`keep_freed_memory` sets two glibc options so
that freed blocks up to ``MMAP_THRESHOLD`` stay in the heap and are reused:

- ``M_MMAP_THRESHOLD`` = 32 MiB (glibc's maximum): smaller blocks come from
  the heap, not from fresh mappings;
- ``M_TRIM_THRESHOLD`` = 1 GiB: the heap is not shrunk after each free.

The cost is that the process keeps its peak heap (up to 1 GiB of freed
memory) instead of returning it to the system while it runs. bioplastic
applies this on import; set ``BIOPLASTIC_KEEP_FREED_MEMORY=0`` to opt out.
It is a no-op on systems without glibc (macOS, Windows, musl).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 1024 * 1024 * 1024

_applied = {"done": False, "ok": False}


def keep_freed_memory(force: bool = False) -> bool:
    """Tune glibc's malloc as described in the module docstring.

    Returns True when the options were set, False when they could not be
    (no glibc) or the environment opted out. Safe to call repeatedly.
    """
    if _applied["done"] and not force:
        return _applied["ok"]
    _applied["done"] = True
    if os.environ.get("BIOPLASTIC_KEEP_FREED_MEMORY", "1").strip() in ("0", "false", "no", "off"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    _applied["ok"] = ok
    return ok


def is_applied() -> bool:
    """Whether :func:`keep_freed_memory` has set the malloc options."""
    return _applied["ok"]
