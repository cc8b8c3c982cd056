"""NWB export of recorded activity, ready to share (SPEC 7, 11); pynwb is the ``nwb`` extra.

One file holds every recorded checkpoint of a run (or the chosen ones). The
full description, with an example, is docs/nwb.md. Layout:

- ``acquisition/<what>_it<iteration>`` (e.g. ``rates_it000500``): one
  ``TimeSeries`` per recorded array (rates, states, outputs, model extras)
  per checkpoint, shape (time, channels), unit "a.u." (model quantities are
  dimensionless). Every checkpoint replays the same recorded trials, so all
  share one time axis. Arrays with T + 1 samples (states, rates) drop the
  initial state: sample t = 1..T of trial b, the state after Euler step t,
  is at ``(b T + t) dt`` seconds; outputs share that grid.
- ``stimulus/inputs`` and ``stimulus/targets``: the recorded trials' inputs
  and targets (stored with every recording, so always present). Input u[s]
  is held during step s, ``[(b T + s) dt, (b T + s + 1) dt)``, and is
  stamped at the step's start; target y*[s] is what output s should be and
  shares the outputs' grid.
- ``trials``: one row per recorded trial, trials laid end to end (trial b
  covers ``[b T dt, (b + 1) T dt]``); the task's conditions as columns, see
  :func:`trial_columns`: times in seconds on the session clock, durations in
  seconds, integer columns as integers, flip-flop pulse times and signs as
  ragged columns, and a ``condition`` label that
  :func:`bioplastic.compare.compare_conditions` matches trials by.
- ``epochs``: each task epoch (e.g. "delay") of each trial, tagged with its name.
- metadata: experimenter, institution, lab, keywords, session and
  experiment descriptions (options, or an ``[nwb]`` spec table through
  :func:`nwb_metadata_from_spec`); a ``Subject`` that says it is a simulated
  network (species NCBI Taxonomy 32630 "synthetic construct", sex "O",
  date of birth = session start = the run file's ``created`` time stamp).
- provenance: ``general/data_collection`` holds JSON (schema
  ``bioplastic.nwb_provenance``): the run's resolved config, seed, package
  version and time stamp, and the exporter's :func:`bioplastic.provenance.provenance`
  (package version, git commit, command); ``general/was_generated_by`` lists
  bioplastic and pynwb with their versions; ``general/notes`` explains the layout.

Model time is converted to seconds with ``time_unit`` (seconds per unit of
the network's tau and dt; default 1e-2: dt = 1 is 10 ms and tau = 10 is
100 ms, the same convention as the Brian2 export).
"""
from __future__ import annotations

import datetime
import json
import re
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

#: Name of the activity series of array ``what`` at checkpoint ``k``.
SERIES_NAME = "{what}_it{k:06d}"
SERIES_PATTERN = re.compile(r"^(?P<what>.+)_it(?P<k>\d+)$")

#: NCBI Taxonomy "synthetic construct": the accepted species term that says
#: "made, not born" (nwbinspector's DANDI config requires a species).
SIMULATION_SPECIES = "http://purl.obolibrary.org/obo/NCBITaxon_32630"
#: The species forms DANDI accepts (nwbinspector's check_subject_species_form).
SPECIES_FORM = re.compile(r"([A-Z][a-z]* [a-z]+)|(http://purl\.obolibrary\.org/obo/NCBITaxon_\d+)")

#: Keys of :func:`export_nwb`'s metadata options, also the keys of an ``[nwb]`` spec table.
METADATA_KEYS = ("experimenter", "institution", "lab", "keywords", "session_description",
                 "experiment_description", "species")
#: Every key an ``[nwb]`` spec table may hold (:func:`nwb_metadata_from_spec`).
SPEC_KEYS = ("checkpoints", "time_unit_ms") + METADATA_KEYS

PROVENANCE_SCHEMA = "bioplastic.nwb_provenance"
PROVENANCE_VERSION = 1


def _pynwb():
    try:
        import pynwb
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise ConfigError("NWB export needs pynwb: pip install 'bioplastic[nwb]'") from exc
    return pynwb


def series_name(what: str, k: int) -> str:
    """The acquisition name of array ``what`` recorded at iteration ``k``: ``rates_it000500``."""
    return SERIES_NAME.format(what=what, k=int(k))


