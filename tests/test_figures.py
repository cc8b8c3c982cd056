"""Figures from real small inputs: `bioplastic plot`, 3-PC phase portraits with silent probes,
slow dynamics in `analyze`, the chance band of GR lead times."""
import numpy as np
import pytest

from bioplastic import get_task, make_network, read_run, train
from bioplastic.analysis import analyze_run, make_figures
from bioplastic.cli import main
from bioplastic.errors import ConfigError
from bioplastic.plotting import (curve_panels, lead_times, phase_portraits, principal_axes, slow_dynamics,
                                 training_curves)
from bioplastic.training.local import train_local

PNG = b"\x89PNG\r\n\x1a\n"


def _is_png(path, min_bytes=5000):
    import matplotlib.image as mpimg

    assert path.read_bytes()[:8] == PNG and path.stat().st_size > min_bytes
    img = mpimg.imread(path)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    return img


@pytest.fixture(scope="module")
def bptt_run(tmp_path_factory):
    """20 BPTT iterations with TCR on the 3-bit flip-flop, checkpoints every 10."""
    path = tmp_path_factory.mktemp("bptt") / "ff.h5"
    task = get_task("flipflop")
    net = make_network("lfrnn", task.n_inputs, task.n_outputs, n_units=16)
    train(net, task, iterations=20, lambda_tcr=0.1, seed=1, checkpoint_every=10, run_file=path, early_stop=False,
          progress=False)
    return path


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    """20 e-prop iterations, BPTT alignment every 5."""
    path = tmp_path_factory.mktemp("local") / "eprop.h5"
    task = get_task("flipflop")
    net = make_network("lfrnn", task.n_inputs, task.n_outputs, n_units=12)
    train_local(net, task, "eprop", iterations=20, seed=2, run_file=path, early_stop=False, progress=False,
                diagnostics_every=5)
    return path


@pytest.fixture(scope="module")
def analysis(bptt_run):
    return analyze_run(bptt_run, n_init=16, batch_size=16, finder={"settle_steps": 100}, speed_grid=8)


# -- bioplastic plot ---------------------------------------------------------------
def test_curve_panels_follow_the_history(bptt_run, local_run):
    assert curve_panels(read_run(bptt_run).history) == ["loss", "accuracy", "tcr"]
    assert curve_panels(read_run(local_run).history) == ["loss", "accuracy", "tcr", "alignment"]
    assert curve_panels({"iteration": [0, 1], "accuracy": [np.nan, np.nan]}) == []
    with pytest.raises(ConfigError, match="no 'iteration' column"):
        curve_panels({"loss": [1.0]})


def test_training_curves_png(bptt_run, tmp_path):
    _is_png(training_curves(read_run(bptt_run).history, tmp_path / "c.png", title="t", criterion=0.95))
    with pytest.raises(ConfigError, match="no curve to draw"):
        training_curves({"iteration": np.arange(3)}, tmp_path / "none.png")


@pytest.mark.parametrize("which", ["bptt_run", "local_run"])
def test_cli_plot_writes_curves_next_to_the_run(which, request, capsys):
    run_file = request.getfixturevalue(which)
    assert main(["plot", str(run_file)]) == 0
    png = run_file.with_name(f"{run_file.stem}_curves.png")
    assert f"figure: {png}" in capsys.readouterr().out
    wide = _is_png(png)
    assert wide.shape[1] > wide.shape[0]  # one row of panels


def test_cli_plot_out_folder(bptt_run, tmp_path):
    assert main(["plot", str(bptt_run), "--out", str(tmp_path / "figs")]) == 0
    _is_png(tmp_path / "figs" / "ff_curves.png")


def test_cli_plot_rejects_non_run_files(tmp_path, capsys):
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    assert main(["plot", str(text)]) == 2
    assert "bioplastic plot: error:" in capsys.readouterr().err
    assert main(["plot", str(tmp_path / "missing.h5")]) == 2
    assert "does not exist" in capsys.readouterr().err
    import h5py

    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    assert main(["plot", str(tmp_path / "other.h5")]) == 2
    assert "bioplastic plot: error:" in capsys.readouterr().err
    assert not (tmp_path / "other_curves.png").exists()


