"""Sweeps: a grid of seeds x parameters, run locally or on a Dask cluster.

A sweep spec (TOML) holds a base ``[model]``, ``[task]`` and ``[training]``,
a ``[grid]`` of dotted keys to lists of values, and ``[sweep]`` settings::

    [sweep]
    seeds = 4               # or a list of seeds
    [model]
    kind = "lfrnn"
    n_units = 32
    [task]
    name = "flipflop"
    [training]
    iterations = 300
    [grid]
    "model.g" = [1.5, 3.0]
    "training.lambda_tcr" = [0.0, 30.0]

Each job (one grid point and seed) writes its own run file under
``OUT/runs/``. Jobs are keyed by a hash of their resolved config
(:func:`config_hash`: model, task, training settings and seed, as
:func:`bioplastic.training.train` records them; not the job's name or paths).
On a re-run, a job whose run file is complete *and* has the same hash is
reused, so an interrupted sweep resumes where it stopped; a run file made
with other settings is moved aside (``<name>.stale-<old hash>.h5``, never
deleted) and the job is trained again, or, with ``refuse_stale``, the sweep
stops before running anything. At the end a summary table is written as
``OUT/summary.csv`` and ``OUT/summary.h5``, with each job's ``config_hash``
and whether it was ``reused``. The sweep holds the output folder's lock
(:func:`bioplastic.io.lock.output_lock`) while it runs.

Back ends: local processes (default, one per core) or an existing
``dask.distributed`` scheduler given by address (e.g. one started by
dask-jobqueue on SLURM, see docs/sweeps.md).
"""
from __future__ import annotations

import copy
import csv
import hashlib
import inspect
import io
import itertools
import json
import os
import time
import tomllib
from pathlib import Path

import h5py
import numpy as np

from .errors import BioplasticError, ConfigError
from .io.atomic import atomic_path, write_text
from .io.lock import output_lock
from .registry import check_keys

SECTIONS = ("sweep", "model", "task", "training", "grid")
SWEEP_KEYS = ("seeds", "workers", "name")
SUMMARY_COLUMNS = ("name", "seed", "status", "converged_at", "final_accuracy", "memory_generalization",
                   "final_task_loss", "n_iterations", "run_file", "reused", "config_hash")
#: The parts of a run file's config that decide its result; names, paths and
#: notes (``job``, ``spec``, ``resumed_at``...) are left out of the hash.
RESULT_KEYS = ("model", "task", "training", "seed", "record")
#: :func:`bioplastic.training.train` arguments a sweep's [training] table may not set.
_NOT_TRAINING = ("network", "task", "seed", "params", "run_file", "progress", "extra_config", "_resume")


def load_sweep(path) -> dict:
    """Read and check a sweep spec; unknown sections or keys are errors."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sweep spec {str(path)!r} does not exist")
    try:
        spec = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    check_keys(f"{path}: unknown section(s)", spec, SECTIONS)
    check_keys(f"{path} [sweep]: unknown key(s)", spec.get("sweep", {}), SWEEP_KEYS)
    for section in ("model", "task"):
        if section not in spec:
            raise ConfigError(f"{path}: needs a [{section}] table")
    for key, values in spec.get("grid", {}).items():
        sec, _, name = key.partition(".")
        if sec not in ("model", "task", "training") or not name:
            raise ConfigError(f"{path} [grid]: key {key!r} must be 'model.X', 'task.X' or 'training.X'")
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path} [grid]: {key!r} needs a non-empty list of values")
    return spec


def make_jobs(spec: dict, out: Path) -> list[dict]:
    """Expand the grid x seeds into job dicts (see :mod:`bioplastic.experiments`)."""
    seeds = spec.get("sweep", {}).get("seeds", 1)
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    grid = spec.get("grid", {})
    keys = list(grid)
    jobs = []
    for values in itertools.product(*(grid[k] for k in keys)):
        point = dict(zip(keys, values))
        for seed in seeds:
            job = {"model": copy.deepcopy(spec["model"]), "task": copy.deepcopy(spec["task"]),
                   "training": copy.deepcopy(spec.get("training", {})), "seed": int(seed), "grid": point}
            for key, value in point.items():
                sec, _, name = key.partition(".")
                job[sec][name] = value
            label = "_".join(f"{k.split('.', 1)[1]}={_short(v)}" for k, v in point.items())
            job["name"] = f"{label}_seed{seed}" if label else f"seed{seed}"
            job["run_file"] = str(out / "runs" / f"{job['name']}.h5")
            jobs.append(job)
    return jobs


def _short(v) -> str:
    if isinstance(v, dict):
        return "-".join(f"{k}{_short(x)}" for k, x in v.items() if k != "kind") or "dict"
    return str(v).replace("/", "-").replace(" ", "")


def _canonical(obj):
    """JSON-normal form: what a run file gives back, with 2.0 and 2 the same number."""
    if isinstance(obj, dict):
        return {str(k): _canonical(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_canonical(v) for v in obj]
    if isinstance(obj, float) and obj.is_integer():
        return int(obj)  # "g = 2" and "g = 2.0" in a spec are the same setting
    return obj


def result_config(config: dict) -> dict:
    """The part of a run file's ``config`` that decides the result (:data:`RESULT_KEYS`), JSON-normalised."""
    from .io.runfile import _json_default

    part = {k: config[k] for k in RESULT_KEYS if k in config}
    return _canonical(json.loads(json.dumps(part, sort_keys=True, default=_json_default)))


