"""Training loop, schedules, optimisers, divergence handling."""
import numpy as np
import pytest

import bioplastic as bp
from bioplastic.errors import ConfigError, DivergenceError, ShapeError
from bioplastic.training import make_schedule
from bioplastic.training.optim import Adam, clip_by_global_norm
from bioplastic.training.schedules import ExponentialDecay, LinearDecay, StepOff


def small(kind="lfrnn", task="flipflop", **kw):
    t = bp.get_task(task)
    return bp.make_network(kind, t.n_inputs, t.n_outputs, n_units=16, **kw), t


def test_same_seed_same_result():
    net, task = small()
    a = bp.train(net, task, iterations=5, seed=3)
    b = bp.train(net, task, iterations=5, seed=3)
    c = bp.train(net, task, iterations=5, seed=4)
    np.testing.assert_array_equal(a.params["W"], b.params["W"])
    np.testing.assert_array_equal(a.history["loss"], b.history["loss"])
    assert not np.array_equal(a.params["W"], c.params["W"])


def test_history_columns_and_checkpoints():
    net, task = small()
    r = bp.train(net, task, iterations=10, seed=0, checkpoint_every=5, lambda_tcr=0.5, early_stop=False)
    assert set(r.history) == set(bp.training.HISTORY_COLUMNS)
    assert len(r.history["loss"]) == 11
    np.testing.assert_allclose(r.history["loss"], r.history["task_loss"] + 0.5 * r.history["tcr_loss"])
    assert sorted(r.checkpoints) == [0, 5, 10]
    assert r.status == "max_iterations" and r.converged_at is None
    # checkpoint 0 is the initialisation, and training moved the weights
    assert not np.array_equal(r.checkpoints[0]["W"], r.checkpoints[10]["W"])


def test_training_reduces_loss():
    net, task = small()
    r = bp.train(net, task, iterations=150, lr=3e-3, seed=1, early_stop=False)
    first, last = r.history["task_loss"][:10].mean(), r.history["task_loss"][-10:].mean()
    assert last < 0.6 * first


def test_early_stop_at_sustained_criterion_records_iteration():
    net, task = small()
    task = bp.get_task("flipflop", criterion=0.5)  # easy criterion: reached quickly
    r = bp.train(net, task, iterations=400, lr=3e-3, seed=2, criterion={"consecutive": 3, "eval_every": 10})
    assert r.status == "converged"
    # stops at the K-th passing evaluation; converged_at is the first of the K
    assert r.extra["confirmed_at"] == len(r.history["loss"]) - 1
    assert r.extra["confirmed_at"] - r.converged_at == 20
    evals = np.isfinite(r.history["eval_accuracy"])
    np.testing.assert_array_equal(r.history["iteration"][evals] % 10, 0)
    assert np.all(r.history["eval_accuracy"][evals][-3:] >= 0.5)


def test_converged_at_recorded_without_early_stop_and_continue_after():
    net, task = small()
    task = bp.get_task("flipflop", criterion=0.5)
    stopped = bp.train(net, task, iterations=300, lr=3e-3, seed=2)
    full = bp.train(net, task, iterations=300, lr=3e-3, seed=2, early_stop=False)
    more = bp.train(net, task, iterations=300, lr=3e-3, seed=2, continue_after=25)
    assert stopped.converged_at is not None
    assert full.converged_at == more.converged_at == stopped.converged_at
    assert len(full.history["loss"]) == 301 and full.status == "converged"
    assert len(more.history["loss"]) == stopped.extra["confirmed_at"] + 25 + 1
    # trained on past the criterion: the memory test ran at confirmation and at the end
    assert more.extra["memory_test_at_criterion"]["factor"] == 10.0
    assert more.outcome()["memory_generalization"] == more.extra["memory_test"]["accuracy"]


