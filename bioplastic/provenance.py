"""Where a result came from: package version, git commit of the checkout, command, time, seeds (SPEC 9).

Protocol reports (``predictions.json``), NWB files and claims carry this
record; it has its own module so that writers at any level can use it.
"""
from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

from .errors import ConfigError


def provenance(seeds) -> dict:
    """Where a result came from, for ``predictions.json`` (SPEC 9).

    Parameters
    ----------
    seeds : iterable of int or None
        The seeds the caller ran (None: none, recorded as an empty list).

    Returns
    -------
    dict
        ``version`` (``bioplastic.__version__``), ``commit`` (``git rev-parse
        HEAD`` of the checkout the package was imported from; None when that
        folder is not the top of a git checkout or git is missing), ``dirty``
        (``git status --porcelain`` is not empty; None without a commit),
        ``command`` (``" ".join(sys.argv)``), ``timestamp`` (ISO-8601, UTC)
        and ``seeds`` (list of int).

    Examples
    --------
    >>> p = provenance(range(3))
    >>> p["seeds"], sorted(p)
    ([0, 1, 2], ['command', 'commit', 'dirty', 'seeds', 'timestamp', 'version'])
    """
    from ._version import __version__

    if seeds is None:
        seeds = []
    try:
        seeds = [int(s) for s in seeds]
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"provenance: seeds must be a list of ints, got {seeds!r}") from exc
    commit, dirty = _git_state(Path(__file__).resolve().parent.parent)
    return {"version": __version__, "commit": commit, "dirty": dirty, "command": " ".join(sys.argv),
            "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "seeds": seeds}


def _git(folder: Path, *args: str):
    """stdout of ``git -C folder args`` or None (git missing, not a checkout, timeout)."""
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _git_state(folder: Path):
    """(commit, dirty) of the checkout whose top is ``folder``; (None, None) otherwise.

    The top-level check keeps a package installed into site-packages inside
    some other checkout (a venv in a repository) from reporting that
    repository's commit.
    """
    out = _git(folder, "rev-parse", "--show-toplevel", "HEAD")
    if out is None:
        return None, None
    lines = out.split()
    if len(lines) != 2 or Path(lines[0]).resolve() != folder.resolve():
        return None, None
    status = _git(folder, "status", "--porcelain")
    return lines[1], (None if status is None else bool(status.strip()))
