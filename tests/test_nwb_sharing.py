"""NWB for sharing and for data: DANDI-clean export, read_nwb, comparison by condition with a noise ceiling."""
import datetime
import json
import os
import stat

import h5py
import numpy as np
import pytest

import bioplastic as bp
from bioplastic.compare import compare_conditions, condition_average, condition_labels, split_half_ceiling
from bioplastic.errors import ConfigError, SchemaError, ShapeError

pytestmark = pytest.mark.optional
pynwb = pytest.importorskip("pynwb")
nwbinspector = pytest.importorskip("nwbinspector")

from bioplastic.export.nwb import (SIMULATION_SPECIES, export_nwb, nwb_metadata_from_spec,  # noqa: E402
                                   series_name, trial_columns)
from bioplastic.io.nwb_read import read_activity, read_nwb  # noqa: E402

META = {"experimenter": ["Doe, Jane"], "institution": "Example University", "lab": "Plasticity Lab",
        "keywords": ["TCR", "evidence accumulation"]}


def _train(path, task_name, seed=1, record=None):
    task = bp.get_task(task_name)
    net = bp.make_network("lfrnn", task.n_inputs, task.n_outputs, n_units=8)
    bp.train(net, task, iterations=4, seed=seed, checkpoint_every=2, run_file=path, progress=False,
             record={} if record is None else record)
    return path


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A default recording (16 trials; states, rates, outputs at every checkpoint) per task."""
    folder = tmp_path_factory.mktemp("sharing")
    return {"evidence": _train(folder / "ev.h5", "evidence_accumulation"),
            "flipflop": _train(folder / "ff.h5", "flipflop"),
            "addition": _train(folder / "add.h5", "delayed_addition")}


@pytest.fixture(scope="module")
def exported(runs, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sharing_nwb")
    return {name: export_nwb(path, folder / f"{name}.nwb") for name, path in runs.items()}


def _inspect(path):
    return list(nwbinspector.inspect_nwbfile(nwbfile_path=str(path), config=nwbinspector.load_config("dandi")))


# -- DANDI readiness ------------------------------------------------------------------
@pytest.mark.parametrize("name", ["evidence", "flipflop", "addition"])
def test_dandi_config_finds_nothing_critical_in_a_default_export(exported, name):
    found = _inspect(exported[name])
    critical = [m for m in found if m.importance in (nwbinspector.Importance.CRITICAL, nwbinspector.Importance.ERROR,
                                                      nwbinspector.Importance.PYNWB_VALIDATION)]
    assert critical == [], [f"{m.importance.name} {m.check_function_name}: {m.message}" for m in critical]
    # without options only the two people-facts bioplastic cannot know are suggested
    assert {m.check_function_name for m in found} <= {"check_experimenter_exists", "check_institution"}


def test_with_metadata_the_dandi_config_finds_nothing_at_all(runs, tmp_path):
    out = export_nwb(runs["evidence"], tmp_path / "full.nwb", **META)
    assert [f"{m.importance.name}: {m.message}" for m in _inspect(out)] == []


def test_the_dandi_check_does_fire_on_a_subject_without_species(tmp_path):
    # the check the export passes is a real one: a simulated subject without species fails it
    path = tmp_path / "bare.nwb"
    nwb = pynwb.NWBFile(session_description="x", identifier="x", session_start_time=datetime.datetime(
        2024, 1, 1, tzinfo=datetime.timezone.utc), subject=pynwb.file.Subject(subject_id="net", sex="O", age="P0D"))
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    critical = [m.check_function_name for m in _inspect(path) if m.importance == nwbinspector.Importance.CRITICAL]
    assert "check_subject_species_exists" in critical


def test_metadata_subject_and_provenance(runs, tmp_path):
    out = export_nwb(runs["evidence"], tmp_path / "meta.nwb", session_description="my session", **META)
    run = bp.read_run(runs["evidence"])
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        assert list(nwb.experimenter) == ["Doe, Jane"] and nwb.institution == "Example University"
        assert nwb.lab == "Plasticity Lab" and list(nwb.keywords) == ["TCR", "evidence accumulation"]
        assert nwb.session_description == "my session" and "no animal" in nwb.experiment_description
        assert nwb.subject.species == SIMULATION_SPECIES and nwb.subject.sex == "O"
        assert "Not an animal" in nwb.subject.description
        prov = json.loads(nwb.data_collection)
        generated = [list(map(str, row)) for row in nwb.was_generated_by[:]]
    assert prov["schema"] == "bioplastic.nwb_provenance" and prov["config"] == run.config
    assert prov["run"]["seed"] == run.seed and prov["run"]["package_version"] == run.attrs["package_version"]
    assert prov["exporter"]["version"] == bp.__version__ and "commit" in prov["exporter"]
    assert ["bioplastic", bp.__version__] in generated
    assert read_nwb(out).provenance["config"] == run.config


def test_metadata_from_an_nwb_spec_table():
    spec = {"experimenter": "Doe, Jane", "institution": "U", "lab": "L", "keywords": "a, b",
            "session_description": "s", "experiment_description": "e", "checkpoints": "0,4",
            "time_unit_ms": 1, "species": "Macaca mulatta"}
    got = nwb_metadata_from_spec(spec)
    assert got["experimenter"] == ["Doe, Jane"] and got["keywords"] == ["a", "b"]
    assert got["checkpoints"] == (0, 4) and got["time_unit"] == pytest.approx(1e-3)
    assert nwb_metadata_from_spec(None) == {}
    with pytest.raises(ConfigError, match="unknown \\[nwb\\] setting.*'author'"):
        nwb_metadata_from_spec({"author": "x"})
    with pytest.raises(ConfigError, match="species must be a Latin binomial"):
        nwb_metadata_from_spec({"species": "mouse"})
    with pytest.raises(ConfigError, match="checkpoints"):
        nwb_metadata_from_spec({"checkpoints": "first"})
    with pytest.raises(ConfigError, match="keywords"):
        nwb_metadata_from_spec({"keywords": [1, 2]})


# -- layout ---------------------------------------------------------------------------
def test_all_checkpoints_in_one_file_or_the_chosen_ones(runs, exported, tmp_path):
    run = bp.read_run(runs["evidence"])
    ks = sorted(run.recordings["at"])
    assert ks == [0, 2, 4]
    with pynwb.NWBHDF5IO(str(exported["evidence"]), "r") as io:
        names = set(io.read().acquisition)
    assert names == {series_name(w, k) for w in ("rates", "states", "outputs") for k in ks}
    for k in ks:
        rec = read_nwb(exported["evidence"], "rates", checkpoint=k)
        np.testing.assert_array_equal(rec.activity, run.recordings["at"][k]["rates"][1:])
        assert rec.checkpoint == k and rec.checkpoints == ks
    last = export_nwb(runs["evidence"], tmp_path / "last.nwb", checkpoints="last")
    assert read_nwb(last).checkpoints == [4]
    chosen = export_nwb(runs["evidence"], tmp_path / "chosen.nwb", checkpoints="0,4")
    assert read_nwb(chosen).checkpoints == [0, 4]
    with pytest.raises(SchemaError, match=r"no recording at iteration 3; recorded: \[0, 2, 4\]"):
        export_nwb(runs["evidence"], tmp_path / "bad.nwb", checkpoints=[3])
    with pytest.raises(SchemaError, match="no 'rates' at iteration 2; it has iterations \\[0, 4\\]"):
        read_nwb(chosen, checkpoint=2)


def test_round_trip_activity_and_trial_conditions(runs, exported):
    run = bp.read_run(runs["evidence"])
    batch = run.recordings["trials"]
    T, B, dt = batch.T, batch.batch_size, batch.dt * 1e-2
    rec = read_nwb(exported["evidence"])
    np.testing.assert_array_equal(rec.activity, run.recordings["at"][4]["rates"][1:])  # (T, B, N), time first
    np.testing.assert_allclose(rec.times, np.arange(1, T + 1) * dt)
    table = batch.trial_table
    t = rec.trials
    np.testing.assert_array_equal(t["id"], table["trial"])
    np.testing.assert_allclose(t["start_time"], np.arange(B) * T * dt)
    np.testing.assert_allclose(t["stop_time"], (np.arange(B) + 1) * T * dt)
    np.testing.assert_array_equal(t["coherence"], table["coherence"])
    np.testing.assert_array_equal(t["choice"], table["choice"])
    np.testing.assert_allclose(t["stim_start_time"], t["start_time"] + table["stim_start"] * dt)
    np.testing.assert_allclose(t["delay_stop_time"], t["start_time"] + table["delay_stop"] * dt)
    np.testing.assert_allclose(t["delay_duration"], (table["delay_stop"] - table["stim_stop"]) * dt)
    assert list(t["condition"]) == [f"coherence={c:+.6g}" for c in table["coherence"]]
    # the run file read directly gives the same activity and table
    direct = read_activity(runs["evidence"])
    np.testing.assert_array_equal(direct.activity, rec.activity)
    assert sorted(direct.trials) == sorted(t)
    for col in t:
        np.testing.assert_array_equal(direct.trials[col], t[col])
        assert direct.trials[col].dtype == t[col].dtype, col


def test_integer_columns_are_stored_as_integers(exported):
    with h5py.File(exported["evidence"], "r") as f:
        trials = f["intervals/trials"]
        assert trials["choice"].dtype.kind == "i" and trials["coherence"].dtype.kind == "f"
        assert trials["stim_start_time"].dtype.kind == "f"
    with h5py.File(exported["flipflop"], "r") as f:
        trials = f["intervals/trials"]
        assert all(trials[f"n_pulses_{c}"].dtype.kind == "i" for c in range(3))
        assert trials["pulse_signs_0"].dtype.kind == "i"
    assert read_nwb(exported["flipflop"]).trials["n_pulses_0"].dtype == np.int64


def test_stimulus_holds_inputs_and_targets(runs, exported):
    batch = bp.read_run(runs["evidence"]).recordings["trials"]
    with pynwb.NWBHDF5IO(str(exported["evidence"]), "r") as io:
        nwb = io.read()
        assert set(nwb.stimulus) == {"inputs", "targets"}
        assert not any(n.startswith(("inputs", "targets")) for n in nwb.acquisition)
    inputs = read_nwb(exported["evidence"], "inputs")
    np.testing.assert_array_equal(inputs.activity, batch.inputs)
    np.testing.assert_allclose(inputs.times[:2], [0.0, 0.01])  # u[s] is stamped at the start of step s
    np.testing.assert_array_equal(read_nwb(exported["evidence"], "targets").activity, batch.targets)


def test_flipflop_pulse_signs_and_times(runs, exported):
    batch = bp.read_run(runs["flipflop"]).recordings["trials"]
    t = read_nwb(exported["flipflop"]).trials
    dt = batch.dt * 1e-2
    for b in range(batch.batch_size):
        for c in range(3):
            times, signs = t[f"pulse_times_{c}"][b], t[f"pulse_signs_{c}"][b]
            assert len(times) == batch.trial_table[f"n_pulses_{c}"][b] == len(signs)
            steps = np.rint((times - t["start_time"][b]) / dt).astype(int)
            assert steps[0] == batch.trial_table[f"first_pulse_step_{c}"][b]
            np.testing.assert_array_equal(batch.inputs[steps, b, c], signs)  # the pulse is on at its onset
            assert set(np.unique(signs)) <= {-1, 1}
    assert t["condition"][0].startswith("bit0:")


def test_delayed_addition_conditions(runs, exported):
    batch = bp.read_run(runs["addition"]).recordings["trials"]
    t = read_nwb(exported["addition"]).trials
    np.testing.assert_array_equal(t["value_0"], batch.trial_table["value_0"])
    np.testing.assert_allclose(t["mark_time_1"] - t["start_time"], batch.trial_table["mark_step_1"] * 0.01)
    np.testing.assert_allclose(t["delay_duration"],
                               (batch.trial_table["response_start"] - batch.trial_table["mark_step_1"]) * 0.01)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600)])
def test_nwb_files_follow_the_umask(runs, tmp_path, mask, expected):
    old = os.umask(mask)
    try:
        out = export_nwb(runs["evidence"], tmp_path / "m.nwb", checkpoints="last")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(out).st_mode) == expected


# -- reading DANDI-style sessions ------------------------------------------------------
def _session(path, trials, series=None, units=None):
    nwb = pynwb.NWBFile(session_description="hand-built session", identifier="s1",
                        session_start_time=datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc))
    if trials is not None:
        nwb.add_trial_column("condition", "stimulus condition")
        for start, stop, cond in trials:
            nwb.add_trial(start_time=start, stop_time=stop, condition=cond)
    if series is not None:
        module = nwb.create_processing_module("ophys", "processed activity")
        module.add(series)
    for spikes in units or []:
        nwb.add_unit(spike_times=spikes)
    with pynwb.NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def test_read_a_dandi_style_timeseries_session(tmp_path):
    rate = 100.0
    data = np.arange(1000 * 2, dtype=float).reshape(1000, 2)   # sample i, channel c = 2 i + c
    ts = pynwb.TimeSeries(name="dff", data=data, unit="a.u.", rate=rate, starting_time=0.0)
    trials = [(0.5, 0.9, "left"), (2.0, 2.6, "right"), (4.0, 4.5, "left")]   # unequal lengths
    path = _session(tmp_path / "session.nwb", trials, series=ts)
    rec = read_nwb(path, "dff")
    assert rec.source == "timeseries" and rec.activity.shape == (40, 3, 2)  # shortest trial: 0.4 s
    np.testing.assert_array_equal(rec.activity[:, 1, 0], data[200:240, 0])
    np.testing.assert_array_equal(rec.activity[:, 2, 1], data[400:440, 1])
    assert list(rec.trials["condition"]) == ["left", "right", "left"]
    assert rec.bin_seconds == pytest.approx(0.01)
    np.testing.assert_array_equal(read_nwb(path, "processing/ophys/dff").activity, rec.activity)
    windowed = read_nwb(path, "dff", window=(-0.1, 0.2))
    np.testing.assert_array_equal(windowed.activity[:, 0, 0], data[40:70, 0])
    with pytest.raises(SchemaError, match="trial 0's window"):
        read_nwb(path, "dff", window=(-1.0, 0.2))


def test_read_a_units_table_as_binned_rates(tmp_path):
    spikes = [np.array([0.001, 0.002, 0.015, 1.005]), np.array([1.0, 1.011, 1.012, 1.013])]
    path = _session(tmp_path / "units.nwb", [(0.0, 0.03, "a"), (1.0, 1.03, "b")], units=spikes)
    rec = read_nwb(path, "units", bin_width=0.01)
    assert rec.source == "units" and rec.activity.shape == (3, 2, 2)
    np.testing.assert_allclose(rec.activity[:, 0, 0], [200.0, 100.0, 0.0])  # spikes / bin / 10 ms
    np.testing.assert_allclose(rec.activity[:, 1, 0], [100.0, 0.0, 0.0])
    np.testing.assert_allclose(rec.activity[:, 1, 1], [100.0, 300.0, 0.0])
    np.testing.assert_allclose(rec.times, [0.0, 0.01, 0.02])


def test_bad_files_give_schema_errors(runs, exported, tmp_path):
    with pytest.raises(SchemaError, match="not a readable NWB"):
        read_nwb(runs["evidence"])
    with pytest.raises(ConfigError, match="does not exist"):
        read_nwb(tmp_path / "missing.nwb")
    no_trials = _session(tmp_path / "nt.nwb", None, series=pynwb.TimeSeries(name="x", data=np.zeros((10, 1)),
                                                                              unit="a.u.", rate=1.0))
    with pytest.raises(SchemaError, match="has no trials table"):
        read_nwb(no_trials, "x")
    with pytest.raises(SchemaError, match="has no TimeSeries 'spikes'"):
        read_nwb(exported["evidence"], "spikes")
    only_trials = _session(tmp_path / "ot.nwb", [(0.0, 1.0, "a")])
    with pytest.raises(SchemaError, match="has no units table"):
        read_nwb(only_trials, "units")
    with pytest.raises(ConfigError, match="only applies to files written by bioplastic"):
        read_nwb(only_trials, "x", checkpoint=3)


# -- comparison by condition ------------------------------------------------------------
def _by_condition(rng, labels, patterns, noise=0.0, mix=None):
    """(T, trials, units): each trial its condition's pattern (optionally mixed into other units), plus noise."""
    x = np.stack([patterns[c] for c in labels], axis=1)
    if mix is not None:
        x = x @ mix
    return x + noise * rng.standard_normal(x.shape)


