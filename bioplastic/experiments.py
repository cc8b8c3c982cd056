"""Picklable training jobs for protocols and sweeps.

A job is a plain dict (JSON-friendly, so it can be recorded and sent to
worker processes)::

    {"name": "g3.0_tcr_seed0", "model": {"kind": "lfrnn", "n_units": 64, "g": 3.0},
     "task": {"name": "flipflop"}, "training": {"iterations": 2000, "lambda_tcr": 30.0},
     "seed": 0, "run_file": "out/runs/g3.0_tcr_seed0.h5"}

:func:`run_train_job` trains it, writes the run file and returns a small
summary (iterations to criterion, status, loss curve) for the protocol.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def run_train_job(job: dict) -> dict:
    """Train one job; returns ``{"name", "seed", "status", <run_outcome keys>, "iterations", "task_loss", ...}``
    (see :func:`bioplastic.training.loop.run_outcome`).

    Skips training when the job's run file already exists and is complete
    (status other than "running"), so an interrupted protocol resumes.
    """
    from .errors import DivergenceError
    from .networks import make_network
    from .tasks import get_task
    from .training import train

    from .training.loop import run_outcome

    run_file = Path(job["run_file"]) if job.get("run_file") else None
    data = existing_run(job)
    if data is not None and data.status != "running":
        return {**_summary(job, data.history, data.status, run_outcome(data.attrs)), "reused": True}
    task_cfg = dict(job["task"])
    task = get_task(task_cfg.pop("name"), **task_cfg)
    model = dict(job["model"])
    net = make_network(model.pop("kind"), task.n_inputs, task.n_outputs, **model)
    try:
        r = train(net, task, seed=job["seed"], run_file=run_file, progress=False,
                  extra_config={"job": job.get("name", "")}, **job.get("training", {}))
    except DivergenceError as exc:
        r = exc.result
    return {**_summary(job, r.history, r.status, r.outcome()), "reused": False}


def existing_run(job: dict):
    """The job's run file (``job["run_file"]``, read without checkpoints) when it was made
    with the job's settings; None when there is none.

    A protocol re-run into the same output folder reuses its finished runs
    and resumes its interrupted ones, but only those whose resolved config
    (:func:`bioplastic.sweep.resolved_config`: every setting that decides the
    result, defaults filled in) hashes as the job's now. A file made with
    other settings (``--set``, an edited protocol) is moved aside as
    ``NAME.stale-<its hash>.h5``, never deleted, and the job trains afresh;
    a line on stderr says which settings changed.
    """
    import sys

    from .io.runfile import read_run
    from .sweep import config_changes, config_hash, move_aside, resolved_config

    run_file = Path(job["run_file"]) if job.get("run_file") else None
    if run_file is None or not run_file.exists():
        return None
    data = read_run(run_file, checkpoints=False)
    new = resolved_config(_as_sweep_job(job))
    old_hash = config_hash(data.config)
    if old_hash == config_hash(new):
        return data
    changes = config_changes(data.config, new)
    moved = move_aside(run_file, old_hash)
    print(f"{run_file}: made with other settings ({', '.join(changes[:3])}"
          f"{f', +{len(changes) - 3} more' if len(changes) > 3 else ''}); moved to {moved.name}, training again",
          file=sys.stderr)
    return None


def _as_sweep_job(job: dict) -> dict:
    """A protocol job in the form :func:`bioplastic.sweep.resolved_config` reads (the rule's
    settings as a spec's ``[rule]`` table: per part for a composition, else the rule's own)."""
    rule = job.get("rule", "bptt")
    settings = dict(job.get("rule_settings") or {})
    table = settings if "+" in rule else ({rule: settings} if settings else {})
    return {"name": job.get("name", ""), "seed": job["seed"], "model": job["model"], "task": job["task"],
            "training": job.get("training", {}), "rule": rule, "rule_table": table}


def _summary(job, history, status, outcome):
    return {
        "name": job.get("name", ""),
        "seed": job["seed"],
        "status": str(status),
        **outcome,
        "iterations": np.asarray(history["iteration"]),
        "task_loss": np.asarray(history["task_loss"]),
        "tcr_loss": np.asarray(history["tcr_loss"]),
        "run_file": job.get("run_file"),
    }


def run_train_job_single_thread(job: dict) -> dict:
    """:func:`run_train_job` with BLAS and the kernels on one thread.

    Workers each own one core; threads inside several workers would
    oversubscribe the machine and slow the many small matmuls of an Euler loop.
    """
    from .machinery.threads import single_threaded

    with single_threaded():
        return run_train_job(job)


def run_search_job(job: dict) -> dict:
    """Train one job and measure its search phase; a picklable protocol job.

    After :func:`run_train_job` (which reuses a finished run file), the task
    loss curve goes through the abrupt-learning detector
    (:func:`bioplastic.analysis.abrupt.detect_abrupt_learning`; a plateau
    followed by a drop is the search phase) and, when ``job["attractors"]``
    is true, the final network's stable fixed points are counted against the
    task's need (:func:`bioplastic.analysis.attractors.memory_attractors`).

    Returns
    -------
    The :func:`run_train_job` summary plus ``plateau`` (the detector's
    ``as_dict()`` without the fit) and ``attractors`` (dict or None).
    """
    from .analysis.abrupt import detect_abrupt_learning

    summary = run_train_job(job)
    its, loss = summary["iterations"], summary["task_loss"]
    ok = np.isfinite(loss) & (loss > 0)
    if ok.sum() >= 20 and summary["status"] != "diverged":
        ab = detect_abrupt_learning(its[ok], loss[ok]).as_dict()
        ab.pop("knots", None), ab.pop("slopes", None)
    else:
        ab = {"detected": False, "reason": f"run {summary['status']} with {int(ok.sum())} finite loss values"}
    summary["plateau"] = ab
    summary["attractors"] = _final_attractors(job) if job.get("attractors") and job.get("run_file") else None
    return summary


def _final_attractors(job: dict) -> dict | None:
    from .analysis.attractors import memory_attractors
    from .analysis.run_analysis import network_from_config, task_from_config
    from .io.runfile import read_run

    data = read_run(job["run_file"], checkpoints=False)
    if data.status == "diverged":
        return None
    net, task = network_from_config(data.config), task_from_config(data.config)
    params = net.check_params(data.params)
    return memory_attractors(net, params, task, seed=int(job["seed"]))


def run_analysis_job(job: dict) -> dict:
    """Train (or reuse) a run, analyse its geometry at every checkpoint, draw its figures.

    ``job`` is a :func:`run_train_job` job plus ``"analysis"`` (keyword
    arguments of :func:`bioplastic.analysis.analyze_run`) and ``"figures"``
    (a folder, or None). The analysis is stored next to the run file
    (``RUN.analysis.h5``) and reused while it is newer than the run file.

    Returns
    -------
    dict: one seed's row (:func:`bioplastic.analysis.summary.seed_row`) plus the
    run's outcome (``converged_at``, ``memory_generalization``...), the analysis
    summary (``"analysis"``: checkpoints, stable counts, GR events, abrupt) and
    the loss curve (``"curve"``: iterations, loss).
    """
    from .analysis import analysis_path, analyze_run, make_figures, read_analysis, write_analysis
    from .analysis.summary import seed_row

    train_summary = run_train_job(job)
    run_file = Path(job["run_file"])
    target = analysis_path(run_file)
    if target.exists() and target.stat().st_mtime >= run_file.stat().st_mtime:
        analysis = read_analysis(target)
    else:
        analysis = analyze_run(run_file, skip_nonfinite=True, **job.get("analysis", {}))
        write_analysis(analysis, target)
    if job.get("figures"):
        Path(job["figures"]).mkdir(parents=True, exist_ok=True)
        make_figures(analysis, job["figures"], prefix=f"{job['name']}_")
    summary = analysis.summary()
    row = seed_row(summary)
    row.update({k: train_summary[k] for k in ("status", "converged_at", "confirmed_at", "final_accuracy",
                                                "memory_generalization", "reused")})
    row.update({"slow_final_median_timescale": analysis.slow["final_median_timescale"],
                "slow_final_ramping_fraction": analysis.slow["final_ramping_fraction"],
                "slow_epoch": analysis.slow["epoch"], "n_required": summary["n_required"],
                "analysis": {k: summary[k] for k in ("checkpoints", "n_stable", "gr_events", "abrupt")},
                "curve": (np.asarray(analysis.loss["iterations"]), np.asarray(analysis.loss["loss"]))})
    return row


def slow_dynamics_of(network, params, task, *, n_trials=64, seed=0, memory_factor=10.0) -> dict:
    """Slow-dynamics summary of one network in its task's memory epoch (noise off).

    The trials are those of the memory test (``task.memory_variant(memory_factor)``:
    silences ``memory_factor`` times longer than in training), so that
    timescales longer than the training delays can be seen at all (a 20-step
    delay cannot show a 100-step timescale). Per unit: the autocorrelation
    timescale and whether it ramps (:mod:`bioplastic.analysis.slow_dynamics`).
    Units slower than the epoch (timescale inf: censored) count at the
    epoch's longest lag in the median, which is then a lower bound of the
    true median.

    Returns
    -------
    dict with ``median_timescale`` (time units of ``task.dt``),
    ``fraction_censored``, ``ramping_fraction``, ``epoch``, ``n_units``.
    """
    from .analysis.slow_dynamics import slow_dynamics_summary

    if memory_factor and memory_factor > 1:
        task = task.memory_variant(memory_factor)
    batch = task.sample(int(n_trials), np.random.default_rng(seed))
    epoch = task.memory_epoch or "delay"
    mask = batch.epochs[epoch]
    with np.errstate(over="ignore", invalid="ignore"):
        rates = network.forward(params, batch.inputs).rates
    if not np.all(np.isfinite(rates)):
        return {"median_timescale": None, "fraction_censored": None, "ramping_fraction": None, "epoch": epoch,
                "n_units": int(rates.shape[-1])}
    s = slow_dynamics_summary(rates, mask, dt=task.dt)
    silent = not np.isfinite(s["median_capped_timescale"])  # no unit varies in the epoch
    return {"median_timescale": None if silent else s["median_capped_timescale"],
            "fraction_censored": None if silent else s["fraction_censored"],
            "ramping_fraction": s["ramping_fraction"], "epoch": epoch, "epoch_length": s["epoch_length"],
            "memory_factor": memory_factor, "n_units": s["n_units"]}


def run_slow_dynamics_job(job: dict) -> dict:
    """Train (or reuse) a run, then measure slow dynamics of its initial and final networks.

    Returns the :func:`run_train_job` summary plus ``slow_initial`` and
    ``slow_final`` (:func:`slow_dynamics_of`, on the same seeded trials).
    """
    from .analysis.run_analysis import network_from_config, task_from_config
    from .io.runfile import read_run

    summary = run_train_job(job)
    data = read_run(job["run_file"])
    net, task = network_from_config(data.config), task_from_config(data.config)
    first = min(data.checkpoints)
    summary["slow_initial"] = slow_dynamics_of(net, net.check_params(data.checkpoints[first]), task)
    summary["slow_final"] = (slow_dynamics_of(net, net.check_params(data.params), task)
                             if data.status != "diverged" else None)
    return summary


def run_local_job(job: dict) -> dict:
    """Train one local-rule job and return a summary (for protocols and sweeps).

    A job is a JSON-friendly dict::

        {"name": "flipflop_eprop+tcr_stp_seed0", "seed": 0,
         "model": {"kind": "lfrnn", "n_units": 32, "g": 3.0},
         "task": {"name": "flipflop", "n_steps": 40},
         "rule": "eprop+tcr_stp", "rule_settings": {"tcr_stp": {"eta_s": 0.02}},
         "training": {"iterations": 400, "optimizer": "adam", "lr": 3e-3},
         "run_file": "out/runs/flipflop_eprop+tcr_stp_seed0.h5"}

    A run that diverges is summarised (status "diverged", ``diverged_at``)
    rather than raised. When ``run_file`` exists with a final status the job
    is not trained again: its summary comes from the file (``reused``
    True); a run file left "running" by an interrupted protocol is resumed
    from its last checkpoint (protocols resume).

    Returns
    -------
    dict with ``name``, ``seed``, ``status``, the outcome
    (:func:`~bioplastic.training.loop.run_outcome`: ``converged_at``,
    ``final_accuracy``, ``memory_generalization``...), ``diverged_at``,
    ``W_norm`` and the history arrays
    (``iterations``, ``task_loss``, ``tcr_loss``, ``accuracy``,
    ``alignment``, ``update_variance``, ``grad_norm``, ``lambda_tcr``).
    """
    from .errors import DivergenceError
    from .networks import make_network
    from .rules import get_rule
    from .tasks import get_task
    from .training.local import train_local
    from .training.loop import run_outcome

    from .training.resume import resume

    run_file = Path(job["run_file"]) if job.get("run_file") else None
    data = existing_run(job)
    if data is not None:
        if data.status != "running":
            return {**_job_summary(job, data.history, data.status, run_outcome(data.attrs), data.params),
                    "reused": True}
        if data.resume is not None:  # interrupted after a checkpoint: continue it, bit for bit
            try:
                r = resume(run_file, progress=False)
            except DivergenceError as exc:
                r = exc.result
            return {**_job_summary(job, r.history, r.status, r.outcome(), r.params), "reused": False}
    task_cfg = dict(job["task"])
    task = get_task(task_cfg.pop("name"), **task_cfg)
    model = dict(job["model"])
    net = make_network(model.pop("kind"), task.n_inputs, task.n_outputs, **model)
    rule = get_rule(job["rule"], **job.get("rule_settings", {}))
    try:
        r = train_local(net, task, rule, seed=job["seed"], run_file=run_file, progress=False,
                        extra_config={"job": job.get("name", "")}, **job.get("training", {}))
    except DivergenceError as exc:
        r = exc.result
    return {**_job_summary(job, r.history, r.status, r.outcome(), r.params), "reused": False}


def _job_summary(job, history, status, outcome, params):
    its = np.asarray(history["iteration"])
    W = params.get("W") if hasattr(params, "get") else None
    return {
        "name": job.get("name", ""), "seed": job["seed"], "status": str(status), **outcome,
        "diverged_at": int(its[-1]) if str(status) == "diverged" and its.size else None,
        "W_norm": None if W is None else _norm(W),
        "iterations": its, **{c: np.asarray(history[c], dtype=float) for c in
                              ("task_loss", "tcr_loss", "accuracy", "alignment", "update_variance",
                               "grad_norm", "lambda_tcr")},
        "run_file": job.get("run_file"),
    }


def _norm(a) -> float:
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.linalg.norm(a))


def run_local_analysis_job(job: dict) -> dict:
    """Train (or reuse) a local-rule run, then classify how it ended.

    After :func:`run_local_job`, the final network
    of a run that did not diverge goes through
    :func:`bioplastic.analysis.collapse.collapse_report` (memories held,
    stable fixed points, distance to the trivial attractor), and the run is
    classified solved / diverged / collapsed / unsolved
    (:func:`~bioplastic.analysis.collapse.classify_outcome`). With
    ``job["fast_weights"] = True`` the TCR-STP fast weights are measured at
    every checkpoint (:func:`bioplastic.analysis.fast_weights.fast_weight_statistics`).
    The loss curve (and the abrupt-learning detector's reading of it) is kept;
    the other history arrays are reduced to their means.

    Returns
    -------
    The job summary with ``collapse`` (dict or None), ``outcome`` (str),
    ``plateau`` (detector ``as_dict()`` without the fit), ``mean_alignment``,
    ``curve`` ((iterations, task loss)) and, on request, ``fast_weights``
    (list of ``{"iteration", **statistics}``).
    """
    from .analysis.abrupt import detect_abrupt_learning
    from .analysis.collapse import classify_outcome, collapse_report
    from .analysis.run_analysis import network_from_config, task_from_config
    from .io.runfile import read_run
    s = run_local_job(job)
    diverged = s["status"] == "diverged"
    data = read_run(job["run_file"], checkpoints=bool(job.get("fast_weights")))
    net, task = network_from_config(data.config), task_from_config(data.config)
    report = None if diverged else collapse_report(net, net.check_params(data.params), task, seed=int(job["seed"]))
    its, loss = np.asarray(s["iterations"]), np.asarray(s["task_loss"])
    ok = np.isfinite(loss) & (loss > 0)
    if ok.sum() >= 20 and not diverged:
        plateau = detect_abrupt_learning(its[ok], loss[ok]).as_dict()
        plateau.pop("knots", None), plateau.pop("slopes", None)
    else:
        plateau = {"detected": False, "reason": f"run {s['status']} with {int(ok.sum())} finite loss values"}
    align = s["alignment"][np.isfinite(s["alignment"])]
    out = {k: v for k, v in s.items() if not isinstance(v, np.ndarray)}
    out.update({"collapse": report, "outcome": classify_outcome(s["converged_at"] is not None, diverged, report),
                "plateau": plateau, "mean_alignment": float(align.mean()) if align.size else None,
                "curve": (its, loss), "lambda_tcr": np.asarray(s["lambda_tcr"])})
    if job.get("fast_weights"):
        from .analysis.fast_weights import fast_weight_statistics

        stp = _stp_setting(data.config)
        out["fast_weights"] = [
            {"iteration": int(k), **fast_weight_statistics(net, net.check_params(p), task, stp, seed=int(job["seed"]))}
            for k, p in sorted(data.checkpoints.items())]
    return out


def _stp_setting(config: dict) -> tuple[float, float]:
    """(eta_s, tau_s) of a local run's TCR-STP part, from its recorded rule description."""
    from .rules import rule_from_description

    rule = rule_from_description(config["training"]["rule"])
    if rule.stp is None:
        from .errors import ConfigError

        raise ConfigError(f"rule {rule.name!r} has no TCR-STP part: no fast weights to measure")
    return rule.stp
