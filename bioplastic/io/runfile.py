"""The HDF5 run file: one training run, self-describing (SPEC 7).

Layout (schema ``bioplastic.run``, version :data:`SCHEMA_VERSION`)::

    /                       attrs: schema, schema_version, package_version,
                                   seed, status, converged_at, created, config (JSON)
    /params/<name>          final parameters
    /constraints/<name>/{frozen,connectivity,sign}
    /history/<column>       one value per training iteration (resizable)
    /checkpoints/<k>/<name> parameters before update k (k zero-padded)
    /recordings/trials/     the recorded batch: inputs, targets, loss_mask,
                            trial_table/<col>, epochs/<name>; attrs dt
    /recordings/at/<k>/<what>  activity recorded with the parameters of checkpoint k
    /resume                 (unfinished runs only) state to continue bit for bit
    /resume/rule_state/     (local-rule runs) the rule's state: ``tree`` (JSON,
                            arrays replaced by references) and ``arrays/<i>``

The full description is docs/schema.md.

:func:`write_run` writes a file whole and atomically (temporary sibling +
rename); :class:`RunWriter` keeps the file of a run in progress up to date, each
write adding only what is new, in place, in one atomic commit (a redo journal,
:mod:`bioplastic.io.atomic`). Checkpoints, recordings and other datasets over a
few kB are chunked and gzip-compressed, parameters and checkpoints not (they
do not compress); the history is chunked and resizable, and the parameters
and optimiser state are stored plain, so that a write changes them in place. :func:`read_run` checks the schema and
names what is missing.
"""
from __future__ import annotations

import datetime
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from h5py import h5a, h5d, h5p, h5s, h5t

from .._version import __version__
from ..errors import SchemaError
from .atomic import atomic_path
from .hdf5 import InPlaceFile, open_checked

SCHEMA = "bioplastic.run"
SCHEMA_VERSION = 1
#: Rows per chunk of a history column: an appended row rewrites one chunk.
HISTORY_CHUNK = 256
_REQUIRED_ATTRS = ("schema", "schema_version", "package_version", "seed", "config", "status")


@dataclass
class RunData:
    """Contents of a run file."""

    config: dict
    seed: int
    status: str
    params: dict
    constraints: dict
    history: dict
    checkpoints: dict = field(default_factory=dict)
    attrs: dict = field(default_factory=dict)
    resume: dict | None = None
    recordings: dict | None = None


def _dataset(group, name, data):
    data = np.asarray(data)
    _create(group, name, data, compress=data.ndim > 0 and data.nbytes > 4096)


def _plain(group, name, data):
    # Uncompressed: a later write of the same shape overwrites the same bytes.
    _create(group, name, np.asarray(data), compress=False)


def _create(group, name, data, compress):
    """``group.create_dataset(name, data=data)``, gzip level 4 with shuffle in h5py's
    chunks when ``compress``: the same dataset, by HDF5's own calls for numeric
    arrays (h5py checks and guesses at every call what a checkpoint's datasets
    share, which would cost more than writing them)."""
    if data.ndim == 0 or data.dtype.kind not in "biufc":
        kwargs = {"chunks": True, "compression": "gzip", "compression_opts": 4, "shuffle": True} if compress else {}
        group.create_dataset(name, data=data, **kwargs)
        return
    key = (data.shape, data.dtype.itemsize, compress)
    dcpl = _DCPL.get(key)
    if dcpl is None:
        dcpl = h5p.create(h5p.DATASET_CREATE)
        if compress:
            dcpl.set_chunk(guess_chunk(data.shape, None, data.dtype.itemsize))
            dcpl.set_shuffle()
            dcpl.set_deflate(4)
        dcpl.set_obj_track_times(False)  # as h5py: files do not change with the time they were written
        _DCPL[key] = dcpl
    tid = _TYPES.get(data.dtype)
    if tid is None:
        tid = _TYPES[data.dtype] = h5t.py_create(data.dtype, logical=1)
    dsid = h5d.create(group.id, name.encode(), tid, h5s.create_simple(data.shape), dcpl=dcpl)
    dsid.write(h5s.ALL, h5s.ALL, np.ascontiguousarray(data))


