"""Local-rule runs (e-prop, node perturbation, TCR-STP, freeze-in...) interrupted
after a checkpoint resume from their run file and end bit for bit as the
uninterrupted run, as BPTT runs do (tests/test_io.py, tests/test_kill_resume.py)."""
import h5py
import numpy as np
import pytest

import bioplastic as bp
import bioplastic.training.local as local
from bioplastic.cli import main
from bioplastic.errors import ConfigError, DivergenceError, SchemaError
from bioplastic.io import read_run
from bioplastic.io.runfile import decode_state, encode_state
from bioplastic.rules import EProp, NodePerturbation, get_rule
from bioplastic.seeding import make_streams
from bioplastic.training.local import train_local

#: name -> (rule factory, extra train_local settings)
CASES = {
    "eprop": (lambda: get_rule("eprop"), dict(optimizer="adam", lr=3e-3)),
    "eprop_random": (lambda: get_rule("eprop", feedback="random"), {}),
    "np_running": (lambda: get_rule("node_perturbation", baseline="running"), {}),
    "freeze_in": (lambda: get_rule("eprop+tcr_stp+freeze_in",
                                   freeze_in={"controller": True, "perturbation_std": 0.05}), {}),
    # a narrow band moves the controller's lambda, the gate its running mean, and
    # the search-phase schedule keeps a state of its own
    "freeze_in_gated": (lambda: get_rule("eprop+tcr_stp+freeze_in",
                                         freeze_in={"controller": {"low": 0.9, "high": 1.1}, "gate": "reward",
                                                    "perturbation_std": 0.05}),
                        dict(lambda_tcr={"kind": "search_phase", "value": 1.0, "warmup": 5, "window": 10})),
    "readout": (lambda: get_rule("eprop", modifies=("W_out", "b_out")), {}),
}
SETTINGS = dict(iterations=40, seed=5, checkpoint_every=10, diagnostics_every=10, early_stop=False,
                eval_batch_size=64)


def small():
    task = bp.get_task("flipflop", n_steps=30)
    return bp.make_network("lfrnn", 3, 3, n_units=12), task