# -- phase portraits in 3 PCs ------------------------------------------------------
def test_principal_axes_shapes():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 5, 7)) * np.arange(1, 8)
    mean, comps, ev = principal_axes(X, 3)
    assert mean.shape == (7,) and comps.shape == (3, 7) and ev.shape == (3,)
    np.testing.assert_allclose(comps @ comps.T, np.eye(3), atol=1e-12)
    assert np.all(np.diff(ev) <= 0) and 0 < ev.sum() <= 1
    _, comps2, ev2 = principal_axes(rng.standard_normal((10, 2)), 3)  # fewer dimensions than components
    assert comps2.shape == (3, 2) and not comps2[2].any() and ev2[2] == 0


def test_portraits_in_three_pcs_with_silent_probes(analysis):
    from bioplastic.analysis.run_analysis import _portraits_3pc

    panels, labels = _portraits_3pc(analysis, n_probes=6, probe_steps=50)
    assert len(labels) == 3 and all(lab.startswith(f"PC{i + 1} (") for i, lab in enumerate(labels))
    assert [p["title"] for p in panels] == [f"iteration {k}" for k in sorted(analysis.portraits)]
    for p in panels:
        assert p["trajectories"].shape[2] == 3 and p["points"].shape[1] == 3
        assert p["probes"].shape == (51, 6, 3)
        assert len(p["points"]) == len(p["stability"]) == len(p["is_fixed"])
    # the first two PCs are the analysis's own frame (up to sign)
    k = max(analysis.portraits)
    two = analysis.portraits[k][:, :4]
    for i in range(2):
        a, b = panels[-1]["trajectories"][..., i].ravel(), two[..., i].ravel()
        assert abs(abs(np.corrcoef(a, b)[0, 1]) - 1) < 1e-6


def test_phase_portraits_png_2d_and_3d(analysis, tmp_path):
    from bioplastic.analysis.run_analysis import _portraits_3pc

    panels, labels = _portraits_3pc(analysis, n_probes=6, probe_steps=50)
    tall = _is_png(phase_portraits(panels, tmp_path / "p3.png", axis_labels=labels))
    flat = [{"title": p["title"], "trajectories": p["trajectories"][..., :2], "points": p["points"][:, :2],
             "stability": p["stability"], "is_fixed": p["is_fixed"]} for p in panels]
    wide = _is_png(phase_portraits(flat, tmp_path / "p2.png"))
    # 3 checkpoints x 3 pairwise panels against 1 row of 3
    assert tall.shape[0] > 2 * wide.shape[0]


def test_make_figures_draws_3pc_portraits_and_slow_dynamics(analysis, tmp_path):
    paths = make_figures(analysis, tmp_path)
    assert [p.name for p in paths] == ["loss_gr.png", "slow_dynamics.png", "phase_portraits.png", "speed_maps.png"]
    for p in paths:
        _is_png(p)
    portrait = _is_png(tmp_path / "phase_portraits.png")
    assert portrait.shape[0] > 0.8 * portrait.shape[1]  # a row of 3 pairwise panels per checkpoint (3 of them)


def test_make_figures_falls_back_to_two_pcs_without_the_run_file(analysis, tmp_path):
    import dataclasses

    moved = dataclasses.replace(analysis, run_file=str(tmp_path / "gone.h5"))
    paths = make_figures(moved, tmp_path)
    img = _is_png(paths[2])
    assert img.shape[1] > 2 * img.shape[0]  # one row: the stored 2-PC portraits


# -- slow dynamics, GR lead times ---------------------------------------------------
def test_slow_dynamics_png(analysis, tmp_path):
    s = analysis.slow
    panels = {f"{lab} (iteration {s[f'{lab}_iteration']})": {
        "timescales": s[f"{lab}_timescales"], "ramping_fraction": s[f"{lab}_ramping_fraction"],
        "example_ramping": s[f"{lab}_ramping_traces"] if np.size(s[f"{lab}_ramping_traces"]) else None}
        for lab in ("initial", "final")}
    _is_png(slow_dynamics(panels, tmp_path / "slow.png", title="t"))


def test_lead_times_chance_band(tmp_path):
    groups = {"PLRNN, flipflop": {"leads": [10, 20, 35], "n_not_preceded": 1, "n_no_drop": 0},
              "LFRNN, flipflop": {"leads": [4], "n_not_preceded": 2, "n_no_drop": 1}}
    null = {"PLRNN, flipflop": {"q05": 2.0, "q50": 15.0, "q95": 60.0}, "LFRNN, flipflop": None}
    with_band = _is_png(lead_times(groups, tmp_path / "band.png", null_leads=null), min_bytes=2000)
    plain = _is_png(lead_times(groups, tmp_path / "plain.png"), min_bytes=2000)
    assert with_band.shape[1] > plain.shape[1] or not np.array_equal(with_band, plain)  # band and its legend