# -- options ------------------------------------------------------------------
def nwb_metadata_from_spec(table) -> dict:
    """Keyword arguments of :func:`export_nwb` from an ``[nwb]`` spec table.

    Parameters
    ----------
    table : mapping or None
        Any of ``checkpoints`` ("all", "last", an iteration or a list of
        them), ``time_unit_ms`` (ms per time unit, default 10),
        ``experimenter`` (a name or list of names, "Last, First"),
        ``institution``, ``lab``, ``keywords`` (list of str, or one
        comma-separated str), ``session_description``,
        ``experiment_description`` and ``species`` (overrides the simulated
        subject's species, e.g. the animal a model stands for).

    Returns
    -------
    dict
        ``export_nwb(run, out, **nwb_metadata_from_spec(spec["nwb"]))``.

    Raises
    ------
    ConfigError
        On an unknown key (named) or a value of the wrong type.

    Examples
    --------
    >>> nwb_metadata_from_spec({"experimenter": "Doe, Jane", "keywords": "TCR, flip-flop"})
    {'experimenter': ['Doe, Jane'], 'keywords': ['TCR', 'flip-flop']}
    """
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise ConfigError(f"[nwb] must be a table of settings, got {type(table).__name__}")
    unknown = sorted(set(table) - set(SPEC_KEYS))
    if unknown:
        raise ConfigError(f"unknown [nwb] setting(s) {', '.join(map(repr, unknown))}; known: {', '.join(SPEC_KEYS)}")
    out = {}
    for key, value in table.items():
        if key == "time_unit_ms":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"NWB time_unit_ms must be a positive number, got {value!r}")
            out["time_unit"] = float(value) * 1e-3
        elif key == "checkpoints":
            out["checkpoints"] = parse_checkpoints(value)
        elif key in ("experimenter", "keywords"):
            out[key] = _str_list(f"NWB {key}", value, split=key == "keywords")
        else:
            if not isinstance(value, str) or not value.strip():
                raise ConfigError(f"NWB {key} must be a non-empty string, got {value!r}")
            if key == "species" and not SPECIES_FORM.fullmatch(value):
                # DANDI refuses other forms (nwbinspector: CRITICAL); say so before writing
                raise ConfigError(f"NWB species must be a Latin binomial ('Macaca mulatta') or an NCBI Taxonomy "
                                  f"IRI ('{SIMULATION_SPECIES}'), got {value!r}")
            out[key] = value
    return out


def _str_list(name, value, split=False):
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")] if split else [value]
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{name} must be a non-empty string or list of strings, got {value!r}")
    return [v.strip() for v in value]


def parse_checkpoints(value):
    """Normalise a checkpoint choice: "all", "last", or a tuple of iterations.

    Accepts "all", "last", an int, a list of ints or a comma-separated
    string ("500,1000").
    """
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("all", "last"):
            return text
        try:
            value = [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise ConfigError(f"checkpoints must be 'all', 'last' or iterations like '500,1000', got {value!r}") \
                from None
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = [value]
    if (not isinstance(value, (list, tuple)) or not value
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in value)):
        raise ConfigError(f"checkpoints must be 'all', 'last' or non-negative iterations, got {value!r}")
    return tuple(sorted({int(v) for v in value}))


def select_checkpoints(recorded, checkpoints, run_file="run file") -> list:
    """The recorded iterations ``checkpoints`` (see :func:`parse_checkpoints`) names, sorted.

    Raises
    ------
    SchemaError
        If an asked-for iteration was not recorded (the message lists those that were).
    """
    recorded = sorted(int(k) for k in recorded)
    choice = parse_checkpoints(checkpoints)
    if choice == "all":
        return recorded
    if choice == "last":
        return recorded[-1:]
    missing = [k for k in choice if k not in recorded]
    if missing:
        raise SchemaError(f"{str(run_file)!r} has no recording at iteration "
                          f"{', '.join(map(str, missing))}; recorded: {recorded}")
    return list(choice)


# -- trial table ----------------------------------------------------------------
def _is_event(col):
    # Tasks count time in steps (tasks/base.py): a column naming one step
    # ("mark_step_0", "stim_start") is an event time.
    return col.endswith("_step") or "_step_" in col or col.endswith(("_start", "_stop"))


def _time_name(col):
    return col.replace("_step", "_time") if "_step" in col else col + "_time"


