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
4 kB pages in memory. A commit (:meth:`Journal.record`) appends the pages
changed since the previous commit, as one record ending with a checksum (the
commit marker), to the writer's journal ``.NAME.journal`` next to the file;
a record already complete is never written over. Then, at every commit,
:meth:`Journal.apply` brings the file up to date: sync the journal, take the
file's exclusive ``flock``, write the pages, release the lock, sync the
file, drop the records. When a reader holds the file (a shared ``flock``)
the apply waits for a later commit and the records pile up in the journal,
each one costing what its commit changed.

A writer killed at any moment leaves every commit that returned in the file
or in a complete record; the last record may be cut short, which loses only
the commit being made (it never returned). A kill during an apply leaves the
file on disk torn until bioplastic next opens it (:func:`open_committed`,
:func:`settle`): it replays the complete records in order, which is harmless
where their pages already are. Meanwhile other HDF5 programs and plain copies
see the torn file. A record is replayed only onto the file it was made for:
same inode, and a first page (the HDF5 superblock) as the records found it or
left it; any other file drops the journal with a warning. A power cut may
lose the commits whose records were not yet synced, never the file (the syncs
order the steps). Readers never see a half-done apply: HDF5 takes a shared
``flock`` when it opens a file, and so do bioplastic's readers, which read a
live writer's waiting records through the journal. Should the file have to
be up to date now (the end of a run) while a reader holds it, the caller
rewrites the file whole (the reader keeps the old file it opened). Where
``flock`` does not work, files are only ever written whole.

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
import warnings
import zlib
from typing import NamedTuple
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
        # The rename durable before anything that relies on it (dropping the old file's journal):
        # a power cut must not keep the unlink and lose the rename.
        _sync_folder(folder)
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
#: The journal: a header naming its writer, then the records of the commits not yet in the file.
_HEAD = b"BPJOURN3"
#: Journals of earlier versions (one record overwritten in place): only their writer is read.
_OLD_HEADS = (b"BPJOURN2",)
_RECORD = b"BPRECORD"
_TAIL = b"BPCOMMIT"
#: Sequence number; size after the commit, smallest size during it, page count; inode and device
#: of the file; CRC of the file's first page (the HDF5 superblock) before and after the commit.
_FIELDS = struct.Struct("<QQQQQQII")
_LENGTH = struct.Struct("<Q")
_INDEX = struct.Struct("<Q")
_CRC = struct.Struct("<I")
_FIXED = len(_RECORD) + _LENGTH.size + _FIELDS.size
#: How long readers wait for a file another process is committing to (s).
LOCK_WAIT = 60.0
#: How long a reader waits for the file to write a killed writer's records into it; it reads
#: through them meanwhile, and a later reader settles them (s).
SETTLE_WAIT = 0.2


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
    own_fd : bool
        Close ``fd`` when the overlay is closed.

    Reads return the file's bytes overlaid with the changed pages; bytes past
    the file's end that were never written read as zeros. A file-like object
    (``seek``/``tell``/``readinto``/``write``/``truncate``), so h5py can open
    it: ``h5py.File(PageOverlay(fd), "r+")``. It keeps two sets of changes:
    all since the file was last brought up to date (:meth:`changes`, what an
    apply writes) and those since the last commit (:meth:`since_commit`, what
    a record holds).
    """

    def __init__(self, fd: int, own_fd=False):
        super().__init__()
        self._fd, self._own_fd = fd, own_fd
        self._disk = os.fstat(fd).st_size
        self._size = self._disk
        # Bytes of the file past this were cut off (truncate) or never existed.
        self._min_size = self._disk
        self._pages = {}
        # Since the last commit: pages changed, smallest size.
        self._dirty, self._cut = set(), self._size
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
        self._dirty.add(index)
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
                self._dirty.add(index)
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
            self._dirty = {i for i in self._dirty if i < first_gone}
            if size % PAGE:
                page = self._page(size // PAGE)
                page[size % PAGE:] = bytes(PAGE - size % PAGE)
            self._disk = min(self._disk, size)
            self._min_size = min(self._min_size, size)
            self._cut = min(self._cut, size)
        self._size = size
        return size

    def flush(self):
        pass

    def close(self):
        if not self.closed and self._own_fd:
            os.close(self._fd)
        super().close()

    def head(self) -> bytes:
        """The first page as it reads (shorter for a shorter file): it identifies the file."""
        n = min(PAGE, self._size)
        page = self._pages.get(0)
        return bytes(page[:n]) if page is not None else self._disk_bytes(0, n)

    def changes(self):
        """``(size, min_size, pages)`` since the file was last brought up to date: what an apply writes."""
        return self._size, self._min_size, sorted(self._pages.items())

    def since_commit(self):
        """``(size, min_size, pages)`` since the last commit: what a record holds."""
        return self._size, self._cut, [(i, self._pages[i]) for i in sorted(self._dirty)]

    def committed(self) -> None:
        """The changes so far are in a record: the next record starts from here."""
        self._dirty, self._cut = set(), self._size

    def settled(self) -> None:
        """The changes are in the file now: go on from it."""
        self._pages.clear()
        self._dirty.clear()
        self._disk = self._min_size = self._cut = self._size

    def replay(self, record) -> None:
        """Make the changes of one record (its size, smallest size and pages), after those so far."""
        if record.min_size < self._size:
            self.truncate(record.min_size)
        for index, page in record.pages:
            self._pages[index] = bytearray(page)
        self._size = record.size


class Record(NamedTuple):
    """One commit, as a journal holds it (see :class:`Journal`)."""
    seq: int
    size: int
    min_size: int
    ino: int
    dev: int
    base: int  # CRC of the file's first page before the commit
    head: int  # and after it
    pages: list


class Contents(NamedTuple):
    """What :func:`read_journal` found: the writer (pid, host; ``{}`` if unreadable), the complete
    records in order, whether one after them was cut short, and the journal's (device, inode)."""
    writer: dict
    records: list
    torn: bool
    ident: tuple


