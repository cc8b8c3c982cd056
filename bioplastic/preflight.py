"""Checks before working: every setting of a run validated, and its memory
estimated, before training starts.

A run that cannot be written (a seed the run file cannot store, an output
path that is a folder or not writable) or cannot fit the machine's memory
(a million units, a checkpoint every iteration of a huge budget) is refused
with one :class:`~bioplastic.errors.ConfigError` line before any work,
instead of failing after it. :func:`check_train_settings` is called at the
very start of :func:`bioplastic.train` and
:func:`bioplastic.training.local.train_local`; the command line and sweeps
add :func:`check_out_folder`, :func:`check_model_settings` and
:func:`bioplastic.training.checks.check_training` (every training setting, the schedule, optimiser,
criterion, memory test and recording built as the loops build them, before
the output folder exists).

The memory estimate (:func:`estimate_run_bytes`) is deliberately rough (the
worst case of the iteration budget, about a factor 2) and cheap: it allocates
nothing the size of the run.
"""
from __future__ import annotations

import inspect
import math
import os
from pathlib import Path

import numpy as np

from .errors import ConfigError
from .seeding import check_seed
from .validation import positive_int

#: Fraction of the available memory a run may plan to use.
MEMORY_FRACTION = 0.8
#: Bytes of one history value while training (a Python float in a list).
_HISTORY_CELL = 32
#: Per-unit arrays kept per time step and trial for BPTT (states, rates,
#: adjoint, outputs/gradients); an LSTM keeps its gates too.
_TRAJECTORY_ARRAYS = {"lstm": 12}
_DEFAULT_TRAJECTORY_ARRAYS = 4
_GIB = 2 ** 30


# -- settings ---------------------------------------------------------------
def _is_int(v) -> bool:
    return not isinstance(v, (bool, np.bool_)) and isinstance(v, (int, np.integer))


def check_run_seed(seed) -> None:
    """ConfigError unless ``seed`` is None or an integer the run file can store
    (:func:`bioplastic.seeding.check_seed`, without drawing one)."""
    if seed is not None:
        check_seed(seed)


def check_bool(name: str, value) -> bool:
    """``value`` if it is a real boolean; a ConfigError for ``"no"``, ``0``..."""
    if not isinstance(value, (bool, np.bool_)):
        raise ConfigError(f"{name} must be true or false (a boolean, not a string or number), got {value!r}")
    return bool(value)


def check_checkpoint_every(value) -> None:
    """ConfigError unless ``value`` is None (no periodic checkpoints) or a positive integer."""
    if value is None:
        return
    if not _is_int(value) or value < 1:
        raise ConfigError(f"checkpoint_every must be a positive integer, got {value!r}; "
                          "omit it for no checkpoints")


def check_checkpoint_at(value, iterations=None) -> None:
    """ConfigError unless ``value`` is None or a sequence of integers, each in
    ``[0, iterations]`` when ``iterations`` is given."""
    if value is None:
        return
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise ConfigError(f"checkpoint_at must be a list of iterations, got {value!r}")
    bad = [k for k in value if not _is_int(k)]
    if bad:
        raise ConfigError(f"checkpoint_at must list integer iterations, got {bad[0]!r}")
    if _is_int(iterations):
        late = [k for k in value if not 0 <= k <= iterations]
        if late:  # the loop's own message (training.loop._checkpoint_iterations)
            raise ConfigError(f"checkpoint iteration {late[0]} outside [0, {int(iterations)}]")


def resolve_tcr_epoch(tcr_epoch, task):
    """``"memory"`` -> the task's memory epoch; other values unchanged."""
    if tcr_epoch != "memory":
        return tcr_epoch
    if task.memory_epoch is None:
        raise ConfigError(f"tcr_epoch='memory' but task {task.name!r} names no memory epoch")
    return task.memory_epoch


def check_tcr_target(task, tcr_on=None, tcr_epoch=None) -> None:
    """ConfigError unless ``tcr_on`` (None: not given) names an activity TCR acts on and
    ``tcr_epoch`` (None: the whole trial) an epoch of ``task``'s trials."""
    if tcr_on is not None:
        from .networks.base import check_tcr_on

        check_tcr_on(tcr_on)
    if tcr_epoch is None:
        return
    epoch = resolve_tcr_epoch(tcr_epoch, task)
    batch = _one_trial(task)
    if batch is not None and epoch not in batch.epochs:  # the message of training.objective
        raise ConfigError(f"task has no epoch {epoch!r}; epochs: {sorted(batch.epochs)}")


def check_clip(value) -> None:
    """ConfigError unless ``value`` is None or a number > 0."""
    if value is None:
        return
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"clip must be a number > 0 or None, got {value!r}")
    if not float(value) > 0:
        raise ConfigError(f"clip must be > 0 or None, got {value!r}")


