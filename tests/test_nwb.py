"""NWB export with pynwb, checked by nwbinspector and read back."""
import numpy as np
import pytest

import bioplastic as bp
from bioplastic.errors import ConfigError, SchemaError

pytestmark = pytest.mark.optional
pynwb = pytest.importorskip("pynwb")


@pytest.fixture(scope="module")
def run_with_recordings(tmp_path_factory):
    path = tmp_path_factory.mktemp("nwb") / "run.h5"
    task = bp.get_task("evidence_accumulation")
    net = bp.make_network("lfrnn", task.n_inputs, task.n_outputs, n_units=12)
    bp.train(net, task, iterations=4, seed=1, checkpoint_every=2, run_file=path, progress=False,
             record={"what": ["rates", "states", "outputs", "inputs"], "n_trials": 6})
    return path


def test_export_round_trip(run_with_recordings, tmp_path):
    from bioplastic.export.nwb import export_nwb

    out = export_nwb(run_with_recordings, tmp_path / "run.nwb")
    data = bp.read_run(run_with_recordings)
    k = max(data.recordings["at"])
    rec = data.recordings["at"][k]
    T, B = data.recordings["trials"].T, 6
    got = bp.read_nwb(out, "rates")
    assert got.activity.shape == (T, B, 12) and got.bin_seconds == pytest.approx(0.01)  # 10 ms per time unit
    np.testing.assert_array_equal(got.activity, rec["rates"][1:])
    trials = got.trials
    assert len(trials["start_time"]) == B
    np.testing.assert_allclose(trials["start_time"], np.arange(B) * T * 1e-2)
    np.testing.assert_allclose(trials["coherence"], data.recordings["trials"].trial_table["coherence"])
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        assert set(nwb.epochs["tags"][:][0]) <= {"fixation", "stimulus", "delay", "response"}
        assert {f"{w}_it{k:06d}" for w in ("rates", "states", "outputs")} <= set(nwb.acquisition)
        assert "inputs" in nwb.stimulus  # recorded or not, inputs go to stimulus


def test_nwbinspector_finds_no_errors(run_with_recordings, tmp_path):
    nwbinspector = pytest.importorskip("nwbinspector")
    from bioplastic.export.nwb import export_nwb

    out = export_nwb(run_with_recordings, tmp_path / "run.nwb")
    bad = [m for m in nwbinspector.inspect_nwbfile(nwbfile_path=str(out))
           if m.importance in (nwbinspector.Importance.CRITICAL, nwbinspector.Importance.ERROR,
                               nwbinspector.Importance.PYNWB_VALIDATION)]
    assert bad == [], [f"{m.importance.name}: {m.message}" for m in bad]


def test_export_errors(run_with_recordings, tmp_path):
    from bioplastic.export.nwb import export_nwb

    out = tmp_path / "x.nwb"
    export_nwb(run_with_recordings, out)
    with pytest.raises(ConfigError, match="exists"):
        export_nwb(run_with_recordings, out)
    with pytest.raises(SchemaError, match="no recording at iteration 3"):
        export_nwb(run_with_recordings, tmp_path / "y.nwb", checkpoints=3, overwrite=True)
    plain = tmp_path / "plain.h5"
    net = bp.make_network("lfrnn", 3, 3, n_units=4)
    bp.train(net, bp.get_task("flipflop"), iterations=1, seed=0, run_file=plain, progress=False)
    with pytest.raises(SchemaError, match="has no recordings"):
        export_nwb(plain, tmp_path / "z.nwb")
    with pytest.raises(SchemaError, match="not a readable NWB"):
        bp.read_nwb(plain)
    with pytest.raises(SchemaError, match="no TimeSeries 'spikes'"):
        bp.read_nwb(out, "spikes")


def test_cli_export_nwb(run_with_recordings, tmp_path, capsys):
    from bioplastic.cli import main

    out = tmp_path / "cli.nwb"
    assert main(["export", "nwb", str(run_with_recordings), str(out), "--time-unit-ms", "1"]) == 0
    assert bp.read_nwb(out).bin_seconds == pytest.approx(1e-3)  # dt = 1 time unit = 1 ms
    assert main(["export", "nwb", str(run_with_recordings), str(out)]) == 2
    assert "exists" in capsys.readouterr().err


def test_a_local_rule_run_exports(tmp_path):
    """A local-rule run with recordings exports; the rule's name (not its description) labels the file."""
    from bioplastic.export.nwb import export_nwb
    from bioplastic.training.local import train_local

    task = bp.get_task("flipflop", n_steps=20)
    net = bp.make_network("lfrnn", 3, 3, n_units=8)
    train_local(net, task, "eprop+tcr_stp", iterations=4, checkpoint_every=2, seed=2, early_stop=False,
                diagnostics_every=0, run_file=tmp_path / "run.h5", progress=False,
                record={"what": ["rates"], "n_trials": 3})
    out = export_nwb(tmp_path / "run.h5", tmp_path / "run.nwb")
    with pynwb.NWBHDF5IO(str(out), "r") as io:
        nwb = io.read()
        assert "eprop+tcr_stp" in list(nwb.keywords[:]) and "rule 'eprop+tcr_stp'" in nwb.experiment_description
        assert {"rates_it000000", "rates_it000004"} <= set(nwb.acquisition)
