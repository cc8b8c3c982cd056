"""analyze_run, the RUN.analysis.h5 file, figures and `bioplastic analyze` on real run files."""
import json

import h5py
import numpy as np
import pytest

from bioplastic import get_task, make_network, read_run, train, write_run
from bioplastic.analysis import analysis_path, analyze_run, make_figures, read_analysis, write_analysis
from bioplastic.cli import main
from bioplastic.errors import ConfigError, SchemaError, ShapeError

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_file(tmp_path_factory):
    """A small PLRNN trained for 40 iterations on delayed addition, checkpoints every 10."""
    path = tmp_path_factory.mktemp("run") / "run.h5"
    task = get_task("delayed_addition")
    net = make_network("plrnn", task.n_inputs, task.n_outputs, n_units=8)
    train(net, task, iterations=40, lr=3e-3, seed=1, checkpoint_every=10, run_file=path, early_stop=False,
          progress=False)
    return path


@pytest.fixture(scope="module")
def analysis(run_file):
    return analyze_run(run_file, n_init=32, batch_size=16, finder={"settle_steps": 100}, speed_grid=12)


def test_analysis_covers_every_checkpoint(analysis, run_file):
    data = read_run(run_file)
    assert sorted(analysis.fixed_points) == sorted(data.checkpoints) == [0, 10, 20, 30, 40]
    assert analysis.gr.iterations.tolist() == [0, 10, 20, 30, 40]
    assert analysis.settings["epoch"] == "delay" and analysis.settings["model"] == "plrnn"
    for k, fp in analysis.fixed_points.items():
        assert fp.states.shape[1] == 8
        assert analysis.scales[k] > 0
    assert analysis.slow["final_timescales"].shape == (8,)
    assert analysis.pca["components"].shape == (2, 8)
    assert 0 in analysis.portraits and 40 in analysis.portraits
    assert analysis.speed_maps[40]["speed"].shape == (12, 12)
    assert set(analysis.lead) >= {"preceded", "lead", "chance"}
    json.dumps(analysis.summary())  # JSON-friendly


def test_fixed_points_are_fixed_under_the_trained_network(analysis, run_file):
    data = read_run(run_file)
    net = make_network("plrnn", 2, 1, n_units=8)
    fp = analysis.fixed_points[40].fixed()
    if len(fp):
        traj = net.forward(data.checkpoints[40], np.zeros((5, len(fp), 2)), x0=fp.states)
        np.testing.assert_allclose(traj.states[-1], fp.states, atol=1e-8)


def test_analysis_file_round_trip(analysis, tmp_path):
    path = write_analysis(analysis, tmp_path / "x.analysis.h5")
    back = read_analysis(path)
    assert back.gr.events.tolist() == analysis.gr.events.tolist()
    assert back.abrupt.as_dict() == analysis.abrupt.as_dict()
    for k, fp in analysis.fixed_points.items():
        np.testing.assert_array_equal(back.fixed_points[k].states, fp.states)
        np.testing.assert_array_equal(back.fixed_points[k].eigenvalues, fp.eigenvalues)
        assert back.fixed_points[k].stability.tolist() == fp.stability.tolist()
    np.testing.assert_array_equal(back.slow["final_ramping"], analysis.slow["final_ramping"])
    assert back.lead == analysis.lead and back.settings == analysis.settings
    with h5py.File(path) as f:
        assert f.attrs["schema"] == "bioplastic.analysis"


def test_default_path_is_a_sibling(run_file):
    assert analysis_path(run_file) == run_file.with_name("run.analysis.h5")


def test_figures_are_pngs(analysis, tmp_path):
    paths = make_figures(analysis, tmp_path)
    assert [p.name for p in paths] == ["loss_gr.png", "slow_dynamics.png", "phase_portraits.png", "speed_maps.png"]
    for p in paths:
        assert p.read_bytes()[:8] == PNG and p.stat().st_size > 5000


