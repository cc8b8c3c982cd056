"""Run a kernel over chunks of batch rows on several threads.

Batch rows of a rate network never interact, so the Euler loop and its
adjoint can run on disjoint row blocks in parallel, each block for all T
steps, with no synchronisation per step. The row kernels are compiled with
``nogil=True``; this module runs one block in the calling thread and the
others on a small pool of worker threads. That avoids numba's threading
layers: the GNU OpenMP one is not fork-safe (our process pools fork), and the
workqueue one aborts on concurrent launches from two threads.

Handing a block to a thread that sleeps costs tens to hundreds of
microseconds on a virtual machine (its idle CPU has to be woken), a tenth of
an N = 100 forward pass. So after each job a worker spins for a short while
(``spin_wait``, 1 ms by default) on an atomic flag, in compiled code without
the GIL, before it sleeps; the caller spins the same way while it waits for
the workers' blocks. :func:`set_spin_wait` or ``BIOPLASTIC_SPIN_WAIT_US``
change the time (0: always sleep), and :func:`idle_workers` sends spinning
workers to sleep at once (the benchmark does so before timing a peer).

While the blocks run, BLAS is held to one thread (:func:`blas_on_one_thread`):
the blocks are the parallelism, and a threaded BLAS call inside a block would
oversubscribe the cores and leave OpenBLAS threads spinning against the next
call. This beats per-step BLAS threading at every size we benchmarked
(N = 100 to 512): there is no barrier per step, and the elementwise work
(tanh, leak, readout) runs in parallel too.

The thread count defaults to the CPUs this process may use; set it with
:func:`set_kernel_threads` or the ``BIOPLASTIC_NUM_THREADS`` environment
variable. Worker processes of :func:`bioplastic.protocol.map_jobs` use one.
Results do not depend on the number of blocks beyond the rounding of BLAS,
which may group a row's sums differently for different block sizes; and
they never depend on whether the blocks ran on threads or one after another
(a call that finds the pool busy, from a second thread, runs its blocks
serially with the same bounds).
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager

import numpy as np

from ..errors import ConfigError
from ..validation import env_number
from .spin import (ASLEEP, CALLER_ASLEEP, DONE, POSTED, finish_and_spin_, load_flag, spin_while_equal,
                   spins_per_second, store_flag)

# Below this much work per call (multiply-adds over all steps), a thread
# hand-off (tens of microseconds) would cost more than it saves.
MIN_PARALLEL_WORK = 2_000_000
#: Default time a worker (or the waiting caller) spins before it sleeps.
DEFAULT_SPIN_WAIT = 1e-3

_lock = threading.Lock()
_state = {"threads": None, "pool": None, "spin_wait": None}
_blas = {"libs": None, "calls": None, "saved": None, "depth": 0}


def _default_threads() -> int:
    n = env_number("BIOPLASTIC_NUM_THREADS", int, 1, "a positive integer")
    if n is not None:
        return n
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def kernel_threads() -> int:
    """Number of threads the batch-parallel kernels may use."""
    if _state["threads"] is None:
        _state["threads"] = _default_threads()
    return _state["threads"]


def set_kernel_threads(n: int) -> None:
    """Use at most ``n`` threads in the batch-parallel kernels (1: serial)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"kernel threads must be a positive integer, got {n!r}")
    _state["threads"] = n


@contextmanager
def single_threaded():
    """Within the block, kernels and BLAS run on one thread each.

    For worker processes that each own one core (sweeps, protocol jobs):
    threads inside several workers would only oversubscribe the machine.
    """
    from threadpoolctl import threadpool_limits

    old = kernel_threads()
    set_kernel_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        set_kernel_threads(old)


def n_blocks(batch_size: int, n_steps: int, work_per_row_step: int) -> int:
    """How many row blocks to run in parallel (1 means serial).

    Parameters
    ----------
    batch_size, n_steps : B and T of the call.
    work_per_row_step : multiply-adds of one row in one step (N^2 for an
        N-unit network).
    """
    threads = min(kernel_threads(), batch_size)
    if threads <= 1 or batch_size * n_steps * work_per_row_step < MIN_PARALLEL_WORK:
        return 1
    return threads


def _blas_libs():
    """threadpoolctl controllers of the BLAS that numba's kernels call (cached).

    numba takes ``gemm`` from ``scipy.linalg.cython_blas``, so that is SciPy's
    BLAS; NumPy's own copy (a second OpenBLAS in the wheels) never runs inside
    a row block and is left alone. Where SciPy's library cannot be told apart
    (one shared BLAS, as in conda), all BLAS libraries are controlled.
    """
    if _blas["libs"] is None:
        import scipy
        import scipy.linalg  # noqa: F401 - loads the BLAS that numba's gemm calls
        from threadpoolctl import ThreadpoolController

        libs = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
        scipy_dir = os.path.dirname(scipy.__file__)
        ours = [lib for lib in libs if os.path.realpath(lib.filepath).startswith(scipy_dir)]
        _blas["libs"] = ours or libs
    return _blas["libs"]


