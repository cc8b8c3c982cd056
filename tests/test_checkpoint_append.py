"""Run files grow by appending: each checkpoint write costs what it adds, in
one atomic commit (a redo journal), and a writer killed with SIGKILL at any
moment leaves a file of the commit before or after; temporaries of killed
writers are cleaned up. Real files, real processes, real SIGKILLs."""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import bioplastic as bp
from bioplastic.errors import ConfigError
from bioplastic.io import atomic
from bioplastic.io.atomic import atomic_path, journal_path, remove_stale_temporaries
from bioplastic.io.runfile import RunWriter, read_run, write_run
from bioplastic.io.specs import load_spec, network_from_spec
from bioplastic.training.resume import check_resumable

posix_only = pytest.mark.skipif(sys.platform == "win32" or atomic.fcntl is None, reason="SIGKILL and flock are POSIX")

SPEC = """
[model]
kind = "lfrnn"
n_units = 12
g = 1.5

[task]
name = "flipflop"
n_steps = 20

[training]
iterations = 1500
lr = 0.003
batch_size = 8
eval_batch_size = 16
early_stop = false
checkpoint_every = 1
"""


def _contents(k, rng, n_units=8):
    """What a training loop hands the writer at its k-th checkpoint: growing history
    and checkpoints, the current parameters and a resume state with arrays."""
    params = {"W": rng.standard_normal((n_units, n_units)), "b": rng.standard_normal(n_units)}
    return params, {"iteration": k, "accuracy": 0.5, "streams": {"task": {"state": k}}, "schedule": {},
                    "optimizer": {"m": {"W": rng.standard_normal((n_units, n_units)), "t": k}}}


def _write_sequence(writer, n, seed=0, start=1):
    rng = np.random.default_rng(seed)
    history, checkpoints = {"loss": [], "iteration": []}, {}
    for k in range(n + 1):
        params, resume = _contents(k, rng)
        checkpoints[k] = dict(params)
        if k >= start:
            writer.write(config={"model": {"kind": "x"}}, seed=seed, status="running", params=params,
                         history={c: np.asarray(v, dtype=float) for c, v in history.items()},
                         checkpoints=checkpoints, attrs={"converged_at": None}, resume=resume)
        history["loss"].append(float(rng.random()))
        history["iteration"].append(float(k))
    return params, history, checkpoints, resume


def _assert_same_run(a, b):
    assert (a.status, a.seed, a.config) == (b.status, b.seed, b.config)
    skip = ("created", "config")  # the time of writing; the config is compared above
    assert {k: v for k, v in a.attrs.items() if k not in skip} == {k: v for k, v in b.attrs.items() if k not in skip}
    for name in ("params", "history"):
        x, y = getattr(a, name), getattr(b, name)
        assert sorted(x) == sorted(y), name
        for key in x:
            np.testing.assert_array_equal(x[key], y[key], err_msg=f"{name}/{key}")
    assert sorted(a.checkpoints) == sorted(b.checkpoints)
    for k in a.checkpoints:
        for key in a.checkpoints[k]:
            np.testing.assert_array_equal(a.checkpoints[k][key], b.checkpoints[k][key])
    assert (a.resume is None) == (b.resume is None)
    if a.resume is not None:
        assert json.dumps(a.resume, sort_keys=True, default=repr) == json.dumps(b.resume, sort_keys=True, default=repr)


# -- appending: same file as a whole write, same inode, constant cost --------------------------

