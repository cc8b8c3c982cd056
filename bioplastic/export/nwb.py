"""NWB export of recorded activity (SPEC 7); pynwb is the ``nwb`` extra.

What goes where:

- each recorded array of one checkpoint (rates, states, outputs, inputs,
  targets) becomes a ``TimeSeries`` in ``acquisition``, shape (time, channels),
  unit "a.u." (model units are dimensionless);
- the recorded trials are laid end to end: trial b covers
  ``[b T dt, (b+1) T dt)`` seconds; sample t of trial b (t = 1..T, the state
  after Euler step t) is at ``(b T + t) dt``; inputs u[t] and targets,
  which belong to step t, share that time grid;
- the task's trial table becomes NWB trials (start/stop time plus one column
  per condition), and each task epoch (e.g. "delay") becomes NWB epochs tagged
  with its name;
- model time is converted to seconds with ``time_unit`` (seconds per unit of
  the network's tau and dt; default 1e-2: dt = 1 is 10 ms and tau = 10 is 100 ms, the same
  convention as the Brian2 export).
"""
from __future__ import annotations

import datetime
import uuid
from pathlib import Path

import numpy as np

from ..errors import ConfigError, SchemaError
from ..io.atomic import atomic_path
from ..io.runfile import read_run

SERIES_DESCRIPTIONS = {
    "rates": "firing rates r = phi(x) of the model units (activity TCR acts on)",
    "states": "state variables x (LFRNN), z (PLRNN) or cell c (LSTM) of the model units",
    "outputs": "linear readout y of the network",
    "inputs": "task inputs u presented to the network",
    "targets": "task targets y*",
}


def _pynwb():
    try:
        import pynwb
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ConfigError("NWB export needs pynwb: pip install 'bioplastic[nwb]'") from exc
    return pynwb


def export_nwb(run_file, out, *, checkpoint=None, time_unit=1e-2, overwrite=False) -> Path:
    """Write the recordings of ``run_file`` at ``checkpoint`` (default: last) to ``out``.

    Raises
    ------
    SchemaError
        If the run file holds no recordings or not that checkpoint.
    ConfigError
        If ``out`` exists (and not ``overwrite``) or ``time_unit`` is not positive.
    """
    _pynwb()  # clear error when the extra is missing
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.file import Subject

    out = Path(out)
    if out.exists() and not overwrite:
        raise ConfigError(f"{str(out)!r} exists; pass overwrite=True (CLI --force) to replace it")
    if not time_unit > 0:
        raise ConfigError(f"time_unit must be > 0 seconds, got {time_unit!r}")
    data = read_run(run_file)
    if not data.recordings or not data.recordings["at"]:
        raise SchemaError(f"run file {str(run_file)!r} has no recordings; train with record=... "
                          "(see bioplastic.recording) to record activity")
    at = data.recordings["at"]
    k = max(at) if checkpoint is None else int(checkpoint)
    if k not in at:
        raise SchemaError(f"run file {str(run_file)!r} has no recording at iteration {k}; recorded: {sorted(at)}")
    batch = data.recordings["trials"]
    T, B = batch.T, batch.batch_size
    dt_s = batch.dt * time_unit
    created = data.attrs.get("created")
    start = datetime.datetime.fromisoformat(created) if created else datetime.datetime.now(datetime.timezone.utc)
    model = data.config["model"]
    nwb = NWBFile(
        session_description=(f"bioplastic {model['kind']} network (N={model.get('n_units')}) on task "
                             f"{data.config['task']['name']!r}, recorded at training iteration {k}"),
        identifier=str(uuid.uuid4()),
        session_start_time=start,
        experiment_description="Simulated rate network activity exported by bioplastic "
                               f"{data.attrs.get('package_version')} (seed {data.seed}).",
        source_script="bioplastic.export.nwb",
        source_script_file_name="nwb.py",
        # The "subject" is a simulated network, named by model kind and seed.
        # Its "date of birth" is the run's creation (initialisation); sex "U" (unknown) as NWB allows.
        subject=Subject(subject_id=f"{model['kind']}-seed{data.seed}", date_of_birth=start, sex="U",
                        description=f"simulated {model['kind']} rate network, not an animal"),
    )
    for name, arr in at[k].items():
        arr = np.asarray(arr)
        if name in ("states", "rates"):
            arr = arr[1:]  # drop the initial state: samples after each Euler step
        if arr.ndim != 3 or arr.shape[:2] != (T, B):
            continue  # model extras with other layouts are not time series
        series = np.ascontiguousarray(arr.transpose(1, 0, 2).reshape(B * T, arr.shape[2]))
        nwb.add_acquisition(TimeSeries(name=name, data=series, unit="a.u.", starting_time=dt_s, rate=1.0 / dt_s,
                                       description=SERIES_DESCRIPTIONS.get(name, f"model quantity {name!r}"),
                                       comments=f"{B} trials of {T} steps laid end to end"))
    _add_trials(nwb, batch, T, dt_s)
    _add_epochs(nwb, batch, T, dt_s)
    with atomic_path(out, keep_suffix=True) as tmp:
        with NWBHDF5IO(str(tmp), "w") as io:
            io.write(nwb)
    return out


def _add_trials(nwb, batch, T, dt_s):
    table = batch.trial_table
    extra = [c for c in table if c not in ("trial", "start_step", "stop_step")]
    for col in extra:
        nwb.add_trial_column(name=col, description=f"task trial-table column {col!r} (steps for *_step*)")
    for b in range(batch.batch_size):
        row = {c: _scalar(table[c][b]) for c in extra}
        nwb.add_trial(start_time=(b * T + float(table["start_step"][b])) * dt_s,
                      stop_time=(b * T + float(table["stop_step"][b])) * dt_s, **row)


def _add_epochs(nwb, batch, T, dt_s):
    for name, mask in batch.epochs.items():
        mask = np.asarray(mask, dtype=bool)
        for b in range(batch.batch_size):
            m = np.concatenate([[False], mask[:, b], [False]])
            edges = np.flatnonzero(np.diff(m.astype(int)))
            for on, off in zip(edges[::2], edges[1::2]):
                nwb.add_epoch(start_time=(b * T + on) * dt_s, stop_time=(b * T + off) * dt_s, tags=[name])


def _scalar(v):
    v = np.asarray(v).item()
    return float(v) if isinstance(v, (int, float, bool)) else v


def read_nwb_series(path, name="rates"):
    """Return ``(data (time, channels), rate_hz, trials)`` of an NWB TimeSeries.

    ``trials`` is a dict of trial-table columns (start_time, stop_time, ...)
    or None. Used to compare model activity with recordings.
    """
    _pynwb()
    from pynwb import NWBHDF5IO

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"NWB file {str(path)!r} does not exist")
    try:
        io = NWBHDF5IO(str(path), "r")
        nwb = io.read()
    except Exception as exc:  # pynwb raises many types for foreign files
        raise SchemaError(f"{str(path)!r} is not a readable NWB file ({exc})") from exc
    with io:
        if name not in nwb.acquisition:
            raise SchemaError(f"{str(path)!r} has no acquisition series {name!r}; has {sorted(nwb.acquisition)}")
        ts = nwb.acquisition[name]
        data = np.asarray(ts.data[:])
        rate = float(ts.rate) if ts.rate is not None else None
        trials = None
        if nwb.trials is not None:
            trials = {c: np.asarray(nwb.trials[c].data[:]) for c in nwb.trials.colnames}
            trials["start_time"] = np.asarray(nwb.trials["start_time"].data[:])
            trials["stop_time"] = np.asarray(nwb.trials["stop_time"].data[:])
    return data, rate, trials
