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
    with pytest.raises(ConfigError, match="key 'g' must be SECTION.KEY, e.g. 'model.g'"):
        load_sweep(write('[model]\nkind="lfrnn"\n[task]\nname="flipflop"\n[grid]\ng=[1]\n'))
    with pytest.raises(ConfigError, match="non-empty list"):
        load_sweep(write('[model]\nkind="lfrnn"\n[task]\nname="flipflop"\n[grid]\n"model.g"=[]\n'))
    jobs = make_jobs(load_sweep(write('[sweep]\nseeds=[3,5]\n[model]\nkind="lfrnn"\n[task]\nname="flipflop"\n'
                                      '[grid]\n"model.g"=[1.0,2.0]\n"training.lr"=[0.1]\n')), tmp_path)
    assert [j["name"] for j in jobs] == ["g=1.0_lr=0.1_seed3", "g=1.0_lr=0.1_seed5",
                                         "g=2.0_lr=0.1_seed3", "g=2.0_lr=0.1_seed5"]
    assert jobs[2]["model"]["g"] == 2.0 and jobs[2]["training"]["lr"] == 0.1


def _sweep(tmp_path, name, text, out, **kw):
    p = tmp_path / name
    p.write_text(text)
    return run_sweep(p, out, workers=1, progress=False, **kw)


def test_rerun_keys_jobs_by_config_hash_reruns_only_changed_ones(tmp_path):
    from bioplastic.io import read_run
    from bioplastic.sweep import config_hash, resolved_config, result_config

    base = SPEC.replace("seeds = 2", "seeds = [0]").replace("early_stop = false", "early_stop = false\n"
                                                           "lambda_tcr = 0.5\ncheckpoint_every = 5")
    out = tmp_path / "out"
    first = _sweep(tmp_path, "a.toml", base, out)
    assert first["trained"] == ["g=1.0_seed0", "g=2.0_seed0"] and first["reused"] == []
    runs = out / "runs"
    for job in make_jobs(load_sweep(tmp_path / "a.toml"), out):  # the hash's resolution matches train's record
        assert result_config(read_run(job["run_file"], checkpoints=False).config) == resolved_config(job)
    # Job g=2.0 gets a run file made with other settings (n_units 6), as after an edit of the spec.
    other = _sweep(tmp_path, "b.toml", base.replace("n_units = 8", "n_units = 6").replace("[1.0, 2.0]", "[2.0]"),
                   tmp_path / "other")
    stale_bytes = (tmp_path / "other" / "runs" / "g=2.0_seed0.h5").read_bytes()
    (runs / "g=2.0_seed0.h5").write_bytes(stale_bytes)
    kept = os.stat(runs / "g=1.0_seed0.h5").st_mtime_ns
    notes = []
    again = _sweep(tmp_path, "a.toml", base, out, log=notes.append)
    assert again["reused"] == ["g=1.0_seed0"] and again["trained"] == again["changed"] == ["g=2.0_seed0"]
    assert os.stat(runs / "g=1.0_seed0.h5").st_mtime_ns == kept
    moved = runs / f"g=2.0_seed0.stale-{other['rows'][0]['config_hash']}.h5"
    assert again["stale"] == [{"name": "g=2.0_seed0", "changes": ["model.n_units 6 -> 8"], "moved_to": str(moved)}]
    assert moved.read_bytes() == stale_bytes  # moved aside, not deleted
    assert notes == [f"note: job g=2.0_seed0 changed (model.n_units 6 -> 8): its old run file is kept as {moved}; "
                     "training it again", "note: 1 of 2 jobs reused (finished run files of the same settings); "
                                          "1 to train"]
    rows = _rows(out / "summary.csv")
    assert [(r["name"], r["reused"]) for r in rows] == [("g=1.0_seed0", "True"), ("g=2.0_seed0", "False")]
    for r in rows:  # each row carries the hash of the run file it reports
        assert r["config_hash"] == config_hash(read_run(r["run_file"], checkpoints=False).config)
    assert [r["final_task_loss"] for r in again["rows"]] == [r["final_task_loss"] for r in first["rows"]]

    # --refuse-stale: an edited budget makes both jobs stale; nothing runs, nothing moves.
    listing, summary = sorted(p.name for p in runs.iterdir()), (out / "summary.csv").read_text()
    edited = base.replace("iterations = 15", "iterations = 12")
    with pytest.raises(ConfigError, match=r"^2 of 2 jobs have run files made with other settings: g=1.0_seed0 "
                                          r"\(training.iterations 15 -> 12\); g=2.0_seed0 \(training.iterations "
                                          r"15 -> 12\); nothing was run \(without --refuse-stale"):
        _sweep(tmp_path, "a.toml", edited, out, refuse_stale=True)
    assert sorted(p.name for p in runs.iterdir()) == listing and (out / "summary.csv").read_text() == summary
    # Without it both are trained again; going back to 15 puts the kept files back instead of training.
    edited_run = _sweep(tmp_path, "a.toml", edited, out)
    assert edited_run["changed"] == ["g=1.0_seed0", "g=2.0_seed0"]
    assert all(r["n_iterations"] == 13 for r in edited_run["rows"])
    back = _sweep(tmp_path, "a.toml", base, out)
    assert back["trained"] == [] and back["restored"] == ["g=1.0_seed0", "g=2.0_seed0"]
    assert [r["final_task_loss"] for r in back["rows"]] == [r["final_task_loss"] for r in first["rows"]]
    assert len(list(runs.glob("*.stale-*.h5"))) == 3


def test_sweep_settings_are_checked_before_any_job_runs(tmp_path):
    bad = SPEC.replace("early_stop = false", "early_stop = false\nlearning_rate = 0.1")
    with pytest.raises(ConfigError, match=r"bad.toml \[training\]: unknown key\(s\): 'learning_rate'"):
        _sweep(tmp_path, "bad.toml", bad, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # A value only one grid point has: the job is named, nothing is trained.
    bad = SPEC.replace('"model.g" = [1.0, 2.0]', '"training.batch_size" = [4, 0]')
    with pytest.raises(ConfigError, match="sweep job 'batch_size=0_seed0': batch_size must be"):
        _sweep(tmp_path, "bad2.toml", bad, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()  # every job's settings are checked before OUT is created


def test_sweep_cli_reports_reused_and_changed_jobs(tmp_path, capsys):
    from bioplastic.cli import main

    spec = tmp_path / "s.toml"
    spec.write_text(SPEC.replace("seeds = 2", "seeds = [0]"))
    argv = ["sweep", str(spec), "--out", str(tmp_path / "out"), "--workers", "1", "--no-progress"]
    assert main(argv) == 0
    assert ": 0 of 2 reused, 2 trained; 0 reached criterion" in capsys.readouterr().out
    spec.write_text(SPEC.replace("seeds = 2", "seeds = [0]").replace("n_units = 8", "n_units = 7"))
    assert main(argv + ["--refuse-stale"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bioplastic sweep: error: 2 of 2 jobs have run files made with other settings: "
                          "g=1.0_seed0 (model.n_units 8 -> 7)") and len(err.strip().splitlines()) == 1
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert ": 0 of 2 reused, 2 trained (2 because their settings changed); 0 reached criterion" in out
    assert "note: job g=1.0_seed0 changed (model.n_units 8 -> 7): its old run file is kept as " in err
    assert main(argv) == 0
    assert ": 2 of 2 reused, 0 trained; 0 reached criterion" in capsys.readouterr().out
