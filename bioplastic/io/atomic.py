"""Atomic file writes: whole files (temporary sibling + rename) and in-place
changes (a redo journal).

**Whole files.** :func:`atomic_path` writes a temporary sibling, fsyncs it and
renames it over the target. ``os.replace`` is atomic on POSIX within one
filesystem, so a reader (or a crash) sees either the old complete file or the
new complete file, never a half-written one. The temporary name carries the
writer's pid and host (``.run.h5.1234@node7.k2j4x9qa.tmp``): a writer killed
outright leaves it behind, and the next write into that folder removes the
temporaries of writers of this host that are gone (:func:`remove_stale_temporaries`).

**In-place changes.** Appending to a big file by rewriting it costs the whole
file each time. :class:`PageOverlay` opens the file for changes that reach it
all at once or not at all: reads see the file plus the changes, writes change
4 kB pages in memory. A commit (:meth:`Journal.record`) writes every page
changed since the file was last brought up to date, as one record ending with
a checksum (the commit marker), into the writer's journal ``.NAME.journal``
next to the file. Every so often (a megabyte or a tenth of a second of
commits, and at the end) :meth:`Journal.apply`, under the file's exclusive
``flock``, syncs the record, writes its pages into the file, syncs the file
and drops the record.

So the file on disk is always complete: as of the last apply, with the
commits since in the record. A writer killed at any moment leaves the file
with every commit up to its last complete record: whoever next opens the file
with bioplastic (:func:`open_committed`, :func:`settle`) writes the record
into it, which is harmless where pages already are; an incomplete record is a
commit that never happened. A power cut may lose the commits since the last
apply, never the file (the syncs order the steps). Readers never see a
half-done apply: HDF5 takes a shared ``flock`` when it opens a file, and so
do bioplastic's readers, which read a live writer's commits through its
record. A reader holding the file delays bringing it up to date; should that
be needed now, the caller rewrites the file whole (the reader keeps the old
file it opened).

Permissions are those ``open()`` would give: a new file gets
``0o666 & ~umask`` (``tempfile.mkstemp`` alone would leave it 0600, unreadable
by the rest of a lab), and a file that is replaced keeps its mode (so
resuming a run does not change who can read it).
"""
from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import re
import socket
import struct
import tempfile
import time
import zlib
from pathlib import Path

from ..errors import ConfigError, SchemaError

try:  # POSIX; elsewhere files are only ever rewritten whole
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None


