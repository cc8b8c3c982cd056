"""Sweeps: a grid of seeds x parameters, run locally or on a Dask cluster.

A sweep spec (TOML) is a model spec (docs/specs.md: ``[model]``, ``[task]``,
``[training]``, ``[rule]``, ``[local_training]``, ``[record]``, ``[nwb]``)
plus a ``[grid]`` of dotted spec keys to lists of values and ``[sweep]``
settings::

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

Any key a spec file or ``--set`` can set can be a grid key: ``rule.name``
(``["bptt", "eprop+tcr_stp"]``: BPTT and local rules in one sweep),
``rule.tcr_stp.eta_s``, ``local_training.eprop.lr``, ``task.n_bits``,
``training.lambda_tcr.value``. Every job's spec is checked as a spec file
is, before any job runs; an unknown key names the closest valid one.

Each job (one grid point and seed) writes its own run file under
``OUT/runs/``. Jobs are keyed by a hash of their resolved config
(:func:`config_hash`: model, task, training settings (the rule included),
recording and seed, as :func:`bioplastic.training.train` or
:func:`~bioplastic.training.local.train_local` records them; not the job's
name, paths or ``[nwb]`` metadata). On a re-run, a job whose run file is
complete *and* has the same hash is reused, so an interrupted sweep resumes
where it stopped; a run file made with other settings is moved aside
(``<name>.stale-<old hash>.h5``, never deleted) and the job is trained again,
or, with ``refuse_stale``, the sweep stops before running anything. At the
end a summary table is written as ``OUT/summary.csv`` and ``OUT/summary.h5``,
with each job's ``config_hash`` and whether it was ``reused``. The sweep
holds the output folder's lock (:func:`bioplastic.io.lock.output_lock`)
while it runs.

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
from pathlib import Path

import h5py
import numpy as np

from .errors import BioplasticError, ConfigError
from .io import specs
from .io.atomic import atomic_path, write_text
from .io.lock import output_lock
from .io.overrides import apply_overrides, format_override
from .registry import check_keys

#: The sections of a sweep spec: a model spec's, plus [sweep] and [grid].
SECTIONS = ("sweep", "grid") + specs.SECTIONS
SWEEP_KEYS = ("seeds", "workers", "name")
SUMMARY_COLUMNS = ("name", "seed", "status", "converged_at", "final_accuracy", "memory_generalization",
                   "final_task_loss", "n_iterations", "run_file", "reused", "config_hash")
#: The parts of a run file's config that decide its result; names, paths and
#: notes (``job``, ``spec``, ``nwb``, ``resumed_at``...) are left out of the hash.
RESULT_KEYS = ("model", "task", "training", "seed", "record")
#: :func:`bioplastic.training.train` arguments a sweep's [training] table may not set.
_NOT_TRAINING = ("network", "task", "seed", "params", "run_file", "progress", "extra_config", "_resume")
#: Where sweep specs are looked up by name (``bioplastic sweep gain_tcr``).
SWEEP_DIR = "protocols/sweeps"


def find_sweep(name_or_path) -> Path:
    """A sweep spec given as a path, or by name in ``protocols/sweeps/`` (here, then the repo's)."""
    p = Path(name_or_path)
    if p.is_file():
        return p
    if p.is_dir():
        raise ConfigError(f"sweep spec {str(name_or_path)!r} is a folder, not a TOML file")
    dirs = specs.search_dirs(SWEEP_DIR)
    for d in dirs:
        for cand in (d / f"{name_or_path}", d / f"{name_or_path}.toml"):
            if cand.is_file():
                return cand
    known = sorted({f.stem for d in dirs for f in d.glob("*.toml")})
    raise ConfigError(f"sweep spec {str(name_or_path)!r} does not exist"
                      + (f" (nor as a name in {SWEEP_DIR}: {', '.join(known)})" if known else ""))


def load_sweep(path, overrides=()) -> dict:
    """Read and check a sweep spec, with optional ``--set`` overrides of its base spec.

    Parameters
    ----------
    path : str or path
        A sweep spec file, or the name of one in ``protocols/sweeps/``.
    overrides : iterable of str
        ``"SECTION.KEY=VALUE"`` (``--set``), applied to the spec before the
        checks: ``model.n_units=16``, ``sweep.seeds=2``, ``rule.name=eprop``.
        A grid key overrides them (it is applied per job).

    Returns
    -------
    dict
        The spec's tables (``sweep``, ``grid`` and the model spec's
        sections, absent ones left out), plus ``path`` (str) and
        ``overrides`` (list of str).

    Raises
    ------
    ConfigError, UnknownNameError
        On an unknown section, key or grid key (naming the closest valid
        one), a grid value that makes an invalid spec (naming the grid key
        and value), a missing ``[model]`` or task name, or a ``seed`` in
        ``[training]`` (seeds come from ``[sweep] seeds``).
    """
    path = find_sweep(path)
    where = str(path)
    data = specs.read_toml(path)
    check_keys(f"{where}: unknown section(s)", data, SECTIONS)
    overrides = list(overrides or ())
    if overrides:
        bad = [o for o in overrides if isinstance(o, str) and o.strip().startswith("grid.")]
        if bad:
            raise ConfigError(f"--set {bad[0]!r}: the grid cannot be set from the command line (its keys hold "
                              f"dots); edit [grid] in {where}")
        data = apply_overrides(data, overrides, [s for s in SECTIONS if s != "grid"])
        where = f"{where} (after --set)"
    for section, table in data.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: {section!r} must be a table ([{section}] with keys below it), "
                              f"got {table!r}")
    check_keys(f"{where} [sweep]: unknown key(s)", data.get("sweep", {}), SWEEP_KEYS)
    _check_seeds(where, data.get("sweep", {}).get("seeds", 1))
    if "seed" in data.get("training", {}):
        raise ConfigError(f"{where} [training]: 'seed' is set per job by [sweep] seeds (e.g. seeds = 4 or "
                          "seeds = [0, 7])")
    for section in ("model", "task"):
        if section not in data:
            raise ConfigError(f"{where}: needs a [{section}] table")
    grid = data.get("grid", {})
    if "name" not in data["task"] and "task.name" not in grid:
        raise ConfigError(f"{where}: no task; set name = \"...\" in [task] (or grid \"task.name\")")
    base = _base(data)
    specs.check_spec_data(base, where)
    for key, values in grid.items():
        path_ = _grid_path(where, key)
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where} [grid]: {key!r} needs a non-empty list of values")
        for value in values:  # each value alone on the base spec: errors name the key and value
            specs.check_spec_data(apply_overrides(base, [(path_, value)]), f"{where} (grid {key} = {value!r})")
    return {**data, "path": str(path), "overrides": [format_override(o) for o in overrides]}


