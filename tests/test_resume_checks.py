"""``bioplastic train --resume`` checks before it continues a run: flags that
conflict with the run file are refused (equal ones accepted), truncated or
corrupt files are refused with one line and left untouched, and a file from
another bioplastic version resumes with a warning naming both versions."""
import json
import shutil

import h5py
import numpy as np
import pytest

import bioplastic.training.local as local
import bioplastic.training.loop as loop
from bioplastic._version import __version__
from bioplastic.cli import main
from bioplastic.errors import SchemaError
from bioplastic.io import read_run
from bioplastic.training import resume

SPEC = """
[model]
kind = "lfrnn"
n_units = 8
g = 1.5

[task]
name = "flipflop"
n_steps = 20

[training]
iterations = 30
lr = 0.003
batch_size = 8
eval_batch_size = 16
early_stop = false
checkpoint_every = 10
"""


def _interrupt(monkeypatch, module, name, n_calls):
    """Make the n-th call of ``module.name`` (one per update) raise KeyboardInterrupt, as a Ctrl-C would."""
    real, calls = getattr(module, name), {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == n_calls:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(module, name, flaky)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs interrupted at iteration 14 (last checkpoint 10): BPTT and eprop+tcr_stp (lambda 0.5)."""
    root = tmp_path_factory.mktemp("runs")
    spec = root / "spec.toml"
    spec.write_text(SPEC)
    out = {"spec": spec}
    for name, module, fn, extra in (("bptt", loop, "clip_by_global_norm", []),
                                    ("local", local, "_apply", ["--rule", "eprop+tcr_stp", "--tcr", "0.5"])):
        with pytest.MonkeyPatch.context() as mp:
            _interrupt(mp, module, fn, 15)
            rc = main(["train", "--model", str(spec), "--seed", "0", "--out", str(root / name), "--no-progress",
                       *extra])
        assert rc == 130
        data = read_run(root / name / "run.h5")
        assert data.status == "running" and data.resume["iteration"] == 10
        out[name] = root / name / "run.h5"
    return out


@pytest.fixture
def copy(runs, tmp_path):
    """A fresh copy of one of the interrupted runs, in its own folder."""
    def make(name):
        dest = tmp_path / name / "run.h5"
        dest.parent.mkdir()
        shutil.copyfile(runs[name], dest)
        return dest
    return make


def _refused(capsys, path, args):
    """Run ``train --resume path *args``: exit 2, one stderr line (returned), the file byte-identical."""
    before = path.read_bytes()
    capsys.readouterr()
    rc = main(["train", "--resume", str(path), "--no-progress", *args])
    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert path.read_bytes() == before
    return lines[0]


# -- flags given with --resume --------------------------------------------------------------

BPTT_CONFLICTS = {
    "seed": (["--seed", "3"], "--seed 3", "seed 0"),
    "tcr": (["--tcr", "0.5"], "--tcr 0.5", "lambda_tcr 0.0"),
    "model": (["--model", "lfrnn"], "--model lfrnn (n_units = 64)", "(n_units = 8)"),
    "task": (["--task", "delayed_addition"], "--task delayed_addition", "task flipflop"),
    "rule": (["--rule", "eprop"], "--rule eprop", "rule bptt"),
    "checkpoint_every": (["--checkpoint-every", "5"], "--checkpoint-every 5", "checkpoint_every 10"),
    "no_early_stop": (["--no-early-stop"], "--no-early-stop", "early_stop True"),
    "continue_after": (["--continue-after", "3"], "--continue-after 3", "continue_after 0"),
}


@pytest.mark.parametrize("case", sorted(BPTT_CONFLICTS))
def test_conflicting_flag_refused_bptt(copy, capsys, case, runs):
    args, given, theirs = BPTT_CONFLICTS[case]
    path = copy("bptt")
    if case == "no_early_stop":  # the fixture's run has early_stop = false: make one that stops early
        with h5py.File(path, "r+") as f:
            cfg = json.loads(f.attrs["config"])
            cfg["training"]["early_stop"] = True
            f.attrs["config"] = json.dumps(cfg)
    line = _refused(capsys, path, args)
    assert given in line and theirs in line, line
    assert f"drop {args[0]}" in line and str(path) in line


@pytest.mark.parametrize("args, given, theirs", [
    (["--rule", "bptt"], "--rule bptt", "rule eprop+tcr_stp"),
    (["--tcr", "1"], "--tcr 1.0", "lambda_tcr 0.5"),
    (["--rule", "node_perturbation+tcr_stp"], "--rule node_perturbation+tcr_stp", "rule eprop+tcr_stp"),
])
def test_conflicting_flag_refused_local(copy, capsys, args, given, theirs):
    line = _refused(capsys, copy("local"), args)
    assert given in line and theirs in line, line


def test_several_conflicts_in_one_line(copy, capsys):
    line = _refused(capsys, copy("bptt"), ["--seed", "2", "--tcr", "1", "--iterations", "40"])
    assert "--seed 2" in line and "--tcr 1.0" in line and "drop --seed, --tcr" in line


def test_smaller_budget_still_refused(copy, capsys):
    line = _refused(capsys, copy("bptt"), ["--iterations", "5"])
    assert "iterations=5 is below iteration 10" in line


def test_equal_flags_accepted_bptt(copy, capsys, runs, tmp_path):
    path = copy("bptt")
    other = tmp_path / "same_model.toml"  # another file with the same [model]: accepted too
    other.write_text(SPEC)
    for model in (runs["spec"], other):
        rc = main(["train", "--resume", str(path), "--no-progress", "--seed", "0", "--tcr", "0", "--model",
                   str(model), "--task", "flipflop", "--rule", "bptt", "--checkpoint-every", "10", "--no-early-stop",
                   "--continue-after", "0", "--iterations", "30"])
        assert rc == 0, capsys.readouterr().err
        assert "warning" not in capsys.readouterr().err
        data = read_run(path)
        assert data.status == "max_iterations" and len(data.history["iteration"]) == 31
        shutil.copyfile(runs["bptt"], path)


def test_equal_flags_accepted_local(copy, capsys):
    path = copy("local")
    rc = main(["train", "--resume", str(path), "--no-progress", "--seed", "0", "--tcr", "0.5", "--rule",
               "eprop+tcr_stp", "--task", "flipflop"])
    assert rc == 0, capsys.readouterr().err
    assert read_run(path).status == "max_iterations"


# -- truncated and corrupt files ------------------------------------------------------------

def _truncate_history(f):
    for col in list(f["history"]):
        values = f["history"][col][()]
        del f["history"][col]
        f["history"][col] = values[:6]


def _set_state(f, edit):
    state = json.loads(f["resume"].attrs["state"])
    edit(state)
    f["resume"].attrs["state"] = json.dumps(state)


CORRUPTIONS = {
    "history_truncated": (_truncate_history, "is truncated: it resumes at iteration 10"),
    "state_not_json": (lambda f: f["resume"].attrs.__setitem__("state", "not json"), "is not valid JSON"),
    "state_no_iteration": (lambda f: _set_state(f, lambda s: s.pop("iteration")), "lacks iteration"),
    "state_no_streams": (lambda f: _set_state(f, lambda s: s.pop("streams")), "lacks streams"),
    "state_no_optimizer": (lambda f: _set_state(f, lambda s: s.pop("optimizer_scalars")),
                           "lacks optimizer_scalars"),
    "state_bad_iteration": (lambda f: _set_state(f, lambda s: s.update(iteration="ten")), "iteration 'ten'"),
    "optimizer_group_deleted": (lambda f: f["resume"].__delitem__("optimizer"), "lacks /resume/optimizer"),
    "checkpoint_deleted": (lambda f: f["checkpoints"].__delitem__("00000010"), "lacks checkpoint 10"),
    "checkpoint_param_deleted": (lambda f: f["checkpoints/00000010"].__delitem__("W"),
                                 "has checkpoint 10 without W"),
    "config_not_json": (lambda f: f.attrs.__setitem__("config", "not json"), "corrupt config attribute"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_file_refused(copy, capsys, case):
    damage, expected = CORRUPTIONS[case]
    path = copy("bptt")
    with h5py.File(path, "r+") as f:
        damage(f)
    line = _refused(capsys, path, [])
    assert expected in line and str(path) in line, line
    assert "Traceback" not in line
    with pytest.raises(SchemaError, match="cannot be resumed|corrupt config"):
        resume(path, progress=False)


@pytest.mark.parametrize("key", ["rule_state", "diag_rng", "success"])
def test_local_resume_state_key_missing_refused(copy, capsys, key):
    path = copy("local")
    with h5py.File(path, "r+") as f:
        if key == "rule_state":
            del f["resume/rule_state"]
        else:
            _set_state(f, lambda s: s.pop(key))
    line = _refused(capsys, path, [])
    assert "local-rule run whose resume state lacks" in line and key in line, line


def test_truncated_local_history_refused(copy, capsys):
    path = copy("local")
    with h5py.File(path, "r+") as f:
        _truncate_history(f)
    assert "is truncated" in _refused(capsys, path, [])


# -- another package version -----------------------------------------------------------------

def test_other_version_resumes_with_warning(copy, capsys, runs):
    path = copy("bptt")
    with h5py.File(path, "r+") as f:
        f.attrs["package_version"] = "0.0.1"
    with pytest.warns(UserWarning, match="0.0.1") as record:
        result = resume(path, progress=False)
    assert any(__version__ in str(w.message) and "0.0.1" in str(w.message) for w in record)
    assert result.status == "max_iterations"

    path.write_bytes(b"")
    shutil.copyfile(runs["bptt"], path)
    with h5py.File(path, "r+") as f:
        f.attrs["package_version"] = "0.0.1"
    capsys.readouterr()
    assert main(["train", "--resume", str(path), "--no-progress"]) == 0
    warned = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("warning: ")]
    assert len(warned) == 1 and "0.0.1" in warned[0] and __version__ in warned[0], warned
    data = read_run(path)
    assert data.status == "max_iterations" and len(data.history["iteration"]) == 31
    assert np.all(np.diff(data.history["iteration"]) == 1)