def trial_columns(batch, task_config, time_unit=1e-2) -> dict:
    """The NWB trials table of a recorded batch: ``name -> (values, description)``.

    ``start_time`` and ``stop_time`` come first, then the task's columns:

    - a column naming a step (``*_step``, ``*_step_*``, ``*_start``,
      ``*_stop``) becomes an event time in seconds on the session clock,
      ``(b T + step) dt``, renamed ``*_time`` (``mark_step_0`` ->
      ``mark_time_0``, ``stim_start`` -> ``stim_start_time``);
    - a count of steps (``*_steps``) becomes a duration in seconds,
      ``*_duration``;
    - other columns keep their name and dtype (integers stay integers);
      ``trial`` is the table's id and is not repeated;
    - per task: flip-flop ``pulse_times_<c>`` (seconds) and ``pulse_signs_<c>``
      (+1/-1, int) as ragged columns; delayed addition and evidence
      accumulation ``delay_duration`` (seconds);
    - ``condition``: a text label of the trial's condition (built from
      times relative to the trial start, so equal conditions in different
      trials get equal labels); absent for tasks bioplastic does not know.

    Ragged columns are lists of 1-D arrays.
    """
    table = batch.trial_table
    T, B = batch.T, batch.batch_size
    dt_s = batch.dt * time_unit
    onset = np.arange(B) * T * dt_s  # each trial's start on the session clock
    cols = {"start_time": (onset + np.asarray(table["start_step"], float) * dt_s, "trial start, s"),
            "stop_time": (onset + np.asarray(table["stop_step"], float) * dt_s, "trial end, s")}
    for col, values in table.items():
        if col in ("trial", "start_step", "stop_step"):
            continue
        values = np.asarray(values)
        if values.dtype.kind in "iu" and _is_event(col):
            cols[_time_name(col)] = (onset + values * dt_s,
                                     f"task column {col!r} (a step) as a time on the session clock, s")
        elif values.dtype.kind in "iu" and col.endswith("_steps"):
            cols[col[:-len("_steps")] + "_duration"] = (values * dt_s, f"task column {col!r} (steps) in s")
        else:
            cols[col] = (values, f"task column {col!r}")
    task = task_config.get("name")
    extra = _TASK_COLUMNS.get(task)
    if extra is not None:
        cols.update(extra(batch, task_config, dt_s, onset))
    return cols


def _flipflop_columns(batch, cfg, dt_s, onset):
    """Pulse times and signs per channel, read off the inputs (pulses never overlap)."""
    pulse_steps = int(cfg.get("pulse_steps", 3))
    u = np.asarray(batch.inputs)
    T, B, C = u.shape
    times = {c: [] for c in range(C)}
    signs = {c: [] for c in range(C)}
    labels = []
    for b in range(B):
        parts = []
        for c in range(C):
            steps, sg = _pulse_onsets(u[:, b, c], pulse_steps)
            n_recorded = batch.trial_table.get(f"n_pulses_{c}")
            if n_recorded is not None and len(steps) != int(n_recorded[b]):
                return {}  # not the built-in pulse layout: keep the task's own columns only
            times[c].append(onset[b] + steps * dt_s)
            signs[c].append(sg)
            parts.append(f"bit{c}:" + ",".join(f"{'+' if s > 0 else '-'}@{t * dt_s:.6g}s" for t, s in zip(steps, sg)))
        labels.append(";".join(parts))
    out = {}
    for c in range(C):
        out[f"pulse_times_{c}"] = (times[c], f"onset of each pulse on input channel {c}, s (session clock)")
        out[f"pulse_signs_{c}"] = (signs[c], f"sign (+1 or -1) of each pulse on input channel {c}")
    out["condition"] = (np.array(labels, dtype=object),
                        "condition label: per channel, each pulse's sign and onset from the trial start")
    return out


def _pulse_onsets(u, pulse_steps):
    """Onset steps and signs of the pulses in one channel's input ``u`` (T,)."""
    steps, signs = [], []
    run = 0  # steps into the current pulse
    for t, v in enumerate(u):
        if v == 0:
            run = 0
            continue
        if run == 0 or run == pulse_steps or np.sign(v) != np.sign(u[t - 1]):
            steps.append(t)
            signs.append(int(np.sign(v)))
            run = 0
        run += 1
    return np.asarray(steps, dtype=np.int64), np.asarray(signs, dtype=np.int64)


