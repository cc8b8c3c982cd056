"""Collapse onto a trivial attractor: constructed networks with known answers."""
import json

import numpy as np
import pytest
from scipy.optimize import brentq

import bioplastic as bp
from bioplastic.analysis.collapse import (OUTCOMES, REPORT_KEYS, classify_outcome, collapse_report,
                                          end_of_silence_index, greedy_clusters)


@pytest.fixture(scope="module")
def task():
    return bp.get_task("flipflop")


def _lfrnn(w, *, w_in=1.0, b=0.0, n_units=3):
    """Decoupled tanh units: W = w I, W_in = w_in (identity-like), bias b."""
    net = bp.make_network("lfrnn", 3, 3, n_units=n_units)
    params = net.init_params(np.random.default_rng(0))
    params["W"][:] = w * np.eye(n_units)
    params["W_in"][:] = w_in * np.eye(n_units, 3)
    params["b"][:] = b
    params["W_out"][:] = np.eye(3, n_units)
    params["b_out"][:] = 0.0
    return net, params


def test_contracting_network_collapses_onto_the_origin(task):
    net, params = _lfrnn(0.5, w_in=5.0, n_units=6)
    rep = collapse_report(net, params, task, n_trials=32)
    assert set(rep) == set(REPORT_KEYS)
    assert rep["collapsed"] is True and rep["diverged"] is False
    assert rep["trivial_is_quiescent"] is True and rep["trivial_norm"] < 1e-6
    assert rep["n_memories_held"] == 1 and rep["n_end_clusters"] == 1 and rep["n_required"] == 8
    assert rep["share_at_trivial"] == 1.0 and rep["spread"] < 1e-6
    assert rep["n_stable"] == 1 and rep["trivial_is_fixed_point"] is True
    assert rep["settled"] is True and rep["memory_variant"] is True
    json.dumps(rep)  # JSON-friendly


def test_biased_contracting_network_collapses_away_from_the_origin(task):
    b = np.array([1.0, -0.5, 0.3])
    net, params = _lfrnn(0.5, w_in=5.0, b=b)
    rep = collapse_report(net, params, task, n_trials=32)
    # each unit's fixed point solves x = 0.5 tanh(x) + b_i (unique: the slope 0.5 < 1)
    x_star = np.array([brentq(lambda x, bi=bi: x - 0.5 * np.tanh(x) - bi, -10, 10) for bi in b])
    assert rep["collapsed"] is True and rep["trivial_is_quiescent"] is False
    assert abs(rep["trivial_norm"] - np.linalg.norm(x_star) / np.sqrt(3)) < 1e-3
    np.testing.assert_allclose(rep["trivial_state"], x_star, atol=1e-6)
    assert rep["n_memories_held"] == 1
    assert rep["distance_to_trivial"] > 0.1  # the inputs still moved the states before the settle


def test_bistable_units_hold_the_eight_memories(task):
    # W = 2 I: each tanh unit has stable states +-1.915; a pulse of 3 steps
    # through W_in = 20 flips its unit (alpha = 0.1).
    net, params = _lfrnn(2.0, w_in=20.0)
    rep = collapse_report(net, params, task, n_trials=64)
    assert rep["collapsed"] is False and rep["diverged"] is False
    assert rep["n_memories_held"] == 8 and rep["n_stable"] == 8
    assert rep["share_at_trivial"] < 0.5
    assert rep["trivial_is_fixed_point"] is True
    np.testing.assert_allclose(np.abs(rep["trivial_state"]), brentq(lambda x: x - 2 * np.tanh(x), 1, 3),
                               atol=1e-8)
    assert len(rep["stable_points"]) == 8
    assert classify_outcome(False, False, rep) == "unsolved"