@posix_only
def test_writes_after_the_first_append_in_place_and_read_as_a_whole_write(tmp_path):
    path = tmp_path / "run.h5"
    writer = RunWriter(path)
    inodes = []
    rng = np.random.default_rng(0)
    history, checkpoints = {"loss": []}, {}
    for k in range(1, 8):
        params, resume = _contents(k, rng)
        checkpoints[k] = dict(params)
        history["loss"].append(float(k))
        writer.write(config={"a": 1}, seed=3, status="running", params=params,
                     history={c: np.asarray(v) for c, v in history.items()}, checkpoints=checkpoints,
                     attrs={"converged_at": None}, resume=resume)
        inodes.append(os.stat(path).st_ino)
        whole = tmp_path / f"whole{k}.h5"
        write_run(whole, config={"a": 1}, seed=3, status="running", params=params, history=history,
                  checkpoints=checkpoints, attrs={"converged_at": None}, resume=resume)
        _assert_same_run(read_run(path), read_run(whole))
    assert (writer.rewrites, writer.appends) == (1, 6)
    assert len(set(inodes)) == 1  # changed in place, never replaced
    writer.write(config={"a": 1}, seed=3, status="max_iterations", params=params, history=history,
                 checkpoints=checkpoints, attrs={"converged_at": 5, "final_accuracy": 0.9})
    data = read_run(path)
    assert data.status == "max_iterations" and data.resume is None and data.attrs["converged_at"] == 5
    assert not journal_path(path).exists()  # a finished writer leaves no journal
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("whole")) == ["run.h5"]


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
@posix_only
def test_a_write_costs_what_it_adds_not_the_file(tmp_path):
    """The bytes a write puts out stay the same as checkpoints pile up, far
    below the file (which a whole rewrite writes): checkpoint writes are O(1)."""
    def written():
        with open("/proc/self/io") as fh:
            return int(next(line for line in fh if line.startswith("wchar:")).split()[1])

    path = tmp_path / "run.h5"
    writer = RunWriter(path)
    rng = np.random.default_rng(1)
    history, checkpoints, cost = {"loss": []}, {}, {}
    for k in range(1, 301):
        params, resume = _contents(k, rng, n_units=64)
        checkpoints[k] = dict(params)
        history["loss"].append(float(k))
        before = written()
        writer.write(config={}, seed=0, status="running", params=params,
                     history={c: np.asarray(v) for c, v in history.items()}, checkpoints=checkpoints,
                     resume=resume)
        cost[k] = written() - before
    writer.close()
    size = os.path.getsize(path)
    early, late = [cost[k] for k in range(40, 80)], [cost[k] for k in range(260, 300)]
    assert np.median(late) < 1.5 * np.median(early), (np.median(early), np.median(late))
    assert np.median(late) < size / 5 and max(late) < size / 3, (np.median(late), max(late), size)
    assert writer.appends == 299 and writer.rewrites == 1


@posix_only
@pytest.mark.parametrize("interval", [0.0, 3600.0], ids=["each-written", "deferred"])
def test_training_appends_and_resumes_bit_for_bit(tmp_path, interval, monkeypatch):
    """A run checkpointed every iteration, interrupted by an exception after a
    few dozen checkpoints, resumes to the parameters of an uninterrupted run:
    whether each checkpoint was written in place when taken, or (a write
    interval longer than the run) the last one was written, as it was when
    taken, on the way out."""
    monkeypatch.setitem(bp.config._values, "min_write_interval", interval)
    task = bp.get_task("flipflop", n_steps=20)
    net = bp.make_network("lfrnn", 3, 3, n_units=12)
    kw = dict(iterations=60, seed=5, checkpoint_every=1, early_stop=False, batch_size=8, eval_batch_size=16)
    full = bp.train(net, task, run_file=tmp_path / "full.h5", **kw)
    import bioplastic.training.loop as loop

    real, calls = loop.loss_and_grads, {"n": 0}

    def interrupted(*a, **k):
        calls["n"] += 1
        if calls["n"] == 38:
            raise KeyboardInterrupt
        return real(*a, **k)

    loop.loss_and_grads = interrupted
    try:
        with pytest.raises(KeyboardInterrupt):
            bp.train(net, task, run_file=tmp_path / "part.h5", **kw)
    finally:
        loop.loss_and_grads = real
    part = read_run(tmp_path / "part.h5")
    assert part.status == "running" and part.resume["iteration"] == 37
    assert sorted(part.checkpoints) == list(range(38))
    resumed = bp.training.resume(tmp_path / "part.h5")
    for name in full.params:
        np.testing.assert_array_equal(resumed.params[name], full.params[name])
    a, b = read_run(tmp_path / "full.h5"), read_run(tmp_path / "part.h5")
    b.config.pop("resumed_at")
    _assert_same_run(a, b)


