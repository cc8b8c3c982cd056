"""Tests of bioplastic.bench: record format, JSON output, CLI module and the
PyTorch peer's equivalence. No timing assertions: speed is what the
benchmark measures, not what tests check."""
from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from bioplastic import bench
from bioplastic.training.optim import Adam
from bioplastic.bench import Case, run_benchmark
from bioplastic.errors import ConfigError

TINY = Case(12, 3, 8, "float64")


def check_records(records, cases):
    assert [r["case"] for r in records] == [c.name for c in cases for _ in range(2)]
    assert [r["what"] for r in records] == ["forward", "bptt"] * len(cases)
    for r in records:
        assert tuple(r) == bench.RECORD_KEYS
        assert isinstance(r["case"], str)
        assert isinstance(r["bioplastic_ms"], float) and r["bioplastic_ms"] > 0
        if r["torch_ms"] is None:
            assert r["ratio"] is None
        else:
            assert isinstance(r["torch_ms"], float) and r["torch_ms"] > 0
            assert r["ratio"] == pytest.approx(r["torch_ms"] / r["bioplastic_ms"], rel=1e-2)


def test_records_without_torch():
    records = run_benchmark([TINY], quick=True, use_torch=False)
    check_records(records, [TINY])
    assert all(r["torch_ms"] is None and r["ratio"] is None for r in records)
    assert records[0]["case"] == "N=12 B=3 T=8 float64"


def test_records_without_torch_installed(monkeypatch):
    from bioplastic.bench import machine, suite

    monkeypatch.setattr(suite, "import_torch", lambda: None)
    monkeypatch.setattr(machine, "import_torch", lambda: None)
    records = run_benchmark([(10, 2, 5, "float32")], repeats=2)
    check_records(records, [Case(10, 2, 5, "float32")])
    assert all(r["torch_ms"] is None for r in records)
    assert bench.machine_info()["torch"] is None


def test_json_is_written_atomically(tmp_path):
    records = run_benchmark([TINY], quick=True, use_torch=False)
    out = tmp_path / "bench.json"
    out.write_text("old")
    bench.write_json(records, out)
    assert json.loads(out.read_text()) == records
    assert [p.name for p in tmp_path.iterdir()] == ["bench.json"]  # no temp file left


def test_table_and_header():
    records = run_benchmark([TINY], quick=True, use_torch=False)
    table = bench.format_table(records)
    assert table.splitlines()[0].split() == ["case", "what", "bioplastic_ms", "torch_ms", "ratio",
                                             "torch_module_ms", "ratio_module"]
    assert "N=12 B=3 T=8 float64" in table
    header = bench.format_header(bench.machine_info())
    assert "numba" in header and "CPUs" in header


def test_default_cases_and_repeats():
    names = [c.name for c in bench.DEFAULT_CASES]
    assert names == [f"N={n} B={b} T={t} {d}" for (n, b, t) in ((100, 32, 100), (256, 64, 200),
                                                                 (512, 128, 200))
                     for d in ("float32", "float64")]
    reps = [bench.default_repeats(c) for c in bench.DEFAULT_CASES]
    assert reps[0] == 20 and reps == sorted(reps, reverse=True) and reps[-1] >= 3


@pytest.mark.parametrize("bad, match", [
    (dict(cases=[(10, 2)]), "benchmark case"),
    (dict(cases=[(10, 2, 5, "float16")]), "dtype"),
    (dict(cases=[TINY], repeats=0), "repeats"),
])
def test_bad_arguments(bad, match):
    with pytest.raises(ConfigError, match=match):
        run_benchmark(use_torch=False, **bad)


def test_cli_module(tmp_path, capsys, monkeypatch):
    from bioplastic.cli import bench as cli_bench

    from bioplastic.bench import machine, suite

    monkeypatch.setattr(suite, "QUICK_CASES", (TINY,))
    monkeypatch.setattr(machine, "_cpu_busy", lambda interval=0.5: 0.0)
    parser = argparse.ArgumentParser(prog="bioplastic")
    sub = parser.add_subparsers(dest="command")
    cli_bench.add_parser(sub)
    out = tmp_path / "b.json"
    args = parser.parse_args(["bench", "--quick", "--repeats", "2", "--json", str(out)])
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "bioplastic_ms" in printed and "N=12 B=3 T=8 float64" in printed
    data = json.loads(out.read_text())
    assert [r["what"] for r in data] == ["forward", "bptt"]
    assert all(set(r) == set(bench.RECORD_KEYS) for r in data)


# -- the PyTorch peer (optional) --------------------------------------------
@pytest.mark.optional
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_torch_peer_reproduces_bioplastic(dtype):
    torch = pytest.importorskip("torch")
    net, params, batch = bench.setup_case(Case(20, 4, 15, dtype), seed=3)
    peer = bench.TorchLFRNN(torch, params, net.alpha, dtype)
    with torch.no_grad():
        rates, y = peer.forward(peer.tensor(batch.inputs))
    traj = net.forward(params, batch.inputs)
    tol = bench.OUTPUT_ATOL[dtype]
    np.testing.assert_allclose(y.numpy(), traj.outputs, rtol=0, atol=tol)
    np.testing.assert_allclose(rates.numpy(), traj.rates, rtol=0, atol=tol)
    report = bench.verify_peer(torch, net, params, batch)
    assert report["max_output_diff"] <= tol
    assert report["grad_rel"] <= bench.GRAD_RTOL[dtype]


