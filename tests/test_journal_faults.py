"""Faults of in-place writes through the redo journal (bioplastic.io.atomic):
a kill cutting a record short, a journal outliving its file, filesystems
without flock or fdatasync, short writes, readers holding a file a killed
writer left, journals replaced under their writer, locks held across syncs.
Real processes and real SIGKILLs where it matters."""
import errno
import fcntl
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from bioplastic.io.atomic import journal_path, open_committed
from bioplastic.io.runfile import RunWriter, read_run, write_run

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and flock are POSIX")


def _contents(k):
    return dict(config={}, seed=0, status="running", params={"W": np.full((64, 64), float(k))},
                history={"loss": np.arange(k, dtype=float)},
                checkpoints={i: {"W": np.full((64, 64), float(i))} for i in range(k + 1)})


#: A writer that commits ``n`` times, a reader holding the file from the second commit on when
#: asked (so that commits wait in the journal), then dies as ``how`` says.
_CHILD = """
import fcntl, os, signal, sys
import numpy as np
from bioplastic.io.runfile import RunWriter
path, n, held, how = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "held", sys.argv[4]
def contents(k):
    return dict(config={}, seed=0, status="running", params={"W": np.full((64, 64), float(k))},
                history={"loss": np.arange(k, dtype=float)},
                checkpoints={i: {"W": np.full((64, 64), float(i))} for i in range(k + 1)})
w = RunWriter(path)
w.write(**contents(1))
if held:  # a reader (another open file description) holds the file: commits wait in the journal
    reader = os.open(path, os.O_RDONLY)
    fcntl.flock(reader, fcntl.LOCK_SH)
for k in range(2, n + 1):
    w.write(**contents(k))
assert w.appends == n - 1, (w.appends, w.rewrites)
if how == "torn":  # the next commit's record is cut short by the kill
    journal = w._file._journal._fd
    real_pwritev, real_pwrite = os.pwritev, os.pwrite
    def half(fd, data, offset):
        os.pwrite(fd, data[:len(data) // 2], offset)
        os.kill(os.getpid(), signal.SIGKILL)
    def pwritev(fd, buffers, offset):
        if fd != journal:
            return real_pwritev(fd, buffers, offset)
        half(fd, b"".join(buffers), offset)
    def pwrite(fd, data, offset):
        if fd != journal:
            return real_pwrite(fd, data, offset)
        os.pwrite = real_pwrite
        half(fd, bytes(data), offset)
    os.pwritev, os.pwrite = pwritev, pwrite
    w.write(**contents(n + 1))
if how == "torn_apply":  # the reader leaves; the next commit's apply is cut short by the kill
    os.close(reader)
    file, real_pwrite, calls = w._file._fd, os.pwrite, []
    def pwrite(fd, data, offset):
        if fd == file:
            calls.append(offset)
            if len(calls) == 3:
                os.kill(os.getpid(), signal.SIGKILL)
        return real_pwrite(fd, data, offset)
    os.pwrite = pwrite
    w.write(**contents(n + 1))
os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_writer(path, n, held, how="kill"):
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(n), "held" if held else "free", how],
                          capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()


def _reads_as(path, k):
    data = read_run(path)
    assert sorted(data.checkpoints) == list(range(k + 1))
    assert len(data.history["loss"]) == k and np.all(data.params["W"] == k)


# -- 1: a kill cutting a record short loses that commit only --------------------------------

@pytest.mark.parametrize("held", [False, True])
def test_a_record_cut_short_by_a_kill_loses_only_its_own_commit(tmp_path, held):
    """Commits 1-3 returned; the kill cut commit 4's record short: the file
    reads as commit 3, whether the commits were in the file already or still
    waited in the journal behind a reader."""
    path = tmp_path / "run.h5"
    _killed_writer(path, 3, held, how="torn")
    assert journal_path(path).exists()
    _reads_as(path, 3)
    assert not journal_path(path).exists()
    with h5py.File(path, "r") as f:
        assert len(f["checkpoints"]) == 4


def test_commits_waiting_behind_a_reader_are_appended_and_replayed_in_order(tmp_path):
    path = tmp_path / "run.h5"
    _killed_writer(path, 6, held=True)
    _reads_as(path, 6)
    assert not journal_path(path).exists()


def test_a_kill_in_an_apply_is_repaired_from_the_journal(tmp_path):
    """Commits 2-4 waited behind a reader; commit 5's apply (all of them at
    once) was cut short: the file on disk is torn until bioplastic opens it
    and replays the records."""
    path = tmp_path / "run.h5"
    _killed_writer(path, 4, held=True, how="torn_apply")
    assert journal_path(path).exists()
    _reads_as(path, 5)
    assert not journal_path(path).exists()
    with h5py.File(path, "r") as f:
        assert len(f["checkpoints"]) == 6


@pytest.mark.skipif(not os.path.exists("/proc/self/io"), reason="needs Linux /proc/self/io")
def test_a_reader_holding_the_file_does_not_make_commits_grow(tmp_path):
    """While a reader holds the file each commit writes what it changed, not
    everything since the file was last brought up to date."""
    def written():
        with open("/proc/self/io") as fh:
            return int(next(line for line in fh if line.startswith("wchar:")).split()[1])

    path = tmp_path / "run.h5"
    w = RunWriter(path)
    w.write(**_contents(1))
    cost = []
    with h5py.File(path, "r"):
        for k in range(2, 16):
            before = written()
            w.write(**_contents(k))
            cost.append(written() - before)
    assert max(cost[-4:]) < 1.5 * min(cost[:4]), cost
    w.close()
    _reads_as(path, 15)
    assert w.rewrites == 1 and not journal_path(path).exists()


# -- 2: a journal is only ever applied to the file it was written for ------------------------

def test_a_killed_writers_record_is_not_applied_to_a_file_that_took_its_place(tmp_path):
    """The file replaced by a program that knows nothing of the journal, the
    same inode reused (simulated by writing the other file over the same
    inode): bioplastic reads the other file as it is and drops the journal."""
    path = tmp_path / "run.h5"
    _killed_writer(path, 2, held=True)
    other = tmp_path / "other.h5"
    write_run(other, config={"other": True}, seed=7, status="converged", params={"W": np.full((8, 8), 7.0)},
              history={"loss": np.arange(50.0)}, checkpoints={})
    ino = os.stat(path).st_ino
    with open(path, "r+b") as fh:
        fh.write(other.read_bytes())
        fh.truncate()
    assert os.stat(path).st_ino == ino and journal_path(path).exists()
    with pytest.warns(UserWarning, match="journal"):
        data = read_run(path)
    assert data.seed == 7 and data.status == "converged" and len(data.history["loss"]) == 50
    assert not journal_path(path).exists()
    assert read_run(path).seed == 7


def test_a_foreign_file_is_read_as_it_is_without_write_permission(tmp_path):
    path = tmp_path / "run.h5"
    _killed_writer(path, 2, held=True)
    other = tmp_path / "other.h5"
    write_run(other, config={}, seed=7, status="converged", params={"W": np.full((8, 8), 7.0)},
              history={"loss": np.arange(50.0)}, checkpoints={})
    with open(path, "r+b") as fh:
        fh.write(other.read_bytes())
        fh.truncate()
    os.chmod(path, 0o444)
    try:
        with pytest.warns(UserWarning, match="journal"):
            assert read_run(path).seed == 7
    finally:
        os.chmod(path, 0o644)


# -- 3, 4, 11: no flock, no fdatasync, short writes -------------------------------------------

def test_without_flock_files_are_written_whole(tmp_path, monkeypatch):
    def nolock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", nolock)
    path = tmp_path / "run.h5"
    w = RunWriter(path)
    for k in range(1, 4):
        w.write(**_contents(k))
    w.close()
    assert (w.appends, w.rewrites) == (0, 3)
    _reads_as(path, 3)
    assert not journal_path(path).exists()


def test_without_flock_a_killed_writers_journal_is_still_settled(tmp_path, monkeypatch):
    path = tmp_path / "run.h5"
    _killed_writer(path, 3, held=True)

    def nolock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", nolock)
    _reads_as(path, 3)
    assert not journal_path(path).exists()


def test_without_fdatasync_fsync_does(tmp_path, monkeypatch):
    monkeypatch.delattr(os, "fdatasync")
    path = tmp_path / "run.h5"
    w = RunWriter(path)
    for k in range(1, 4):
        w.write(**_contents(k))
    w.close()
    assert (w.appends, w.rewrites) == (2, 1)
    _reads_as(path, 3)


def test_a_record_written_short_is_an_error_not_a_commit(tmp_path, monkeypatch):
    path = tmp_path / "run.h5"
    w = RunWriter(path)
    w.write(**_contents(1))
    w.write(**_contents(2))
    journal = w._file._journal._fd
    real_pwritev, real_pwrite = os.pwritev, os.pwrite

    def pwritev(fd, buffers, offset):
        if fd != journal:
            return real_pwritev(fd, buffers, offset)
        data = b"".join(buffers)
        return real_pwrite(fd, data[:len(data) // 2], offset)

    def pwrite(fd, data, offset):
        if fd != journal or len(data) < 4096:
            return real_pwrite(fd, data, offset)
        return real_pwrite(fd, bytes(data)[:len(data) // 2], offset)

    monkeypatch.setattr(os, "pwritev", pwritev)
    monkeypatch.setattr(os, "pwrite", pwrite)
    with pytest.raises(OSError, match="short write"):
        w.write(**_contents(3))
    monkeypatch.undo()
    _reads_as(path, 2)


def test_pages_written_short_are_an_error(tmp_path, monkeypatch):
    path = tmp_path / "run.h5"
    w = RunWriter(path)
    w.write(**_contents(1))
    w.write(**_contents(2))
    fd, real_pwrite = w._file._fd, os.pwrite
    calls = []

    def pwrite(f, data, offset):  # the first page write into the file comes out short, once
        if f != fd or calls:
            return real_pwrite(f, data, offset)
        calls.append(offset)
        return real_pwrite(f, bytes(data)[:100], offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    with pytest.raises(OSError, match="short write"):
        w.write(**_contents(3))
    monkeypatch.undo()
    assert calls
    data = read_run(path)  # the commit raised: the file reads as before it or after it, whole
    k = len(data.history["loss"])
    assert k in (2, 3)
    _reads_as(path, k)


# -- 6: a reader holding a killed writer's file ----------------------------------------------

def test_a_reader_reads_through_a_killed_writers_journal_while_another_holds_the_file(tmp_path):
    path = tmp_path / "run.h5"
    _killed_writer(path, 3, held=True)
    with h5py.File(path, "r") as plain:  # e.g. a notebook holding the file open
        started = time.monotonic()
        fd, view = open_committed(path, wait=5.0)
        assert view is not None and time.monotonic() - started < 2.0
        view.close()
        _reads_as(path, 3)
        assert journal_path(path).exists()  # settled later: the file is held
        assert len(plain["checkpoints"]) == 2
    _reads_as(path, 3)
    assert not journal_path(path).exists()


# -- 10: a journal is removed only by whoever holds it ---------------------------------------

def test_a_writer_does_not_remove_a_journal_that_replaced_its_own(tmp_path):
    path = tmp_path / "run.h5"
    w = RunWriter(path)
    w.write(**_contents(1))
    w.write(**_contents(2))
    other = tmp_path / "other"
    other.write_bytes(b"another writer's journal")
    os.replace(other, journal_path(path))
    w.close()
    assert journal_path(path).read_bytes() == b"another writer's journal"


# -- 7: the exclusive lock is not held across syncs ------------------------------------------

def test_syncs_are_made_without_holding_the_file(tmp_path, monkeypatch):
    path = tmp_path / "run.h5"
    w = RunWriter(path)
    w.write(**_contents(1))
    probe = os.open(path, os.O_RDONLY)
    held = []

    def check(real):
        def sync(fd):
            try:
                fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)
                fcntl.flock(probe, fcntl.LOCK_UN)
            except BlockingIOError:
                held.append(real.__name__)
            return real(fd)
        return sync

    monkeypatch.setattr(os, "fsync", check(os.fsync))
    monkeypatch.setattr(os, "fdatasync", check(os.fdatasync))
    try:
        for k in (2, 3):
            time.sleep(0.15)  # (bioplastic before 2026-12-08 brought the file up to date every 0.1 s)
            w.write(**_contents(k))
    finally:
        monkeypatch.undo()
        os.close(probe)
    w.close()
    assert w.appends == 2 and held == []
    _reads_as(path, 3)