class Journal:
    """The redo journal of a file being changed in place, held by its one writer.

    ``.NAME.journal`` next to the file, created when the writer starts (its
    folder synced, so that it survives a power cut) and removed when it
    stops. It holds a header naming the writer (pid, host), then one record
    per commit not yet in the file, appended in order: the pages changed by
    that commit, the file's size after it and the smallest size on the way,
    the file's inode and the CRC of its first page before and after (what
    identifies the file the record belongs to), a sequence number, and a
    checksum that completes the record (the commit marker).

    Protocol of a commit (:meth:`record`, then :meth:`apply`):

    1. append the record after the last one (never over a complete record:
       a kill cutting it short loses this commit only);
    2. ``fdatasync`` the journal (the file is only ever changed with its
       records on disk);
    3. take the file's exclusive ``flock`` (readers hold a shared one); if a
       reader keeps it, stop here: the records wait for a later commit;
    4. write every page changed since the file was last brought up to date,
       and set its size;
    5. release the lock;
    6. ``fsync`` the file;
    7. drop the records (truncate the journal to its header), under the
       exclusive lock again, taken only if free at once (readers read the
       journal under their shared lock, so never see it half dropped; if a
       reader came in meanwhile, the records stay until the next apply:
       replayed again, they change nothing).

    A writer killed before 7 leaves complete records that whoever next opens
    the file with bioplastic replays in order (:func:`settle`), harmlessly
    where their pages already are. The file on disk is torn only while
    step 4 runs (under the lock: no reader sees it), or after a kill in it.
    """

    def __init__(self, path, fd: int):
        self.path = journal_path(path)
        created = not self.path.exists()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        writer = json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode()
        self._header = _HEAD + struct.pack("<I", len(writer)) + writer
        _pwrite(self._fd, self._header, 0)
        os.ftruncate(self._fd, len(self._header))
        if created:
            _sync_folder(self.path.parent)
        self._end = len(self._header)  # where the next record goes
        self._seq = 0
        self._head = zlib.crc32(os.pread(fd, PAGE, 0))  # the file's first page, as the next record finds it
        _watch_forks()
        _live[_key(self.path)] = self

    @property
    def pending(self) -> bool:
        """Whether records hold commits not yet in the file."""
        return self._end > len(self._header)

    @property
    def waiting(self) -> int:
        """Bytes of records not yet in the file."""
        return self._end - len(self._header)

    def record(self, fd: int, overlay: PageOverlay) -> int:
        """Commit: append ``overlay``'s changes since the last commit as one record; returns its size.

        No lock and no sync: a reader reading the journal meanwhile finds the
        record incomplete and does without it. Raises OSError if the record
        cannot be written whole (a full disk): the commit did not happen.
        """
        size, cut, pages = overlay.since_commit()
        head = zlib.crc32(overlay.head())
        st = os.fstat(fd)
        length = _FIXED + len(pages) * (_INDEX.size + PAGE) + len(_TAIL) + _CRC.size
        fields = _FIELDS.pack(self._seq, size, cut, len(pages), st.st_ino, st.st_dev, self._head, head)
        body = b"".join([_RECORD, _LENGTH.pack(length), fields,
                         *[part for index, page in pages for part in (_INDEX.pack(index), page)]])
        _pwritev(self._fd, [body, _TAIL + _CRC.pack(zlib.crc32(body))], self._end, "journal")
        self._end += length
        self._seq += 1
        self._head = head
        overlay.committed()
        return length

    def apply(self, fd: int, overlay: PageOverlay | None = None, wait: float = 0.0) -> bool:
        """Bring the file ``fd`` up to date with the records (steps 2-7 of the
        protocol, see the class) and ``overlay`` with the file; False if a
        reader kept the file for ``wait`` seconds (the records stay).

        ``overlay`` holds exactly the commits (it is called right after
        :meth:`record`); without it the records are read back from the journal.
        """
        if not self.pending:
            return True
        if _live.get(_key(self.path)) is not self:  # taken over: the file was replaced whole since
            self._end = len(self._header)  # (the journal on disk is the new writer's now)
            return True
        _datasync(self._fd)  # the records first: the file is then only changed with a way forward
        if overlay is None:
            overlay = self._replayed(fd)
        with locked(fd, exclusive=True, wait=wait) as held:
            if not held:
                return False
            _write_pages(fd, *overlay.changes())
        os.fsync(fd)  # the pages on disk before their records go
        with locked(fd, exclusive=True, wait=0.0) as held:
            if held:  # readers read the journal under their shared lock: never one half dropped
                self._drop()
        # (Else the records stay, already in the file: replayed again they change nothing, and
        # the next apply drops them.)
        overlay.settled()
        return True

    def _replayed(self, fd: int) -> PageOverlay:
        """The file with this journal's records replayed, in memory."""
        raw = os.pread(self._fd, self._end, 0)
        overlay = PageOverlay(fd)
        for record in _parse(raw)[1]:
            overlay.replay(record)
        return overlay

    def _drop(self) -> None:
        # (Should this not reach the disk before a power cut, the records are replayed again,
        # which changes nothing: the next fdatasync makes the journal's new length durable.)
        os.ftruncate(self._fd, len(self._header))
        self._end = len(self._header)

    def forget(self) -> None:
        """Drop the records unapplied (their file was replaced whole)."""
        self._drop()

    def close(self) -> None:
        """Remove the journal (kept if it still holds records: :func:`settle` applies them)."""
        if self._fd is None:
            return
        try:
            # Not if another writer of this process has taken the journal over since, nor a
            # journal that replaced this one at its path.
            if _live.get(_key(self.path)) is self and not self.pending:
                st = os.fstat(self._fd)
                _unlink_if(self.path, (st.st_dev, st.st_ino))
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


