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
``OUT/runs/``; a job whose run file is complete is skipped on re-run, so an
interrupted sweep resumes where it stopped. At the end a summary table is
written as ``OUT/summary.csv`` and ``OUT/summary.h5``.

Back ends: local processes (default, one per core) or an existing
``dask.distributed`` scheduler given by address (e.g. one started by
dask-jobqueue on SLURM, see docs/sweeps.md).
"""
from __future__ import annotations

import copy
import csv
import io
import itertools
import time
import tomllib
from pathlib import Path

import h5py
import numpy as np

from .errors import ConfigError
from .io.atomic import atomic_path, write_text
from .registry import check_keys

SECTIONS = ("sweep", "model", "task", "training", "grid")
SWEEP_KEYS = ("seeds", "workers", "name")
SUMMARY_COLUMNS = ("name", "seed", "status", "converged_at", "final_accuracy", "memory_generalization",
                   "final_task_loss", "n_iterations", "run_file")


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


def run_sweep(spec_path, out, *, scheduler=None, workers=None, progress=True, connect_timeout="10s") -> dict:
    """Run a sweep; returns ``{"rows": [...], "wall_seconds": float, "backend": str}``."""
    from .experiments import run_train_job_single_thread

    spec = load_sweep(spec_path)
    out = Path(out)
    try:
        (out / "runs").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create output folder {str(out)!r}: {exc}") from exc
    jobs = make_jobs(spec, out)
    workers = int(workers or spec.get("sweep", {}).get("workers", 2))
    t0 = time.perf_counter()
    from .backends import backend_description, map_jobs

    results, _ = map_jobs(run_train_job_single_thread, jobs, workers=workers, scheduler=scheduler,
                          progress=progress, desc="sweep", connect_timeout=connect_timeout)
    backend = backend_description(workers, scheduler)
    wall = time.perf_counter() - t0
    rows = [_row(job, res) for job, res in zip(jobs, results)]
    write_summary(rows, out)
    return {"rows": rows, "wall_seconds": wall, "backend": backend}


def _row(job, res) -> dict:
    row = {"name": job["name"], "seed": job["seed"], **{k: v for k, v in job["grid"].items()},
           "status": res["status"], "converged_at": res["converged_at"],
           "final_accuracy": res["final_accuracy"], "memory_generalization": res.get("memory_generalization"),
           "final_task_loss": float(res["task_loss"][-1]) if len(res["task_loss"]) else float("nan"),
           "n_iterations": int(len(res["task_loss"])), "run_file": res["run_file"]}
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
