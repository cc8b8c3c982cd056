"""The claim protocols end to end on tiny settings: real training runs, real files, consistent outputs."""
import json

import numpy as np
import pytest

from bioplastic.protocol import load_protocol


@pytest.fixture
def tiny_search_phase(monkeypatch):
    mod = load_protocol("search_phase")
    monkeypatch.setattr(mod, "N_UNITS", 8)
    monkeypatch.setattr(mod, "BUDGETS", {"flipflop": 30, "delayed_addition": 30, "evidence_accumulation": 30})
    monkeypatch.setattr(mod, "TRAINING", {**mod.TRAINING, "continue_after": 5})
    monkeypatch.setattr(mod, "QUICK", {"seeds": 2, "tasks": ["flipflop", "evidence_accumulation"], "memory": [1, 2],
                                       "archs": ["LFRNN g=1.5", "PLRNN"], "optimisers": ["Adam 1e-3"]})
    return mod


def test_search_phase_tiny(tiny_search_phase, tmp_path):
    pred = tiny_search_phase.main(tmp_path, quick=True)
    assert len(pred["cells"]) == 2 * 2 * 2  # tasks x memory x archs (one optimiser)
    for c in pred["cells"]:
        assert c["n"] == 2 and sum(c["outcomes"].values()) == 2
        assert c["n_required"] == (8 if c["task"] == "flipflop" else 2)
        assert c["search_phase"] == (c["plateau"]["fraction"] >= 0.5 and c["success"]["fraction"] >= 0.3)
    long_ff = next(c for c in pred["cells"] if c["task"] == "flipflop" and c["memory"] == 2)
    assert long_ff["task_settings"]["n_steps"] == 200
    on_disk = json.loads((tmp_path / "predictions.json").read_text())
    assert on_disk["provenance"]["seeds"] == [0, 1] and on_disk["provenance"]["version"]
    assert len(on_disk["claims"]["a"]["cells"]) == 8 and on_disk["claims"]["a"]["scope"] == "exists"
    for name in ("plateau_heatmap.png", "success_heatmap.png", "report.md"):
        assert (tmp_path / name).stat().st_size > 1000
    assert "n too small" in (tmp_path / "report.md").read_text()  # 2 seeds: no intervals printed
    assert len(list((tmp_path / "runs").glob("*.h5"))) == 16


@pytest.mark.optional
def test_search_phase_on_a_dask_cluster_gives_the_local_result(tiny_search_phase, tmp_path, monkeypatch):
    distributed = pytest.importorskip("dask.distributed")
    monkeypatch.setattr(tiny_search_phase, "QUICK", {**tiny_search_phase.QUICK, "tasks": ["flipflop"],
                                                     "memory": [1]})
    local = tiny_search_phase.main(tmp_path / "local", quick=True)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cl:
        from bioplastic.backends import use_backend

        with use_backend(scheduler=cl.scheduler_address):
            remote = tiny_search_phase.main(tmp_path / "dask", quick=True)
    assert remote["backend"].startswith("dask scheduler")
    for a, b in zip(local["cells"], remote["cells"]):
        assert a["per_seed"] == b["per_seed"]


def test_tcr_regimes_tiny(tmp_path, monkeypatch):
    mod = load_protocol("tcr_regimes")
    monkeypatch.setattr(mod, "N_UNITS", 8)
    cells = {k: {**v, "budget": 25} for k, v in mod.CELLS.items()}
    monkeypatch.setattr(mod, "CELLS", cells)
    monkeypatch.setattr(mod, "TRAINING", {**mod.TRAINING, "continue_after": 5})
    monkeypatch.setattr(mod, "QUICK", {"seeds": 2, "cells": ["flipflop / LFRNN g=3 / Adam 1e-3",
                                                             "flipflop / LSTM / SGD 0.3"],
                                       "conditions": ["no TCR", "lambda 0.1", "search phase only 0.1",
                                                      "memory epoch 0.1"]})
    pred = mod.main(tmp_path, quick=True)
    res = pred["results"]["flipflop / LFRNN g=3 / Adam 1e-3"]
    base = res["conditions"]["no TCR"]
    assert "speedup" not in base and base["n"] == 2
    tcr = res["conditions"]["lambda 0.1"]
    # 25 iterations solve nothing: every pair censored on both sides
    assert tcr["speedup"]["all_censored"] and tcr["speedup"]["n_both_censored"] == 2
    assert tcr["success_difference"]["median"] == 0.0
    assert tcr["lambda_scale"]["median"] > 0
    runs = sorted((tmp_path / "runs").glob("*memoryepoch0.1*.h5"))
    from bioplastic.io import read_run

    cfg = read_run(runs[0], checkpoints=False).config["training"]
    assert cfg["tcr_epoch"] == "hold" and cfg["tcr_relative"] is True
    assert {r["claim"] for r in pred["claims"].values()} == {
        "TCR accelerates BPTT", "TCR enables learning in strongly connected networks",
        "TCR helps LSTMs in the search phase"}
    assert len(pred["claims"]["d"]["cells"]) == 3 and len(pred["claims"]["e"]["cells"]) == 3
    assert pred["provenance"]["seeds"] == [100, 101]
    assert (tmp_path / "speedup_heatmap.png").stat().st_size > 1000


