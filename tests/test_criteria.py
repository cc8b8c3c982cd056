"""Sustained success criteria, the memory test and memory variants of the tasks (SPEC 2)."""
import numpy as np
import pytest

import bioplastic as bp
from bioplastic.errors import ConfigError
from bioplastic.training.criteria import (SuccessCriterion, SuccessTracker, make_criterion, success_from_history,
                                          sustained_onset, sustained_success)
from bioplastic.training.evaluation import memory_generalization, memory_test_settings


# -- sustained criterion on synthetic traces with a known answer ---------------
@pytest.mark.parametrize("passes, k, expected", [
    ([], 3, None),
    ([True, True], 3, None),
    ([True, True, True], 3, 0),
    ([False, True, True, False, True, True, True], 3, 4),
    ([True, False] * 10, 2, None),
    ([True, False] * 10, 1, 0),
    ([False] * 5 + [True] * 5, 5, 5),
])
def test_sustained_onset_known_answers(passes, k, expected):
    assert sustained_onset(passes, k) == expected


def test_single_noisy_crossing_is_not_success():
    # accuracy that pokes above 0.95 once in a while but never holds: never sustained
    its = np.arange(0, 500, 10)
    acc = np.where(np.arange(its.size) % 4 == 0, 0.96, 0.90)
    c = SuccessCriterion(threshold=0.95, consecutive=3, eval_every=10)
    assert sustained_success(its, acc, c) == (None, None)
    # the old definition (first crossing) would have said iteration 0
    assert its[np.argmax(acc >= 0.95)] == 0


def test_sustained_success_on_a_learning_curve():
    its = np.arange(0, 1000, 10)
    acc = 0.5 + 0.49 / (1 + np.exp(-(its - 600) / 20.0))  # crosses 0.95 near 670
    c = SuccessCriterion(threshold=0.95, consecutive=3)
    first = int(its[np.argmax(acc >= 0.95)])
    assert sustained_success(its, acc, c) == (first, first + 20)
    loss_c = SuccessCriterion(kind="loss", threshold=0.05, consecutive=2)
    loss = 0.3 * (1 - acc) / 0.5
    first_l = int(its[np.argmax(loss <= 0.05)])
    assert sustained_success(its, loss, loss_c) == (first_l, first_l + 10)


def test_nan_never_passes():
    c = SuccessCriterion(threshold=0.9, consecutive=2)
    assert sustained_success([0, 10, 20], [0.95, np.nan, 0.95], c) == (None, None)


def test_tracker_matches_the_offline_function_and_keeps_first_success():
    rng = np.random.default_rng(0)
    acc = np.clip(np.linspace(0.6, 1.0, 60) + 0.05 * rng.standard_normal(60), 0, 1)
    its = np.arange(60) * 10
    c = SuccessCriterion(threshold=0.9, consecutive=3)
    tr = SuccessTracker(c)
    confirmed = [k for k, a in zip(its, acc) if tr.update(int(k), float(a), float("nan"))]
    assert (tr.converged_at, tr.confirmed_at) == sustained_success(its, acc, c)
    assert confirmed == [tr.confirmed_at]
    state = tr.state()
    tr2 = SuccessTracker(c)
    tr2.load_state(state)
    assert tr2.update(10_000, 0.0, 0.0) is False and tr2.converged_at == tr.converged_at


def test_criterion_validation():
    task = bp.get_task("flipflop")
    assert make_criterion(None, task).threshold == 0.95
    assert make_criterion({"threshold": 0.8}, task).threshold == 0.8
    for bad, match in [({"kind": "speed"}, "kind"), ({"consecutive": 0}, "consecutive"),
                       ({"eval_every": 1.5}, "eval_every"), ({"threshold": 1.5}, "threshold"),
                       ({"kind": "loss", "threshold": -1}, "threshold"), ({"kk": 1}, "unknown")]:
        with pytest.raises(ConfigError, match=match):
            make_criterion(bad, task)
    with pytest.raises(ConfigError, match="resolve"):
        SuccessCriterion().passes(1.0, 0.0)


def test_success_recomputed_from_a_run_history(tmp_path):
    task = bp.get_task("flipflop", criterion=0.6)
    net = bp.make_network("lfrnn", 3, 3, n_units=16)
    r = bp.train(net, task, iterations=150, lr=3e-3, seed=1, early_stop=False, run_file=tmp_path / "r.h5")
    data = bp.read_run(tmp_path / "r.h5", checkpoints=False)
    c = make_criterion(data.config["training"]["criterion"], task)
    assert success_from_history(data.history, c) == (r.converged_at, r.extra["confirmed_at"])
    assert data.attrs["converged_at"] == (-1 if r.converged_at is None else r.converged_at)
    stricter = SuccessCriterion(threshold=0.6, consecutive=6)
    later = success_from_history(data.history, stricter)
    assert later[0] is None or later[0] >= (r.converged_at or 0)


