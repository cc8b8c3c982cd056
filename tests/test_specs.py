"""Spec sections [task], [rule], [local_training] and ``--set`` overrides, in files and through the CLI."""
import pytest

from bioplastic.cli import main
from bioplastic.errors import ConfigError, UnknownNameError
from bioplastic.io import read_run
from bioplastic.io.overrides import apply_overrides, parse_override, parse_value
from bioplastic.io.specs import load_spec, rule_from_spec, run_settings, task_from_spec

#: A tiny, fast spec: small network, short trials, small held-out batches, no memory test.
TINY = """
[model]
kind = "lfrnn"
n_units = 8
g = 1.5

[training]
iterations = 2
batch_size = 4
optimizer = "adam"
lr = 0.001
eval_batch_size = 8
memory_test = false
"""


def write_spec(tmp_path, extra="", name="spec.toml", base=TINY):
    path = tmp_path / name
    path.write_text(base + extra)
    return path


def train(spec, out, *args):
    """Run ``bioplastic train`` in-process; return the run file's contents."""
    argv = ["train", "--model", str(spec), "--out", str(out), "--seed", "0", "--no-progress", *args]
    assert main(argv) == 0
    return read_run(out / "run.h5", checkpoints=False)


def parts_of(config):
    rule = config["training"]["rule"]
    return {d["name"]: d for d in rule["rules"]} if "rules" in rule else {rule["name"]: rule}


# -- parsing ---------------------------------------------------------------------------------------------


def test_sections_parse_and_stay_backwards_compatible(tmp_path):
    spec = load_spec(write_spec(tmp_path, """
[task]
name = "flipflop"
n_steps = 20

[rule]
name = "eprop+tcr_stp"
[rule.tcr_stp]
eta_s = 0.02
[rule.freeze_in]
eta = 10.0
controller = {low = 0.4}

[local_training]
optimizer = "sgd"
lr = 0.02
"""))
    assert spec["model"] == {"kind": "lfrnn", "n_units": 8, "g": 1.5}
    assert spec["training"]["lr"] == 0.001 and spec["path"].endswith("spec.toml")
    assert spec["task"] == {"name": "flipflop", "n_steps": 20}
    assert spec["rule"] == {"name": "eprop+tcr_stp", "tcr_stp": {"eta_s": 0.02},
                            "freeze_in": {"eta": 10.0, "controller": {"low": 0.4}}}
    assert spec["local_training"] == {"optimizer": "sgd", "lr": 0.02}
    assert spec["overrides"] == []
    task = task_from_spec(spec)
    assert task.name == "flipflop" and task.n_steps == 20
    rule = rule_from_spec(spec)
    assert rule.name == "eprop+tcr_stp" and rule.stp == (0.02, 100.0)   # freeze_in's table is unused
    plan = run_settings(spec)
    assert plan["local"] and plan["training"]["lr"] == 0.02 and plan["training"]["optimizer"] == "sgd"


def test_model_only_spec_gets_empty_sections(tmp_path):
    spec = load_spec(write_spec(tmp_path, base='[model]\nkind = "lfrnn"\n'))
    assert (spec["training"], spec["task"], spec["rule"], spec["local_training"]) == ({}, {}, {}, {})
    assert rule_from_spec(spec).name == "bptt"
    with pytest.raises(ConfigError, match="--task NAME"):
        task_from_spec(spec)


def test_parse_value_and_override():
    assert parse_value("32") == 32 and parse_value("0.05") == 0.05 and parse_value("1e-3") == 0.001
    assert parse_value("true") is True and parse_value('"adam"') == "adam"
    assert parse_value("random") == "random" and parse_value(".5") == 0.5 and parse_value("") == ""
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value('{kind = "constant", value = 2.0}') == {"kind": "constant", "value": 2.0}
    assert parse_value("1\nx = 2") == "1\nx = 2"                       # one value, not a document
    assert parse_override(" rule.tcr_stp.eta_s = 0.05") == (("rule", "tcr_stp", "eta_s"), 0.05)
    assert parse_override("rule.name=eprop+tcr_stp") == (("rule", "name"), "eprop+tcr_stp")