# -- readers, other writers, older files -------------------------------------------------------

@posix_only
def test_a_reader_holding_the_file_delays_its_update_on_disk_not_the_commits(tmp_path):
    """Commits go on while an HDF5 reader holds the file (it keeps what it
    opened; bioplastic's readers see every commit); a write that must reach
    the disk now, the last of a run, rewrites the file whole instead."""
    path = tmp_path / "run.h5"
    writer = RunWriter(path)
    _write_sequence(writer, 4)  # each commit brings the file on disk up to date
    with h5py.File(path, "r") as reader:  # HDF5 holds a shared flock while open
        before = reader["history/loss"][()]
        assert len(before) == 4
        rewrites, appends = writer.rewrites, writer.appends
        params, history, checkpoints, resume = _write_sequence(writer, 8, start=5)
        assert (writer.rewrites, writer.appends) == (rewrites, appends + 4)
        np.testing.assert_array_equal(reader["history/loss"][()], before)
        assert len(read_run(path).history["loss"]) == 8  # through the journal
        writer.write(config={"model": {"kind": "x"}}, seed=0, status="max_iterations", params=params,
                     history=history, checkpoints=checkpoints)
        assert writer.rewrites == rewrites + 1
        np.testing.assert_array_equal(reader["history/loss"][()], before)
    data = read_run(path)
    assert data.status == "max_iterations" and len(data.history["loss"]) == 9
    assert not journal_path(path).exists()
    with h5py.File(path, "r") as f:
        assert len(f["history/loss"]) == 9 and f.attrs["status"] == "max_iterations"


@posix_only
def test_a_file_changed_by_someone_else_is_rewritten_whole(tmp_path):
    path = tmp_path / "run.h5"
    writer = RunWriter(path)
    _write_sequence(writer, 3)
    with h5py.File(path, "r+") as f:
        f.attrs["status"] = "tampered"
        del f["history/loss"]
    rewrites = writer.rewrites
    params, history, checkpoints, resume = _write_sequence(writer, 4, start=4)
    writer.close()
    assert writer.rewrites == rewrites + 1
    data = read_run(path)
    assert data.status == "running" and len(data.history["loss"]) == 4 and sorted(data.checkpoints) == list(range(5))


def _old_layout(path):
    """Rewrite a run file as bioplastic wrote them before appends: fixed-size
    history columns, compressed parameters."""
    with h5py.File(path, "r+") as f:
        for col in list(f["history"]):
            values = f["history"][col][()]
            del f["history"][col]
            f["history"].create_dataset(col, data=values)
        for name in list(f["params"]):
            values = f["params"][name][()]
            del f["params"][name]
            f["params"].create_dataset(name, data=values, chunks=True, compression="gzip", shuffle=True)


@posix_only
def test_files_of_the_previous_layout_read_and_resume(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC.replace("iterations = 1500", "iterations = 40").replace("checkpoint_every = 1",
                                                                                 "checkpoint_every = 10"))
    s = load_spec(spec)
    task = bp.get_task("flipflop", n_steps=20)
    full = bp.train(network_from_spec(s, task), task, seed=2, run_file=tmp_path / "full.h5", **s["training"])
    import bioplastic.training.loop as loop

    real, calls = loop.loss_and_grads, {"n": 0}

    def interrupted(*a, **k):
        calls["n"] += 1
        if calls["n"] == 25:
            raise KeyboardInterrupt
        return real(*a, **k)

    loop.loss_and_grads = interrupted
    try:
        with pytest.raises(KeyboardInterrupt):
            bp.train(network_from_spec(s, task), task, seed=2, run_file=tmp_path / "part.h5", **s["training"])
    finally:
        loop.loss_and_grads = real
    _old_layout(tmp_path / "part.h5")
    with h5py.File(tmp_path / "part.h5") as f:
        assert f["history/loss"].maxshape == f["history/loss"].shape  # not resizable
    assert read_run(tmp_path / "part.h5").resume["iteration"] == 20
    resumed = bp.training.resume(tmp_path / "part.h5")
    for name in full.params:
        np.testing.assert_array_equal(resumed.params[name], full.params[name])


