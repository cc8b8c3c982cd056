"""The bad-input suite (SPEC 12, issue 17 item 7): every case ends in one line naming the problem.

A probe of whole classes of mistakes, end to end, rather than of one
function: each CLI case runs ``bioplastic.cli.main(argv)`` in-process in a
fresh folder holding only the files the case needs (a tiny spec, small real
run files and damaged copies of them: truncated, foreign HDF5, random bytes,
NaN in a checkpoint, another schema version...), and checks that

- the exit code is 2;
- stderr is exactly one line, ``bioplastic COMMAND: error: ...`` containing
  the words that name the problem (for argparse's own errors, one error line
  after its usage block);
- no traceback is printed;
- the folder is byte for byte as before: every input file unchanged and
  nothing new left behind (no output folder, no half-written or ``.tmp``
  file).

Each Python API case calls a public function with one bad argument and
expects a :class:`~bioplastic.errors.BioplasticError` whose message is one
line naming the problem, again with the folder unchanged.

Cases marked ``xfail`` are known bugs (a traceback, a silent acceptance, a
damaged or left-over file, a message that does not name the problem); each
becomes a passing case once fixed (``strict``: remove the mark then).
"""
import contextlib
import hashlib
import io
import shlex
import shutil

import h5py
import numpy as np
import pytest

import bioplastic as bp
import bioplastic.training.loop as loop
from bioplastic.cli import main
from bioplastic.errors import BioplasticError, ConfigError, SchemaError, ShapeError, UnknownNameError

#: The spec every small run is trained from: 2 iterations, a checkpoint each.
SPEC = """
[model]
kind = "lfrnn"
n_units = 8

[task]
name = "flipflop"
n_steps = 20

[training]
iterations = 2
batch_size = 4
eval_batch_size = 8
memory_test = false
checkpoint_every = 1
"""

#: A sweep spec over SPEC that would be valid; cases break one thing in it.
SWEEP = SPEC + '\n[sweep]\nseeds = 1\n\n[grid]\n"model.g" = [1.0]\n'


def _edit(path, change):
    with h5py.File(path, "r+") as f:
        change(f)


def _set_nan(dataset_path, index=(0, 0), value=np.nan):
    def change(f):
        f[dataset_path][index] = value
    return change


def _last_checkpoint(f):
    return "checkpoints/" + sorted(f["checkpoints"])[-1]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Small run files, trained once, and damaged copies of them: name -> path."""
    root = tmp_path_factory.mktemp("store")
    spec = root / "spec.toml"
    spec.write_text(SPEC)
    lstm = root / "lstm.toml"
    lstm.write_text(SPEC.replace('kind = "lfrnn"', 'kind = "lstm"'))
    long = root / "long.toml"  # long enough (>= 20 history points) for `analyze` to get to its outputs
    long.write_text(SPEC.replace("iterations = 2", "iterations = 24").replace("checkpoint_every = 1",
                                                                             "checkpoint_every = 12"))
    six = root / "six.toml"
    six.write_text(SPEC.replace("iterations = 2", "iterations = 6"))
    base = ["--seed", "0", "--no-progress"]
    with contextlib.redirect_stdout(io.StringIO()):
        for out, model, extra in (("run", spec, ["--record"]), ("norec", spec, []), ("lstm", lstm, ["--record"]),
                                  ("long", long, ["--no-early-stop"])):
            assert main(["train", "--model", str(model), "--out", str(root / out), *base, *extra]) == 0
        # an interrupted run (resume state at iteration 3), as a Ctrl-C leaves it
        real, calls = loop.clip_by_global_norm, {"n": 0}

        def flaky(*a, **k):
            calls["n"] += 1
            if calls["n"] == 4:
                raise KeyboardInterrupt
            return real(*a, **k)

        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(loop, "clip_by_global_norm", flaky)
            assert main(["train", "--model", str(six), "--out", str(root / "running"), *base]) == 130
        from bioplastic.export.nwb import export_nwb

        export_nwb(root / "run" / "run.h5", root / "data.nwb")
    files = {"spec.toml": spec, "lstm.toml": lstm, "data.nwb": root / "data.nwb"}
    for name in ("run", "norec", "lstm", "long", "running"):
        files[f"{name}.h5"] = root / name / "run.h5"
    run = files["run.h5"].read_bytes()

    def variant(name, change, source="run.h5"):
        path = root / name
        shutil.copyfile(files[source], path)
        _edit(path, change)
        files[name] = path

    for name, data in (("trunc.h5", run[: len(run) // 2]), ("trunc_header.h5", run[:600]),
                       ("random.h5", np.random.default_rng(0).bytes(4096)), ("empty.h5", b"")):
        (root / name).write_bytes(data)
        files[name] = root / name
    with h5py.File(root / "foreign.h5", "w") as f:  # an HDF5 file some other program wrote
        f["x"] = np.random.default_rng(1).normal(size=(10, 3))
        f.create_group("params")["W"] = np.zeros((8, 8))
        f.attrs["creator"] = "not bioplastic"
    files["foreign.h5"] = root / "foreign.h5"
    variant("v2.h5", lambda f: f.attrs.__setitem__("schema_version", 2))
    variant("otherschema.h5", lambda f: f.attrs.__setitem__("schema", "bioplastic.analysis"))
    variant("nanckpt.h5", lambda f: _set_nan(_last_checkpoint(f) + "/W")(f))
    variant("nanparams.h5", _set_nan("params/W"))
    variant("noconfig.h5", lambda f: f.attrs.__delitem__("config"))
    variant("badjson.h5", lambda f: f.attrs.__setitem__("config", "{not json"))
    variant("nockpt.h5", lambda f: [f["checkpoints"].__delitem__(k) for k in list(f["checkpoints"])])
    variant("nohist.h5", lambda f: f.__delitem__("history"))
    variant("running_nanckpt.h5", lambda f: _set_nan(_last_checkpoint(f) + "/W")(f), "running.h5")
    variant("running_infckpt.h5", lambda f: _set_nan(_last_checkpoint(f) + "/W_out", value=np.inf)(f),
            "running.h5")
    variant("running_nanopt.h5", _set_nan("resume/optimizer/_m/W"), "running.h5")
    variant("running_v2.h5", lambda f: f.attrs.__setitem__("schema_version", 2), "running.h5")
    return files


def snapshot(root):
    """Every file and folder under ``root``: relative path -> sha256 (or "<dir>")."""
    return {p.relative_to(root).as_posix(): "<dir>" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*"))}


def changes(before, after) -> str:
    """What differs between two snapshots, for the assertion message ("" if nothing)."""
    parts = [f"{what}: {sorted(paths)}" for what, paths in (
        ("left behind", after.keys() - before.keys()), ("removed", before.keys() - after.keys()),
        ("changed", {k for k in before.keys() & after.keys() if before[k] != after[k]})) if paths]
    return "; ".join(parts)


def materialise(root, store, files=(), texts=None, dirs=()):
    """Copy store files (``name`` or ``dest=name``), write ``texts`` (str or bytes), make ``dirs``."""
    for item in files:
        dest, _, name = item.partition("=")
        target = root / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(store[name or dest], target)
    for name, text in (texts or {}).items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    for name in dirs:
        (root / name).mkdir(parents=True, exist_ok=True)


# -- the CLI cases --------------------------------------------------------------------------------------------

TRAIN = "train --model spec.toml --out o --seed 0 --no-progress"


def cli(case_id, argv, expect, *, files=(), texts=None, dirs=(), bug=None, patch=None):
    """One CLI case: ``argv`` (a shell-like string), the words the error must contain, the folder's content."""
    marks = [pytest.mark.xfail(strict=True, reason=f"bug: {bug}")] if bug else []
    return pytest.param(argv, expect, tuple(files), texts or {}, tuple(dirs), patch, id=case_id, marks=marks)


def train(case_id, extra, expect, *, files=(), texts=None, **kw):
    return cli(f"train-{case_id}", f"{TRAIN} {extra}", expect, files=files, texts={"spec.toml": SPEC, **(texts or {})},
               **kw)