def test_condition_matching_finds_the_right_pairs(rng):
    conds = ["a", "b", "c", "d", "e"]
    t = np.linspace(0, 1, 30)[:, None]
    patterns = {c: np.hstack([np.sin((i + 1) * 3 * t), np.cos((i + 2) * 2 * t), t * (i - 2)])
                for i, c in enumerate(conds)}
    model_labels = ["a", "b", "c", "d", "e", "a", "c"]
    data_labels = ["e", "d", "d", "c", "b", "a", "a", "c", "b", "e", "f"]  # other order, repeats, extra "f"
    patterns["f"] = np.ones((30, 3))
    model = _by_condition(rng, model_labels, patterns)
    data = _by_condition(rng, data_labels, patterns, mix=rng.standard_normal((3, 12)))  # 12 "neurons"
    res = compare_conditions(model, {"condition": np.array(model_labels, dtype=object)},
                             data, {"condition": np.array(data_labels, dtype=object)}, n_components=3)
    assert res["conditions"] == conds and res["unmatched"] == {"model_only": 0, "data_only": 1}
    assert res["model_trials"] == [2, 1, 2, 1, 1] and res["data_trials"] == [2, 2, 2, 2, 2]
    assert res["cca_mean"] == pytest.approx(1.0, abs=1e-8)
    # the same data with its labels shuffled pair the wrong conditions and score worse
    shuffled = np.array(data_labels, dtype=object)[[1, 3, 0, 4, 2, 7, 8, 5, 6, 10, 9]]
    wrong = compare_conditions(model, {"condition": np.array(model_labels, dtype=object)},
                               data, {"condition": shuffled}, n_components=3)
    assert wrong["procrustes"] > res["procrustes"] + 0.1