def _delayed_addition_columns(batch, cfg, dt_s, onset):
    t = batch.trial_table
    delay = (np.asarray(t["response_start"]) - np.asarray(t["mark_step_1"])) * dt_s
    labels = [f"value_0={v0:.6g};value_1={v1:.6g};mark_0={m0 * dt_s:.6g}s;mark_1={m1 * dt_s:.6g}s"
              for v0, v1, m0, m1 in zip(t["value_0"], t["value_1"], t["mark_step_0"], t["mark_step_1"])]
    return {"delay_duration": (delay, "from the second mark's onset to the response window, s"),
            "condition": (np.array(labels, dtype=object), "condition label: both values and mark times")}


def _evidence_columns(batch, cfg, dt_s, onset):
    t = batch.trial_table
    delay = (np.asarray(t["delay_stop"]) - np.asarray(t["stim_stop"])) * dt_s
    labels = [f"coherence={c:+.6g}" for c in t["coherence"]]
    return {"delay_duration": (delay, "from the end of the stimulus to the response epoch, s"),
            "condition": (np.array(labels, dtype=object), "condition label: the signed coherence")}


_TASK_COLUMNS = {"flipflop": _flipflop_columns, "delayed_addition": _delayed_addition_columns,
                 "evidence_accumulation": _evidence_columns}


# -- export -----------------------------------------------------------------------
def export_nwb(run_file, out, *, checkpoints="all", time_unit=1e-2, overwrite=False, experimenter=None,
               institution=None, lab=None, keywords=None, session_description=None, experiment_description=None,
               species=None) -> Path:
    """Write the recordings of ``run_file`` to one NWB file ``out`` (layout: module doc, docs/nwb.md).

    Parameters
    ----------
    run_file : path
        A run file with recordings (``train(..., record=...)``).
    out : path
        The NWB file to write (atomically; it follows the umask).
    checkpoints : "all", "last", int, list of int or str, default "all"
        Recorded iterations to include ("500,1000" also works).
    time_unit : float, default 1e-2
        Seconds per time unit of the network's tau and dt.
    overwrite : bool, default False
        Replace ``out`` if it exists.
    experimenter : str or list of str, optional
        Who ran the simulation, "Last, First" (the DANDI form).
    institution, lab : str, optional
    keywords : list of str, optional
        Default: simulation, recurrent neural network, the model kind, task and rule.
    session_description, experiment_description : str, optional
        Defaults describe the network, task, rule, seed and checkpoints.
    species : str, optional
        Latin binomial or NCBI Taxonomy IRI; default :data:`SIMULATION_SPECIES`.

    Returns
    -------
    Path
        ``out``.

    Raises
    ------
    SchemaError
        If the run file holds no recordings or not the asked-for checkpoints,
        or an exported checkpoint's parameters hold NaN or inf.
    ConfigError
        If ``out`` exists (and not ``overwrite``), ``time_unit`` is not
        positive, or a metadata option has the wrong type.
    """
    _pynwb()  # clear error when the extra is missing
    from pynwb import NWBHDF5IO, TimeSeries

    from ..preflight import check_output_file

    out = check_output_file(out, inputs=(run_file,), what="NWB file")
    if out.exists() and not overwrite:
        raise ConfigError(f"{str(out)!r} exists; pass overwrite=True (CLI --force) to replace it")
    if isinstance(time_unit, bool) or not isinstance(time_unit, (int, float, np.number)) or not time_unit > 0:
        raise ConfigError(f"time_unit must be > 0 seconds, got {time_unit!r}")
    meta = nwb_metadata_from_spec({k: v for k, v in {
        "experimenter": experimenter, "institution": institution, "lab": lab, "keywords": keywords,
        "session_description": session_description, "experiment_description": experiment_description,
        "species": species}.items() if v is not None})
    data = read_run(run_file)
    if not data.recordings or not data.recordings["at"]:
        raise SchemaError(f"run file {str(run_file)!r} has no recordings; train with record=... "
                          "(see bioplastic.recording) to record activity")
    at = data.recordings["at"]
    ks = select_checkpoints(at, checkpoints, run_file)
    check_checkpoint_params(data, ks, run_file)
    batch = data.recordings["trials"]
    T, B = batch.T, batch.batch_size
    dt_s = batch.dt * time_unit
    nwb = _new_file(data, Path(run_file).name, meta, ks, T, B, dt_s, time_unit)
    for k in ks:
        for what, arr in at[k].items():
            if what in ("inputs", "targets"):
                continue  # the same on every checkpoint: written once, in stimulus
            series = _trials_end_to_end(arr, T, B)
            if series is None:
                continue  # model extras with other layouts are not time series
            nwb.add_acquisition(TimeSeries(
                name=series_name(what, k), data=_compressed(series), unit="a.u.", starting_time=dt_s, rate=1.0 / dt_s,
                description=f"{SERIES_DESCRIPTIONS.get(what, f'model quantity {what!r}')}, "
                            f"with the parameters of training iteration {k}",
                comments=f"checkpoint {k}; {B} trials of {T} steps laid end to end"))
    for what, start_s in (("inputs", 0.0), ("targets", dt_s)):
        data_ = _compressed(_trials_end_to_end(getattr(batch, what), T, B))
        nwb.add_stimulus(TimeSeries(name=what, data=data_, unit="a.u.", starting_time=start_s, rate=1.0 / dt_s,
                                    description=SERIES_DESCRIPTIONS[what],
                                    comments=f"{B} trials of {T} steps laid end to end"))
    _add_trials(nwb, trial_columns(batch, data.config["task"], time_unit))
    _add_epochs(nwb, batch, T, dt_s)
    with atomic_path(out, keep_suffix=True) as tmp:
        with NWBHDF5IO(str(tmp), "w") as io:
            io.write(nwb)
    return out