@pytest.mark.optional
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_module_peer_reproduces_bioplastic(dtype):
    torch = pytest.importorskip("torch")
    net, params, batch = bench.setup_case(Case(20, 4, 15, dtype), seed=4)
    report = bench.verify_peer(torch, net, params, batch, bench.TorchModuleLFRNN)
    assert report["max_output_diff"] <= bench.OUTPUT_ATOL[dtype]
    assert report["grad_rel"] <= bench.GRAD_RTOL[dtype]
    peer = bench.TorchModuleLFRNN(torch, params, net.alpha, dtype)
    assert {k: tuple(v.shape) for k, v in peer.params.items()} == {k: v.shape for k, v in params.items()}


@pytest.mark.optional
def test_torch_step_matches_bioplastic_step():
    """One clipped Adam iteration moves both implementations' weights alike."""
    torch = pytest.importorskip("torch")
    net, params, batch = bench.setup_case(Case(16, 4, 12, "float64"), seed=5)
    peer = bench.TorchLFRNN(torch, params, net.alpha, "float64")
    ours = params.copy()
    opt = Adam(lr=bench.LR)
    for _ in range(3):
        l_ours = bench.bioplastic_step(net, ours, batch, opt)
        l_peer = peer.step(*(peer.tensor(a) for a in (batch.inputs, batch.targets, batch.loss_mask)))
        assert float(l_peer.detach()) == pytest.approx(l_ours, rel=1e-9)
    for k in ours:
        np.testing.assert_allclose(peer.params[k].detach().numpy(), ours[k], rtol=1e-6, atol=1e-9)


@pytest.mark.optional
def test_quick_benchmark_with_torch():
    pytest.importorskip("torch")
    records = run_benchmark([TINY], quick=True)
    check_records(records, [TINY])
    assert all(r["torch_ms"] is not None for r in records)


@pytest.mark.optional
def test_mismatching_peer_raises(monkeypatch):
    torch = pytest.importorskip("torch")
    net, params, batch = bench.setup_case(TINY)

    class WrongPeer(bench.TorchLFRNN):  # a different time constant than bioplastic's
        def __init__(self, torch, params, alpha, dtype, lr=bench.LR):
            super().__init__(torch, params, 2 * alpha, dtype, lr)

    monkeypatch.setattr(bench, "TorchLFRNN", WrongPeer)
    with pytest.raises(bench.PeerMismatchError, match="outputs differ"):
        bench.verify_peer(torch, net, params, batch)


def test_cli_bench_rules_adds_local_rule_records(tmp_path, capsys):
    """`bioplastic bench --rules` adds eprop / node_perturbation records to the same JSON list."""
    import json

    from bioplastic.cli import main

    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--rules", "--repeats", "1", "--json", str(out)]) == 0
    records = json.loads(out.read_text())
    whats = {r["what"] for r in records}
    assert {"forward", "bptt", "eprop", "node_perturbation"} <= whats
    rule = next(r for r in records if r["what"] == "eprop")
    assert rule["bioplastic_ms"] > 0 and rule["torch_ms"] is None and rule["ratio"] is None
    assert "peak memory" in capsys.readouterr().out


def test_cli_bench_models_times_every_model_kind(tmp_path, capsys):
    """`bioplastic bench --models` adds forward and loss_and_grads records of each kind, against the LFRNN."""
    import json

    from bioplastic.bench import run_model_benchmark
    from bioplastic.cli import main

    out = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--models", "--repeats", "1", "--json", str(out)]) == 0
    records = [r for r in json.loads(out.read_text()) if r["case"].split()[0] in ("lfrnn", "rank1", "plrnn", "lstm")]
    assert {r["case"].split()[0] for r in records} == {"lfrnn", "rank1", "plrnn", "lstm"}
    assert {r["what"] for r in records} == {"forward", "loss_and_grads"}
    assert all(r["bioplastic_ms"] > 0 and r["torch_ms"] is None for r in records)
    assert "x lfrnn" in capsys.readouterr().out
    direct = run_model_benchmark(quick=True, repeats=1, kinds=("lfrnn", "plrnn"))
    assert [r["vs_lfrnn"] for r in direct if r["case"].startswith("lfrnn")] == [1.0, 1.0]
    assert all(r["vs_lfrnn"] > 0 for r in direct)


def test_timed_blocks_take_turns_after_an_untimed_call():
    """Each side runs in short blocks that alternate, each block opened by an untimed call,
    so that a slow spell of the machine cannot fall on one side only."""
    from bioplastic.bench import ROUNDS, time_blocks

    calls = []
    fns = [lambda: calls.append("a"), None, lambda: calls.append("b")]
    ms = time_blocks(fns, repeats=20, warmup=2)
    assert ms[1] is None and ms[0] >= 0 and ms[2] >= 0
    per_block = -(-20 // ROUNDS)
    block = 1 + per_block
    assert calls[:4] == ["a", "a", "b", "b"]  # warm-up
    body = calls[4:]
    assert len(body) == 2 * ROUNDS * block
    assert body == (["a"] * block + ["b"] * block) * ROUNDS
    few = []
    time_blocks([lambda: few.append(1)], repeats=3, warmup=0)  # fewer repeats than rounds
    assert len(few) == 3 * 2  # three rounds of one untimed and one timed call
