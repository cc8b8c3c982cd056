"""LIF mode of the Brian2 export (SPEC 8): rate networks as networks of LIF neurons.

A hand-built bistable network keeps its memories as LIF neurons, the transfer
function matches a simulated LIF neuron, the lambda search is reproducible,
the standalone script runs without bioplastic, and what cannot be converted
is refused naming what can. Brian2 runs use the numpy target (no compile).
"""
import json
import os
import subprocess
import sys
import venv

import numpy as np
import pytest

import bioplastic as bp
from bioplastic.analysis import hold
from bioplastic.cli import main
from bioplastic.errors import ConfigError
from bioplastic.export import brian2 as b2x
from bioplastic.export import brian2_lif, brian2_rate, brian2_script, lif_transfer

from test_export_brian2 import flipflop_network, save_run

pytestmark = pytest.mark.filterwarnings("ignore:.*deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def brian2():
    """brian2, or a clean skip when it is not installed."""
    try:
        return brian2_rate.import_brian2()
    except ImportError:
        pytest.skip("brian2 not installed")


def bistable_pair(w=2.0):
    """Two tanh units exciting each other: memories (+, +) and (-, -) at x = +-1.915.

    ``x1 = w tanh(x2)``, ``x2 = w tanh(x1)`` at rest: the symmetric fixed
    points solve ``x = 2 tanh(x)``; the antisymmetric branch has only 0.
    """
    net = bp.make_network("lfrnn", 1, 1, n_units=2, g=0.0)
    params = {"W": np.array([[0.0, w], [w, 0.0]]), "W_in": np.ones((2, 1)), "b": np.zeros(2),
              "W_out": np.full((1, 2), 0.5), "b_out": np.zeros(1)}
    return net, net.check_params(params)


def test_siegert_matches_numpy_formula_and_a_simulated_neuron(brian2):
    drives = np.array([0.4, 1.0, 1.6, 2.4])
    scipy_rates = lif_transfer.siegert_rate_hz(drives, 0.3, 0.01, 0.002)
    numpy_rates = brian2_lif.stationary_rate_hz(drives, 0.3, 0.01, 0.002)
    np.testing.assert_allclose(numpy_rates, scipy_rates, rtol=2e-3)
    # 200 independent neurons per drive for 2 s in brian2, with the mode's own equation
    brian2.prefs.codegen.target = "numpy"
    group = brian2.NeuronGroup(len(drives) * 200, "dv/dt = (-v + mu)/tau_mem + noise*sqrt(2/tau_mem)*xi : 1 "
                               "(unless refractory)\nmu : 1", threshold="v > 1", reset="v = 0",
                               refractory=2 * brian2.ms, method="euler", dt=0.1 * brian2.ms,
                               namespace={"tau_mem": 10 * brian2.ms, "noise": 0.3})
    group.mu = np.repeat(drives, 200)
    spikes = brian2.SpikeMonitor(group)
    net = brian2.Network(group, spikes)
    brian2.seed(3)
    net.run(2 * brian2.second)
    simulated = np.bincount(np.asarray(spikes.i[:]), minlength=len(drives) * 200).reshape(-1, 200).mean(1) / 2
    # the Euler step misses a few threshold crossings: a few percent fewer spikes, more at low rates
    np.testing.assert_allclose(simulated, scipy_rates, rtol=0.15, atol=1.0)


def test_fit_drive_matches_phi_where_the_network_lives():
    x = np.random.default_rng(0).normal(0, 1.2, 5000)
    fit = lif_transfer.fit_drive(x, "tanh", 100.0)
    transfer = lif_transfer.lif_transfer("tanh", fit, 100.0)
    grid = np.linspace(-1.5, 1.5, 31)
    assert np.max(np.abs(transfer(grid) - np.tanh(grid))) < 0.2  # a LIF curve is no tanh
    assert fit["rmse_rate"] < 0.2 and fit["gain"] > 0
    q = np.quantile(x, np.linspace(0.005, 0.995, 200))  # the fit's own loss is at a minimum
    def loss(mu0, gain):
        t = lif_transfer.lif_transfer("tanh", {"mu0": mu0, "gain": gain}, 100.0)
        return np.mean((t(q) - np.tanh(q)) ** 2)
    best = loss(fit["mu0"], fit["gain"])
    for dm, dg in ((0.1, 0), (-0.1, 0), (0, 0.1), (0, -0.1)):
        assert loss(fit["mu0"] + dm, fit["gain"] * (1 + dg)) > best
    with pytest.raises(ConfigError, match="phi in"):
        lif_transfer.fit_drive(x, "relu", 100.0)
    with pytest.raises(ConfigError, match="lambda must be > 0"):
        lif_transfer.fit_drive(x, "tanh", -5)


def test_bistable_pair_keeps_both_memories_as_lif_neurons(brian2):
    net, params = bistable_pair()
    model = b2x.to_brian2_model(net, params, mode="lif")
    lam = 200.0
    fit = lif_transfer.fit_drive(np.array([-1.915, 1.915] * 50 + list(np.linspace(-2, 2, 100))), "tanh", lam)
    T, B = 100, 2  # 1 s without input
    x0 = np.array([[1.915, 1.915], [-1.915, -1.915]])
    res = b2x.simulate(model, np.zeros((T, B, 1)), x0=x0, mode="lif", codegen="numpy",
                       lam=lam, mu0=fit["mu0"], gain=fit["gain"], n_per_unit=10, seed=1)
    y = res["outputs"][:, :, 0]
    assert np.all(y[:, 0] > 0.3) and np.all(y[:, 1] < -0.3)  # both memories held for the whole second
    assert res["neuron_rate_hz"].shape == (B * 2 * 10,)
    # the memory sets the firing: near lambda for (+, +), near silence for (-, -)
    rates = res["neuron_rate_hz"].reshape(B, 20)
    assert rates[0].mean() > 0.7 * lam and rates[1].mean() < 0.1 * lam


def test_flipflop_network_holds_memories_and_decodes(brian2, tmp_path):
    net, params = flipflop_network()
    run = save_run(tmp_path / "run.h5", net, params)  # no recordings: the weights are all it needs
    exp = b2x.write_export(run, tmp_path / "lif", mode="lif", trials=4, codegen="numpy", search_trials=4,
                           lif={"lam": 200.0, "n_per_unit": 10})
    assert exp["settings"]["lif"]["lam"] == 200.0 and exp["settings"]["lif_search"]["given"]
    summary = b2x.run_script_and_compare(exp, hold_steps=60)
    a = summary["agreement"]
    assert a["accuracy_lif"] > a["accuracy_rate"] - 0.1
    assert summary["hold"]["lif_fraction_held"] == 1.0
    assert 5 < a["neuron_rate_mean_hz"] < 200 and 0 < a["isi_cv_median"] < 1.5
    assert not summary["script"]["bioplastic_modules_loaded"]
    saved = json.loads((tmp_path / "lif" / "agreement.json").read_text())
    assert saved["settings"]["lif"]["mu0"] == exp["settings"]["lif"]["mu0"]
    assert (tmp_path / "lif" / "comparison.png").stat().st_size > 1000


def test_lambda_search_is_reproducible_and_picks_by_the_stated_rule(brian2):
    net, params = flipflop_network(k=2)
    task = bp.get_task("flipflop")
    model = b2x.to_brian2_model(net, params, mode="lif")
    kw = dict(grid=(25.0, 100.0), trials=2, seed=5, codegen="numpy", options={"n_per_unit": 2})
    first = lif_transfer.search_lambda(net, params, task, model, **kw)
    again = lif_transfer.search_lambda(net, params, task, model, **kw)
    assert first["lam"] == again["lam"] and first["table"] == again["table"]
    best = max(first["table"], key=lambda r: (round(r["accuracy"], 9), -r["output_rmse"], -r["lam"]))
    assert first["lam"] == best["lam"]
    with pytest.raises(ConfigError, match="positive rates"):
        lif_transfer.search_lambda(net, params, task, model, **{**kw, "grid": (0.0,)})


def test_unsupported_models_and_options_are_refused_naming_what_works(tmp_path):
    lstm = bp.make_network("lstm", 3, 3, n_units=4)
    with pytest.raises(ConfigError, match=r"lif mode does not support lstm.*lfrnn \(tanh, sigmoid\)"):
        b2x.check_supported(lstm, "lif")
    relu = bp.make_network("lfrnn", 3, 3, n_units=4, nonlinearity="relu")
    with pytest.raises(ConfigError, match="nonlinearity 'relu'"):
        b2x.check_supported(relu, "lif")
    net, params = flipflop_network(k=1)
    run = save_run(tmp_path / "run.h5", net, params)
    with pytest.raises(ConfigError, match="unknown lif option"):
        b2x.write_export(run, tmp_path / "a", mode="lif", lif={"lamda": 10})
    with pytest.raises(ConfigError, match="give lambda alone"):
        b2x.write_export(run, tmp_path / "b", mode="lif", lif={"lam": 10, "gain": 2})
    with pytest.raises(ConfigError, match="n_per_unit must be a positive integer"):
        b2x.write_export(run, tmp_path / "c", mode="lif", lif={"n_per_unit": 0, "lam": 50})
    with pytest.raises(ConfigError, match="rate mode takes no LIF options"):
        b2x.write_export(run, tmp_path / "d", mode="rate", lif={"lam": 50})
    with pytest.raises(ConfigError, match="needs the fitted"):
        b2x.simulate(b2x.to_brian2_model(net, params), np.zeros((2, 1, 3)), mode="lif")


def test_cli_exports_lif_with_a_given_lambda(brian2, tmp_path, capsys):
    net, params = flipflop_network(k=1)
    run = save_run(tmp_path / "run.h5", net, params)
    assert main(["export", "brian2", str(run), "--mode", "lif", "--lam", "80", "--out", str(tmp_path / "x"),
                 "--trials", "2", "--codegen", "numpy"]) == 0
    out = capsys.readouterr().out
    assert "lambda = 80 Hz" in out
    text = (tmp_path / "x" / "brian2_lif.py").read_text()
    assert "def simulate_lif" in text and "import bioplastic" not in text
    assert main(["export", "brian2", str(run), "--mode", "lif", "--out", str(tmp_path / "y"),
                 "--lam-grid", "10,x"]) == 2


def test_hold_time_of_constructed_outputs():
    inputs, pats = hold.hold_inputs(10, 1)
    assert inputs.shape == (hold.WRITE_STEPS + 10, 8, 3)
    T = inputs.shape[0]
    outputs = np.repeat(pats[None], T, axis=0).astype(float)
    outputs[hold.WRITE_STEPS + 4:, 0, 0] *= -1  # trial 0 loses bit 0 five steps into the window
    times = hold.hold_times(outputs, pats, dt_ms=10.0)
    assert times[0] == 50.0 and np.all(times[1:] == 110.0)
    assert hold.window_ms(10, 10.0) == 110.0
    with pytest.raises(ValueError, match="disagree"):
        hold.hold_times(outputs[:, :3], pats, 10.0)


@pytest.mark.slow
def test_standalone_lif_script_runs_in_a_fresh_venv_with_only_brian2_and_numpy(brian2, tmp_path):
    """pip-installs brian2 and numpy (the versions the brian2 extra allows) into a new venv."""
    net, params = flipflop_network(k=1)
    run = save_run(tmp_path / "run.h5", net, params)
    exp = b2x.write_export(run, tmp_path / "lif", mode="lif", trials=2, codegen="numpy", lif={"lam": 50.0})
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    pip = subprocess.run([str(py), "-m", "pip", "install", "-q", "brian2<2.10", "numpy<2.4"],
                         capture_output=True, text=True, timeout=900)
    if pip.returncode != 0:
        pytest.skip(f"cannot install brian2 into a fresh venv (offline?): {pip.stderr[-300:]}")
    listed = subprocess.run([str(py), "-m", "pip", "list", "--format=json"], capture_output=True, text=True)
    names = {p["name"].lower() for p in json.loads(listed.stdout)}
    assert "bioplastic" not in names and "h5py" not in names
    script = exp["paths"]["script"]
    proc = subprocess.run([str(py), "-I", str(script), "--out", str(tmp_path / "lif" / "results.npz")],
                          cwd=script.parent, capture_output=True, text=True, timeout=900,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["mode"] == "lif" and summary["bioplastic_modules_loaded"] == []
    with np.load(tmp_path / "lif" / "results.npz") as res:
        assert res["outputs"].shape == (exp["batch"].inputs.shape[0], 2, 3)
    assert sys.executable != str(py)
    assert brian2_script.SCRIPT_NAME.format(mode="lif") == script.name


def _summary_with_gaps(gaps_by_m, mean_field_gap=0.02):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "spiking_lif", Path(__file__).resolve().parents[1] / "protocols" / "spiking_lif.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    by_m = {M: {"accuracy_gap": mod._ci(g), "mean_field_gap": mod._ci([mean_field_gap] * len(g))}
            for M, g in gaps_by_m.items()}
    return mod, {"flipflop": {"by_m": by_m}, "delayed_addition": {"trained": []}}


def test_protocol_verdict_names_the_best_population_and_what_limits_it():
    mod, summary = _summary_with_gaps({"1": [0.10, 0.09, 0.12], "100": [0.03, 0.04, 0.05]})
    v = mod.verdict(summary)
    assert v["flipflop"]["within"] and v["flipflop"]["best_m"] == "100"
    assert v["delayed_addition"]["within"] is None
    mod, summary = _summary_with_gaps({"1": [0.10, 0.09, 0.12], "100": [0.07, 0.08, 0.06]}, mean_field_gap=0.05)
    v = mod.verdict(summary)
    assert not v["flipflop"]["within"] and "mean-field limit" in v["flipflop"]["text"]


@pytest.mark.slow
def test_spiking_lif_protocol_quick(brian2, tmp_path):
    """The protocol's quick setting end to end (about 4 minutes on 2 cores)."""
    assert main(["run", "spiking_lif", "--quick", "--out", str(tmp_path / "p")]) == 0
    pred = json.loads((tmp_path / "p" / "predictions.json").read_text())
    ff = pred["summary"]["flipflop"]
    assert set(ff["by_m"]) == {"1", "10"} and len(ff["converted_seeds"]) == 2
    assert all(r["script_without_bioplastic"] for r in pred["per_run"])
    assert (tmp_path / "p" / "report.md").read_text().startswith("# spiking_lif")
