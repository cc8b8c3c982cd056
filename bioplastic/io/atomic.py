"""Atomic file writes: write a temporary sibling, fsync, then rename over.

``os.replace`` is atomic on POSIX within one filesystem, so a reader (or a
crash) sees either the old complete file or the new complete file, never a
half-written one.
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
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)