_DCPL, _TYPES = {}, {}

try:  # the chunks h5py's create_dataset(chunks=True) picks, so that both paths store alike
    from h5py._hl.filters import guess_chunk
except ImportError:  # pragma: no cover - a future h5py may move it
    def guess_chunk(shape, maxshape, typesize):
        return tuple(shape)


def _column(group, name, values):
    values = np.asarray(values)
    group.create_dataset(name, data=values, maxshape=(None,), chunks=(HISTORY_CHUNK,))


def _write_params(group, params):
    """Parameters (of a checkpoint, or the file's current ones) as plain datasets.

    Not compressed: gzip with shuffle saved 0.1% of a run file with 400
    checkpoints of the default LFRNN (16.64 against 16.66 MB; trained weights
    are noise to a compressor) and took half of a checkpoint's write time.
    Plain datasets can also be overwritten in place by the next write.
    """
    for name, arr in params.items():
        _plain(group, name, arr)


def _root_attrs(config, seed, status, attrs, created) -> dict:
    from ..errors import ConfigError
    from ..seeding import check_seed

    check_seed(seed)  # the run file stores seeds in [0, 2**64 - 1], as train() draws them
    try:
        config_text = json.dumps(config, sort_keys=True, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"the run's config cannot be stored as JSON: {exc}") from exc
    out = {"schema": SCHEMA, "schema_version": SCHEMA_VERSION, "package_version": __version__,
           "seed": int(seed), "status": status,
           "created": created or datetime.datetime.now(datetime.timezone.utc).isoformat(),
           "config": config_text}
    out.update({k: -1 if v is None else v for k, v in (attrs or {}).items()})
    return out