@contextlib.contextmanager
def atomic_path(path, keep_suffix=False):
    """Yield a temporary path next to ``path``; move it over ``path`` on success.

    On any exception the temporary file is removed and ``path`` is untouched.
    ``keep_suffix`` ends the temporary name with ``path``'s suffix, for
    writers that insist on an extension (pynwb wants ".nwb"). Temporaries
    left in the folder by killed writers are removed first.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(f"output folder {str(folder)!r} does not exist")
    if not os.access(folder, os.W_OK):
        raise ConfigError(f"output folder {str(folder)!r} is not writable")
    remove_stale_temporaries(folder)
    suffix = ".tmp" + (path.suffix if keep_suffix else "")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}@{_host()}.", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, target_mode(path))
        os.replace(tmp, path)
        drop_stale_record(path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


# -- temporaries of killed writers ------------------------------------------------------------
#: ``.<target>.<pid>@<host>.<random>.tmp[.<suffix>]``, as :func:`atomic_path` names them.
_TEMP_NAME = re.compile(r"^\..+\.(?P<pid>\d+)@(?P<host>[A-Za-z0-9_-]*)\.[A-Za-z0-9_]+\.tmp(\.[^.]+)?$")


def _host() -> str:
    # Dots would make the name ambiguous; the folder may be shared by several hosts.
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())


def remove_stale_temporaries(folder) -> list[Path]:
    """Remove temporaries of :func:`atomic_path` whose writer was killed; return them.

    Only temporaries written on this host by a process that no longer runs
    are removed: a pid of another host cannot be checked from here (the folder
    may be on a shared filesystem), and a live writer's file is its own.
    """
    from .lock import holder_alive

    host, removed = _host(), []
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            m = _TEMP_NAME.match(entry.name)
            if m is None or m["host"] != host:
                continue
            if holder_alive({"host": socket.gethostname(), "pid": int(m["pid"])}):
                continue
            with contextlib.suppress(FileNotFoundError):
                os.remove(entry.path)
                removed.append(Path(entry.path))
    return removed


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


# -- in-place changes through a redo journal ----------------------------------------------
PAGE = 4096
#: The journal: a header naming its writer, then at most one record (the commits not yet in the file).
_HEAD = b"BPJOURN2"
_RECORD = b"BPRECORD"
_TAIL = b"BPCOMMIT"
# size after the commit, smallest size during it, page count, inode and device of the file
_FIELDS = struct.Struct("<QQQQQ")
_LENGTH = struct.Struct("<Q")
_INDEX = struct.Struct("<Q")
#: How long readers wait for a file another process is committing to (s).
LOCK_WAIT = 60.0


def journal_path(path) -> Path:
    """The journal of in-place commits to ``path``: ``.NAME.journal`` next to it."""
    path = Path(path)
    return path.with_name(f".{path.name}.journal")


class PageOverlay(io.RawIOBase):
    """A file seen with pending changes held in memory, 4 kB page by page.

    Parameters
    ----------
    fd : int
        Open descriptor of the file underneath (read with ``os.pread``, never
        written: :class:`Journal` writes the changes into the file).
    pages, size, min_size : optional
        Start with these changes (a journal's record, :func:`open_committed`).
    own_fd : bool
        Close ``fd`` when the overlay is closed.

    Reads return the file's bytes overlaid with the changed pages; bytes past
    the file's end that were never written read as zeros. A file-like object
    (``seek``/``tell``/``readinto``/``write``/``truncate``), so h5py can open
    it: ``h5py.File(PageOverlay(fd), "r+")``.
    """

    def __init__(self, fd: int, pages=None, size=None, min_size=None, own_fd=False):
        super().__init__()
        self._fd, self._own_fd = fd, own_fd
        self._disk = os.fstat(fd).st_size if size is None else min(os.fstat(fd).st_size, min_size)
        self._size = self._disk if size is None else size
        # Bytes of the file past this were cut off (truncate) or never existed.
        self._min_size = self._disk if min_size is None else min_size
        self._pages = dict(pages or {})
        self._pos = 0

    def readable(self):
        return True

    def writable(self):
        return True

    def seekable(self):
        return True

    def seek(self, pos, whence=os.SEEK_SET):
        base = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self._size}[whence]
        if base + pos < 0:
            raise ValueError("negative seek position")
        self._pos = base + pos
        return self._pos

    def tell(self):
        return self._pos

    def _disk_bytes(self, pos, n) -> bytes:
        data = os.pread(self._fd, max(0, min(n, self._disk - pos)), pos) if pos < self._disk else b""
        return data + bytes(n - len(data))

    def _page(self, index) -> bytearray:
        page = self._pages.get(index)
        if page is None:
            page = self._pages[index] = bytearray(self._disk_bytes(index * PAGE, PAGE))
        return page

    def readinto(self, buffer):
        view = memoryview(buffer).cast("B")
        n = max(0, min(len(view), self._size - self._pos))
        done = 0
        while done < n:
            pos = self._pos + done
            index, offset = divmod(pos, PAGE)
            page = self._pages.get(index)
            if page is not None:
                take = min(PAGE - offset, n - done)
                view[done:done + take] = page[offset:offset + take]
            else:  # one read for the run of unchanged pages
                end = index + 1
                while end * PAGE < pos + n - done and end not in self._pages:
                    end += 1
                take = min(end * PAGE - pos, n - done)
                view[done:done + take] = self._disk_bytes(pos, take)
            done += take
        self._pos += n
        return n

    def write(self, data):
        view = memoryview(data).cast("B")
        done = 0
        while done < len(view):
            index, offset = divmod(self._pos + done, PAGE)
            take = min(PAGE - offset, len(view) - done)
            if take == PAGE:  # a whole page: nothing of the old one to keep
                self._pages[index] = bytearray(view[done:done + PAGE])
            else:
                self._page(index)[offset:offset + take] = view[done:done + take]
            done += take
        self._pos += done
        self._size = max(self._size, self._pos)
        return done

    def truncate(self, size=None):
        size = self._pos if size is None else int(size)
        if size < self._size:
            # What lies past the new end must read as zeros if the file grows again.
            first_gone = -(-size // PAGE)
            for index in [i for i in self._pages if i >= first_gone]:
                del self._pages[index]
            if size % PAGE:
                page = self._page(size // PAGE)
                page[size % PAGE:] = bytes(PAGE - size % PAGE)
            self._disk = min(self._disk, size)
            self._min_size = min(self._min_size, size)
        self._size = size
        return size

    def flush(self):
        pass

    def close(self):
        if not self.closed and self._own_fd:
            os.close(self._fd)
        super().close()

    def changes(self):
        """``(size, min_size, pages)``: what a commit writes (see :class:`Journal`)."""
        return self._size, self._min_size, sorted(self._pages.items())

    def settled(self) -> None:
        """The changes are in the file now: go on from it."""
        self._pages.clear()
        self._disk = self._min_size = self._size


class Journal:
    """The redo journal of a file being changed in place, held by its one writer.

    ``.NAME.journal`` next to the file, created when the writer starts (its
    folder synced, so that it survives a power cut) and removed when it
    stops. It holds a header naming the writer (pid, host) and, while some
    commits are not yet in the file, one record of them: every page changed
    since the file was last brought up to date, the file's size after them
    and the smallest size on the way, the file's inode, and a checksum that
    completes the record (the commit marker).

    :meth:`record` (a commit) rewrites the record: a few hundred kB, no sync,
    so a commit costs about what it changes. :meth:`apply` brings the file up
    to date: sync the record, write its pages into the file, sync the file,
    drop the record. In between, the file on disk is that of the last apply
    (complete: other programs may read it) and bioplastic's readers read it
    through the record (:func:`open_committed`). Killed at any moment, the
    writer leaves the file with the commits up to the last complete record
    (:func:`settle` applies it); a power cut may lose the commits since the
    last apply, never the file.
    """

    def __init__(self, path):
        self.path = journal_path(path)
        created = not self.path.exists()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        writer = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode()
        self._header = _HEAD + struct.pack("<I", len(writer)) + writer
        os.pwrite(self._fd, self._header, 0)
        os.ftruncate(self._fd, len(self._header))
        if created:
            _sync_folder(self.path.parent)
        self._last = None  # the last record: (size, min_size, its bytes, page count)
        _watch_forks()
        _live[_key(self.path)] = self

    def record(self, fd: int, overlay: PageOverlay) -> int:
        """Commit: make ``overlay``'s changes (all since the last :meth:`apply`)
        the journal's record, complete with its checksum; returns its size.
        No lock needed: a reader reading the journal meanwhile finds the record
        incomplete and reads the file as last brought up to date."""
        size, min_size, pages = overlay.changes()
        st = os.fstat(fd)
        length = len(_RECORD) + _LENGTH.size + _FIELDS.size + len(pages) * (_INDEX.size + PAGE) + len(_TAIL) + 4
        head = _RECORD + _LENGTH.pack(length) + _FIELDS.pack(size, min_size, len(pages), st.st_ino, st.st_dev)
        body = head + b"".join([part for index, page in pages for part in (_INDEX.pack(index), page)])
        # One write, no truncation: the record says how long it is, what follows is ignored.
        os.pwritev(self._fd, [body, _TAIL + struct.pack("<I", zlib.crc32(body))], len(self._header))
        self._last = (size, min_size, body, len(pages))
        return length

    @property
    def pending(self) -> bool:
        """Whether a record holds commits not yet in the file."""
        return self._last is not None

    def forget(self) -> None:
        """Drop the record unapplied (its file was replaced whole)."""
        self._last = None
        os.pwrite(self._fd, bytes(len(_RECORD)), len(self._header))

    def apply(self, fd: int, overlay: PageOverlay | None = None) -> None:
        """Bring the file ``fd`` up to date with the last record (sync it, write
        its pages, sync the file, drop it) and ``overlay`` with the file. The
        caller holds the file's exclusive lock."""
        if self._last is None:
            return
        if _live.get(_key(self.path)) is not self:  # taken over: the file was replaced whole since
            self._last = None
            return
        size, min_size, body, n = self._last
        os.fdatasync(self._fd)  # the record first: the file is then only changed with a way back
        _apply(fd, size, min_size, _pages(body, n))
        self._last = None
        # Dropped. (Should this not reach the disk before a power cut, the record is applied
        # again, which changes nothing.)
        os.pwrite(self._fd, bytes(len(_RECORD)), len(self._header))
        if overlay is not None:
            overlay.settled()

    def close(self) -> None:
        """Remove the journal (kept if it still holds a record: :func:`settle` applies it)."""
        if self._fd is None:
            return
        try:
            # Not if another writer of this process has taken the journal over since.
            if _live.get(_key(self.path)) is self and self._last is None:
                with contextlib.suppress(FileNotFoundError):
                    self.path.unlink()
        finally:
            os.close(self._fd)
            self._fd = None
            if _live.get(_key(self.path)) is self:
                del _live[_key(self.path)]


#: Journals of this process's writers, by path: theirs, however this process's pid reads.
_live: dict = {}
_fork_hooks: list = []


def _watch_forks() -> None:
    """A forked child must not take its parent's journals for its own (registered on first use:
    importing bioplastic changes nothing in the process)."""
    if not _fork_hooks and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_live.clear)
        _fork_hooks.append(_live.clear)


