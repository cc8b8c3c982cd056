"""Sweeps on local processes and on a real dask LocalCluster."""
import csv
import os

import numpy as np
import pytest

from bioplastic.errors import ConfigError
from bioplastic.sweep import load_sweep, make_jobs, run_sweep

SPEC = """
[sweep]
seeds = 2
[model]
kind = "lfrnn"
n_units = 8
[task]
name = "flipflop"
n_steps = 30
[training]
iterations = 15
early_stop = false
[grid]
"model.g" = [1.0, 2.0]
"""


@pytest.fixture
def spec(tmp_path):
    p = tmp_path / "sweep.toml"
    p.write_text(SPEC)
    return p


def _rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_local_sweep_writes_runs_and_summary_and_skips_finished(spec, tmp_path):
    out = tmp_path / "out"
    res = run_sweep(spec, out, workers=2, progress=False)
    rows = _rows(out / "summary.csv")
    assert len(rows) == len(res["rows"]) == 4
    assert {r["model.g"] for r in rows} == {"1.0", "2.0"} and {r["seed"] for r in rows} == {"0", "1"}
    assert all(r["status"] == "max_iterations" and r["n_iterations"] == "16" for r in rows)
    files = sorted((out / "runs").glob("*.h5"))
    assert len(files) == 4 and (out / "summary.h5").exists()
    mtimes = {f: os.stat(f).st_mtime_ns for f in files}
    again = run_sweep(spec, out, workers=2, progress=False)  # finished jobs are skipped
    assert {f: os.stat(f).st_mtime_ns for f in files} == mtimes
    assert [r["final_task_loss"] for r in again["rows"]] == [r["final_task_loss"] for r in res["rows"]]


@pytest.mark.optional
def test_dask_local_cluster_gives_identical_results(spec, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    local = run_sweep(spec, tmp_path / "local", workers=1, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        remote = run_sweep(spec, tmp_path / "dask", scheduler=cluster.scheduler_address, progress=False)
    assert remote["backend"].startswith("dask")
    for a, b in zip(local["rows"], remote["rows"]):
        assert a["name"] == b["name"]
        np.testing.assert_array_equal(a["final_task_loss"], b["final_task_loss"])


@pytest.mark.optional
def test_unreachable_scheduler_is_a_clear_error(spec, tmp_path):
    pytest.importorskip("dask.distributed")
    with pytest.raises(ConfigError, match="cannot reach the dask scheduler at 'tcp://127.0.0.1:9'"):
        run_sweep(spec, tmp_path / "o", scheduler="tcp://127.0.0.1:9", progress=False, connect_timeout="2s")


def test_sweep_spec_errors(tmp_path):
    def write(text):
        p = tmp_path / "s.toml"
        p.write_text(text)
        return p

    with pytest.raises(ConfigError, match="does not exist"):
        load_sweep(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="'gird'"):
        load_sweep(write('[model]\nkind="lfrnn"\n[task]\nname="flipflop"\n[gird]\n"model.g"=[1]\n'))
    with pytest.raises(ConfigError, match="needs a \\[task\\]"):
        load_sweep(write('[model]\nkind="lfrnn"\n'))
    with pytest.raises(ConfigError, match="must be 'model.X'"):
        load_sweep(write('[model]\nkind="lfrnn"\n[task]\nname="flipflop"\n[grid]\ng=[1]\n'))
    with pytest.raises(ConfigError, match="non-empty list"):
        load_sweep(write('[model]\nkind="lfrnn"\n[task]\nname="flipflop"\n[grid]\n"model.g"=[]\n'))
    jobs = make_jobs(load_sweep(write('[sweep]\nseeds=[3,5]\n[model]\nkind="lfrnn"\n[task]\nname="flipflop"\n'
                                      '[grid]\n"model.g"=[1.0,2.0]\n"training.lr"=[0.1]\n')), tmp_path)
    assert [j["name"] for j in jobs] == ["g=1.0_lr=0.1_seed3", "g=1.0_lr=0.1_seed5",
                                         "g=2.0_lr=0.1_seed3", "g=2.0_lr=0.1_seed5"]
    assert jobs[2]["model"]["g"] == 2.0 and jobs[2]["training"]["lr"] == 0.1