def _datasync(fd: int) -> None:
    """``fdatasync`` where the system has it (not macOS), else ``fsync``."""
    getattr(os, "fdatasync", os.fsync)(fd)


def _pwrite(fd: int, data, offset: int, what: str = "file") -> None:
    """``os.pwrite`` all of ``data``; a short write (a full disk) is an OSError."""
    n = os.pwrite(fd, data, offset)
    if n != len(data):
        raise OSError(errno.EIO, f"short write to the {what}: {n} of {len(data)} bytes (is the disk full?)")


def _pwritev(fd: int, buffers, offset: int, what: str = "file") -> None:
    """``os.pwritev`` all of ``buffers``; a short write (a full disk) is an OSError."""
    total = sum(len(b) for b in buffers)
    n = os.pwritev(fd, buffers, offset)
    if n != total:
        raise OSError(errno.EIO, f"short write to the {what}: {n} of {total} bytes (is the disk full?)")


def _write_pages(fd, size, min_size, pages) -> None:
    """Write pages into the file and set its size (no sync); a repeat is harmless."""
    if os.fstat(fd).st_size > min_size:
        os.ftruncate(fd, min_size)
    for index, page in pages:
        _pwrite(fd, page, index * PAGE)
    os.ftruncate(fd, size)


def _unlink_if(path: Path, ident: tuple) -> None:
    """Remove ``path`` if it is still the file (device, inode) ``ident``: not one that took its place."""
    with contextlib.suppress(OSError):  # gone, or a folder we may not change
        st = os.stat(path)
        if (st.st_dev, st.st_ino) == ident:
            path.unlink()


