"""The training loop: BPTT with a lambda_TCR schedule, history, checkpoints.

``train`` runs at most ``iterations`` parameter updates. Before update k it
evaluates the loss on a fresh training batch; every ``eval_every``
iterations it also scores the parameters on held-out trials. Success is
*sustained*: the criterion must hold on K held-out evaluations in a row
(:mod:`bioplastic.training.criteria`). ``converged_at`` is the iteration of
the first of them ("iterations to criterion"), recorded whether or not
training stops there; with early stopping the run ends at the K-th (or
``continue_after`` iterations later). Every run ends with the memory test
(:mod:`bioplastic.training.evaluation`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import config as global_config
from ..errors import ConfigError, DivergenceError
from ..io.runfile import RunWriter, write_run
from ..networks.base import Network, Params
from ..preflight import check_train_settings, resolve_tcr_epoch
from .writes import CheckpointWrites, flush_and_close
from ..recording import make_recording
from ..recording import record as record_activity
from ..seeding import check_seed, make_streams
from ..tasks.base import Task
from .criteria import make_criterion
from .evaluation import memory_test_settings
from .monitor import HeldOutMonitor
from .objective import loss_and_grads
from .optim import Optimizer, clip_by_global_norm, make_optimizer
from .progress import ProgressBar
from .schedules import make_schedule

#: One value per iteration; ``accuracy`` is on the training batch, ``eval_*`` on
#: held-out trials at evaluations (NaN between them).
HISTORY_COLUMNS = ("iteration", "loss", "task_loss", "tcr_loss", "accuracy", "grad_norm", "lambda_tcr",
                   "eval_accuracy", "eval_loss")


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes
    ----------
    network, task : the objects trained on
    params : final Params
    history : dict of 1-D arrays, one entry per evaluated iteration
        (``HISTORY_COLUMNS``)
    checkpoints : dict iteration -> Params (parameters *before* that update)
    converged_at : int or None, iterations to criterion
    status : "converged", "max_iterations" or "diverged"
    seed : int
    config : the resolved configuration (JSON-serialisable)
    run_file : Path or None
    """

    network: Network
    task: Task
    params: Params
    history: dict
    checkpoints: dict
    converged_at: int | None
    status: str
    seed: int
    config: dict
    run_file: Path | None = None
    final_accuracy: float = float("nan")
    recordings: dict | None = None
    extra: dict = field(default_factory=dict)

    @property
    def memory_generalization(self) -> float | None:
        """Accuracy of the final network on the memory test (None without one)."""
        test = self.extra.get("memory_test")
        return None if not test else test.get("accuracy")

    def file_attrs(self) -> dict:
        """The run file's outcome attributes (see :func:`run_outcome`)."""
        attrs = {"converged_at": self.converged_at, "final_accuracy": self.final_accuracy}
        for key in ("confirmed_at", "lambda_scale", "final_loss"):
            if key in self.extra:
                attrs[key] = self.extra[key]
        for key in ("memory_test", "memory_test_at_criterion"):
            if self.extra.get(key):
                attrs[key] = json.dumps(self.extra[key])
        if self.memory_generalization is not None:
            attrs["memory_generalization"] = self.memory_generalization
        return attrs

    def outcome(self) -> dict:
        """What a protocol reports of this run (see :func:`run_outcome`)."""
        return run_outcome({k: (-1 if v is None else v) for k, v in self.file_attrs().items()})

    def save(self, path, resume=None, writer=None) -> Path:
        """Write the run file and return its path: whole and atomically, or through
        ``writer`` (a :class:`~bioplastic.io.runfile.RunWriter` on ``path``), which
        adds only what is new since its last write, in one atomic commit."""
        fields = dict(config=self.config, seed=self.seed, status=self.status, params=self.params,
                      history=self.history, checkpoints=self.checkpoints, attrs=self.file_attrs(), resume=resume,
                      recordings=self.recordings)
        self.run_file = writer.write(**fields) if writer is not None else write_run(path, **fields)
        return self.run_file

    def summary(self) -> str:
        n = len(self.history["iteration"])
        if self.converged_at is not None:
            head = (f"solved: criterion sustained from iteration {self.converged_at} "
                    f"(confirmed at {self.extra.get('confirmed_at')})")
            if n - 1 > (self.extra.get("confirmed_at") or 0):
                head += f", trained to iteration {n - 1}"
        else:
            head = f"{self.status} after {n} iterations"
        mem = self.memory_generalization
        mem_txt = "" if mem is None else (
            f", memory test (silences x{self.extra['memory_test']['factor']:g}) {mem:.3f} "
            f"({'passes' if self.extra['memory_test'].get('passes') else 'fails: memories fade'})")
        return (f"{self.network.kind} on {self.task.name} (seed {self.seed}): {head}; "
                f"final held-out accuracy {self.final_accuracy:.3f}{mem_txt}, final loss {self.history['loss'][-1]:.4g}")


