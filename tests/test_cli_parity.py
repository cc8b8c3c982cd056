"""CLI and spec parity with the Python API (issue 16): [record], [nwb], lambda_TCR schedules,
--record, --set on train/run/sweep, local rules and any key on a sweep's grid, the example specs."""
import json
from pathlib import Path

import pytest

from bioplastic.cli import main
from bioplastic.errors import ConfigError, UnknownNameError
from bioplastic.io import read_run
from bioplastic.io.specs import load_spec, network_from_spec, run_settings

REPO = Path(__file__).resolve().parents[1]

#: A tiny, fast spec: small network, short trials, small held-out batches, no memory test.
TINY = """
[model]
kind = "lfrnn"
n_units = 8

[task]
name = "flipflop"
n_steps = 20

[training]
iterations = 3
batch_size = 4
eval_batch_size = 8
memory_test = false
"""


def write(tmp_path, text, name="spec.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def train(tmp_path, spec, out, *args):
    """``bioplastic train`` in-process into ``tmp_path / out``; returns the exit code."""
    argv = ["train", "--model", str(spec), "--out", str(tmp_path / out), "--seed", "0", "--no-progress", *args]
    return main(argv)


def one_line_error(capsys, *parts):
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for part in parts:
        assert part in err, err
    return err


# -- [record] and --record -------------------------------------------------------------------------------


def test_record_section_records_at_checkpoints(tmp_path):
    spec = write(tmp_path, TINY + 'checkpoint_every = 2\n[record]\nwhat = "rates,states"\nn_trials = 3\n')
    assert load_spec(spec)["record"] == {"what": ["rates", "states"], "n_trials": 3}
    assert train(tmp_path, spec, "a") == 0
    data = read_run(tmp_path / "a" / "run.h5")
    assert data.config["record"]["what"] == ["rates", "states"] and data.config["record"]["n_trials"] == 3
    assert sorted(data.recordings["at"]) == [0, 2, 3]
    assert data.recordings["at"][2]["rates"].shape == (21, 3, 8)      # (T+1, trials, N)


def test_record_flag_alone_and_with_names(tmp_path):
    spec = write(tmp_path, TINY)
    assert load_spec(spec)["record"] is None                          # no [record]: nothing recorded
    assert train(tmp_path, spec, "none") == 0
    assert "record" not in read_run(tmp_path / "none" / "run.h5", checkpoints=False).config
    assert train(tmp_path, spec, "bare", "--record") == 0             # the Recording defaults
    rec = read_run(tmp_path / "bare" / "run.h5", checkpoints=False).config["record"]
    assert rec == {"what": ["states", "rates", "outputs"], "n_trials": 16, "at": "checkpoints", "noise": False}
    assert train(tmp_path, spec, "named", "--record", "inputs,rates", "--set", "record.n_trials=2") == 0
    data = read_run(tmp_path / "named" / "run.h5")
    assert data.config["record"]["what"] == ["inputs", "rates"] and data.config["record"]["n_trials"] == 2
    assert set(data.recordings["at"][3]) >= {"inputs", "rates"}


def test_record_errors_come_before_the_output_folder(tmp_path, capsys):
    spec = write(tmp_path, TINY)
    assert train(tmp_path, spec, "o", "--record", "rates,ratez") == 2
    one_line_error(capsys, "cannot record 'ratez' (did you mean 'rates'?) from a 'lfrnn' network")
    assert train(tmp_path, spec, "o", "--set", "record.at=[1, 50]") == 2
    one_line_error(capsys, "record at: iteration 50 is outside [0, 3]")
    assert train(tmp_path, spec, "o", "--set", "record.n_trial=3") == 2
    one_line_error(capsys, "[record]: unknown key(s): 'n_trial' (did you mean 'n_trials'?)")
    assert train(tmp_path, spec, "o", "--record", "rates,ratez", "--rule", "eprop") == 2
    one_line_error(capsys, "cannot record 'ratez' (did you mean 'rates'?) from a 'lfrnn' network")
    assert not (tmp_path / "o").exists()
    both = write(tmp_path, TINY + 'record = {what = ["rates"]}\n[record]\nn_trials = 2\n', "both.toml")
    with pytest.raises(ConfigError, match=r"recording is set twice, in \[record\] and as \[training\] record"):
        load_spec(both)


def test_record_section_serves_both_loops(tmp_path):
    spec = load_spec(write(tmp_path, TINY + "[record]\n"))
    plan = run_settings(spec, rule="eprop")
    assert plan["training"]["record"] == {} and not plan["notes"]        # the local-rule loop records too
    assert run_settings(spec)["training"]["record"] == {}                 # BPTT: the defaults


def test_record_is_refused_with_resume(tmp_path, capsys):
    spec = write(tmp_path, TINY)
    assert train(tmp_path, spec, "r") == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "r" / "run.h5"), "--record"]) == 2
    one_line_error(capsys, "--record changes what a run records")


