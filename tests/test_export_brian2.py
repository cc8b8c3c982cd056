"""Brian2 export (SPEC 8): rate mode reproduces bioplastic, spiking mode tracks it,
the standalone script runs without bioplastic, bad input gives clear errors.

Brian2 runs use the ``numpy`` code-generation target: it needs no compiler and
starts in well under a second, while ``cython`` compiles every code object
first (seconds each) and only pays off for long spiking runs.
"""
import ast
import json

import h5py
import numpy as np
import pytest

import bioplastic as bp
from bioplastic.cli import main
from bioplastic.errors import ConfigError, SchemaError
from bioplastic.export import brian2 as b2x
from bioplastic.export import brian2_rate, brian2_script, brian2_spiking
from bioplastic.io.runfile import write_run

# brian2 <= 2.9 calls pyparsing's camelCase API, deprecated in pyparsing 3.3: not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:.*deprecated:DeprecationWarning")


def flipflop_network(k=4, w=2.0, a=10.0):
    """A hand-built 3-bit flip-flop LFRNN: 3 clusters of k self-exciting units.

    Within a cluster ``W_ij = w / k``, so the cluster mean obeys
    ``x = w tanh(x)`` at rest: two stable states +-1.915 (w = 2) and an
    unstable one at 0. Channel c drives cluster c with gain ``a`` (a +-1
    pulse of 3 steps flips it), and output c reads cluster c's mean rate
    scaled to +-1.
    """
    net = bp.make_network("lfrnn", 3, 3, n_units=3 * k, g=0.0)
    cl = np.repeat(np.arange(3), k)
    r_star = np.tanh(1.915)
    params = {"W": w / k * (cl[:, None] == cl[None, :]), "W_in": a * (cl[:, None] == np.arange(3)[None]),
              "b": np.zeros(3 * k), "W_out": (np.arange(3)[:, None] == cl[None]) / (k * r_star),
              "b_out": np.zeros(3)}
    return net, net.check_params(params)


def save_run(path, net, params, task_name="flipflop"):
    task = bp.get_task(task_name)
    config = {"model": net.settings(), "task": {"name": task.name, **task.settings()}}
    write_run(path, config=config, seed=7, status="converged", params=params, history={"iteration": [0]})
    return path


@pytest.fixture(scope="module")
def brian2():
    """brian2, or a clean skip when it is not installed."""
    try:
        brian2_rate.import_brian2()  # refuses an unsupported brian2/numpy pair with a clear ImportError
    except ImportError:
        pass
    return pytest.importorskip("brian2")


# ---------------------------------------------------------------------------
# without brian2


def test_lstm_is_refused_naming_modes_and_models():
    net = bp.make_network("lstm", 3, 3, n_units=8)
    params = net.init_params(np.random.default_rng(0))
    with pytest.raises(ConfigError, match=r"rate mode does not support lstm; rate mode supports: lfrnn .*plrnn"):
        b2x.to_brian2_model(net, params)


@pytest.mark.parametrize("kind, settings", [("plrnn", {}), ("lfrnn", {"nonlinearity": "relu"})])
def test_spiking_mode_refuses_unbounded_models(kind, settings):
    net = bp.make_network(kind, 3, 3, n_units=8, **settings)
    params = net.init_params(np.random.default_rng(0))
    with pytest.raises(ConfigError, match=r"spiking mode does not support .*spiking mode supports: "
                                          r"lfrnn \(tanh, sigmoid\)"):
        b2x.to_brian2_model(net, params, mode="spiking")
    with pytest.raises(ConfigError, match="unknown Brian2 export mode 'hh'; modes: rate, spiking, lif"):
        b2x.to_brian2_model(net, params, mode="hh")


def test_foreign_hdf5_and_empty_params_are_refused(tmp_path):
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["data"] = np.arange(3)
    with pytest.raises(SchemaError, match="is not a bioplastic run file"):
        b2x.load_trained(foreign)
    net, _ = flipflop_network()
    empty = save_run(tmp_path / "empty.h5", net, {})
    with pytest.raises(SchemaError, match=r"holds no trained parameters \(/params is empty"):
        b2x.load_trained(empty)


def test_out_folder_must_be_new_or_empty(tmp_path):
    net, params = flipflop_network()
    run = save_run(tmp_path / "run.h5", net, params)
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="exists and is not empty; use --force"):
        b2x.write_export(run, out)
    exp = b2x.write_export(run, out, force=True, trials=2)
    assert exp["paths"]["script"].exists() and (out / "keep.txt").exists()


