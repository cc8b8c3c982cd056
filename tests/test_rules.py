"""Learning rules: registry, contract checks, composition, bad input, the
node-perturbation expectation, local training, freeze-in, diagnostics, CLI."""
import json

import numpy as np
import pytest

import bioplastic as bp
from bioplastic.cli import main
from bioplastic.errors import ConfigError, DivergenceError, UnknownNameError
from bioplastic.rules import (RULES, TCRSTP, Context, EProp, FreezeIn, NodePerturbation, Rule, Update,
                              UndeclaredSignalError, compose, get_rule, list_rules, register_rule,
                              rule_from_description)
from bioplastic.rules.context import check_reward
from bioplastic.rules.diagnostics import cosine, flat
from bioplastic.tasks.base import TaskBatch
from bioplastic.testing import RuleContractError, check_rule
from bioplastic.training.local import LOCAL_COLUMNS, train_local
from bioplastic.training.objective import loss_and_grads

BUILTINS = ["bptt", "eprop", "freeze_in", "node_perturbation", "tcr_stp"]


def small(kind="lfrnn", task="flipflop", n_units=12, n_steps=30, **kw):
    t = bp.get_task(task, n_steps=n_steps)
    return bp.make_network(kind, t.n_inputs, t.n_outputs, n_units=n_units, **kw), t


# -- registry and contract ------------------------------------------------------
def test_builtins_are_registered():
    assert set(BUILTINS) <= set(list_rules())
    assert get_rule("EProp".lower()).reads == ("pre", "post", "error", "feedback")
    assert get_rule("node_perturbation").reads == ("pre", "noise", "reward")
    assert not get_rule("bptt").local and get_rule("eprop").local


@pytest.mark.parametrize("name", BUILTINS + ["node_perturbation+tcr_stp", "eprop+tcr_stp+freeze_in"])
def test_every_rule_passes_the_contract_checks(name):
    passed = check_rule(name)
    assert any(p.startswith("check_trains[") for p in passed)


def test_rule_variants_pass_the_contract_checks():
    for rule in (EProp(feedback="random"), NodePerturbation(baseline="running", perturb_outputs=False),
                 FreezeIn(gate="reward", perturbation_std=0.1, controller=True)):
        check_rule(rule)


class _Plain(Rule):
    """A rule in plain NumPy: a Hebbian-flavoured readout delta rule."""

    name = "plain_numpy_test"
    reads = ("pre", "error")

    def computable(self, network):
        return ("W_out",)

    def update(self, ctx, state):
        return Update(grads={"W_out": np.einsum("tbo,tbn->on", ctx.error(), ctx.pre("W_out"))})


def test_a_plain_numpy_rule_registers_and_passes():
    register_rule(_Plain, overwrite=True)
    try:
        assert "plain_numpy_test" in list_rules()
        assert get_rule("plain_numpy_test").source == "tests" or get_rule("plain_numpy_test").source
        check_rule("plain_numpy_test")
    finally:
        RULES._items.pop("plain_numpy_test")


@pytest.mark.parametrize("broken, message", [
    ("outside", "updates \\['W'\\] outside its targets"),
    ("inplace", "changed params\\['W_out'\\] in place"),
    ("undeclared", "reads a signal it does not declare"),
    ("nan", "is not finite"),
])
def test_check_rule_catches_broken_rules(broken, message):
    class Broken(_Plain):
        name = "broken_" + broken

        def update(self, ctx, state):
            g = np.ones_like(ctx.params["W_out"])
            if broken == "outside":
                return Update(grads={"W_out": g, "W": np.ones_like(ctx.params["W"])})
            if broken == "inplace":
                ctx.params["W_out"] += 1.0
            if broken == "undeclared":
                ctx.reward()
            if broken == "nan":
                g[0, 0] = np.nan
            return Update(grads={"W_out": g})

    with pytest.raises(RuleContractError, match=message):
        check_rule(Broken())


def test_registering_a_rule_without_update_is_a_clear_error():
    class NoUpdate(Rule):
        name = "no_update"
        reads = ("pre",)

    with pytest.raises(ConfigError, match="missing method\\(s\\) 'update'"):
        register_rule(NoUpdate)
    with pytest.raises(RuleContractError, match="missing method"):
        check_rule(NoUpdate())
    assert "no_update" not in RULES