def spec_file(case_id, text, expect, **kw):
    """``bioplastic train`` with a broken spec file."""
    return cli(f"spec-{case_id}", "train --model bad.toml --out o --no-progress", expect,
               texts={"bad.toml": text}, **kw)


def sweep(case_id, text, expect, extra="", **kw):
    """``bioplastic sweep`` with a broken sweep file."""
    return cli(f"sweep-{case_id}", f"sweep s.toml --out o --no-progress --workers 1 {extra}", expect,
               texts={"s.toml": text}, **kw)


def _benchmark_must_not_run(monkeypatch):
    import bioplastic.bench

    def refuse(*a, **k):
        raise RuntimeError("the benchmark ran before its --json path was checked")
    monkeypatch.setattr(bioplastic.bench, "run_benchmark", refuse)


RUN_FILES = ("trunc.h5", "trunc_header.h5", "random.h5", "empty.h5", "foreign.h5", "v2.h5")
#: what the error names for each damaged file, whatever the command reading it
DAMAGE = {"trunc.h5": "'trunc.h5' is not a readable HDF5 file (Unable to synchronously open file (truncated file",
          "trunc_header.h5": "'trunc_header.h5' is not a readable HDF5 file",
          "random.h5": "'random.h5' is not a readable HDF5 file",
          "empty.h5": "'empty.h5' is not a readable HDF5 file",
          "foreign.h5": "'foreign.h5' is not a bioplastic run file (schema attribute None, expected 'bioplastic.run')",
          "v2.h5": "run file 'v2.h5' has schema version 2; this bioplastic",
          "missing.h5": "run file 'missing.h5' does not exist"}


def damaged(command, fmt, names=(*RUN_FILES, "missing.h5")):
    """The same command on each damaged run file (and on a missing one)."""
    return [cli(f"{command}-{name[:-3]}", fmt.format(name), DAMAGE[name], files=[name] if name in RUN_FILES else [])
            for name in names]