def test_loss_criterion():
    net, task = small()
    r = bp.train(net, task, iterations=200, lr=3e-3, seed=2,
                 criterion={"kind": "loss", "threshold": 0.9, "consecutive": 2, "eval_every": 5})
    assert r.converged_at is not None
    losses = r.history["eval_loss"][np.isfinite(r.history["eval_loss"])]
    assert np.all(losses[-2:] <= 0.9) and not np.all(losses[:-2] <= 0.9)
    with pytest.raises(ConfigError, match="needs a threshold"):
        bp.train(net, task, iterations=1, criterion={"kind": "loss"})
    with pytest.raises(ConfigError, match="unknown criterion setting"):
        bp.train(net, task, iterations=1, criterion={"consecutiv": 2})


@pytest.mark.parametrize("kind", ["lfrnn", "plrnn", "rank1", "lstm"])
def test_every_model_trains_a_few_steps(kind):
    net, task = small(kind)
    r = bp.train(net, task, iterations=3, seed=0, lambda_tcr=0.1)
    assert np.all(np.isfinite(r.history["loss"]))


def test_divergence_raises_and_keeps_checkpoints(tmp_path):
    net, task = small(g=1.5)
    path = tmp_path / "run.h5"
    with pytest.raises(DivergenceError, match="diverged at iteration") as info:
        bp.train(net, task, iterations=60, optimizer="sgd", lr=1e6, clip=None, seed=0,
                 checkpoint_every=1, run_file=path, early_stop=False)
    data = bp.read_run(path)
    assert data.status == "diverged"
    assert len(data.checkpoints) >= 1
    assert all(np.all(np.isfinite(v)) for v in data.checkpoints[0].values())
    assert info.value.result is not None and info.value.iteration >= 1


def test_bad_arguments():
    net, task = small()
    with pytest.raises(ConfigError, match="iterations"):
        bp.train(net, task, iterations=-1)
    with pytest.raises(ConfigError, match="seed"):
        bp.train(net, task, iterations=1, seed=-3)
    with pytest.raises(ConfigError, match="lr"):
        bp.train(net, task, iterations=1, lr=-1)
    with pytest.raises(bp.UnknownNameError, match="optimizer"):
        bp.train(net, task, iterations=1, optimizer="adamw")
    other = bp.get_task("delayed_addition")
    with pytest.raises(ConfigError, match="inputs"):
        bp.train(net, other, iterations=1)
    with pytest.raises(ConfigError, match="tcr_on"):
        bp.train(net, task, iterations=1, tcr_on="weights")
    with pytest.raises(ConfigError, match="epoch"):
        bp.train(net, task, iterations=1, lambda_tcr=0.1, tcr_epoch="nosuch")


def test_schedules():
    assert make_schedule(0.3)(100) == 0.3
    lin = LinearDecay(1.0, iterations=10)
    assert lin(0) == 1.0 and lin(5) == 0.5 and lin(20) == 0.0
    exp = ExponentialDecay(1.0, half_life=10)
    assert exp(10) == pytest.approx(0.5)
    step = StepOff(0.2, threshold=0.9)
    assert step(0, None) == 0.2 and step(1, 0.5) == 0.2 and step(2, 0.95) == 0.0 and step(3, 0.1) == 0.0
    assert isinstance(make_schedule({"kind": "linear", "value": 1, "iterations": 5}), LinearDecay)
    with pytest.raises(ConfigError, match=">= 0"):
        make_schedule(-1.0)
    with pytest.raises(bp.UnknownNameError, match="schedule"):
        make_schedule({"kind": "cosine"})
    with pytest.raises(ConfigError, match="bad settings"):
        make_schedule({"kind": "linear", "value": 1, "steps": 5})


def test_schedule_reaches_training_history():
    net, task = small()
    r = bp.train(net, task, iterations=4, seed=0, early_stop=False,
                 lambda_tcr={"kind": "linear", "value": 1.0, "iterations": 4})
    np.testing.assert_allclose(r.history["lambda_tcr"], [1.0, 0.75, 0.5, 0.25, 0.0])


def test_clipping_and_adam_against_formula(rng):
    g = {"a": np.array([3.0, 4.0])}
    clipped, norm = clip_by_global_norm(g, 1.0)
    assert norm == pytest.approx(5.0)
    np.testing.assert_allclose(clipped["a"], [0.6, 0.8])
    params = bp.networks.Params({"a": np.array([1.0, -1.0])})
    opt = Adam(lr=0.1)
    opt.step(params, {"a": np.array([0.5, -2.0])})
    # first Adam step moves each entry by lr * sign(g) (bias-corrected)
    np.testing.assert_allclose(params["a"], [0.9, -0.9], atol=1e-6)


