"""Fast-weight statistics of TCR-STP: what a paired recording would measure."""
import numpy as np
import pytest

import bioplastic as bp
from bioplastic.analysis.fast_weights import fast_weight_statistics
from bioplastic.rules.context import stp_kernel_args
from bioplastic.rules.models import leaky_form, simulate


@pytest.mark.parametrize("kind", ["lfrnn", "plrnn"])
def test_statistics_match_a_direct_count(kind):
    task = bp.get_task("flipflop", n_steps=40)
    net = bp.make_network(kind, 3, 3, n_units=6, **({"g": 1.5} if kind == "lfrnn" else {}))
    params = net.init_params(np.random.default_rng(4))
    stats = fast_weight_statistics(net, params, task, (0.05, 30.0), n_trials=5, seed=2)
    batch = task.sample(5, np.random.default_rng(2))
    S = simulate(net, params, np.ascontiguousarray(batch.inputs), stp=stp_kernel_args((0.05, 30.0), net.dt)).extra["S_end"]
    W = leaky_form(net, params).W
    pairs = [(b, i, j) for b in range(5) for i in range(6) for j in range(6) if kind == "lfrnn" or i != j]
    agree = [np.sign(S[b, i, j]) * np.sign(W[i, j]) for b, i, j in pairs]
    assert stats["sign_index"] == pytest.approx(np.mean(agree), abs=1e-12)
    assert stats["depressing_fraction"] == pytest.approx(np.mean(np.array(agree) < 0), abs=1e-12)
    off = [(i, j) for i in range(6) for j in range(6) if kind == "lfrnn" or i != j]
    per_trial = [np.median([abs(S[b, i, j]) for i, j in off]) for b in range(5)]
    assert stats["relative_size"] == pytest.approx(np.median(per_trial) / np.median([abs(W[i, j]) for i, j in off]))
    assert stats["mean_S"] == pytest.approx(np.mean([S[b, i, j] for b, i, j in pairs]))
    assert -1 <= stats["sign_index"] <= 1 and stats["relative_size"] > 0


def test_no_stp_strength_means_no_fast_change_and_nan_weights_give_none():
    task = bp.get_task("flipflop", n_steps=30)
    net = bp.make_network("lfrnn", 3, 3, n_units=5)
    params = net.init_params(np.random.default_rng(0))
    still = fast_weight_statistics(net, params, task, (0.0, 100.0), n_trials=3)
    assert still["mean_abs_S"] == 0.0 and still["relative_size"] == 0.0
    params["W"][0, 0] = np.nan
    assert set(fast_weight_statistics(net, params, task, (0.05, 100.0), n_trials=3).values()) == {None}