CLI_CASES = [
    # -- train: names, --set forms, wrong types, out-of-range values ---------------------------------------------
    train("unknown-task", "--task flipflip", "unknown task 'flipflip'"),
    train("unknown-rule-part", "--rule eprop+nosuch", "unknown rule 'nosuch'"),
    train("unknown-model-kind", "--set model.kind=nosuch", "[model] kind: unknown model 'nosuch'"),
    train("set-without-equals", "--set model.n_units", "--set 'model.n_units': no '='"),
    train("set-empty-key", "--set =3", "--set '=3': '' is not SECTION.KEY"),
    train("set-without-section", "--set model=3", "--set 'model=3': 'model' is not SECTION.KEY"),
    train("set-unknown-section", "--set modle.n_units=3", "unknown section: 'modle' (did you mean 'model'?)"),
    train("set-unknown-key", "--set model.n_unitz=3", "'n_unitz' (did you mean 'n_units'?)"),
    train("set-into-a-value", "--set training.memory_test.n_trials=0",
          "'training.memory_test' is False, not a table, so it has no keys to set"),
    train("n-units-zero", "--set model.n_units=0", "n_units must be a positive integer, got 0"),
    train("n-units-negative", "--set model.n_units=-4", "n_units must be a positive integer, got -4"),
    train("n-units-bool", "--set model.n_units=true", "model.n_units must be an integer, got True"),
    train("tau-zero", "--set model.tau=0", "tau must be positive and finite, got 0"),
    train("dt-nan", "--set model.dt=nan", "dt must be positive and finite, got nan"),
    train("nonlinearity", "--set model.nonlinearity=cube", "unknown nonlinearity 'cube'"),
    train("dtype", "--set model.dtype=int8", "dtype must be one of ('float32', 'float64'), got 'int8'"),
    train("dale-out-of-range", "--set model.dale=2", "dale (fraction excitatory) must be in (0, 1), got 2"),
    train("sparsity-nan", "--set model.sparsity=nan", "sparsity must be in [0, 1), got nan"),
    train("noise-negative", "--set model.noise_std=-1", "noise_std must be >= 0, got -1"),
    train("input-scale-string", "--set model.input_scale=x", "model.input_scale must be a number, got 'x'"),
    train("trainable-unknown", "--set 'model.trainable=[\"Q\"]'", "lfrnn: cannot train ['Q']"),
    train("task-n-steps-zero", "--set task.n_steps=0", "[task]: n_steps must be >= 10, got 0"),
    train("task-n-bits-zero", "--set task.n_bits=0", "[task]: n_bits must be >= 1, got 0"),
    train("task-name-number", "--set task.name=3", "[task] name must be a task name (a string), got 3"),
    train("task-pulse-prob", "--set task.pulse_prob=2", "pulse_prob must be in [0, 1], got 2"),
    train("task-criterion", "--set task.criterion=3", "criterion must be in [0, 1], got 3"),
    train("task-dt-zero", "--set task.dt=0", "[task]: dt must be positive and finite, got 0"),
    train("task-setting-of-another-task", "--task delayed_addition --set task.n_bits=2",
          "unknown setting(s) for task 'delayed_addition': 'n_bits'"),
    train("lr-negative", "--set training.lr=-1", "lr must be positive and finite, got -1"),
    train("lr-nan", "--set training.lr=nan", "lr must be positive and finite, got nan"),
    train("lr-word", "--set training.lr=fast", "lr must be a number, got 'fast'"),
    train("optimizer", "--set training.optimizer=adamw", "unknown optimizer 'adamw'"),
    train("batch-size-zero", "--set training.batch_size=0", "batch_size must be a positive integer, got 0"),
    train("eval-batch-negative", "--set training.eval_batch_size=-1",
          "eval_batch_size must be a positive integer, got -1"),
    train("iterations-fraction", "--set training.iterations=1.5",
          "iterations must be a non-negative integer, got 1.5"),
    train("clip-negative", "--set training.clip=-1", "clip must be > 0 or None, got -1"),
    train("lambda-tcr-nan", "--set training.lambda_tcr=nan", "lambda_TCR value must be finite and >= 0, got nan"),
    train("schedule-unknown", "--set 'training.lambda_tcr={kind = \"nosuch\"}'",
          "unknown lambda_TCR schedule 'nosuch'"),
    train("schedule-negative-length", "--set 'training.lambda_tcr={kind = \"linear\", value = 1, iterations = -5}'",
          "lambda_tcr: iterations must be finite and >= 0, got -5"),
    train("training-unknown-key", "--set training.nosuch=1", "[training]: unknown key(s): 'nosuch'"),
    train("criterion-threshold-word", "--set training.criterion.threshold=x",
          "criterion threshold must be a number, got 'x'"),
    train("record-unknown-series", "--set record.what=nosuch", "cannot record 'nosuch' from a 'lfrnn' network"),
    train("record-no-trials", "--set record.n_trials=0", "Recording.n_trials must be a positive integer, got 0"),
    train("record-at", "--set record.at=nosuch", "Recording.at must be 'checkpoints', 'final' or a list"),
    train("nwb-unknown-key", "--set nwb.nosuch=1", "[nwb]: unknown key(s): 'nosuch'"),
    train("nwb-species-number", "--set nwb.species=3", "species must be a non-empty string, got 3"),
    train("record-flag-unknown-series", "--record rates,nosuch", "cannot record 'nosuch' from a 'lfrnn' network"),
    train("record-flag-with-local-rule", "--record rates,nosuch --rule eprop",
          "cannot record 'nosuch' from a 'lfrnn' network"),
    train("tcr-nan", "--tcr nan", "lambda_TCR value must be finite and >= 0, got nan"),
    train("tcr-inf", "--tcr inf", "lambda_TCR value must be finite and >= 0, got inf"),
    train("tcr-word", "--tcr abc", "argument --tcr: invalid float value: 'abc'"),
    train("seed-fraction", "--seed 1.5", "argument --seed: invalid int value: '1.5'"),
    train("checkpoint-every-negative", "--checkpoint-every -1",
          "--checkpoint-every must be a positive integer, got -1"),
    train("continue-after-negative", "--continue-after -1", "--continue-after must be a non-negative integer, got -1"),
    train("tcr-with-a-rule-without-tcr-stp", "--rule eprop --tcr 2",
          "lambda_tcr scales the TCR-STP strength, but rule 'eprop' has no 'tcr_stp' part"),
    train("local-lr-negative", "--rule eprop --set local_training.lr=-1", "lr must be positive and finite, got -1"),
    train("eprop-feedback", "--rule eprop --set rule.eprop.feedback=nosuch",
          "eprop feedback must be one of ('symmetric', 'random'), got 'nosuch'"),
    train("tcr-stp-eta-negative", "--rule eprop+tcr_stp --set rule.tcr_stp.eta_s=-1",
          "tcr_stp eta_s must be finite and >= 0, got -1"),
    train("tcr-stp-tau-zero", "--rule eprop+tcr_stp --set rule.tcr_stp.tau_s=0", "tcr_stp tau_s must be > 0"),
    cli("train-rule-cannot-train-model", "train --model lstm.toml --out o --seed 0 --no-progress --rule eprop",
        "rule 'eprop' supports models lfrnn, rank1, plrnn; got a 'lstm' network", files=["lstm.toml"]),
    cli("train-no-out", "train --model spec.toml --seed 0", "--out required (or --resume RUN.h5)",
        files=["spec.toml"]),
    cli("train-nothing", "train", "--model, --out required (or --resume RUN.h5)"),
    cli("train-out-empty", "train --model spec.toml --out '' --seed 0", "--out is empty", files=["spec.toml"]),
    cli("train-out-is-a-file", "train --model spec.toml --out spec.toml --seed 0",
        "--out 'spec.toml' is a file, not a folder", files=["spec.toml"]),
    cli("train-out-holds-a-run", "train --model spec.toml --out o --seed 0 --no-progress",
        "'o/run.h5' exists; use --resume o/run.h5 to continue it or --overwrite",
        files=["spec.toml", "o/run.h5=run.h5"]),
    # settings only the training loop used to check (refused after OUT was created), a single trainable name
    train("checkpoint-at-out-of-range", "--set 'training.checkpoint_at=[1, 99]'",
          "checkpoint iteration 99 outside [0, 2]"),
    train("tcr-on", "--set training.tcr_on=nosuch", "tcr_on must be one of ('rates', 'states')"),
    train("tcr-epoch", "--tcr 0.1 --set training.tcr_epoch=nosuch", "task has no epoch 'nosuch'"),
    train("input-scale-nan", "--set model.input_scale=nan", "input_scale"),
    train("trainable-string", "--set 'model.trainable=\"Q_in\"'", "'Q_in'"),
    train("gain-inf", "--set model.g=inf", "finite"),

    # -- spec files -------------------------------------------------------------------------------------------
    spec_file("typo-section", SPEC + "\n[modle]\nn_units = 3\n", "unknown section(s): 'modle' (did you mean 'model'?)"),
    spec_file("typo-key", SPEC.replace("n_units = 8", "n_unit = 8"), "'n_unit' (did you mean 'n_units'?)"),
    spec_file("wrong-type", SPEC.replace("n_units = 8", 'n_units = "eight"'),
              "model.n_units must be an integer, got 'eight' (bad.toml)"),
    spec_file("toml-syntax", SPEC.replace("n_units = 8", "n_units = "), "bad.toml: not valid TOML (Invalid value"),
    spec_file("duplicate-key", SPEC.replace("n_units = 8", "n_units = 8\nn_units = 9"),
              "bad.toml: not valid TOML (Cannot overwrite a value"),
    spec_file("empty", "", "bad.toml: needs a [model] table with a 'kind'"),
    spec_file("no-model", '[task]\nname = "flipflop"\n', "bad.toml: needs a [model] table with a 'kind'"),
    spec_file("kind-typo", SPEC.replace('kind = "lfrnn"', 'kind = "lfrn"'),
              "[model] kind: unknown model 'lfrn'; did you mean 'lfrnn'?"),
    spec_file("lr-word", SPEC.replace("iterations = 2", 'iterations = 2\nlr = "fast"'),
              "lr must be a number, got 'fast'"),
    spec_file("unknown-rule-table", SPEC + "\n[rule.nosuch]\neta = 1\n",
              "bad.toml [rule.nosuch]: unknown rule 'nosuch'"),
    spec_file("seed-word", SPEC.replace("iterations = 2", 'iterations = 2\nseed = "x"'),
              "seed must be an integer in [0, 2**64 - 1]"),
    spec_file("not-utf8", b"\xff\xfe[model]\x00\xee kind", "not UTF-8 text"),
    cli("spec-missing", "train --model missing.toml --out o --seed 0", "no model 'missing.toml'"),

    # -- train --resume: conflicts, damaged run files ---------------------------------------------------------------
    cli("resume-with-set", "train --resume running.h5 --set model.n_units=4",
        "--set changes a spec; a resumed run takes its settings from the run file", files=["running.h5"]),
    cli("resume-with-record", "train --resume running.h5 --record",
        "--record changes what a run records; a resumed run records what it started with", files=["running.h5"]),
    cli("resume-with-overwrite", "train --resume running.h5 --overwrite",
        "--overwrite replaces OUT/run.h5 of a new run; a resumed run continues its file", files=["running.h5"]),
    cli("resume-unknown-task", "train --resume running.h5 --task nosuch", "unknown task 'nosuch'",
        files=["running.h5"]),
    cli("resume-unknown-rule", "train --resume running.h5 --rule nosuch", "unknown rule 'nosuch'",
        files=["running.h5"]),
    cli("resume-finished-run", "train --resume run.h5 --no-progress",
        "run file 'run.h5' has no resume state (status 'max_iterations')", files=["run.h5"]),
    cli("resume-flag-on-foreign-file", "train --resume foreign.h5 --seed 3", DAMAGE["foreign.h5"],
        files=["foreign.h5"]),
    cli("resume-other-schema-version", "train --resume running_v2.h5 --no-progress",
        "run file 'running_v2.h5' has schema version 2", files=["running_v2.h5"]),
    cli("resume-nan-checkpoint", "train --resume running_nanckpt.h5 --no-progress",
        "params['W'] contains 1 non-finite value(s) (NaN or inf)", files=["running_nanckpt.h5"]),
    cli("resume-inf-checkpoint", "train --resume running_infckpt.h5 --no-progress",
        "params['W_out'] contains 1 non-finite value(s) (NaN or inf)", files=["running_infckpt.h5"]),
    *damaged("resume", "train --resume {} --no-progress"),
    cli("resume-nan-optimizer-state", "train --resume running_nanopt.h5 --no-progress", "optimizer",
        files=["running_nanopt.h5"]),
    cli("resume-folder", "train --resume folder.h5 --no-progress", "'folder.h5' is a folder", dirs=["folder.h5"]),

    # -- run -------------------------------------------------------------------------------------------------------
    cli("run-protocol-typo", "run abrupt_learnin --out o",
        "no protocol 'abrupt_learnin'; did you mean 'abrupt_learning'?"),
    cli("run-protocol-missing-file", "run missing.py --out o", "no protocol 'missing.py'"),
    cli("run-set-unknown", "run abrupt_learning --out o --set nosuch=1",
        "protocol 'abrupt_learning' has no setting: 'nosuch'"),
    cli("run-set-word", "run abrupt_learning --out o --set seeds=x", "seeds must be an integer, got 'x'"),
    cli("run-set-without-equals", "run abrupt_learning --out o --set noeq", "--set 'noeq': no '='"),
    cli("run-seeds-word", "run abrupt_learning --out o --seeds x", "argument --seeds: invalid int value: 'x'"),
    cli("run-out-is-a-file", "run abrupt_learning --quick --out spec.toml",
        "cannot create output folder 'spec.toml'", files=["spec.toml"]),
    cli("run-seeds-zero", "run abrupt_learning --out o --seeds 0", "--seeds must be >= 1, got 0"),
    cli("run-seeds-negative", "run abrupt_learning --out o --seeds -1", "--seeds must be >= 1, got -1"),
    cli("run-workers-zero", "run abrupt_learning --out o --workers 0", "workers must be a positive integer, got 0"),
    cli("run-workers-negative", "run abrupt_learning --out o --workers -2",
        "workers must be a positive integer, got -2"),
    cli("run-protocol-not-python", "run spec.toml --out o", "spec.toml", files=["spec.toml"]),
    cli("run-bad-scheduler", "run abrupt_learning --quick --out o --scheduler notanaddress", "notanaddress"),

    # -- sweep ---------------------------------------------------------------------------------------------------
    cli("sweep-missing", "sweep missing.toml --out o", "sweep spec 'missing.toml' does not exist"),
    sweep("toml-syntax", SWEEP.replace("[grid]", "[grid"), "s.toml: not valid TOML (Expected ']'"),
    sweep("empty", "", "s.toml: needs a [model] table"),
    sweep("unknown-section", SWEEP + "\n[swep]\nseeds = 1\n", "unknown section(s): 'swep' (did you mean 'sweep'?)"),
    sweep("unknown-key", SWEEP.replace("seeds = 1", "seedz = 1"),
          "[sweep]: unknown key(s): 'seedz' (did you mean 'seeds'?)"),
    sweep("grid-not-a-list", SWEEP.replace('"model.g" = [1.0]', '"model.g" = 1.0'),
          "[grid]: 'model.g' needs a non-empty list of values"),
    sweep("grid-empty-list", SWEEP.replace('"model.g" = [1.0]', '"model.g" = []'),
          "[grid]: 'model.g' needs a non-empty list of values"),
    sweep("grid-unknown-key", SWEEP.replace('"model.g"', '"model.gg"'), "'gg' (did you mean 'g'?)"),
    sweep("grid-table", SWEEP.replace('"model.g" = [1.0]', "model = {g = [1.0]}"),
          "[grid]: key 'model' must be SECTION.KEY"),
    sweep("grid-wrong-type", SWEEP.replace('"model.g" = [1.0]', '"model.n_units" = ["many"]'),
          "model.n_units must be an integer, got 'many'"),
    sweep("seeds-negative", SWEEP.replace("seeds = 1", "seeds = -2"),
          "[sweep] seeds must be a number of seeds (>= 1) or a list of seeds, got -2"),
    sweep("seeds-zero", SWEEP.replace("seeds = 1", "seeds = 0"), "[sweep] seeds must be a number of seeds (>= 1)"),
    sweep("seeds-word", SWEEP.replace("seeds = 1", 'seeds = "three"'),
          "[sweep] seeds must be a number of seeds (>= 1) or a list of seeds, got 'three'"),
    sweep("seeds-fraction", SWEEP.replace("seeds = 1", "seeds = 2.5"), "got 2.5"),
    sweep("no-task", SWEEP.replace('name = "flipflop"\n', ""), "s.toml: no task; set name = \"...\" in [task]"),
    sweep("unknown-rule", SWEEP + '\n[rule]\nname = "nosuch"\n', "[rule] name: unknown rule 'nosuch'"),
    sweep("seed-in-training", SWEEP.replace("[training]\n", "[training]\nseed = 3\n"),
          "[training]: 'seed' is set per job by [sweep] seeds"),
    sweep("set-seeds-negative", SWEEP, "(after --set) [sweep] seeds must be a number of seeds (>= 1)",
          extra="--set sweep.seeds=-1"),
    cli("sweep-out-is-a-file", "sweep s.toml --out spec.toml --no-progress", "cannot create output folder 'spec.toml'",
        texts={"s.toml": SWEEP, "spec.toml": SPEC}),
    sweep("grid-value-out-of-range", SWEEP.replace('"model.g" = [1.0]', '"model.n_units" = [-4]'),
          "n_units must be a positive integer, got -4"),
    sweep("seeds-list-negative", SWEEP.replace("seeds = 1", "seeds = [0, -1]"), "got -1"),
    sweep("seeds-duplicated", SWEEP.replace("seeds = 1", "seeds = [1, 1]"), "seeds"),
    sweep("workers-word", SWEEP.replace("seeds = 1", 'seeds = 1\nworkers = "x"'), "workers",
          extra="--workers 0"),
    cli("sweep-workers-zero", "sweep s.toml --out o --no-progress --workers 0", "workers",
        texts={"s.toml": SWEEP}),
    sweep("not-utf8", b"\xff\xfe[model]\x00\xee", "not UTF-8 text"),
    cli("sweep-folder", "sweep specs --out o", "'specs' is a folder", dirs=["specs"]),
    sweep("bad-scheduler", SWEEP, "notanaddress", extra="--scheduler notanaddress"),

    # -- analyze -------------------------------------------------------------------------------------------------
    *damaged("analyze", "analyze {} --no-figures --no-progress"),
    cli("analyze-other-schema", "analyze otherschema.h5 --no-figures",
        "(schema attribute 'bioplastic.analysis', expected 'bioplastic.run')", files=["otherschema.h5"]),
    cli("analyze-nan-checkpoint", "analyze nanckpt.h5 --no-figures --no-progress --n-init 4",
        "checkpoint 2 of 'nanckpt.h5': params['W'] contains 1 non-finite value(s)", files=["nanckpt.h5"]),
    cli("analyze-no-config", "analyze noconfig.h5 --no-figures", "run file 'noconfig.h5' lacks config",
        files=["noconfig.h5"]),
    cli("analyze-corrupt-config", "analyze badjson.h5 --no-figures",
        "run file 'badjson.h5' has a corrupt config attribute (not valid JSON", files=["badjson.h5"]),
    cli("analyze-no-checkpoints", "analyze nockpt.h5 --no-figures",
        "run file 'nockpt.h5' has no checkpoints: train with checkpoint_every=K", files=["nockpt.h5"]),
    cli("analyze-no-history", "analyze nohist.h5 --no-figures", "run file 'nohist.h5' lacks /history",
        files=["nohist.h5"]),
    cli("analyze-a-spec", "analyze spec.toml --no-figures", "'spec.toml' is not a readable HDF5 file",
        files=["spec.toml"]),
    cli("analyze-n-init-zero", "analyze run.h5 --n-init 0", "--n-init must be >= 1, got 0", files=["run.h5"]),
    cli("analyze-unknown-epoch", "analyze run.h5 --no-figures --no-progress --n-init 4 --epoch nosuch",
        "task 'flipflop' has no epoch 'nosuch'", files=["run.h5"]),
    cli("analyze-inputs-choice", "analyze run.h5 --inputs bad", "argument --inputs: invalid choice: 'bad'",
        files=["run.h5"]),
    cli("analyze-too-short", "analyze run.h5 --no-figures --no-progress --n-init 4",
        "a loss curve needs at least 20 points to find a plateau and a drop, got 3", files=["run.h5"]),
    cli("analyze-analysis-file-in-a-file", "analyze long.h5 --no-figures --no-progress --n-init 4 "
        "--analysis-file spec.toml/x.h5", "'spec.toml' is a file, not a folder", files=["long.h5", "spec.toml"]),
    cli("analyze-folder", "analyze folder.h5 --no-figures", "'folder.h5' is a folder", dirs=["folder.h5"]),
    cli("analyze-analysis-file-is-a-folder", "analyze long.h5 --no-figures --no-progress --n-init 4 "
        "--analysis-file folder", "folder", files=["long.h5"], dirs=["folder"]),
    cli("analyze-analysis-file-is-the-run", "analyze long.h5 --no-figures --no-progress --n-init 4 "
        "--analysis-file long.h5", "long.h5", files=["long.h5"]),
    cli("analyze-figure-folder-is-a-file", "analyze long.h5 --no-progress --n-init 4 --out spec.toml",
        "cannot create figure folder 'spec.toml'", files=["long.h5", "spec.toml"]),

    # -- export nwb ------------------------------------------------------------------------------------------------
    *damaged("nwb", "export nwb {} out.nwb"),
    cli("nwb-checkpoints-word", "export nwb run.h5 out.nwb --checkpoints first",
        "checkpoints must be 'all', 'last' or iterations like '500,1000', got 'first'", files=["run.h5"]),
    cli("nwb-checkpoints-not-recorded", "export nwb run.h5 out.nwb --checkpoints 99",
        "'run.h5' has no recording at iteration 99; recorded: [0, 1, 2]", files=["run.h5"]),
    cli("nwb-checkpoints-mixed", "export nwb run.h5 out.nwb --checkpoints 1,abc", "got '1,abc'", files=["run.h5"]),
    cli("nwb-checkpoints-negative", "export nwb run.h5 out.nwb --checkpoints -1",
        "non-negative iterations, got [-1]", files=["run.h5"]),
    cli("nwb-out-exists", "export nwb run.h5 out.nwb", "'out.nwb' exists; pass overwrite=True (CLI --force)",
        files=["run.h5", "out.nwb=data.nwb"]),
    cli("nwb-out-folder-missing", "export nwb run.h5 nowhere/out.nwb", "output folder 'nowhere' does not exist",
        files=["run.h5"]),
    cli("nwb-time-unit-zero", "export nwb run.h5 out.nwb --time-unit-ms 0", "--time-unit-ms must be > 0, got 0.0",
        files=["run.h5"]),
    cli("nwb-time-unit-nan", "export nwb run.h5 out.nwb --time-unit-ms nan", "--time-unit-ms must be > 0, got nan",
        files=["run.h5"]),
    cli("nwb-no-recordings", "export nwb norec.h5 out.nwb", "run file 'norec.h5' has no recordings; train with record=",
        files=["norec.h5"]),
    cli("nwb-corrupt-config", "export nwb badjson.h5 out.nwb", "has a corrupt config attribute",
        files=["badjson.h5"]),
    cli("nwb-species-empty", "export nwb run.h5 out.nwb --species ''", "NWB species must be a non-empty string",
        files=["run.h5"]),
    cli("nwb-species-genus", "export nwb run.h5 out.nwb --species Homo", "NWB species must be a Latin binomial",
        files=["run.h5"]),
    cli("nwb-keywords-empty", "export nwb run.h5 out.nwb --keywords ''",
        "NWB keywords must be a non-empty string or list of strings", files=["run.h5"]),
    cli("nwb-no-out", "export nwb run.h5", "the following arguments are required: OUT.nwb", files=["run.h5"]),
    cli("nwb-nan-checkpoint", "export nwb nanckpt.h5 out.nwb", "non-finite", files=["nanckpt.h5"]),
    cli("nwb-out-is-the-run", "export nwb run.h5 run.h5 --force", "run.h5", files=["run.h5"]),
    cli("nwb-out-is-a-folder", "export nwb run.h5 folder --force", "folder", files=["run.h5"], dirs=["folder"]),

    # -- export brian2 -------------------------------------------------------------------------------------------
    *damaged("brian2", "export brian2 {} --out o"),
    cli("brian2-lstm-rate", "export brian2 lstm.h5 --out o", "Brian2 rate mode does not support lstm",
        files=["lstm.h5"]),
    cli("brian2-lstm-spiking", "export brian2 lstm.h5 --out o --mode spiking",
        "Brian2 spiking mode does not support lstm", files=["lstm.h5"]),
    cli("brian2-mode-choice", "export brian2 run.h5 --out o --mode quantum",
        "argument --mode: invalid choice: 'quantum'", files=["run.h5"]),
    cli("brian2-codegen-choice", "export brian2 run.h5 --out o --codegen fortran",
        "argument --codegen: invalid choice: 'fortran'", files=["run.h5"]),
    cli("brian2-no-out", "export brian2 run.h5", "the following arguments are required: --out", files=["run.h5"]),
    cli("brian2-out-not-empty", "export brian2 run.h5 --out o",
        "output folder 'o' exists and is not empty; use --force", files=["run.h5", "o/notes.txt=spec.toml"]),
    cli("brian2-out-is-a-file", "export brian2 run.h5 --out spec.toml",
        "output path 'spec.toml' exists and is not a folder", files=["run.h5", "spec.toml"]),
    cli("brian2-trials-zero", "export brian2 run.h5 --out o --trials 0", "--trials must be >= 1, got 0",
        files=["run.h5"]),
    cli("brian2-time-unit-zero", "export brian2 run.h5 --out o --time-unit-ms 0", "time_unit must be > 0 seconds",
        files=["run.h5"]),
    cli("brian2-lam-grid-words", "export brian2 run.h5 --out o --mode lif --lam-grid a,b",
        "--lam-grid must be comma-separated rates in Hz, got 'a,b'", files=["run.h5"]),
    cli("brian2-lif-lam-negative", "export brian2 run.h5 --out o --mode lif --lam -5",
        "lambda must be > 0 Hz, got -5.0", files=["run.h5"]),
    cli("brian2-lif-n-per-unit-zero", "export brian2 run.h5 --out o --mode lif --n-per-unit 0",
        "n_per_unit must be a positive integer, got 0", files=["run.h5"]),
    cli("brian2-lif-tau-mem-zero", "export brian2 run.h5 --out o --mode lif --tau-mem 0",
        "tau_mem must be > 0, got 0.0", files=["run.h5"]),
    cli("brian2-nan-params", "export brian2 nanparams.h5 --out o",
        "run file 'nanparams.h5': trained parameters do not fit its lfrnn model: params['W'] contains 1 non-finite",
        files=["nanparams.h5"]),
    cli("brian2-spiking-n-per-pop-zero", "export brian2 run.h5 --out o --mode spiking --n-per-pop 0",
        "n_per_pop must be a positive integer, got 0", files=["run.h5"]),
    cli("brian2-spiking-nu-max-negative", "export brian2 run.h5 --out o --mode spiking --nu-max -5",
        "nu_max must be > 0, got -5.0", files=["run.h5"]),
    cli("brian2-spiking-dt-negative", "export brian2 run.h5 --out o --mode spiking --dt-spike -1",
        "dt_spike must be > 0, got -1.0", files=["run.h5"]),
    cli("brian2-lif-search-trials-zero", "export brian2 run.h5 --out o --mode lif --search-trials 0",
        "--search-trials", files=["run.h5"]),
    cli("brian2-folder", "export brian2 folder.h5 --out o", "'folder.h5' is a folder", dirs=["folder.h5"]),
    cli("export-unknown-format", "export csv run.h5", "argument FORMAT: invalid choice: 'csv'", files=["run.h5"]),

    # -- rules, list, bench, compare, the command itself ------------------------------------------------------
    cli("rules-check-unknown", "rules check nosuch", "unknown rule 'nosuch'"),
    cli("rules-check-unknown-part", "rules check eprop+nosuch", "unknown rule 'nosuch'"),
    cli("rules-check-empty", "rules check ''", "a rule is a registered name or a Rule object, got ''"),
    cli("rules-unknown-action", "rules nosuch", "argument ACTION: invalid choice: 'nosuch'"),
    cli("rules-check-no-name", "rules check", "the following arguments are required: name"),
    cli("list-unknown-kind", "list rules", "argument what: invalid choice: 'rules'"),
    cli("list-no-kind", "list", "the following arguments are required: what"),
    cli("bench-repeats-zero", "bench --repeats 0", "--repeats must be >= 1, got 0"),
    cli("bench-repeats-negative", "bench --quick --repeats -1", "--repeats must be >= 1, got -1"),
    cli("bench-repeats-word", "bench --repeats x", "argument --repeats: invalid int value: 'x'"),
    cli("bench-json-is-a-folder", "bench --quick --json folder", "folder", dirs=["folder"],
        patch=_benchmark_must_not_run),
    cli("bench-json-folder-missing", "bench --quick --json nowhere/b.json", "nowhere",
        patch=_benchmark_must_not_run),
    cli("compare-both-missing", "compare missing.h5 missing.nwb", "NWB file 'missing.h5' does not exist"),
    cli("compare-data-missing", "compare run.h5 missing.nwb", "NWB file 'missing.nwb' does not exist",
        files=["run.h5"]),
    cli("compare-foreign", "compare foreign.h5 run.h5", "'foreign.h5' is not a readable NWB file",
        files=["foreign.h5", "run.h5"]),
    cli("compare-random", "compare random.h5 run.h5", "'random.h5' is not a readable NWB file",
        files=["random.h5", "run.h5"]),
    cli("compare-truncated", "compare trunc.h5 run.h5", "'trunc.h5' is not a readable NWB file",
        files=["trunc.h5", "run.h5"]),
    cli("compare-other-schema-version", "compare v2.h5 run.h5", "run file 'v2.h5' has schema version 2",
        files=["v2.h5", "run.h5"]),
    cli("compare-no-recordings", "compare norec.h5 run.h5", "run file 'norec.h5' has no recordings",
        files=["norec.h5", "run.h5"]),
    cli("compare-splits-zero", "compare run.h5 run.h5 --splits 0", "--splits must be >= 1, got 0", files=["run.h5"]),
    cli("compare-window-word", "compare run.h5 data.nwb --window abc", "--window must be T0,T1 in seconds, got 'abc'",
        files=["run.h5", "data.nwb"]),
    cli("compare-series-not-recorded", "compare run.h5 run.h5 --series nosuch",
        "recorded ['outputs', 'rates', 'states'] at iteration 2, not 'nosuch'", files=["run.h5"]),
    cli("compare-checkpoint-not-recorded", "compare run.h5 run.h5 --checkpoint 99",
        "'run.h5' has no recording at iteration 99; recorded: [0, 1, 2]", files=["run.h5"]),
    cli("compare-by-unknown-column", "compare run.h5 run.h5 --by nosuch",
        "trial table has no column(s) ['nosuch'] to define conditions by", files=["run.h5"]),
    cli("compare-components-too-many", "compare run.h5 run.h5 --n-components 99",
        "n_components must be in [1, 8], got 99", files=["run.h5"]),
    cli("compare-data-series-unknown", "compare run.h5 data.nwb --data-series nosuch",
        "'data.nwb' has no TimeSeries 'nosuch'", files=["run.h5", "data.nwb"]),
    cli("compare-no-units-table", "compare run.h5 data.nwb --data-series units",
        "'data.nwb' has no units table to bin", files=["run.h5", "data.nwb"]),
    cli("compare-window-reversed", "compare run.h5 data.nwb --window 2,1", "window", files=["run.h5", "data.nwb"]),
    cli("compare-window-one-value", "compare run.h5 data.nwb --window 1", "window", files=["run.h5", "data.nwb"]),
    cli("compare-time-unit-zero", "compare run.h5 run.h5 --time-unit-ms 0", "time", files=["run.h5"]),
    cli("compare-folder", "compare folder.h5 run.h5", "'folder.h5' is a folder", files=["run.h5"],
        dirs=["folder.h5"]),
    cli("unknown-command", "trian", "argument COMMAND: invalid choice: 'trian'"),
]


