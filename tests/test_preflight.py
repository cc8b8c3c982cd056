"""Checks before working (bioplastic.preflight): bad settings and runs that
cannot fit in memory are refused with one line before any training."""
import os

import numpy as np
import pytest

import bioplastic as bp
from bioplastic import preflight
from bioplastic.cli import main
from bioplastic.errors import ConfigError
from bioplastic.io import read_run
from bioplastic.training.local import train_local

BASE = ["train", "--model", "lfrnn", "--task", "flipflop", "--iterations", "2", "--seed", "1", "--no-progress"]


def small(n_units=16):
    t = bp.get_task("flipflop")
    return bp.make_network("lfrnn", t.n_inputs, t.n_outputs, n_units=n_units), t


def refused(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


@pytest.mark.parametrize("extra, message", [
    (["--seed", str(2 ** 64)], "[0, 18446744073709551615]"),
    (["--seed", "-1"], "seed must be"),
    (["--checkpoint-every", "0"], "omit it for no checkpoints"),
    (["--iterations", "-3"], "--iterations must be a non-negative integer"),
    (["--set", "model.g=big"], "model.g must be a number, got 'big'"),
    (["--set", "model.n_units=2.5"], "model.n_units must be an integer"),
    (["--set", "training.early_stop=no"], "early_stop must be true or false"),
    (["--set", "training.clip=big"], "clip must be a number"),
    (["--set", "training.batch_size=big"], "batch_size must be a positive integer"),
    (["--set", "model.n_units=1000000"], "this run needs about"),
    (["--iterations", "10000000000", "--checkpoint-every", "1"], "GiB available; reduce --iterations"),
])
def test_cli_refuses_before_work(extra, message, tmp_path, capsys):
    out = tmp_path / "out"
    err = refused(BASE + ["--out", str(out)] + extra, capsys)
    assert message in err
    assert not out.exists()  # refused before the output folder is even created


def test_cli_refuses_bad_outputs(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "--out is empty" in refused(BASE + ["--out", ""], capsys)
    (tmp_path / "d" / "run.h5").mkdir(parents=True)
    assert "is a folder" in refused(BASE + ["--out", "d"], capsys)
    (tmp_path / "f").write_text("x")
    assert "is a file" in refused(BASE + ["--out", "f/sub"], capsys)
    assert "is a file" in refused(BASE + ["--out", "f"], capsys)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p).endswith("ro") else real_access(p, mode))
    (tmp_path / "ro").mkdir()
    assert "not writable" in refused(BASE + ["--out", "ro/sub"], capsys)
    assert not list((tmp_path / "ro").iterdir())


def test_largest_storable_seed_round_trips(tmp_path):
    net, task = small()
    r = bp.train(net, task, iterations=1, seed=2 ** 64 - 1, memory_test=False, eval_batch_size=8,
                 run_file=tmp_path / "run.h5")
    assert read_run(r.run_file, checkpoints=False).seed == 2 ** 64 - 1


@pytest.mark.parametrize("kwargs, message", [
    ({"seed": 2 ** 64}, "what the run file can store"),
    ({"seed": 2.0}, "seed must be"),
    ({"early_stop": "no"}, "early_stop must be true or false"),
    ({"early_stop": 0}, "early_stop must be true or false"),
    ({"checkpoint_every": 0}, "omit it for no checkpoints"),
    ({"checkpoint_every": "5"}, "checkpoint_every must be a positive integer"),
    ({"checkpoint_at": ["a"]}, "checkpoint_at must list integer"),
    ({"clip": "big"}, "clip must be a number"),
    ({"lr": "big"}, "lr must be a number"),
    ({"iterations": -1}, "iterations must be a non-negative integer"),
    ({"iterations": 2.5}, "iterations must be a non-negative integer"),
    ({"eval_batch_size": "8"}, "eval_batch_size must be a positive integer"),
])
def test_train_and_train_local_check_settings(kwargs, message):
    net, task = small()
    with pytest.raises(ConfigError, match=None) as exc:
        bp.train(net, task, **{"iterations": 2, **kwargs})
    assert message in str(exc.value)
    with pytest.raises(ConfigError) as exc:
        train_local(net, task, "eprop", **{"iterations": 2, **kwargs})
    assert message in str(exc.value)


def test_run_file_that_is_a_folder_is_refused_before_training(tmp_path, monkeypatch):
    net, task = small()
    (tmp_path / "run.h5").mkdir()
    monkeypatch.setattr(net, "init_params", lambda rng: pytest.fail("training started"))
    with pytest.raises(ConfigError, match="is a folder"):
        bp.train(net, task, iterations=2, run_file=tmp_path / "run.h5")
    with pytest.raises(ConfigError, match="does not exist"):
        bp.train(net, task, iterations=2, run_file=tmp_path / "nope" / "run.h5")


def test_huge_network_refused_without_allocating():
    t = bp.get_task("flipflop")
    net = bp.make_network("lfrnn", t.n_inputs, t.n_outputs, n_units=1_000_000)
    with pytest.raises(ConfigError, match=r"this run needs about [\d,.]+ GiB \(checkpoints"):
        bp.train(net, t, iterations=2)


def test_estimate_within_factor_two_of_real_checkpoints():
    net, task = small(n_units=64)
    r = bp.train(net, task, iterations=99, checkpoint_every=1, early_stop=False, batch_size=4, eval_batch_size=8,
                 memory_test=False, seed=0)
    assert len(r.checkpoints) == 100
    real = sum(arr.nbytes for params in r.checkpoints.values() for arr in params.values())
    est = preflight.estimate_run_bytes(net, task, batch_size=4, iterations=99, checkpoint_every=1, checkpoint_at=(),
                                       eval_batch_size=8, detail=True)
    assert real / 2 <= est["checkpoints"] <= 2 * real
    assert est["total"] == preflight.estimate_run_bytes(net, task, batch_size=4, iterations=99, checkpoint_every=1,
                                                        checkpoint_at=(), eval_batch_size=8)
    assert est["trajectories"] > 0 and est["history"] > 0
    # checkpoints: iteration 0, every 10th, and extra ones counted once
    few = preflight.estimate_run_bytes(net, task, batch_size=4, iterations=100, checkpoint_every=10,
                                       checkpoint_at=(5, 10), eval_batch_size=8, detail=True)
    assert few["checkpoints"] == 12 * preflight.param_count(net) * 8


def test_check_fits_with_fake_available():
    preflight.check_fits(800, available=1000)
    with pytest.raises(ConfigError) as exc:
        preflight.check_fits(801, available=1000)
    assert "more than the" in str(exc.value) and "GiB available; reduce" in str(exc.value)
    parts = {"checkpoints": 30 * 2 ** 30, "trajectories": 2 ** 29, "history": 0, "total": 31 * 2 ** 30}
    with pytest.raises(ConfigError) as exc:
        preflight.check_fits(parts, available=8 * 2 ** 30)
    text = str(exc.value)
    assert text.startswith("this run needs about 31 GiB (checkpoints 30 GiB, trajectories 0.5 GiB)")
    assert "more than the 8 GiB available" in text and "--checkpoint-every" in text and "\n" not in text
    assert preflight.available_bytes() is None or preflight.available_bytes() > 0


def test_small_runs_fit():
    # The sizes of the test suite and the protocols are never refused.
    net, task = small(n_units=128)
    need = preflight.estimate_run_bytes(net, task, batch_size=32, iterations=2000, checkpoint_every=10,
                                        checkpoint_at=(), eval_batch_size=128, memory_test=True)
    assert need < 2 ** 30
    preflight.check_fits(need, available=4 * 2 ** 30)
    assert np.isfinite(need)