def check_checkpoint_params(data, ks, run_file) -> None:
    """SchemaError if the parameters of a checkpoint in ``ks`` hold NaN or inf.

    The activity recorded at a checkpoint is published as that of the
    network with its parameters; non-finite ones mean a damaged run file,
    whose activity no network of the file reproduces.
    """
    from ..validation import count_non_finite

    for k in ks:
        for name, arr in (data.checkpoints.get(k) or {}).items():
            bad = count_non_finite(np.asarray(arr))
            if bad:
                raise SchemaError(f"checkpoint {k} of {str(run_file)!r}: params[{name!r}] contains {bad} "
                                  "non-finite value(s) (NaN or inf); the run file is damaged, nothing exported")


def _new_file(data, run_name, meta, ks, T, B, dt_s, time_unit):
    """The NWBFile with its metadata, subject and provenance (no data yet)."""
    import pynwb
    from pynwb import NWBFile
    from pynwb.file import Subject

    from .._version import __version__
    from ..provenance import provenance

    created = data.attrs.get("created")
    start = datetime.datetime.fromisoformat(created) if created else datetime.datetime.now(datetime.timezone.utc)
    model, task = data.config["model"], data.config["task"]
    rule = data.config.get("training", {}).get("rule", "bptt")
    if isinstance(rule, dict):  # a local rule's description: its name ("eprop+tcr_stp")
        rule = str(rule.get("name", "local rule"))
    kind, n_units = model["kind"], model.get("n_units")
    iterations = ", ".join(map(str, ks))
    species = meta.get("species") or SIMULATION_SPECIES
    named = ("Species: NCBI Taxonomy 32630, 'synthetic construct'" if species == SIMULATION_SPECIES
             else f"Species {species!r}: the animal the model stands for")
    prov = {"schema": PROVENANCE_SCHEMA, "schema_version": PROVENANCE_VERSION,
            "run": {"package_version": data.attrs.get("package_version"), "seed": data.seed,
                    "created": created, "status": data.status, "file": run_name},
            "exporter": provenance([data.seed]), "time_unit_s": time_unit, "checkpoints": ks,
            "config": data.config}
    return NWBFile(
        session_description=meta.get("session_description") or (
            f"Simulated activity of a bioplastic {kind} rate network (N={n_units}) on the {task['name']!r} task: "
            f"{B} recorded trials replayed with the parameters of training iterations {iterations}."),
        identifier=str(uuid.uuid4()),
        session_start_time=start,
        session_id=f"{kind}-{task['name']}-seed{data.seed}",
        experiment_description=meta.get("experiment_description") or (
            f"In-silico experiment, no animal: a {kind} recurrent rate network trained on {task['name']!r} with "
            f"rule {rule!r} by bioplastic {data.attrs.get('package_version')} (seed {data.seed})."),
        experimenter=meta.get("experimenter"),
        institution=meta.get("institution"),
        lab=meta.get("lab"),
        keywords=meta.get("keywords") or ["simulation", "recurrent neural network", "rate network", kind,
                                          task["name"], rule],
        data_collection=json.dumps(prov, sort_keys=True, default=str),
        source_script=(f"bioplastic {__version__} (commit {prov['exporter']['commit'] or 'unknown'}): "
                       f"bioplastic.export.nwb.export_nwb of {run_name}"),
        source_script_file_name="bioplastic/export/nwb.py",
        was_generated_by=[["bioplastic", __version__], ["pynwb", pynwb.__version__]],
        stimulus_notes=("stimulus/inputs: the task inputs of the recorded trials, value u[s] held during step s "
                        "and stamped at its start; stimulus/targets: the desired outputs, on the outputs' grid."),
        notes=_notes(ks, T, B, dt_s),
        subject=Subject(subject_id=f"{kind}-seed{data.seed}", species=species, sex="O", date_of_birth=start,
                        description=(f"Not an animal: a simulated {kind} rate network of {n_units} units "
                                     f"(bioplastic, seed {data.seed}). {named}; sex 'O' (other: not applicable); "
                                     "date of birth and session start: the run file's time stamp (attribute "
                                     "'created', set when it was last written).")),
    )