def _error_lines(err, argparse_exit):
    lines = [line for line in err.splitlines() if line.strip()]
    if argparse_exit:  # argparse prints its usage block (first line 'usage:', then indented lines) first
        while lines and (lines[0].startswith("usage:") or lines[0][:1].isspace()):
            lines.pop(0)
    return lines


@pytest.mark.parametrize("argv, expect, files, texts, dirs, patch", CLI_CASES)
def test_cli_bad_input_is_one_line_and_changes_nothing(argv, expect, files, texts, dirs, patch, store, tmp_path,
                                                       monkeypatch, capsys):
    materialise(tmp_path, store, files, texts, dirs)
    monkeypatch.chdir(tmp_path)
    if patch is not None:
        patch(monkeypatch)
    before = snapshot(tmp_path)
    capsys.readouterr()
    argparse_exit = False
    try:
        rc = main(shlex.split(argv))
    except SystemExit as exc:  # argparse's own errors
        rc, argparse_exit = exc.code, True
    except Exception as exc:  # noqa: BLE001 - what a user would see as a traceback
        pytest.fail(f"traceback: {type(exc).__name__}: {exc}")
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert rc == 2, f"exit code {rc}; stderr: {err!r}"
    lines = _error_lines(err, argparse_exit)
    assert len(lines) == 1, f"not one line: {err!r}"
    assert lines[0].startswith("bioplastic") and ": error: " in lines[0], lines[0]
    assert expect in lines[0], lines[0]
    diff = changes(before, snapshot(tmp_path))
    assert not diff, diff