def run_outcome(attrs: dict) -> dict:
    """A run's outcome from its run-file attributes (``RunData.attrs``).

    Returns
    -------
    dict with ``converged_at`` and ``confirmed_at`` (iterations or None),
    ``final_accuracy`` and ``final_loss`` (held-out, end of run),
    ``memory_generalization`` (memory-test accuracy at the end, None
    without a test), ``memory_at_criterion`` (memory-test accuracy when the
    criterion was confirmed), ``memory_factor`` and ``lambda_scale``.
    """
    def iteration(key):
        v = attrs.get(key)
        return None if v is None or int(v) < 0 else int(v)

    def number(key):
        v = attrs.get(key)
        return None if v is None else float(v)

    def test(key):
        v = attrs.get(key)
        return json.loads(v) if isinstance(v, (str, bytes)) else None

    end, at_crit = test("memory_test"), test("memory_test_at_criterion")
    return {"converged_at": iteration("converged_at"), "confirmed_at": iteration("confirmed_at"),
            "final_accuracy": number("final_accuracy"), "final_loss": number("final_loss"),
            "memory_generalization": None if not end else end.get("accuracy"),
            "memory_at_criterion": None if not at_crit else at_crit.get("accuracy"),
            "memory_factor": None if not end else end.get("factor"),
            "lambda_scale": number("lambda_scale")}


def _checkpoint_iterations(iterations, checkpoint_every, checkpoint_at):
    ks = {0}
    if checkpoint_every:
        if int(checkpoint_every) < 1:
            raise ConfigError(f"checkpoint_every must be >= 1, got {checkpoint_every!r}")
        ks.update(range(0, iterations + 1, int(checkpoint_every)))
    for k in checkpoint_at or ():
        if not 0 <= int(k) <= iterations:
            raise ConfigError(f"checkpoint iteration {k} outside [0, {iterations}]")
        ks.add(int(k))
    return ks