def _key(path) -> str:
    return os.path.abspath(path)  # not realpath: no system call per path component


def _sync_folder(folder) -> None:
    with contextlib.suppress(OSError):  # not every system can open a folder
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _apply(fd, size, min_size, pages) -> None:
    """Write a record's pages into the file and sync it; a repeat is harmless."""
    if os.fstat(fd).st_size > min_size:
        os.ftruncate(fd, min_size)
    for index, page in pages:
        os.pwrite(fd, page, index * PAGE)
    os.ftruncate(fd, size)
    os.fsync(fd)


def _read_journal(journal: Path, fd: int):
    """``(writer, record)`` of a journal: the writer's pid and host (``{}`` if
    unreadable), and ``(size, min_size, pages)`` of its record if it holds a
    complete one made for the file ``fd``; :data:`TORN` for a record cut
    short; else None (no record, or one made for a file since replaced
    whole). ``(None, None)`` without a journal."""
    try:
        raw = journal.read_bytes()
    except FileNotFoundError:
        return None, None
    writer, at = {}, len(_HEAD) + 4
    if raw.startswith(_HEAD) and len(raw) >= at:
        (n,) = struct.unpack_from("<I", raw, len(_HEAD))
        with contextlib.suppress(ValueError):
            writer = json.loads(raw[at:at + n])
        at += n
    if not isinstance(writer, dict) or not writer:
        return {}, None
    if raw[at:at + len(_RECORD)] != _RECORD:
        return writer, None  # no record: the file is up to date
    head = at + len(_RECORD) + _LENGTH.size
    length = _LENGTH.unpack_from(raw, at + len(_RECORD))[0] if len(raw) >= head else 0
    end = at + length
    if length < len(_RECORD) + _LENGTH.size + _FIELDS.size + len(_TAIL) + 4 or end > len(raw):
        return writer, TORN
    body = raw[at:end - len(_TAIL) - 4]
    if raw[end - len(_TAIL) - 4:end - 4] != _TAIL or struct.unpack_from("<I", raw, end - 4)[0] != zlib.crc32(body):
        return writer, TORN
    size, min_size, n, ino, dev = _FIELDS.unpack_from(body, len(_RECORD) + _LENGTH.size)
    st = os.fstat(fd)
    if (ino, dev) != (st.st_ino, st.st_dev) or len(body) != len(_RECORD) + _LENGTH.size + _FIELDS.size + n * (
            _INDEX.size + PAGE):
        return writer, None  # made for a file since replaced whole
    return writer, (size, min_size, _pages(body, n))