def test_every_command_is_probed():
    commands = {shlex.split(p.values[0])[0] for p in CLI_CASES if shlex.split(p.values[0])}
    assert {"train", "run", "sweep", "analyze", "export", "rules", "bench", "list", "compare"} <= commands


# -- the Python API ----------------------------------------------------------------------------------------------


def _net(kind="lfrnn"):
    return bp.make_network(kind, 3, 3, n_units=6)


def _params(kind="lfrnn", **nan):
    p = _net(kind).init_params(np.random.default_rng(0))
    for name, index in nan.items():
        p[name] = p[name].copy()
        p[name][index] = np.nan
    return p


def _task():
    return bp.get_task("flipflop", n_steps=12)


def _x(*shape, fill=0.0):
    return np.full(shape or (12, 4, 3), fill)


def _train(**kw):
    settings = {"iterations": 1, "seed": 0, "memory_test": False, "eval_batch_size": 4, **kw}
    return bp.train(_net(), _task(), **settings)


def _export_nwb(*a, **k):
    from bioplastic.export.nwb import export_nwb

    return export_nwb(*a, **k)


def _brian2(name, *a, **k):
    from bioplastic.export import brian2

    return getattr(brian2, name)(*a, **k)


def _analysis(name, *a, **k):
    import bioplastic.analysis

    return getattr(bioplastic.analysis, name)(*a, **k)


