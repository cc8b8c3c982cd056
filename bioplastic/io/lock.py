"""One writer per output folder: a lock file naming the process that holds it.

``bioplastic train`` and ``bioplastic sweep`` hold :func:`output_lock` on
their output folder while they write to it, so two commands given the same
``--out`` cannot silently overwrite each other's run files: the second one
stops with an error naming the first (pid, host, command, start time).

The lock is the file ``FOLDER/.bioplastic.lock``, created atomically
(``O_CREAT | O_EXCL``) and holding JSON::

    {"pid": 1234, "host": "node7", "started": "2026-11-25T10:00:00+00:00",
     "command": "bioplastic train --out run/", "token": "...", "pid_start": 8812345}

It is removed when the holder leaves the ``with`` block, also on an
exception or Ctrl-C. A process killed outright (``kill -9``, a node crash)
leaves it behind: a lock whose process is gone on this host is *stale* and
the next writer takes it over with a warning. A lock from another host
cannot be checked from here and is always respected; the error says which
file to delete once that process is known to be gone.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import sys
import time
import uuid
import warnings
from pathlib import Path

from ..errors import ConfigError

#: Name of the lock file inside a locked folder.
LOCK_NAME = ".bioplastic.lock"
#: A takeover guard older than this (s) was left by a process that died mid-takeover.
_GUARD_STALE_SECONDS = 10.0


def _pid_start(pid: int):
    """Start time of ``pid`` in clock ticks since boot (Linux), else None.

    Recorded with the pid so that a pid reused by an unrelated process after
    the holder died is not mistaken for the holder.
    """
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    # fields[0] is the state (field 3 of stat), so starttime (field 22) is fields[19]
    return int(fields[19]) if len(fields) > 19 and fields[19].isdigit() else None


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def holder_alive(info: dict) -> bool:
    """Whether the process recorded in a lock may still be running.

    True for a lock of another host (it cannot be checked from here); on
    this host, False when the pid does not exist, is a zombie or has been
    reused by a process started at another time.
    """
    if info.get("host") != socket.gethostname():
        return True
    pid = info.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    if _is_zombie(pid):
        return False
    recorded, now = info.get("pid_start"), _pid_start(pid)
    return recorded is None or now is None or recorded == now


def read_lock(path) -> dict | None:
    """The JSON of a lock file; None if it does not exist; ``{}`` if unreadable."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        info = json.loads(text)
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def describe_holder(info: dict) -> str:
    """``pid 1234 on host 'node7' (bioplastic train --out run/), started 2026-...``."""
    return (f"pid {info.get('pid', '?')} on host {info.get('host', '?')!r} "
            f"({info.get('command') or 'unknown command'}), started {info.get('started', '?')}")


def _create(path: Path, info: dict) -> bool:
    """Create the lock file holding ``info``; False if it already exists."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(json.dumps(info))
    return True


@contextlib.contextmanager
def _takeover_guard(lock: Path):
    """Serialise takeovers of a stale lock; yields False if another process is taking it over.

    Without it two processes that both saw the same stale lock could each
    delete it, the second deleting the lock the first had just created.
    """
    guard = lock.with_name(lock.name + ".takeover")
    try:
        fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        with contextlib.suppress(OSError):
            if time.time() - guard.stat().st_mtime > _GUARD_STALE_SECONDS:
                guard.unlink()
        yield False
        return
    os.close(fd)
    try:
        yield True
    finally:
        with contextlib.suppress(FileNotFoundError):
            guard.unlink()


def acquire_lock(folder, *, command=None, log=None, _attempts=200) -> dict:
    """Take the lock of ``folder`` (which must exist); see :func:`output_lock`.

    Returns
    -------
    dict : the lock's contents (with the ``"path"`` of the lock file)

    Raises
    ------
    ConfigError
        If a live process holds the lock (named in the message), or the lock
        belongs to another host, or it is unreadable.
    """
    folder = Path(folder)
    path = folder / LOCK_NAME
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "command": command if command is not None else _command_line(),
            "token": uuid.uuid4().hex, "pid_start": _pid_start(os.getpid())}
    for _ in range(_attempts):
        try:
            if _create(path, info):
                return {**info, "path": str(path)}
        except OSError as exc:
            raise ConfigError(f"cannot create the lock file {str(path)!r}: {exc}") from exc
        held = read_lock(path)
        if held is None:  # released between our attempt and the read: try again
            continue
        if not held:
            # A holder writes its JSON right after creating the file; give it a moment.
            time.sleep(0.05)
            if not read_lock(path):
                raise ConfigError(f"output folder {str(folder)!r} has an unreadable lock file {str(path)!r}; "
                                  "delete it if no other bioplastic process writes to this folder")
            continue
        if holder_alive(held):
            if held.get("host") != info["host"]:
                raise ConfigError(f"output folder {str(folder)!r} is locked by {describe_holder(held)}; "
                                  f"if that process has ended, delete {str(path)!r}, or use another output folder")
            raise ConfigError(f"output folder {str(folder)!r} is in use by {describe_holder(held)}; "
                              "wait for it to finish or use another output folder")
        with _takeover_guard(path) as ours:
            if not ours:
                time.sleep(0.02)
                continue
            # Re-read under the guard: only the very lock seen as stale may be removed.
            again = read_lock(path)
            if again and again.get("token") == held.get("token") and again.get("pid") == held.get("pid"):
                path.unlink()
                message = (f"took over the stale lock of {describe_holder(held)} on {str(folder)!r}: "
                           "that process is gone")
                if log is not None:
                    log(message)
                else:
                    warnings.warn(message, RuntimeWarning, stacklevel=3)
    raise ConfigError(f"could not take the lock {str(path)!r}: other processes keep taking it")


def release_lock(lock: dict) -> None:
    """Remove a lock taken by :func:`acquire_lock`, if it is still ours."""
    path = Path(lock["path"])
    held = read_lock(path)
    if held and held.get("token") == lock["token"]:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def output_lock(folder, *, command=None, log=None):
    """Hold the one-writer lock of an output folder for the ``with`` block.

    Parameters
    ----------
    folder : path of an existing folder
    command : str or None
        What the holder is doing, shown to a process that finds the folder
        locked (default: this process's command line).
    log : callable or None
        Receives the one-line note when a stale lock is taken over (default:
        a ``RuntimeWarning``).

    Yields
    ------
    dict : the lock's contents (pid, host, started, command, token, path)

    Raises
    ------
    ConfigError
        If another live process holds the folder; the message names its pid,
        host, command and start time.

    Examples
    --------
    >>> import tempfile
    >>> from bioplastic.io.lock import output_lock
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with output_lock(d, command="example") as lock:
    ...         try:
    ...             with output_lock(d):
    ...                 pass
    ...         except ValueError as exc:
    ...             print("in use by pid" in str(exc))
    True
    """
    lock = acquire_lock(folder, command=command, log=log)
    try:
        yield lock
    finally:
        release_lock(lock)


def _command_line() -> str:
    argv = list(sys.argv)
    if argv and Path(argv[0]).name in ("bioplastic", "__main__.py"):
        argv[0] = "bioplastic"
    return " ".join(argv)
