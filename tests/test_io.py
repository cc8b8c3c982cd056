"""Run files (HDF5), atomic writes, model spec files."""
import h5py
import numpy as np
import pytest

import bioplastic as bp
from bioplastic.errors import ConfigError, SchemaError
from bioplastic.io import read_run, write_text
from bioplastic.io.runfile import SCHEMA_VERSION
from bioplastic.io.specs import load_spec, network_from_spec


@pytest.fixture
def trained(tmp_path):
    task = bp.get_task("flipflop")
    net = bp.make_network("lfrnn", 3, 3, n_units=12, dale=0.8, sparsity=0.2)
    path = tmp_path / "run.h5"
    r = bp.train(net, task, iterations=6, seed=7, checkpoint_every=3, run_file=path, lambda_tcr=0.2)
    return r, path


def test_run_file_round_trip(trained):
    r, path = trained
    data = read_run(path)
    assert data.seed == 7 and data.status == r.status
    assert data.attrs["schema_version"] == SCHEMA_VERSION
    assert data.attrs["package_version"] == bp.__version__
    assert data.config["model"]["kind"] == "lfrnn" and data.config["model"]["dale"] == 0.8
    assert data.config["training"]["lambda_tcr"] == {"kind": "constant", "value": 0.2}
    for k, v in r.params.items():
        np.testing.assert_array_equal(data.params[k], v)
    for k, v in r.history.items():
        np.testing.assert_array_equal(data.history[k], v)
    assert sorted(data.checkpoints) == sorted(r.checkpoints)
    np.testing.assert_array_equal(data.constraints["W"].sign, r.params.constraints["W"].sign)
    np.testing.assert_array_equal(data.constraints["W"].connectivity, r.params.constraints["W"].connectivity)


def test_reloaded_network_reproduces_trajectory(trained):
    r, path = trained
    data = read_run(path)
    model = dict(data.config["model"])
    net = bp.make_network(model.pop("kind"), **{k: v for k, v in model.items()})
    task = bp.get_task(data.config["task"]["name"])
    batch = task.sample(4, np.random.default_rng(0))
    a = r.network.forward(r.params, batch.inputs).states
    b = net.forward(data.params, batch.inputs).states
    np.testing.assert_array_equal(a, b)


def test_recordings_are_compressed_parameters_are_plain(tmp_path):
    """Large recordings are chunked and gzip-compressed; parameters and checkpoints are
    stored plain (they do not compress, and a running file overwrites them in place)."""
    from bioplastic.recording import Recording

    task = bp.get_task("flipflop")
    net = bp.make_network("lfrnn", 3, 3, n_units=64)
    path = tmp_path / "big.h5"
    bp.train(net, task, iterations=2, seed=0, run_file=path, checkpoint_every=1, early_stop=False,
             record=Recording(what=("rates",), n_trials=8))
    with h5py.File(path) as f:
        rates = f["recordings/at/00000002/rates"]
        assert rates.compression == "gzip" and rates.chunks is not None
        for ds in (f["params/W"], f["checkpoints/00000001/W"]):
            assert ds.compression is None and ds.chunks is None


def test_foreign_truncated_and_newer_files_are_refused(tmp_path, trained):
    _, good = trained
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    with pytest.raises(SchemaError, match="not a bioplastic run file"):
        read_run(foreign)
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[:1000])
    with pytest.raises(SchemaError, match="not a readable HDF5"):
        read_run(truncated)
    with pytest.raises(SchemaError, match="does not exist"):
        read_run(tmp_path / "missing.h5")
    newer = tmp_path / "newer.h5"
    newer.write_bytes(good.read_bytes())
    with h5py.File(newer, "a") as f:
        f.attrs["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(SchemaError, match="schema version"):
        read_run(newer)
    no_params = tmp_path / "noparams.h5"
    no_params.write_bytes(good.read_bytes())
    with h5py.File(no_params, "a") as f:
        del f["params"]
    with pytest.raises(SchemaError, match="/params"):
        read_run(no_params)


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "a.txt"
    write_text(path, "old")
    from bioplastic.io.atomic import atomic_path

    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]  # no temporary left behind
    with pytest.raises(ConfigError, match="does not exist"):
        write_text(tmp_path / "nosuchdir" / "x.txt", "x")