def check_run_file(run_file) -> None:
    """ConfigError unless a run file can be written at ``run_file`` (None: no file)."""
    if run_file is None:
        return
    if isinstance(run_file, str) and not run_file.strip():
        raise ConfigError("run_file is empty; give a path such as out/run.h5")
    path = Path(run_file)
    if path.is_dir():
        raise ConfigError(f"run file {str(path)!r} is a folder; remove it or choose another output")
    if path.exists() and not path.is_file():
        raise ConfigError(f"run file {str(path)!r} exists and is not a regular file")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(f"output folder {str(folder)!r} of run file {str(path)!r} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"output folder {str(folder)!r} is not writable")


def check_out_folder(out) -> Path:
    """The command line's ``--out``: refuse an empty value, a path that is a
    file, or one whose nearest existing folder is not writable. Returns it as a Path
    (nothing is created)."""
    if out is None or not str(out).strip():
        raise ConfigError("--out is empty; give an output folder (use --out . for the current folder)")
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file, not a folder")
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if existing.exists():
        if not existing.is_dir():
            raise ConfigError(f"cannot create output folder {str(out)!r}: {str(existing)!r} is a file")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise ConfigError(f"output folder {str(existing)!r} is not writable")
    run_file = path / "run.h5"
    if run_file.is_dir():
        raise ConfigError(f"{str(run_file)!r} is a folder; remove it or choose another --out")
    return path


def check_output_file(out, *, inputs=(), what="output file") -> Path:
    """A file a command will write: refuse a folder, an input file of the same
    command (writing it would destroy the input), or a parent that is a file,
    missing or not writable. Returns it as a Path (nothing is created)."""
    path = Path(out)
    if path.is_dir():
        raise ConfigError(f"{what} {str(out)!r} is a folder; give a file name")
    for source in inputs:
        if source is not None and Path(source).exists() and path.exists() and os.path.samefile(source, path):
            raise ConfigError(f"{what} {str(out)!r} is the input file {str(source)!r}; writing it would destroy "
                              "the input: give another name")
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise ConfigError(f"cannot write {what} {str(out)!r}: {str(parent)!r} is a file, not a folder")
    if not parent.exists():
        raise ConfigError(f"cannot write {what} {str(out)!r}: output folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write {what} {str(out)!r}: folder {str(parent)!r} is not writable")
    return path


def check_model_settings(kind: str, settings: dict, where: str = "spec") -> None:
    """ConfigError for a [model] value whose type does not match the model's
    default (``g = "big"``, ``n_units = 1.5``, ``nonlinearity = 3``)."""
    from .networks import MODELS

    try:
        cls = MODELS.get(kind)
    except Exception:  # noqa: BLE001 - an unknown kind is reported by make_network
        return
    params = inspect.signature(cls.__init__).parameters
    for key, value in settings.items():
        p = params.get(key)
        if p is None:
            continue  # unknown keys: make_network names the closest one
        default = p.default
        if key in ("n_units",):
            ok = _is_int(value)
            want = "an integer"
        elif default is inspect.Parameter.empty or default is None:
            continue
        elif isinstance(default, bool):
            ok, want = isinstance(value, (bool, np.bool_)), "true or false"
        elif isinstance(default, (int, float)):
            ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, (int, float, np.integer,
                                                                                  np.floating))
            want = "a number"
        elif isinstance(default, str):
            ok, want = isinstance(value, str), "a string"
        else:
            continue
        if not ok:
            raise ConfigError(f"model.{key} must be {want}, got {value!r} ({where})")