@pytest.mark.parametrize("case, message", [
    ("foreign", "is not a bioplastic run file"),
    ("lstm", "rate mode does not support lstm"),
    ("nonempty", "exists and is not empty; use --force"),
    ("spiking_option", "dt_spike (0.3 ms) must divide"),
])
def test_cli_errors_are_one_clear_line(tmp_path, capsys, case, message):
    net, params = flipflop_network()
    run = save_run(tmp_path / "run.h5", net, params)
    out = tmp_path / "out"
    argv = ["export", "brian2", str(run), "--out", str(out)]
    if case == "foreign":
        with h5py.File(tmp_path / "foreign.h5", "w") as f:
            f["x"] = 1
        argv[2] = str(tmp_path / "foreign.h5")
    elif case == "lstm":
        lstm = bp.make_network("lstm", 3, 3, n_units=4)
        argv[2] = str(save_run(tmp_path / "lstm.h5", lstm, lstm.init_params(np.random.default_rng(0))))
    elif case == "nonempty":
        out.mkdir()
        (out / "x").write_text("x")
    else:
        argv += ["--mode", "spiking", "--dt-spike", "0.3"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_script_embeds_only_brian2_and_numpy():
    for module in (brian2_rate, brian2_spiking):
        tree = ast.parse(open(module.__file__).read())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] in {"json", "sys", "brian2", "importlib", "numpy"}
                           for a in node.names), ast.dump(node)
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                assert node.module.split(".")[0] in {"__future__", "importlib", "numpy"}, node.module
    text = brian2_script.script_text("spiking")
    assert "bioplastic import" not in text and "from ." not in text and "import bioplastic" not in text
    compile(text, "brian2_spiking.py", "exec")


def test_weights_file_round_trip(tmp_path):
    net, params = flipflop_network()
    model = b2x.to_brian2_model(net, params)
    brian2_rate.save_model(tmp_path / "w.npz", model, inputs=np.zeros((5, 2, 3)))
    back, extra = brian2_rate.load_model(tmp_path / "w.npz")
    assert back["phi"] == "tanh" and back["tau_m"] == 10.0 and extra["inputs"].shape == (5, 2, 3)
    for k, v in model["arrays"].items():
        np.testing.assert_array_equal(back["arrays"][k], v)
    bad = {**model, "arrays": {**model["arrays"], "W": np.zeros((3, 3))}}
    with pytest.raises(ValueError, match=r"exported array 'W' has shape \(3, 3\), expected \(12, 12\)"):
        brian2_rate.check_model(bad)


# ---------------------------------------------------------------------------
# real Brian2 runs


@pytest.mark.optional
@pytest.mark.parametrize("kind, settings", [
    ("lfrnn", {"g": 1.5}),
    ("lfrnn", {"g": 1.2, "nonlinearity": "softplus"}),
    ("rank1", {}),
    ("plrnn", {"g": 0.2}),
    ("plrnn", {"g": 0.2, "readout_from": "relu"}),
])
def test_rate_mode_reproduces_bioplastic(brian2, kind, settings):
    task = bp.get_task("flipflop")
    batch = task.sample(4, np.random.default_rng(1))
    net = bp.make_network(kind, 3, 3, n_units=24, **settings)
    params = net.init_params(np.random.default_rng(2))
    x0 = 0.5 * np.random.default_rng(3).standard_normal((4, 24))
    traj = net.forward(params, batch.inputs, x0=x0)
    res = b2x.simulate(b2x.to_brian2_model(net, params), batch.inputs, x0=x0)
    diff = b2x.rate_agreement(traj, res)
    print(kind, settings, diff)
    assert diff["max_abs_diff"] < 1e-8
    assert np.ptp(traj.states) > 0.5  # the trajectory moved: the test compares something


@pytest.mark.optional
def test_rate_mode_reproduces_a_noisy_trial(brian2):
    net = bp.make_network("lfrnn", 3, 3, n_units=16, g=1.5, noise_std=0.3)
    params = net.init_params(np.random.default_rng(0))
    inputs = bp.get_task("flipflop").sample(2, np.random.default_rng(0)).inputs
    noise = net.draw_noise(np.random.default_rng(1), inputs.shape[0], 2)
    model = b2x.to_brian2_model(net, params)
    traj = net.forward(params, inputs, noise=noise)
    res = b2x.simulate(model, inputs, noise=noise * model["noise_scale"])
    assert b2x.rate_agreement(traj, res)["max_abs_diff"] < 1e-8
    quiet = b2x.simulate(model, inputs)  # without the noise it is another trajectory
    assert np.max(np.abs(quiet["states"] - traj.states)) > 1e-3


