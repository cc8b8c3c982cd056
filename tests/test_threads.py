"""Batch-parallel kernels: same numbers as serial, thread control, fork safety."""
import multiprocessing as mp

import numpy as np
import pytest

from bioplastic import make_network
from bioplastic.errors import ConfigError
from bioplastic.machinery import threads
from bioplastic.training.objective import loss_and_grads
from types import SimpleNamespace


@pytest.fixture
def parallel(monkeypatch):
    """Force row blocks even for the tiny test networks."""
    monkeypatch.setattr(threads, "MIN_PARALLEL_WORK", 0)
    old = threads.kernel_threads()
    yield threads.set_kernel_threads
    threads.set_kernel_threads(old)


def _case(kind, dtype, B=7, T=30, N=20, seed=0):
    net = make_network(kind, 3, 2, n_units=N, noise_std=0.1, dtype=dtype)
    rng = np.random.default_rng(seed)
    params = net.init_params(rng)
    bias = "h" if kind == "plrnn" else "b"
    params[bias] = params[bias] + 0.1
    batch = SimpleNamespace(inputs=rng.standard_normal((T, B, 3)), targets=rng.standard_normal((T, B, 2)),
                            loss_mask=np.ones((T, B, 2)), epochs={})
    noise = net.draw_noise(rng, T, B)
    return net, params, batch, noise


def _evaluate(net, params, batch, noise):
    return loss_and_grads(net, params, batch, lambda_tcr=0.3, noise=noise)