def _interrupt_after(monkeypatch, n_calls):
    """Make the n-th parameter update (iteration n - 1) raise KeyboardInterrupt, as a Ctrl-C would."""
    real, calls = local._apply, {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == n_calls:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(local, "_apply", flaky)


def _interrupted(monkeypatch, path, n_calls, *args, **kw):
    _interrupt_after(monkeypatch, n_calls)
    with pytest.raises(KeyboardInterrupt):
        train_local(*args, run_file=path, **kw)
    monkeypatch.undo()
    return read_run(path)


def assert_same_file(path, ref_path):
    """Two run files hold the same run: parameters, history (NaN-aware), checkpoints, outcome."""
    a, b = read_run(path), read_run(ref_path)
    assert a.status == b.status
    assert sorted(a.params) == sorted(b.params) and sorted(a.history) == sorted(b.history)
    for k in b.params:
        np.testing.assert_array_equal(a.params[k], b.params[k], err_msg=k, strict=True)
    for k in b.history:
        np.testing.assert_array_equal(a.history[k], b.history[k], err_msg=k, strict=True)
    assert sorted(a.checkpoints) == sorted(b.checkpoints)
    for it, p in b.checkpoints.items():
        for k in p:
            np.testing.assert_array_equal(a.checkpoints[it][k], p[k], err_msg=f"checkpoint {it} {k}", strict=True)
    skip = {"created"}
    assert {k: v for k, v in a.attrs.items() if k not in skip | {"config"}} == \
        {k: v for k, v in b.attrs.items() if k not in skip | {"config"}}
    assert {k: v for k, v in a.config.items() if k != "resumed_at"} == b.config


def assert_same_result(r, ref):
    for k in ref.params:
        np.testing.assert_array_equal(r.params[k], ref.params[k], err_msg=k, strict=True)
    assert sorted(r.history) == sorted(ref.history)
    for k in ref.history:  # includes the local columns alignment, update_variance
        np.testing.assert_array_equal(r.history[k], ref.history[k], err_msg=k, strict=True)
    assert (r.converged_at, r.extra["confirmed_at"]) == (ref.converged_at, ref.extra["confirmed_at"])
    assert r.status == ref.status
    assert r.final_accuracy == ref.final_accuracy
    assert r.memory_generalization == ref.memory_generalization
    assert r.outcome() == ref.outcome()


@pytest.mark.parametrize("case", list(CASES))
def test_local_resume_equals_uninterrupted(tmp_path, monkeypatch, case):
    make_rule, extra = CASES[case]
    net, task = small()
    kw = {**SETTINGS, **extra}
    full = train_local(net, task, make_rule(), run_file=tmp_path / "full.h5", **kw)
    part = _interrupted(monkeypatch, tmp_path / "part.h5", 26, net, task, make_rule(), **kw)
    assert part.status == "running" and part.resume["iteration"] == 20
    assert "rule_state" in part.resume and "diag_rng" in part.resume
    assert len(part.history["iteration"]) == 20
    resumed = bp.training.resume(tmp_path / "part.h5")
    assert resumed.config["resumed_at"] == 20
    assert_same_result(resumed, full)
    assert_same_file(tmp_path / "part.h5", tmp_path / "full.h5")
    assert np.isfinite(full.history["alignment"][30])  # diagnostics after the resume point took part


def test_rule_state_is_stored_bit_for_bit(tmp_path, monkeypatch):
    """The random feedback matrix and the running baseline come back exactly, with their types."""
    net, task = small()
    rule = get_rule("eprop+node_perturbation", node_perturbation={"baseline": "running"})
    part = _interrupted(monkeypatch, tmp_path / "part.h5", 12, net, task, rule, **SETTINGS)
    state = part.resume["rule_state"]
    assert state["targets"] == [tuple(rule.rules[0].check(net)), tuple(rule.rules[1].check(net))]
    assert isinstance(state["parts"][1]["baseline"], float)
    eprop = get_rule("eprop", feedback="random")
    part = _interrupted(monkeypatch, tmp_path / "f.h5", 12, net, task, eprop, **SETTINGS)
    F = part.resume["rule_state"]["F"]
    ref = eprop.init_state(net, net.init_params(np.random.default_rng(0)), make_streams(5)["rule"])["F"]
    assert F.dtype == ref.dtype == net.dtype
    np.testing.assert_array_equal(F, ref, strict=True)


def test_state_codec_round_trips_through_hdf5(tmp_path):
    from bioplastic.io.runfile import _read_tree, _write_tree

    state = {"F": np.arange(6, dtype=np.float32).reshape(2, 3), "fortran": np.asfortranarray(np.eye(3) / 3),
             "empty": np.zeros((0, 4)), "x": 1 / 3, "nan": float("nan"), "inf": -float("inf"), "none": None,
             "n": np.float64(0.1), "i32": np.int32(7), "big": 2 ** 70, "flag": True, "name": "w",
             "tuple": ("W", "b"), "list": [0.5, [np.float32(0.25)], ()], "int_keys": {3: 0.5, (1, 2): "a"},
             "__bioplastic__": "not a tag"}
    with h5py.File(tmp_path / "s.h5", "w") as f:
        _write_tree(f.create_group("s"), state)
    with h5py.File(tmp_path / "s.h5", "r") as f:
        back = _read_tree(f["s"])
    assert sorted(back) == sorted(state)
    for k in ("F", "fortran", "empty"):
        np.testing.assert_array_equal(back[k], state[k], strict=True)
    assert back["fortran"].flags.f_contiguous and not back["fortran"].flags.c_contiguous
    assert back["x"] == 1 / 3 and np.isnan(back["nan"]) and back["inf"] == -np.inf and back["none"] is None
    assert type(back["n"]) is np.float64 and back["n"] == 0.1 and type(back["i32"]) is np.int32
    assert back["big"] == 2 ** 70 and back["flag"] is True and back["name"] == "w"
    assert back["tuple"] == ("W", "b") and back["list"][2] == () and back["list"][1][0].dtype == np.float32
    assert back["int_keys"] == {3: 0.5, (1, 2): "a"} and back["__bioplastic__"] == "not a tag"
    arrays = {}
    assert decode_state(encode_state({"a": [1.5]}, arrays), arrays) == {"a": [1.5]}
    with pytest.raises(TypeError, match="cannot store a object"):
        encode_state({"x": object()}, {})
    with pytest.raises(TypeError, match="dtype"):
        encode_state({"x": np.array(["a"])}, {})


@pytest.mark.parametrize("continue_after, checkpoint_at, n_calls", [(0, (25,), 28), (10, (35,), 38)])
def test_local_resume_keeps_the_sustained_criterion(tmp_path, monkeypatch, continue_after, checkpoint_at, n_calls):
    """Interrupted inside the sustained run (converged at 20, confirmed at 30) or after the
    confirmation: the tracker, the stop and the memory test at criterion survive."""
    task = bp.get_task("flipflop", n_steps=30, criterion=0.55)
    net = bp.make_network("lfrnn", 3, 3, n_units=12)
    kw = dict(iterations=60, seed=5, optimizer="adam", lr=3e-3, checkpoint_every=10, checkpoint_at=checkpoint_at,
              continue_after=continue_after, criterion={"consecutive": 3, "eval_every": 5}, eval_batch_size=64)
    full = train_local(net, task, "eprop", run_file=tmp_path / "full.h5", **kw)
    assert (full.converged_at, full.extra["confirmed_at"]) == (20, 30)
    assert len(full.history["loss"]) == 30 + continue_after + 1
    part = _interrupted(monkeypatch, tmp_path / "part.h5", n_calls, net, task, "eprop", **kw)
    assert part.resume["iteration"] == checkpoint_at[0]
    assert part.config["training"]["checkpoint_at"] == list(checkpoint_at)
    resumed = bp.training.resume(tmp_path / "part.h5")
    assert_same_result(resumed, full)
    assert resumed.extra["memory_test_at_criterion"] == full.extra["memory_test_at_criterion"] is not None
    assert_same_file(tmp_path / "part.h5", tmp_path / "full.h5")


def test_resume_may_raise_the_budget(tmp_path, monkeypatch):
    net, task = small()
    rule = lambda: get_rule("node_perturbation", baseline="running")  # noqa: E731
    longer = train_local(net, task, rule(), **{**SETTINGS, "iterations": 50})
    _interrupted(monkeypatch, tmp_path / "part.h5", 26, net, task, rule(), **SETTINGS)
    with pytest.raises(ConfigError, match="below iteration 20"):
        bp.training.resume(tmp_path / "part.h5", iterations=10)
    resumed = bp.training.resume(tmp_path / "part.h5", iterations=50)
    assert resumed.config["training"]["iterations"] == 50
    assert_same_result(resumed, longer)


SPEC = """
[model]
kind = "lfrnn"
n_units = 12

[training]
iterations = 30
batch_size = 8
optimizer = "adam"
lr = 0.003
early_stop = false
eval_batch_size = 32
"""


def test_cli_resumes_an_interrupted_local_run(tmp_path, monkeypatch, capsys):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    cmd = ["train", "--model", str(spec), "--task", "flipflop", "--rule", "eprop+tcr_stp", "--seed", "3",
           "--checkpoint-every", "10", "--no-progress"]
    assert main(cmd + ["--out", str(tmp_path / "full")]) == 0
    _interrupt_after(monkeypatch, 16)  # Ctrl-C at iteration 15: the CLI exits 130, run file kept
    assert main(cmd + ["--out", str(tmp_path / "part")]) == 130
    monkeypatch.undo()
    run = tmp_path / "part" / "run.h5"
    assert read_run(run).resume["iteration"] == 10
    assert main(["train", "--resume", str(run), "--no-progress"]) == 0
    assert "run file:" in capsys.readouterr().out
    assert read_run(run).config["resumed_at"] == 10
    assert_same_file(run, tmp_path / "full" / "run.h5")
    assert main(["train", "--resume", str(run), "--no-progress"]) == 2  # finished now
    assert "no resume state (status 'max_iterations')" in capsys.readouterr().err


def test_resume_refuses_finished_and_diverged_local_runs(tmp_path):
    net, task = small()
    path = tmp_path / "done.h5"
    train_local(net, task, "eprop", run_file=path, **{**SETTINGS, "iterations": 12})
    with pytest.raises(SchemaError, match="no resume state .*'max_iterations'"):
        bp.training.resume(path)
    path = tmp_path / "diverged.h5"
    with pytest.raises(DivergenceError):
        train_local(net, task, NodePerturbation(), iterations=20, optimizer="sgd", lr=1e160, seed=0,
                    checkpoint_every=1, run_file=path, early_stop=False, diagnostics_every=0)
    data = read_run(path)
    assert data.status == "diverged" and len(data.checkpoints) >= 2 and data.resume is None
    with pytest.raises(SchemaError, match="no resume state .*'diverged'"):
        bp.training.resume(path)


class _Opaque(EProp):
    """A plugin-style rule whose state holds an object a run file cannot store."""

    name = "opaque_state_test"

    def init_state(self, network, params, rng):
        return {"helper": object()}


def test_unstorable_rule_state_warns_and_leaves_no_resume_state(tmp_path, monkeypatch):
    net, task = small()
    _interrupt_after(monkeypatch, 16)
    with pytest.warns(RuntimeWarning, match="cannot store .* will not be resumable"):
        with pytest.raises(KeyboardInterrupt):
            train_local(net, task, _Opaque(), run_file=tmp_path / "run.h5", **SETTINGS)
    monkeypatch.undo()
    data = read_run(tmp_path / "run.h5")
    assert data.status == "running" and data.resume is None and sorted(data.checkpoints) == [0, 10]
    with pytest.raises(SchemaError, match="no resume state"):
        bp.training.resume(tmp_path / "run.h5")


# -- recording activity in local-rule runs ------------------------------------------------------

def test_a_local_run_records_activity_with_its_training_dynamics(tmp_path):
    """`record=` in train_local: the recording trials at each checkpoint, run as the
    network trains (plain forward for e-prop; with TCR-STP's fast weights for
    eprop+tcr_stp), stored in the run file like a BPTT run's."""
    from bioplastic.recording import Recording

    net, task = small()
    rec = Recording(what=("rates", "outputs"), n_trials=4)
    kw = dict(iterations=20, seed=3, checkpoint_every=10, early_stop=False, diagnostics_every=0, record=rec)
    plain = train_local(net, task, "eprop", run_file=tmp_path / "plain.h5", **kw)
    data = read_run(tmp_path / "plain.h5")
    assert sorted(data.recordings["at"]) == [0, 10, 20] and data.config["record"]["what"] == ["rates", "outputs"]
    trials = data.recordings["trials"]
    again = net.forward(plain.checkpoints[10], trials.inputs)  # the stored trials reproduce the recording
    np.testing.assert_array_equal(data.recordings["at"][10]["rates"], again.rates, strict=True)
    stp = train_local(net, task, get_rule("eprop+tcr_stp", tcr_stp={"eta_s": 2.0}), **kw)
    plain_run = net.forward(stp.checkpoints[20], trials.inputs)
    # same trials (the recording stream is the run's own), different dynamics: STP took part
    assert not np.allclose(stp.recordings["at"][20]["outputs"], plain_run.outputs)


def test_an_interrupted_local_run_with_recordings_resumes_bit_for_bit(tmp_path, monkeypatch):
    from bioplastic.recording import Recording

    net, task = small()
    kw = {**SETTINGS, "record": Recording(what=("rates",), n_trials=3)}
    full = train_local(net, task, get_rule("eprop+tcr_stp"), run_file=tmp_path / "full.h5", **kw)
    _interrupted(monkeypatch, tmp_path / "part.h5", 26, net, task, get_rule("eprop+tcr_stp"), **kw)
    resumed = bp.training.resume(tmp_path / "part.h5")
    assert_same_result(resumed, full)
    a, b = read_run(tmp_path / "part.h5"), read_run(tmp_path / "full.h5")
    assert sorted(a.recordings["at"]) == sorted(b.recordings["at"]) == [0, 10, 20, 30, 40]
    for k in b.recordings["at"]:
        np.testing.assert_array_equal(a.recordings["at"][k]["rates"], b.recordings["at"][k]["rates"], strict=True)
