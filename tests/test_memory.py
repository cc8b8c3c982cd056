"""bioplastic.memory: malloc tuning is opt-in (SPEC 11: no process-wide side effects on import).

The direct check of glibc's state is in tests/test_side_effects.py; here the
switches: the environment variable, the explicit call and the opt-out.
"""
import os
import platform
import subprocess
import sys

import pytest

GLIBC = platform.libc_ver()[0] == "glibc"


def _applied_in_fresh_process(code, **env_values):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BIOPLASTIC_")}
    env.update(env_values)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return out.stdout.strip()


IMPORT = "import bioplastic.memory as m, bioplastic; print(m.is_applied())"


@pytest.mark.skipif(not GLIBC, reason="the malloc options are glibc's")
def test_not_applied_on_import():
    assert _applied_in_fresh_process(IMPORT) == "False"


@pytest.mark.skipif(not GLIBC, reason="the malloc options are glibc's")
def test_opt_in_by_environment_or_call_and_opt_out():
    assert _applied_in_fresh_process(IMPORT, BIOPLASTIC_TUNE_MALLOC="1") == "True"
    call = "import bioplastic.memory as m, bioplastic; m.keep_freed_memory(); print(m.is_applied())"
    assert _applied_in_fresh_process(call) == "True"
    cli = "import bioplastic.memory as m; m.tune_if_wanted(default=True); print(m.is_applied())"
    assert _applied_in_fresh_process(cli) == "True"
    assert _applied_in_fresh_process(cli, BIOPLASTIC_TUNE_MALLOC="0") == "False"
