"""Where a campaign's jobs run: local processes (default) or a Dask cluster.

Protocols and sweeps hand a picklable function and a list of job dicts to
:func:`map_jobs`. Each job runs in a worker with one BLAS thread and one
kernel thread (workers each own a core; threads inside several workers
would oversubscribe the machine and slow the small products of an Euler
loop several times).

The back end is chosen per call or for a whole protocol run with
:func:`use_backend` (what ``bioplastic run PROTOCOL --workers N
--scheduler ADDRESS`` does)::

    with use_backend(scheduler="tcp://10.0.0.5:8786"):
        run_protocol("search_phase")

A Dask scheduler can be a ``dask.distributed.LocalCluster`` on this machine
or one started by dask-jobqueue on a cluster (docs/sweeps.md). Results come
back in job order either way.
"""
from __future__ import annotations

import contextlib
import time
from concurrent.futures import ProcessPoolExecutor

from .errors import ConfigError

_BACKEND = {"workers": 2, "scheduler": None, "connect_timeout": "10s"}


def check_scheduler_address(address) -> str:
    """A Dask scheduler address as ``[PROTOCOL://]HOST:PORT``; ConfigError naming it otherwise.

    Checked before any work or folder, so a typo is not found by the first
    job (dask's own parser would raise a bare ValueError then).
    """
    import re

    text = str(address)
    if not re.fullmatch(r"([a-z]+://)?[^\s:/]+:\d{1,5}", text):
        raise ConfigError(f"scheduler address {text!r} is not PROTOCOL://HOST:PORT (e.g. tcp://127.0.0.1:8786)")
    return text


@contextlib.contextmanager
def use_backend(*, workers=None, scheduler=None, connect_timeout=None):
    """Within the block, :func:`map_jobs` defaults to these settings."""
    saved = dict(_BACKEND)
    if workers is not None:
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"workers must be a positive integer, got {workers!r}")
        _BACKEND["workers"] = workers
    if scheduler is not None:
        _BACKEND["scheduler"] = check_scheduler_address(scheduler)
    if connect_timeout is not None:
        _BACKEND["connect_timeout"] = connect_timeout
    try:
        yield dict(_BACKEND)
    finally:
        _BACKEND.clear()
        _BACKEND.update(saved)


def backend_description(workers=None, scheduler=None) -> str:
    """'local processes (2)' or 'dask scheduler ADDRESS', for reports."""
    scheduler = _BACKEND["scheduler"] if scheduler is None else scheduler
    if scheduler:
        return f"dask scheduler {scheduler}"
    return f"local processes ({workers or _BACKEND['workers']})"


def _load_blas() -> None:
    """Load every BLAS the jobs will call, so that a thread limit set now reaches it.

    threadpoolctl limits only libraries already loaded; the kernels' products
    go through SciPy's OpenBLAS (numba takes ``gemm`` from
    ``scipy.linalg.cython_blas``), which a fresh worker has not loaded yet.
    Left unlimited, it ran two spinning threads in each of two workers on
    two cores: protocol jobs took 3x longer (35 s instead of 11 s for 15
    local-rule jobs, 2026-12-07).
    """
    import importlib

    for module in ("numpy", "scipy.linalg", "scipy.linalg.cython_blas"):
        importlib.import_module(module)


def single_threaded_worker() -> None:
    """Initialiser of a local worker process: one BLAS and one kernel thread."""
    from threadpoolctl import threadpool_limits

    from .machinery.threads import set_kernel_threads

    _load_blas()
    threadpool_limits(1)
    set_kernel_threads(1)


def call_single_threaded(fn, job):
    """``fn(job)`` with BLAS and the kernels on one thread (a Dask task)."""
    from threadpoolctl import threadpool_limits

    from .machinery.threads import single_threaded

    _load_blas()
    with threadpool_limits(1), single_threaded():
        return fn(job)


def map_jobs(fn, jobs, *, workers=None, scheduler=None, progress=True, desc="jobs", connect_timeout=None):
    """Run ``fn`` over ``jobs``; returns (results in job order, wall time in s).

    Parameters
    ----------
    fn : picklable function of one job dict (a module-level function of an
        importable module; a protocol script's own functions also work on
        Dask, see :func:`bioplastic.protocol.load_protocol`)
    jobs : iterable of job dicts
    workers : int or None, local processes (default: the back end's, 2)
    scheduler : str or None, address of a Dask scheduler (default: the back
        end's; None runs locally)
    progress : bool, show a progress bar
    """
    from tqdm.auto import tqdm

    jobs = list(jobs)
    workers = _BACKEND["workers"] if workers is None else int(workers)
    scheduler = _BACKEND["scheduler"] if scheduler is None else scheduler
    t0 = time.perf_counter()
    if scheduler:
        results = _map_on_dask(fn, jobs, scheduler, progress, connect_timeout or _BACKEND["connect_timeout"])
    elif workers <= 1 or len(jobs) <= 1:
        results = [fn(j) for j in tqdm(jobs, disable=not progress, desc=desc)]
    else:
        with ProcessPoolExecutor(max_workers=workers, initializer=single_threaded_worker) as ex:
            results = list(tqdm(ex.map(fn, jobs), total=len(jobs), disable=not progress, desc=desc))
    return results, time.perf_counter() - t0


def _map_on_dask(fn, jobs, address, progress, connect_timeout):
    try:
        from dask.distributed import Client
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ConfigError("the dask back end needs dask.distributed: pip install 'bioplastic[dask]'") from exc
    try:
        client = Client(address, timeout=connect_timeout)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(f"cannot reach the dask scheduler at {address!r} ({exc}); "
                          "nothing was run, finished run files are kept") from exc
    with client:
        futures = client.map(call_single_threaded, [fn] * len(jobs), jobs, pure=False)
        if progress:
            from dask.distributed import progress as dask_progress

            dask_progress(futures)
        return client.gather(futures)
