"""A run killed with SIGKILL mid-training leaves a readable run file that resumes exactly."""
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

import bioplastic as bp
from bioplastic.io import read_run
from bioplastic.io.specs import load_spec, network_from_spec

SPEC = """
[model]
kind = "lfrnn"
n_units = 24
g = 1.5

[training]
iterations = 300
lr = 0.003
early_stop = false
checkpoint_every = 20
"""


def _written_checkpoints(path):
    """Checkpoints in the run file so far (a cheap read of one group)."""
    try:
        with h5py.File(path, "r") as f:
            return len(f["checkpoints"])
    except (OSError, KeyError):
        return 0


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_kill_9_then_resume_matches_uninterrupted(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "bioplastic", "train", "--model", str(spec), "--task", "flipflop",
           "--seed", "11", "--out", str(out), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run_file = out / "run.h5"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and _written_checkpoints(run_file) < 3:
        time.sleep(0.02)
    assert proc.poll() is None, f"training ended before it could be killed: {proc.communicate()}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    killed = read_run(run_file)  # never corrupt: the last complete write survives
    assert killed.status == "running" and killed.resume is not None
    k = killed.resume["iteration"]
    assert 0 < k < 300

    rc = subprocess.run([sys.executable, "-m", "bioplastic", "train", "--resume", str(run_file),
                         "--no-progress"], capture_output=True, text=True)
    assert rc.returncode == 0, rc.stderr
    resumed = read_run(run_file)
    assert resumed.status == "max_iterations"
    assert resumed.config["resumed_at"] == k

    s = load_spec(spec)
    task = bp.get_task("flipflop")
    ref = bp.train(network_from_spec(s, task), task, seed=11, **s["training"])
    for name, value in ref.params.items():
        np.testing.assert_array_equal(resumed.params[name], value, err_msg=name)
    np.testing.assert_array_equal(resumed.history["loss"], ref.history["loss"])
