"""bioplastic.memory: malloc options set on import, and the opt-out."""
import os
import platform
import subprocess
import sys

import pytest

import bioplastic
from bioplastic import memory

GLIBC = platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="the malloc options are glibc's")
def test_applied_on_import():
    assert memory.is_applied()
    assert bioplastic.keep_freed_memory() is True  # idempotent


def _applied_in_fresh_process(env_value):
    code = "import bioplastic.memory as m, bioplastic; print(m.is_applied())"
    env = {**os.environ, "BIOPLASTIC_KEEP_FREED_MEMORY": env_value}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return out.stdout.strip()


@pytest.mark.skipif(not GLIBC, reason="the malloc options are glibc's")
def test_opt_out_by_environment():
    assert _applied_in_fresh_process("0") == "False"
    assert _applied_in_fresh_process("1") == "True"