@pytest.mark.parametrize("kind", ["lfrnn", "rank1", "plrnn", "lstm"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_row_blocks_match_serial(parallel, kind, dtype):
    net, params, batch, noise = _case(kind, dtype)
    parallel(1)
    assert threads.n_blocks(7, 30, 400) == 1
    serial = _evaluate(net, params, batch, noise)
    for k in (2, 3, 7):
        parallel(k)
        assert threads.n_blocks(7, 30, 400) == k
        ev = _evaluate(net, params, batch, noise)
        tol = 1e-12 if dtype == "float64" else 1e-5
        np.testing.assert_allclose(ev.traj.rates, serial.traj.rates, rtol=tol, atol=tol)
        np.testing.assert_allclose(ev.traj.outputs, serial.traj.outputs, rtol=tol, atol=tol)
        for name, g in serial.grads.items():
            np.testing.assert_allclose(ev.grads[name], g, rtol=10 * tol, atol=10 * tol, err_msg=name)


def test_block_policy():
    old = threads.kernel_threads()
    try:
        threads.set_kernel_threads(2)
        assert threads.n_blocks(32, 100, 100 * 100) == 2       # the N=100 benchmark case
        assert threads.n_blocks(128, 200, 512 * 512) == 2      # big products too
        assert threads.n_blocks(1, 10_000, 100 * 100) == 1     # one row
        assert threads.n_blocks(32, 2, 10 * 10) == 1           # too little work to hand off
        threads.set_kernel_threads(1)
        assert threads.n_blocks(32, 100, 100 * 100) == 1
    finally:
        threads.set_kernel_threads(old)


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_kernel_threads_rejects(bad):
    with pytest.raises(ConfigError, match="positive integer"):
        threads.set_kernel_threads(bad)


def test_env_variable(monkeypatch):
    monkeypatch.setenv("BIOPLASTIC_NUM_THREADS", "3")
    assert threads._default_threads() == 3
    monkeypatch.setenv("BIOPLASTIC_NUM_THREADS", "many")
    with pytest.raises(ConfigError, match="BIOPLASTIC_NUM_THREADS"):
        threads._default_threads()


def test_exception_in_a_block_reaches_the_caller():
    def kernel(block, b0, b1):
        if block == 1:
            raise ValueError("block 1 failed")

    with pytest.raises(ValueError, match="block 1 failed"):
        threads.run_blocks(kernel, 4, 2)


def _child_forward(queue):
    net, params, batch, noise = _case("lfrnn", "float64")
    queue.put(net.forward(params, batch.inputs, noise=noise).outputs)


def test_parallel_kernels_survive_fork(parallel):
    """A process forked after the pool ran must rebuild it, not hang."""
    parallel(2)
    net, params, batch, noise = _case("lfrnn", "float64")
    want = net.forward(params, batch.inputs, noise=noise).outputs
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child_forward, args=(queue,))
    proc.start()
    got = queue.get(timeout=60)
    proc.join(timeout=60)
    assert proc.exitcode == 0
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_single_threaded_context_restores():
    old = threads.kernel_threads()
    with threads.single_threaded():
        assert threads.kernel_threads() == 1
        assert threads.n_blocks(32, 100, 100 * 100) == 1
    assert threads.kernel_threads() == old


def test_blas_on_one_thread_nests_and_restores():
    import os

    import scipy
    from threadpoolctl import threadpool_info, threadpool_limits

    controlled = {lib.filepath for lib in threads._blas_libs()}
    # SciPy's BLAS (the one numba's gemm calls) is among them whenever it is its own file
    scipy_libs = {i["filepath"] for i in threadpool_info() if i["user_api"] == "blas"
                  and os.path.realpath(i["filepath"]).startswith(os.path.dirname(scipy.__file__))}
    assert scipy_libs <= controlled

    def blas_threads():
        return [i["num_threads"] for i in threadpool_info() if i["filepath"] in controlled]

    with threadpool_limits(2):  # a count other than 1, so that entering changes it
        before = blas_threads()
        with threads.blas_on_one_thread():
            assert set(blas_threads()) == {1}
            with threads.blas_on_one_thread():
                assert set(blas_threads()) == {1}
            assert set(blas_threads()) == {1}
        assert blas_threads() == before


def test_parallel_normal_draws_do_not_depend_on_threads():
    from bioplastic.seeding import standard_normal_chunks

    outs = []
    for k in (1, 2, 3):
        threads.set_kernel_threads(k)
        outs.append(standard_normal_chunks(np.random.default_rng(5), (301, 40, 20), np.float32))
    threads.set_kernel_threads(2)
    for out in outs[1:]:
        np.testing.assert_array_equal(out, outs[0])
    x = outs[0].astype(np.float64)
    assert outs[0].dtype == np.float32 and abs(x.mean()) < 0.01 and abs(x.std() - 1) < 0.01
    # chunks are independent streams, not copies of each other
    assert not np.allclose(x[:75], x[75:150])
    small = standard_normal_chunks(np.random.default_rng(5), (3, 2))
    assert small.shape == (3, 2) and np.isfinite(small).all()


def test_exception_does_not_leak_into_the_next_call(parallel):
    calls = []

    def kernel(block, b0, b1):
        calls.append(block)
        if block == 0:
            raise KeyError("caller's block failed")
        if block == 1 and len(calls) <= 2:
            raise ValueError("worker's block failed")

    with pytest.raises(KeyError):
        threads.run_blocks(kernel, 4, 2)
    calls.clear()

    def fine(block, b0, b1):
        calls.append(block)

    threads.run_blocks(fine, 4, 2)  # the worker's old error must not surface here
    assert sorted(calls) == [0, 1]


def test_concurrent_callers_get_serial_results(parallel):
    """Two Python threads running kernels at once: one gets the pool, the
    other runs its blocks itself; both results equal a lone call."""
    import threading as _threading

    net, params, batch, noise = _case("lfrnn", "float64", B=8, T=40, N=24)
    parallel(2)
    want = net.forward(params, batch.inputs, noise=noise).outputs
    results, errors = [], []

    def worker():
        try:
            for _ in range(20):
                results.append(net.forward(params, batch.inputs, noise=noise).outputs)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    ts = [_threading.Thread(target=worker) for _ in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=120)
    assert not errors and len(results) == 60
    for got in results:
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("seconds", [0.0, 2e-3])
def test_spin_wait_setting_and_idle(parallel, seconds):
    old = threads.spin_wait()
    try:
        threads.set_spin_wait(seconds)
        assert threads.spin_wait() == seconds
        net, params, batch, noise = _case("lfrnn", "float64")
        parallel(2)
        want = net.forward(params, batch.inputs, noise=noise).outputs
        threads.idle_workers()  # workers asleep: the next call must wake them
        np.testing.assert_array_equal(net.forward(params, batch.inputs, noise=noise).outputs, want)
    finally:
        threads.set_spin_wait(old)


@pytest.mark.parametrize("bad", [-1e-3, float("nan"), True, "1"])
def test_set_spin_wait_rejects(bad):
    with pytest.raises(ConfigError, match="spin wait"):
        threads.set_spin_wait(bad)


def test_spin_wait_env_variable(monkeypatch):
    monkeypatch.setenv("BIOPLASTIC_SPIN_WAIT_US", "250")
    assert threads._default_spin_wait() == pytest.approx(250e-6)
    monkeypatch.setenv("BIOPLASTIC_SPIN_WAIT_US", "-3")
    with pytest.raises(ConfigError, match="BIOPLASTIC_SPIN_WAIT_US"):
        threads._default_spin_wait()


def test_atomic_flags_and_bounded_spin():
    from bioplastic.machinery.spin import load_flag, spin_while_equal, spins_per_second, store_flag

    flags = np.zeros((2, 16), dtype=np.int64)
    store_flag(flags, 1, 8, 7)
    assert flags[1, 8] == 7 and load_flag(flags, 1, 8) == 7
    assert spin_while_equal(flags, 1, 8, 3, 10) == 7      # differs: returns at once
    assert spin_while_equal(flags, 0, 0, 0, 1000) == 0    # times out with the same value
    assert spins_per_second() > 1e4


def test_a_larger_pool_ends_the_old_workers(parallel):
    import threading as _threading

    net, params, batch, noise = _case("lfrnn", "float64", B=8)
    parallel(2)
    want = net.forward(params, batch.inputs, noise=noise).outputs
    parallel(4)
    np.testing.assert_allclose(net.forward(params, batch.inputs, noise=noise).outputs, want, rtol=1e-12, atol=1e-12)
    workers = [t for t in _threading.enumerate() if t.name.startswith("bioplastic-kernel-")]
    assert len(workers) == threads._state["pool"].size  # the smaller pool's threads are gone


_HANDOFF_SCRIPT = """
import numpy as np
from numba import njit
from bioplastic import make_network
from bioplastic.machinery import threads

@njit(nogil=True)
def busy(block, b0, b1, spins, out):
    # block k runs for spins[k] rounds: blocks end in every order
    s = 0.0
    for i in range(spins[block]):
        s += np.sqrt(i + 1.0)
    out[block] += 1 + 0 * s

threads.MIN_PARALLEL_WORK = 0
rng = np.random.default_rng(0)
for k in (2, 3, 4):                       # grows the pool: the old workers are stopped
    threads.set_kernel_threads(k)
    out = np.zeros(k)
    for call in range(400):
        threads.run_blocks(busy, 8, k, rng.integers(0, 20_000, size=k), out)
        if call % 50 == 0:
            threads.idle_workers()
    assert (out == 400).all(), out
net = make_network("lfrnn", 3, 2, n_units=20, dtype="float64")
params = net.init_params(rng)
u = rng.standard_normal((30, 8, 3))
outs = []
for k in (2, 3, 5, 2):
    threads.set_kernel_threads(k)
    outs.append(net.forward(params, u).outputs)
    threads.idle_workers()
for got in outs[1:]:
    np.testing.assert_allclose(got, outs[0], rtol=1e-12, atol=1e-12)
print("ok")
"""


@pytest.mark.parametrize("spin_us", ["0", "3", "30"])
def test_hand_offs_never_hang(spin_us):
    """Jobs of random lengths with no spinning (every hand-off, idle and stop
    goes through the condition variable) and with spins short enough that
    threads fall asleep at every moment of a hand-off. A lost wake-up hangs
    here, in a child process, so the suite reports a failure instead of
    hanging."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, BIOPLASTIC_SPIN_WAIT_US=spin_us)
    try:
        done = subprocess.run([sys.executable, "-c", _HANDOFF_SCRIPT], env=env, capture_output=True,
                              text=True, timeout=180)
    except subprocess.TimeoutExpired:
        pytest.fail(f"kernel worker pool hung with BIOPLASTIC_SPIN_WAIT_US={spin_us}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


@pytest.mark.parametrize("blocks", [1, 2, 3, 5])
def test_block_sums_keep_the_bits_of_numpy_sum(blocks):
    """sum_blocks adds the per-block gradients in block order: bit for bit
    what v.sum(axis=0) gives, whatever the number of blocks."""
    from bioplastic.networks.base import block_accumulators, sum_blocks

    rng = np.random.default_rng(blocks)
    acc = block_accumulators(blocks, {"W": (7, 5), "b": (3,)}, np.float32)
    for v in acc.values():
        v[...] = rng.standard_normal(v.shape) * 10.0 ** rng.integers(-3, 4, v.shape)
    total = sum_blocks(acc)
    for name, v in acc.items():
        assert total[name].dtype == np.float32 and total[name].shape == v.shape[1:]
        np.testing.assert_array_equal(total[name], v.sum(axis=0))


def _blas_threads(job):
    """In a worker: the thread counts of every BLAS loaded once the kernels' BLAS is in use."""
    import importlib

    from threadpoolctl import threadpool_info

    importlib.import_module("scipy.linalg")  # what the kernels' products call

    return sorted({lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"})


def test_protocol_workers_run_every_blas_on_one_thread():
    # A BLAS loaded after the worker's limit was set used to keep its default thread count
    # (two spinning threads per worker on two cores: jobs 3x slower).
    from bioplastic.backends import map_jobs

    results, _ = map_jobs(_blas_threads, [{}, {}, {}], workers=2, progress=False)
    assert results == [[1]] * 3