# -- kill -9 at any moment -----------------------------------------------------------------

def _spawn(args, **kw):
    return subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def _writing_in_place(run_file, pid):
    """Whether process ``pid`` writes ``run_file`` in place (its journal names it)."""
    try:
        raw = journal_path(run_file).read_bytes()
        return json.loads(raw[12:12 + int.from_bytes(raw[8:12], "little")])["pid"] == pid
    except (OSError, ValueError, KeyError):
        return False


@posix_only
def test_kill_9_at_random_moments_then_resume_bit_for_bit(tmp_path):
    """One run checkpointed every iteration, killed with SIGKILL at random
    moments again and again (each time resumed from its file, which must open
    and pass every check), ends bit for bit as an uninterrupted run."""
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    s = load_spec(spec)
    task = bp.get_task("flipflop", n_steps=20)
    ref = bp.train(network_from_spec(s, task), task, seed=9, **s["training"])
    out = tmp_path / "out"
    run_file = out / "run.h5"
    chooser = random.Random(17)
    train = ["-m", "bioplastic", "train", "--model", str(spec), "--seed", "9", "--out", str(out), "--no-progress"]
    resume = ["-m", "bioplastic", "train", "--resume", str(run_file), "--no-progress"]
    kills, seen = 0, []
    proc = _spawn(train)
    while kills < 8:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None and not _writing_in_place(run_file, proc.pid):
            time.sleep(0.005)
        time.sleep(chooser.uniform(0.0, 0.3))  # somewhere in the writes of the next iterations
        if proc.poll() is not None:
            break  # finished before the kill: nothing left to interrupt
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        kills += 1
        data = read_run(run_file)  # opens, passes the schema check, completes a half-done commit
        assert data.status == "running" and data.resume is not None
        check_resumable(data, run_file)
        k = data.resume["iteration"]
        assert sorted(data.checkpoints) == list(range(k + 1)) and len(data.history["loss"]) == k
        seen.append(k)
        proc = _spawn(resume)
    out_text, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    assert kills >= 4, f"the run ended before it could be killed often enough ({seen})"
    assert seen == sorted(seen)
    final = read_run(run_file)
    assert final.status == ref.status and final.resume is None
    for name in ref.params:
        np.testing.assert_array_equal(final.params[name], ref.params[name], err_msg=name)
    np.testing.assert_array_equal(final.history["loss"], ref.history["loss"])
    assert sorted(final.checkpoints) == sorted(ref.checkpoints)
    assert not list(out.glob(".*.tmp")) and not journal_path(run_file).exists()


_KILLED_MID_COMMIT = """
import os, signal, sys
import numpy as np
from bioplastic.io.atomic import locked
from bioplastic.io.runfile import RunWriter
path, stage = sys.argv[1], sys.argv[2]
w = RunWriter(path)
def contents(k):
    return dict(config={{}}, seed=0, status="running", params={{"W": np.full((64, 64), float(k))}},
                history={{"loss": np.arange(k, dtype=float)}},
                checkpoints={{i: {{"W": np.full((64, 64), float(i))}} for i in range(k + 1)}})
w.write(**contents(1))
f = w._file
w._update(f.file, w._attrs, status="running", resume=None, recordings=None,
          **{{k: v for k, v in contents(2).items() if k in ("params", "history", "checkpoints")}})
f.file.flush()
with locked(f._fd, exclusive=True, wait=5):
    if stage == "torn":  # killed while writing the record: only part of it written
        os.pwrite(f._journal._fd, b"BPRECORD" + bytes(100), len(f._journal._header))
    else:
        f._journal.record(f._fd, f._overlay)  # the commit is made
        if stage == "half_applied":  # killed while bringing the file up to date
            size, min_size, pages = f._overlay.changes()
            for index, page in pages[::2]:
                os.pwrite(f._fd, page, index * 4096)
    {mark}
    os.kill(os.getpid(), signal.SIGKILL)
"""