def test_condition_labels_use_times_from_each_trials_start():
    trials = {"start_time": np.array([0.0, 1.0, 2.0]), "cue_time": np.array([0.2, 1.2, 2.5]),
              "pulse_times": np.array([np.array([0.1, 0.3]), np.array([1.1, 1.3]), np.array([2.1])], dtype=object),
              "side": np.array([1, 1, -1])}
    labels = condition_labels(trials, ["cue_time", "side"])
    assert labels[0] == labels[1] != labels[2]
    assert condition_labels(trials, "pulse_times")[0] == condition_labels(trials, "pulse_times")[1] == "[0.1,0.3]"
    with pytest.raises(ConfigError, match="no column.*'choice'"):
        condition_labels(trials, "choice")
    names, means, counts = condition_average(np.arange(12.0).reshape(2, 3, 2), trials, "side")
    assert names == ["-1", "1"] and counts.tolist() == [1, 2]
    np.testing.assert_allclose(means[:, 1], np.arange(12.0).reshape(2, 3, 2)[:, :2].mean(axis=1))


def test_noise_ceiling_near_one_without_noise_and_lower_with_it(rng):
    conds = [f"c{i}" for i in range(6)]
    t = np.linspace(0, 1, 40)[:, None]
    patterns = {c: np.hstack([np.sin((i + 1) * 2 * t + i), np.cos((i + 1) * t), t ** (i % 3 + 1)]) @
                rng.standard_normal((3, 10)) for i, c in enumerate(conds)}
    labels = np.array(conds * 8, dtype=object)
    trials = {"condition": labels}
    clean = split_half_ceiling(_by_condition(rng, labels, patterns), trials, n_splits=10)
    assert clean["cca_mean"] == pytest.approx(1.0, abs=1e-8) and clean["procrustes"] == pytest.approx(0, abs=1e-6)
    noisy = split_half_ceiling(_by_condition(rng, labels, patterns, noise=3.0), trials, n_splits=10)
    assert noisy["cca_mean"] < 0.95 and noisy["procrustes"] > 0.1
    assert noisy["cca_mean"] < noisy["cca_mean_spearman_brown"] < 1
    again = split_half_ceiling(_by_condition(np.random.default_rng(0), labels, patterns, noise=3.0), trials,
                               n_splits=10, seed=4)
    assert again == split_half_ceiling(_by_condition(np.random.default_rng(0), labels, patterns, noise=3.0),
                                       trials, n_splits=10, seed=4)  # seeded
    single = split_half_ceiling(np.zeros((40, 2, 3)), {"condition": np.array(["a", "b"], dtype=object)})
    assert single["cca_mean"] is None and "two or more" in single["reason"]


