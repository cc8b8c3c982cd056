"""Task and model plugins for real: pip-install the tiny package in
tests/plugin_example_models (a task, ``hold_bit``, and a plain-NumPy model,
``numpy_rnn``, declared in the ``bioplastic.tasks`` / ``bioplastic.models``
entry-point groups) and use them from the CLI, the analysis and a sweep,
in this interpreter and in fresh ones. Broken plugins warn, are skipped and,
asked for by name, say why; and the code of docs/extending.md runs.
"""
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import bioplastic as bp
from bioplastic.analysis.run_analysis import analyze_run
from bioplastic.cli import main
from bioplastic.errors import ConfigError, UnknownNameError
from bioplastic.io.specs import load_spec
from bioplastic.networks import MODELS, make_network, register_model
from bioplastic import refresh_plugins
from bioplastic.registry import PluginWarning
from bioplastic.tasks import TASKS, get_task, list_tasks, register_task

HERE = Path(__file__).parent
PLUGIN_SRC = HERE / "plugin_example_models"
DIST = "bioplastic-plugin-example-models"
LABEL = f"{DIST} 0.1.0"
MODULE = "bioplastic_plugin_example_models"
EXE = shutil.which("bioplastic") or str(Path(sys.executable).parent / "bioplastic")


def _pip(*args):
    cmd = [sys.executable, "-m", "pip", *args, "--disable-pip-version-check", "--quiet"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}"


def _console(*args, env=None, cwd=None):
    """Run ``bioplastic ARGS`` in a fresh interpreter (plugins found only through entry points)."""
    return subprocess.run([EXE, *args], capture_output=True, text=True, env=env, cwd=cwd)


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory):
    """Install a copy (so build files stay out of the repo); uninstall afterwards."""
    src = tmp_path_factory.mktemp("plugin") / "plugin_example_models"
    shutil.copytree(PLUGIN_SRC, src)
    _pip("install", "--no-deps", "--no-build-isolation", str(src))
    try:
        refresh_plugins()
        yield
    finally:
        _pip("uninstall", "-y", DIST)
        for mod in [m for m in sys.modules if m.startswith(MODULE)]:
            del sys.modules[mod]
        refresh_plugins()


def _spec(folder: Path, kind: str, **model) -> Path:
    lines = [f'kind = "{kind}"'] + [f"{k} = {v!r}" for k, v in model.items()]
    path = folder / f"{kind}_spec.toml"
    path.write_text("[model]\n" + "\n".join(lines) + "\n")
    return path


def test_plugins_are_discovered_through_their_entry_points(installed_plugin):
    eps = {(group, ep.name): ep.value for group in ("bioplastic.tasks", "bioplastic.models")
           for ep in importlib.metadata.entry_points(group=group)}
    assert eps[("bioplastic.tasks", "hold_bit")] == f"{MODULE}.tasks:HoldBit"
    assert eps[("bioplastic.models", "numpy_rnn")] == f"{MODULE}.models:NumpyRNN"
    assert "hold_bit" in list_tasks() and "numpy_rnn" in bp.list_models()
    assert TASKS.sources["hold_bit"] == LABEL and MODELS.sources["numpy_rnn"] == LABEL
    assert TASKS.sources["flipflop"] == "bioplastic"
    task = get_task("hold_bit", n_steps=16)
    net = make_network("numpy_rnn", task.n_inputs, task.n_outputs, n_units=4)
    assert type(task).__module__ == f"{MODULE}.tasks" and type(net).__module__ == f"{MODULE}.models"
    batch = task.sample(8, np.random.default_rng(0))
    assert task.accuracy(batch.targets, batch) == 1.0


def test_bioplastic_list_shows_plugins_with_their_package(installed_plugin):
    rows = {}
    for what in ("tasks", "models"):
        out = _console("list", what)
        assert out.returncode == 0, out.stderr
        rows.update((line.split(maxsplit=1) + [""])[:2] for line in out.stdout.splitlines())
    assert rows["hold_bit"] == LABEL and rows["numpy_rnn"] == LABEL
    assert rows["flipflop"] == "" and rows["lfrnn"] == ""  # built-ins: the name alone


def test_train_and_analyze_a_plugin_task_from_the_cli(installed_plugin, tmp_path):
    # plugin task and plugin model
    spec = _spec(tmp_path, "numpy_rnn", n_units=8, g=1.2)
    assert main(["train", "--model", str(spec), "--task", "hold_bit", "--seed", "1", "--iterations", "3",
                 "--out", str(tmp_path / "both"), "--no-progress"]) == 0
    data = bp.read_run(tmp_path / "both" / "run.h5")
    assert data.config["task"]["name"] == "hold_bit" and data.config["model"]["kind"] == "numpy_rnn"
    assert data.config["model"]["g"] == 1.2
    assert data.status == "max_iterations" and data.config["training"]["iterations"] == 3
    assert set(data.params) == set(MODELS.get("numpy_rnn").param_names)
    # plugin task, built-in model: the analysis rebuilds the task from the run file's config
    # (it needs 20 points of the loss curve)
    assert main(["train", "--model", "lfrnn", "--set", "model.n_units=8", "--task", "hold_bit", "--seed", "1",
                 "--iterations", "24", "--no-early-stop", "--out", str(tmp_path / "task"), "--no-progress"]) == 0
    assert main(["analyze", str(tmp_path / "task" / "run.h5"), "--n-init", "8", "--no-figures",
                 "--no-progress"]) == 0
    result = analyze_run(tmp_path / "task" / "run.h5", n_init=8)
    assert result.settings["task"] == "hold_bit" and result.settings["n_required"] == 2


