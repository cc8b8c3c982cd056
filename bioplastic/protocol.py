"""Finding, loading and running protocol scripts (``protocols/*.py``).

A protocol is a short script with a module docstring and a function::

    def main(out: pathlib.Path, quick: bool = False, seeds: int | None = None) -> dict

that writes its outputs (run files, PNG figures, ``predictions.json``,
``report.md``) into ``out`` and returns the predictions. Protocols hold no new
maths: they call the library.

A protocol's settings are two module-level tables, ``FULL`` and ``QUICK``
(``--quick``); ``bioplastic run PROTOCOL --set KEY=VALUE`` changes one key
of the table the run uses (:func:`override_settings`), refusing keys and
values the protocol does not know, and ``predictions.json`` records the
overrides (``"settings_overrides"``).
"""
from __future__ import annotations

import copy
import difflib
import importlib.util
import json
import sys
from pathlib import Path

from .errors import ConfigError
from .io.atomic import write_text
from .io.overrides import format_override, parse_override
from .io.specs import resolve
from .registry import check_keys

#: The expected form of a protocol's ``--set``, quoted in error messages.
SETTINGS_FORM = "KEY=VALUE or TABLE.KEY=VALUE (e.g. seeds=3, budgets.flipflop=500, tasks=[\"flipflop\"])"


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


def run_protocol(name_or_path, out=None, *, quick=False, seeds=None, workers=None, scheduler=None,
                 overrides=()) -> dict:
    """Run a protocol into ``out`` (default ``runs/<name>``); returns its predictions.

    ``workers`` (local processes) and ``scheduler`` (a Dask scheduler
    address) choose where its jobs run (:mod:`bioplastic.backends`).
    ``overrides`` (``"KEY=VALUE"`` strings, ``--set``) change the protocol's
    settings (:func:`override_settings`); they are checked before the output
    folder is created. The output folder is locked while the protocol runs
    (:func:`bioplastic.io.lock.output_lock`): a second protocol into the same
    folder is refused, naming the first.
    """
    from .backends import use_backend

    module = load_protocol(name_or_path)
    name = Path(module.__file__).stem
    overrides = [format_override(o) for o in overrides or ()]
    if overrides:  # main() reads FULL or QUICK when it runs: replace, in this fresh import, the one it reads
        table = "QUICK" if quick and isinstance(getattr(module, "QUICK", None), dict) else "FULL"
        setattr(module, table, override_settings(module, overrides, quick=quick))
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
        pred = module.main(out, quick=quick, seeds=seeds)
        if overrides:
            pred = _note_overrides(out, pred, overrides)
    return pred


def _note_overrides(out: Path, pred, overrides: list) -> dict:
    """Record ``--set`` overrides in the protocol's ``predictions.json`` (and returned predictions):
    its results were made with settings other than the protocol's own."""
    path = out / "predictions.json"
    if path.is_file():
        saved = json.loads(path.read_text())
        if isinstance(saved, dict):
            write_json(path, {**saved, "settings_overrides": overrides})
    return {**pred, "settings_overrides": overrides} if isinstance(pred, dict) else pred


def protocol_settings(module, quick=False) -> dict:
    """A copy of the settings table a protocol module runs with (``QUICK`` with ``quick``, else ``FULL``).

    Raises
    ------
    ConfigError
        If the protocol has no ``FULL`` table (``reproduce`` runs other
        protocols and has no settings of its own).
    """
    name = Path(module.__file__).stem
    full, fast = getattr(module, "FULL", None), getattr(module, "QUICK", None)
    if not isinstance(full, dict):
        raise ConfigError(f"protocol {name!r} has no settings table (FULL) that --set could change")
    return copy.deepcopy(fast if quick and isinstance(fast, dict) else full)


