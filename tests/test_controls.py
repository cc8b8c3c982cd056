"""The local-rule controls are wired as named: what each one may change, and nothing else."""
import numpy as np
import pytest

import bioplastic as bp
from bioplastic.rules import get_rule
from bioplastic.rules.context import Context
from bioplastic.training.local import train_local
from bioplastic.training.objective import loss_and_grads

STP = {"tcr_stp": {"eta_s": 0.02, "tau_s": 100.0}, "freeze_in": {"eta": 1.0}}


@pytest.mark.parametrize("kind,extra", [("lfrnn", {}), ("rank1", {}), ("plrnn", {"readout_from": "z"}),
                                        ("plrnn", {"readout_from": "relu"})])
def test_readout_rule_is_the_exact_readout_gradient(kind, extra):
    task = bp.get_task("flipflop", n_steps=20)
    net = bp.make_network(kind, 3, 3, n_units=8, **extra)
    params = net.init_params(np.random.default_rng(0))
    batch = task.sample(4, np.random.default_rng(1))
    rule = get_rule("readout")
    targets = rule.check(net)
    assert targets == ("W_out", "b_out")
    upd = rule.update(Context(net, params, batch).view(rule, targets), rule.init_state(net, params, None))
    exact = loss_and_grads(net, params, batch).grads
    for name in targets:
        np.testing.assert_allclose(upd.grads[name], exact[name], rtol=1e-12, atol=1e-14)


def _changed(rule_name, iterations=15):
    task = bp.get_task("flipflop", n_steps=30)
    net = bp.make_network("lfrnn", 3, 3, n_units=10, g=1.5)
    parts = rule_name.split("+")
    rule = get_rule(rule_name, **{k: v for k, v in STP.items() if k in parts})
    r = train_local(net, task, rule, iterations=iterations, optimizer="adam", lr=1e-2, seed=3, progress=False,
                    diagnostics_every=0, early_stop=False, memory_test=False)
    start = r.checkpoints[0]
    return {name for name in net.param_names if not np.array_equal(start[name], r.params[name])}


@pytest.mark.parametrize("rule,expected", [
    ("readout", {"W_out", "b_out"}),
    ("readout+tcr_stp", {"W_out", "b_out"}),
    ("readout+tcr_stp+freeze_in", {"W", "W_out", "b_out"}),
    ("tcr_stp+freeze_in", {"W"}),
    ("eprop+tcr_stp+freeze_in", {"W", "W_in", "b", "W_out", "b_out"}),
])
def test_controls_change_only_what_they_name(rule, expected):
    assert _changed(rule) == expected


def test_tcr_stp_alone_changes_nothing_and_says_so():
    net = bp.make_network("lfrnn", 3, 3, n_units=6)
    with pytest.raises(bp.ConfigError, match="modifies no parameter"):
        train_local(net, bp.get_task("flipflop", n_steps=20), "tcr_stp", iterations=1, seed=0, progress=False)