# -- [nwb] -------------------------------------------------------------------------------------------------


def test_nwb_table_is_checked_and_kept_in_the_run_file(tmp_path, capsys):
    nwb = ('[nwb]\nexperimenter = "Doe, Jane"\ninstitution = "Example University"\nlab = "Example lab"\n'
           'keywords = ["TCR", "flip-flop"]\nsession_description = "a test"\nexperiment_description = "parity"\n')
    spec = write(tmp_path, TINY + nwb)
    assert train(tmp_path, spec, "a") == 0
    cfg = read_run(tmp_path / "a" / "run.h5", checkpoints=False).config
    assert cfg["nwb"] == {"experimenter": "Doe, Jane", "institution": "Example University", "lab": "Example lab",
                          "keywords": ["TCR", "flip-flop"], "session_description": "a test",
                          "experiment_description": "parity"}
    with pytest.raises(ConfigError, match=r"\[nwb\]: unknown key\(s\): 'experimentor' \(did you mean "
                                          r"'experimenter'\?\)"):
        load_spec(write(tmp_path, TINY + '[nwb]\nexperimentor = "Doe"\n', "bad.toml"))
    with pytest.raises(ConfigError, match=r"bad2.toml \[nwb\]: .*lab.* got 3"):
        load_spec(write(tmp_path, TINY + "[nwb]\nlab = 3\n", "bad2.toml"))
    assert train(tmp_path, spec, "b", "--set", "nwb.institutoin=x") == 2
    one_line_error(capsys, "(after --set) [nwb]: unknown key(s): 'institutoin' (did you mean 'institution'?)")


# -- lambda_TCR schedules --------------------------------------------------------------------------------


def test_schedule_tables_in_training_and_local_training(tmp_path):
    spec = write(tmp_path, TINY + '[training.lambda_tcr]\nkind = "linear"\nvalue = 0.2\niterations = 50\n'
                                  '[local_training]\nlambda_tcr = {kind = "window", value = 1.0, start = 2}\n'
                                  '[local_training.eprop]\nlambda_tcr = {kind = "exponential", value = 2.0}\n'
                                  "lr = 0.01\n")
    assert train(tmp_path, spec, "bptt") == 0
    desc = read_run(tmp_path / "bptt" / "run.h5", checkpoints=False).config["training"]["lambda_tcr"]
    assert desc == {"kind": "linear", "value": 0.2, "iterations": 50.0}
    assert train(tmp_path, spec, "np", "--rule", "node_perturbation+tcr_stp") == 0
    cfg = read_run(tmp_path / "np" / "run.h5", checkpoints=False).config["training"]
    assert cfg["lambda_tcr"] == {"kind": "window", "value": 1.0, "start": 2, "stop": None}
    assert train(tmp_path, spec, "ep", "--rule", "eprop+tcr_stp", "--set",
                 "local_training.eprop.lambda_tcr.half_life=7") == 0
    cfg = read_run(tmp_path / "ep" / "run.h5", checkpoints=False).config["training"]
    assert cfg["lambda_tcr"] == {"kind": "exponential", "value": 2.0, "half_life": 7.0} and cfg["lr"] == 0.01