#: What :func:`_read_journal` gives for a record cut short: its writer is writing it (a reader
#: waits for it), or was killed writing it (a commit that never happened).
TORN = "torn"


def _pages(body, n: int) -> list:
    """The ``(index, page)`` pairs of a record's bytes (views, not copies)."""
    view, at, pages = memoryview(body), len(_RECORD) + _LENGTH.size + _FIELDS.size, []
    for _ in range(n):
        (index,) = _INDEX.unpack_from(view, at)
        pages.append((index, view[at + _INDEX.size:at + _INDEX.size + PAGE]))
        at += _INDEX.size + PAGE
    return pages


def _writer_alive(journal: Path, writer: dict) -> bool:
    from .lock import holder_alive

    if _key(journal) in _live:
        return True  # a writer of this process
    if writer.get("pid") == os.getpid() and writer.get("host") == socket.gethostname():
        return False  # one of ours that has closed
    return bool(writer) and holder_alive(writer)


@contextlib.contextmanager
def locked(fd: int, exclusive: bool, wait: float):
    """Hold ``flock`` on ``fd`` for the block, trying for ``wait`` seconds; yields
    False (holding nothing) if another process kept it. Where ``flock`` is not
    supported the block runs unlocked (yields True)."""
    if not _lock(fd, exclusive, wait):
        yield False
        return
    try:
        yield True
    finally:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_UN)