def _check_seeds(where, seeds) -> None:
    """ConfigError unless ``seeds`` is a number of seeds (>= 1) or a list of distinct seeds a run file
    can store: one job, one run file per seed and grid point."""
    from .seeding import check_seed

    ok = (isinstance(seeds, int) and not isinstance(seeds, bool) and seeds >= 1) or (
        isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds))
    if not ok:
        raise ConfigError(f"{where} [sweep] seeds must be a number of seeds (>= 1) or a list of seeds, "
                          f"got {seeds!r}")
    if isinstance(seeds, int):
        return
    for seed in seeds:
        try:
            check_seed(seed)
        except ConfigError as exc:
            raise ConfigError(f"{where} [sweep] seeds: {exc}") from None
    repeated = _repeated(seeds)
    if repeated:  # two jobs would write one run file and one summary row twice
        raise ConfigError(f"{where} [sweep] seeds lists seed(s) {', '.join(map(str, repeated))} more than once; "
                          "give each seed once")


def _repeated(items) -> list:
    """The items that occur more than once in ``items``, in first-seen order."""
    seen, repeated = set(), {}
    for item in items:
        if item in seen:
            repeated[item] = None
        seen.add(item)
    return list(repeated)


def _base(data: dict) -> dict:
    """The model spec of a sweep spec: its tables other than [sweep] and [grid]."""
    return {k: v for k, v in data.items() if k in specs.SECTIONS}


