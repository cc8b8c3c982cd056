"""Run a kernel over chunks of batch rows on several threads.

Batch rows of a rate network never interact, so the Euler loop and its
adjoint can run on disjoint row blocks in parallel, each block for all T
steps, with no synchronisation per step. The row kernels are compiled with
``nogil=True``; this module runs one block in the calling thread and the
others in a small pool of Python threads. That avoids numba's threading
layers: the GNU OpenMP one is not fork-safe (our process pools fork), and the
workqueue one aborts on concurrent launches from two threads.

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
which may group a row's sums differently for different block sizes.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from ..errors import ConfigError

# Below this much work per call (multiply-adds over all steps), a thread
# hand-off (tens of microseconds) would cost more than it saves.
MIN_PARALLEL_WORK = 2_000_000

_lock = threading.Lock()
_state = {"threads": None, "pool": None, "pool_pid": None, "pool_size": 0}
_blas = {"libs": None, "saved": None, "depth": 0}


def _default_threads() -> int:
    env = os.environ.get("BIOPLASTIC_NUM_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            raise ConfigError(f"BIOPLASTIC_NUM_THREADS must be a positive integer, got {env!r}") from None
        if n < 1:
            raise ConfigError(f"BIOPLASTIC_NUM_THREADS must be a positive integer, got {env!r}")
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


def _pool(size: int) -> ThreadPoolExecutor:
    # A forked child inherits the pool object but not its threads: rebuild.
    pid = os.getpid()
    with _lock:
        if _state["pool"] is None or _state["pool_pid"] != pid or _state["pool_size"] < size:
            _state["pool"] = ThreadPoolExecutor(max_workers=size, thread_name_prefix="bioplastic-kernel")
            _state["pool_pid"], _state["pool_size"] = pid, size
        return _state["pool"]


def _blas_libs():
    """threadpoolctl controllers of the loaded BLAS libraries (cached)."""
    if _blas["libs"] is None:
        import scipy.linalg  # noqa: F401 - loads the BLAS that numba's np.dot calls
        from threadpoolctl import ThreadpoolController

        _blas["libs"] = [lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"]
    return _blas["libs"]


@contextmanager
def blas_on_one_thread():
    """BLAS runs single-threaded inside the block (about 1 us to enter).

    Row blocks are the parallelism; a BLAS call inside a block must not start
    its own threads on the same cores, nor leave them spinning afterwards.
    Nested and concurrent uses are counted: the first entry saves the thread
    counts and the last exit restores them.
    """
    libs = _blas_libs()
    with _lock:
        if _blas["depth"] == 0:
            _blas["saved"] = [lib.num_threads for lib in libs]
            for lib in libs:
                lib.set_num_threads(1)
        _blas["depth"] += 1
    try:
        yield
    finally:
        with _lock:
            _blas["depth"] -= 1
            if _blas["depth"] == 0:
                for lib, n in zip(libs, _blas["saved"]):
                    lib.set_num_threads(n)


def run_blocks(kernel, batch_size: int, blocks: int, *args) -> None:
    """Call ``kernel(k, b0, b1, *args)`` for the ``blocks`` contiguous row
    ranges ``b0:b1`` (k = 0..blocks-1, so a kernel can write per-block sums).

    The first range runs in the calling thread, the others in the pool; the
    call returns when all are done and re-raises the first exception.
    """
    bounds = [(k * batch_size // blocks, (k + 1) * batch_size // blocks) for k in range(blocks)]
    if blocks == 1:
        kernel(0, 0, batch_size, *args)
        return
    pool = _pool(blocks - 1)
    with blas_on_one_thread():
        futures = [pool.submit(kernel, k, b0, b1, *args) for k, (b0, b1) in enumerate(bounds) if k > 0]
        try:
            kernel(0, *bounds[0], *args)
        finally:
            for f in futures:
                f.result()
