"""Feedback on long work: the compile notice, an ETA without compilation, `bioplastic analyze`'s bar."""
import io
import os
import subprocess
import sys
import time

import pytest
from tqdm import tqdm

from bioplastic import config, get_task, make_network, train
from bioplastic.cli import main
from bioplastic.training.progress import MESSAGE, ProgressBar

# Three compilations of a small kernel: one outside any notice (nothing may be
# listening after `import bioplastic`), then two inside (one notice per process).
_COLD = """
import numpy as np
from bioplastic.training.progress import compile_notice
from bioplastic.machinery.small import readout_rows_
def call(dtype, step=1):
    r = np.ones((2, 3 * step), dtype)[:, ::step]
    readout_rows_(np.zeros((2, 1), dtype), r, np.ones((1, 3), dtype), np.zeros(1, dtype))
call(np.float32)
print("after import", flush=True)
with compile_notice():
    call(np.float64)
with compile_notice():
    call(np.float64, step=2)  # a non-contiguous layout: another compilation
print("misses", sum(readout_rows_.stats.cache_misses.values()))
"""
_WARM = """
import numpy as np
from bioplastic.training.progress import compile_notice
from bioplastic.machinery.small import readout_rows_
with compile_notice():
    readout_rows_(np.zeros((2, 1)), np.ones((2, 3)), np.ones((1, 3)), np.zeros(1))
print("hits", sum(readout_rows_.stats.cache_hits.values()))
"""


def _python(code, cache_dir):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir)}
    env.pop("NUMBA_DISABLE_JIT", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert out.returncode == 0, out.stderr
    return out


def test_compile_notice_once_and_only_on_a_cache_miss(tmp_path):
    cold = _python(_COLD, tmp_path)
    assert "misses 3" in cold.stdout  # all three really compiled
    assert cold.stderr.count(MESSAGE) == 1
    warm = _python(_WARM, tmp_path)  # same cache, new process: loaded, not compiled
    assert "hits 1" in warm.stdout
    assert MESSAGE not in warm.stderr


@pytest.mark.slow
def test_first_training_announces_compilation_once(tmp_path):
    code = ("import bioplastic as bp\n"
            "task = bp.get_task('flipflop')\n"
            "net = bp.make_network('lfrnn', task.n_inputs, task.n_outputs, n_units=8)\n"
            "for seed in (0, 1):\n"
            "    bp.train(net, task, iterations=2, seed=seed, progress=True, memory_test=False)\n")
    assert _python(code, tmp_path).stderr.count(MESSAGE) == 1
    assert MESSAGE not in _python(code, tmp_path).stderr  # compiled once, cached since
    quiet = code.replace("progress=True", "progress=False")
    assert MESSAGE not in _python(quiet, tmp_path / "cold").stderr  # progress=False is quiet


def test_eta_leaves_out_the_first_step():
    # tqdm's own bar counts the wait before its first update; ProgressBar does not.
    plain, ours = (cls(total=10, file=io.StringIO(), mininterval=0) for cls in (tqdm, ProgressBar))
    time.sleep(0.4)  # stands for the first iteration's compilation
    for bar in (plain, ours):
        bar.update(1)
    assert plain.format_dict["elapsed"] >= 0.4
    assert ours.format_dict["elapsed"] < 0.2
    for bar in (plain, ours):
        bar.close()


@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "run.h5"
    task = get_task("delayed_addition")
    net = make_network("plrnn", task.n_inputs, task.n_outputs, n_units=8)
    train(net, task, iterations=20, seed=1, checkpoint_every=10, run_file=path, early_stop=False, progress=False)
    return path


def _analyze(run_file, tmp_path, *extra):
    return main(["analyze", str(run_file), "--n-init", "8", "--out", str(tmp_path),
                 "--analysis-file", str(tmp_path / "a.h5"), *extra])


def test_analyze_shows_progress_on_stderr(run_file, tmp_path, capsys):
    config.set(progress=True)  # tests run quiet (conftest); a user's session shows bars
    assert _analyze(run_file, tmp_path) == 0
    out, err = capsys.readouterr()
    # tqdm redraws at most every 0.1 s, so quick middle stages may not show
    assert "analyze: fixed points:   0%" in err and "0/5 " in err  # 3 checkpoints + 2 stages, more once known
    assert "analyze: figures" in err
    assert "analyze:" not in out and "it/s" not in out  # the bar stays off stdout


def test_analyze_no_progress_is_quiet(run_file, tmp_path, capsys):
    config.set(progress=True)
    assert _analyze(run_file, tmp_path, "--no-progress") == 0
    assert "analyze:" not in capsys.readouterr().err
