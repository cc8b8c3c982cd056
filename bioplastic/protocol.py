"""Finding, loading and running protocol scripts (``protocols/*.py``).

A protocol is a short script with a module docstring and a function::

    def main(out: pathlib.Path, quick: bool = False, seeds: int | None = None) -> dict

that writes its outputs (run files, PNG figures, ``predictions.json``,
``report.md``) into ``out`` and returns the predictions. Protocols hold no new
maths: they call the library.
"""
from __future__ import annotations

import datetime
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from .errors import ConfigError
from .io.atomic import write_text
from .io.specs import resolve


def load_protocol(name_or_path):
    """Import a protocol by name (in ``protocols/``) or path; returns the module."""
    path = resolve(name_or_path, "protocols", (".py",))
    name = f"bioplastic_protocol_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # so local worker processes (forked) can unpickle its functions
    spec.loader.exec_module(module)
    try:  # Dask workers cannot import the script by name: ship its functions by value
        import cloudpickle

        cloudpickle.register_pickle_by_value(module)
    except (ImportError, AttributeError):  # pragma: no cover - without dask's cloudpickle
        pass
    if not callable(getattr(module, "main", None)):
        raise ConfigError(f"protocol {str(path)!r} has no main(out, quick, seeds) function")
    return module


def run_protocol(name_or_path, out=None, *, quick=False, seeds=None, workers=None, scheduler=None) -> dict:
    """Run a protocol into ``out`` (default ``runs/<name>``); returns its predictions.

    ``workers`` (local processes) and ``scheduler`` (a Dask scheduler
    address) choose where its jobs run (:mod:`bioplastic.backends`). The
    output folder is locked while the protocol runs
    (:func:`bioplastic.io.lock.output_lock`): a second protocol into the same
    folder is refused, naming the first.
    """
    from .backends import use_backend

    module = load_protocol(name_or_path)
    name = Path(module.__file__).stem
    out = Path(out) if out is not None else Path("runs") / name
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create output folder {str(out)!r}: {exc}") from exc
    if seeds is not None and seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    from .io.lock import output_lock

    # One writer per output folder: two protocols into one folder would mix their run files.
    with output_lock(out), use_backend(workers=workers, scheduler=scheduler):
        return module.main(out, quick=quick, seeds=seeds)


def run_record(results, wall: float) -> dict:
    """How a protocol's jobs ran, for ``predictions.json``: ``wall_seconds``, ``backend``
    and ``reused`` ('' or ' (N of M runs reused from finished run files)')."""
    from .backends import backend_description

    n = sum(bool(r.get("reused")) for r in results if isinstance(r, dict))
    reused = f" ({n} of {len(results)} runs reused from finished run files)" if n else ""
    return {"wall_seconds": wall, "backend": backend_description(), "reused": reused}


def wall_time_line(pred: dict) -> str:
    """The report's last line, from :func:`run_record`'s fields."""
    return f"Wall time: {pred['wall_seconds']:.0f} s ({pred['backend']}){pred.get('reused', '')}."


def write_outputs(out, pred: dict, report: str, plot=None) -> dict:
    """A protocol's last step: ``predictions.json``, the figures (``plot()``), ``report.md``;
    prints the report and returns ``pred``."""
    out = Path(out)
    write_json(out / "predictions.json", pred)
    if plot is not None:
        plot()
    write_text(out / "report.md", report)
    print(report)
    return pred


def write_json(path, obj) -> None:
    """Write JSON atomically, with NaN as null."""
    write_text(path, json.dumps(_clean(obj), indent=2, sort_keys=False) + "\n")


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


def _clean(obj):
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and obj != obj:
        return None
    return obj


def map_jobs(fn, jobs, *, workers=None, progress=True, desc="jobs"):
    """Run ``fn`` over ``jobs`` on the current back end (local processes by default,
    or the Dask scheduler of ``bioplastic run --scheduler``); returns (results in
    job order, wall time in s). See :func:`bioplastic.backends.map_jobs`."""
    from .backends import map_jobs as _map

    return _map(fn, jobs, workers=workers, progress=progress, desc=desc)


def resolve_settings(full: dict, quick_settings: dict, quick: bool, seeds, out) -> tuple[dict, Path]:
    """The protocol's settings (quick or full, ``seeds`` overriding) and its
    output folder, created with a ``runs/`` sub-folder for the run files."""
    settings = dict(quick_settings if quick else full)
    if seeds is not None:
        settings["seeds"] = int(seeds)
    out = Path(out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    return settings, out


def script_main(main, doc: str, name: str) -> None:
    """Command line for ``python protocols/NAME.py [--out DIR] [--quick] [--seeds N]``."""
    import argparse

    ap = argparse.ArgumentParser(description=(doc or name).strip().split("\n")[0])
    ap.add_argument("--out", default=f"runs/{name}")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int)
    a = ap.parse_args()
    main(a.out, quick=a.quick, seeds=a.seeds)