def test_apply_overrides_copies_creates_tables_and_last_wins():
    data = {"model": {"kind": "lfrnn"}, "training": {"lambda_tcr": {"kind": "constant", "value": 1.0}}}
    out = apply_overrides(data, ["model.n_units=4", "model.n_units=6", "rule.freeze_in.controller.low=0.3",
                                 "training.lambda_tcr.value=2.5"])
    assert out["model"]["n_units"] == 6 and out["rule"] == {"freeze_in": {"controller": {"low": 0.3}}}
    assert out["training"]["lambda_tcr"] == {"kind": "constant", "value": 2.5}
    assert data == {"model": {"kind": "lfrnn"}, "training": {"lambda_tcr": {"kind": "constant", "value": 1.0}}}


# -- errors in files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("extra, error, message", [
    ('[rulez]\nname = "eprop"\n', ConfigError, r"'rulez' \(did you mean 'rule'\?\)"),
    ('[local_trainig]\nlr = 0.1\n', ConfigError, r"did you mean 'local_training'\?"),
    ('[task]\nn_stepz = 20\n', ConfigError, r"'n_stepz' \(did you mean 'n_steps'\?\)"),
    ('[task]\nname = "flipflop"\npulse_steps = 2\nn_bitz = 2\n', ConfigError, r"did you mean 'n_bits'\?"),
    ('[task]\nname = "flipflopp"\n', UnknownNameError, r"did you mean 'flipflop'\?"),
    ('[task]\nname = "flipflop"\nn_steps = 3\n', ConfigError, r"\[task\].*n_steps"),
    ('[rule.tcr_stpp]\neta_s = 0.1\n', UnknownNameError,
     r"\[rule.tcr_stpp\]: unknown rule 'tcr_stpp'; did you mean 'tcr_stp'\?"),
    ('[rule.tcr_stp]\neta = 0.1\n', ConfigError, r"\[rule.tcr_stp\].*'eta' \(did you mean 'eta_s'\?\)"),
    ('[rule.freeze_in]\nperturbation_sd = 0.1\n', ConfigError, r"did you mean 'perturbation_std'\?"),
    ('[rule]\neta_s = 0.1\n', ConfigError, r"'eta_s' is neither 'name' nor a rule part's table"),
    ('[rule]\nname = "eprop+tcr_stpp"\n', UnknownNameError, r"\[rule\] name: unknown rule 'tcr_stpp'"),
    ('[local_training]\nlrr = 0.1\n', ConfigError, r"'lrr' \(did you mean 'lr'\?\)"),
    ('[local_training]\ntcr_on = "states"\n', ConfigError, r"\[local_training\]: unknown key\(s\): 'tcr_on'"),
    ('task = "flipflop"\n', ConfigError, r"'task' must be a table"),
])
def test_spec_file_errors_name_the_closest_valid_name(tmp_path, extra, error, message):
    # top-level keys must precede the tables in TOML, so 'task = ...' goes first
    path = (write_spec(tmp_path, base=extra + TINY) if extra.startswith("task =")
            else write_spec(tmp_path, extra))
    with pytest.raises(error, match=message):
        load_spec(path)


def test_unused_rule_tables_are_checked_but_ignored(tmp_path):
    spec = load_spec(write_spec(tmp_path, "[rule.node_perturbation]\nsigma = 0.5\n[rule.eprop]\nfeedback = 'random'\n"))
    assert rule_from_spec(spec, "eprop").feedback == "random"
    assert rule_from_spec(spec, "node_perturbation+eprop").describe()["rules"][0]["sigma"] == 0.5
    assert rule_from_spec(spec).name == "bptt"
    plan = run_settings(spec, task="flipflop", rule="bptt")
    assert not plan["local"] and plan["notes"] == []


def test_task_settings_are_checked_against_the_chosen_task(tmp_path, capsys):
    spec = load_spec(write_spec(tmp_path, "[task]\nn_bits = 2\n"))
    assert task_from_spec(spec, "flipflop").n_bits == 2
    with pytest.raises(ConfigError, match=r"unknown setting\(s\) for task 'delayed_addition': 'n_bits'"):
        task_from_spec(spec, "delayed_addition")
    assert main(["train", "--model", str(spec["path"]), "--out", str(tmp_path / "o")]) == 2
    assert "--task required" in capsys.readouterr().err


# -- the CLI ---------------------------------------------------------------------------------------------