def test_analyze_a_plugin_model(installed_plugin, tmp_path):
    spec = _spec(tmp_path, "numpy_rnn", n_units=6)
    assert main(["train", "--model", str(spec), "--task", "hold_bit", "--seed", "2", "--iterations", "24",
                 "--no-early-stop", "--out", str(tmp_path), "--no-progress"]) == 0
    assert len(bp.read_run(tmp_path / "run.h5").history["task_loss"]) >= 20  # enough for the analysis
    result = analyze_run(tmp_path / "run.h5", n_init=8)
    assert result.settings["model"] == "numpy_rnn"


def test_a_plugin_model_trains_by_its_kind_without_a_spec_file(installed_plugin, tmp_path):
    """`--model numpy_rnn`: no models/numpy_rnn.toml, so the kind with its defaults (and --set)."""
    assert main(["train", "--model", "numpy_rnn", "--set", "model.n_units=5", "--task", "hold_bit", "--seed", "3",
                 "--iterations", "2", "--out", str(tmp_path), "--no-progress"]) == 0
    config = bp.read_run(tmp_path / "run.h5").config
    assert config["model"]["kind"] == "numpy_rnn" and config["model"]["n_units"] == 5
    with pytest.raises(bp.UnknownNameError, match="no model 'numpy_rn'; did you mean 'numpy_rnn'"):
        load_spec("numpy_rn")


