"""Atomic file writes: write a temporary sibling, fsync, then rename over.

``os.replace`` is atomic on POSIX within one filesystem, so a reader (or a
crash) sees either the old complete file or the new complete file, never a
half-written one.

Permissions are those ``open()`` would give: a new file gets
``0o666 & ~umask`` (``tempfile.mkstemp`` alone would leave it 0600, unreadable
by the rest of a lab), and a file that is replaced keeps its mode (so
resuming a run does not change who can read it).
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from ..errors import ConfigError


@contextlib.contextmanager
def atomic_path(path, keep_suffix=False):
    """Yield a temporary path next to ``path``; move it over ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    ``keep_suffix`` ends the temporary name with ``path``'s suffix, for
    writers that insist on an extension (pynwb wants ".nwb").
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(f"output folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"output folder {str(folder)!r} is not writable")
    suffix = ".tmp" + (path.suffix if keep_suffix else "")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, target_mode(path))
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def current_umask() -> int:
    """The process umask, read without changing it where the system tells it
    (Linux: /proc/self/status), else by setting and restoring it."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def target_mode(path) -> int:
    """Mode a write to ``path`` should leave: the existing file's, else ``0o666 & ~umask``."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~current_umask()


def write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