@pytest.mark.parametrize("override, error, message", [
    ('training.lambda_tcr={kind = "linearr"}', UnknownNameError,
     "[training] lambda_tcr kind: unknown lambda_TCR schedule 'linearr'; did you mean 'linear'?"),
    ('training.lambda_tcr={kind = "linear", iteration = 5}', ConfigError,
     "[training] lambda_tcr: unknown setting(s) for schedule 'linear': 'iteration' (did you mean 'iterations'?)"),
    ("training.lambda_tcr=-1", ConfigError, "lambda_TCR value must be finite and >= 0"),
    ("training.lambda_tcr=big", ConfigError, "lambda_tcr must be a number or a schedule table"),
    ('local_training.lambda_tcr={kind = "window", stat = 3}', ConfigError, "'stat' (did you mean 'start'?)"),
    ("training.criterion.treshold=0.5", ConfigError, "criterion: unknown setting(s): 'treshold' (did you mean"),
    ("training.memory_test={factr = 2}", ConfigError, "memory_test: unknown setting(s): 'factr' (did you mean"),
])
def test_schedule_and_table_errors_name_the_closest(tmp_path, capsys, override, error, message):
    spec = write(tmp_path, TINY)
    with pytest.raises(error) as exc:
        load_spec(spec, overrides=[override])
    assert message in str(exc.value)
    assert train(tmp_path, spec, "o", "--set", override) == 2
    one_line_error(capsys, message)
    assert not (tmp_path / "o").exists()


# -- values of the wrong type: one line, never a traceback ------------------------------------------------


@pytest.mark.parametrize("rule, override, message", [
    ("eprop+tcr_stp", "rule.tcr_stp.tau_s={a = 1}", "[rule.tcr_stp] tau_s must be a number, got {'a': 1}"),
    ("eprop+tcr_stp+freeze_in", "rule.freeze_in.controller=3",
     "rule 'eprop+tcr_stp+freeze_in': [rule.freeze_in] controller = 3 is invalid"),
    ("eprop", "rule.eprop.feedback=3", "[rule.eprop] feedback must be a string, got 3"),
    ("bptt", "model.g=big", "model.g must be a number, got 'big'"),
    ("bptt", "training.memory_test={factor = 'x'}", "memory_test = {'factor': 'x'} is invalid"),
    ("bptt", "training.rule=eprop", "[training]: 'rule' is not a training setting; the rule goes in [rule]"),
    ("eprop", "local_training.lambda_tcr=2", "lambda_tcr scales the TCR-STP strength, but rule 'eprop' has no"),
    ("tcr_stp", "model.g=1.0", "rule 'tcr_stp' modifies no parameter"),
])
def test_bad_values_are_one_line_errors_before_the_output_folder(tmp_path, capsys, rule, override, message):
    spec = write(tmp_path, TINY)
    assert train(tmp_path, spec, "o", "--rule", rule, "--set", override) == 2
    one_line_error(capsys, message)
    assert not (tmp_path / "o").exists()


# -- bioplastic run --set -----------------------------------------------------------------------------------


def test_run_set_changes_the_protocols_settings_and_is_recorded(tmp_path, capsys):
    out = tmp_path / "cmp"
    argv = ["run", "compare_to_data", "--quick", "--out", str(out), "--workers", "1",
            "--set", "seeds=2", "--set", "iterations=4", "--set", "n_units=8"]
    assert main(argv) == 0
    pred = json.loads((out / "predictions.json").read_text())
    assert pred["settings"] == {"seeds": 2, "n_units": 8, "iterations": 4}
    assert pred["settings_overrides"] == ["seeds=2", "iterations=4", "n_units=8"]
    assert sorted(p.name for p in (out / "runs").glob("*.h5")) == ["seed0.h5", "seed1.h5"]
    cfg = read_run(out / "runs" / "seed0.h5", checkpoints=False).config
    assert cfg["model"]["n_units"] == 8 and cfg["training"]["iterations"] == 4