def test_slow_dynamics_tiny(tmp_path, monkeypatch):
    mod = load_protocol("slow_dynamics")
    monkeypatch.setattr(mod, "MODEL", {**mod.MODEL, "n_units": 8})
    monkeypatch.setattr(mod, "BUDGETS", {k: 20 for k in mod.BUDGETS})
    monkeypatch.setattr(mod, "QUICK", {"seeds": 2, "tasks": ["evidence_accumulation"],
                                       "conditions": ["no TCR", "TCR 1"]})
    pred = mod.main(tmp_path, quick=True)
    t = pred["results"]["evidence_accumulation"]
    final = t["conditions"]["TCR 1"]["final_median_timescale"]
    assert len(final) == 2 and all(v is None or v > 0 for v in final)
    d = t["differences"]["TCR 1"]["median_timescale"]
    base = t["conditions"]["no TCR"]["final_median_timescale"]
    assert d["median"] == pytest.approx(np.median(np.subtract(final, base)))
    assert len(pred["claims"]["f"]["cells"]) == 2
    assert (tmp_path / "median_timescale.png").stat().st_size > 1000


def test_reproduce_reads_finished_outputs_and_writes_the_scoreboard(tmp_path, monkeypatch, tiny_search_phase):
    # a finished (tiny) search_phase beside reproduce's folder; the other protocols absent
    tiny_search_phase.main(tmp_path / "search_phase", quick=True)
    import bioplastic.protocol as protocol

    ran = []
    monkeypatch.setattr(protocol, "run_protocol", lambda name, *a, **k: ran.append(name) or {})
    mod = load_protocol("reproduce")
    monkeypatch.setattr(mod, "run_protocol", lambda name, *a, **k: ran.append(name) or {}, raising=False)
    out = mod.main(tmp_path / "reproduce", quick=True)
    text = (tmp_path / "reproduce" / "REPRODUCTION.md").read_text()
    assert "abrupt learning after a search plateau" in text
    assert "search_phase" not in ran
    assert out["verdicts"]


# -- a protocol re-run reuses only the runs its settings made ----------------------------------

def _bptt_job(tmp_path, **training):
    (tmp_path / "runs").mkdir(exist_ok=True)
    return {"name": "ff_seed0", "seed": 0, "model": {"kind": "lfrnn", "n_units": 8},
            "task": {"name": "flipflop", "n_steps": 20},
            "training": {"iterations": 3, "batch_size": 4, "eval_batch_size": 8, "early_stop": False, **training},
            "run_file": str(tmp_path / "runs" / "ff_seed0.h5")}


def test_a_finished_run_is_reused_only_with_the_settings_that_made_it(tmp_path, capsys):
    from bioplastic.experiments import run_train_job

    first = run_train_job(_bptt_job(tmp_path))
    again = run_train_job(_bptt_job(tmp_path))
    assert (first["reused"], again["reused"]) == (False, True)
    changed = run_train_job(_bptt_job(tmp_path, lr=0.01))  # as `bioplastic run ... --set training.lr=0.01`
    assert changed["reused"] is False
    assert "training.lr 0.001 -> 0.01" in capsys.readouterr().err
    stale = sorted(p.name for p in (tmp_path / "runs").glob("ff_seed0.stale-*.h5"))
    assert len(stale) == 1  # the earlier run is kept, moved aside
    assert run_train_job(_bptt_job(tmp_path, lr=0.01))["reused"] is True


def test_a_local_rule_run_is_reused_only_with_its_rule_settings(tmp_path, capsys):
    from bioplastic.experiments import run_local_job

    def job(eta_s):
        return {**_bptt_job(tmp_path), "rule": "eprop+tcr_stp", "rule_settings": {"tcr_stp": {"eta_s": eta_s}},
                "training": {"iterations": 3, "batch_size": 4, "eval_batch_size": 8, "early_stop": False,
                             "diagnostics_every": 0}}

    assert run_local_job(job(0.02))["reused"] is False
    assert run_local_job(job(0.02))["reused"] is True
    assert run_local_job(job(0.05))["reused"] is False
    assert "eta_s" in capsys.readouterr().err