def _lock(fd: int, exclusive: bool, wait: float) -> bool:
    if fcntl is None:
        return True
    mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    deadline, delay = time.monotonic() + wait, 0.001
    while True:
        try:
            fcntl.flock(fd, mode)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(delay)
            delay = min(2 * delay, 0.05)
        except OSError as exc:
            if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                return True  # a filesystem without locks: as HDF5's "best-effort"
            raise


def open_committed(path, wait: float = LOCK_WAIT):
    """Open ``path`` to read it as of its last commit.

    Returns ``(fd, view)``: a read-only descriptor holding a shared ``flock``
    (the file on disk is not brought up to date while it is open), and None
    when the file on disk is up to date, else a :class:`PageOverlay` over
    ``fd`` showing the commits its journal's record holds (the overlay then
    owns ``fd``). A record left by a writer that is gone is first written
    into the file when this process may (:func:`settle`).

    Raises
    ------
    SchemaError
        If another process keeps the file locked for ``wait`` seconds.
    """
    path = Path(path)
    journal = journal_path(path)
    deadline = time.monotonic() + wait
    settled = False
    while True:
        fd = os.open(path, os.O_RDONLY)
        try:
            if not _lock(fd, exclusive=False, wait=max(0.0, deadline - time.monotonic())):
                raise SchemaError(f"{str(path)!r} stayed locked by another process for {wait:g} s")
            writer, record = _read_journal(journal, fd) if journal.exists() else (None, None)
            alive = writer is not None and _writer_alive(journal, writer)
            while record is TORN and alive and time.monotonic() < deadline:
                time.sleep(0.001)  # a live writer writing its record: a commit about to be complete
                writer, record = _read_journal(journal, fd)
        except BaseException:
            os.close(fd)
            raise
        if writer is not None and not settled and not alive and os.access(path, os.W_OK):
            os.close(fd)  # a killed writer's journal: its commits go into the file, the journal goes
            settle(path, wait=max(0.0, deadline - time.monotonic()))
            settled = True
            continue
        if record is None or record is TORN:
            return fd, None
        size, min_size, pages = record
        return fd, PageOverlay(fd, pages={i: bytearray(p) for i, p in pages}, size=size, min_size=min_size,
                               own_fd=True)


def settle(path, wait: float = LOCK_WAIT) -> None:
    """Write into ``path`` the commits its journal holds, if its writer is gone; remove that journal.

    Cheap when there is nothing to do (no journal, or a live writer's). A
    complete record is applied once no process holds the file; an
    incomplete one means its commit never happened.

    Raises
    ------
    SchemaError
        If the file stays held by another process for ``wait`` seconds.
    """
    path = Path(path)
    journal = journal_path(path)
    if not journal.exists():
        return
    try:
        fd = os.open(path, os.O_RDWR)
    except (FileNotFoundError, PermissionError):
        return  # gone, or not ours to change (readers read through the record)
    try:
        if _writer_alive(journal, _read_journal(journal, fd)[0] or {}):
            return
        if not _lock(fd, exclusive=True, wait=wait):
            raise SchemaError(f"{str(path)!r} is held by another process; the commits a killed writer "
                              f"left in {str(journal)!r} cannot be written into it now, try again later")
        try:
            settle_locked(path, fd)
        finally:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def other_writer(path, fd: int) -> bool:
    """Whether another live process writes ``path`` in place (its journal names it)."""
    journal = journal_path(path)
    writer = _read_journal(journal, fd)[0] if journal.exists() else None
    return bool(writer) and _key(journal) not in _live and _writer_alive(journal, writer)


def settle_locked(path, fd: int) -> None:
    """:func:`settle` for a caller holding the exclusive lock of ``path`` on ``fd``."""
    journal = journal_path(path)
    writer, record = _read_journal(journal, fd)
    if writer is None or _writer_alive(journal, writer):
        return
    if record is not None and record is not TORN:
        _apply(fd, *record)
    with contextlib.suppress(FileNotFoundError, PermissionError):
        journal.unlink()  # (a folder we may not change: the record, applied again, changes nothing)


def drop_stale_record(path) -> None:
    """After ``path`` was replaced whole: its journal's record was made for the
    file replaced and must never be applied to this one (should its inode
    number come back), so the journal goes (a live writer's of this process
    keeps its header)."""
    journal = journal_path(path)
    live = _live.get(_key(journal))
    if live is not None:
        live.forget()
        return
    with contextlib.suppress(OSError):  # (one left behind only holds records for another inode)
        journal.unlink()
