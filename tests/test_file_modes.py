"""Files follow the umask, as open() would create them, and rewrites keep a file's mode."""
import os
import stat

import numpy as np
import pytest

import bioplastic as bp
from bioplastic.io.atomic import current_umask, write_text


@pytest.fixture
def umask():
    old = os.umask(0o022)
    os.umask(old)

    def set_(mask):
        os.umask(mask)

    yield set_
    os.umask(old)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_current_umask_reads_without_changing(umask):
    umask(0o027)
    assert current_umask() == 0o027
    assert current_umask() == 0o027


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_new_files_follow_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    write_text(tmp_path / "report.md", "x")
    assert mode(tmp_path / "report.md") == expected
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # what open() gives, for comparison
    assert mode(plain) == expected


def test_run_files_and_figures_follow_the_umask_and_resume_keeps_the_mode(tmp_path, umask, monkeypatch):
    umask(0o022)
    task = bp.get_task("flipflop")
    net = bp.make_network("lfrnn", 3, 3, n_units=8)
    path = tmp_path / "run.h5"
    bp.train(net, task, iterations=6, seed=0, run_file=path, checkpoint_every=3, early_stop=False)
    assert mode(path) == 0o644
    from bioplastic import plotting

    plotting.loss_curves({"p": {"c": [(np.arange(5), np.ones(5), None)]}}, tmp_path / "f.png")
    assert mode(tmp_path / "f.png") == 0o644
    # a rewrite (here: a lab's chosen group-readable mode) keeps the file's mode
    os.chmod(path, 0o640)
    umask(0o077)
    bp.train(net, task, iterations=6, seed=0, run_file=path, checkpoint_every=3, early_stop=False)
    assert mode(path) == 0o640
