"""Opening bioplastic HDF5 files: with their schema checked, or to change them in place."""
from __future__ import annotations

import atexit
import contextlib
import os
import weakref
from pathlib import Path

import h5py

from .._version import __version__
from ..errors import SchemaError
from .atomic import LOCK_WAIT, Journal, PageOverlay, locked, open_committed, other_writer, settle_locked

#: How long an in-place writer waits for readers before it rewrites the file whole instead (s).
READER_WAIT = 0.2


def open_checked(path, schema: str, version, what: str, hint: str = "") -> h5py.File:
    """Open ``path`` read-only and check its ``schema`` and ``schema_version`` attributes.

    ``what`` names the kind of file in messages ("run file", "analysis
    file"); ``hint`` is appended when the file does not exist; ``version`` is
    the version read, or a collection of the versions read. Raises
    SchemaError for a missing, non-HDF5 (or truncated), foreign or
    other-version file; the caller closes the returned file (``with``).

    The file is read as of its last commit: commits a live writer has not
    yet brought into the file on disk are read through its journal, those a
    killed writer left are first written into the file, and a file being
    brought up to date is waited for (:func:`~bioplastic.io.atomic.open_committed`).
    """
    path = Path(path)
    if not path.exists():
        raise SchemaError(f"{what} {str(path)!r} does not exist{hint}")
    if path.is_dir():
        raise SchemaError(f"{what} {str(path)!r} is a folder, not an HDF5 file")
    f = _open_settled(path)
    versions = (version,) if isinstance(version, int) else tuple(version)
    found = f.attrs.get("schema")
    if found != schema:
        f.close()
        raise SchemaError(f"{str(path)!r} is not a bioplastic {what} "
                          f"(schema attribute {found!r}, expected {schema!r})")
    found_version = int(f.attrs.get("schema_version", -1))
    if found_version not in versions:
        f.close()
        raise SchemaError(f"{what} {str(path)!r} has schema version {found_version}; this bioplastic "
                          f"({__version__}) reads version {' or '.join(map(str, versions))}")
    return f


def _open_settled(path: Path, wait: float = LOCK_WAIT) -> h5py.File:
    fd, view = open_committed(path, wait)
    try:
        if view is not None:  # commits not yet in the file: read through its journal's record
            return _ViewFile(view)
        # Our shared lock keeps the file as it is until HDF5 holds its own.
        return h5py.File(path, "r")
    except OSError as exc:
        if view is not None:
            view.close()
        detail = " ".join(str(exc).split())  # HDF5's message spans lines: keep the error on one
        raise SchemaError(f"{str(path)!r} is not a readable HDF5 file ({detail})") from exc
    finally:
        if view is None:
            os.close(fd)


class _ViewFile(h5py.File):
    """An h5py file read through a :class:`~bioplastic.io.atomic.PageOverlay`, closed with it
    (the overlay holds the shared lock that keeps commits out)."""

    def __init__(self, view):
        super().__init__(view, "r")
        self._view = view

    def close(self):
        try:
            super().close()
        finally:
            self._view.close()


#: Bytes of commits waiting in the journal (a reader holding the file) beyond which a commit
#: rewrites the file whole instead: the reader keeps the old file, so this happens once per reader.
MAX_JOURNAL = 16 << 20


class InPlaceFile:
    """An HDF5 file kept open for changes committed atomically, again and again.

    ``file`` is an ``h5py.File`` (mode ``"r+"``) over a
    :class:`~bioplastic.io.atomic.PageOverlay`: changes stay in memory until
    :meth:`commit` makes all of them part of the file at once (a redo
    journal, :class:`~bioplastic.io.atomic.Journal`); a kill at any moment
    leaves the file as of the last commit or of this one. HDF5 keeps its
    caches between commits and a commit writes what changed, so it costs
    what it changes, not what the file holds. Each commit also brings the
    file on disk up to date, unless a reader holds it: then the commits wait
    in the journal (bioplastic's readers see them through it, other programs
    the file as last brought up to date) until a later commit or
    :meth:`close` finds the file free.

    Open it with :meth:`open`, which returns None where the file cannot be
    changed in place (no working ``flock`` on this filesystem, no write
    permission, a reader holding the file for :data:`READER_WAIT`, or
    another process writing it in place): the caller writes it whole
    (:func:`~bioplastic.io.atomic.atomic_path`).
    """

    def __init__(self, path, fd, journal, overlay, file):
        self.path, self._fd, self._journal, self._overlay, self.file = Path(path), fd, journal, overlay, file
        #: The file's (device, inode, size, mtime_ns) after the last commit: who changes it later shows.
        self.stamp = _stamp(fd)
        _hooks()
        _open_files.add(self)

    @classmethod
    def open(cls, path):
        try:
            fd = os.open(path, os.O_RDWR)
        except PermissionError:  # a read-only file in a writable folder can still be replaced whole
            return None
        try:
            with locked(fd, exclusive=True, wait=READER_WAIT) as held:
                # None: no flock here, so no way to keep readers off a half-applied file.
                if not held or other_writer(path, fd):  # a reader holds the file; another writer has it
                    os.close(fd)
                    return None
                settle_locked(path, fd)  # commits a killed writer left in its journal
                journal = Journal(path, fd)
        except BaseException:
            os.close(fd)
            raise
        try:
            overlay = PageOverlay(fd)
            return cls(path, fd, journal, overlay, h5py.File(overlay, "r+"))
        except BaseException:
            journal.close()
            os.close(fd)
            raise

    def commit(self, durable: bool = False, wait: float = READER_WAIT) -> bool:
        """Make the changes so far part of the file, atomically, and bring the
        file on disk up to date if no reader holds it.

        The commit is the record appended to the journal
        (:meth:`~bioplastic.io.atomic.Journal.record`); bringing the file up
        to date (:meth:`~bioplastic.io.atomic.Journal.apply`) then tries the
        file's lock once, or for ``wait`` seconds when it must happen now: a
        ``durable`` commit (the last of a run), or :data:`MAX_JOURNAL` bytes
        of commits waiting. False when it must and a reader (HDF5 readers
        hold a shared ``flock`` while open) kept the file: then close this
        object and write the file whole (the reader keeps the file it opened).
        """
        self.file.flush()
        self._journal.record(self._fd, self._overlay)
        must = durable or self._journal.waiting >= MAX_JOURNAL
        if not self._journal.apply(self._fd, self._overlay, wait=wait if must else 0.0) and must:
            return False
        self.stamp = _stamp(self._fd)
        return True

    def close(self) -> None:
        """Bring the file on disk up to date with the commits waiting (if no
        reader holds it: else the next to open it does), then close it,
        dropping what was not committed."""
        if self._fd is None:
            return
        try:
            # From the journal's records, not the overlay: it may hold changes never committed.
            self._journal.apply(self._fd, wait=READER_WAIT)
            self.file.close()  # its last writes land in the overlay and are dropped with it
        finally:
            self._journal.close()
            os.close(self._fd)
            self._fd = None
            _open_files.discard(self)


def _stamp(fd):
    st = os.fstat(fd)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


_open_files = weakref.WeakSet()
_hooked: list = []


def _hooks() -> None:
    """Registered on first use (importing bioplastic changes nothing in the process): at exit,
    bring the files of runs that ended by an exception up to date; a forked child leaves that
    to its parent."""
    if not _hooked:
        atexit.register(_close_open_files)
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_open_files.clear)
        _hooked.append(True)


def _close_open_files():
    for f in list(_open_files):
        with contextlib.suppress(Exception):  # at exit, one file's trouble must not stop the others
            f.close()
