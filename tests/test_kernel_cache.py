"""The kernel cache is dropped when a compiled module changes (numba alone misses callee edits)."""
import subprocess
import sys
import textwrap

from bioplastic._kernel_cache import (STAMP_NAME, cache_dirs, compiled_sources, drop_stale_kernel_cache)

CALLEE = "from numba import njit\n\n\n@njit(cache=True)\ndef step(x):\n    return x + {inc}\n"
CALLER = textwrap.dedent("""\
    from numba import njit

    from .callee import step


    @njit(cache=True)
    def run(x):
        return step(x) * 10
    """)
RUN = textwrap.dedent("""\
    import sys
    sys.path.insert(0, {root!r})
    from pathlib import Path
    from bioplastic._kernel_cache import drop_stale_kernel_cache
    if {check}:
        drop_stale_kernel_cache(Path({root!r}) / "kpkg")
    from kpkg.caller import run
    print(run(1))
    """)


def _package(tmp_path, inc):
    pkg = tmp_path / "kpkg"
    pkg.mkdir(exist_ok=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "callee.py").write_text(CALLEE.format(inc=inc))
    (pkg / "caller.py").write_text(CALLER)
    (pkg / "plain.py").write_text("x = 1\n")
    return pkg


def _run(tmp_path, check, env=None):
    code = RUN.format(root=str(tmp_path), check=check)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.split()[-1])


def test_numba_alone_keeps_a_stale_caller_and_the_check_drops_it(tmp_path):
    _package(tmp_path, inc=1)
    assert _run(tmp_path, check=False) == 20
    _package(tmp_path, inc=2)  # edit only the callee
    # numba's own cache keeps the caller's machine code, with the old step inlined (seen with numba 0.68;
    # should numba learn to track callees, this line fails and the check can go)
    assert _run(tmp_path, check=False) == 20
    assert _run(tmp_path, check=True) == 30  # dropped and recompiled
    assert _run(tmp_path, check=True) == 30  # and cached again under the new stamp


def test_only_compiled_modules_count_and_a_current_cache_is_kept(tmp_path):
    pkg = _package(tmp_path, inc=1)
    assert [p.name for p in compiled_sources(pkg)] == ["callee.py", "caller.py"]
    cache = pkg / "__pycache__"
    cache.mkdir()
    (cache / "caller.run-6.py311.nbi").write_bytes(b"stale")
    assert drop_stale_kernel_cache(pkg)  # no record yet: emptied
    assert not list(cache.glob("*.nbi")) and (cache / STAMP_NAME).exists()
    (cache / "caller.run-6.py311.nbi").write_bytes(b"fresh")
    (pkg / "plain.py").write_text("x = 2\n")  # no compiled code: no reason to drop anything
    assert not drop_stale_kernel_cache(pkg)
    assert (cache / "caller.run-6.py311.nbi").read_bytes() == b"fresh"
    (pkg / "callee.py").write_text(CALLEE.format(inc=5))
    assert drop_stale_kernel_cache(pkg)
    assert not list(cache.glob("*.nbi"))


def test_numba_cache_dir_is_where_numba_writes(tmp_path):
    """With NUMBA_CACHE_DIR set, the check looks where numba itself puts the files."""
    import os

    pkg = _package(tmp_path, inc=1)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    assert _run(tmp_path, check=False, env=env) == 20
    probe = textwrap.dedent(f"""\
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from pathlib import Path
        from bioplastic._kernel_cache import cache_dirs, compiled_sources
        print(cache_dirs(compiled_sources(Path({str(pkg)!r})))[0])
        """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    where = out.stdout.strip()
    assert list((tmp_path / "numba-cache").rglob("*.nbi"))
    assert all(str(p.parent) == where for p in (tmp_path / "numba-cache").rglob("*.nbi"))


def test_the_package_itself_is_covered():
    import os

    names = {p.name for p in compiled_sources()}
    assert {"lfrnn.py", "panels.py", "activations.py"} <= names
    assert "cli" not in {p.parent.name for p in compiled_sources()}  # no compiled code there
    if not os.environ.get("NUMBA_CACHE_DIR"):
        assert {d.name for d in cache_dirs(compiled_sources())} == {"__pycache__"}