def test_compare_conditions_errors(rng):
    a = rng.standard_normal((10, 4, 3))
    trials = {"condition": np.array(["a", "b", "a", "b"], dtype=object)}
    with pytest.raises(ShapeError, match="same T"):
        compare_conditions(a, trials, a[:5], trials)
    with pytest.raises(ConfigError, match="share no trial condition"):
        compare_conditions(a, trials, a, {"condition": np.array(["x", "y", "x", "y"], dtype=object)})
    with pytest.raises(ShapeError, match="n_trials = 4"):
        condition_average(a[:, :3], trials)


# -- command line -------------------------------------------------------------------------
def test_cli_export_and_compare(runs, tmp_path, capsys):
    from bioplastic.cli import main

    out = tmp_path / "cli.nwb"
    assert main(["export", "nwb", str(runs["evidence"]), str(out), "--checkpoints", "0,4",
                 "--experimenter", "Doe, Jane", "--institution", "U", "--lab", "L", "--keywords", "a,b",
                 "--session-description", "cli session"]) == 0
    rec = read_nwb(out)
    assert rec.checkpoints == [0, 4]
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        assert list(nwb.keywords) == ["a", "b"] and nwb.session_description == "cli session"
    capsys.readouterr()
    assert main(["compare", str(runs["evidence"]), str(out), "--checkpoint", "2", "--splits", "5"]) == 0
    text = capsys.readouterr().out
    assert "Procrustes distance" in text and "split-half ceiling" in text and "mean CCA" in text
    assert main(["compare", str(runs["evidence"]), str(out), "--by", "choice", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["n_conditions"] == 2 and res["ceiling"]["n_splits"] == 20
    assert main(["compare", str(runs["evidence"]), str(out), "--by", "nope"]) == 2
    assert "no column" in capsys.readouterr().err
    assert main(["export", "nwb", str(runs["evidence"]), str(tmp_path / "s.nwb"), "--species", "mouse"]) == 2
    assert "Latin binomial" in capsys.readouterr().err


def test_trial_columns_convert_steps_to_seconds():
    task = bp.get_task("evidence_accumulation")
    batch = task.sample(3, np.random.default_rng(0))
    cols = trial_columns(batch, {"name": task.name, **task.settings()}, time_unit=1e-3)
    assert "stim_start" not in cols and "trial" not in cols
    np.testing.assert_allclose(cols["stim_start_time"][0], np.arange(3) * 80e-3 + 5e-3)
    assert cols["choice"][0].dtype == np.int64