def read_journal(journal: Path) -> Contents | None:
    """The :class:`Contents` of a journal; None if there is none."""
    try:
        with open(journal, "rb") as fh:
            st = os.fstat(fh.fileno())
            raw = fh.read()
    except FileNotFoundError:
        return None
    writer, records, torn = _parse(raw)
    return Contents(writer, records, torn, (st.st_dev, st.st_ino))


def _parse(raw: bytes):
    """``(writer, records, torn)`` of a journal's bytes: complete records in order, up to the
    first one cut short (``torn``) or out of sequence (bytes of no record)."""
    writer, at, version = {}, len(_HEAD) + 4, raw[:len(_HEAD)]
    if (version == _HEAD or version in _OLD_HEADS) and len(raw) >= at:
        (n,) = struct.unpack_from("<I", raw, len(_HEAD))
        with contextlib.suppress(ValueError):
            writer = json.loads(raw[at:at + n])
        at += n
    if not isinstance(writer, dict) or not writer:
        return {}, [], False
    if version != _HEAD:  # an earlier version's (its file was complete as of its last apply)
        return writer, [], False
    records = []
    while at < len(raw):
        record, length = _parse_record(raw, at)
        if record is None:
            return writer, records, True
        if records and (record.seq != records[-1].seq + 1 or record.base != records[-1].head):
            break  # not the next commit: bytes of no record
        records.append(record)
        at += length
    return writer, records, False


def _parse_record(raw: bytes, at: int):
    """``(record, length)`` of the record at ``at``; ``(None, 0)`` if it is incomplete."""
    if raw[at:at + len(_RECORD)] != _RECORD or len(raw) < at + _FIXED:
        return None, 0
    (length,) = _LENGTH.unpack_from(raw, at + len(_RECORD))
    end = at + length
    if length < _FIXED + len(_TAIL) + _CRC.size or end > len(raw):
        return None, 0
    body = raw[at:end - len(_TAIL) - _CRC.size]
    if raw[end - len(_TAIL) - _CRC.size:end - _CRC.size] != _TAIL or _CRC.unpack_from(raw, end - _CRC.size)[0] != \
            zlib.crc32(body):
        return None, 0
    seq, size, min_size, n, ino, dev, base, head = _FIELDS.unpack_from(body, len(_RECORD) + _LENGTH.size)
    if len(body) != _FIXED + n * (_INDEX.size + PAGE):
        return None, 0
    view, pages, pos = memoryview(body), [], _FIXED
    for _ in range(n):  # views, not copies
        (index,) = _INDEX.unpack_from(view, pos)
        pages.append((index, view[pos + _INDEX.size:pos + _INDEX.size + PAGE]))
        pos += _INDEX.size + PAGE
    return Record(seq, size, min_size, ino, dev, base, head, pages), length


def _records_for(path, fd: int, contents: Contents | None) -> list:
    """The records of ``contents`` to replay onto the file ``fd``: all of them if they
    were made for it, else none (with a warning when the same inode holds another file)."""
    if contents is None or not contents.records:
        return []
    st = os.fstat(fd)
    if any((r.ino, r.dev) != (st.st_ino, st.st_dev) for r in contents.records):
        return []  # made for a file since replaced whole
    now = zlib.crc32(os.pread(fd, PAGE, 0))
    if now != contents.records[0].base and now not in {r.head for r in contents.records}:
        warnings.warn(f"the journal {str(journal_path(path))!r} was made for another file than "
                      f"{str(path)!r} (replaced by a program that does not know it): not applied",
                      UserWarning, stacklevel=3)
        return []
    return contents.records


def _replay(fd: int, records: list, own_fd=False) -> PageOverlay:
    """``fd`` with ``records`` replayed in order, in memory."""
    overlay = PageOverlay(fd, own_fd=own_fd)
    for record in records:
        overlay.replay(record)
    return overlay


def _writer_alive(journal: Path, writer: dict) -> bool:
    from .lock import holder_alive

    if _key(journal) in _live:
        return True  # a writer of this process
    if writer.get("pid") == os.getpid() and writer.get("host") == socket.gethostname():
        return False  # one of ours that has closed
    return bool(writer) and holder_alive(writer)