def train(network: Network, task: Task, *, iterations=2000, batch_size=32, optimizer="adam", lr=1e-3,
          clip=1.0, lambda_tcr=0.0, tcr_on="rates", tcr_epoch=None, tcr_relative=False, seed=None, params=None,
          checkpoint_every=None, checkpoint_at=(), early_stop=True, continue_after=0, criterion=None,
          eval_batch_size=128, memory_test=True, record=None, run_file=None, progress=None, extra_config=None,
          _resume=None) -> TrainResult:
    """Train ``network`` on ``task`` by BPTT with optional TCR.

    Parameters
    ----------
    network : Network
    task : Task
    iterations : int, maximum number of updates
    batch_size : int, trials per update
    optimizer : {"adam", "sgd"} or Optimizer
    lr : float, learning rate (ignored when an Optimizer object is given)
    clip : float or None, gradient-norm clipping threshold
    lambda_tcr : float, mapping or Schedule, see :mod:`bioplastic.training.schedules`
    tcr_on : {"rates", "states"}
    tcr_epoch : str or None, restrict TCR to this task epoch; ``"memory"``
        means the task's memory epoch (:attr:`Task.memory_epoch`)
    tcr_relative : bool
        If True, lambda_TCR is relative to the losses at initialisation:
        the weight used is ``lambda(k) * L_task(0) / L_TCR(0)``, both
        measured on the first training batch before any update, so that
        ``lambda = 0.1`` makes the TCR term a tenth of the task loss at
        the start whatever the task, model or gain. The factor is stored as
        ``lambda_scale`` in the run file's attributes.
    seed : int or None (drawn and recorded)
    params : Params or None (initialised from the seed's "init" stream)
    checkpoint_every, checkpoint_at : which iterations keep a parameter copy
    early_stop : bool
        Stop once the success criterion is confirmed (plus
        ``continue_after`` iterations). With False the run uses its whole
        budget; ``converged_at`` is recorded either way.
    continue_after : int, default 0
        Iterations to keep training after the criterion is confirmed
        ("train to criterion, then continue M iterations").
    criterion : None, mapping or SuccessCriterion
        The sustained success criterion (:mod:`bioplastic.training.criteria`;
        default: held-out accuracy >= the task's criterion on 3 evaluations
        in a row, one every 10 iterations).
    eval_batch_size : int, trials of each held-out evaluation
    memory_test : bool or mapping
        Run the memory test (:func:`~bioplastic.training.evaluation.memory_generalization`)
        at the end and, when training continues past it, at the confirmation;
        True: silent intervals 10x longer, 128 trials; a mapping sets
        ``factor`` and ``n_trials``; False: no test.
    record : Recording, mapping or None; activity to record at checkpoints
        (see :mod:`bioplastic.recording`), stored in ``result.recordings``
        and the run file
    run_file : path or None; if given, the run file is written at each
        checkpoint and at the end, so an interrupted or diverging run keeps
        what it had: whole the first time, then by adding what is new in one
        atomic commit (:class:`~bioplastic.io.runfile.RunWriter`; a write
        costs what it adds, not the whole file). Checkpoints that come
        faster than ``config`` "min_write_interval" (0.25 s) are written
        together at the next write (:mod:`bioplastic.training.writes`).
    progress : bool or None (``bioplastic.config`` "progress")

    Returns
    -------
    TrainResult
        ``converged_at`` (first evaluation of the sustained success, or
        None), ``extra["confirmed_at"]``, ``extra["memory_test"]``; the
        history has one row per iteration, with held-out ``eval_accuracy``
        and ``eval_loss`` at evaluations (NaN elsewhere).

    Raises
    ------
    DivergenceError
        If the loss or a gradient becomes non-finite; the run file (if any)
        is written first with status "diverged", and the partial result is
        attached to the exception.
    """
    check_network_and_task(network, task)
    # Before any work: settings, the seed and run file the file must hold, the memory estimate.
    check_train_settings(network, task, iterations=iterations, batch_size=batch_size,
                         eval_batch_size=eval_batch_size, continue_after=continue_after,
                         lr=None if isinstance(optimizer, Optimizer) else lr, clip=clip, early_stop=early_stop,
                         tcr_relative=tcr_relative, tcr_on=tcr_on, tcr_epoch=tcr_epoch,
                         checkpoint_every=checkpoint_every, checkpoint_at=checkpoint_at, seed=seed,
                         run_file=run_file, record=record, memory_test=memory_test)
    # (checked above; as ints)
    iterations, batch_size, eval_batch_size, continue_after = map(int, (iterations, batch_size, eval_batch_size,
                                                                       continue_after))
    seed = check_seed(seed)
    streams = make_streams(seed)
    schedule = make_schedule(lambda_tcr)
    success = make_criterion(criterion, task)
    memory = memory_test_settings(memory_test)
    tcr_epoch = resolve_tcr_epoch(tcr_epoch, task)
    opt = optimizer if isinstance(optimizer, Optimizer) else make_optimizer(optimizer, lr=lr)
    params = network.init_params(streams["init"]) if params is None else network.check_params(params)
    recording = make_recording(record)
    if recording is not None:
        checkpoint_at = sorted(set(checkpoint_at or ()) | set(recording.extra_checkpoints()))
        rec_batch = task.sample(recording.n_trials, streams["record"])
        rec_noise = network.draw_noise(streams["record"], rec_batch.T, recording.n_trials) if recording.noise else None
    ckpt_ks = _checkpoint_iterations(iterations, checkpoint_every, checkpoint_at)
    run_file = None if run_file is None else Path(run_file)

    cfg = {
        "model": network.settings(),
        "task": {"name": task.name, **task.settings()},
        "training": {"rule": "bptt", "iterations": iterations, "batch_size": batch_size,
                     "optimizer": type(opt).__name__.lower(), "lr": opt.lr,
                     "clip": clip, "lambda_tcr": schedule.describe(), "tcr_on": tcr_on,
                     "tcr_epoch": tcr_epoch, "tcr_relative": bool(tcr_relative), "early_stop": bool(early_stop),
                     "continue_after": continue_after, "criterion": success.describe(),
                     "eval_batch_size": eval_batch_size, "memory_test": memory if memory else False,
                     "checkpoint_every": checkpoint_every,
                     "checkpoint_at": sorted(int(k) for k in checkpoint_at or ())},
        "seed": seed,
        **({"record": recording.describe()} if recording is not None else {}),
        **(extra_config or {}),
    }
    history = {c: [] for c in HISTORY_COLUMNS}
    result = TrainResult(network, task, params, history, {}, None, "running", seed, cfg, run_file)
    writer = None if run_file is None else RunWriter(run_file)
    monitor = HeldOutMonitor(network, task, success, iterations=iterations, eval_batch_size=eval_batch_size,
                             memory=memory, early_stop=early_stop, continue_after=continue_after,
                             eval_rng=streams["eval"], memory_rng=streams["memory"])
    accuracy, start, lambda_scale = None, 0, 1.0
    if recording is not None:
        result.recordings = {"trials": rec_batch, "at": {}}
    if _resume is not None:
        if recording is not None:
            result.recordings["at"] = dict(_resume.get("recordings", {}))
        start, accuracy = _resume["iteration"], _resume["accuracy"]
        params = result.params = network.check_params(_resume["checkpoints"][start])
        result.checkpoints = dict(_resume["checkpoints"])
        n_rows = len(_resume["history"]["iteration"])
        history = {c: list(_resume["history"].get(c, np.full(n_rows, np.nan))[:start]) for c in HISTORY_COLUMNS}
        for name, state in _resume["streams"].items():
            streams[name].bit_generator.state = state
        schedule.load_state(_resume["schedule"])
        opt.load_state_dict(_resume["optimizer"])
        success_state = _resume.get("success", {})
        if success_state:
            monitor.load_state(success_state)
            lambda_scale = success_state["lambda_scale"]

    def resume_state(k):
        # Everything needed to continue bit for bit from the top of iteration k.
        return {"iteration": k, "accuracy": accuracy,
                "streams": {n: g.bit_generator.state for n, g in streams.items()},
                "schedule": schedule.state(), "optimizer": opt.state_dict(),
                "success": {**monitor.state(), "lambda_scale": lambda_scale}}

    def finish(status):
        writes.pending = None  # this write carries every checkpoint
        result.status = status
        result.converged_at = monitor.converged_at
        result.extra["confirmed_at"] = monitor.confirmed_at
        result.extra["lambda_scale"] = lambda_scale
        result.history = {c: np.asarray(v) for c, v in history.items()}
        if writer is not None:
            result.save(run_file, writer=writer)
        return result

    def snapshot(k):
        # What the running file holds at checkpoint k (written now, or later if writes are due less often).
        return {"resume": resume_state(k), "rows": len(history["iteration"]), "converged_at": monitor.converged_at,
                "confirmed_at": monitor.confirmed_at, "lambda_scale": lambda_scale}

    def write_running(snap):
        result.status = "running"
        result.converged_at = snap["converged_at"]
        result.extra.update(confirmed_at=snap["confirmed_at"], lambda_scale=snap["lambda_scale"])
        result.history = {c: np.asarray(v[:snap["rows"]]) for c, v in history.items()}
        result.save(run_file, resume=snap["resume"], writer=writer)

    writes = CheckpointWrites(write_running)

    show = global_config.get("progress") if progress is None else progress
    # ETA without the first iteration (it compiles the kernels); says so on stderr when it does
    bar = ProgressBar(total=iterations, initial=start, disable=not show, desc=f"{network.kind}/{task.name}",
                      leave=False)
    try:
        for k in range(start, iterations + 1):
            if k in ckpt_ks and not (_resume is not None and k == start):
                result.checkpoints[k] = params.copy()
                if recording is not None and recording.wants(k, is_final=False):
                    result.recordings["at"][k] = record_activity(network, params, rec_batch,
                                                                 recording.what, rec_noise)
                if run_file is not None and k > 0:
                    writes.checkpoint(lambda: snapshot(k))
            batch = task.sample(batch_size, streams["task"])
            noise = network.draw_noise(streams["noise"], batch.T, batch_size)
            if tcr_relative and k == 0:
                lambda_scale = _relative_tcr_scale(network, params, batch, tcr_on, tcr_epoch, noise)
            lam = float(schedule(k, accuracy)) * lambda_scale
            ev = loss_and_grads(network, params, batch, lambda_tcr=lam, tcr_on=tcr_on,
                                tcr_epoch=tcr_epoch, noise=noise)
            accuracy = task.accuracy(ev.traj.outputs, batch) if np.all(np.isfinite(ev.traj.outputs)) else 0.0
            schedule.observe(k, ev.task_loss, accuracy)
            grads, gnorm = clip_by_global_norm(ev.grads, clip)
            eval_acc, eval_loss = monitor.evaluate(k, params, ready=np.isfinite(ev.loss))
            row = (k, ev.loss, ev.task_loss, ev.tcr_loss, accuracy, gnorm, lam, eval_acc, eval_loss)
            for col, v in zip(HISTORY_COLUMNS, row):
                history[col].append(v)
            if not (np.isfinite(ev.loss) and np.isfinite(gnorm)):
                finish("diverged")
                raise DivergenceError(
                    f"training diverged at iteration {k}: loss={ev.loss}, gradient norm={gnorm}"
                    + (f"; run file with checkpoints so far: {run_file}" if run_file else "")
                    + " (lower lr, g or lambda_TCR, or clip harder)",
                    iteration=k, result=result)
            if monitor.done(k):
                break
            opt.step(params, grads)
            bar.update(1)
            if show and k % 20 == 0:
                bar.set_postfix(loss=f"{ev.loss:.3g}", acc=f"{accuracy:.2f}", refresh=False)
    except BaseException:
        if writer is not None:
            flush_and_close(writes, writer)  # an interrupted run: its file holds every checkpoint taken
        raise
    finally:
        bar.close()
    result.checkpoints[k] = params.copy()
    if recording is not None and recording.wants(k, is_final=True):
        result.recordings["at"][k] = record_activity(network, params, rec_batch, recording.what, rec_noise)
    final = monitor.finish(params)
    result.final_accuracy = final.pop("final_accuracy")
    result.extra.update(final)
    return finish("converged" if monitor.converged_at is not None else "max_iterations")


