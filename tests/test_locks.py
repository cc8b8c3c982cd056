"""One writer per output folder: the lock of ``bioplastic train`` / ``sweep``, with real processes."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from bioplastic.cli import main
from bioplastic.errors import ConfigError
from bioplastic.io import read_run
from bioplastic.io.lock import LOCK_NAME, output_lock, read_lock

TINY = ["--model", "lfrnn", "--task", "flipflop", "--set", "model.n_units=8", "--set", "task.n_steps=30",
        "--no-progress"]


def _dead_pid() -> int:
    """The pid of a process that has finished and been reaped."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


def _write_lock(folder, **fields):
    info = {"pid": _dead_pid(), "host": socket.gethostname(), "started": "2026-01-01T00:00:00+00:00",
            "command": "bioplastic train --out old", "token": "t0", **fields}
    (folder / LOCK_NAME).write_text(json.dumps(info))
    return info


@pytest.mark.skipif(sys.platform == "win32", reason="SIGSTOP is POSIX")
def test_second_train_into_the_same_out_is_refused_naming_the_first(tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "bioplastic", "train", *TINY, "--seed", "5", "--out", str(out)]
    first = subprocess.Popen(cmd + ["--iterations", "300", "--no-early-stop"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not (out / LOCK_NAME).exists() and first.poll() is None and time.time() < deadline:
            time.sleep(0.02)
        assert (out / LOCK_NAME).exists(), f"the first run never took the lock: {first.communicate()}"
        # Pause the first run so it is certainly still writing while the second starts.
        os.kill(first.pid, signal.SIGSTOP)
        second = subprocess.run(cmd + ["--iterations", "5"], capture_output=True, text=True, timeout=60)
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert second.returncode == 2, second.stderr
    err = second.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"is in use by pid {first.pid} on host" in err and "bioplastic train" in err and "started 20" in err
    stdout, stderr = first.communicate(timeout=120)
    assert first.returncode == 0, stderr
    data = read_run(out / "run.h5", checkpoints=False)
    assert data.seed == 5 and len(data.history["iteration"]) == 301  # the first run's file, whole
    assert not (out / LOCK_NAME).exists()


def test_stale_lock_of_a_dead_process_is_taken_over(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    old = _write_lock(out)
    assert main(["train", *TINY, "--iterations", "3", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"note: took over the stale lock of pid {old['pid']}" in err and "that process is gone" in err
    assert (out / "run.h5").exists() and not (out / LOCK_NAME).exists()


def test_train_refuses_an_existing_run_file_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["train", *TINY, "--seed", "1", "--iterations", "3", "--out", str(out)]) == 0
    before = (out / "run.h5").read_bytes()
    capsys.readouterr()
    assert main(["train", *TINY, "--seed", "2", "--iterations", "3", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"bioplastic train: error: {str(out / 'run.h5')!r} exists; use --resume {out / 'run.h5'} "
                   "to continue it or --overwrite to replace it")
    assert (out / "run.h5").read_bytes() == before and not (out / LOCK_NAME).exists()
    assert main(["train", *TINY, "--seed", "2", "--iterations", "3", "--out", str(out), "--overwrite"]) == 0
    assert read_run(out / "run.h5", checkpoints=False).seed == 2
    assert main(["train", "--resume", str(out / "run.h5"), "--overwrite"]) == 2
    assert "--overwrite replaces OUT/run.h5 of a new run" in capsys.readouterr().err


def test_lock_is_exclusive_released_on_error_and_names_its_holder(tmp_path):
    with output_lock(tmp_path, command="bioplastic sweep s.toml") as lock:
        held = read_lock(tmp_path / LOCK_NAME)
        assert held["pid"] == os.getpid() and held["token"] == lock["token"]
        with pytest.raises(ConfigError, match=f"in use by pid {os.getpid()} on host .*"
                                              r"\(bioplastic sweep s.toml\), started 20"):
            with output_lock(tmp_path):
                pass
        assert read_lock(tmp_path / LOCK_NAME)["token"] == lock["token"]  # the refused one left it alone
    assert not (tmp_path / LOCK_NAME).exists()
    with pytest.raises(RuntimeError, match="boom"):
        with output_lock(tmp_path):
            raise RuntimeError("boom")
    assert not (tmp_path / LOCK_NAME).exists()


def test_locks_of_other_hosts_reused_pids_and_garbage(tmp_path):
    _write_lock(tmp_path, host="another-node", pid=1)
    with pytest.raises(ConfigError, match="locked by pid 1 on host 'another-node'.*if that process has ended, "
                                          f"delete '{tmp_path / LOCK_NAME}'"):
        with output_lock(tmp_path):
            pass
    # A live pid that started at another time than the recorded holder is a reused pid: stale.
    _write_lock(tmp_path, pid=os.getpid(), pid_start=1)
    notes = []
    if os.path.exists(f"/proc/{os.getpid()}/stat"):
        with output_lock(tmp_path, log=notes.append):
            pass
        assert len(notes) == 1 and "took over the stale lock" in notes[0]
    (tmp_path / LOCK_NAME).write_text("")
    with pytest.raises(ConfigError, match="unreadable lock file"):
        with output_lock(tmp_path):
            pass


def test_sweep_refuses_a_locked_folder_before_running(tmp_path):
    from bioplastic.sweep import run_sweep

    spec = tmp_path / "s.toml"
    spec.write_text('[model]\nkind = "lfrnn"\nn_units = 4\n[task]\nname = "flipflop"\n[training]\niterations = 2\n')
    out = tmp_path / "out"
    out.mkdir()
    with output_lock(out, command="bioplastic sweep s.toml --out out"):
        with pytest.raises(ConfigError, match=f"in use by pid {os.getpid()} .*bioplastic sweep s.toml --out out"):
            run_sweep(spec, out, workers=1, progress=False)
    assert not list((out / "runs").glob("*.h5")) and not (out / "summary.csv").exists()


RACER = """
import os, sys, time
from bioplastic.errors import ConfigError
from bioplastic.io.lock import output_lock
folder, go, ready = sys.argv[1:4]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.005)
try:
    with output_lock(folder, log=lambda m: None):
        print("got", flush=True)
        time.sleep(1.5)
except ConfigError as exc:
    print("refused", exc)
"""


def test_racing_takeovers_of_one_stale_lock_leave_one_writer(tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    _write_lock(folder)
    go = tmp_path / "go"
    racers = [subprocess.Popen([sys.executable, "-c", RACER, str(folder), str(go), str(tmp_path / f"ready{i}")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
    deadline = time.time() + 60
    while len(list(tmp_path.glob("ready*"))) < 4 and time.time() < deadline:  # all at the start line
        time.sleep(0.01)
    go.touch()
    outputs = [p.communicate(timeout=60) for p in racers]
    assert all(p.returncode == 0 for p in racers), outputs
    said = [out.split()[0] for out, _ in outputs]
    assert said.count("got") == 1 and said.count("refused") == 3, outputs
    assert not (folder / LOCK_NAME).exists()


def test_a_protocol_refuses_a_folder_another_writer_holds(tmp_path, capsys):
    from bioplastic.cli import main
    from bioplastic.io.lock import output_lock

    with output_lock(tmp_path, command="bioplastic run slow_dynamics"):
        assert main(["run", "slow_dynamics", "--quick", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"pid {os.getpid()}" in err[0] and "bioplastic run slow_dynamics" in err[0]
    assert not (tmp_path / "predictions.json").exists()