def test_names_settings_and_descriptions():
    with pytest.raises(UnknownNameError, match="unknown rule 'epropp'; did you mean 'eprop'"):
        get_rule("epropp")
    with pytest.raises(ConfigError, match="'eta' \\(did you mean 'eta_s'\\?\\)"):
        get_rule("tcr_stp", eta=0.1)
    with pytest.raises(ConfigError, match="keyed by part name"):
        get_rule("eprop+tcr_stp", eta_s=0.1)
    r = get_rule("eprop+tcr_stp+freeze_in", tcr_stp={"eta_s": 0.02, "tau_s": float("inf")},
                 freeze_in={"controller": {"low": 0.3}})
    again = rule_from_description(json.loads(json.dumps(r.describe())))
    assert again.describe() == r.describe()
    assert again.stp == (0.02, float("inf"))


# -- bad input ------------------------------------------------------------------
def test_rule_asked_to_modify_a_missing_parameter():
    net, _ = small("lfrnn")
    with pytest.raises(ConfigError, match="asked to modify 'A', which a 'lfrnn' network does not have"):
        EProp(modifies=("W", "A")).check(net)
    with pytest.raises(ConfigError, match="cannot compute an update for 'W_out'"):
        NodePerturbation(perturb_outputs=False, modifies=("W_out",)).check(net)
    with pytest.raises(ConfigError, match="'chi', which this 'rank1' network does not train"):
        EProp(modifies=("chi",)).check(small("rank1")[0])
    with pytest.raises(ConfigError, match="supports models lfrnn, rank1, plrnn; got a 'lstm'"):
        EProp().check(small("lstm")[0])


def test_compositions_that_cannot_work_are_refused():
    net, task = small()
    with pytest.raises(ConfigError, match="compose it with 'tcr_stp'"):
        compose("eprop", "freeze_in").check(net)
    with pytest.raises(ConfigError, match="cannot be composed with 'tcr_stp'"):
        compose("bptt", "tcr_stp").check(net)
    with pytest.raises(ConfigError, match="appears twice"):
        compose("eprop", "eprop").check(net)
    with pytest.raises(ConfigError, match="modifies no parameter"):
        train_local(net, task, "tcr_stp", iterations=1)
    with pytest.raises(ConfigError, match="has no 'tcr_stp' part"):
        train_local(net, task, "eprop", iterations=1, lambda_tcr=2.0)
    with pytest.raises(ConfigError, match="tau_s must be > 0"):
        TCRSTP(tau_s=0).check(net)
    with pytest.raises(ConfigError, match="controller: unknown key\\(s\\): 'hihg' \\(did you mean 'high'"):
        FreezeIn(controller={"hihg": 1}).check(net)


def test_undeclared_signal_is_refused():
    net, task = small()
    params = net.init_params(np.random.default_rng(0))
    ctx = Context(net, params, task.sample(2, np.random.default_rng(1)))
    view = ctx.view(EProp(), ("W",))
    with pytest.raises(UndeclaredSignalError, match="rule 'eprop' reads 'reward'"):
        view.reward()
    with pytest.raises(UndeclaredSignalError, match="reads 'noise'"):
        view.perturb(np.zeros((30, 2, 12)))


def test_nonfinite_reward_is_a_clear_error_and_keeps_the_run_file(tmp_path):
    with pytest.raises(DivergenceError, match="non-finite reward .* in 1 of 3 trial"):
        check_reward([0.1, np.inf, -0.2], iteration=7)
    net, task = small()
    path = tmp_path / "run.h5"
    with pytest.raises(DivergenceError, match="non-finite reward") as info:
        train_local(net, task, NodePerturbation(), iterations=20, optimizer="sgd", lr=1e160, seed=0,
                    checkpoint_every=1, run_file=path, early_stop=False, diagnostics_every=0)
    data = bp.read_run(path)
    assert data.status == "diverged"
    assert len(data.checkpoints) >= 2  # what was written before is still there
    assert all(np.all(np.isfinite(v)) for v in data.checkpoints[0].values())
    assert info.value.result is not None and info.value.iteration >= 1