def test_sweep_over_a_plugin_task_and_model(installed_plugin, tmp_path):
    (tmp_path / "plugins.toml").write_text(textwrap.dedent("""\
        [sweep]
        seeds = 1
        workers = 1
        [model]
        kind = "numpy_rnn"
        n_units = 6
        [task]
        name = "hold_bit"
        [training]
        iterations = 2
        [grid]
        "task.n_steps" = [24]
        """))
    out = _console("sweep", str(tmp_path / "plugins.toml"), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    runs = sorted((tmp_path / "out" / "runs").glob("*.h5"))
    assert [r.name for r in runs] == ["n_steps=24_seed0.h5"]
    cfg = bp.read_run(runs[0]).config
    assert (cfg["task"]["name"], cfg["task"]["n_steps"], cfg["model"]["kind"]) == ("hold_bit", 24, "numpy_rnn")


# -- broken plugins -----------------------------------------------------------------
BROKEN_MODULE = '''
import numpy as np

from bioplastic.networks import Network
from bioplastic.networks.base import Trajectory
from bioplastic.tasks import FlipFlop


class Renamed(FlipFlop):
    name = "renamed_flipflop"       # declared as "misnamed_task"


class NoBackward(Network):
    """Forgot the adjoint."""
    kind = "no_backward"
    param_names = ("W",)

    def param_shapes(self):
        return {"W": (self.n_units, self.n_units)}

    def _init_arrays(self, rng):
        return {"W": rng.standard_normal((self.n_units, self.n_units))}, {}

    def _forward(self, params, inputs, noise, x0):  # a working forward pass: only the adjoint is missing
        x = [x0]
        for _ in range(inputs.shape[0]):
            x.append(np.tanh(x[-1] @ params["W"].T))
        states = np.stack(x)
        return Trajectory(states, states, states[1:, :, :1])
'''

BROKEN_ENTRY_POINTS = """\
[bioplastic.tasks]
broken_task = bioplastic_no_such_module:Task
misnamed_task = bioplastic_test_broken_tasks:Renamed

[bioplastic.models]
no_backward = bioplastic_test_broken_tasks:NoBackward
"""


@pytest.fixture
def broken_dist(tmp_path):
    """A folder holding an installed distribution, ``bioplastic-broken-plugins``,
    as pip lays it out (its module and its .dist-info metadata)."""
    (tmp_path / "bioplastic_test_broken_tasks.py").write_text(BROKEN_MODULE)
    info = tmp_path / "bioplastic_broken_plugins-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bioplastic-broken-plugins\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(BROKEN_ENTRY_POINTS)
    return tmp_path


def test_broken_plugins_from_the_console(broken_dist, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(broken_dist)}
    out = _console("train", "--model", "lfrnn", "--task", "broken_task", "--iterations", "2",
                   "--out", str(tmp_path / "run"), "--no-progress", env=env)
    assert out.returncode == 2
    err = out.stderr.strip().splitlines()[-1]
    assert "task 'broken_task' comes from a plugin that failed to load" in err
    assert "bioplastic_no_such_module:Task of bioplastic-broken-plugins 0.1.0" in err
    assert "ModuleNotFoundError" in err
    assert not (tmp_path / "run").exists()
    # the built-ins still work, and the listing warns about each broken plugin
    listed = _console("list", "tasks", env=env)
    assert listed.returncode == 0
    assert {"flipflop", "delayed_addition", "evidence_accumulation"} <= set(listed.stdout.split())
    assert "broken_task" not in listed.stdout
    assert "skipping bioplastic task plugin 'broken_task'" in listed.stderr
    assert "is named 'renamed_flipflop' but registered as 'misnamed_task'" in listed.stderr


@pytest.fixture
def broken_on_path(broken_dist, monkeypatch):
    monkeypatch.syspath_prepend(str(broken_dist))
    yield broken_dist
    sys.path.remove(str(broken_dist))
    sys.modules.pop("bioplastic_test_broken_tasks", None)
    refresh_plugins()


def test_broken_plugins_warn_and_are_skipped(broken_on_path):
    with pytest.warns(PluginWarning) as record:
        refresh_plugins()
    messages = [str(w.message) for w in record]
    assert any("'broken_task'" in m and "ModuleNotFoundError" in m for m in messages)
    assert any("model plugin 'no_backward'" in m and "does not implement _backward" in m for m in messages)
    assert get_task("flipflop").name == "flipflop"  # built-ins unharmed
    assert make_network("lfrnn", 1, 1, n_units=2).kind == "lfrnn"
    with pytest.raises(UnknownNameError, match=r"task 'broken_task' comes from a plugin that failed to load: "
                                               r"entry point 'broken_task' = bioplastic_no_such_module:Task of "
                                               r"bioplastic-broken-plugins 0\.1\.0 \(group bioplastic\.tasks\)"):
        get_task("broken_task")
    with pytest.raises(UnknownNameError, match="model 'no_backward' comes from a plugin.*_backward"):
        make_network("no_backward", 1, 1, n_units=2)
    with pytest.raises(UnknownNameError, match="unknown task 'flipflp'; did you mean 'flipflop'.*"
                                               "plugins that failed to load: broken_task"):
        get_task("flipflp")


def test_register_checks_the_contract():
    from bioplastic.networks import Network

    class Half(Network):
        kind = "half"
        param_names = ("W",)

    with pytest.raises(ConfigError, match="does not implement .*_backward"):
        register_model(Half)
    with pytest.raises(ConfigError, match="subclass of Network"):
        register_model(dict)
    with pytest.raises(ConfigError, match="does not implement _accuracy, _sample"):
        register_task(type("Empty", (bp.tasks.Task,), {"name": "empty"}))


# -- the code of docs/extending.md --------------------------------------------------
def doc_blocks() -> list[str]:
    """The ```python blocks of docs/extending.md, in order."""
    text = (HERE.parent / "docs" / "extending.md").read_text()
    return re.findall(r"```python\n(.*?)```", text, flags=re.S)


def test_the_docs_task_model_and_gradient_test_run(monkeypatch):
    # the doc registers its own classes: under the example package's names, when installed
    monkeypatch.setattr(TASKS, "_items", {k: v for k, v in TASKS._items.items() if k != "hold_bit"})
    monkeypatch.setattr(MODELS, "_items", {k: v for k, v in MODELS._items.items() if k != "numpy_rnn"})
    blocks = doc_blocks()
    ns = {}
    for block in blocks:  # in order, as a reader would run them (they register the classes)
        exec(compile(block, "docs/extending.md", "exec"), ns)  # noqa: S102 - the doc's own code
    assert TASKS.get("hold_bit") is ns["HoldBit"] and MODELS.get("numpy_rnn") is ns["NumpyRNN"]
    task = get_task("hold_bit", n_steps=20)
    batch = task.sample(6, np.random.default_rng(3))
    again = task.sample(6, np.random.default_rng(3))
    assert np.array_equal(batch.inputs, again.inputs)  # seeded
    assert task.accuracy(batch.targets, batch) == 1.0
    assert task.accuracy(-batch.targets, batch) == 0.0
    assert batch.epochs["hold"].sum() > 0 and set(batch.trial_table["sign"]) <= {-1, 1}
    tests = [f for name, f in ns.items() if name.startswith("test_")]
    assert tests, "docs/extending.md shows no finite-difference test"
    for tcr_on in ("rates", "states"):
        for test in tests:
            test(tcr_on)
    # the doc shows the example package's code: each method as it is there
    text = "\n".join(blocks)
    for path, methods in (("tasks.py", ("_validate", "_sample", "_accuracy")),
                          ("models.py", ("_init_arrays", "_forward", "_backward"))):
        src = (PLUGIN_SRC / MODULE / path).read_text()
        for name in methods:
            assert _method(src, name) in text, f"{MODULE}/{path}: {name} differs from docs/extending.md"


def _method(src: str, name: str) -> str:
    """The source of method ``name`` in ``src``: from its ``def`` to the next
    class-level statement (or the end)."""
    start = src.index(f"    def {name}(")
    nxt = re.search(r"\n    \S", src[start + 1:])
    return src[start:start + 1 + nxt.start() if nxt else len(src)].rstrip()