def _grid_path(where, key: str) -> tuple:
    """A grid key's path into the spec (``"rule.eprop.feedback"`` -> 3 parts); its section checked."""
    parts = tuple(p.strip() for p in key.split("."))
    if len(parts) < 2 or not all(parts):
        hint = f" (e.g. \"{key}.name\")" if key in ("rule", "task") else ""
        raise ConfigError(f"{where} [grid]: key {key!r} must be SECTION.KEY, e.g. 'model.g', 'task.n_bits', "
                          f"'rule.name', 'rule.tcr_stp.eta_s', 'local_training.lr'{hint}")
    check_keys(f"{where} [grid] {key!r}: unknown section", {parts[0]}, specs.SECTIONS)
    return parts


def _label(key: str, value) -> str:
    """A grid value in a job's name: ``g=1.5``, ``rule=eprop+tcr_stp``, ``eprop.lr=0.1``."""
    short = "rule" if key == "rule.name" else key.split(".", 1)[1]
    return f"{short}={_short(value)}"


def make_jobs(spec: dict, out: Path) -> list[dict]:
    """Expand the grid x seeds into job dicts; each job's spec is checked and resolved.

    Returns
    -------
    list of dict
        One per grid point and seed: ``name``, ``seed``, ``grid`` (the
        point), ``run_file``, ``model``, ``task`` (with ``name``), ``rule``
        (the rule's name, ``"bptt"`` for BPTT), ``rule_table`` (the spec's
        ``[rule]`` table), ``training`` (the keyword arguments of ``train``
        or ``train_local``, ``record`` included), ``extra`` (config the run
        file keeps besides: ``spec``, ``nwb``) and ``notes`` (settings the
        job's rule ignores).

    Raises
    ------
    ConfigError
        On a job spec that does not resolve, or two jobs of one name (they
        would write one run file).
    """
    seeds = spec.get("sweep", {}).get("seeds", 1)
    seeds = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    grid = spec.get("grid", {})
    keys = list(grid)
    where = spec.get("path", "sweep")
    base = _base(spec)
    jobs = []
    for values in itertools.product(*(grid[k] for k in keys)):
        point = dict(zip(keys, values))
        label = "_".join(_label(k, v) for k, v in point.items())
        data = apply_overrides(base, [(_grid_path(where, k), v) for k, v in point.items()])
        at = f"{where} (grid {label})" if label else where
        job_spec = specs.spec_from_data(data, at)
        try:
            plan = specs.run_settings(job_spec)
        except BioplasticError as exc:
            raise ConfigError(f"{at}: {exc}") from None
        extra = {"spec": str(where)}
        if job_spec["nwb"]:
            extra["nwb"] = job_spec["nwb"]
        for seed in seeds:
            name = f"{label}_seed{seed}" if label else f"seed{seed}"
            jobs.append({"name": name, "seed": int(seed), "grid": point,
                         "run_file": str(out / "runs" / f"{name}.h5"),
                         "model": copy.deepcopy(job_spec["model"]), "task": copy.deepcopy(job_spec["task"]),
                         "rule": plan["rule"].name if plan["local"] else "bptt",
                         "rule_table": copy.deepcopy(job_spec["rule"]),
                         "training": copy.deepcopy(plan["training"]), "extra": extra, "notes": plan["notes"]})
    repeated = _repeated(job["name"] for job in jobs)
    if repeated:  # e.g. a grid value listed twice: two jobs would write one run file
        raise ConfigError(f"{where} [grid]: job name(s) {', '.join(map(repr, repeated[:5]))} occur more than "
                          "once (each job writes runs/NAME.h5); give each grid key distinct values")
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


def _build(job: dict):
    """The job's task and network (cheap: no weights are drawn)."""
    from .networks import make_network
    from .preflight import check_model_settings
    from .tasks import get_task

    task_cfg = dict(job["task"])
    task = get_task(task_cfg.pop("name"), **task_cfg)
    model = dict(job["model"])
    kind = model.pop("kind")
    check_model_settings(kind, model, where=str(job.get("extra", {}).get("spec", "sweep spec")))
    return task, make_network(kind, task.n_inputs, task.n_outputs, **model)