def test_run_show_settings(capsys):
    assert main(["run", "abrupt_learning", "--quick", "--show-settings", "--set", "iterations.lfrnn=100",
                 "--set", "n_init=8", "--seeds", "2"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["iterations"] == {"lfrnn": 100, "plrnn": 600} and shown["n_init"] == 8 and shown["seeds"] == 2
    assert main(["run", "local_rules_tcr", "--quick", "--show-settings",
                 "--set", "tasks=flipflop,delayed_addition", "--set", "budgets.delayed_addition=100",
                 "--set", "cures={controller = false}"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["tasks"] == ["flipflop", "delayed_addition"]
    assert shown["budgets"] == {"flipflop": 300, "delayed_addition": 100}
    assert shown["cures"]["controller"] is False and shown["cures"]["perturbation_std"] == [0.03]
    assert main(["run", "slow_dynamics", "--show-settings", "--set", "budget_scale=0.5"]) == 0  # a QUICK-only key
    assert json.loads(capsys.readouterr().out)["budget_scale"] == 0.5


@pytest.mark.parametrize("args, message", [
    (["abrupt_learning", "--set", "n_int=3"],
     "--set 'n_int=3': protocol 'abrupt_learning' has no setting: 'n_int' (did you mean 'n_init'?)"),
    (["abrupt_learning", "--set", "iterations.lfrn=3"], "'lfrn' (did you mean 'lfrnn'?)"),
    (["abrupt_learning", "--set", "iterations=3"], "iterations is a table with keys lfrnn, plrnn"),
    (["abrupt_learning", "--set", "seeds=2.5"], "seeds must be an integer, got 2.5"),
    (["abrupt_learning", "--set", "seeds=0"], "the number of seeds must be an integer >= 1"),
    (["local_rules_tcr", "--set", "tasks=flipflop,delayed_addtion"],
     "tasks has 'delayed_addtion' (did you mean 'delayed_addition'?)"),
    (["local_rules_tcr", "--set", "cures={controler = false}"], "'controler' (did you mean 'controller'?)"),
    (["local_rules_tcr", "--set", "phase.etas=[1, \"x\"]"], "phase.etas must be a list of numbers"),
    (["reproduce", "--set", "seeds=2"], "protocol 'reproduce' has no settings table (FULL)"),
    (["abrupt_learning", "--set", "=3"], "is not KEY or TABLE.KEY"),
])
def test_run_set_errors(tmp_path, capsys, args, message):
    out = tmp_path / "o"
    assert main(["run", *args, "--out", str(out)]) == 2
    one_line_error(capsys, message)
    assert not out.exists()


# -- sweeps: local rules, any key on the grid, --set -----------------------------------------------------------


SWEEP = TINY.replace("iterations = 3", "iterations = 2") + """
[sweep]
seeds = [0]

[rule.tcr_stp]
eta_s = 0.02

[local_training]
optimizer = "sgd"
lr = 0.01

[record]
what = ["rates"]
n_trials = 2
at = "final"

[nwb]
lab = "Example lab"

[grid]
"rule.name" = ["bptt", "eprop+tcr_stp"]
"rule.tcr_stp.tau_s" = [50.0, 100.0]
"""


def test_sweep_with_local_rules_and_spec_keys_on_its_grid(tmp_path, capsys):
    from bioplastic.sweep import config_hash, load_sweep, make_jobs, resolved_config, result_config

    spec = write(tmp_path, SWEEP, "sweep.toml")
    out = tmp_path / "out"
    argv = ["sweep", str(spec), "--out", str(out), "--workers", "1", "--no-progress",
            "--set", "task.n_bits=2", "--set", "sweep.seeds=[0, 1]"]
    assert main(argv) == 0
    std = capsys.readouterr()
    assert "8 jobs on local processes (1)" in std.out and ": 0 of 8 reused, 8 trained" in std.out
    runs = {p.stem: read_run(p) for p in (out / "runs").glob("*.h5")}
    assert sorted(runs) == sorted(f"rule={r}_tcr_stp.tau_s={t}_seed{s}" for r in ("bptt", "eprop+tcr_stp")
                                  for t in (50.0, 100.0) for s in (0, 1))
    local = runs["rule=eprop+tcr_stp_tcr_stp.tau_s=50.0_seed1"]
    parts = {d["name"]: d for d in local.config["training"]["rule"]["rules"]}
    assert parts["tcr_stp"] == {**parts["tcr_stp"], "eta_s": 0.02, "tau_s": 50.0}
    assert local.config["training"]["optimizer"] == "sgd" and local.config["task"]["n_bits"] == 2
    assert local.config["nwb"] == {"lab": "Example lab"} and list(local.recordings["at"]) == [2]
    bptt = runs["rule=bptt_tcr_stp.tau_s=100.0_seed0"]
    assert bptt.config["training"]["rule"] == "bptt" and list(bptt.recordings["at"]) == [2]
    # the hash's resolution matches what both loops record, so a re-run reuses every job
    spec_data = load_sweep(spec, ["task.n_bits=2", "sweep.seeds=[0, 1]"])
    for job in make_jobs(spec_data, out):
        recorded = read_run(job["run_file"], checkpoints=False).config
        assert result_config(recorded) == resolved_config(job)
        assert config_hash(recorded) == config_hash(resolved_config(job))
    assert main(argv) == 0
    assert ": 8 of 8 reused, 0 trained" in capsys.readouterr().out
    rows = (out / "summary.csv").read_text().splitlines()
    assert rows[0].startswith("name,seed,rule.name,rule.tcr_stp.tau_s,status")


@pytest.mark.parametrize("grid, message", [
    ('"rulez.name" = ["eprop"]', "[grid] 'rulez.name': unknown section: 'rulez' (did you mean 'rule'?)"),
    ('"rule.name" = ["epropp"]', "(grid rule.name = 'epropp') [rule] name: unknown rule 'epropp'; did you mean"),
    ('"rule.tcr_stp.eta" = [0.1]', "'eta' (did you mean 'eta_s'?)"),
    ('"task.n_bitz" = [2]', "(grid task.n_bitz = 2) [task]: unknown setting(s) for task 'flipflop': 'n_bitz' "
                            "(did you mean 'n_bits'?)"),
    ('"training.lambda_tcr" = [{kind = "linear", valu = 1}]', "'valu' (did you mean 'value'?)"),
    ('"record.n_trial" = [2]', "'n_trial' (did you mean 'n_trials'?)"),
    ('"model.g" = ["x"]', "model.g must be a number, got 'x'"),
    ('"rule" = ["eprop"]', "key 'rule' must be SECTION.KEY, e.g. 'model.g'"),
    ('"rule.freeze_in.controller" = [3]\n"rule.name" = ["eprop+tcr_stp+freeze_in"]',
     "[rule.freeze_in] controller = 3 is invalid"),
])
def test_sweep_grid_errors_name_the_closest_valid_key(tmp_path, capsys, grid, message):
    spec = write(tmp_path, TINY + "[grid]\n" + grid + "\n", "s.toml")
    assert main(["sweep", str(spec), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    one_line_error(capsys, message)
    assert not list((tmp_path / "o").glob("runs/*.h5"))


def test_sweep_set_and_seed_errors(tmp_path, capsys):
    spec = write(tmp_path, TINY + '[grid]\n"model.g" = [1.0]\n', "s.toml")
    for args, message in ((["--set", "sweep.seed=2"], "(after --set) [sweep]: unknown key(s): 'seed' (did you "
                                                      "mean 'seeds'?)"),
                          (["--set", "modle.g=2"], "--set 'modle.g=2': unknown section: 'modle' (did you mean "
                                                   "'model'?)"),
                          (["--set", "grid.model.g=[1]"], "the grid cannot be set from the command line"),
                          (["--set", "training.seed=3"], "'seed' is set per job by [sweep] seeds"),
                          (["--set", "sweep.seeds=0"], "[sweep] seeds must be a number of seeds (>= 1)")):
        assert main(["sweep", str(spec), "--out", str(tmp_path / "o"), "--no-progress", *args]) == 2
        one_line_error(capsys, message)
    assert not (tmp_path / "o").exists()
    assert main(["sweep", "no_such_sweep", "--out", str(tmp_path / "o")]) == 2
    one_line_error(capsys, "sweep spec 'no_such_sweep' does not exist (nor as a name in protocols/sweeps: ")


# -- the example specs ----------------------------------------------------------------------------------------


def _model_specs():
    return sorted([*(REPO / "models").glob("*.toml"), *(REPO / "models" / "examples").glob("*.toml")])


def _sweep_specs():
    return sorted((REPO / "protocols" / "sweeps").glob("*.toml"))


def test_examples_folder_is_searched_and_documented():
    names = {p.stem for p in (REPO / "models" / "examples").glob("*.toml")}
    assert len(names) >= 8
    docs = (REPO / "docs" / "specs.md").read_text()
    assert all(f"`{n}.toml`" in docs for n in names), "every example spec has a row in docs/specs.md"
    sweeps = (REPO / "docs" / "sweeps.md").read_text()
    assert all(f"`{p.name}`" in sweeps for p in _sweep_specs()), "every example sweep is in docs/sweeps.md"
    assert load_spec("quickstart")["path"].endswith("models/examples/quickstart.toml")
    assert load_spec("examples/quickstart")["path"] == load_spec("quickstart")["path"]


@pytest.mark.parametrize("path", _model_specs(), ids=lambda p: p.stem)
def test_every_model_spec_loads_and_resolves(path):
    from bioplastic.io.specs import check_rule_on, uses_local_training
    from bioplastic.preflight import check_run_objects

    spec = load_spec(path)
    # BPTT, the spec's rule, and each task rule it has a table for (with TCR-STP when it has that table too)
    stp = "+tcr_stp" if "tcr_stp" in spec["rule"] else ""
    rules = ["bptt", spec["rule"].get("name", "bptt"),
             *(p + stp for p in spec["rule"] if p in ("eprop", "node_perturbation", "readout"))]
    for rule in dict.fromkeys(rules):
        plan = run_settings(spec, task=None if "name" in spec["task"] else "flipflop", rule=rule)
        net = network_from_spec(spec, plan["task"])
        check_run_objects(net, plan["task"], plan["training"])
        if uses_local_training(plan["rule"]):
            check_rule_on(plan["rule"], net, spec["rule"])


@pytest.mark.parametrize("path", _sweep_specs(), ids=lambda p: p.stem)
def test_every_sweep_spec_loads_and_resolves(path, tmp_path):
    from bioplastic.sweep import load_sweep, make_jobs, plan_jobs

    jobs = make_jobs(load_sweep(path.stem), tmp_path)
    plans = plan_jobs(jobs)
    assert {p["action"] for p in plans} == {"train"} and len({p["hash"] for p in plans}) == len(jobs)


@pytest.mark.parametrize("name, args", [
    ("record_nwb", ["--checkpoint-every", "2"]),
    ("local_eprop_tcr_stp_freeze_in", []),
    ("tcr_search_phase", []),
])
def test_example_specs_train_three_iterations(tmp_path, name, args):
    out = tmp_path / name
    assert main(["train", "--model", name, "--iterations", "3", "--seed", "0", "--set", "model.n_units=8",
                 "--set", "training.eval_batch_size=8", "--set", "training.memory_test=false",
                 "--out", str(out), "--no-progress", *args]) == 0
    data = read_run(out / "run.h5")
    assert len(data.history["iteration"]) == 4
    if name == "record_nwb":
        assert sorted(data.recordings["at"]) == [0, 2, 3] and data.config["nwb"]["lab"] == "Example lab"
    if name == "local_eprop_tcr_stp_freeze_in":
        assert data.config["training"]["rule"]["name"] == "eprop+tcr_stp+freeze_in"
        assert data.config["training"]["lambda_tcr"]["kind"] == "window"