@pytest.mark.optional
def test_spiking_populations_track_rates_and_solve_flipflop(brian2):
    net, params = flipflop_network()
    task = bp.get_task("flipflop")
    batch = task.sample(8, np.random.default_rng(0))
    model = b2x.to_brian2_model(net, params, mode="spiking")
    traj = net.forward(params, batch.inputs)
    res = b2x.simulate(model, batch.inputs, mode="spiking", n_per_pop=30, seed=1)
    fig = b2x.spiking_agreement(traj, res, task, batch)
    print("spiking vs rate, hand-built flip-flop, M=30, seed 1:", fig)
    assert fig["rate_correlation"] > 0.9
    assert fig["accuracy_spiking"] >= 0.85 and fig["accuracy_spiking"] >= fig["accuracy_rate"] - 0.1
    assert 20 < fig["mean_rate_hz"] < 180
    again = b2x.simulate(model, batch.inputs, mode="spiking", n_per_pop=30, seed=1)
    np.testing.assert_array_equal(again["outputs"], res["outputs"])  # the seed fixes the spikes
    with pytest.raises(ConfigError, match="unknown spiking option"):
        b2x.simulate(model, batch.inputs, mode="spiking", n_neurons=3)


@pytest.mark.optional
def test_standalone_script_runs_without_bioplastic(brian2, tmp_path):
    net, params = flipflop_network()
    run = save_run(tmp_path / "run.h5", net, params)
    exp = b2x.write_export(run, tmp_path / "rate", mode="rate", trials=3)
    plain = b2x.run_script(exp["paths"]["script"], block_bioplastic=False)  # python -I script.py
    assert plain["summary"]["bioplastic_modules_loaded"] == []
    traj = net.forward(params, exp["batch"].inputs)
    assert b2x.rate_agreement(traj, plain["arrays"])["max_abs_diff"] < 1e-8

    exp = b2x.write_export(run, tmp_path / "spk", mode="spiking", trials=3, spiking={"n_per_pop": 20})
    blocked = b2x.run_script(exp["paths"]["script"])  # import bioplastic fails inside
    assert blocked["summary"]["bioplastic_modules_loaded"] == []
    assert blocked["arrays"]["outputs"].shape == (100, 3, 3)
    assert blocked["arrays"]["pop_rate_hz"].mean() > 10


@pytest.mark.optional
def test_cli_export_run_writes_figure_and_agreement(brian2, tmp_path, capsys):
    net, params = flipflop_network()
    run = save_run(tmp_path / "run.h5", net, params)
    out = tmp_path / "out"
    assert main(["export", "brian2", str(run), "--mode", "rate", "--out", str(out), "--run", "--trials", "2"]) == 0
    agreement = json.loads((out / "agreement.json").read_text())
    assert agreement["agreement"]["max_abs_diff"] < 1e-8
    assert agreement["script"]["bioplastic_modules_loaded"] == []
    assert (out / "comparison.png").stat().st_size > 10_000
    assert "agreement.json" in capsys.readouterr().out


@pytest.mark.optional
@pytest.mark.slow
def test_trained_network_spiking_accuracy(brian2, tmp_path):
    """A BPTT-trained flip-flop LFRNN (N=64) keeps its accuracy as Poisson populations."""
    task = bp.get_task("flipflop", criterion=0.98)
    net = bp.make_network("lfrnn", 3, 3, n_units=64, g=1.5)
    result = bp.train(net, task, iterations=2000, lr=3e-3, seed=0)
    batch = task.sample(16, np.random.default_rng(5))
    model = b2x.to_brian2_model(net, result.params, mode="spiking")
    traj = net.forward(result.params, batch.inputs)
    rate = b2x.simulate(b2x.to_brian2_model(net, result.params), batch.inputs)
    assert b2x.rate_agreement(traj, rate)["max_abs_diff"] < 1e-8
    fig = b2x.spiking_agreement(traj, b2x.simulate(model, batch.inputs, mode="spiking"), task, batch)
    print("trained N=64, seed 0:", fig)
    assert fig["rate_correlation"] > 0.85 and fig["accuracy_spiking"] > 0.9
