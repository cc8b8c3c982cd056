"""Progress feedback for long work: the compile notice and a bar whose ETA skips compilation.

The first run on a machine (or after an edit to a kernel, see
:mod:`bioplastic._kernel_cache`) compiles bioplastic's numba kernels, which
takes about 20 s and looks like a hang: the first training iteration
carries all of it. :func:`compile_notice` says so on stderr, once per
process, and only when numba really compiles (its on-disk cache missed):
it listens to numba's ``numba:compile`` event, which numba raises after a
cache miss and never for a cache hit. The listener is installed only while
a bar is open, so ``import bioplastic`` registers nothing.

:class:`ProgressBar` is tqdm's bar that also excludes the time before its
first update from the rate and the ETA (the first iteration compiles), and
announces compilation while it is open.
"""
from __future__ import annotations

import contextlib
import sys

from tqdm.auto import tqdm

MESSAGE = "compiling kernels (first run only, about 20 s)"
_state = {"announced": False}


def _ours(data) -> bool:
    # The notice is about bioplastic's kernels; a user's own numba code compiling
    # in another thread meanwhile is none of its business.
    func = getattr((data or {}).get("dispatcher"), "py_func", None)
    return str(getattr(func, "__module__", "")).split(".")[0] == "bioplastic"


def announce(file=None) -> bool:
    """Print :data:`MESSAGE` to ``file`` (stderr) unless this process already did; True if printed."""
    if _state["announced"]:
        return False
    _state["announced"] = True
    tqdm.write(MESSAGE, file=sys.stderr if file is None else file)  # above any open bar, not through it
    return True


def _listener_class():
    try:
        from numba.core import event
    except ImportError:  # pragma: no cover - an older or stripped numba: no notice, no failure
        return None, None

    class _CompileListener(event.Listener):
        def on_start(self, ev):
            if _ours(ev.data):
                announce()

        def on_end(self, ev):
            pass

    return event, _CompileListener


@contextlib.contextmanager
def compile_notice(enabled: bool = True):
    """Within the block, the first compilation of a bioplastic kernel prints :data:`MESSAGE` (once per process).

    Parameters
    ----------
    enabled : bool
        False does nothing (quiet runs: ``progress=False``).

    Examples
    --------
    >>> with compile_notice():
    ...     pass  # run kernels here; a cache miss prints the notice on stderr
    """
    event, cls = _listener_class() if enabled and not _state["announced"] else (None, None)
    if cls is None:
        yield
        return
    listener = cls()
    event.register("numba:compile", listener)
    try:
        yield
    finally:
        event.unregister("numba:compile", listener)


class ProgressBar(tqdm):
    """tqdm's bar for loops whose first step compiles kernels.

    The time before the first :meth:`update` (compilation, first
    evaluation) is left out of the rate and the ETA, and while the bar is
    open a kernel compilation prints :data:`MESSAGE` (see
    :func:`compile_notice`). Arguments are tqdm's.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._first = True
        self._notice = compile_notice(enabled=not self.disable)
        self._notice.__enter__()

    def update(self, n=1):
        if self._first:
            self._first = False
            self.unpause()  # restart the clock: the first step compiled
        return super().update(n)

    def close(self):
        notice, self._notice = getattr(self, "_notice", None), None
        if notice is not None:
            notice.__exit__(None, None, None)
        super().close()