def test_spec_rule_and_task_reach_the_run_file(tmp_path):
    spec = write_spec(tmp_path, """
[task]
name = "flipflop"
n_steps = 20
settle_steps = 1

[rule]
name = "eprop+tcr_stp+freeze_in"
[rule.eprop]
feedback = "random"
feedback_scale = 0.5
[rule.tcr_stp]
eta_s = 0.02
tau_s = 50.0
[rule.freeze_in]
eta = 10.0
perturbation_std = 0.01
[rule.node_perturbation]
sigma = 0.3
""")
    data = train(spec, tmp_path / "run")
    parts = parts_of(data.config)
    assert data.config["training"]["rule"]["name"] == "eprop+tcr_stp+freeze_in"
    assert (parts["eprop"]["feedback"], parts["eprop"]["feedback_scale"]) == ("random", 0.5)
    assert (parts["tcr_stp"]["eta_s"], parts["tcr_stp"]["tau_s"]) == (0.02, 50.0)
    assert (parts["freeze_in"]["eta"], parts["freeze_in"]["perturbation_std"]) == (10.0, 0.01)
    assert data.config["task"]["name"] == "flipflop" and data.config["task"]["n_steps"] == 20
    assert data.config["task"]["settle_steps"] == 1
    assert data.config["spec"] == str(spec) and data.config["spec_overrides"] == []
    # --rule and --task take precedence over the spec's names; node_perturbation's table now applies
    data = train(spec, tmp_path / "np", "--rule", "node_perturbation", "--task", "flipflop")
    assert parts_of(data.config)["node_perturbation"]["sigma"] == 0.3


def test_set_overrides_every_section(tmp_path):
    spec = write_spec(tmp_path, '[local_training]\nlr = 0.01\n[task]\nname = "flipflop"\n')
    sets = ["model.n_units=6", "task.n_steps=24", "rule.name=eprop+tcr_stp", "rule.tcr_stp.eta_s=0.05",
            "rule.eprop.feedback=random", "local_training.lr=0.003", "training.batch_size=3"]
    data = train(spec, tmp_path / "run", *[a for s in sets for a in ("--set", s)])
    cfg = data.config
    assert cfg["model"]["n_units"] == 6 and cfg["task"]["n_steps"] == 24
    parts = parts_of(cfg)
    assert set(parts) == {"eprop", "tcr_stp"}
    assert parts["tcr_stp"]["eta_s"] == 0.05 and parts["eprop"]["feedback"] == "random"
    assert cfg["training"]["lr"] == 0.003 and cfg["training"]["batch_size"] == 3
    assert cfg["spec_overrides"] == sets