@contextlib.contextmanager
def locked(fd: int, exclusive: bool, wait: float):
    """Hold ``flock`` on ``fd`` for the block, trying for ``wait`` seconds.

    Yields True (held), False (another process kept it: nothing held) or
    None (this filesystem has no ``flock``: nothing held; readers go on,
    writers must not change the file in place).
    """
    held = _lock(fd, exclusive, wait)
    try:
        yield held
    finally:
        if held:
            fcntl.flock(fd, fcntl.LOCK_UN)


def _lock(fd: int, exclusive: bool, wait: float):
    """True, False or None as :func:`locked` yields."""
    if fcntl is None:
        return None
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
                return None  # a filesystem without locks (NFS nolock, Lustre without -o flock)
            raise


def open_committed(path, wait: float = LOCK_WAIT):
    """Open ``path`` to read it as of its last commit.

    Returns ``(fd, view)``: a read-only descriptor holding a shared ``flock``
    (the file on disk is not brought up to date while it is open), and None
    when the file on disk is up to date, else a :class:`PageOverlay` over
    ``fd`` showing the commits its journal's records hold (the overlay then
    owns ``fd``). Records left by a writer that is gone are first written
    into the file when this process may and the file is free within
    :data:`SETTLE_WAIT` (:func:`settle`); else they are read through, as
    those of a live writer.

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
            if _lock(fd, exclusive=False, wait=max(0.0, deadline - time.monotonic())) is False:
                raise SchemaError(f"{str(path)!r} stayed locked by another process for {wait:g} s")
            contents = read_journal(journal)
            alive = contents is not None and _writer_alive(journal, contents.writer)
            while contents is not None and contents.torn and alive and time.monotonic() < deadline:
                time.sleep(0.001)  # a live writer writing a record: a commit about to be complete
                contents = read_journal(journal)
        except BaseException:
            os.close(fd)
            raise
        if contents is not None and not alive and not settled and os.access(path, os.W_OK):
            os.close(fd)  # a killed writer's journal: its commits go into the file, the journal goes
            settle(path, wait=min(SETTLE_WAIT, max(0.0, deadline - time.monotonic())))
            settled = True
            continue
        records = _records_for(path, fd, contents)
        if not records:
            return fd, None
        return fd, _replay(fd, records, own_fd=True)


def settle(path, wait: float = LOCK_WAIT) -> bool:
    """Write into ``path`` the commits its journal holds, if its writer is gone; remove that journal.

    Cheap when there is nothing to do (no journal, or a live writer's).
    Complete records are replayed in order once no process holds the file;
    one cut short is a commit that never happened. Returns False when the
    journal stays: the file was held by another process for ``wait``
    seconds, or may not be changed by this one (readers then read through
    the records).
    """
    path = Path(path)
    journal = journal_path(path)
    if not journal.exists():
        return True
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return True
    except PermissionError:
        return False  # not ours to change
    try:
        contents = read_journal(journal)
        if contents is None or _writer_alive(journal, contents.writer):
            return True
        with locked(fd, exclusive=True, wait=wait) as held:
            if held is False:
                return False
            settle_locked(path, fd)  # (without flock: best effort, as HDF5's)
        return True
    finally:
        os.close(fd)


def other_writer(path, fd: int) -> bool:
    """Whether another live process writes ``path`` in place (its journal names it)."""
    journal = journal_path(path)
    contents = read_journal(journal)
    return contents is not None and bool(contents.writer) and _key(journal) not in _live and \
        _writer_alive(journal, contents.writer)


def settle_locked(path, fd: int) -> None:
    """:func:`settle` for a caller holding the exclusive lock of ``path`` on ``fd``:
    replay the records, ``fsync`` the file, then remove the journal (if it is
    still the one read)."""
    journal = journal_path(path)
    contents = read_journal(journal)
    if contents is None or _writer_alive(journal, contents.writer):
        return
    records = _records_for(path, fd, contents)
    if records:
        _write_pages(fd, *_replay(fd, records).changes())
        os.fsync(fd)
    _unlink_if(journal, contents.ident)  # (if it stays, its records, replayed again, change nothing)


def drop_stale_record(path) -> None:
    """After ``path`` was replaced whole: its journal's records were made for the
    file replaced and must never be applied to this one, so the journal goes
    (a live writer's of this process keeps its header; another live process's
    is its own, and its records name the old inode)."""
    journal = journal_path(path)
    live = _live.get(_key(journal))
    if live is not None:
        live.forget()
        return
    with contextlib.suppress(OSError):
        contents = read_journal(journal)
        if contents is not None and not (contents.writer and _writer_alive(journal, contents.writer)):
            _unlink_if(journal, contents.ident)