def config_hash(config: dict) -> str:
    """Stable 16-hex-digit SHA-256 of :func:`result_config` (canonical JSON, sorted keys).

    Examples
    --------
    >>> from bioplastic.sweep import config_hash
    >>> config_hash({"seed": 1, "model": {"g": 2.0}, "job": "a"}) == config_hash({"model": {"g": 2}, "seed": 1})
    True
    """
    text = json.dumps(result_config(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def resolved_config(job: dict) -> dict:
    """The config :func:`bioplastic.training.train` would record for ``job``, without training.

    Builds the task and network (cheap: no weights are drawn) and resolves
    every training setting to the form the run file stores (defaults filled
    in, schedule, criterion and memory test described), restricted to
    :data:`RESULT_KEYS`. A test checks it equals the config of a run file
    written by the sweep, so a change to what ``train`` records shows up there.

    Raises
    ------
    ConfigError
        On an unknown or invalid setting, before any job runs.
    """
    from .networks import make_network
    from .recording import make_recording
    from .seeding import check_seed
    from .tasks import get_task
    from .training import train
    from .training.criteria import make_criterion
    from .training.evaluation import memory_test_settings
    from .training.loop import resolve_tcr_epoch
    from .training.optim import make_optimizer
    from .training.schedules import make_schedule

    task_cfg = dict(job["task"])
    task = get_task(task_cfg.pop("name"), **task_cfg)
    model = dict(job["model"])
    net = make_network(model.pop("kind"), task.n_inputs, task.n_outputs, **model)
    signature = inspect.signature(train).parameters
    defaults = {k: p.default for k, p in signature.items()
                if k not in _NOT_TRAINING and p.default is not inspect.Parameter.empty}
    given = dict(job.get("training", {}))
    check_keys("unknown [training] setting(s)", given, tuple(defaults))
    t = {**defaults, **given}
    # The same resolution as train() performs before it records its config.
    opt = make_optimizer(t["optimizer"], lr=t["lr"])
    recording = make_recording(t["record"])
    checkpoint_at = t["checkpoint_at"] or ()
    if recording is not None:
        checkpoint_at = sorted(set(checkpoint_at) | set(recording.extra_checkpoints()))
    memory = memory_test_settings(t["memory_test"])
    cfg = {
        "model": net.settings(),
        "task": {"name": task.name, **task.settings()},
        "training": {"rule": "bptt", "iterations": int(t["iterations"]), "batch_size": int(t["batch_size"]),
                     "optimizer": type(opt).__name__.lower(), "lr": opt.lr, "clip": t["clip"],
                     "lambda_tcr": make_schedule(t["lambda_tcr"]).describe(), "tcr_on": t["tcr_on"],
                     "tcr_epoch": resolve_tcr_epoch(t["tcr_epoch"], task),
                     "tcr_relative": bool(t["tcr_relative"]), "early_stop": bool(t["early_stop"]),
                     "continue_after": int(t["continue_after"]),
                     "criterion": make_criterion(t["criterion"], task).describe(),
                     "eval_batch_size": int(t["eval_batch_size"]), "memory_test": memory if memory else False,
                     "checkpoint_every": t["checkpoint_every"],
                     "checkpoint_at": sorted(int(k) for k in checkpoint_at)},
        "seed": check_seed(job["seed"]),
        **({"record": recording.describe()} if recording is not None else {}),
    }
    return result_config(cfg)


def config_changes(old: dict, new: dict) -> list[str]:
    """Settings that differ between two configs, as ``"model.n_units 8 -> 16"`` (dotted leaves)."""
    old, new = result_config(old), result_config(new)
    out = []

    def walk(a, b, prefix):
        for key in sorted(set(a) | set(b)):
            name = f"{prefix}{key}"
            if isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
                walk(a[key], b[key], name + ".")
            elif a.get(key, ...) != b.get(key, ...):
                show = lambda d: json.dumps(d[key]) if key in d else "(unset)"  # noqa: E731
                out.append(f"{name} {show(a)} -> {show(b)}")

    walk(old, new, "")
    return out


def plan_jobs(jobs: list[dict]) -> list[dict]:
    """Decide, before anything runs, what each job does with its existing run file.

    Returns
    -------
    list of dict, one per job: ``hash`` (of its resolved config) and
    ``action``: "train" (no run file), "reuse" (finished, same hash),
    "retrain" (interrupted, same hash: trained again from scratch),
    "stale" (made with other settings or unreadable; ``old_hash`` and
    ``changes`` say how) or "restore" (a file of these very settings was
    moved aside earlier: ``stash`` is put back and reused).
    """
    from .io.runfile import read_run

    plans = []
    for job in jobs:
        try:
            new = resolved_config(job)
        except BioplasticError as exc:
            raise ConfigError(f"sweep job {job['name']!r}: {exc}") from exc
        plan = {"name": job["name"], "hash": config_hash(new), "action": "train"}
        run_file = Path(job["run_file"])
        if run_file.exists():
            try:
                data = read_run(run_file, checkpoints=False)
            except (BioplasticError, OSError) as exc:
                plan.update(action="stale", old_hash="unreadable", changes=[f"unreadable run file ({exc})"])
            else:
                old_hash = config_hash(data.config)
                if old_hash == plan["hash"]:
                    plan["action"] = "reuse" if data.status != "running" else "retrain"
                else:
                    plan.update(action="stale", old_hash=old_hash, changes=config_changes(data.config, new))
        if plan["action"] in ("train", "stale"):
            stash = _stash_path(run_file, plan["hash"])
            if stash.exists() and _hash_of(stash) == plan["hash"]:
                plan["stash"] = str(stash)
                if plan["action"] == "train":
                    plan["action"] = "restore"
        plans.append(plan)
    return plans


def _stash_path(run_file: Path, hash_: str) -> Path:
    return run_file.with_name(f"{run_file.stem}.stale-{hash_}{run_file.suffix}")


def _hash_of(path: Path):
    from .io.runfile import read_run

    try:
        return config_hash(read_run(path, checkpoints=False).config)
    except (BioplasticError, OSError):
        return None


def _move_aside(run_file: Path, old_hash: str) -> Path:
    """Rename a stale run file to ``<name>.stale-<old hash>.h5`` (``-2``, ``-3``... if taken)."""
    target = _stash_path(run_file, old_hash)
    n = 1
    while target.exists():  # never replace an earlier stale file
        n += 1
        target = run_file.with_name(f"{run_file.stem}.stale-{old_hash}-{n}{run_file.suffix}")
    os.replace(run_file, target)
    return target


def _listing(items: list[str], limit: int) -> str:
    return "; ".join(items[:limit]) + (f"; and {len(items) - limit} more" if len(items) > limit else "")


def _what_changed(plan: dict) -> str:
    return ", ".join(plan["changes"][:3]) + (f", +{len(plan['changes']) - 3} more" if len(plan["changes"]) > 3
                                              else "")


def run_sweep(spec_path, out, *, scheduler=None, workers=None, progress=True, connect_timeout="10s",
              refuse_stale=False, log=None) -> dict:
    """Run a sweep into the folder ``out`` (created), holding its lock.

    Parameters
    ----------
    spec_path : path of the sweep spec (TOML)
    out : output folder; run files go to ``out/runs/``
    scheduler : address of a dask.distributed scheduler, or None for local processes
    workers : local processes (default: the spec's, else 2)
    progress : show a progress bar
    connect_timeout : how long to try reaching ``scheduler``
    refuse_stale : bool
        If True, a run file made with other settings than its job's is an
        error (listing them) raised before anything runs; if False it is
        moved aside and the job is trained again.
    log : callable or None
        Receives one-line notes: stale files moved aside, files restored,
        a stale lock taken over.

    Returns
    -------
    dict with ``rows`` (the summary rows), ``wall_seconds``, ``backend``,
    ``reused`` (names of jobs whose finished run file was used as is),
    ``trained`` (names of jobs trained by this call), ``stale`` (one dict
    per run file moved aside: ``name``, ``changes``, ``moved_to``),
    ``changed`` (names of jobs trained again because their settings changed)
    and ``restored`` (names of jobs given back a run file moved aside
    earlier, made with their current settings).

    Raises
    ------
    ConfigError
        On a bad spec or setting, a folder locked by another process, or
        (with ``refuse_stale``) stale run files.
    """
    from .experiments import run_train_job_single_thread

    spec = load_sweep(spec_path)
    out = Path(out)
    try:
        (out / "runs").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create output folder {str(out)!r}: {exc}") from exc
    say = log or (lambda message: None)
    with output_lock(out, log=log):
        jobs = make_jobs(spec, out)
        plans = plan_jobs(jobs)
        stale = [p for p in plans if p["action"] == "stale"]
        if stale and refuse_stale:
            listed = _listing([f"{p['name']} ({_what_changed(p)})" for p in stale], 5)
            raise ConfigError(f"{len(stale)} of {len(jobs)} jobs have run files made with other settings: "
                              f"{listed}; nothing was run (without --refuse-stale they are moved aside "
                              "and trained again)")
        moved = []
        for job, plan in zip(jobs, plans):
            run_file = Path(job["run_file"])
            if plan["action"] == "stale":
                target = _move_aside(run_file, plan["old_hash"])
                moved.append({"name": job["name"], "changes": plan["changes"], "moved_to": str(target)})
                then = (f"using again {plan['stash']}, kept earlier from these very settings" if plan.get("stash")
                        else "training it again")
                say(f"note: job {job['name']} changed ({_what_changed(plan)}): its old run file is kept as "
                    f"{target}; {then}")
            elif plan["action"] == "restore":
                say(f"note: job {job['name']}: using again {plan['stash']}, kept earlier from these very settings")
            elif plan["action"] == "retrain":
                say(f"note: job {job['name']}: its run file {run_file} was interrupted; training it again")
            if plan.get("stash"):
                os.replace(plan["stash"], run_file)
        n_reuse = sum(p["action"] in ("reuse", "restore") or bool(p.get("stash")) for p in plans)
        if n_reuse or moved:
            say(f"note: {n_reuse} of {len(jobs)} jobs reused (finished run files of the same settings); "
                f"{len(jobs) - n_reuse} to train")
        workers = int(workers or spec.get("sweep", {}).get("workers", 2))
        t0 = time.perf_counter()
        from .backends import backend_description, map_jobs

        results, _ = map_jobs(run_train_job_single_thread, jobs, workers=workers, scheduler=scheduler,
                              progress=progress, desc="sweep", connect_timeout=connect_timeout)
        backend = backend_description(workers, scheduler)
        wall = time.perf_counter() - t0
        rows = [_row(job, res, plan["hash"]) for job, res, plan in zip(jobs, results, plans)]
        write_summary(rows, out)
    return {"rows": rows, "wall_seconds": wall, "backend": backend,
            "reused": [r["name"] for r in rows if r["reused"]],
            "trained": [r["name"] for r in rows if not r["reused"]],
            "stale": moved, "restored": [p["name"] for p in plans if p.get("stash")],
            "changed": [p["name"] for p in plans if p["action"] == "stale" and not p.get("stash")]}


def _row(job, res, hash_) -> dict:
    row = {"name": job["name"], "seed": job["seed"], **{k: v for k, v in job["grid"].items()},
           "status": res["status"], "converged_at": res["converged_at"],
           "final_accuracy": res["final_accuracy"], "memory_generalization": res.get("memory_generalization"),
           "final_task_loss": float(res["task_loss"][-1]) if len(res["task_loss"]) else float("nan"),
           "n_iterations": int(len(res["task_loss"])), "run_file": res["run_file"],
           "reused": bool(res.get("reused", False)), "config_hash": hash_}
    return row


def write_summary(rows: list[dict], out: Path) -> None:
    """Write ``summary.csv`` and ``summary.h5`` (one dataset per column) atomically."""
    if not rows:
        return
    columns = list(rows[0])
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r[k] is None else (r[k] if not isinstance(r[k], dict) else str(r[k])))
                         for k in columns})
    write_text(out / "summary.csv", buf.getvalue())
    with atomic_path(out / "summary.h5") as tmp, h5py.File(tmp, "w") as f:
        f.attrs["schema"] = "bioplastic.sweep_summary"
        f.attrs["schema_version"] = 1
        for col in columns:
            values = [r[col] for r in rows]
            if all(isinstance(v, (int, float, np.number)) or v is None for v in values):
                data = np.array([np.nan if v is None else v for v in values], dtype=float)
            else:
                data = np.array([str(v) for v in values], dtype=h5py.string_dtype())
            f.create_dataset(col.replace("/", "_"), data=data)