def _trials_end_to_end(arr, T, B):
    """(T or T+1, B, X) -> (B T, X), trial after trial; None for other layouts."""
    arr = np.asarray(arr)
    if arr.ndim == 3 and arr.shape[0] == T + 1:
        arr = arr[1:]  # drop the initial state: samples after each Euler step
    if arr.ndim != 3 or arr.shape[:2] != (T, B):
        return None
    return np.ascontiguousarray(arr.transpose(1, 0, 2).reshape(B * T, arr.shape[2]))


def _compressed(arr):
    """Chunked gzip for arrays over a few kB, as in run files (many checkpoints add up)."""
    if arr.nbytes <= 4096:
        return arr
    from hdmf.backends.hdf5 import H5DataIO

    return H5DataIO(arr, compression="gzip", compression_opts=4, shuffle=True, chunks=True)


def _notes(ks, T, B, dt_s):
    return (f"Written by bioplastic (docs/nwb.md). acquisition/<what>_it<iteration>: activity recorded with the "
            f"parameters of each checkpoint ({', '.join(map(str, ks))}), all on the same {B} trials of {T} steps "
            f"of {dt_s:g} s laid end to end; sample t = 1..{T} of trial b (after step t) is at (b*{T} + t)*{dt_s:g} s. "
            "trials: task conditions, times in s on the session clock, integer columns as integers. "
            "general/data_collection: JSON provenance (resolved config, seed, versions, git commit).")


def _add_trials(nwb, columns):
    start, stop = columns["start_time"][0], columns["stop_time"][0]
    for a, b in zip(start, stop):
        nwb.add_trial(start_time=float(a), stop_time=float(b))
    for name, (values, description) in columns.items():
        if name in ("start_time", "stop_time"):
            continue
        if isinstance(values, list):  # ragged: flat data plus the end index of each row
            ends = np.cumsum([len(v) for v in values]).astype(np.int64)
            flat = np.concatenate(values)
            nwb.add_trial_column(name=name, description=description, data=flat, index=ends)
        else:
            values = np.asarray(values)
            if values.dtype == object or values.dtype.kind == "U":
                values = values.astype(str).tolist()
            nwb.add_trial_column(name=name, description=description, data=values)


def _add_epochs(nwb, batch, T, dt_s):
    rows = []
    for name, mask in batch.epochs.items():
        mask = np.asarray(mask, dtype=bool)
        for b in range(batch.batch_size):
            m = np.concatenate([[False], mask[:, b], [False]])
            edges = np.flatnonzero(np.diff(m.astype(int)))
            rows += [((b * T + on) * dt_s, (b * T + off) * dt_s, name) for on, off in zip(edges[::2], edges[1::2])]
    for start, stop, name in sorted(rows):  # NWB wants interval tables in time order
        nwb.add_epoch(start_time=start, stop_time=stop, tags=[name])