# -- node perturbation: expected update = gradient --------------------------------
@pytest.mark.parametrize("kind", ["lfrnn", "plrnn", "rank1"])
def test_node_perturbation_expected_update_is_the_gradient(kind):
    """Averaged over many perturbations (small sigma, unperturbed baseline), the
    node-perturbation update points along the BPTT gradient."""
    rng = np.random.default_rng(1)
    net, task = small(kind, n_units=8, n_steps=15)
    params = net.init_params(rng)
    b0 = task.sample(4, rng)
    K = 1000  # the same 4 trials, each with K independent perturbations
    tile = lambda a: np.tile(a, (1, K, 1))  # noqa: E731
    batch = TaskBatch(tile(b0.inputs), tile(b0.targets), tile(b0.loss_mask),
                      {c: np.tile(v, K) for c, v in b0.trial_table.items()}, {}, b0.dt)
    rule = NodePerturbation(sigma=1e-3)
    targets = rule.check(net)
    upd = rule.update(Context(net, params, batch, rng=np.random.default_rng(3)).view(rule, targets), {})
    g = loss_and_grads(net, params, batch).grads
    assert cosine(flat(upd.grads, targets), flat(g, targets)) > 0.97
    for k in targets:
        assert cosine(upd.grads[k].ravel(), g[k].ravel()) > 0.75, k
    # one perturbation per trial is a noisy estimate: the average is what aligns
    few = TaskBatch(b0.inputs, b0.targets, b0.loss_mask, b0.trial_table, {}, b0.dt)
    one = rule.update(Context(net, params, few, rng=np.random.default_rng(3)).view(rule, targets), {})
    assert cosine(flat(one.grads, targets), flat(g, targets)) < 0.9


def test_node_perturbation_running_baseline():
    net, task = small()
    rule = NodePerturbation(baseline="running", beta=0.5)
    r = train_local(net, task, rule, iterations=4, seed=0, early_stop=False, diagnostics_every=0)
    assert np.all(np.isfinite(r.history["grad_norm"]))


# -- local training ---------------------------------------------------------------
def test_train_local_is_reproducible_and_diagnostics_do_not_change_it():
    net, task = small()
    kw = dict(iterations=6, seed=3, early_stop=False, optimizer="adam", lr=1e-3)
    a = train_local(net, task, "node_perturbation+tcr_stp", diagnostics_every=0, **kw)
    b = train_local(net, task, "node_perturbation+tcr_stp", diagnostics_every=1, **kw)
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])
    assert set(b.history) == set(bp.training.HISTORY_COLUMNS) | set(LOCAL_COLUMNS)
    assert np.all(np.isnan(a.history["alignment"]))
    assert np.all(np.isfinite(b.history["alignment"])) and np.all(b.history["update_variance"] > 0)


def test_alignment_and_variance_separate_the_rules():
    """BPTT aligns with itself; e-prop points roughly along the gradient with
    little variance; node perturbation is far noisier."""
    net, task = small(n_units=16)
    kw = dict(iterations=5, seed=1, early_stop=False, diagnostics_every=1, lr=1e-4)
    h = {name: train_local(net, task, name, **kw).history for name in ("bptt", "eprop", "node_perturbation")}
    np.testing.assert_allclose(h["bptt"]["alignment"], 1.0, atol=1e-12)
    assert np.mean(h["eprop"]["alignment"]) > 0.5
    assert np.mean(h["node_perturbation"]["alignment"]) < np.mean(h["eprop"]["alignment"])
    rel = {k: np.mean(v["update_variance"] / v["grad_norm"] ** 2) for k, v in h.items()}
    assert rel["node_perturbation"] > 2 * rel["eprop"]


def test_eprop_learns_the_flipflop_and_writes_a_run_file(tmp_path):
    net, task = small(n_units=32, n_steps=50, g=1.5)
    r = train_local(net, task, "eprop", iterations=150, optimizer="adam", lr=3e-3, seed=0,
                    run_file=tmp_path / "run.h5", checkpoint_every=50, diagnostics_every=25)
    first, last = r.history["task_loss"][:5].mean(), r.history["task_loss"][-5:].mean()
    assert last < 0.6 * first
    data = bp.read_run(tmp_path / "run.h5")
    assert data.config["training"]["rule"]["name"] == "eprop"
    assert data.config["training"]["local"] is True
    assert "alignment" in data.history and sorted(data.checkpoints)[:3] == [0, 50, 100]