def check_train_settings(network, task, *, iterations, batch_size, eval_batch_size, continue_after=0, lr=None,
                         clip=None, early_stop=True, tcr_relative=False, tcr_on=None, tcr_epoch=None,
                         checkpoint_every=None, checkpoint_at=(), seed=None, run_file=None, record=None,
                         memory_test=None, diagnostics_every=None, diagnostic_splits=None, local=False) -> None:
    """Everything :func:`bioplastic.train` / ``train_local`` can check before work.

    Types and ranges of the settings (checkpoint iterations within the
    budget, the TCR target and epoch among the task's), the seed (what the
    run file stores), the run file's place, and the memory estimate
    (:func:`check_fits`). A setting left None is not checked (the loop
    that does not take it). Raises a one-line ConfigError; returns None.
    """
    for name, v, zero in (("iterations", iterations, True), ("batch_size", batch_size, False),
                          ("eval_batch_size", eval_batch_size, False), ("continue_after", continue_after, True)):
        positive_int(name, v, allow_zero=zero)
    for name, v, zero in (("diagnostics_every", diagnostics_every, True),
                          ("diagnostic_splits", diagnostic_splits, False)):
        if v is not None:
            positive_int(name, v, allow_zero=zero)
    if lr is not None and (isinstance(lr, (bool, np.bool_, str, bytes))
                           or not isinstance(lr, (int, float, np.integer, np.floating))):
        raise ConfigError(f"lr must be a number, got {lr!r}")
    check_clip(clip)
    check_bool("early_stop", early_stop)
    check_bool("tcr_relative", tcr_relative)
    check_checkpoint_every(checkpoint_every)
    check_checkpoint_at(checkpoint_at, iterations)
    check_tcr_target(task, tcr_on, tcr_epoch)
    check_run_seed(seed)
    check_run_file(run_file)
    from . import config

    config.get("min_write_interval")  # how often a run file is written (BIOPLASTIC_MIN_WRITE_INTERVAL)
    parts = estimate_run_bytes(network, task, batch_size=batch_size, iterations=iterations,
                               checkpoint_every=checkpoint_every, checkpoint_at=checkpoint_at,
                               eval_batch_size=eval_batch_size, record=record, memory_test=memory_test,
                               local=local, detail=True)
    check_fits(parts)


def check_run_objects(network, task, settings: dict) -> None:
    """Build what a training loop builds from its settings, as one-line ConfigErrors.

    The loops build their optimiser, lambda_TCR schedule, success criterion,
    memory test and recording after the command line has created the output
    folder; a bad value there (``lambda_tcr = "x"``, ``criterion =
    {threshold = "high"}``, a record name the model does not have) would
    fail late or as a traceback. Checked here first.

    Parameters
    ----------
    network, task
        The run's network and task.
    settings : dict
        The training loop's keyword arguments with its defaults filled in
        (``optimizer``, ``lr``, ``lambda_tcr``, ``criterion``,
        ``memory_test``, ``iterations`` and optionally ``record``).
    """
    from .training.criteria import make_criterion
    from .training.evaluation import memory_test_settings
    from .training.optim import make_optimizer
    from .training.schedules import make_schedule

    checks = [("lambda_tcr", lambda v: make_schedule(v)), ("criterion", lambda v: make_criterion(v, task)),
              ("memory_test", memory_test_settings)]
    if isinstance(settings.get("optimizer"), str):
        checks.append(("optimizer", lambda v: make_optimizer(v, lr=settings.get("lr"))))
    for name, build in checks:
        if name in settings:
            _built(name, build, settings[name])
    if settings.get("record") is not None:
        check_recording(network, task, settings["record"], settings.get("iterations"))


def _built(name, build, value):
    """``build(value)``; a TypeError or ValueError that is not a ConfigError becomes one naming ``name``."""
    try:
        return build(value)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{name} = {value!r} is invalid ({exc})") from None


def check_recording(network, task, record, iterations=None) -> None:
    """ConfigError unless ``record`` can be recorded from ``network``: known names (the closest one
    named), recording iterations within ``[0, iterations]``."""
    import difflib

    from .recording import RECORDABLE, make_recording, record as record_arrays

    recording = _built("record", make_recording, record)
    unusual = [w for w in recording.what if w not in RECORDABLE]
    if unusual:  # model extras (an LSTM's gates): ask the model, on one trial
        batch = task.sample(1, np.random.default_rng(0))
        params = network.init_params(np.random.default_rng(0))
        try:
            record_arrays(network, params, batch, unusual)
        except ConfigError:
            traj = network.forward(params, batch.inputs)
            known = sorted((*RECORDABLE, *traj.extra))
            bad = [w for w in unusual if w not in known]
            hints = [f"{w!r}" + (f" (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(w, known, n=1))
                                 else "") for w in bad]
            raise ConfigError(f"record what: cannot record {', '.join(hints)} from a {network.kind!r} network; "
                              f"it records: {', '.join(known)}") from None
    if _is_int(iterations):
        late = [k for k in recording.extra_checkpoints() if not 0 <= k <= int(iterations)]
        if late:
            raise ConfigError(f"record at: iteration {late[0]} is outside [0, {int(iterations)}] "
                              "(the iterations of this run)")


# -- memory -----------------------------------------------------------------
def param_count(network) -> int:
    """Number of parameter values of ``network`` (from its parameter shapes)."""
    n = getattr(network, "n_params", None)
    if _is_int(n):
        return int(n)
    return sum(math.prod(int(d) for d in shape) for shape in network.param_shapes().values())


def _n_checkpoints(iterations, checkpoint_every, checkpoint_at, extra=()) -> int:
    n = 1  # iteration 0
    if checkpoint_every:
        n = iterations // int(checkpoint_every) + 1
    every = int(checkpoint_every) if checkpoint_every else 0
    others = {int(k) for k in (*(checkpoint_at or ()), *extra)
              if _is_int(k) and 0 < int(k) <= iterations and not (every and int(k) % every == 0)}
    return n + len(others)


