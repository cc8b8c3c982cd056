"""The HDF5 run file: one training run, self-describing (SPEC 7).

Layout (schema ``bioplastic.run``, version :data:`SCHEMA_VERSION`)::

    /                       attrs: schema, schema_version, package_version,
                                   seed, status, converged_at, created, config (JSON)
    /params/<name>          final parameters
    /constraints/<name>/{frozen,connectivity,sign}
    /history/<column>       one value per training iteration
    /checkpoints/<k>/<name> parameters before update k (k zero-padded)
    /recordings/trials/     the recorded batch: inputs, targets, loss_mask,
                            trial_table/<col>, epochs/<name>; attrs dt
    /recordings/at/<k>/<what>  activity recorded with the parameters of checkpoint k
    /resume                 (unfinished runs only) state to continue bit for bit
    /resume/rule_state/     (local-rule runs) the rule's state: ``tree`` (JSON,
                            arrays replaced by references) and ``arrays/<i>``

The full description is docs/schema.md.

Files are written atomically (temporary sibling + rename), datasets over a
few kB are chunked and gzip-compressed. :func:`read_run` checks the schema and
names what is missing.
"""
from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from .._version import __version__
from ..errors import SchemaError
from .atomic import atomic_path
from .hdf5 import open_checked

SCHEMA = "bioplastic.run"
SCHEMA_VERSION = 1
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
    kwargs = {}
    if data.ndim > 0 and data.nbytes > 4096:
        kwargs = {"chunks": True, "compression": "gzip", "compression_opts": 4, "shuffle": True}
    group.create_dataset(name, data=data, **kwargs)


def _write_params(group, params):
    for name, arr in params.items():
        _dataset(group, name, arr)


def write_run(path, *, config: dict, seed: int, status: str, params, history: dict,
              checkpoints: dict | None = None, attrs: dict | None = None, resume: dict | None = None,
              recordings: dict | None = None) -> Path:
    """Write a complete run file atomically and return its path.

    ``resume`` (written by an unfinished run at each checkpoint) holds the
    iteration, random-stream states, schedule and optimiser state needed to
    continue bit for bit; see :func:`bioplastic.training.resume`. A
    local-rule run adds ``rule_state``, the rule's own state (nested
    containers with arrays, stored by :func:`encode_state` under
    ``/resume/rule_state``).
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["schema"] = SCHEMA
            f.attrs["schema_version"] = SCHEMA_VERSION
            f.attrs["package_version"] = __version__
            f.attrs["seed"] = int(seed)
            f.attrs["status"] = status
            f.attrs["created"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
            f.attrs["config"] = json.dumps(config, sort_keys=True, default=_json_default)
            for k, v in (attrs or {}).items():
                f.attrs[k] = -1 if v is None else v
            _write_params(f.create_group("params"), params)
            cg = f.create_group("constraints")
            for name, c in getattr(params, "constraints", {}).items():
                g = cg.create_group(name)
                for kind, arr in c.arrays().items():
                    _dataset(g, kind, arr)
            hg = f.create_group("history")
            for col, values in history.items():
                _dataset(hg, col, np.asarray(values))
            ckg = f.create_group("checkpoints")
            for k, p in sorted((checkpoints or {}).items()):
                _write_params(ckg.create_group(f"{int(k):08d}"), p)
            if resume is not None:
                _write_resume(f.create_group("resume"), resume)
            if recordings is not None:
                _write_recordings(f.create_group("recordings"), recordings)
    return path


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


def _write_resume(group, resume: dict) -> None:
    opt = resume["optimizer"]
    arrays = {slot: {k: v for k, v in vals.items() if isinstance(v, np.ndarray)} for slot, vals in opt.items()}
    scalars = {slot: {k: v for k, v in vals.items() if not isinstance(v, np.ndarray)} for slot, vals in opt.items()}
    # Every other key (the success tracker, lambda scale...) is JSON as it is.
    state = {**{k: v for k, v in resume.items() if k not in ("optimizer", "rule_state")},
             "optimizer_scalars": scalars}
    group.attrs["state"] = json.dumps(state, default=_json_default)
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