def test_composition_weights_scale_updates():
    net, task = small()
    params = net.init_params(np.random.default_rng(0))
    batch = task.sample(3, np.random.default_rng(1))
    one, two = compose(EProp()), compose(EProp(), weights=[2.0])
    u1 = one.update(Context(net, params, batch).view(one, one.check(net)), one.init_state(net, params, None))
    u2 = two.update(Context(net, params, batch).view(two, two.check(net)), two.init_state(net, params, None))
    np.testing.assert_allclose(u2.grads["W"], 2 * u1.grads["W"])
    assert (EProp() + TCRSTP() + FreezeIn()).name == "eprop+tcr_stp+freeze_in"


# -- freeze-in (the project's reconstruction) ------------------------------------
def _ctx(net, params, batch, eta_s=0.05):
    return Context(net, params, batch, stp=(eta_s, float("inf")), rng=np.random.default_rng(0))


def test_freeze_in_consolidates_the_stp_term():
    net, task = small()
    params = net.init_params(np.random.default_rng(0))
    batch = task.sample(4, np.random.default_rng(1))
    rule = FreezeIn(eta=0.5)
    ctx = _ctx(net, params, batch)
    upd = rule.update(ctx.view(rule, ("W",)), rule.init_state(net, params, None))
    np.testing.assert_allclose(upd.deltas["W"], 0.5 * ctx.stp_end().mean(axis=0))
    # a small consolidation step lowers the truncated TCR sum of the same batch (SPEC 4 identity)
    T, B, N = 30, 4, net.n_units

    def truncated_tcr(W):
        traj = net.forward(params, batch.inputs)
        p = params.copy()
        p["W"] = W
        x0 = traj.states[:-1].reshape(T * B, N)
        x1 = net.forward(p, batch.inputs.reshape(1, T * B, -1), x0=x0).states[1]
        return np.sum((x1 - x0) ** 2)

    small_step = FreezeIn(eta=0.05).update(_ctx(net, params, batch, 1e-3).view(rule, ("W",)), {}).deltas["W"]
    assert truncated_tcr(params["W"] + small_step) < truncated_tcr(params["W"])
    # goal-agnostic freeze-in over training: activity changes less
    r = train_local(net, task, "eprop+tcr_stp+freeze_in", iterations=30, seed=0, early_stop=False,
                    lr=1e-12, diagnostics_every=0)  # the task rule is switched off by its tiny lr
    assert r.history["tcr_loss"][-3:].mean() < 0.95 * r.history["tcr_loss"][:3].mean()


def test_freeze_in_reward_gate_and_perturbations():
    net, task = small()
    params = net.init_params(np.random.default_rng(0))
    batch = task.sample(4, np.random.default_rng(1))
    gated = FreezeIn(gate="reward")
    state = {"lambda": 1.0, "m0": None, "Rbar": 1e9}  # nothing beats this running mean
    upd = gated.update(_ctx(net, params, batch).view(gated, ("W",)), state)
    assert upd.info["gate"] == 0.0 and np.all(upd.deltas["W"] == 0)
    noisy = FreezeIn(eta=0.0, perturbation_std=0.3)
    d = noisy.update(_ctx(net, params, batch).view(noisy, ("W",)), noisy.init_state(net, params, None)).deltas["W"]
    assert d.std() == pytest.approx(0.3 / np.sqrt(net.n_units), rel=0.2)