def _job_rule(job: dict):
    """The job's rule object (local rules), built as ``bioplastic train`` builds it from a spec."""
    return specs.rule_from_spec({"rule": job.get("rule_table", {})}, job["rule"])


def _defaults(func) -> dict:
    return {k: p.default for k, p in inspect.signature(func).parameters.items()
            if k not in _NOT_TRAINING and k != "rule" and p.default is not inspect.Parameter.empty}


def resolved_config(job: dict) -> dict:
    """The config the training loop would record for ``job``, without training.

    Builds the task, network and rule (cheap: no weights are drawn) and
    resolves every training setting to the form the run file stores
    (defaults filled in, schedule, criterion, memory test and rule
    described), restricted to :data:`RESULT_KEYS`: what
    :func:`bioplastic.train` records for a BPTT job (``job["rule"]`` absent
    or ``"bptt"``), what :func:`~bioplastic.training.local.train_local`
    records for a local rule. A test checks it equals the config of run
    files written by the sweep, so a change to what the loops record shows
    up there.

    Raises
    ------
    ConfigError
        On an unknown or invalid setting, before any job runs.
    """
    from .preflight import check_recording, resolve_tcr_epoch
    from .training.checks import check_training
    from .recording import make_recording
    from .seeding import check_seed
    from .training import train
    from .training.criteria import make_criterion
    from .training.evaluation import memory_test_settings
    from .training.local import train_local
    from .training.optim import make_optimizer
    from .training.schedules import make_schedule

    task, net = _build(job)
    local = job.get("rule", "bptt") != "bptt"
    defaults = _defaults(train_local if local else train)
    given = dict(job.get("training", {}))
    check_keys("unknown [training] setting(s)", given, tuple(defaults))
    # one-line errors for every value the loop, or the builders below, would trip on
    t = check_training(net, task, given, seed=job["seed"], local=local)
    # The same resolution as train() / train_local() perform before they record their config.
    opt = make_optimizer(t["optimizer"], lr=t["lr"])
    memory = memory_test_settings(t["memory_test"])
    checkpoint_at = t["checkpoint_at"] or ()
    common = {"iterations": int(t["iterations"]), "batch_size": int(t["batch_size"]),
              "optimizer": type(opt).__name__.lower(), "lr": opt.lr, "clip": t["clip"],
              "lambda_tcr": make_schedule(t["lambda_tcr"]).describe()}
    ends = {"early_stop": bool(t["early_stop"]), "continue_after": int(t["continue_after"]),
            "criterion": make_criterion(t["criterion"], task).describe(),
            "eval_batch_size": int(t["eval_batch_size"]), "memory_test": memory if memory else False}
    recording = make_recording(t["record"])
    if recording is not None:
        check_recording(net, task, t["record"], t["iterations"])
        checkpoint_at = sorted(set(checkpoint_at) | set(recording.extra_checkpoints()))
    if local:
        rule = _job_rule(job)
        targets = specs.check_rule_on(rule, net, job.get("rule_table"), where=f"sweep job {job['name']!r}")
        schedule = make_schedule(t["lambda_tcr"])
        if rule.stp is None and not (schedule.kind == "constant" and schedule.value == 1.0):
            raise ConfigError(f"lambda_tcr scales the TCR-STP strength, but rule {rule.name!r} has no "
                              f"'tcr_stp' part; use e.g. '{rule.name}+tcr_stp'")
        every = t["diagnostics_every"]
        training = {"rule": rule.describe(), "local": bool(getattr(rule, "local", True)),
                    "modifies": list(targets), **common, **ends,
                    "diagnostics_every": 0 if every is None else int(every),
                    "diagnostic_splits": int(t["diagnostic_splits"])}
    else:
        training = {"rule": "bptt", **common, "tcr_on": t["tcr_on"],
                    "tcr_epoch": resolve_tcr_epoch(t["tcr_epoch"], task),
                    "tcr_relative": bool(t["tcr_relative"]), **ends}
    training.update({"checkpoint_every": t["checkpoint_every"],
                     "checkpoint_at": sorted(int(k) for k in checkpoint_at)})
    cfg = {
        "model": net.settings(),
        "task": {"name": task.name, **task.settings()},
        "training": training,
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


def job_configs(jobs: list[dict]) -> list[dict]:
    """Every job's :func:`resolved_config`: each job's settings and seed checked, nothing written.

    Raises
    ------
    ConfigError
        Naming the first job with a bad setting.
    """
    configs = []
    for job in jobs:
        try:
            configs.append(resolved_config(job))
        except (BioplasticError, TypeError, ValueError) as exc:  # no traceback for a bad setting
            raise ConfigError(f"sweep job {job['name']!r}: {exc}") from exc
    return configs


def plan_jobs(jobs: list[dict], configs=None) -> list[dict]:
    """Decide, before anything runs, what each job does with its existing run file.

    ``configs`` are the jobs' resolved configs (:func:`job_configs`; computed
    here when None).

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
    for job, new in zip(jobs, job_configs(jobs) if configs is None else configs):
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


def move_aside(run_file: Path, old_hash: str) -> Path:
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


def run_sweep_job(job: dict) -> dict:
    """Train one sweep job (BPTT or a local rule) on one thread, or reuse its finished run file.

    Workers each own one core; threads inside several workers would
    oversubscribe the machine. A run that diverges is summarised (status
    "diverged") rather than raised.

    Returns
    -------
    dict
        ``name``, ``seed``, ``status``, the outcome
        (:func:`~bioplastic.training.loop.run_outcome`), ``task_loss`` (the
        history's column), ``run_file`` and ``reused``.
    """
    from .machinery.threads import single_threaded

    with single_threaded():
        return _run_job(job)


def _run_job(job: dict) -> dict:
    from .errors import DivergenceError
    from .io.runfile import read_run
    from .training import train
    from .training.local import train_local
    from .training.loop import run_outcome

    run_file = Path(job["run_file"])
    if run_file.exists():
        data = read_run(run_file, checkpoints=False)
        if data.status != "running":
            return _result(job, data.history, data.status, run_outcome(data.attrs), reused=True)
    task, net = _build(job)
    extra = {"job": job["name"], **job.get("extra", {})}
    kwargs = dict(seed=job["seed"], run_file=run_file, progress=False, extra_config=extra, **job["training"])
    try:
        if job.get("rule", "bptt") == "bptt":
            r = train(net, task, **kwargs)
        else:
            r = train_local(net, task, _job_rule(job), **kwargs)
    except DivergenceError as exc:
        r = exc.result
    return _result(job, r.history, r.status, r.outcome(), reused=False)


def _result(job, history, status, outcome, reused) -> dict:
    return {"name": job["name"], "seed": job["seed"], "status": str(status), **outcome,
            "task_loss": np.asarray(history["task_loss"]), "run_file": job["run_file"], "reused": reused}


def run_sweep(spec_path, out, *, scheduler=None, workers=None, progress=True, connect_timeout="10s",
              refuse_stale=False, log=None, overrides=()) -> dict:
    """Run a sweep into the folder ``out`` (created), holding its lock.

    Parameters
    ----------
    spec_path : path of the sweep spec (TOML), or its name in ``protocols/sweeps/``
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
        a stale lock taken over, settings a job's rule ignores.
    overrides : iterable of str
        ``--set`` overrides of the sweep spec (:func:`load_sweep`).

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
    spec = load_sweep(spec_path, overrides)
    out = Path(out)
    # Every job's settings and seed first: a bad one leaves no output folder behind.
    jobs = make_jobs(spec, out)
    configs = job_configs(jobs)
    try:
        (out / "runs").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create output folder {str(out)!r}: {exc}") from exc
    say = log or (lambda message: None)
    with output_lock(out, log=log):
        for note in dict.fromkeys(n for job in jobs for n in job["notes"]):
            say(f"note: {note}")
        plans = plan_jobs(jobs, configs)
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
                target = move_aside(run_file, plan["old_hash"])
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

        results, _ = map_jobs(run_sweep_job, jobs, workers=workers, scheduler=scheduler,
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