def write_run(path, *, config: dict, seed: int, status: str, params, history: dict,
              checkpoints: dict | None = None, attrs: dict | None = None, resume: dict | None = None,
              recordings: dict | None = None, created: str | None = None) -> Path:
    """Write a complete run file atomically and return its path.

    ``resume`` (written by an unfinished run at each checkpoint) holds the
    iteration, random-stream states, schedule and optimiser state needed to
    continue bit for bit; see :func:`bioplastic.training.resume`. A
    local-rule run adds ``rule_state``, the rule's own state (nested
    containers with arrays, stored by :func:`encode_state` under
    ``/resume/rule_state``). ``created`` (ISO 8601) defaults to now.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for k, v in _root_attrs(config, seed, status, attrs, created).items():
                f.attrs[k] = v
            # A running file's parameters change at every write: stored plain, changed in place.
            _write_params(f.create_group("params"), params)
            cg = f.create_group("constraints")
            for name, c in getattr(params, "constraints", {}).items():
                g = cg.create_group(name)
                for kind, arr in c.arrays().items():
                    _dataset(g, kind, arr)
            hg = f.create_group("history")
            for col, values in history.items():
                _column(hg, col, values)
            ckg = f.create_group("checkpoints")
            for k, p in sorted((checkpoints or {}).items()):
                _write_params(ckg.create_group(f"{int(k):08d}"), p)
            if resume is not None:
                _write_resume(f.create_group("resume"), resume)
            if recordings is not None:
                _write_recordings(f.create_group("recordings"), recordings)
    return path


class RunWriter:
    """Keeps the run file of a run in progress up to date, each write O(what is new).

    The first :meth:`write` writes the file whole (:func:`write_run`); the
    file then stays open (:class:`~bioplastic.io.hdf5.InPlaceFile`) and each
    later write adds the history rows, checkpoints and recordings not yet in
    it and replaces the attributes, parameters and resume state, in one
    atomic commit. The file reads exactly as the same :func:`write_run` would
    (constraints excepted: a run's never change). A ``kill -9`` at any moment
    leaves the file of the previous write or of this one.

    A write falls back to writing the file whole when the file is not the
    one this writer last wrote (replaced, changed or removed by someone
    else), when a reader keeps it open while it must be brought up to date
    on disk (the last write of a run; the reader keeps the file it opened),
    or where files cannot be changed in place. A write with a status other
    than "running" brings the file on disk up to date and closes it; so does
    :meth:`close` (and, for a run that ended by an exception, Python's exit).

    Parameters
    ----------
    path : path of the run file

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from bioplastic.io.runfile import RunWriter, read_run
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "run.h5"
    >>> w = RunWriter(path)
    >>> for k in (1, 2):
    ...     _ = w.write(config={}, seed=0, status="running", params={"W": np.ones(2) * k},
    ...                 history={"loss": np.arange(k, dtype=float)}, checkpoints={k: {"W": np.ones(2) * k}})
    >>> w.close()
    >>> w.appends, sorted(read_run(path).checkpoints), read_run(path).history["loss"].tolist()
    (1, [1, 2], [0.0, 1.0])
    """

    def __init__(self, path):
        self.path = Path(path)
        #: Writes done in place and whole (for reports and tests).
        self.appends = 0
        self.rewrites = 0
        self._file = None  # an InPlaceFile between writes
        self._created = None
        # What the file holds, as last written: no need to read it back.
        self._attrs = {}
        self._rows = {}
        self._checkpoints = set()
        self._recorded = set()
        # Of the open file: handles of the plain datasets each write overwrites, by group
        # (and the optimiser's slots, the rule-state tree), and of the history columns.
        self._plain, self._columns = {}, {}

    def write(self, *, config: dict, seed: int, status: str, params, history: dict,
              checkpoints: dict | None = None, attrs: dict | None = None, resume: dict | None = None,
              recordings: dict | None = None) -> Path:
        """Bring the file up to date with these contents (the arguments of :func:`write_run`)."""
        history = {c: np.asarray(v) for c, v in history.items()}
        checkpoints = checkpoints or {}
        self._created = self._created or datetime.datetime.now(datetime.timezone.utc).isoformat()
        root = _root_attrs(config, seed, status, attrs, self._created)
        fields = dict(params=params, history=history, checkpoints=checkpoints, resume=resume,
                      recordings=recordings)
        done = False
        if self._file is not None and self._file.stamp == _stamp(self.path):
            try:
                self._update(self._file.file, root, status=status, **fields)
                # The last write of a run is brought into the file on disk before it returns.
                done = self._file.commit(durable=status != "running")
            except BaseException:
                self.close()  # the changes made so far are dropped with the open file
                raise
        if done:
            self.appends += 1
        else:
            self.close()  # not ours any more (replaced, changed), or a reader holds it
            write_run(self.path, config=config, seed=seed, status=status, attrs=attrs, created=self._created,
                      **fields)
            self.rewrites += 1
        self._attrs = root
        self._rows = {c: len(v) for c, v in history.items()}
        self._checkpoints = set(checkpoints)
        self._recorded = set(recordings["at"]) if recordings is not None else set()
        if status != "running":
            self.close()
        elif self._file is None:
            self._file = InPlaceFile.open(self.path)
        return self.path

    def close(self) -> None:
        """Close the file kept open between writes (the next write writes it whole)."""
        self._plain, self._columns = {}, {}
        if self._file is not None:
            self._file, file = None, self._file
            file.close()

    def _update(self, f, root, *, status, params, history, checkpoints, resume, recordings):
        for name in set(self._attrs) - set(root):
            del f.attrs[name]
        for name, value in root.items():
            if name not in self._attrs or not _same(self._attrs[name], value):
                f.attrs[name] = value
        self._put(f, "/params", dict(params.items()))
        for col, values in history.items():
            self._append(f, col, values)
        for col in set(self._rows) - set(history):
            self._columns.pop(col, None)
            if col in f["history"]:
                del f["history"][col]
        ckg = f["checkpoints"]
        for k in sorted(set(checkpoints) - self._checkpoints):
            name = f"{int(k):08d}"
            if name in ckg:
                del ckg[name]
            _write_params(ckg.create_group(name), checkpoints[k])
        if resume is None:
            if "resume" in f:
                del f["resume"]
            self._forget("/resume")
        else:
            self._put_resume(f, resume)
        if recordings is None:
            if "recordings" in f:
                del f["recordings"]
        elif "recordings" not in f:
            _write_recordings(f.create_group("recordings"), recordings)
        else:
            ag = f["recordings"].require_group("at")
            for k in sorted(set(recordings["at"]) - self._recorded):
                name = f"{int(k):08d}"
                if name in ag:
                    del ag[name]
                kg = ag.create_group(name)
                for what, arr in recordings["at"][k].items():
                    _dataset(kg, what, arr)

    # Handles of the datasets rewritten at each write, kept while the file is open: h5py's
    # lookups and properties would cost more than the writes themselves.
    def _put(self, f, where: str, arrays: dict) -> None:
        """Make the group ``where`` hold exactly ``arrays``; plain datasets of the
        same shape and dtype are overwritten in place (no new file space)."""
        known = self._plain.get(where)
        if known is not None and known.keys() == arrays.keys():
            todo = []
            for name, arr in arrays.items():
                dsid, shape, dtype = known[name]
                if not (isinstance(arr, np.ndarray) and arr.shape == shape and arr.dtype == dtype):
                    break
                todo.append((dsid, arr))
            else:
                for dsid, arr in todo:
                    dsid.write(h5s.ALL, h5s.ALL, np.ascontiguousarray(arr))
                return
        group = f.require_group(where)
        _put_arrays(group, arrays)
        self._plain[where] = {n: (group[n].id, group[n].shape, group[n].dtype) for n in arrays}

    def _append(self, f, col: str, values) -> None:
        """Bring the history column ``col`` to ``values``, writing only the rows not yet in it."""
        start = self._rows.get(col, 0)
        ds = self._columns.get(col)
        if ds is None:
            ds = f["history"].get(col)
            if not (isinstance(ds, h5py.Dataset) and ds.maxshape == (None,) and ds.shape == (start,)):
                ds = None
            self._columns[col] = ds
        if ds is None or ds.dtype != values.dtype or len(values) < start:
            hg = f["history"]
            if col in hg:
                del hg[col]
            _column(hg, col, values)
            self._columns[col] = hg[col]
        else:
            _append_rows(ds, values, start)

    def _put_resume(self, f, resume: dict) -> None:
        """:func:`_write_resume` into ``/resume``, overwriting arrays in place."""
        state, arrays = _resume_parts(resume)
        group = f.require_group("resume")
        _set_str_attr(group, "state", state)
        if self._plain.get("/resume/optimizer") != set(arrays):
            og = group.require_group("optimizer")
            for slot in set(og) - set(arrays):
                del og[slot]
                self._forget(f"/resume/optimizer/{slot}")
            self._plain["/resume/optimizer"] = set(arrays)
        for slot, vals in arrays.items():
            self._put(f, f"/resume/optimizer/{slot}", vals)
        if "rule_state" in resume:
            refs = {}
            tree = json.dumps(encode_state(resume["rule_state"], refs))
            tg = group.require_group("rule_state")
            if self._plain.get("/resume/rule_state/tree") != tree:
                if "tree" in tg:
                    del tg["tree"]
                tg.create_dataset("tree", data=tree)
                self._plain["/resume/rule_state/tree"] = tree
            self._put(f, "/resume/rule_state/arrays", refs)
        elif "rule_state" in group:
            del group["rule_state"]
            self._forget("/resume/rule_state")

    def _forget(self, prefix: str) -> None:
        for key in [k for k in self._plain if k.startswith(prefix)]:
            del self._plain[key]


def _stamp(path):
    """What tells that a file is the one last written: device, inode, size, modification time."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _same(a, b) -> bool:
    if type(a) is type(b) and isinstance(a, (str, int)):
        return a == b
    try:
        return bool(np.array_equal(a, b, equal_nan=True))
    except TypeError:  # strings: equal_nan does not apply
        return bool(np.array_equal(a, b))


def _set_str_attr(obj, name: str, text: str) -> None:
    """``obj.attrs[name] = text`` (a variable-length UTF-8 string, as h5py stores
    a str) by HDF5's own calls: h5py's way, safe against a failure halfway, costs
    more than the write and is not needed inside an atomic commit."""
    key, dtype = name.encode(), h5py.string_dtype()
    if h5a.exists(obj.id, key):
        h5a.delete(obj.id, key)
    tid = _TYPES.get(dtype)
    if tid is None:
        tid = _TYPES[dtype] = h5t.py_create(dtype, logical=1)
    h5a.create(obj.id, key, tid, h5s.create(h5s.SCALAR)).write(np.array(text, dtype=dtype))


def _append_rows(ds, values, start: int) -> None:
    """Resize the 1-D ``ds`` to ``len(values)`` and write the rows from ``start`` (low-level: per row
    of history, h5py's slicing would cost more than the write)."""
    n = len(values)
    ds.id.set_extent((n,))
    if n > start:
        space = ds.id.get_space()
        space.select_hyperslab((start,), (n - start,))
        ds.id.write(h5s.create_simple((n - start,)), space, np.ascontiguousarray(values[start:], dtype=ds.dtype))


def _put_arrays(group, arrays: dict) -> None:
    """Make ``group``'s datasets exactly ``arrays``: plain ones of the same shape
    and dtype are overwritten in place (no new file space), others replaced."""
    for name in set(group) - set(arrays):
        del group[name]
    for name, arr in arrays.items():
        arr = np.asarray(arr)
        ds = group.get(name)
        if (isinstance(ds, h5py.Dataset) and ds.shape == arr.shape and ds.dtype == arr.dtype
                and ds.compression is None):
            ds.id.write(h5s.ALL, h5s.ALL, np.ascontiguousarray(arr))
            continue
        if ds is not None:
            del group[name]
        _plain(group, name, arr)


def _write_recordings(group, recordings: dict) -> None:
    batch = recordings["trials"]
    tg = group.create_group("trials")
    tg.attrs["dt"] = float(batch.dt)
    for name in ("inputs", "targets", "loss_mask"):
        _dataset(tg, name, getattr(batch, name))
    table = tg.create_group("trial_table")
    for col, values in batch.trial_table.items():
        _dataset(table, col, np.asarray(values))
    epochs = tg.create_group("epochs")
    for name, mask in batch.epochs.items():
        _dataset(epochs, name, np.asarray(mask))
    ag = group.create_group("at")
    for k, arrays in sorted(recordings["at"].items()):
        kg = ag.create_group(f"{int(k):08d}")
        for name, arr in arrays.items():
            _dataset(kg, name, arr)


def _read_recordings(group) -> dict:
    from ..tasks.base import TaskBatch

    tg = group["trials"]
    batch = TaskBatch(inputs=tg["inputs"][()], targets=tg["targets"][()], loss_mask=tg["loss_mask"][()],
                      trial_table={k: v[()] for k, v in tg["trial_table"].items()},
                      epochs={k: v[()] for k, v in tg["epochs"].items()}, dt=float(tg.attrs["dt"]))
    at = {int(k): {n: d[()] for n, d in g.items()} for k, g in group["at"].items()}
    return {"trials": batch, "at": at}


def _resume_parts(resume: dict):
    """The ``/resume`` state attribute (JSON) and optimiser arrays ``{slot: {name: array}}``."""
    opt = resume["optimizer"]
    arrays = {slot: {k: v for k, v in vals.items() if isinstance(v, np.ndarray)} for slot, vals in opt.items()}
    scalars = {slot: {k: v for k, v in vals.items() if not isinstance(v, np.ndarray)} for slot, vals in opt.items()}
    # Every other key (the success tracker, lambda scale...) is JSON as it is.
    state = {**{k: v for k, v in resume.items() if k not in ("optimizer", "rule_state")},
             "optimizer_scalars": scalars}
    return json.dumps(state, default=_json_default), arrays


def _write_resume(group, resume: dict) -> None:
    state, arrays = _resume_parts(resume)
    group.attrs["state"] = state
    og = group.create_group("optimizer")
    for slot, vals in arrays.items():
        sg = og.create_group(slot)
        for k, v in vals.items():
            sg.create_dataset(k, data=v)
    if "rule_state" in resume:
        _write_tree(group.create_group("rule_state"), resume["rule_state"])


#: Keys of the ``/resume`` state attribute every resumable run writes.
RESUME_KEYS = ("iteration", "accuracy", "streams", "schedule", "optimizer_scalars")


def _read_resume(group, path="") -> dict:
    """The resume state; SchemaError naming ``path`` and the defect if it is corrupt or incomplete."""
    def bad(what):
        return SchemaError(f"run file {str(path)!r} has a corrupt resume state: {what}; it cannot be resumed")

    if "state" not in group.attrs:
        raise bad("/resume lacks its 'state' attribute")
    raw = group.attrs["state"]
    try:
        state = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    except (TypeError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise bad(f"/resume attribute 'state' is not valid JSON ({exc})") from exc
    if not isinstance(state, dict):
        raise bad(f"/resume attribute 'state' holds a {type(state).__name__}, not a JSON object")
    missing = [k for k in RESUME_KEYS if k not in state]
    if "optimizer" not in group or not isinstance(group["optimizer"], h5py.Group):
        missing.append("/resume/optimizer")
    if missing:
        raise bad(f"it lacks {', '.join(missing)}")
    it = state["iteration"]
    if isinstance(it, bool) or not isinstance(it, int) or it < 0:
        raise bad(f"iteration {it!r} is not a non-negative integer")
    for key in ("streams", "optimizer_scalars"):
        if not isinstance(state[key], dict) or not all(isinstance(v, dict) for v in state[key].values()):
            raise bad(f"{key!r} is not a mapping of name -> state")
    optimizer = {slot: dict(vals) for slot, vals in state.pop("optimizer_scalars").items()}
    for slot, g in group["optimizer"].items():
        if not isinstance(g, h5py.Group):
            raise bad(f"/resume/optimizer/{slot} is not a group")
        optimizer.setdefault(slot, {}).update({k: d[()] for k, d in g.items()})
    state["optimizer"] = optimizer
    if "rule_state" in group:
        try:
            state["rule_state"] = _read_tree(group["rule_state"])
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise bad(f"/resume/rule_state is unreadable ({type(exc).__name__}: {exc})") from exc
    return state


# -- learning-rule state: nested containers of scalars and arrays, bit-exact, no pickle --
_TAG = "__bioplastic__"


def encode_state(obj, arrays: dict):
    """A JSON-able copy of ``obj`` with every NumPy array and scalar moved to ``arrays``.

    ``obj`` is what a rule's ``init_state`` returns and its ``update`` keeps
    up to date: dicts, lists and tuples of None, bools, ints, floats,
    strings, NumPy scalars and NumPy arrays. Arrays and NumPy scalars become
    ``{"__bioplastic__": "array", "ref": i}`` and are appended to ``arrays``
    under the key ``str(i)`` (stored as HDF5 datasets: dtype, shape and bits
    kept); Python floats stay in the JSON, whose shortest-repr floats read
    back to the same double (NaN and infinities included). Tuples and dicts
    with non-string keys are tagged so they come back as they were.

    Raises
    ------
    TypeError
        For anything else (objects, object or string arrays): the state is
        not storable, and the caller decides what to do without it.
    """
    if obj is None or isinstance(obj, (bool, int, float, str)) and not isinstance(obj, np.generic):
        return obj
    if isinstance(obj, (np.ndarray, np.generic)):
        arr = np.asarray(obj)
        if arr.dtype.kind not in "biufc":
            raise TypeError(f"cannot store an array of dtype {arr.dtype} in a rule state")
        ref = str(len(arrays))
        arrays[ref] = arr
        out = {_TAG: "array" if isinstance(obj, np.ndarray) else "scalar", "ref": ref}
        if arr.ndim > 1 and arr.flags.f_contiguous and not arr.flags.c_contiguous:
            out["order"] = "F"  # BLAS calls may take another path on a transposed layout
        return out
    if isinstance(obj, tuple):
        return {_TAG: "tuple", "items": [encode_state(v, arrays) for v in obj]}
    if isinstance(obj, list):
        return [encode_state(v, arrays) for v in obj]
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj) and _TAG not in obj:
            return {k: encode_state(v, arrays) for k, v in obj.items()}
        return {_TAG: "dict", "items": [[encode_state(k, arrays), encode_state(v, arrays)] for k, v in obj.items()]}
    raise TypeError(f"cannot store a {type(obj).__name__} in a rule state (storable: dicts, lists, tuples, "
                    "None, numbers, strings and numeric NumPy arrays)")


def decode_state(obj, arrays: dict):
    """Inverse of :func:`encode_state`: ``arrays`` maps the references to the stored arrays."""
    if isinstance(obj, list):
        return [decode_state(v, arrays) for v in obj]
    if not isinstance(obj, dict):
        return obj
    tag = obj.get(_TAG)
    if tag == "array":
        arr = np.array(arrays[obj["ref"]], copy=True)
        return np.asfortranarray(arr) if obj.get("order") == "F" else arr
    if tag == "scalar":
        return np.asarray(arrays[obj["ref"]])[()]
    if tag == "tuple":
        return tuple(decode_state(v, arrays) for v in obj["items"])
    if tag == "dict":
        return {_hashable(decode_state(k, arrays)): decode_state(v, arrays) for k, v in obj["items"]}
    return {k: decode_state(v, arrays) for k, v in obj.items()}


def _hashable(key):
    return key.item() if isinstance(key, np.generic) else key


def _write_tree(group, obj) -> None:
    arrays = {}
    tree = encode_state(obj, arrays)
    # A dataset, not an attribute: attributes are limited to 64 kB.
    group.create_dataset("tree", data=json.dumps(tree))
    ag = group.create_group("arrays")
    for ref, arr in arrays.items():
        _dataset(ag, ref, arr)


def _read_tree(group):
    raw = group["tree"][()]
    tree = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
    return decode_state(tree, {ref: d[()] for ref, d in group["arrays"].items()})


def _json_default(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in a run file config")


def read_run(path, *, checkpoints: bool = True) -> RunData:
    """Read and validate a run file.

    Raises
    ------
    SchemaError
        If the file is not HDF5, not a bioplastic run file, of an unknown
        schema version, or lacks a required attribute or group, or if its
        config or resume state is not valid JSON or lacks a key.
    """
    path = Path(path)
    with open_checked(path, SCHEMA, SCHEMA_VERSION, "run file") as f:
        missing = [a for a in _REQUIRED_ATTRS if a not in f.attrs]
        missing += [f"/{g}" for g in ("params", "history", "checkpoints") if g not in f]
        if missing:
            raise SchemaError(f"run file {str(path)!r} lacks {', '.join(missing)}")
        from ..networks.base import Constraint

        constraints = {}
        for name, g in f.get("constraints", {}).items():
            constraints[name] = Constraint(**{k: g[k][()] for k in g})
        try:
            config = json.loads(f.attrs["config"])
        except (TypeError, ValueError) as exc:
            raise SchemaError(f"run file {str(path)!r} has a corrupt config attribute (not valid JSON: {exc})") \
                from exc
        if not isinstance(config, dict):
            raise SchemaError(f"run file {str(path)!r} has a corrupt config attribute (a {type(config).__name__}, "
                              "not a JSON object)")
        data = RunData(
            config=config,
            seed=int(f.attrs["seed"]),
            status=str(f.attrs["status"]),
            params={k: v[()] for k, v in f["params"].items()},
            constraints=constraints,
            history={k: v[()] for k, v in f["history"].items()},
            attrs={k: (v.item() if isinstance(v, np.generic) else v) for k, v in f.attrs.items()},
        )
        if "resume" in f:
            data.resume = _read_resume(f["resume"], path)
        if "recordings" in f:
            data.recordings = _read_recordings(f["recordings"])
        if checkpoints:
            data.checkpoints = {int(k): {n: d[()] for n, d in g.items()} for k, g in f["checkpoints"].items()}
    return data