def test_freeze_in_controller_stops_a_runaway():
    """Too strong a consolidation runs away (W grows without bound, units
    saturate and flip); the homeostatic lambda_TCR(t) controller sees the
    activity change leave its band and switches TCR off."""
    net, task = small(n_units=16, g=1.5)
    kw = dict(iterations=40, seed=0, early_stop=False, optimizer="adam", lr=3e-3, diagnostics_every=0)
    stp = {"eta_s": 0.02, "tau_s": 100.0}
    plain = train_local(net, task, get_rule("eprop+tcr_stp+freeze_in", tcr_stp=stp, freeze_in={"eta": 100.0}), **kw)
    ctrl = train_local(net, task, get_rule("eprop+tcr_stp+freeze_in", tcr_stp=stp,
                                           freeze_in={"eta": 100.0, "controller": True}), **kw)
    m0 = plain.history["tcr_loss"][0]
    assert plain.history["tcr_loss"][-1] > 20 * m0 and np.linalg.norm(plain.params["W"]) > 1e20
    assert np.all(plain.history["lambda_tcr"] == 1.0)
    assert ctrl.history["lambda_tcr"][0] == 1.0 and ctrl.history["lambda_tcr"][-1] < 1e-3
    assert np.linalg.norm(ctrl.params["W"]) < 1e4


def test_freeze_in_controller_backs_off_when_activity_freezes():
    rule = FreezeIn(controller={"low": 0.5, "recover": 0.5})
    net, task = small()
    params = net.init_params(np.random.default_rng(0))
    batch = task.sample(4, np.random.default_rng(1))
    state = rule.init_state(net, params, None)
    state["m0"] = 10 * _ctx(net, params, batch).activity()  # activity is now a tenth of its start
    rule.update(_ctx(net, params, batch).view(rule, ("W",)), state)
    assert state["lambda"] == pytest.approx(0.2)  # 1 * rho / low = 0.1 / 0.5
    state["m0"] = _ctx(net, params, batch).activity()  # back inside the band: recovers halfway to 1
    rule.update(_ctx(net, params, batch).view(rule, ("W",)), state)
    assert state["lambda"] == pytest.approx(0.6)


def test_protocol_runs_tiny(tmp_path, monkeypatch):
    """local_rules_tcr end to end on a tiny setting: every block, output and claim present and consistent."""
    from bioplastic.protocol import load_protocol

    mod = load_protocol("local_rules_tcr")
    monkeypatch.setattr(mod, "MODEL", dict(mod.MODEL, n_units=8))
    monkeypatch.setattr(mod, "TASKS", {"flipflop": {"name": "flipflop", "n_steps": 30}})
    monkeypatch.setattr(mod, "QUICK", {
        "seeds": 2, "tasks": ["flipflop"], "rules": ["eprop"], "budgets": {"flipflop": 20}, "diagnostics_every": 10,
        "phase": {"etas": [1.0], "eta_s": [0.02], "budget": 10},
        "cures": {"cells": [[1.0, 0.02]], "perturbation_std": [0.03], "controller": True},
        "predictions": {"tau_s": [30.0, 100.0], "budget": 20, "continue_after": 5, "checkpoint_every": 5}})
    pred = mod.main(tmp_path, quick=True)
    conds = pred["results"]["controls"]["flipflop"]["conditions"]
    assert set(conds) == set(mod.CONTROLS) | {"eprop", "eprop+tcr_stp", "eprop+tcr_stp+freeze_in"}
    for c in conds.values():
        assert c["n"] == 2 and sum(c["outcomes"].values()) == 2
    speed = pred["results"]["controls"]["flipflop"]["speedup_vs_alone"]
    assert set(speed) == {"readout+tcr_stp", "readout+tcr_stp+freeze_in", "eprop+tcr_stp", "eprop+tcr_stp+freeze_in"}
    cells = pred["results"]["freeze_in"]
    assert {c["cure"] for c in cells.values()} == {"none", "noise 0.03", "controller"}
    assert [c["name"] for c in pred["claims"]["g"]["cells"]] == ["flipflop / eprop +tcr_stp",
                                                                 "flipflop / eprop +tcr_stp+freeze_in"]
    assert pred["claims"]["h"]["cells"][-1]["name"].startswith("all cells pooled")
    assert set(pred["predictions"]) == {"blocking_stp_during_search", "blocking_stp_after_search",
                                        "tau_s_fastest_range", "fast_weight_size", "fast_weight_sign"}
    assert pred["provenance"]["seeds"] == [0, 1] and pred["provenance"]["command"]
    for png in ("control_outcomes", "loss_curves", "freeze_in_phase_diagram", "freeze_in_cures", "predictions",
                "iterations_to_criterion_flipflop"):
        assert (tmp_path / f"{png}.png").stat().st_size > 1000
    # the no-learning control trained nothing; the unblocked prediction runs kept checkpoints for S
    static = bp.read_run(tmp_path / "runs" / "controls_flipflop_tcr_stp_alone_s0.h5")
    assert static.history["iteration"].tolist() == [0]
    on = bp.read_run(tmp_path / "runs" / "pred_on_s0.h5")
    assert len(on.checkpoints) >= 3
    assert "Predictions for experiments" in (tmp_path / "report.md").read_text()


