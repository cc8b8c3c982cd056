"""Which brian2 and numpy versions the Brian2 export runs with, and what it says otherwise (docs/brian2.md)."""
import importlib.metadata
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

from bioplastic.export.brian2_rate import BRIAN2_SUPPORTED, _release, brian2_support

HAS_BRIAN2 = importlib.util.find_spec("brian2") is not None


@pytest.mark.parametrize("version, release", [
    ("2.9.0", (2, 9, 0)), ("2.10.0rc1", (2, 10, 0)), ("2.4.6", (2, 4, 6)), ("2.5.0.post1", (2, 5, 0)),
    ("2.3.5+local.1", (2, 3, 5)), ("2.10", (2, 10)), ("", ()),
])
def test_release_numbers(version, release):
    assert _release(version) == release


@pytest.mark.parametrize("brian2_version, numpy_version", [
    ("2.9.0", "2.4.0"), ("2.9.0", "2.4.6"), ("2.5.1", "2.4.0rc1"), ("2.9.0.post1", "3.0.0"),
])
def test_brian2_before_2_10_is_refused_under_numpy_2_4(brian2_version, numpy_version):
    problem = brian2_support(brian2_version, numpy_version)
    assert problem is not None
    assert f"brian2 {brian2_version}" in problem and f"numpy {numpy_version}" in problem
    assert "ndarray.ptp" in problem
    assert "pip install 'bioplastic[brian2]'" in problem and "numpy <2.4" in problem


@pytest.mark.parametrize("brian2_version, numpy_version", [
    ("2.9.0", "2.3.5"), ("2.5.0", "1.26.4"), ("2.10.0", "2.4.0"), ("2.10.0rc1", "2.4.6"), ("3.0", "2.5.0"),
])
def test_supported_or_fixed_pairs_pass(brian2_version, numpy_version):
    assert brian2_support(brian2_version, numpy_version) is None


def test_extras_pin_the_supported_range():
    # setup.cfg is what pip reads; the pins and the code must say the same thing
    from configparser import ConfigParser

    cfg = ConfigParser()
    cfg.read(os.path.join(os.path.dirname(__file__), os.pardir, "setup.cfg"))
    for extra in ("brian2", "test"):
        reqs = [line.strip() for line in cfg["options.extras_require"][extra].splitlines() if line.strip()]
        assert f"brian2{BRIAN2_SUPPORTED}" in reqs
        assert "numpy<2.4" in reqs


def _python(code, **env):
    out = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "-c", code], capture_output=True,
                         text=True, env={**os.environ, **env}, timeout=600)
    return out


@pytest.mark.optional
@pytest.mark.skipif(not HAS_BRIAN2, reason="brian2 is not installed (pip install 'bioplastic[brian2]')")
def test_installed_pair_imports_and_runs():
    # A fresh interpreter: brian2 is imported through import_brian2, not by an earlier test.
    code = """
import numpy as np
import bioplastic as bp
from bioplastic.export import brian2 as b2x
from bioplastic.export.brian2_rate import import_brian2
b2 = import_brian2()
net = bp.make_network("lfrnn", 3, 3, n_units=6, g=1.5)
params = net.init_params(np.random.default_rng(0))
inputs = np.random.default_rng(1).standard_normal((20, 2, 3))
traj = net.forward(params, inputs)
res = b2x.simulate(b2x.to_brian2_model(net, params), inputs)
print("VERSIONS", b2.__version__, np.__version__)
print("DIFF", b2x.rate_agreement(traj, res)["max_abs_diff"], np.ptp(traj.states))
"""
    installed = importlib.metadata.version("brian2")
    problem = brian2_support(installed, np.__version__)
    out = _python(code)
    if problem:  # an unsupported pair installed by hand: refused, with the versions named
        assert out.returncode != 0 and problem in out.stderr
        return
    assert out.returncode == 0, out.stderr
    assert f"VERSIONS {installed} {np.__version__}" in out.stdout
    diff, moved = (float(v) for v in out.stdout.split("DIFF")[1].split())
    assert diff < 1e-8 and moved > 0.1


@pytest.mark.optional
@pytest.mark.skipif(not HAS_BRIAN2, reason="brian2 is not installed")
def test_refused_before_importing_brian2_under_numpy_2_4():
    # Checks the wiring of the version check: numpy's reported version is set
    # to 2.4.0 in a throw-away interpreter (its ndarray is unchanged), and
    # import_brian2 must refuse before brian2 is imported at all.
    code = """
import sys
import numpy
numpy.__version__ = "2.4.0"
from bioplastic.export.brian2_rate import import_brian2
try:
    import_brian2()
except ImportError as exc:
    print("REFUSED", exc)
print("IMPORTED", "brian2" in sys.modules)
"""
    installed = importlib.metadata.version("brian2")
    out = _python(code)
    assert out.returncode == 0, out.stderr
    if _release(installed) >= (2, 10):
        assert "IMPORTED True" in out.stdout  # a fixed brian2 is let through
        return
    assert f"REFUSED brian2 {installed} does not import under numpy 2.4.0" in out.stdout
    assert "IMPORTED False" in out.stdout


@pytest.mark.optional
@pytest.mark.skipif(not HAS_BRIAN2, reason="brian2 is not installed")
def test_other_import_failures_name_the_versions():
    # A broken dependency of brian2 (sympy made unimportable in a throw-away
    # interpreter): the error names both versions and the fix, and keeps the cause.
    code = """
import sys
sys.modules["sympy"] = None
import numpy
from bioplastic.export.brian2_rate import import_brian2
try:
    import_brian2()
except ImportError as exc:
    print("ERROR", exc)
    print("CAUSE", type(exc.__cause__).__name__)
"""
    out = _python(code)
    assert out.returncode == 0, out.stderr
    installed = importlib.metadata.version("brian2")
    assert f"import brian2 failed with brian2 {installed} and numpy {np.__version__}" in out.stdout
    assert "sympy" in out.stdout and "pip install 'bioplastic[brian2]'" in out.stdout
    assert "CAUSE ImportError" in out.stdout  # brian2's own, chained