def _compare(name, *a, **k):
    import bioplastic.compare

    return getattr(bioplastic.compare, name)(*a, **k)


def _write_run(path="w.h5", **kw):
    fields = {"config": {}, "seed": 0, "status": "finished", "params": _params(), "history": {}, **kw}
    return bp.write_run(path, **fields)


def api(case_id, call, error, expect, *, files=(), dirs=(), bug=None):
    marks = [pytest.mark.xfail(strict=True, reason=f"bug: {bug}")] if bug else []
    return pytest.param(call, error, expect, tuple(files), tuple(dirs), id=case_id, marks=marks)


API_CASES = [
    # -- networks --
    api("make_network-unknown-kind", lambda: bp.make_network("lfrnnn", 3, 3, n_units=4), UnknownNameError,
        "unknown model 'lfrnnn'; did you mean 'lfrnn'?"),
    api("make_network-kind-none", lambda: bp.make_network(None, 3, 3, n_units=4), UnknownNameError,
        "unknown model 'None'"),
    api("make_network-n-units-zero", lambda: bp.make_network("rank1", 3, 3, n_units=0), ConfigError,
        "n_units must be a positive integer, got 0"),
    api("make_network-n-units-text", lambda: bp.make_network("lfrnn", 3, 3, n_units="8"), ConfigError,
        "n_units must be a positive integer, got '8'"),
    api("make_network-n-inputs-zero", lambda: bp.make_network("lfrnn", 0, 3, n_units=4), ConfigError,
        "n_inputs must be a positive integer, got 0"),
    api("make_network-n-outputs-negative", lambda: bp.make_network("plrnn", 3, -1, n_units=4), ConfigError,
        "n_outputs must be a positive integer, got -1"),
    api("make_network-unknown-setting", lambda: bp.make_network("lfrnn", 3, 3, n_units=4, n_unitz=4), ConfigError,
        "'n_unitz' (did you mean 'n_units'?)"),
    api("make_network-setting-of-another-kind", lambda: bp.make_network("lstm", 3, 3, n_units=4, g=1.5),
        ConfigError, "unknown setting(s) for model 'lstm': 'g'"),
    api("make_network-dt-over-tau", lambda: bp.make_network("lfrnn", 3, 3, n_units=4, tau=1.0, dt=5.0), ConfigError,
        "dt (5.0) must not exceed tau (1.0)"),
    api("make_network-dtype", lambda: bp.make_network("lfrnn", 3, 3, n_units=4, dtype="float128x"), ConfigError,
        "dtype 'float128x' is not a numpy dtype"),
    api("make_network-sparsity", lambda: bp.make_network("lfrnn", 3, 3, n_units=4, sparsity=-0.1), ConfigError,
        "sparsity must be in [0, 1), got -0.1"),
    api("make_network-trainable", lambda: bp.make_network("lfrnn", 3, 3, n_units=4, trainable=["Q"]), ConfigError,
        "lfrnn: cannot train ['Q']"),
    api("make_network-readout-from", lambda: bp.make_network("plrnn", 3, 3, n_units=4, readout_from="x"),
        ConfigError, "readout_from must be one of ('z', 'relu'), got 'x'"),
    api("init_params-seed-not-a-generator", lambda: _net().init_params(3), ConfigError,
        "rng must be a numpy.random.Generator"),
    api("make_network-input-scale-text", lambda: bp.make_network("lfrnn", 3, 3, n_units=4, input_scale="x"),
        ConfigError, "input_scale"),
    api("make_network-input-scale-nan", lambda: bp.make_network("lfrnn", 3, 3, n_units=4, input_scale=np.nan),
        ConfigError, "input_scale"),
    api("make_network-forget-bias-text", lambda: bp.make_network("lstm", 3, 3, n_units=4, forget_bias="x"),
        ConfigError, "forget_bias"),
    # -- tasks --
    api("get_task-unknown", lambda: bp.get_task("flipflopp"), UnknownNameError,
        "unknown task 'flipflopp'; did you mean 'flipflop'?"),
    api("get_task-number", lambda: bp.get_task(3), UnknownNameError, "unknown task '3'"),
    api("get_task-unknown-setting", lambda: bp.get_task("delayed_addition", n_stepz=3), ConfigError,
        "unknown setting(s) 'n_stepz' for task 'delayed_addition'"),
    api("get_task-n-bits-text", lambda: bp.get_task("flipflop", n_bits="2"), ConfigError,
        "n_bits must be an integer, got '2'"),
    api("get_task-dt-zero", lambda: bp.get_task("flipflop", dt=0), ConfigError,
        "dt must be positive and finite, got 0"),
    api("task-sample-empty-batch", lambda: _task().sample(0, np.random.default_rng(0)), ConfigError,
        "batch_size must be >= 1, got 0"),
    api("task-sample-seed-not-a-generator", lambda: _task().sample(4, 3), ConfigError,
        "rng must be a numpy.random.Generator"),
    # -- forward --
    api("forward-inputs-of-another-I", lambda: _net().forward(_params(), _x(12, 4, 2)), ShapeError,
        "inputs must have shape (?, ?, 3), got (12, 4, 2)"),
    api("forward-nan-inputs", lambda: _net().forward(_params(), _x(fill=np.nan)), ShapeError,
        "inputs contains 144 non-finite value(s) (NaN or inf)"),
    api("forward-inf-inputs", lambda: _net("rank1").forward(_params("rank1"), _x(fill=np.inf)), ShapeError,
        "inputs contains 144 non-finite value(s)"),
    api("forward-nan-params", lambda: _net().forward(_params(W=(0, 0)), _x()), ShapeError,
        "params['W'] contains 1 non-finite value(s)"),
    api("forward-nan-params-plrnn", lambda: _net("plrnn").forward(_params("plrnn", A=0), _x()), ShapeError,
        "params['A'] contains 1 non-finite value(s)"),
    api("forward-complex-inputs", lambda: _net().forward(_params(), _x().astype(complex)), ShapeError,
        "inputs must be numeric, got dtype complex128"),
    api("forward-text-inputs", lambda: _net().forward(_params(), "abc"), ShapeError,
        "inputs must be numeric, got dtype <U3"),
    api("forward-params-missing", lambda: _net().forward({"W": _params()["W"]}, _x()), ShapeError,
        "lfrnn params: missing ['W_in', 'b', 'W_out', 'b_out']"),
    api("forward-params-none", lambda: _net().forward(None, _x()), ShapeError,
        "params must be a mapping of arrays, got NoneType"),
    api("forward-nan-x0", lambda: _net().forward(_params(), _x(), x0=np.full((4, 6), np.nan)), ShapeError,
        "x0 contains 24 non-finite value(s)"),
    api("forward-empty-batch", lambda: _net().forward(_params(), _x(12, 0, 3)), ShapeError, "B"),
    # -- train --
    api("train-lr-negative", lambda: _train(lr=-1), ConfigError, "lr must be positive and finite, got -1"),
    api("train-lr-inf", lambda: _train(lr=np.inf), ConfigError, "lr must be positive and finite, got inf"),
    api("train-unknown-schedule", lambda: _train(lambda_tcr={"kind": "nosuch"}), UnknownNameError,
        "unknown lambda_TCR schedule 'nosuch'"),
    api("train-schedule-text", lambda: _train(lambda_tcr="big"), ConfigError,
        "cannot build a lambda_TCR schedule from 'big'"),
    api("train-optimizer", lambda: _train(optimizer="adamw"), UnknownNameError,
        "unknown optimizer 'adamw'; did you mean 'adam'?"),
    api("train-iterations-negative", lambda: _train(iterations=-1), ConfigError,
        "iterations must be a non-negative integer, got -1"),
    api("train-seed-text", lambda: _train(seed="a"), ConfigError, "seed must be an integer in [0, 2**64 - 1]"),
    api("train-task-name", lambda: bp.train(_net(), "flipflop", iterations=1, seed=0), ConfigError,
        "task must be a bioplastic Task, got str"),
    api("train-network-none", lambda: bp.train(None, _task(), iterations=1, seed=0), ConfigError,
        "network must be a bioplastic Network, got NoneType"),
    api("train-network-of-another-task", lambda: bp.train(bp.make_network("lfrnn", 2, 3, n_units=6), _task(),
                                                           iterations=1, seed=0), ConfigError,
        "network has 2 inputs / 3 outputs but task 'flipflop' needs 3 / 3"),
    api("train-nan-params", lambda: _train(params=_params(W=(0, 0))), ShapeError,
        "params['W'] contains 1 non-finite value(s)"),
    api("train-tcr-on", lambda: _train(tcr_on="nosuch"), ConfigError, "tcr_on must be one of ('rates', 'states')"),
    api("train-run-file-is-a-folder", lambda: _train(run_file="folder.h5"), ConfigError,
        "run file 'folder.h5' is a folder", dirs=["folder.h5"]),
    api("train-run-file-folder-missing", lambda: _train(run_file="nowhere/run.h5"), ConfigError,
        "output folder 'nowhere' of run file 'nowhere/run.h5' does not exist"),
    api("train-checkpoint-at-out-of-range", lambda: _train(checkpoint_at=[5], run_file="ck.h5"), ConfigError,
        "checkpoint iteration 5 outside [0, 1]"),
    api("train-criterion-typo", lambda: _train(criterion={"treshold": 1}), ConfigError,
        "unknown criterion setting(s) ['treshold']"),
    api("train-memory-test-typo", lambda: _train(memory_test={"factr": 2}), ConfigError,
        "unknown memory_test setting(s) ['factr']"),
    api("train-record", lambda: _train(record="nosuch"), ConfigError, "cannot build a Recording from 'nosuch'"),
    # -- run files --
    *[api(f"read_run-{name[:-3]}", lambda name=name: bp.read_run(name), SchemaError, DAMAGE[name],
          files=[name] if name in RUN_FILES else []) for name in (*RUN_FILES, "missing.h5")],
    api("read_run-corrupt-config", lambda: bp.read_run("badjson.h5"), SchemaError,
        "run file 'badjson.h5' has a corrupt config attribute", files=["badjson.h5"]),
    api("read_run-no-history", lambda: bp.read_run("nohist.h5"), SchemaError, "run file 'nohist.h5' lacks /history",
        files=["nohist.h5"]),
    api("read_run-nwb-file", lambda: bp.read_run("data.nwb"), SchemaError,
        "'data.nwb' is not a bioplastic run file", files=["data.nwb"]),
    api("read_run-folder", lambda: bp.read_run("folder.h5"), SchemaError, "'folder.h5' is a folder",
        dirs=["folder.h5"]),
    api("write_run-into-a-file", lambda: _write_run("spec.toml/w.h5"), ConfigError,
        "output folder 'spec.toml' does not exist", files=["spec.toml"]),
    api("write_run-negative-seed", lambda: _write_run(seed=-1), ConfigError, "seed"),
    api("write_run-unstorable-config", lambda: _write_run(config={"a": object()}), ConfigError, "config"),
    # -- exports --
    api("export_nwb-foreign", lambda: _export_nwb("foreign.h5", "a.nwb"), SchemaError, DAMAGE["foreign.h5"],
        files=["foreign.h5"]),
    api("export_nwb-no-recordings", lambda: _export_nwb("norec.h5", "a.nwb"), SchemaError,
        "run file 'norec.h5' has no recordings", files=["norec.h5"]),
    api("export_nwb-same-file", lambda: _export_nwb("run.h5", "run.h5"), ConfigError,
        "'run.h5' is the input file", files=["run.h5"]),
    api("export_nwb-time-unit-zero", lambda: _export_nwb("run.h5", "a.nwb", time_unit=0), ConfigError,
        "time_unit must be > 0 seconds, got 0", files=["run.h5"]),
    api("export_nwb-checkpoint-not-recorded", lambda: _export_nwb("run.h5", "a.nwb", checkpoints=[99]), SchemaError,
        "'run.h5' has no recording at iteration 99", files=["run.h5"]),
    api("export_nwb-experimenter-number", lambda: _export_nwb("run.h5", "a.nwb", experimenter=3), ConfigError,
        "NWB experimenter must be a non-empty string or list of strings, got 3", files=["run.h5"]),
    api("export_nwb-overwrite-the-run", lambda: _export_nwb("run.h5", "run.h5", overwrite=True), ConfigError,
        "run.h5", files=["run.h5"]),
    api("brian2-write_export-lstm", lambda: _brian2("write_export", "lstm.h5", "o"), ConfigError,
        "Brian2 rate mode does not support lstm", files=["lstm.h5"]),
    api("brian2-write_export-mode", lambda: _brian2("write_export", "run.h5", "o", mode="quantum"), ConfigError,
        "unknown Brian2 export mode 'quantum'; modes: rate, spiking, lif", files=["run.h5"]),
    api("brian2-write_export-codegen", lambda: _brian2("write_export", "run.h5", "o", codegen="fortran"),
        ConfigError, "codegen must be one of auto, numpy, cython, got 'fortran'", files=["run.h5"]),
    api("brian2-write_export-spiking-typo", lambda: _brian2("write_export", "run.h5", "o", mode="spiking",
                                                            spiking={"n_per_popp": 3}), ConfigError,
        "unknown spiking option(s) ['n_per_popp']", files=["run.h5"]),
    api("brian2-to_brian2_model-nan", lambda: _brian2("to_brian2_model", _net(), _params(W=(1, 1))), ShapeError,
        "params['W'] contains 1 non-finite value(s)"),
    api("brian2-to_brian2_model-lstm", lambda: _brian2("to_brian2_model", _net("lstm"), _params("lstm")),
        ConfigError, "Brian2 rate mode does not support lstm"),
    # -- analysis and comparison --
    api("find_fixed_points-nan-states", lambda: _analysis("find_fixed_points", _net(), _params(),
                                                          np.full((4, 6), np.nan)), ShapeError,
        "initial_states contain NaN or inf"),
    api("find_fixed_points-nan-params", lambda: _analysis("find_fixed_points", _net(), _params(W=(0, 1)),
                                                          np.zeros((4, 6))), ShapeError,
        "cannot analyse this lfrnn model: params['W'] contains 1 non-finite value(s)"),
    api("find_fixed_points-no-states", lambda: _analysis("find_fixed_points", _net(), _params(), np.zeros((0, 6))),
        ShapeError, "initial_states must have shape (K, 6) with K >= 1, got (0, 6)"),
    api("detect_abrupt_learning-nan-loss", lambda: _analysis("detect_abrupt_learning", np.arange(50),
                                                             np.full(50, np.nan)), ShapeError,
        "loss must be finite and positive"),
    api("detect_abrupt_learning-negative-loss", lambda: _analysis("detect_abrupt_learning", np.arange(50),
                                                                  -np.ones(50)), ShapeError,
        "loss must be finite and positive"),
    api("detect_abrupt_learning-lengths", lambda: _analysis("detect_abrupt_learning", np.arange(50), np.ones(40)),
        ShapeError, "iterations and loss must be 1-D of equal length, got (50,) and (40,)"),
    api("autocorrelation_timescales-nan", lambda: _analysis("autocorrelation_timescales", np.full((12, 4, 6), np.nan),
                                                            np.ones((12, 4), bool)), ShapeError,
        "rates contain NaN or inf inside the epoch"),
    api("analyze_run-foreign", lambda: _analysis("analyze_run", "foreign.h5"), SchemaError, DAMAGE["foreign.h5"],
        files=["foreign.h5"]),
    api("analyze_run-no-checkpoints", lambda: _analysis("analyze_run", "nockpt.h5"), SchemaError,
        "run file 'nockpt.h5' has no checkpoints", files=["nockpt.h5"]),
    api("analyze_run-n-init-zero", lambda: _analysis("analyze_run", "run.h5", n_init=0), ConfigError,
        "number of initial states must be a positive integer, got 0", files=["run.h5"]),
    api("analyze_run-inputs", lambda: _analysis("analyze_run", "run.h5", inputs="bad"), ConfigError,
        "inputs must be 'zero', 'epoch_mean' or an array, got 'bad'", files=["run.h5"]),
    api("state_spread-nan", lambda: _analysis("state_spread", np.full((4, 6), np.nan)), ShapeError, "NaN"),
    api("procrustes-nan", lambda: _compare("procrustes_distance", np.full((20, 4), np.nan), np.ones((20, 4))),
        ShapeError, "model activity contains NaN or inf"),
    api("cca-nan", lambda: _compare("cca_correlations", np.ones((20, 4)), np.full((20, 4), np.nan)), ShapeError,
        "data activity contains NaN or inf"),
    api("procrustes-no-components", lambda: _compare("procrustes_distance", np.random.default_rng(0).random((20, 4)),
                                                     np.random.default_rng(1).random((20, 4)), n_components=0),
        ShapeError, "n_components must be in [1, 4], got 0"),
    api("read_nwb-missing", lambda: bp.read_nwb("missing.nwb"), ConfigError, "NWB file 'missing.nwb' does not exist"),
    api("read_nwb-run-file-damaged", lambda: bp.read_nwb("random.h5"), SchemaError,
        "'random.h5' is not a readable NWB file", files=["random.h5"]),
    api("read_nwb-unknown-series", lambda: bp.read_nwb("data.nwb", "nosuch"), SchemaError,
        "'data.nwb' has no TimeSeries 'nosuch'", files=["data.nwb"]),
]


@pytest.mark.parametrize("call, error, expect, files, dirs", API_CASES)
def test_api_bad_input_is_one_line_and_changes_nothing(call, error, expect, files, dirs, store, tmp_path,
                                                       monkeypatch):
    materialise(tmp_path, store, files, dirs=dirs)
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    with pytest.raises(BioplasticError) as info:
        call()
    message = str(info.value)
    assert isinstance(info.value, error), f"{type(info.value).__name__}: {message}"
    assert message.strip() and "\n" not in message, repr(message)
    assert expect in message, message
    diff = changes(before, snapshot(tmp_path))
    assert not diff, diff


def test_the_suite_has_at_least_100_passing_cases():
    passing = [p for p in (*CLI_CASES, *API_CASES) if not p.marks]
    assert len(passing) >= 100, len(passing)
