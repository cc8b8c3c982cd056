"""Reading population activity and trials from NWB files (SPEC 7, 11); pynwb is the ``nwb`` extra.

:func:`read_nwb` cuts a recording into trials, time first, for
:func:`bioplastic.compare.compare_conditions`. It reads three kinds of file:

- one written by :func:`bioplastic.export.nwb.export_nwb` (activity series
  ``<what>_it<iteration>`` in ``acquisition``, inputs and targets in
  ``stimulus``): trials are cut exactly as they were laid end to end;
- a session laid out like a DANDI set: a trials table plus a ``TimeSeries``
  (in ``acquisition``, ``processing`` or nested in a container such as
  ``Fluorescence``), cut into equal windows from each trial's start;
- a session with a units table (``series="units"``): each unit's spike
  times counted in bins of ``bin_width`` seconds and divided by it (Hz).

:func:`read_activity` does the same for a bioplastic run file with
recordings, giving the trial table the NWB export would write, so a run
and an NWB file can be compared directly.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from ..errors import ConfigError, SchemaError


@dataclass
class Activity:
    """Activity cut into trials, with its trial table.

    Attributes
    ----------
    activity : ndarray, shape (T, n_trials, n_channels)
        Time first, like every bioplastic recording.
    trials : dict of str to ndarray, each (n_trials,)
        The trial table: ``id``, ``start_time``, ``stop_time`` (s, session
        clock) and every other column; ragged columns are object arrays of
        1-D arrays, text columns object arrays of str.
    bin_seconds : float
        Time between samples (the bin width for units).
    times : ndarray, shape (T,)
        Each sample's time from its trial's start, s (bin starts for units).
    series : str
        What was read ("rates", a TimeSeries name, "units").
    source : str
        "bioplastic" (an exported run), "run file", "timeseries" or "units".
    checkpoint : int or None
        Training iteration of the activity (bioplastic files).
    checkpoints : list of int
        Every iteration the file holds for ``series`` (bioplastic files).
    provenance : dict or None
        The export's provenance JSON (config, seed, versions, commit).
    """

    activity: np.ndarray
    trials: dict
    bin_seconds: float
    times: np.ndarray
    series: str
    source: str
    checkpoint: int | None = None
    checkpoints: list = field(default_factory=list)
    provenance: dict | None = None


def _pynwb():
    try:
        import pynwb
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ConfigError("reading NWB needs pynwb: pip install 'bioplastic[nwb]'") from exc
    return pynwb


def read_nwb(path, series="rates", *, checkpoint=None, window=None, bin_width=0.01) -> Activity:
    """Population activity and trials from an NWB file, cut into trials (see module doc).

    Parameters
    ----------
    path : path
        The NWB file.
    series : str, default "rates"
        A bioplastic export: the recorded array ("rates", "states",
        "outputs", ...) or "inputs" / "targets" (from ``stimulus``). Other
        files: the name (or path, e.g. "processing/ophys/Fluorescence/dff")
        of a TimeSeries, or "units" to bin the units table's spike times.
    checkpoint : int, optional
        Training iteration (bioplastic exports; default the last).
    window : (float, float), optional
        Seconds from each trial's start to cut (DANDI-style files; default
        from 0 to the shortest trial's duration).
    bin_width : float, default 0.01
        Bin width in seconds when counting spikes (``series="units"``).

    Returns
    -------
    Activity
        ``activity`` (T, n_trials, channels), ``trials`` and their timing.

    Raises
    ------
    ConfigError
        If the file does not exist or an option is invalid.
    SchemaError
        If it is not a readable NWB file, has no trials table, lacks the
        series (the message lists what it has), or a trial's window falls
        outside the recording.

    Examples
    --------
    >>> rec = read_nwb("run.nwb", "rates")          # doctest: +SKIP
    >>> rec.activity.shape, sorted(rec.trials)[:3]  # doctest: +SKIP
    ((80, 16, 64), ['choice', 'coherence', 'condition'])
    """
    _pynwb()
    from pynwb import NWBHDF5IO

    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"NWB file {str(path)!r} is a folder, not a file")
    if not path.is_file():
        raise ConfigError(f"NWB file {str(path)!r} does not exist")
    try:
        io = NWBHDF5IO(str(path), "r")
        nwb = io.read()
    except Exception as exc:  # noqa: BLE001 - pynwb raises many types for foreign files
        raise SchemaError(f"{str(path)!r} is not a readable NWB file ({type(exc).__name__}: {exc})") from exc
    with io:
        if nwb.trials is None or len(nwb.trials) == 0:
            raise SchemaError(f"{str(path)!r} has no trials table (intervals/trials); read_nwb cuts activity "
                              "into trials and needs one")
        trials = _trials(nwb.trials)
        prov = _provenance(nwb)
        ours = _checkpoint_series(nwb, series)
        if ours or (prov is not None and series in nwb.stimulus):
            return _read_ours(nwb, path, series, ours, checkpoint, trials, prov)
        if checkpoint is not None:
            raise ConfigError(f"checkpoint={checkpoint} only applies to files written by bioplastic; "
                              f"{str(path)!r} has no series {series}_it<iteration>")
        w0, w1 = _window(window, trials)
        if series == "units":
            return _read_units(nwb, path, trials, w0, w1, bin_width)
        ts = _find_series(nwb, path, series)
        return _read_timeseries(ts, path, series, trials, w0, w1)


def read_activity(path, series="rates", *, checkpoint=None, time_unit=1e-2, **nwb_options) -> Activity:
    """Like :func:`read_nwb`, but ``path`` may also be a bioplastic run file with recordings.

    A run file gives the activity recorded at ``checkpoint`` (default: last)
    and the trial table the NWB export writes (times in seconds with
    ``time_unit`` seconds per model time unit). Anything else is read with
    :func:`read_nwb` (``nwb_options``: ``window``, ``bin_width``).
    """
    path = Path(path)
    if not _is_run_file(path):
        return read_nwb(path, series, checkpoint=checkpoint, **nwb_options)
    from ..export.nwb import select_checkpoints, trial_columns
    from .runfile import read_run

    data = read_run(path)
    if not data.recordings or not data.recordings["at"]:
        raise SchemaError(f"run file {str(path)!r} has no recordings; train with record=... to record activity")
    batch = data.recordings["trials"]
    T, dt_s = batch.T, batch.dt * time_unit
    k = None
    if series in ("inputs", "targets"):
        arr, offset = getattr(batch, series), (0.0 if series == "inputs" else dt_s)
    else:
        k = select_checkpoints(data.recordings["at"], "last" if checkpoint is None else checkpoint, path)[0]
        rec = data.recordings["at"][k]
        if series not in rec:
            raise SchemaError(f"run file {str(path)!r} recorded {sorted(rec)} at iteration {k}, not {series!r}")
        arr, offset = np.asarray(rec[series]), dt_s
        if arr.ndim == 3 and arr.shape[0] == T + 1:
            arr = arr[1:]  # as in the export: samples after each Euler step
    table = {"id": np.arange(batch.batch_size)}
    for name, (values, _) in trial_columns(batch, data.config["task"], time_unit).items():
        table[name] = _as_column(values)
    return Activity(activity=np.asarray(arr, dtype=float), trials=table, bin_seconds=dt_s,
                    times=offset + np.arange(T) * dt_s, series=series, source="run file", checkpoint=k,
                    checkpoints=sorted(data.recordings["at"]) if k is not None else [])


def _is_run_file(path):
    from .runfile import SCHEMA

    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("schema") == SCHEMA
    except OSError:
        return False


def _as_column(values):
    if isinstance(values, list):
        out = np.empty(len(values), dtype=object)
        out[:] = [np.asarray(v) for v in values]
        return out
    values = np.asarray(values)
    return values.astype(object) if values.dtype.kind in "US" else values


def _trials(table) -> dict:
    from hdmf.common.table import VectorIndex

    n = len(table)
    out = {"id": np.asarray(table.id.data[:])}
    for name in table.colnames:
        col = table[name]
        if isinstance(col, VectorIndex):
            out[name] = _as_column([np.asarray(col[i]) for i in range(n)])
            continue
        values = np.asarray(col.data[:])
        if values.dtype == object or values.dtype.kind in "SU":
            values = np.array([v.decode() if isinstance(v, bytes) else v for v in values], dtype=object)
        out[name] = values
    return out


def _provenance(nwb):
    from ..export.nwb import PROVENANCE_SCHEMA

    try:
        prov = json.loads(nwb.data_collection or "")
    except ValueError:
        return None
    return prov if isinstance(prov, dict) and prov.get("schema") == PROVENANCE_SCHEMA else None


def _checkpoint_series(nwb, series) -> dict:
    from ..export.nwb import SERIES_PATTERN

    found = {}
    for name, ts in nwb.acquisition.items():
        m = SERIES_PATTERN.match(name)
        if m and m.group("what") == series:
            found[int(m.group("k"))] = ts
    return found


def _read_ours(nwb, path, series, ours, checkpoint, trials, prov):
    if ours:
        ks = sorted(ours)
        k = ks[-1] if checkpoint is None else int(checkpoint)
        if k not in ours:
            raise SchemaError(f"{str(path)!r} has no {series!r} at iteration {k}; it has iterations {ks}")
        ts = ours[k]
    else:
        ks, k, ts = [], None, nwb.stimulus[series]
    data = np.asarray(ts.data[:])
    rate = float(ts.rate)
    B = len(trials["start_time"])
    T = int(round((trials["stop_time"][0] - trials["start_time"][0]) * rate))
    if data.ndim != 2 or data.shape[0] != B * T:
        raise SchemaError(f"{str(path)!r}: series {ts.name!r} has {data.shape[0]} samples, not {B} trials x {T} "
                          "steps as the trials table says; the file was not written by this bioplastic layout")
    activity = data.reshape(B, T, data.shape[1]).transpose(1, 0, 2)
    return Activity(activity=activity, trials=trials, bin_seconds=1.0 / rate,
                    times=float(ts.starting_time) + np.arange(T) / rate, series=series, source="bioplastic",
                    checkpoint=k, checkpoints=ks, provenance=prov)


def _window(window, trials):
    start, stop = trials["start_time"], trials["stop_time"]
    if window is None:
        w0, w1 = 0.0, float(np.min(stop - start))
    else:
        try:
            w0, w1 = (float(v) for v in window)
        except (TypeError, ValueError):
            raise ConfigError(f"window must be two numbers (seconds from each trial's start), got {window!r}") \
                from None
    if not (np.isfinite(w0) and np.isfinite(w1) and w1 > w0):
        raise ConfigError(f"window must satisfy start < stop, got ({w0}, {w1})")
    return w0, w1


def _find_series(nwb, path, series):
    from pynwb import TimeSeries

    found, names = [], set()
    for obj in nwb.objects.values():
        if not isinstance(obj, TimeSeries):
            continue
        where = _object_path(nwb, obj)
        names.add(where)
        if obj.name == series or where == series:
            found.append(obj)
    if not found:
        units = ", or 'units' to bin its units table" if nwb.units is not None else ""
        raise SchemaError(f"{str(path)!r} has no TimeSeries {series!r}; it has {sorted(names) or 'none'}{units}")
    if len(found) > 1:
        raise SchemaError(f"{str(path)!r} has {len(found)} TimeSeries named {series!r}: "
                          f"{sorted(_object_path(nwb, o) for o in found)}; pass one of these paths")
    return found[0]


def _object_path(nwb, obj):
    """Where ``obj`` sits in the file, e.g. "processing/ophys/Fluorescence/dff"."""
    from pynwb import ProcessingModule

    parts = []
    while obj.parent is not None and obj.parent is not nwb:
        parts.append(obj.name)
        obj = obj.parent
    if isinstance(obj, ProcessingModule):
        top = "processing"
    elif obj.name in nwb.stimulus and nwb.stimulus[obj.name] is obj:
        top = "stimulus"
    else:
        top = "acquisition" if obj.name in nwb.acquisition else "general"
    return "/".join([top, obj.name, *reversed(parts)])


def _read_timeseries(ts, path, series, trials, w0, w1):
    data = np.asarray(ts.data[:], dtype=float)
    if data.ndim == 1:
        data = data[:, None]
    data = data.reshape(data.shape[0], -1)
    if ts.timestamps is not None:
        stamps = np.asarray(ts.timestamps[:], dtype=float)
        period = float(np.median(np.diff(stamps))) if len(stamps) > 1 else np.nan
    else:
        period = 1.0 / float(ts.rate)
        stamps = float(ts.starting_time or 0.0) + np.arange(data.shape[0]) * period
    if not period > 0:
        raise SchemaError(f"{str(path)!r}: TimeSeries {series!r} has no usable sampling period")
    n = int(round((w1 - w0) / period))
    if n < 1:
        raise ConfigError(f"window ({w0}, {w1}) s is shorter than one sample ({period} s)")
    starts = trials["start_time"] + w0
    first = np.searchsorted(stamps, starts - 1e-6 * period)
    out = np.empty((n, len(starts), data.shape[1]))
    for b, i0 in enumerate(first):
        if i0 + n > len(stamps) or abs(stamps[i0] - starts[b]) > period:
            raise SchemaError(f"{str(path)!r}: trial {b}'s window [{starts[b]:g}, {starts[b] + n * period:g}) s "
                              f"is not covered by TimeSeries {series!r} ({stamps[0]:g} to {stamps[-1]:g} s)")
        out[:, b] = data[i0:i0 + n]
    return Activity(activity=out, trials=trials, bin_seconds=period, times=w0 + np.arange(n) * period,
                    series=series, source="timeseries")


def _read_units(nwb, path, trials, w0, w1, bin_width):
    if nwb.units is None or len(nwb.units) == 0:
        raise SchemaError(f"{str(path)!r} has no units table to bin (series='units')")
    if isinstance(bin_width, bool) or not isinstance(bin_width, (int, float)) or not bin_width > 0:
        raise ConfigError(f"bin_width must be > 0 seconds, got {bin_width!r}")
    n = int(np.floor((w1 - w0) / bin_width + 1e-9))
    if n < 1:
        raise ConfigError(f"window ({w0}, {w1}) s is shorter than one bin ({bin_width} s)")
    edges = w0 + np.arange(n + 1) * bin_width
    spikes = [np.asarray(nwb.units["spike_times"][u], dtype=float) for u in range(len(nwb.units))]
    out = np.empty((n, len(trials["start_time"]), len(spikes)))
    for b, start in enumerate(trials["start_time"]):
        for u, s in enumerate(spikes):
            out[:, b, u] = np.histogram(s - start, bins=edges)[0] / bin_width
    return Activity(activity=out, trials=trials, bin_seconds=float(bin_width), times=edges[:-1], series="units",
                    source="units")
