"""`import bioplastic` has no process-wide side effects (SPEC 11): malloc and matplotlib.

Each check runs in a fresh interpreter, since the state it looks at belongs
to the whole process.
"""
import ctypes.util
import os
import platform
import subprocess
import sys

import pytest

GLIBC = platform.libc_ver()[0] == "glibc"
#: Above glibc's default mmap threshold (128 KiB, raised at most to 32 MiB by
#: its own heuristics), below the 32 MiB that bioplastic.memory sets.
PROBE_BYTES = 30 * 1024 * 1024


def _has_mallinfo2() -> bool:
    try:
        return hasattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), "mallinfo2")
    except OSError:
        return False


needs_glibc = pytest.mark.skipif(not (GLIBC and _has_mallinfo2()),
                                 reason="the malloc options and mallinfo2 are glibc's (>= 2.33)")

# Where does a 30 MiB block come from? A fresh mapping ("mmap", glibc's
# default) or the heap ("heap", once bioplastic.memory has tuned malloc).
# mallinfo2().hblks counts the live mmapped blocks.
_PROBE = """
import ctypes, ctypes.util
class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                               "fsmblks", "uordblks", "fordblks", "keepcost")]
libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
libc.mallinfo2.restype = MallInfo2
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
before = libc.mallinfo2().hblks
block = libc.malloc({size})
after = libc.mallinfo2().hblks
libc.free(block)
print("SOURCE", "mmap" if after > before else "heap")
"""


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("BIOPLASTIC_TUNE_MALLOC", "BIOPLASTIC_KEEP_FREED_MEMORY", "MPLBACKEND")}
    env.update(extra)
    return env


def _run(code, **env):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=_clean_env(**env), timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


def _block_source(setup, **env):
    out = _run(setup + "\n" + _PROBE.format(size=PROBE_BYTES), **env)
    return [line.split()[1] for line in out.splitlines() if line.startswith("SOURCE")][-1]


# -- malloc ----------------------------------------------------------------------

@needs_glibc
def test_import_leaves_malloc_alone():
    # The same libraries without bioplastic: the probe tells glibc's default apart from the tuning.
    baseline = _block_source("import numpy, scipy.linalg, numba, h5py, tqdm, matplotlib")
    assert baseline == "mmap"
    assert _block_source("import bioplastic") == baseline
    assert _block_source("import bioplastic, bioplastic.memory as m; assert not m.is_applied()") == baseline


@needs_glibc
def test_environment_opts_in_at_import():
    assert _block_source("import bioplastic", BIOPLASTIC_TUNE_MALLOC="1") == "heap"
    assert _block_source("import bioplastic", BIOPLASTIC_TUNE_MALLOC="0") == "mmap"


@needs_glibc
def test_explicit_call_tunes():
    assert _block_source("import bioplastic; assert bioplastic.keep_freed_memory()") == "heap"


@needs_glibc
def test_command_line_opts_in_unless_told_not_to():
    cli = "from bioplastic.cli import main; assert main(['list', 'tasks']) == 0"
    assert _block_source(cli) == "heap"
    assert _block_source(cli, BIOPLASTIC_TUNE_MALLOC="0") == "mmap"
    assert _block_source(cli, BIOPLASTIC_KEEP_FREED_MEMORY="0") == "mmap"  # the old opt-out still holds


def test_wanted_reads_the_environment(monkeypatch):
    from bioplastic import memory

    monkeypatch.delenv(memory.ENV, raising=False)
    monkeypatch.delenv(memory.LEGACY_ENV, raising=False)
    assert memory.wanted() is False and memory.wanted(default=True) is True
    monkeypatch.setenv(memory.ENV, "1")
    assert memory.wanted() is True
    monkeypatch.setenv(memory.ENV, "off")
    assert memory.wanted(default=True) is False
    monkeypatch.delenv(memory.ENV)
    monkeypatch.setenv(memory.LEGACY_ENV, "0")
    assert memory.wanted(default=True) is False


# -- matplotlib ------------------------------------------------------------------

def _draw(path) -> str:
    """Code that draws a figure with bioplastic's plotting and checks the PNG."""
    return ("from bioplastic.plotting import loss_curves\n"
            f"path = loss_curves({{'panel': {{'a': [([0, 1, 2], [1.0, 0.5, 0.2], 1)]}}}}, {str(path)!r})\n"
            "assert open(path, 'rb').read(8) == bytes([137, 80, 78, 71, 13, 10, 26, 10])\n")


def test_backend_is_untouched_and_pyplot_not_imported(tmp_path):
    png = tmp_path / "curves.png"
    code = ("import sys, matplotlib\n"
            "print('BACKEND', matplotlib.get_backend())\n"
            "import bioplastic\n"
            "print('BACKEND', matplotlib.get_backend())\n"
            + _draw(png) +
            "print('BACKEND', matplotlib.get_backend())\n"
            "print('PYPLOT', 'matplotlib.pyplot' in sys.modules)\n")
    out = _run(code, MPLBACKEND="svg")
    backends = [line.split()[1] for line in out.splitlines() if line.startswith("BACKEND")]
    assert backends == ["svg", "svg", "svg"]
    assert "PYPLOT False" in out
    assert png.stat().st_size > 1000


def test_users_pyplot_figures_and_backend_survive(tmp_path):
    # Switching the backend from under pyplot closes the user's figures; a
    # figure made through pyplot would join the user's list and never close.
    png = tmp_path / "curves.png"
    code = ("import matplotlib.pyplot as plt\n"
            "plt.switch_backend('svg')\n"
            "mine = plt.figure()\n"
            + _draw(png) +
            "print('BACKEND', plt.get_backend())\n"
            "print('FIGURES', plt.get_fignums())\n")
    out = _run(code)
    assert "BACKEND svg" in out
    assert "FIGURES [1]" in out
    assert png.exists()
