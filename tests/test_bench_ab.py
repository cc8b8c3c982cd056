"""The paired A/B tool: extracting a revision, and (slow) a tiny comparison."""
import shutil
import subprocess
from pathlib import Path

import pytest

from bioplastic.bench import ab as bench_ab

ROOT = Path(__file__).resolve().parent.parent


def _in_git_checkout() -> bool:
    if shutil.which("git") is None:
        return False
    return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode == 0


needs_git = pytest.mark.skipif(not _in_git_checkout(), reason="needs a git checkout of bioplastic")


@needs_git
def test_extract_revision_renames_the_package(tmp_path):
    bench_ab.extract_revision("HEAD", tmp_path)
    pkg = tmp_path / bench_ab.OLD_NAME
    assert (pkg / "__init__.py").exists() and (pkg / "kernels" / "lfrnn.py").exists()
    for path in pkg.rglob("*.py"):
        text = path.read_text()
        assert "from bioplastic." not in text and "import bioplastic\n" not in text, path


@needs_git
@pytest.mark.slow
def test_compare_gives_paired_records():
    records = bench_ab.compare("HEAD", [(8, 2, 3)], dtypes=("float64",), log=lambda line: None)
    assert [r["what"] for r in records] == ["forward", "bptt"]
    for r in records:
        assert r["old_ms"] > 0 and r["new_ms"] > 0 and r["q1"] <= r["speedup"] <= r["q3"]


@needs_git
@pytest.mark.slow
def test_compare_another_model_kind():
    records = bench_ab.compare("HEAD", [(8, 2, 3)], dtypes=("float64",), log=lambda line: None, kind="lstm")
    assert [r["case"].split()[0] for r in records] == ["lstm", "lstm"]
    assert all(r["old_ms"] > 0 and r["new_ms"] > 0 for r in records)


def test_bench_parts_table():
    from bioplastic.bench import parts as bench_parts

    result = bench_parts.measure(N=12, B=16, T=5, rounds=2, dtypes=("float64",))
    parts = result["float64"]
    assert list(parts)[0] == "forward, whole kernel" and len(parts) == 9
    assert all(v > 0 for v in parts.values())
    assert "panel product" in bench_parts.format_parts(result)
    with pytest.raises(ValueError, match="at least 16"):
        bench_parts.measure(N=12, B=8, T=5)


def test_bench_parts_times_two_blocks_on_two_threads():
    from bioplastic.bench import parts as bench_parts
    from bioplastic.machinery.threads import kernel_threads, set_kernel_threads

    before = kernel_threads()
    set_kernel_threads(2)
    try:
        parts = bench_parts.measure(N=12, B=32, T=5, rounds=2, dtypes=("float64",))["float64"]
    finally:
        set_kernel_threads(before)
    assert list(parts)[-1] == bench_parts.TWO_BLOCKS and parts[bench_parts.TWO_BLOCKS] > 0


def test_paired_ratios_warm_takes_medians_of_runs():
    calls = {"old": 0, "new": 0}

    def fn(name):
        def run():
            calls[name] += 1
        return run

    t_old, t_new, ratios = bench_ab.paired_ratios(fn("old"), fn("new"), 3, lambda: None, lambda: None, warm=4)
    assert len(t_old) == len(t_new) == len(ratios) == 3
    assert calls == {"old": 3 * 5, "new": 3 * 5}  # one untimed call and 4 timed ones per pair side


def test_main_rejects_a_bad_warm_count(capsys):
    assert bench_ab.main(["--warm", "x", "HEAD"]) == 2
    assert "usage" in capsys.readouterr().err


def test_main_names_an_unknown_kind(capsys):
    assert bench_ab.main(["--kind", "lstn", "HEAD"]) == 2
    assert "unknown model 'lstn'; did you mean 'lstm'" in capsys.readouterr().err