def _relative_tcr_scale(network, params, batch, tcr_on, tcr_epoch, noise) -> float:
    """L_task / L_TCR of the initial network on the first batch (see ``tcr_relative``)."""
    ev = loss_and_grads(network, params, batch, lambda_tcr=0.0, tcr_on=tcr_on, tcr_epoch=tcr_epoch, noise=noise,
                        need_grads=False)
    if not (np.isfinite(ev.task_loss) and np.isfinite(ev.tcr_loss) and ev.tcr_loss > 0):
        raise ConfigError(f"tcr_relative needs a positive, finite TCR loss at initialisation, got {ev.tcr_loss} "
                          f"(task loss {ev.task_loss})")
    return float(ev.task_loss / ev.tcr_loss)


def check_network_and_task(network, task) -> None:
    """ConfigError unless ``network`` is a Network sized for ``task`` (inputs and outputs)."""
    if not isinstance(network, Network):
        raise ConfigError(f"network must be a bioplastic Network, got {type(network).__name__}")
    if not isinstance(task, Task):
        raise ConfigError(f"task must be a bioplastic Task, got {type(task).__name__}")
    if network.n_inputs != task.n_inputs or network.n_outputs != task.n_outputs:
        raise ConfigError(f"network has {network.n_inputs} inputs / {network.n_outputs} outputs but task "
                          f"{task.name!r} needs {task.n_inputs} / {task.n_outputs}")


