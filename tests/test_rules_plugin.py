"""Rule plugins for real: pip-install the tiny package in tests/plugin_example
into the running interpreter, find its rule through the entry point, train
with it, and uninstall it again. Broken plugins warn and are skipped.
"""
import importlib.metadata
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import bioplastic as bp
from bioplastic.cli import main
from bioplastic.errors import UnknownNameError
from bioplastic.rules import PluginWarning, get_rule, list_rules, load_plugins, refresh_plugins, rule_table
from bioplastic.rules.plugins import GROUP
from bioplastic.testing import check_rule
from bioplastic.training.local import train_local

PLUGIN_SRC = Path(__file__).parent / "plugin_example"
DIST = "bioplastic-plugin-example"


def _pip(*args):
    cmd = [sys.executable, "-m", "pip", *args, "--disable-pip-version-check", "--quiet"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, f"{' '.join(cmd)} failed:\n{out.stdout}\n{out.stderr}"


@pytest.fixture(scope="module")
def installed_plugin(tmp_path_factory):
    """Install a copy (so build files stay out of the repo); uninstall afterwards."""
    src = tmp_path_factory.mktemp("plugin") / "plugin_example"
    shutil.copytree(PLUGIN_SRC, src)
    _pip("install", "--no-deps", "--no-build-isolation", str(src))
    try:
        refresh_plugins()
        yield
    finally:
        _pip("uninstall", "-y", DIST)
        for mod in [m for m in sys.modules if m.startswith("bioplastic_plugin_example")]:
            del sys.modules[mod]
        refresh_plugins()


def test_plugin_is_discovered_through_its_entry_point(installed_plugin):
    eps = {ep.name: ep for ep in importlib.metadata.entry_points(group=GROUP)}
    assert eps["delta_readout"].value == "bioplastic_plugin_example.rules:DeltaReadout"
    assert "delta_readout" in list_rules()
    row = {r["name"]: r for r in rule_table()}["delta_readout"]
    assert row["source"] == f"{DIST} 0.1.0"
    assert row["reads"] == ["pre", "error"]
    assert row["modifies"]["lfrnn"] == ["W_out", "b_out"]
    assert type(get_rule("delta_readout")).__module__ == "bioplastic_plugin_example.rules"


def test_plugin_passes_the_contract_checks(installed_plugin):
    passed = check_rule("delta_readout")
    assert "check_trains[lstm]" in passed  # a plain-NumPy readout rule works on every model


def test_plugin_trains_and_composes(installed_plugin, tmp_path):
    task = bp.get_task("delayed_addition", n_steps=20)
    net = bp.make_network("lfrnn", task.n_inputs, task.n_outputs, n_units=16)
    r = train_local(net, task, "delta_readout", iterations=60, lr=0.05, seed=0, early_stop=False,
                    run_file=tmp_path / "run.h5")
    first, last = r.history["task_loss"][:5].mean(), r.history["task_loss"][-5:].mean()
    assert last < 0.5 * first
    assert np.array_equal(r.params["W"], r.checkpoints[0]["W"])  # only the readout moved
    data = bp.read_run(tmp_path / "run.h5")
    assert data.config["training"]["rule"]["name"] == "delta_readout"
    assert data.config["training"]["rule"]["source"] == f"{DIST} 0.1.0"
    both = get_rule("eprop+delta_readout")
    assert both.check(net) == ("W", "W_in", "b", "W_out", "b_out")


def test_plugin_from_the_console(installed_plugin, tmp_path):
    exe = shutil.which("bioplastic") or str(Path(sys.executable).parent / "bioplastic")
    out = subprocess.run([exe, "rules", "list", "--json"], capture_output=True, text=True, check=True).stdout
    rows = {r["name"]: r for r in json.loads(out)}
    assert rows["delta_readout"]["source"] == f"{DIST} 0.1.0"
    assert main(["train", "--model", "lfrnn", "--task", "flipflop", "--rule", "delta_readout", "--seed", "1",
                 "--iterations", "3", "--out", str(tmp_path), "--no-progress"]) == 0
    assert bp.read_run(tmp_path / "run.h5").config["training"]["modifies"] == ["W_out", "b_out"]


BROKEN = '''
import numpy as np
from bioplastic.rules import Rule, Update


class NoUpdate(Rule):
    """Forgot to implement update()."""
    name = "broken_missing_update"
    reads = ("pre",)


class Good(Rule):
    name = "good_neighbour"
    reads = ("error",)

    def computable(self, network):
        return ("b_out",)

    def update(self, ctx, state):
        return Update(grads={"b_out": ctx.error().sum(axis=(0, 1))})
'''


@pytest.fixture
def broken_module(tmp_path, monkeypatch):
    (tmp_path / "bioplastic_test_broken_plugins.py").write_text(textwrap.dedent(BROKEN))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "bioplastic_test_broken_plugins"
    sys.modules.pop("bioplastic_test_broken_plugins", None)
    refresh_plugins()


def test_broken_plugins_warn_and_are_skipped(broken_module):
    EP = importlib.metadata.EntryPoint
    eps = [EP("broken_missing_update", f"{broken_module}:NoUpdate", GROUP),
           EP("broken_import", "bioplastic_no_such_module:Rule", GROUP),
           EP("good_neighbour", f"{broken_module}:Good", GROUP)]
    with pytest.warns(PluginWarning) as record:
        loaded = load_plugins(eps)
    assert loaded == ["good_neighbour"]  # one broken package never breaks the others
    messages = [str(w.message) for w in record]
    assert any("'broken_missing_update'" in m and "missing method(s) 'update'" in m for m in messages)
    assert any("'broken_import'" in m and "ModuleNotFoundError" in m for m in messages)
    with pytest.raises(UnknownNameError, match="plugins that failed to load: broken_missing_update"):
        get_rule("broken_missing_update")
    assert get_rule("good_neighbour").name == "good_neighbour"