def _thread_count_calls(lib):
    """``(get, set)`` for one BLAS library's thread count.

    For OpenBLAS on its own pthreads pool, the C functions themselves (0.3 us
    a call): threadpoolctl's methods cost 1 to 2 us, 10 to 30 us per kernel
    call between kernels. Other libraries go through threadpoolctl.
    """
    symbol = getattr(lib, "_get_symbol", None)
    if lib.internal_api == "openblas" and getattr(lib, "threading_layer", None) == "pthreads" and symbol:
        get, set_ = symbol("openblas_get_num_threads"), symbol("openblas_set_num_threads")
        if get is not None and set_ is not None:
            return get, set_
    return (lambda: lib.num_threads), lib.set_num_threads


@contextmanager
def blas_on_one_thread():
    """BLAS runs single-threaded inside the block (about 1 us to enter).

    Row blocks are the parallelism; a BLAS call inside a block must not start
    its own threads on the same cores, nor leave them spinning afterwards.
    Nested and concurrent uses are counted: the first entry saves the thread
    counts and the last exit restores them (only those that were not 1).
    """
    if _blas["calls"] is None:
        _blas["calls"] = [_thread_count_calls(lib) for lib in _blas_libs()]
    calls = _blas["calls"]
    with _lock:
        if _blas["depth"] == 0:
            _blas["saved"] = saved = [get() for get, _ in calls]
            for (_, set_), n in zip(calls, saved):
                if n != 1:
                    set_(1)
        _blas["depth"] += 1
    try:
        yield
    finally:
        with _lock:
            _blas["depth"] -= 1
            if _blas["depth"] == 0:
                for (_, set_), n in zip(calls, _blas["saved"]):
                    if n != 1:
                        set_(n)


def _default_spin_wait() -> float:
    us = env_number("BIOPLASTIC_SPIN_WAIT_US", float, 0, "a number of microseconds >= 0")
    return DEFAULT_SPIN_WAIT if us is None else us * 1e-6


def spin_wait() -> float:
    """Seconds a worker or the waiting caller spins before it sleeps."""
    if _state["spin_wait"] is None:
        _state["spin_wait"] = _default_spin_wait()
    return _state["spin_wait"]