def test_cli_writes_analysis_and_figures(run_file, tmp_path, capsys):
    out = tmp_path / "figs"
    target = tmp_path / "a.analysis.h5"
    rc = main(["analyze", str(run_file), "--out", str(out), "--n-init", "16", "--analysis-file", str(target)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "GR events at iterations" in text and "analysis file" in text
    assert read_analysis(target).settings["n_init"] == 16
    assert sorted(p.name for p in out.iterdir()) == ["run_loss_gr.png", "run_phase_portraits.png",
                                                     "run_slow_dynamics.png", "run_speed_maps.png"]


# -- bad input ----------------------------------------------------------------
def _config():
    task = get_task("flipflop")
    net = make_network("lfrnn", 3, 3, n_units=4)
    return net, {"model": net.settings(), "task": {"name": task.name, **task.settings()}}


def test_run_file_without_checkpoints(tmp_path, capsys):
    net, cfg = _config()
    params = net.init_params(np.random.default_rng(0))
    path = write_run(tmp_path / "nock.h5", config=cfg, seed=0, status="converged", params=params,
                     history={"iteration": np.arange(30), "task_loss": np.ones(30)}, checkpoints=None)
    with pytest.raises(SchemaError, match="has no checkpoints: train with checkpoint_every"):
        analyze_run(path)
    assert main(["analyze", str(path), "--no-figures"]) == 2
    err = capsys.readouterr().err
    assert "has no checkpoints" in err and "Traceback" not in err


def test_one_checkpoint_is_not_enough(tmp_path):
    net, cfg = _config()
    params = net.init_params(np.random.default_rng(0))
    path = write_run(tmp_path / "one.h5", config=cfg, seed=0, status="converged", params=params,
                     history={"iteration": np.arange(30), "task_loss": np.ones(30)}, checkpoints={0: params})
    with pytest.raises(SchemaError, match="1 usable checkpoint"):
        analyze_run(path)


def test_nan_weights(tmp_path):
    net, cfg = _config()
    good = net.init_params(np.random.default_rng(0))
    bad = good.copy()
    bad["W"][0, 0] = np.nan
    hist = {"iteration": np.arange(30), "task_loss": np.linspace(1, 0.1, 30)}
    path = write_run(tmp_path / "nan.h5", config=cfg, seed=0, status="diverged", params=bad, history=hist,
                     checkpoints={0: good, 10: good, 20: bad})
    with pytest.raises(ShapeError, match=r"checkpoint 20 of .*params\['W'\] contains 1 non-finite"):
        analyze_run(path, n_init=8)
    a = analyze_run(path, n_init=8, skip_nonfinite=True, finder={"settle_steps": 0, "max_iter": 50})
    assert sorted(a.fixed_points) == [0, 10] and a.settings["skipped_nonfinite"] == [20]


def test_unknown_or_empty_epoch(run_file):
    with pytest.raises(ConfigError, match="has no epoch 'hold'; epochs: \\['delay', 'response'\\]"):
        analyze_run(run_file, epoch="hold", n_init=4)
    with pytest.raises(ConfigError, match="inputs must be 'zero', 'epoch_mean'"):
        analyze_run(run_file, inputs="mean", n_init=4)


def test_empty_epoch_mask_in_a_run(tmp_path):
    # evidence accumulation without a delay: its 'delay' epoch selects no step at all
    task = get_task("evidence_accumulation", delay_steps=0, n_steps=30)
    net = make_network("plrnn", 2, 1, n_units=4)
    path = tmp_path / "nodelay.h5"
    train(net, task, iterations=30, seed=0, checkpoint_every=10, run_file=path, early_stop=False,
          progress=False)
    with pytest.raises(ConfigError, match="epoch mask selects no time steps"):
        analyze_run(path, n_init=4, finder={"settle_steps": 0, "max_iter": 20})
    with pytest.raises(ConfigError, match="epoch mask 'delay' selects no time steps"):
        analyze_run(path, n_init=4, inputs="epoch_mean")
    assert analyze_run(path, n_init=4, epoch="stimulus", finder={"settle_steps": 0}).settings["epoch"] == "stimulus"