def test_exploding_plrnn_is_diverged_not_collapsed(task):
    net = bp.make_network("plrnn", 3, 3, n_units=3)
    params = net.init_params(np.random.default_rng(0))
    params["A"][:] = 1.5  # z[t+1] = 1.5 z[t] + ...: overflows during the 2000-step settle
    params["W"][:] = 0.0
    params["C"][:] = np.eye(3)
    params["h"][:] = 0.0
    rep = collapse_report(net, params, task, n_trials=8)
    assert rep["diverged"] is True and rep["collapsed"] is False
    assert rep["n_memories_held"] is None and rep["share_at_trivial"] is None
    assert classify_outcome(False, False, rep) == "diverged"
    json.dumps(rep)


def test_non_finite_params_are_diverged(task):
    net, params = _lfrnn(0.5)
    params["W"][0, 0] = np.nan
    rep = collapse_report(net, params, task, n_trials=4)
    assert rep["diverged"] is True and rep["collapsed"] is False


def test_classify_outcome_priorities():
    collapsed = {"collapsed": True, "diverged": False}
    held = {"collapsed": False, "diverged": False}
    assert classify_outcome(True, True, collapsed) == "diverged"
    assert classify_outcome(True, False, {"collapsed": False, "diverged": True}) == "diverged"
    assert classify_outcome(True, False, collapsed) == "solved"
    assert classify_outcome(False, False, collapsed) == "collapsed"
    assert classify_outcome(False, False, held) == "unsolved"
    assert classify_outcome(False, False, None) == "unsolved"
    assert classify_outcome(True, False, None) == "solved"
    assert set(OUTCOMES) == {"diverged", "solved", "collapsed", "unsolved"}


def test_same_seed_same_report(task):
    net = bp.make_network("lfrnn", 3, 3, n_units=16, g=1.5)
    params = net.init_params(np.random.default_rng(3))
    a, b = (collapse_report(net, params, task, n_trials=16, seed=7) for _ in range(2))
    a.pop("seconds"), b.pop("seconds")
    assert a == b


def test_end_of_silence_is_the_end_of_the_delay():
    task = bp.get_task("evidence_accumulation")
    batch = task.sample(4, np.random.default_rng(0))
    np.testing.assert_array_equal(end_of_silence_index(batch, "delay"), task.delay_stop)
    np.testing.assert_array_equal(end_of_silence_index(batch, None), task.n_steps)


def test_end_of_silence_skips_a_final_pulse():
    task = bp.get_task("flipflop", n_steps=40)
    batch = task.sample(2, np.random.default_rng(0))
    batch.inputs[:] = 0.0
    batch.inputs[-3:, 0, 1] = 1.0  # trial 0 ends in a pulse: its last silent step is T - 4
    np.testing.assert_array_equal(end_of_silence_index(batch, "hold"), [37, 40])


def test_greedy_clusters_takes_the_largest_first():
    X = np.array([[0.0], [0.01], [0.02], [5.0], [5.01], [9.0]])
    labels, centres = greedy_clusters(X, 0.05)
    np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1, 2])
    assert centres[0] in (0, 1, 2)


def test_invalid_settings(task):
    net, params = _lfrnn(0.5)
    with pytest.raises(bp.errors.ConfigError):
        collapse_report(net, params, task, tol=0)
    with pytest.raises(bp.errors.ConfigError):
        collapse_report(net, params, task, collapse_share=1.5)
    with pytest.raises(bp.errors.ConfigError):
        collapse_report(net, params, bp.get_task("delayed_addition"))


def test_greedy_clusters_ends_far_from_the_origin_and_at_zero_radius():
    # |x|^2 + |y|^2 - 2 x.y cancels catastrophically at |x| ~ 1e8: a point could end up "farther
    # than the radius from itself" and the loop never finished (a protocol hung on such a network).
    rng = np.random.default_rng(0)
    X = 1e8 + rng.standard_normal((64, 32)) * 1e-3
    labels, centres = greedy_clusters(X, 0.01)
    assert labels.min() == 0 and len(centres) == len(set(labels.tolist()))
    labels, centres = greedy_clusters(rng.standard_normal((5, 3)), 0.0)
    assert sorted(labels.tolist()) == [0, 1, 2, 3, 4]