def set_spin_wait(seconds: float) -> None:
    """Spin at most ``seconds`` before sleeping (0: sleep at once, as on a
    machine shared with other work where a spinning core is a loss)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
        raise ConfigError(f"spin wait must be a number of seconds >= 0, got {seconds!r}")
    _state["spin_wait"] = float(seconds)
    pool = _state["pool"]
    if pool is not None:
        pool.set_spin_wait(float(seconds))


class _WorkerPool:
    """Worker threads that each run one row block per call of :meth:`run`.

    ``flags[w, POSTED]`` counts the jobs posted to worker w and
    ``flags[w, DONE]`` the jobs it finished (separate cache lines, so the
    caller's and the worker's writes do not contend). A thread about to sleep
    on the one condition variable first raises its ``ASLEEP`` flag (the
    caller's is in ``caller``), then checks once more; the other side, after
    its own store, notifies only when it sees that flag. With sequentially
    consistent flags one of the two always sees the other (see
    :mod:`.spin`), so no wake-up is lost and a spinning thread is never
    notified for nothing.

    The GIL is the other cost: a thread that asks for it while the other
    holds it sleeps until it is handed over (tens of microseconds here). So a
    worker marks its job done and spins for the next one in one compiled call
    (:func:`.spin.finish_and_spin_`): the caller, spinning for the mark,
    finds the GIL free when it sees it. (Posting the jobs from inside the
    caller's compiled block, so that a worker also finds the GIL free when it
    picks its job up, was tried: no gain measured on the LFRNN kernels.)
    """

    def __init__(self, size: int, spin_seconds: float):
        self.size = size
        self.pid = os.getpid()
        self.flags = np.zeros((size, 16), dtype=np.int64)
        self.caller = np.zeros((1, 16), dtype=np.int64)
        self.jobs = [None] * size
        self.errors = [None] * size
        self.cond = threading.Condition()
        self.busy = threading.Lock()  # one caller at a time
        self.rate = spins_per_second()
        self.set_spin_wait(spin_seconds)
        self.threads = [threading.Thread(target=self._loop, args=(w,), daemon=True,
                                         name=f"bioplastic-kernel-{w}") for w in range(size)]
        for t in self.threads:
            t.start()

    def set_spin_wait(self, seconds: float) -> None:
        self.max_spins = int(seconds * self.rate)

    def _sleep_until_posted(self, w: int, seen: int) -> int:
        flags, cond = self.flags, self.cond
        with cond:
            store_flag(flags, w, ASLEEP, 1)
            while load_flag(flags, w, POSTED) == seen:
                cond.wait()
            store_flag(flags, w, ASLEEP, 0)
        return load_flag(flags, w, POSTED)

    def _loop(self, w: int) -> None:
        seen = posted = 0
        while True:
            if posted == seen:  # no new job after spinning (or never spun): sleep
                posted = self._sleep_until_posted(w, seen)
            seen = posted
            job, self.jobs[w] = self.jobs[w], None
            spins = self.max_spins
            if job is _STOP or job is None:  # stop, or idle(): acknowledge without spinning
                spins = 0
            else:
                kernel, args = job
                try:
                    kernel(*args)
                except BaseException as exc:  # re-raised in the caller
                    self.errors[w] = exc
            posted = finish_and_spin_(self.flags, self.caller, w, seen, spins)
            if posted < 0:  # the caller sleeps waiting: wake it
                with self.cond:
                    self.cond.notify_all()
                posted = seen
            if job is _STOP:
                return

    def _post(self, jobs) -> list:
        """Hand ``jobs[w]`` to worker w; return the generation numbers to await."""
        posted = []
        for w, job in enumerate(jobs):
            self.jobs[w] = job
            n = int(self.flags[w, POSTED]) + 1
            store_flag(self.flags, w, POSTED, n)
            posted.append(n)
        if any(load_flag(self.flags, w, ASLEEP) for w in range(len(jobs))):
            with self.cond:
                self.cond.notify_all()
        return posted

    def _await(self, posted) -> None:
        flags, cond = self.flags, self.cond
        for w, n in enumerate(posted):
            if spin_while_equal(flags, w, DONE, n - 1, self.max_spins) == n:
                continue
            with cond:
                store_flag(self.caller, 0, CALLER_ASLEEP, 1)
                try:
                    while load_flag(flags, w, DONE) != n:
                        cond.wait()
                finally:  # an interrupt must not leave the workers notifying for nothing
                    store_flag(self.caller, 0, CALLER_ASLEEP, 0)

    def idle(self) -> None:
        """Workers stop spinning now and sleep until the next job."""
        self._await(self._post([None] * self.size))

    def stop(self) -> None:
        """Workers end (the pool is being replaced by a larger one)."""
        self._await(self._post([_STOP] * self.size))
        for t in self.threads:
            t.join()

    def run(self, kernel, bounds, args) -> None:
        """Run block k > 0 on worker k-1 and block 0 here; wait; re-raise."""
        posted = self._post([(kernel, (k, b0, b1) + args) for k, (b0, b1) in enumerate(bounds) if k > 0])
        try:
            kernel(0, *bounds[0], *args)
        finally:
            self._await(posted)
            errors = [self.errors[w] for w in range(len(posted))]
            self.errors[:len(posted)] = [None] * len(posted)
        for exc in errors:
            if exc is not None:
                raise exc


_STOP = object()  # a job that ends a worker


def _pool(size: int) -> _WorkerPool:
    # A forked child inherits the pool object but not its threads: rebuild.
    replaced = None
    with _lock:
        pool = _state["pool"]
        if pool is None or pool.pid != os.getpid() or pool.size < size:
            if pool is not None and pool.pid == os.getpid():
                replaced = pool
            pool = _state["pool"] = _WorkerPool(size, spin_wait())
    # End the smaller pool's threads, unless a caller is still using it (then
    # they are left asleep: waiting here could deadlock a nested call).
    if replaced is not None and replaced.busy.acquire(blocking=False):
        try:
            replaced.stop()
        finally:
            replaced.busy.release()
    return pool


def idle_workers() -> None:
    """Send spinning workers to sleep now (they spin again after the next job).

    For timing something else right after a kernel call: a spinning worker
    holds a core for up to :func:`spin_wait` seconds.
    """
    pool = _state["pool"]
    if pool is not None and pool.pid == os.getpid() and pool.busy.acquire(blocking=False):
        try:
            pool.idle()
        finally:
            pool.busy.release()


def run_blocks(kernel, batch_size: int, blocks: int, *args) -> None:
    """Call ``kernel(k, b0, b1, *args)`` for the ``blocks`` contiguous row
    ranges ``b0:b1`` (k = 0..blocks-1, so a kernel can write per-block sums).

    The first range runs in the calling thread, the others on the worker
    threads; the call returns when all are done and re-raises the first
    exception. If another thread is using the workers, the ranges run here,
    one after another.
    """
    bounds = [(k * batch_size // blocks, (k + 1) * batch_size // blocks) for k in range(blocks)]
    if blocks == 1:
        kernel(0, 0, batch_size, *args)
        return
    pool = _pool(blocks - 1)
    if not pool.busy.acquire(blocking=False):
        for k, (b0, b1) in enumerate(bounds):
            kernel(k, b0, b1, *args)
        return
    try:
        with blas_on_one_thread():
            pool.run(kernel, bounds, args)
    finally:
        pool.busy.release()