# -- memory variants and the memory test ------------------------------------------
def test_flipflop_memory_variant_has_longer_gaps_and_scores_gap_ends():
    task = bp.get_task("flipflop")
    long = task.memory_variant(10)
    assert long.n_steps == 1000 and long.pulse_prob == pytest.approx(0.004) and long.score_steps == 5
    rng = np.random.default_rng(0)

    def mean_gap(t):
        b = t.sample(256, rng)
        on = np.diff(np.concatenate([np.zeros((1,) + b.inputs.shape[1:]), b.inputs]), axis=0) != 0
        onsets = on & (b.inputs != 0)
        gaps = [np.diff(np.nonzero(onsets[:, i, c])[0]) for i in range(256) for c in range(3)]
        return np.mean(np.concatenate(gaps))

    assert mean_gap(long) > 6 * mean_gap(task)
    # scored entries: exactly the last 5 steps before each later onset and before the end (one-step
    # pulses, so the onsets are the nonzero inputs)
    t = bp.get_task("flipflop", n_steps=400, pulse_prob=0.01, pulse_steps=1, score_steps=5)
    b = t.sample(16, rng)
    for i in range(16):
        for c in range(3):
            onsets = np.nonzero(b.inputs[:, i, c])[0]
            ends = np.concatenate([onsets[1:], [t.n_steps]])
            expected = np.zeros(t.n_steps, bool)
            for e in ends:
                expected[max(onsets[0], e - 5):e] = True
            np.testing.assert_array_equal(b.loss_mask[:, i, c] > 0, expected)
    assert t.accuracy(b.targets, b) == 1.0


def test_delay_tasks_memory_variants_stretch_the_delay():
    da = bp.get_task("delayed_addition")
    long = da.memory_variant(4)
    assert long.response_start == 4 * da.response_start and long.response_steps == da.response_steps
    ea = bp.get_task("evidence_accumulation")
    long = ea.memory_variant(4)
    assert long.delay_steps == 80 and long.stim_stop - long.stim_start == ea.stim_stop - ea.stim_start
    b = long.sample(4, np.random.default_rng(0))
    assert b.epochs["delay"].sum(axis=0).tolist() == [80] * 4
    with pytest.raises(ConfigError, match="> 1"):
        ea.memory_variant(1.0)


def test_memory_counts_and_epochs():
    assert bp.get_task("flipflop").n_memories == 8
    assert bp.get_task("flipflop", n_bits=2).n_memories == 4
    assert bp.get_task("evidence_accumulation").n_memories == 2
    assert bp.get_task("delayed_addition").n_memories is None
    for name, epoch in [("flipflop", "hold"), ("delayed_addition", "delay"), ("evidence_accumulation", "delay")]:
        t = bp.get_task(name)
        assert t.memory_epoch == epoch and epoch in t.sample(2, np.random.default_rng(0)).epochs


def _bistable_flipflop_network(self_excitation):
    """One tanh unit per bit with recurrent weight w, input 1, readout 1: bistable for w > 1."""
    net = bp.make_network("lfrnn", 3, 3, n_units=3, tau=1.0, dt=1.0)
    params = net.init_params(np.random.default_rng(0))
    params["W"][:] = self_excitation * np.eye(3)
    params["W_in"][:] = 2.0 * np.eye(3)
    params["b"][:] = 0.0
    params["W_out"][:] = np.eye(3)
    params["b_out"][:] = 0.05  # a bias: a decayed memory reads out as +
    return net, params


def test_memory_test_separates_attractors_from_decay():
    task = bp.get_task("flipflop")
    rng = np.random.default_rng(0)
    net, attractor = _bistable_flipflop_network(2.0)    # two stable states per bit
    _, leaky = _bistable_flipflop_network(0.9)          # decays to 0 with time constant ~ 10 steps
    # on the training task both look fine in the early part of each gap ...
    good = memory_generalization(net, attractor, task, rng, factor=10)
    bad = memory_generalization(net, leaky, task, rng, factor=10)
    assert good["accuracy"] == 1.0 and good["passes"]
    # ... but after gaps 10x longer the decayed bits read out as the bias' sign: half wrong
    assert 0.3 < bad["accuracy"] < 0.7 and not bad["passes"]


def test_memory_test_settings_and_skip_for_tasks_without_variant():
    assert memory_test_settings(True) == {"factor": 10.0, "n_trials": 128}
    assert memory_test_settings(False) is None
    assert memory_test_settings({"factor": 3})["factor"] == 3
    with pytest.raises(ConfigError, match="unknown memory_test"):
        memory_test_settings({"factr": 3})
    with pytest.raises(ConfigError, match="> 1"):
        memory_test_settings({"factor": 0.5})

    class NoVariant(type(bp.get_task("flipflop"))):
        name = "flipflop_no_variant"

        def _memory_settings(self, factor):
            return None

    net, params = _bistable_flipflop_network(2.0)
    out = memory_generalization(net, params, NoVariant(), np.random.default_rng(0))
    assert out["accuracy"] is None and "no memory variant" in out["skipped"]


def test_each_task_says_what_solved_means():
    da = bp.get_task("delayed_addition")
    c = make_criterion(None, da)
    assert (c.kind, c.threshold, c.consecutive) == ("loss", 0.01, 3)
    assert make_criterion(None, bp.get_task("evidence_accumulation")).threshold == 0.9
    net = bp.make_network("lfrnn", 2, 1, n_units=8)
    r = bp.train(net, da, iterations=2, seed=0, early_stop=False)
    assert r.config["training"]["criterion"]["kind"] == "loss"


def test_memory_attractors_counts_stable_points_against_the_need():
    from bioplastic.analysis.attractors import memory_attractors

    task = bp.get_task("flipflop")
    net, attractor = _bistable_flipflop_network(2.0)
    out = memory_attractors(net, attractor, task, n_init=64)
    assert out["n_stable"] == 8 and out["n_required"] == 8 and out["formed"] is True
    _, leaky = _bistable_flipflop_network(0.9)
    out = memory_attractors(net, leaky, task, n_init=64)
    assert out["n_stable"] == 1 and out["formed"] is False