# -- command line ------------------------------------------------------------------
def test_cli_rules_list(capsys):
    assert main(["rules", "list"]) == 0
    out = capsys.readouterr().out
    for name in BUILTINS:
        assert name in out
    assert "pre, noise, reward" in out and "bioplastic" in out
    assert main(["rules", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["freeze_in"]["modifies"] == {"lfrnn": ["W"], "plrnn": ["W"]}


def test_cli_train_with_a_local_rule(tmp_path, capsys):
    assert main(["train", "--model", "lfrnn", "--task", "flipflop", "--rule", "eprop+tcr_stp", "--tcr", "0.5",
                 "--seed", "2", "--iterations", "3", "--out", str(tmp_path), "--no-progress"]) == 0
    data = bp.read_run(tmp_path / "run.h5")
    assert data.config["training"]["rule"]["name"] == "eprop+tcr_stp"
    assert data.config["training"]["lambda_tcr"]["value"] == 0.5
    np.testing.assert_allclose(data.history["lambda_tcr"], 0.5)
    assert main(["train", "--model", "lfrnn", "--task", "flipflop", "--rule", "hebbian", "--out",
                 str(tmp_path)]) == 2
    assert "unknown rule 'hebbian'" in capsys.readouterr().err
    assert main(["rules", "check", "tcr_stp"]) == 0


def test_tuning_protocol_tiny(tmp_path, monkeypatch):
    """local_rules_tuning on a tiny grid: stage 1, node perturbation's batch stage, the long-budget stage."""
    from bioplastic.protocol import load_protocol

    mod = load_protocol("local_rules_tuning")
    grid = {"node_perturbation": [({"sigma": 0.1, "baseline": "unperturbed"}, {"lr": 1e-3, "batch_size": 8})],
            "eprop": [({"feedback": "symmetric"}, {"lr": 1e-2, "batch_size": 8}),
                      ({"feedback": "random", "feedback_scale": 1.0}, {"lr": 1e-2, "batch_size": 8})],
            "readout": [({}, {"lr": 1e-2, "batch_size": 8})]}
    monkeypatch.setattr(mod, "tuning_grid", lambda: {k: list(v) for k, v in grid.items()})
    monkeypatch.setattr(mod, "BATCH_STAGE", (4,))
    monkeypatch.setattr(mod, "MODEL", dict(mod.MODEL, n_units=6))
    monkeypatch.setattr(mod, "TASKS", {"flipflop": {"name": "flipflop", "n_steps": 20}})
    monkeypatch.setattr(mod, "QUICK", {"seeds": 2, "budget": 6, "rules": list(grid), "every": 1, "long_budget": 9})
    pred = mod.main(tmp_path, quick=True)
    res = pred["results"]
    assert [r["label"] for r in res["node_perturbation"]["ranked"]].count(
        "sigma=0.1 baseline=unperturbed lr=0.001 batch=4") == 1  # the batch stage ran
    assert len(res["eprop"]["ranked"]) == 2 and res["eprop"]["best"]["n"] == 2
    for rule in grid:  # nothing solves in 6 iterations: every rule gets the long-budget stage
        assert res[rule]["long_budget"]["budget"] == 9 and res[rule]["long_budget"]["n"] == 2
        assert pred["best"][rule]["training"]["lr"] > 0
    assert (tmp_path / "tuning.png").stat().st_size > 1000
    assert "would need more than 9 iterations" in (tmp_path / "report.md").read_text()
