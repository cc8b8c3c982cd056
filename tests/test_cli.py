"""The ``bioplastic`` command line, run in-process and as a real console script."""
import shutil
import subprocess
import sys

import pytest

from bioplastic.cli import main
from bioplastic.io import read_run


def test_train_writes_run_file(tmp_path, capsys):
    out = tmp_path / "out"
    rc = main(["train", "--model", "lfrnn", "--task", "flipflop", "--tcr", "0.5", "--seed", "3",
               "--iterations", "4", "--out", str(out), "--no-progress"])
    assert rc == 0
    data = read_run(out / "run.h5")
    assert data.seed == 3
    assert data.config["training"]["lambda_tcr"]["value"] == 0.5
    assert data.config["spec"].endswith("lfrnn.toml")
    assert "run file" in capsys.readouterr().out


def test_train_no_early_stop_and_continue_after(tmp_path, capsys):
    rc = main(["train", "--model", "lfrnn", "--task", "flipflop", "--seed", "1", "--iterations", "12",
               "--no-early-stop", "--out", str(tmp_path / "a"), "--no-progress"])
    assert rc == 0
    data = read_run(tmp_path / "a" / "run.h5", checkpoints=False)
    assert data.config["training"]["early_stop"] is False and len(data.history["iteration"]) == 13
    assert main(["train", "--model", "lfrnn", "--task", "flipflop", "--seed", "1", "--iterations", "2",
                 "--continue-after", "7", "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    data = read_run(tmp_path / "b" / "run.h5", checkpoints=False)
    assert data.config["training"]["continue_after"] == 7
    assert "memory test" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["train", "--model", "lfrnn", "--task", "flipflopp", "--out", "X"], "did you mean 'flipflop'"),
    (["train", "--model", "nosuchspec", "--task", "flipflop", "--out", "X"], "no model 'nosuchspec'"),
    (["train", "--model", "lfrnn", "--task", "flipflop", "--rule", "hebb", "--out", "X"], "unknown rule 'hebb'"),
    (["train", "--model", "lfrnn", "--task", "flipflop", "--tcr", "-1", "--out", "X"], "lambda_TCR"),
    (["run", "nosuchprotocol"], "no protocol 'nosuchprotocol'"),
])
def test_errors_are_one_clear_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_list(capsys):
    assert main(["list", "tasks"]) == 0
    assert capsys.readouterr().out.split() == ["delayed_addition", "evidence_accumulation", "flipflop"]
    assert main(["list", "protocols"]) == 0
    listed = capsys.readouterr().out.split()
    assert {"search_phase", "tcr_regimes", "slow_dynamics", "abrupt_learning", "reproduce"} <= set(listed)


def test_console_script_is_installed():
    import pathlib

    beside = pathlib.Path(sys.executable).parent / "bioplastic"
    exe = str(beside) if beside.exists() else shutil.which("bioplastic")
    if exe is None:
        pytest.skip("bioplastic is not installed as a console script (run pip install -e .)")
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=True).stdout
    assert out.startswith("bioplastic ")
