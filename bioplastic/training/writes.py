"""When a running training loop writes its run file: at a checkpoint, at most every few tenths of a second.

A write of the run file costs about 3 ms however small the network (HDF5
metadata, the journal's commit; docs/benchmarks.md), as much as a training
iteration of the default LFRNN. With a checkpoint at every iteration,
writing at each one would double the run's time. So a loop offers each
checkpoint to :class:`CheckpointWrites`, which writes the file when the last
write is at least ``min_write_interval`` seconds old (``bioplastic.config``,
default :data:`DEFAULT_INTERVAL`) and otherwise keeps a copy of the
checkpoint's resume state. The next write that is due carries every
checkpoint taken since; the last write of a run (finished, diverged)
always carries all of them.

What this changes for safety: a run killed with ``kill -9`` (or a machine
losing power) resumes from the last checkpoint written, at most
``min_write_interval`` seconds of work before the kill, and recomputes the
rest bit for bit. An exception in the loop (ctrl-C included) first writes
the last checkpoint taken, exactly as it was when taken, so nothing is
lost. Checkpoints that come more slowly than the interval (most runs) are
each written at once, as before. ``config.set(min_write_interval=0)`` (or
``BIOPLASTIC_MIN_WRITE_INTERVAL=0`` in the environment) writes at every
checkpoint.
"""
from __future__ import annotations

import copy
import time

from .. import config

#: Seconds between writes of a running run file at the most (``config`` switch ``min_write_interval``).
DEFAULT_INTERVAL = 0.25


class CheckpointWrites:
    """Writes of a running run file, at most one every ``interval`` seconds.

    Parameters
    ----------
    write : callable
        ``write(snapshot)`` writes the run file with the loop's state as in
        ``snapshot`` (what ``snapshot(k)`` of :meth:`checkpoint` returned).
    interval : float or None
        Seconds; None: ``config.get("min_write_interval")``.

    Examples
    --------
    >>> written = []
    >>> w = CheckpointWrites(written.append, interval=3600)
    >>> for k in (1, 2, 3):
    ...     w.checkpoint(lambda: {"iteration": k})
    >>> written, w.pending
    ([{'iteration': 1}], {'iteration': 3})
    >>> w.flush(); written
    [{'iteration': 1}, {'iteration': 3}]
    """

    def __init__(self, write, interval=None):
        self.write = write
        self.interval = float(config.get("min_write_interval") if interval is None else interval)
        #: The snapshot of the last checkpoint not yet written (None: all written).
        self.pending = None
        self.writes = 0
        self._last = None

    def checkpoint(self, snapshot) -> None:
        """A checkpoint was taken: write now if due, else keep a copy of ``snapshot()``."""
        now = time.monotonic()
        if self._last is None or now - self._last >= self.interval:
            self.pending = None
            self._write(snapshot())
        else:
            # A copy: the loop's optimiser, schedule and rule state change in place as it goes on.
            self.pending = copy.deepcopy(snapshot())

    def flush(self) -> None:
        """Write the last checkpoint taken, if it is not written yet (before the loop raises)."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            self._write(pending)

    def _write(self, snapshot) -> None:
        self.write(snapshot)
        self.writes += 1
        self._last = time.monotonic()


def flush_and_close(writes: CheckpointWrites, writer) -> None:
    """Before a loop's exception propagates: write the last checkpoint taken, then close the file.

    A failing write here (the disk that made the loop fail, say) is not
    reported: the loop's own exception is the one the user needs, and the
    file on disk stays the complete one of the last write.
    """
    try:
        writes.flush()
    except Exception:  # noqa: BLE001 - the loop's exception is re-raised by the caller
        pass
    finally:
        writer.close()