@posix_only
@pytest.mark.parametrize("stage, after", [("torn", 1), ("recorded", 2), ("half_applied", 2)])
def test_a_writer_killed_mid_commit_leaves_the_state_before_or_after(tmp_path, stage, after):
    """A real process SIGKILLed at each step of a commit: with an incomplete
    record the file reads as before; with a complete one, as after (the next
    reader completes the commit), also when it was half written into the file."""
    path = tmp_path / "run.h5"
    marker = tmp_path / "ready"
    script = _KILLED_MID_COMMIT.format(mark=f"open({str(marker)!r}, 'w').close()")
    proc = subprocess.run([sys.executable, "-c", script, str(path), stage], capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert marker.exists() and journal_path(path).exists()
    data = read_run(path)
    assert sorted(data.checkpoints) == list(range(after + 1))
    assert len(data.history["loss"]) == after and np.all(data.params["W"] == after)
    assert not journal_path(path).exists()  # its writer is gone: settled and removed
    with h5py.File(path, "r") as f:  # and plain HDF5 readers see the same file
        assert len(f["checkpoints"]) == after + 1


_WRITING_FOREVER = """
import sys
import numpy as np
from bioplastic.io.runfile import RunWriter
w, rng = RunWriter(sys.argv[1]), np.random.default_rng(0)
history, checkpoints = [], {}
for k in range(10 ** 9):
    checkpoints[k] = {"W": np.full((32, 32), float(k)), "b": rng.standard_normal(32)}
    if k:
        w.write(config={}, seed=0, status="running", params=checkpoints[k],
                history={"loss": np.asarray(history, dtype=float)}, checkpoints=checkpoints,
                resume={"iteration": k, "accuracy": 0.0, "streams": {}, "schedule": {},
                        "optimizer": {"m": {"W": np.full((32, 32), float(k))}}})
    history.append(float(k))
"""


@posix_only
def test_readers_of_a_file_being_written_see_whole_commits(tmp_path):
    """While another process commits as fast as it can, every read is one of
    its commits, whole (later ones as time goes on); plain HDF5 readers see a
    complete file, a little behind."""
    path = tmp_path / "run.h5"
    proc = _spawn(["-c", _WRITING_FOREVER, str(path)])
    try:
        deadline = time.time() + 60
        while time.time() < deadline and not _writing_in_place(path, proc.pid):
            time.sleep(0.01)
        seen, plain = [], []
        end = time.time() + 3
        while time.time() < end:
            data = read_run(path)
            k = data.resume["iteration"]
            assert len(data.history["loss"]) == k and sorted(data.checkpoints) == list(range(k + 1))
            assert np.all(data.params["W"] == k) and np.all(data.checkpoints[k]["W"] == k)
            assert np.all(data.resume["optimizer"]["m"]["W"] == k)
            seen.append(k)
            try:
                with h5py.File(path, "r") as f:
                    plain.append(len(f["history/loss"]))
                    assert len(f["checkpoints"]) == plain[-1] + 1
            except BlockingIOError:  # the file being brought up to date just then
                pass
        assert proc.poll() is None, proc.communicate()[1].decode()
    finally:
        proc.kill()
        proc.communicate()
    assert seen == sorted(seen) and seen[-1] > seen[0] and len(seen) > 10
    assert plain and plain == sorted(plain)
    final = read_run(path)  # the killed writer's last commits, written into the file
    assert final.resume["iteration"] >= seen[-1]
    assert not journal_path(path).exists()


# -- temporaries of killed writers ---------------------------------------------------------------

_KILLED_MID_WRITE = """
import os, signal, sys
from bioplastic.io.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half")
    os.kill(os.getpid(), signal.SIGKILL)
"""


@posix_only
def test_temporaries_of_killed_writers_are_removed_by_the_next_write(tmp_path):
    target = tmp_path / "summary.csv"
    left = []
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-c", _KILLED_MID_WRITE, str(target)], capture_output=True)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
        left.append(sorted(p.name for p in tmp_path.iterdir()))
    # Each killed writer leaves its temporary; the second removed the first's before it wrote.
    assert [len(names) for names in left] == [1, 1] and left[0] != left[1]
    assert left[1][0].startswith(".summary.csv.") and left[1][0].endswith(".tmp")
    # Others' temporaries stay: a live process of this host, and any of another host.
    live = _spawn(["-c", "import time; time.sleep(60)"])
    try:
        host = atomic._host()
        kept = [tmp_path / f".other.h5.{live.pid}@{host}.abcd1234.tmp",
                tmp_path / f".other.h5.{os.getpid()}@{host}.abcd1234.tmp.nwb",
                tmp_path / f".other.h5.{dead_pid()}@elsewhere-{host}.abcd1234.tmp",
                tmp_path / ".other.h5.k2j4x9qa.tmp"]  # written before temporaries named their writer
        for p in kept:
            p.write_bytes(b"")
        with atomic_path(target) as tmp:
            tmp.write_text("a,b\n")
        assert target.read_text() == "a,b\n"
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([target.name] + [p.name for p in kept])
        assert remove_stale_temporaries(tmp_path) == []
    finally:
        live.kill()
        live.communicate()
    assert remove_stale_temporaries(tmp_path) == [kept[0]]


def dead_pid():
    """A pid that no process of this host has (a child that has exited and been reaped)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(proc.stdout)


@posix_only
def test_new_files_follow_the_umask_and_appends_keep_the_mode(tmp_path):
    old = os.umask(0o027)
    try:
        path = tmp_path / "run.h5"
        writer = RunWriter(path)
        _write_sequence(writer, 2)
        assert os.stat(path).st_mode & 0o777 == 0o640
        assert os.stat(journal_path(path)).st_mode & 0o777 == 0o640
        os.chmod(path, 0o644)
        _write_sequence(writer, 4, start=3)
        writer.close()
        assert os.stat(path).st_mode & 0o777 == 0o644 and writer.appends >= 2
    finally:
        os.umask(old)


# -- the benchmark ----------------------------------------------------------------------------

def test_checkpoint_benchmark_runs_and_reports(tmp_path, capsys):
    """`bioplastic bench --checkpoints` (quick): one record per interval, the
    sparsest as the unit; no timing is asserted (speed is the benchmark's to
    measure, not a test's)."""
    from bioplastic.cli import main

    out = tmp_path / "checkpoints.json"
    assert main(["bench", "--checkpoints", "--quick", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "x sparsest" in printed and "checkpoint every" in printed
    records = json.loads(out.read_text())
    assert [(r["every"], r["min_write_interval"]) for r in records] == [(1, 0.25), (10, 0.25), (1, 0.0)]
    assert [r["checkpoints"] for r in records] == [41, 5, 41]
    assert all(r["iterations"] == 40 and r["median_s"] > 0 and r["file_mb"] > 0 for r in records)
    assert records[1]["vs_sparsest"] == 1.0
    assert records[0]["file_mb"] > records[1]["file_mb"]  # every checkpoint is in the file
    assert bp.config.get("min_write_interval") == 0.25  # the benchmark puts the switch back


# -- writes at most every min_write_interval seconds ---------------------------------------------

def test_checkpoints_faster_than_the_write_interval_are_written_together(tmp_path, monkeypatch):
    """With a write interval longer than the run, the running file is written at the
    first checkpoint only and the end carries every checkpoint: the same file, the
    same checkpoints and history, as a run written at every checkpoint."""
    import bioplastic.training.loop as loop

    writes = []

    class CountingWriter(RunWriter):
        def write(self, **fields):
            writes.append(fields["status"])
            return super().write(**fields)

    monkeypatch.setattr(loop, "RunWriter", CountingWriter)
    task = bp.get_task("flipflop", n_steps=20)
    net = bp.make_network("lfrnn", 3, 3, n_units=12)
    kw = dict(iterations=30, seed=2, checkpoint_every=1, early_stop=False, batch_size=8, eval_batch_size=16)
    monkeypatch.setitem(bp.config._values, "min_write_interval", 0.0)
    bp.train(net, task, run_file=tmp_path / "each.h5", **kw)
    assert writes == ["running"] * 30 + ["max_iterations"]  # checkpoints 1 to 30, then the end
    writes.clear()
    monkeypatch.setitem(bp.config._values, "min_write_interval", 3600.0)
    bp.train(net, task, run_file=tmp_path / "deferred.h5", **kw)
    assert writes == ["running", "max_iterations"]
    a, b = read_run(tmp_path / "each.h5"), read_run(tmp_path / "deferred.h5")
    assert sorted(b.checkpoints) == list(range(31))
    _assert_same_run(a, b)


def test_divergence_is_not_overwritten_by_a_deferred_checkpoint(tmp_path, monkeypatch):
    """A diverging run's last write says "diverged": the checkpoint still waiting for
    its write is in it, not written over it on the way out."""
    monkeypatch.setitem(bp.config._values, "min_write_interval", 3600.0)
    net = bp.make_network("lfrnn", 3, 3, n_units=12, g=1.5)
    task = bp.get_task("flipflop", n_steps=20)
    with pytest.raises(bp.DivergenceError):
        bp.train(net, task, iterations=60, optimizer="sgd", lr=1e6, clip=None, seed=0, batch_size=8,
                 eval_batch_size=16, checkpoint_every=1, run_file=tmp_path / "run.h5", early_stop=False)
    data = read_run(tmp_path / "run.h5")
    assert data.status == "diverged" and data.resume is None and len(data.checkpoints) >= 2


def test_the_write_interval_switch_is_checked():
    for bad in (-1, float("nan"), "fast", True):
        with pytest.raises(ConfigError, match="min_write_interval must be a number of seconds >= 0"):
            bp.config.set(min_write_interval=bad)
    bp.config.set(min_write_interval=0)
    assert bp.config.get("min_write_interval") == 0.0
    bp.config.reset()
    assert bp.config.get("min_write_interval") == 0.25


def test_the_write_interval_comes_from_the_environment(tmp_path, monkeypatch, capsys):
    """BIOPLASTIC_MIN_WRITE_INTERVAL sets the default (for the command line and its workers);
    a bad value is a one-line error of the command, before its output folder exists."""
    from bioplastic.cli import main

    monkeypatch.setenv("BIOPLASTIC_MIN_WRITE_INTERVAL", "0")
    bp.config.reset()
    try:
        assert bp.config.get("min_write_interval") == 0.0
        bp.config.set(min_write_interval=2)  # an explicit setting wins
        assert bp.config.get("min_write_interval") == 2.0
        monkeypatch.setenv("BIOPLASTIC_MIN_WRITE_INTERVAL", "soon")
        bp.config.reset()
        argv = ["train", "--model", "lfrnn", "--task", "flipflop", "--iterations", "1", "--out", str(tmp_path / "o")]
        assert main(argv) == 2
        assert "BIOPLASTIC_MIN_WRITE_INTERVAL must be a number of seconds >= 0, got 'soon'" in capsys.readouterr().err
        assert not (tmp_path / "o").exists()
    finally:
        monkeypatch.delenv("BIOPLASTIC_MIN_WRITE_INTERVAL")
        bp.config.reset()
    assert bp.config.get("min_write_interval") == 0.25