def _one_trial(task):
    """One trial of ``task`` from a private generator, or None if it cannot sample here."""
    try:
        return task.sample(1, np.random.default_rng(0))
    except Exception:  # noqa: BLE001 - its own error comes when the loop samples
        return None


def _trial_steps(task) -> int:
    """Time steps of one trial (one trial sampled from a private generator, else ``n_steps``)."""
    batch = _one_trial(task)
    return int(getattr(task, "n_steps", 100)) if batch is None else int(batch.T)


def estimate_run_bytes(network, task, *, batch_size, iterations, checkpoint_every, checkpoint_at,
                       eval_batch_size, record=None, memory_test=None, local=False, detail=False):
    """Rough peak memory of a training run, in bytes (worst case: the whole budget).

    Counts the parameters (and optimiser moments, 3 copies), the kept
    checkpoints (one parameter copy each), the trajectories of one training
    batch ((T+1) x B x N x about 4 arrays for BPTT), the held-out evaluation
    and memory-test batches (forward only), the history rows and recorded
    activity. With ``detail`` returns a dict of the parts and ``total``.
    """
    itemsize = max(np.dtype(getattr(network, "dtype", None) or np.float64).itemsize, 8)
    n_par = param_count(network)
    param_bytes = n_par * itemsize
    N = int(network.n_units)
    T = _trial_steps(task)
    arrays = _TRAJECTORY_ARRAYS.get(getattr(network, "kind", ""), _DEFAULT_TRAJECTORY_ARRAYS)

    recording = None
    if record is not None:
        from .recording import make_recording

        recording = make_recording(record)
    extra = recording.extra_checkpoints() if recording is not None else ()
    n_ckpt = _n_checkpoints(iterations, checkpoint_every, checkpoint_at, extra)

    parts = {"parameters": 4 * param_bytes,  # params, gradients, two optimiser moments
             "checkpoints": n_ckpt * param_bytes}
    trajectories = (T + 1) * batch_size * N * arrays * itemsize
    trajectories += (T + 1) * eval_batch_size * N * 2 * itemsize
    if memory_test:
        settings = memory_test if isinstance(memory_test, dict) else {}
        factor = float(settings.get("factor", 10))
        n_trials = int(settings.get("n_trials", 128))
        trajectories += int(T * factor + 1) * n_trials * N * 2 * itemsize
    parts["trajectories"] = trajectories
    parts["history"] = (iterations + 1) * (11 if local else 9) * _HISTORY_CELL
    if recording is not None:
        n_rec = n_ckpt if recording.at == "checkpoints" else max(1, len(extra))
        parts["recordings"] = n_rec * recording.n_trials * (T + 1) * N * len(recording.what) * itemsize
    total = sum(parts.values())
    if detail:
        return {**parts, "total": total}
    return total


def available_bytes() -> int | None:
    """Memory available to a new run: MemAvailable of /proc/meminfo, else the
    physical memory from ``os.sysconf``; None when neither is known."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _gib(n) -> str:
    g = n / _GIB
    return f"{g:.3g}" if g < 1000 else f"{g:,.0f}"


def check_fits(bytes_needed, available=None) -> None:
    """ConfigError when a run needing ``bytes_needed`` (a number, or the dict of
    :func:`estimate_run_bytes` with ``detail=True``) exceeds
    :data:`MEMORY_FRACTION` of ``available`` bytes (default: :func:`available_bytes`)."""
    parts = bytes_needed if isinstance(bytes_needed, dict) else {"total": int(bytes_needed)}
    total = parts["total"]
    if available is None:
        available = available_bytes()
        if available is None:
            return
    if total <= MEMORY_FRACTION * available:
        return
    shown = ", ".join(f"{k} {_gib(parts[k])} GiB" for k in ("checkpoints", "trajectories") if k in parts)
    advice = []
    if parts.get("checkpoints", 0) + parts.get("history", 0) >= 0.3 * total:
        advice.append("--iterations or the number of checkpoints (a larger --checkpoint-every)")
    if parts.get("trajectories", 0) + parts.get("parameters", 0) + parts.get("recordings", 0) >= 0.3 * total:
        advice.append("n_units, batch_size or eval_batch_size")
    if not advice:
        advice.append("n_units, batch_size, --iterations or the number of checkpoints")
    raise ConfigError(f"this run needs about {_gib(total)} GiB{f' ({shown})' if shown else ''}, more than the "
                      f"{_gib(available)} GiB available; reduce {' or '.join(advice)}")