def test_tcr_reduces_activity_change():
    """A strong TCR term makes the trained network's rates change less per step."""
    net, task = small(g=3.0)
    plain = bp.train(net, task, iterations=60, seed=5, early_stop=False, lr=3e-3)
    tcr = bp.train(net, task, iterations=60, seed=5, early_stop=False, lr=3e-3, lambda_tcr=500.0)
    # same seed: identical start, so the TCR loss is measured on the same footing
    assert tcr.history["tcr_loss"][0] == plain.history["tcr_loss"][0]
    assert tcr.history["tcr_loss"][-10:].mean() < 0.8 * plain.history["tcr_loss"][-10:].mean()


def test_global_norm_matches_numpy():
    from bioplastic.training.optim import global_norm

    rng = np.random.default_rng(0)
    grads = {"a": rng.standard_normal((7, 5)), "b": rng.standard_normal(3).astype(np.float32),
             "c": rng.standard_normal((4, 6))[:, ::2]}
    want = np.sqrt(sum(np.sum(np.asarray(g, float) ** 2) for g in grads.values()))
    assert global_norm(grads) == pytest.approx(want, rel=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adam_kernel_matches_the_numpy_formula_bit_for_bit(dtype):
    """The compiled Adam step keeps NumPy's arithmetic (dtype and order),
    follows a learning rate changed between steps (its constants are cached),
    and state_dict hands out copies that later steps leave alone."""
    from bioplastic.networks.base import Params
    from bioplastic.training.optim import Adam

    rng = np.random.default_rng(0)
    p = Params({"W": rng.standard_normal((9, 9)).astype(dtype), "b": rng.standard_normal(9).astype(dtype)})
    opt = Adam(lr=1e-2, beta1=0.8, beta2=0.99, eps=1e-7)
    m = {k: 0 for k in p}
    v = {k: 0 for k in p}
    want = {k: a.copy() for k, a in p.items()}
    saved = None
    for t in range(1, 8):
        lr = 1e-2 if t < 5 else 3e-3
        opt.lr = lr
        g = {k: rng.standard_normal(a.shape).astype(dtype) for k, a in p.items()}
        before = {k: a for k, a in p.items()}
        opt.step(p, g)
        for k in want:
            m[k] = 0.8 * m[k] + (1 - 0.8) * g[k]
            v[k] = 0.99 * v[k] + (1 - 0.99) * g[k] * g[k]
            delta = lr * (m[k] / (1 - 0.8 ** t)) / (np.sqrt(v[k] / (1 - 0.99 ** t)) + 1e-7)
            want[k] = want[k] - delta.astype(dtype)
            np.testing.assert_array_equal(p[k], want[k])
            assert p[k] is not before[k]  # a new array: old references keep their values
        if t == 3:
            saved = opt.state_dict()
            saved_m = saved["_m"]["W"].copy()
    np.testing.assert_array_equal(saved["_m"]["W"], saved_m)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_task_loss_matches_numpy(dtype):
    """The compiled masked MSE against the NumPy formula: the gradient bit for
    bit, the loss to the rounding of NumPy's own (less accurate) float32 sum;
    non-contiguous targets, a fractional mask and an all-zero mask (n = 1)."""
    from bioplastic.training.loss import task_loss

    rng = np.random.default_rng(4)
    y = rng.standard_normal((12, 5, 3)).astype(dtype)
    target = np.asfortranarray(rng.standard_normal((12, 5, 3))).astype(dtype, order="F")
    for mask in ((rng.random((12, 5, 3)) < 0.6).astype(dtype), rng.random((12, 5, 3)).astype(dtype),
                 np.zeros((12, 5, 3), dtype)):
        loss, grad = task_loss(y, target, mask)
        n = max(float(mask.sum()), 1.0)
        err = (y - target) * mask
        np.testing.assert_array_equal(grad, (2.0 / n) * err)
        assert grad.dtype == dtype
        assert loss == pytest.approx(float(np.sum(err.astype(np.float64) ** 2) / n), rel=1e-12, abs=0)
    # dtypes promote as NumPy's ufuncs would; integers are computed in float64
    assert task_loss(y, target.astype(np.float64), mask)[1].dtype == np.float64
    loss, grad = task_loss(np.ones((2, 1, 1), int), np.zeros((2, 1, 1), int), np.ones((2, 1, 1), bool))
    assert loss == 1.0 and grad.dtype == np.float64
    np.testing.assert_array_equal(grad, np.ones((2, 1, 1)))
    with pytest.raises(ShapeError, match="must have the same shape"):
        task_loss(y, target[:-1], mask[:-1])


def test_search_phase_schedule_switches_off_at_the_drop():
    from bioplastic.training.schedules import SearchPhase

    s = make_schedule({"kind": "search_phase", "value": 2.0, "drop": 0.3, "window": 50, "warmup": 60})
    assert isinstance(s, SearchPhase)
    # a fast initial transient (ignored: warm-up), a plateau until 300, then a drop of one decade
    k = np.arange(600)
    loss = np.where(k < 300, 0.5, 0.5 * 10 ** (-(k - 300) / 50.0)) + np.where(k < 10, 2.0, 0.0)
    lam = []
    for i, L in zip(k, loss):
        lam.append(s(int(i)))
        s.observe(int(i), float(L), None)
    lam = np.array(lam)
    off = int(np.argmax(lam == 0))
    assert np.all(lam[:off] == 2.0) and np.all(lam[off:] == 0.0)
    assert 300 < off < 360  # within the drop's first 0.3 decades (15 its) plus the EMA lag
    # state round trip (resume)
    s2 = SearchPhase(**{k_: v for k_, v in s.describe().items() if k_ != "kind"})
    s2.load_state(s.state())
    assert s2(1000) == 0.0


def test_window_schedule_blocks_outside_its_window():
    during = make_schedule({"kind": "window", "value": 0.5, "start": 3})
    after = make_schedule({"kind": "window", "value": 0.5, "stop": 3})
    assert [during(k) for k in range(5)] == [0.0, 0.0, 0.0, 0.5, 0.5]
    assert [after(k) for k in range(5)] == [0.5, 0.5, 0.5, 0.0, 0.0]
    with pytest.raises(ConfigError, match="start <= stop"):
        make_schedule({"kind": "window", "start": 5, "stop": 2})


def test_window_schedule_blocks_the_stp_term_of_a_local_run():
    from bioplastic.training.local import train_local

    net, task = small()
    r = train_local(net, task, "eprop+tcr_stp", iterations=6, seed=0, progress=False, diagnostics_every=0,
                    early_stop=False, memory_test=False, lambda_tcr={"kind": "window", "value": 1.0, "start": 4})
    np.testing.assert_array_equal(r.history["lambda_tcr"], [0, 0, 0, 0, 1, 1, 1])


def test_tcr_relative_scales_lambda_by_the_initial_loss_ratio():
    net, task = small()
    r = bp.train(net, task, iterations=3, seed=0, lambda_tcr=0.1, tcr_relative=True, early_stop=False)
    scale = r.extra["lambda_scale"]
    ev = bp.training.loss_and_grads(net, r.checkpoints[0], task.sample(32, bp.seeding.make_streams(0)["task"]),
                                    need_grads=False,
                                    noise=None)
    assert scale == pytest.approx(ev.task_loss / ev.tcr_loss)
    np.testing.assert_allclose(r.history["lambda_tcr"], 0.1 * scale)
    # the TCR term is a tenth of the task loss at the start
    assert r.history["lambda_tcr"][0] * r.history["tcr_loss"][0] == pytest.approx(0.1 * r.history["task_loss"][0])


def test_tcr_epoch_memory_resolves_to_the_task_memory_epoch():
    net, task = small(task="evidence_accumulation")
    r = bp.train(net, task, iterations=2, seed=0, lambda_tcr=0.5, tcr_epoch="memory", early_stop=False)
    assert r.config["training"]["tcr_epoch"] == "delay"