@pytest.mark.parametrize("name", ["lfrnn", "lfrnn_chaotic", "plrnn", "rank1", "lstm"])
def test_shipped_specs_load_and_build(name):
    spec = load_spec(name)
    net = network_from_spec(spec, bp.get_task("flipflop"))
    assert net.kind == spec["model"]["kind"]
    if name == "lfrnn_chaotic":
        assert net.g == 3.0
    elif name == "lfrnn":
        assert net.g == 1.5


def test_spec_errors(tmp_path):
    typo = tmp_path / "typo.toml"
    typo.write_text('[model]\nkind = "lfrnn"\nn_units = 8\ntua = 10.0\n')
    with pytest.raises(ConfigError, match="'tua' \\(did you mean 'tau'\\?\\)"):
        load_spec(typo)
    bad_train = tmp_path / "bt.toml"
    bad_train.write_text('[model]\nkind = "lfrnn"\nn_units = 8\n[training]\nlearning_rate = 0.1\n')
    with pytest.raises(ConfigError, match="learning_rate"):
        load_spec(bad_train)
    bad_section = tmp_path / "bs.toml"
    bad_section.write_text('[modle]\nkind = "lfrnn"\n')
    with pytest.raises(ConfigError, match="modle"):
        load_spec(bad_section)
    bad_kind = tmp_path / "bk.toml"
    bad_kind.write_text('[model]\nkind = "gru"\n')
    with pytest.raises(bp.UnknownNameError, match="gru"):
        load_spec(bad_kind)
    not_toml = tmp_path / "nt.toml"
    not_toml.write_text("[model\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_spec(not_toml)
    with pytest.raises(bp.UnknownNameError, match="lfrnn"):
        load_spec("lfrn")
    neg = tmp_path / "neg.toml"
    neg.write_text('[model]\nkind = "lfrnn"\nn_units = 8\ntau = -1.0\n')
    with pytest.raises(ConfigError, match="tau"):
        network_from_spec(load_spec(neg), bp.get_task("flipflop"))


def _interrupt_after(monkeypatch, n_calls):
    """Make the n-th loss evaluation raise KeyboardInterrupt, as a Ctrl-C would."""
    import bioplastic.training.loop as loop

    real, calls = loop.loss_and_grads, {"n": 0}

    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == n_calls:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(loop, "loss_and_grads", flaky)


def test_resume_equals_uninterrupted(tmp_path, monkeypatch):
    task = bp.get_task("flipflop")
    net = bp.make_network("lfrnn", 3, 3, n_units=16)
    kw = dict(iterations=40, seed=3, checkpoint_every=10, early_stop=False,
              lambda_tcr={"kind": "step_off", "value": 1.0, "threshold": 0.3})
    full = bp.train(net, task, run_file=tmp_path / "full.h5", **kw)
    _interrupt_after(monkeypatch, 26)
    with pytest.raises(KeyboardInterrupt):
        bp.train(net, task, run_file=tmp_path / "part.h5", **kw)
    monkeypatch.undo()
    part = read_run(tmp_path / "part.h5")
    assert part.status == "running" and part.resume["iteration"] == 20
    resumed = bp.training.resume(tmp_path / "part.h5")
    for k in full.params:
        np.testing.assert_array_equal(resumed.params[k], full.params[k])
    np.testing.assert_array_equal(resumed.history["loss"], full.history["loss"])
    assert sorted(resumed.checkpoints) == sorted(full.checkpoints)
    assert read_run(tmp_path / "part.h5").status == "max_iterations"


@pytest.mark.parametrize("continue_after", [0, 15])
def test_resume_keeps_the_sustained_criterion_and_relative_tcr(tmp_path, monkeypatch, continue_after):
    task = bp.get_task("flipflop", criterion=0.55)
    net = bp.make_network("lfrnn", 3, 3, n_units=16)
    kw = dict(iterations=200, seed=1, lr=3e-3, checkpoint_every=10, continue_after=continue_after, tcr_relative=True,
              criterion={"consecutive": 3, "eval_every": 5},
              lambda_tcr={"kind": "search_phase", "value": 0.05, "warmup": 5, "window": 10})
    full = bp.train(net, task, run_file=tmp_path / "full.h5", **kw)
    assert full.converged_at is not None
    stop = full.extra["confirmed_at"] + continue_after
    # interrupt between the start of the sustained run and the end of training
    _interrupt_after(monkeypatch, full.converged_at + 3)
    with pytest.raises(KeyboardInterrupt):
        bp.train(net, task, run_file=tmp_path / "part.h5", **kw)
    monkeypatch.undo()
    resumed = bp.training.resume(tmp_path / "part.h5")
    assert (resumed.converged_at, resumed.extra["confirmed_at"]) == (full.converged_at, full.extra["confirmed_at"])
    assert len(resumed.history["loss"]) == len(full.history["loss"]) == stop + 1
    np.testing.assert_array_equal(resumed.history["eval_accuracy"], full.history["eval_accuracy"])
    np.testing.assert_array_equal(resumed.history["lambda_tcr"], full.history["lambda_tcr"])
    for k in full.params:
        np.testing.assert_array_equal(resumed.params[k], full.params[k])
    assert resumed.outcome() == full.outcome()


def test_resume_refuses_finished_run(trained):
    _, path = trained
    with pytest.raises(SchemaError, match="no resume state"):
        bp.training.resume(path)


def test_recordings_round_trip_and_reproduce(tmp_path):
    """Recorded activity is stored, reloads, and the reloaded network reproduces it bit for bit."""
    from bioplastic.recording import Recording

    task = bp.get_task("delayed_addition")
    net = bp.make_network("lfrnn", 2, 1, n_units=10, noise_std=0.1)
    path = tmp_path / "rec.h5"
    r = bp.train(net, task, iterations=8, seed=2, checkpoint_every=4, run_file=path, early_stop=False,
                 record=Recording(what=("states", "rates", "outputs", "inputs"), n_trials=5, noise=True))
    data = read_run(path)
    assert sorted(data.recordings["at"]) == sorted(r.recordings["at"]) == [0, 4, 8]
    np.testing.assert_array_equal(data.recordings["at"][8]["rates"], r.recordings["at"][8]["rates"])
    batch = data.recordings["trials"]
    assert batch.inputs.shape[1] == 5 and set(batch.trial_table) >= {"trial", "value_0", "target"}
    assert data.recordings["at"][8]["rates"].shape == (task.settings()["n_steps"] + 1, 5, 10)
    np.testing.assert_array_equal(data.recordings["at"][4]["inputs"], batch.inputs)
    # the same trials at every checkpoint, different activity as the weights change
    assert not np.array_equal(data.recordings["at"][0]["rates"], data.recordings["at"][8]["rates"])
    # reproduce checkpoint 4's recording from the stored parameters and the run's record stream
    from bioplastic.seeding import make_streams

    rs = make_streams(2)["record"]
    task.sample(5, rs)
    noise = net.draw_noise(rs, batch.T, 5)
    traj = net.forward(data.checkpoints[4], batch.inputs, noise=noise)
    np.testing.assert_array_equal(traj.states, data.recordings["at"][4]["states"])


def test_recording_errors():
    from bioplastic.recording import Recording

    with pytest.raises(ConfigError, match="n_trials"):
        Recording(n_trials=0)
    with pytest.raises(ConfigError, match="'at' must be|Recording.at"):
        Recording(at="sometimes")
    task = bp.get_task("flipflop")
    net = bp.make_network("lfrnn", 3, 3, n_units=6)
    with pytest.raises(ConfigError, match="cannot record \\['spikes'\\]"):
        bp.train(net, task, iterations=1, seed=0, record={"what": ["spikes"]})