def override_settings(module, overrides, quick=False) -> dict:
    """A protocol's settings (:func:`protocol_settings`) with ``--set`` overrides applied.

    Each override is ``KEY=VALUE`` or ``TABLE.KEY=VALUE``, VALUE a TOML value
    (see :func:`bioplastic.io.overrides.parse_value`). The keys a protocol
    knows are those of its ``FULL`` and ``QUICK`` tables (a key only the
    quick table has, such as ``budget_scale``, can be set for a full run).
    Each value must be of the kind the protocol's tables hold there: an
    integer where they hold an integer, a list where a list; a list of names
    (tasks, rules, cells, conditions) may only name what the full table
    names (a bare ``flipflop,delayed_addition`` is read as that list); a
    table is merged key by key.

    Parameters
    ----------
    module
        The protocol (:func:`load_protocol`).
    overrides : iterable of str
    quick : bool

    Returns
    -------
    dict

    Raises
    ------
    ConfigError
        On a malformed override, an unknown key (naming the closest valid
        one), a value of the wrong kind or an unknown name in a list.
    """
    name = Path(module.__file__).stem
    settings = protocol_settings(module, quick)
    refs = [t for t in (getattr(module, "FULL", None), getattr(module, "QUICK", None)) if isinstance(t, dict)]
    for text in overrides:
        path, value = parse_override(text, min_parts=1, form=SETTINGS_FORM)
        node, here = settings, refs
        for i, key in enumerate(path):
            table = ".".join(path[:i])
            known = set(node).union(*(r for r in here if isinstance(r, dict)))
            check_keys(f"--set {text!r}: protocol {name!r} has no setting" if not table else
                       f"--set {text!r}: protocol {name!r}'s table {table!r} has no key", {key}, known)
            here = [r[key] for r in here if isinstance(r, dict) and key in r]
            if i == len(path) - 1:
                break
            child = node.get(key, copy.deepcopy(next((r for r in here if isinstance(r, dict)), None)))
            if not isinstance(child, dict):
                raise ConfigError(f"--set {text!r}: {'.'.join(path[:i + 1])!r} is {child!r}, not a table, "
                                  "so it has no keys to set")
            node[key] = child
            node = child
        node[path[-1]] = _setting_value(f"--set {text!r}", ".".join(path), value, node.get(path[-1]), here)
    if "seeds" in settings and (isinstance(settings["seeds"], bool) or not isinstance(settings["seeds"], int)
                                or settings["seeds"] < 1):
        raise ConfigError(f"--set seeds: the number of seeds must be an integer >= 1, got {settings['seeds']!r}")
    return settings


def _setting_value(where: str, key: str, value, current, refs: list):
    """``value`` checked against the protocol's values at ``key`` (``refs``: its FULL and QUICK values)."""
    ref = next((r for r in [current, *refs] if r is not None), None)
    number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    if ref is None:
        return value
    if isinstance(ref, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {key} must be true or false, got {value!r}")
    elif isinstance(ref, int):
        if not (isinstance(value, int) and not isinstance(value, bool)):
            raise ConfigError(f"{where}: {key} must be an integer, got {value!r}")
    elif isinstance(ref, float):
        if not number(value):
            raise ConfigError(f"{where}: {key} must be a number, got {value!r}")
    elif isinstance(ref, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where}: {key} must be a string, got {value!r}")
    elif isinstance(ref, (list, tuple)):
        names = {v for r in refs if isinstance(r, (list, tuple)) for v in r if isinstance(v, str)}
        if isinstance(value, str) and names:  # tasks=flipflop,delayed_addition
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{where}: {key} must be a list such as {list(ref)[:2]!r}, got {value!r}")
        if names:
            bad = [v for v in value if v not in names]
            if bad:
                close = difflib.get_close_matches(str(bad[0]), sorted(names), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"{where}: {key} has {bad[0]!r}{hint}; the protocol knows: "
                                  f"{', '.join(sorted(names))}")
        elif ref and all(number(v) for v in ref) and not all(number(v) for v in value):
            raise ConfigError(f"{where}: {key} must be a list of numbers, got {value!r}")
    elif isinstance(ref, dict):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {key} is a table with keys {', '.join(sorted(ref))}; set one as "
                              f"{key}.{next(iter(sorted(ref)), 'KEY')}=VALUE or give a table {{...}}")
        merged = copy.deepcopy(current) if isinstance(current, dict) else {}
        subrefs = [r for r in refs if isinstance(r, dict)]
        for sub, v in value.items():
            check_keys(f"{where}: unknown key(s) of {key}", {sub}, set(merged).union(*subrefs))
            merged[sub] = _setting_value(where, f"{key}.{sub}", v, merged.get(sub),
                                         [r[sub] for r in subrefs if sub in r])
        return merged
    return value


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

    from .memory import tune_if_wanted

    tune_if_wanted(default=True)  # the script owns its process, as the CLI does

    ap = argparse.ArgumentParser(description=(doc or name).strip().split("\n")[0])
    ap.add_argument("--out", default=f"runs/{name}")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int)
    a = ap.parse_args()
    main(a.out, quick=a.quick, seeds=a.seeds)
