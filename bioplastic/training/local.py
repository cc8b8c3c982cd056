"""The local-rule training loop: any registered rule (or composition), same
bookkeeping as :func:`bioplastic.train`.

Per iteration k: sample a batch, build a :class:`~bioplastic.rules.Context`
(private noise, TCR-STP at strength ``eta_s * lambda_TCR(k) * controller``),
let the rule compute its update, record losses, accuracy and diagnostics,
stop at the task's criterion (confirmed on a held-out batch, as
:func:`bioplastic.train` does), else apply the update: ``grads`` through the
optimiser (SGD: ``theta <- theta - lr * grad``, the rules' own equations with
``eta = lr``), ``deltas`` added directly; constraints (frozen entries,
sparsity, Dale signs) are enforced after both.

Run files, :class:`~bioplastic.training.loop.TrainResult`, the history
columns and early stopping are those of :mod:`bioplastic.training.loop`; the
history adds :data:`LOCAL_COLUMNS`.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from .. import config as global_config
from ..errors import ConfigError, DivergenceError
from ..io.runfile import RunWriter, encode_state
from ..recording import make_recording
from ..recording import record as record_activity
from ..networks.base import Network
from ..preflight import check_train_settings
from ..validation import positive_int
from ..seeding import STREAMS, check_seed, make_streams
from ..tasks.base import Task
from .criteria import make_criterion
from .evaluation import memory_test_settings
from .monitor import HeldOutMonitor
from .loop import HISTORY_COLUMNS, TrainResult, _checkpoint_iterations, check_network_and_task
from .optim import Optimizer, clip_by_global_norm, global_norm, make_optimizer
from .progress import ProgressBar
from .schedules import Constant, make_schedule
from .writes import CheckpointWrites, flush_and_close

#: Extra history columns of local-rule training (see bioplastic.rules.diagnostics).
LOCAL_COLUMNS = ("alignment", "update_variance")


def train_local(network: Network, task: Task, rule, *, iterations=2000, batch_size=32, optimizer="sgd",
                lr=1e-2, clip=None, lambda_tcr=1.0, seed=None, params=None, checkpoint_every=None,
                checkpoint_at=(), early_stop=True, continue_after=0, criterion=None, eval_batch_size=128,
                memory_test=True, record=None, run_file=None, progress=None, extra_config=None,
                diagnostics_every=10, diagnostic_splits=4, _resume=None) -> TrainResult:
    """Train ``network`` on ``task`` with a local learning rule.

    Parameters
    ----------
    network : Network (LFRNN, rank-one or PLRNN for the built-in local rules)
    task : Task
    rule : str, Rule or description dict
        A registered name (``"eprop"``, ``"node_perturbation+tcr_stp"``...)
        or a rule object.
    iterations : int, maximum number of updates
    batch_size : int, trials per update
    optimizer : {"sgd", "adam"} or Optimizer; lr : float
        Applied to the rule's ``grads``; with SGD ``lr`` is the rules' eta.
    clip : float or None, clip the rule's ``grads`` to this global norm
    lambda_tcr : float, mapping or Schedule
        Multiplier of the TCR-STP strength ``eta_s`` over training (SPEC 4
        schedules; default constant 1). Only meaningful with a ``tcr_stp``
        part in the rule.
    seed : int or None (drawn and recorded)
    params : Params or None (initialised from the seed's "init" stream)
    checkpoint_every, checkpoint_at : iterations that keep a parameter copy
    early_stop, continue_after, criterion, eval_batch_size, memory_test
        The sustained success criterion on held-out evaluations and the
        memory test, as in :func:`bioplastic.train` (held-out trials run
        with the training dynamics: TCR-STP on when the rule has it).
    record : Recording, mapping or None
        Activity of a fixed batch of trials to record at checkpoints (see
        :mod:`bioplastic.recording`), run with the training dynamics of that
        moment (TCR-STP at lambda's current value); in ``result.recordings``
        and the run file, as :func:`bioplastic.train` records.
    run_file : path or None
        Written at each checkpoint and at the end, as by :func:`bioplastic.train`
        (whole the first time, then what is new in one atomic commit). Checkpoint
        writes after iteration 0 also store a resume state (random streams,
        optimiser, schedule, held-out monitor and the rule's own state), so
        :func:`bioplastic.training.resume` continues an interrupted run bit
        for bit.
    progress : bool or None
    extra_config : dict merged into the recorded configuration
    diagnostics_every : int or None
        Every this many iterations, record the cosine alignment of the rule's
        update with the BPTT gradient and the update variance (NaN in between;
        0 or None: never). They never change the training run.
    diagnostic_splits : int, sub-batches for the variance estimate
    _resume : dict or None
        Internal (:func:`bioplastic.training.resume`): the state read from a
        run file, with its ``checkpoints`` and ``history``; training
        continues from the top of iteration ``_resume["iteration"]``.

    Returns
    -------
    TrainResult (``config["training"]["rule"]`` is the rule's description)

    Raises
    ------
    DivergenceError
        On a non-finite loss, reward or update; the run file (if any) is
        written first with status "diverged" and keeps its checkpoints, and
        the partial result is attached to the exception.
    """
    from ..rules import get_rule
    from ..rules.context import Context
    from ..rules.diagnostics import bptt_alignment, descent_direction, update_variance

    check_network_and_task(network, task)
    # Before any work: settings, the seed and run file the file must hold, the memory estimate.
    check_train_settings(network, task, iterations=iterations, batch_size=batch_size,
                         eval_batch_size=eval_batch_size, continue_after=continue_after,
                         lr=None if isinstance(optimizer, Optimizer) else lr, clip=clip, early_stop=early_stop,
                         checkpoint_every=checkpoint_every, checkpoint_at=checkpoint_at, seed=seed,
                         run_file=run_file, record=record, memory_test=memory_test,
                         diagnostics_every=diagnostics_every,
                         diagnostic_splits=diagnostic_splits, local=True)
    rule = get_rule(rule)
    targets = rule.check(network)
    if not targets:
        raise ConfigError(f"rule {rule.name!r} modifies no parameter of this {network.kind!r} network "
                          "(tcr_stp alone only changes the dynamics: compose it with a task rule, "
                          "e.g. 'eprop+tcr_stp')")
    # (iterations, batch sizes and continue_after checked above; as ints)
    iterations, batch_size, eval_batch_size, continue_after = map(int, (iterations, batch_size, eval_batch_size,
                                                                       continue_after))
    diagnostics_every = 0 if diagnostics_every is None else positive_int(
        "diagnostics_every", diagnostics_every, allow_zero=True)
    diagnostic_splits = positive_int("diagnostic_splits", diagnostic_splits)
    success = make_criterion(criterion, task)
    memory = memory_test_settings(memory_test)
    seed = check_seed(seed)
    streams = make_streams(seed)
    monitor = HeldOutMonitor(network, task, success, iterations=iterations, eval_batch_size=eval_batch_size,
                             memory=memory, early_stop=early_stop, continue_after=continue_after,
                             eval_rng=streams["eval"], memory_rng=streams["memory"])
    diag_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(len(STREAMS),)))
    schedule = make_schedule(lambda_tcr)
    if rule.stp is None and not (isinstance(schedule, Constant) and schedule.value == 1.0):
        raise ConfigError(f"lambda_tcr scales the TCR-STP strength, but rule {rule.name!r} has no 'tcr_stp' "
                          f"part; use e.g. '{rule.name}+tcr_stp'")
    opt = optimizer if isinstance(optimizer, Optimizer) else make_optimizer(optimizer, lr=lr)
    params = network.init_params(streams["init"]) if params is None else network.check_params(params)
    recording = make_recording(record)
    if recording is not None:  # as train() does: its own stream, so training draws the same numbers
        checkpoint_at = sorted(set(checkpoint_at or ()) | set(recording.extra_checkpoints()))
        rec_batch = task.sample(recording.n_trials, streams["record"])
        rec_noise = network.draw_noise(streams["record"], rec_batch.T, recording.n_trials) if recording.noise else None
    ckpt_ks = _checkpoint_iterations(iterations, checkpoint_every, checkpoint_at)
    run_file = None if run_file is None else Path(run_file)
    cfg = {
        "model": network.settings(),
        "task": {"name": task.name, **task.settings()},
        "training": {"rule": rule.describe(), "local": bool(getattr(rule, "local", True)),
                     "modifies": list(targets), "iterations": iterations, "batch_size": batch_size,
                     "optimizer": type(opt).__name__.lower(), "lr": opt.lr, "clip": clip,
                     "lambda_tcr": schedule.describe(), "early_stop": bool(early_stop),
                     "continue_after": continue_after, "criterion": success.describe(),
                     "eval_batch_size": eval_batch_size, "memory_test": memory if memory else False,
                     "diagnostics_every": diagnostics_every,
                     "diagnostic_splits": diagnostic_splits, "checkpoint_every": checkpoint_every,
                     "checkpoint_at": sorted(int(k) for k in checkpoint_at or ())},
        "seed": seed,
        **({"record": recording.describe()} if recording is not None else {}),
        **(extra_config or {}),
    }
    columns = HISTORY_COLUMNS + LOCAL_COLUMNS
    history = {c: [] for c in columns}
    result = TrainResult(network, task, params, history, {}, None, "running", seed, cfg, run_file)
    writer = None if run_file is None else RunWriter(run_file)
    accuracy, start = None, 0
    if recording is not None:
        result.recordings = {"trials": rec_batch, "at": dict((_resume or {}).get("recordings", {}))}
    if _resume is None:
        state = rule.init_state(network, params, streams["rule"])
    else:
        start, accuracy = int(_resume["iteration"]), _resume["accuracy"]
        result.checkpoints = dict(_resume["checkpoints"])
        # A copy: the updates below must not reach the stored checkpoint.
        params = result.params = network.check_params(result.checkpoints[start]).copy()
        n_rows = len(_resume["history"]["iteration"])
        history = {c: list(_resume["history"].get(c, np.full(n_rows, np.nan))[:start]) for c in columns}
        for name, st in _resume["streams"].items():
            streams[name].bit_generator.state = st
        diag_rng.bit_generator.state = _resume["diag_rng"]
        schedule.load_state(_resume["schedule"])
        opt.load_state_dict(_resume["optimizer"])
        monitor.load_state(_resume["success"])
        # Not init_state: it would draw from the rule stream (restored above)
        # and reset what the rule learnt (baselines, the controller...).
        state = _resume["rule_state"]
    warned = []

    def resume_state(k):
        # Everything needed to continue bit for bit from the top of iteration k,
        # or None when the rule keeps a state the run file cannot hold (checked
        # at every checkpoint: a plugin's state may change type as it learns).
        try:
            encode_state(state, {})
        except TypeError as exc:
            if not warned:
                warned.append(k)
                warnings.warn(f"rule {rule.name!r} keeps a state the run file cannot store ({exc}); "
                              "this run will not be resumable", RuntimeWarning, stacklevel=3)
            return None
        return {"iteration": k, "accuracy": accuracy,
                "streams": {n: g.bit_generator.state for n, g in streams.items()},
                "diag_rng": diag_rng.bit_generator.state,
                "schedule": schedule.state(), "optimizer": opt.state_dict(), "success": monitor.state(),
                "rule_state": state}

    def finish(status):
        writes.pending = None  # this write carries every checkpoint
        result.status = status
        result.converged_at = monitor.converged_at
        result.extra["confirmed_at"] = monitor.confirmed_at
        result.history = {c: np.asarray(v, dtype=float) for c, v in history.items()}
        if writer is not None:
            result.save(run_file, writer=writer)
        return result

    def snapshot(k):
        # What the running file holds at checkpoint k (written now, or later if writes are due less often).
        return {"resume": resume_state(k), "rows": len(history[columns[0]]), "converged_at": monitor.converged_at,
                "confirmed_at": monitor.confirmed_at}

    def write_running(snap):
        result.status = "running"
        result.converged_at = snap["converged_at"]
        result.extra["confirmed_at"] = snap["confirmed_at"]
        result.history = {c: np.asarray(v[:snap["rows"]], dtype=float) for c, v in history.items()}
        result.save(run_file, resume=snap["resume"], writer=writer)

    writes = CheckpointWrites(write_running)

    def diverge(k, message, cause=None):
        finish("diverged")
        where = f"; run file with checkpoints so far: {run_file}" if run_file else ""
        raise DivergenceError(f"{message}{where}", iteration=k, result=result) from cause

    def stp_at(lam):
        return None if rule.stp is None else (rule.stp[0] * lam, rule.stp[1])

    def dynamics(stp):
        # Held-out trials and the memory test run with the training dynamics.
        return None if stp is None else _stp_simulator(stp)

    def record_at(k, is_final):
        # The recording trials, run with the training dynamics of now (TCR-STP at lambda's current value).
        if recording is not None and recording.wants(k, is_final=is_final):
            stp = stp_at(lam)
            simulate = None if stp is None else _stp_simulator(stp, trajectory=True)
            result.recordings["at"][k] = record_activity(network, params, rec_batch, recording.what, rec_noise,
                                                         simulate=simulate)

    show = global_config.get("progress") if progress is None else progress
    lam = 0.0
    # ETA without the first iteration (it compiles the kernels); says so on stderr when it does
    bar = ProgressBar(total=iterations, initial=start, disable=not show, desc=f"{rule.name}/{network.kind}/{task.name}",
                      leave=False)
    try:
        for k in range(start, iterations + 1):
            # A resumed run's first checkpoint is the one it resumed from (already stored).
            if k in ckpt_ks and not (_resume is not None and k == start):
                result.checkpoints[k] = params.copy()
                record_at(k, is_final=False)
                if run_file is not None and k > 0:
                    writes.checkpoint(lambda: snapshot(k))
            batch = task.sample(batch_size, streams["task"])
            lam = float(schedule(k, accuracy)) * float(rule.tcr_scale(state)) if rule.stp is not None else 0.0
            stp = stp_at(lam)
            noise = network.draw_noise(streams["noise"], batch.T, batch_size)
            ctx = Context(network, params, batch, noise=noise, stp=stp, rng=streams["rule"], iteration=k)
            diag_state = _copy_state(state) if diagnostics_every and k % diagnostics_every == 0 else None
            try:
                upd = rule.update(ctx.view(rule, targets), state)
            except DivergenceError as exc:
                diverge(k, f"training diverged at iteration {k}: {exc}", exc)
            with np.errstate(over="ignore", invalid="ignore"):
                outputs = ctx.outputs()
                loss = ctx.task_loss()
                activity = ctx.activity()
            accuracy = task.accuracy(outputs, batch) if np.all(np.isfinite(outputs)) else 0.0
            direction = descent_direction(upd)
            with np.errstate(over="ignore", invalid="ignore"):
                unorm = global_norm(direction)
            align = var = float("nan")
            if diag_state is not None and np.isfinite(unorm) and np.isfinite(loss):
                align = bptt_alignment(network, params, batch, noise, direction)
                var = update_variance(rule, diag_state, targets, network, params, batch, noise, stp, diag_rng,
                                      diagnostic_splits)
            eval_acc, eval_loss = monitor.evaluate(k, params, dynamics(stp), ready=np.isfinite(loss))
            row = (k, loss, loss, activity, accuracy, unorm, lam, eval_acc, eval_loss, align, var)
            for col, v in zip(columns, row):
                history[col].append(v)
            if not (np.isfinite(loss) and np.isfinite(unorm)):
                diverge(k, f"training diverged at iteration {k}: loss={loss}, update norm={unorm} "
                           "(lower lr, g or the TCR-STP strength, or clip)")
            if monitor.done(k):
                break
            _apply(params, upd, opt, clip)
            bar.update(1)
            if show and k % 20 == 0:
                bar.set_postfix(loss=f"{loss:.3g}", acc=f"{accuracy:.2f}", refresh=False)
    except BaseException:
        if writer is not None:
            flush_and_close(writes, writer)  # an interrupted run: its file holds every checkpoint taken
        raise
    finally:
        bar.close()
    result.checkpoints[k] = params.copy()
    record_at(k, is_final=True)
    final = monitor.finish(params, dynamics(stp_at(lam)))
    result.final_accuracy = final.pop("final_accuracy")
    result.extra.update(final)
    result.extra["state"] = {"tcr_scale": float(rule.tcr_scale(state))}
    return finish("converged" if monitor.converged_at is not None else "max_iterations")


def local_kwargs(kwargs: dict) -> dict:
    """Training settings (e.g. a model spec's ``[training]``) checked for :func:`train_local`.

    Raises ConfigError naming settings that only apply to BPTT (``tcr_on``...).
    """
    import inspect

    accepted = set(inspect.signature(train_local).parameters) - {"network", "task", "rule"}
    bad = sorted(set(kwargs) - accepted)
    if bad:
        raise ConfigError(f"training setting(s) {', '.join(map(repr, bad))} apply to BPTT only, not to "
                          f"local rules; local rules accept {', '.join(sorted(accepted))}")
    return dict(kwargs)


def _copy_state(state):
    import copy

    return copy.deepcopy(state)


def _apply(params, upd, opt, clip) -> None:
    """grads through the optimiser (only those names), then deltas; constraints kept."""
    if upd.grads:
        grads, _ = clip_by_global_norm(upd.grads, clip)
        saved = params.trainable
        params.trainable = tuple(n for n in saved if n in grads)
        try:
            opt.step(params, grads)
        finally:
            params.trainable = saved
    if upd.deltas:
        reference = params.copy()
        for name, d in upd.deltas.items():
            c = params.constraints.get(name)
            if c is not None:
                d = c.mask_gradient(d)
            params[name] = (params[name] + d).astype(params[name].dtype, copy=False)
        params.enforce(reference)


def _stp_simulator(stp, trajectory=False):
    """``simulate(network, params, inputs, noise) -> outputs`` (or the whole Trajectory, with
    ``trajectory``) with TCR-STP at ``stp = (eta_s, tau_s)``."""
    from ..rules.context import stp_kernel_args
    from ..rules.models import simulate

    def run(network, params, inputs, noise):
        traj = simulate(network, params, inputs, noise, stp=stp_kernel_args(stp, network.dt))
        return traj if trajectory else traj.outputs

    return run
