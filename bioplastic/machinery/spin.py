"""Atomic flags and bounded spin-waits, for handing row blocks to threads.

A thread woken from sleep (a futex wait) starts tens to hundreds of
microseconds later on a virtual machine whose idle CPU has been halted; for
a 1 ms kernel that is a tenth of its time. :mod:`.threads` therefore lets a
worker spin for a short while after each job, watching a flag, before it
goes to sleep, and lets the caller spin while it waits for the worker's
block. The spin runs here, in compiled code without the GIL, so the other
threads keep running Python.

The flags are int64 entries of a numpy array, read and written with
sequentially consistent ordering (LLVM atomics): a worker that sees a new
generation number also sees the job posted before it, and the caller that
sees a block's "done" number sees everything the block wrote. Sequential
consistency (not just acquire/release) is what makes the "asleep" flags
safe: a thread that stores its own flag and then loads the other's cannot
miss the other's store while the other misses its own (Dekker), so a
thread that goes to sleep is always seen and woken.

Layout: worker w owns row w of a (workers, 16) array, ``POSTED`` written by
the caller, ``DONE`` and ``ASLEEP`` by the worker (a separate cache line);
the caller owns a (1, 16) array with ``CALLER_ASLEEP``.
"""
import platform
import time

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

#: Columns of a worker's flag row, and of the caller's.
POSTED, DONE, ASLEEP = 0, 8, 9
CALLER_ASLEEP = 0

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686")
_VOID_FN = ir.FunctionType(ir.VoidType(), [])


def _element_pointer(context, builder, arrty, arr, row, col):
    ary = context.make_array(arrty)(context, builder, arr)
    stride = builder.extract_value(ary.strides, 0)
    base = builder.ptrtoint(ary.data, ir.IntType(64))
    offset = builder.add(builder.mul(row, stride), builder.mul(col, ir.Constant(ir.IntType(64), 8)))
    return builder.inttoptr(builder.add(base, offset), ir.IntType(64).as_pointer())


def _check_flags(flags):
    return isinstance(flags, types.Array) and flags.dtype == types.int64 and flags.ndim == 2


@intrinsic
def _load_atomic(typingctx, flags, row, col):
    if not _check_flags(flags):
        return None
    sig = types.int64(flags, types.intp, types.intp)

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], *args)
        return builder.load_atomic(ptr, "seq_cst", 8)
    return sig, codegen


@intrinsic
def _store_atomic(typingctx, flags, row, col, value):
    if not _check_flags(flags):
        return None
    sig = types.void(flags, types.intp, types.intp, types.int64)

    def codegen(context, builder, sig, args):
        ptr = _element_pointer(context, builder, sig.args[0], *args[:3])
        builder.store_atomic(args[3], ptr, "seq_cst", 8)
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def _cpu_relax(typingctx):
    """x86 ``pause`` (eases the spinning core's pipeline and its sibling);
    nothing elsewhere."""
    sig = types.void()

    def codegen(context, builder, sig, args):
        if _X86:
            builder.call(builder.module.declare_intrinsic("llvm.x86.sse2.pause", fnty=_VOID_FN), [])
        return context.get_dummy_value()
    return sig, codegen


@njit(cache=True, nogil=True)
def load_flag(flags, row, col):
    """``flags[row, col]``, an atomic load (sequentially consistent)."""
    return _load_atomic(flags, row, col)


@njit(cache=True, nogil=True)
def store_flag(flags, row, col, value):
    """``flags[row, col] = value``, an atomic store (sequentially consistent)."""
    _store_atomic(flags, row, col, value)


@njit(cache=True, nogil=True)
def spin_while_equal(flags, row, col, value, max_spins):
    """Spin until ``flags[row, col] != value`` or ``max_spins`` rounds pass.

    Returns the flag's last value (``value`` itself on a time-out).
    """
    for _ in range(max_spins):
        v = _load_atomic(flags, row, col)
        if v != value:
            return v
        _cpu_relax()
    return _load_atomic(flags, row, col)


def spins_per_second() -> float:
    """How many rounds of :func:`spin_while_equal` this CPU runs per second
    (measured once over about a millisecond; ``pause`` costs 10 to 150
    cycles depending on the CPU)."""
    flags = np.zeros((1, 1), dtype=np.int64)
    spin_while_equal(flags, 0, 0, 0, 10)  # compile or load before timing
    n = 20_000
    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        spin_while_equal(flags, 0, 0, 0, n)
        best = min(best, time.perf_counter() - t0)
    return n / max(best, 1e-9)


@njit(cache=True, nogil=True)
def finish_and_spin_(flags, caller, w, generation, max_spins):
    """Worker w marks job ``generation`` done, then spins for the next post.

    Returns the ``POSTED`` value last seen (``generation`` itself after
    ``max_spins`` rounds without a new job), or -1 at once if the caller is
    asleep waiting, so that the worker can wake it. One call without the GIL
    from the done mark to the next job: the caller, spinning for the mark,
    finds the GIL free when it goes on.
    """
    _store_atomic(flags, w, DONE, generation)
    if _load_atomic(caller, 0, CALLER_ASLEEP) != 0:
        return -1
    return spin_while_equal(flags, w, POSTED, generation, max_spins)