def test_set_training_and_seed_for_bptt(tmp_path):
    spec = write_spec(tmp_path, "seed = 5\n")       # appended to [training]
    data = train(spec, tmp_path / "a", "--task", "flipflop", "--set", "training.lr=0.002",
                 "--set", "training.lambda_tcr={kind = 'constant', value = 0.5}", "--set", "task.n_steps=20")
    assert data.config["training"]["rule"] == "bptt" and data.config["training"]["lr"] == 0.002
    assert data.config["training"]["lambda_tcr"]["value"] == 0.5
    assert data.seed == 0                           # --seed wins over [training] seed
    assert main(["train", "--model", str(spec), "--task", "flipflop", "--set", "task.n_steps=20",
                 "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    assert read_run(tmp_path / "b" / "run.h5", checkpoints=False).seed == 5


def test_local_training_overrides_training_for_local_rules_only(tmp_path, capsys):
    spec = write_spec(tmp_path, """tcr_on = "states"
lambda_tcr = 0.5

[task]
name = "flipflop"
n_steps = 20

[local_training]
optimizer = "sgd"
lr = 0.02
diagnostics_every = 0
""")
    bptt = train(spec, tmp_path / "bptt")
    assert bptt.config["training"]["optimizer"] == "adam" and bptt.config["training"]["lr"] == 0.001
    assert bptt.config["training"]["tcr_on"] == "states"
    assert bptt.config["training"]["lambda_tcr"]["value"] == 0.5
    assert "note:" not in capsys.readouterr().err
    local = train(spec, tmp_path / "local", "--rule", "eprop")
    tr = local.config["training"]
    assert tr["optimizer"] == "sgd" and tr["lr"] == 0.02 and tr["diagnostics_every"] == 0
    assert tr["batch_size"] == 4 and tr["iterations"] == 2        # the rest of [training] still applies
    assert tr["lambda_tcr"]["value"] == 1.0     # BPTT's TCR loss weight is not the TCR-STP multiplier
    err = capsys.readouterr().err
    assert "note: [training] key(s) for BPTT only, ignored by rule 'eprop': lambda_tcr, tcr_on" in err
    stp = train(spec, tmp_path / "stp", "--rule", "eprop+tcr_stp", "--set", "local_training.lambda_tcr=2.0")
    assert stp.config["training"]["lambda_tcr"]["value"] == 2.0


def test_rule_bptt_table_is_noted_for_bptt(tmp_path):
    spec = load_spec(write_spec(tmp_path, '[rule.bptt]\nmodifies = ["W"]\n'))
    assert any("[rule.bptt]" in n for n in run_settings(spec, task="flipflop")["notes"])


@pytest.mark.parametrize("override, message", [
    ("model.n_units", "no '='; expected SECTION.KEY=VALUE"),
    ("n_units=3", "'n_units' is not SECTION.KEY; expected SECTION.KEY=VALUE"),
    ("model.=3", "is not SECTION.KEY"),
    ("modle.n_units=3", "unknown section: 'modle' (did you mean 'model'?)"),
    ("model.n_unit=3", "(after --set) [model]: unknown key(s): 'n_unit' (did you mean 'n_units'?)"),
    ("task.n_stepz=3", "'n_stepz' (did you mean 'n_steps'?)"),
    ("training.lrr=0.1", "[training]: unknown key(s): 'lrr' (did you mean 'lr'?)"),
    ("local_training.lrr=0.1", "[local_training]: unknown key(s): 'lrr' (did you mean 'lr'?)"),
    ("rule.tcr_stpp.eta_s=0.1", "unknown rule 'tcr_stpp'; did you mean 'tcr_stp'?"),
    ("rule.tcr_stp.eta=0.1", "'eta' (did you mean 'eta_s'?)"),
    ("rule.name=epropp", "[rule] name: unknown rule 'epropp'; did you mean 'eprop'?"),
    ("training.lr.x=1", "'training.lr' is 0.001, not a table"),
])
def test_set_errors_are_one_clear_line(tmp_path, capsys, override, message):
    spec = write_spec(tmp_path)
    rc = main(["train", "--model", str(spec), "--task", "flipflop", "--set", override,
               "--out", str(tmp_path / "o"), "--no-progress"])
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_spec_errors_through_the_cli(tmp_path, capsys):
    spec = write_spec(tmp_path, "[rule.freeze_in]\netta = 1.0\n")
    assert main(["train", "--model", str(spec), "--task", "flipflop", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "[rule.freeze_in]" in err and "'etta' (did you mean 'eta'?)" in err


def test_per_rule_local_training_tables(tmp_path):
    from bioplastic.io.specs import load_spec, run_settings

    path = tmp_path / "s.toml"
    path.write_text('[model]\nkind = "lfrnn"\n[training]\nlr = 0.001\nclip = 1.0\n'
                    '[local_training]\nlr = 0.01\n'
                    '[local_training.eprop]\nlr = 0.1\n'
                    '[local_training.node_perturbation]\nlr = 0.003\nbatch_size = 64\n')
    spec = load_spec(path)
    assert run_settings(spec, task="flipflop", rule="eprop+tcr_stp")["training"] == {"lr": 0.1, "clip": 1.0}
    assert run_settings(spec, task="flipflop", rule="node_perturbation")["training"] == {
        "lr": 0.003, "clip": 1.0, "batch_size": 64}
    assert run_settings(spec, task="flipflop", rule="readout")["training"] == {"lr": 0.01, "clip": 1.0}
    assert run_settings(spec, task="flipflop", rule="bptt")["training"] == {"lr": 0.001, "clip": 1.0}
    path.write_text('[model]\nkind = "lfrnn"\n[local_training.epropp]\nlr = 0.1\n')
    with pytest.raises(UnknownNameError, match="did you mean 'eprop'"):
        load_spec(path)
    path.write_text('[model]\nkind = "lfrnn"\n[local_training.eprop]\nlrr = 0.1\n')
    with pytest.raises(ConfigError, match="lrr"):
        load_spec(path)


def test_shipped_lfrnn_spec_learns_the_flipflop_with_eprop_tcr_stp_freeze_in(tmp_path, capsys):
    # Issue 8: the documented command learns as shipped (seed 1: criterion at 130 on 2026-12-07).
    assert main(["train", "--model", "lfrnn", "--task", "flipflop", "--rule", "eprop+tcr_stp+freeze_in",
                 "--seed", "1", "--out", str(tmp_path), "--no-progress"]) == 0
    data = read_run(tmp_path / "run.h5")
    assert data.status == "converged"
    rule = data.config["training"]["rule"]
    assert [r["name"] for r in rule["rules"]] == ["eprop", "tcr_stp", "freeze_in"]
    assert data.config["training"]["lr"] == 0.1 and rule["rules"][2]["eta"] == 0.1
