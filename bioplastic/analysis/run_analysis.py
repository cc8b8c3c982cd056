"""Analyse one training run: fixed points at every checkpoint, GR events,
abrupt learning, slow dynamics, PCA portraits and speed maps.

:func:`analyze_run` reads a run file, rebuilds the network and task from the
recorded configuration, and at each checkpoint

1. runs the network (noise off) on one fixed batch of task trials (the same
   trials at every checkpoint),
2. samples ``n_init`` visited states as starting points and finds the fixed
   and slow points of the map at the analysis input (zero input by default:
   the memory periods of the built-in tasks),
3. records the spread of the visited states (the length unit of GR events).

It then flags GR events, detects the plateau and drop on the task-loss
history, computes the GR lead time, and measures slow dynamics (timescales,
ramping) in an epoch of the final network. PCA (fitted on the final
checkpoint's visited states) gives one 2-D frame for the phase portraits
and the speed maps ``|F(x) - x|`` on a grid in that plane.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, SchemaError, ShapeError
from ..training.progress import ProgressBar
from .abrupt import AbruptLearning, detect_abrupt_learning, gr_lead_time
from .fixed_points import FixedPoints, find_fixed_points, sample_states
from .geometry import GREvents, gr_events, state_spread
from .maps import autonomous_map, trajectory_states
from .slow_dynamics import autocorrelation_timescales, ramping_units


@dataclass
class RunAnalysis:
    """Everything :func:`analyze_run` computed for one run (see module doc)."""

    run_file: str
    config: dict
    seed: int
    fixed_points: dict
    scales: dict
    gr: GREvents
    abrupt: AbruptLearning
    lead: dict
    loss: dict
    slow: dict
    pca: dict
    portraits: dict
    speed_maps: dict
    settings: dict = field(default_factory=dict)

    def summary(self) -> dict:
        """JSON-friendly digest (what protocols report)."""
        return {
            "run_file": self.run_file,
            "seed": self.seed,
            "checkpoints": self.gr.iterations.tolist(),
            "n_stable": self.gr.n_stable.tolist(),
            "n_fixed": self.gr.n_fixed.tolist(),
            "n_required": self.settings.get("n_required"),
            "gr_events": self.gr.events.tolist(),
            "abrupt": self.abrupt.as_dict(),
            "lead": self.lead,
            "slow": {k: v for k, v in self.slow.items() if not isinstance(v, np.ndarray)},
        }


def network_from_config(config: dict):
    """Rebuild the network recorded in a run file's config."""
    from ..networks import make_network

    model = dict(config.get("model", {}))
    if "kind" not in model:
        raise SchemaError("run config has no model kind; cannot rebuild the network")
    kind = model.pop("kind")
    return make_network(kind, model.pop("n_inputs"), model.pop("n_outputs"), **model)


def task_from_config(config: dict):
    """Rebuild the task recorded in a run file's config."""
    from ..tasks import get_task

    task = dict(config.get("task", {}))
    if "name" not in task:
        raise SchemaError("run config has no task name; cannot rebuild the task")
    return get_task(task.pop("name"), **task)


def analysis_input(task, batch, inputs, epoch):
    """The constant input of the map: "zero", "epoch_mean" or an (I,) array."""
    if isinstance(inputs, str):
        if inputs == "zero":
            return np.zeros(task.n_inputs)
        if inputs == "epoch_mean":
            mask = batch.epochs[epoch]
            if not mask.any():
                raise ConfigError(f"epoch mask {epoch!r} selects no time steps: cannot average the input over it")
            return batch.inputs[mask].mean(axis=0)
        raise ConfigError(f"inputs must be 'zero', 'epoch_mean' or an array, got {inputs!r}")
    return np.asarray(inputs, dtype=np.float64)


def default_epoch(batch) -> str:
    for name in ("delay", "hold"):
        if name in batch.epochs:
            return name
    return sorted(batch.epochs)[0]


def _pca(X, n=2):
    X = X.reshape(-1, X.shape[-1])
    mean = X.mean(axis=0)
    _, s, vt = np.linalg.svd(X - mean, full_matrices=False)
    var = s ** 2
    explained = var[:n] / var.sum() if var.sum() > 0 else np.zeros(n)
    comps = np.zeros((n, X.shape[1]))
    comps[: min(n, vt.shape[0])] = vt[:n]
    return mean, comps, explained


def _speed_map(F, mean, comps, proj, grid):
    lo, hi = proj.min(axis=(0, 1)), proj.max(axis=(0, 1))
    pad = 0.15 * np.maximum(hi - lo, 1e-6)
    a = np.linspace(lo[0] - pad[0], hi[0] + pad[0], grid)
    b = np.linspace(lo[1] - pad[1], hi[1] + pad[1], grid)
    A, B = np.meshgrid(a, b, indexing="xy")
    X = mean + A.reshape(-1, 1) * comps[0] + B.reshape(-1, 1) * comps[1]
    speed = np.linalg.norm(F.residual(X), axis=1).reshape(grid, grid)
    return {"a": a, "b": b, "speed": speed}


def _portrait_checkpoints(its, abrupt, n):
    its = list(its)
    chosen = {its[0], its[-1]}
    if abrupt.detected:
        for t in (abrupt.plateau_end, abrupt.drop_end):
            chosen.add(min(its, key=lambda k: abs(k - t)))
    for k in np.linspace(0, len(its) - 1, n).round().astype(int):
        if len(chosen) >= n:
            break
        chosen.add(its[k])
    return sorted(chosen)


def _params_finite(p) -> bool:
    return all(np.all(np.isfinite(np.asarray(v))) for v in p.values())


def analyze_run(run_file, *, n_init=256, batch_size=64, seed=0, inputs="zero", epoch=None, checkpoints=None,
                skip_nonfinite=False, n_portraits=4, speed_grid=40, finder=None, gr=None, abrupt=None,
                loss_column="task_loss", progress=False) -> RunAnalysis:
    """Analyse the geometry of a training run (see the module docstring).

    Parameters
    ----------
    run_file : path of a run file with at least two checkpoints
    n_init : int, initial states of the fixed-point search per checkpoint
    batch_size : int, trials run at each checkpoint to sample visited states
    seed : int, seed of the analysis (trials and initial states)
    inputs : "zero", "epoch_mean" or (I,) array, the map's constant input
    epoch : str or None, task epoch for slow dynamics and "epoch_mean"
        (default "delay", else "hold", else the first epoch)
    checkpoints : iterable of int or None (all)
    skip_nonfinite : bool, skip checkpoints whose weights hold NaN/inf
        (else they raise ShapeError)
    n_portraits : int, checkpoints shown in portraits and speed maps
    speed_grid : int, grid points per axis of the speed maps
    finder, gr, abrupt : dict or None, keyword arguments of
        :func:`find_fixed_points` (here ``settle_steps`` defaults to 1000),
        :func:`gr_events`, :func:`detect_abrupt_learning`
    loss_column : str, history column the abrupt-learning detector reads
    progress : bool, show a progress bar on stderr (one step per checkpoint,
        then per stage: GR events and the drop, slow dynamics, each speed map);
        off by default, as protocol workers call this

    Returns
    -------
    RunAnalysis

    Raises
    ------
    SchemaError
        If the run file has fewer than two checkpoints or lacks the loss column.
    ShapeError
        If a checkpoint's weights are not finite (and ``skip_nonfinite`` is off).
    ConfigError
        For an unknown epoch or an empty epoch mask.
    """
    from ..io.runfile import read_run

    data = read_run(run_file)
    path = str(run_file)
    if not data.checkpoints:
        raise SchemaError(f"run file {path!r} has no checkpoints: train with checkpoint_every=K so the "
                          "analysis has parameters to look at")
    ks = sorted(data.checkpoints) if checkpoints is None else sorted(int(k) for k in checkpoints)
    missing = [k for k in ks if k not in data.checkpoints]
    if missing:
        raise ConfigError(f"run file {path!r} has no checkpoint(s) {missing}; it has {sorted(data.checkpoints)}")
    skipped = []
    if skip_nonfinite:
        skipped = [k for k in ks if not _params_finite(data.checkpoints[k])]
        ks = [k for k in ks if k not in skipped]
    if len(ks) < 2:
        raise SchemaError(f"run file {path!r} has {len(ks)} usable checkpoint(s); GR events need at least 2 "
                          "(train with checkpoint_every=K)")
    if loss_column not in data.history:
        raise SchemaError(f"run file {path!r} has no history column {loss_column!r}")

    net = network_from_config(data.config)
    task = task_from_config(data.config)
    rng = np.random.default_rng(seed)
    batch = task.sample(int(batch_size), rng)
    epoch = default_epoch(batch) if epoch is None else epoch
    if epoch not in batch.epochs:
        raise ConfigError(f"task {task.name!r} has no epoch {epoch!r}; epochs: {sorted(batch.epochs)}")
    u = analysis_input(task, batch, inputs, epoch)
    init_seed = int(rng.integers(2 ** 31))

    fps, scales, trajs = {}, {}, {}
    # One step per checkpoint, then per stage; the total grows once the portrait
    # checkpoints are known (they depend on the drop).
    with ProgressBar(total=len(ks) + 2, disable=not progress, desc="analyze: fixed points", leave=False) as bar:
        for k in ks:
            params = data.checkpoints[k]
            try:
                traj = net.forward(params, batch.inputs)
            except ShapeError as exc:
                raise ShapeError(f"checkpoint {k} of {path!r}: {exc}") from exc
            S = trajectory_states(net, traj)
            if not np.all(np.isfinite(S)):
                raise ShapeError(f"checkpoint {k} of {path!r}: the network's states diverge (NaN/inf) "
                                 "on task trials")
            X0 = sample_states(S, int(n_init), np.random.default_rng(init_seed))
            fps[k] = find_fixed_points(net, params, X0, inputs=u, **{"settle_steps": 1000, **(finder or {})})
            scales[k] = state_spread(S)
            trajs[k] = (S, traj.rates)
            bar.set_postfix_str(f"iteration {k}", refresh=False)
            bar.update(1)

        bar.set_description("analyze: GR events, drop", refresh=False)
        events = gr_events(fps, scales, **(gr or {}))
        hist_it = np.asarray(data.history["iteration"])
        hist_loss = np.asarray(data.history[loss_column])
        abr = detect_abrupt_learning(hist_it, hist_loss, **(abrupt or {}))
        lead = gr_lead_time(events.events, abr, events.iterations)
        bar.update(1)
        bar.set_description("analyze: slow dynamics", refresh=False)

        mask = batch.epochs[epoch]
        slow = {"epoch": epoch}
        for label, k in (("initial", ks[0]), ("final", ks[-1])):
            rates = trajs[k][1]
            tau = autocorrelation_timescales(rates, mask, dt=task.dt)
            ramp = ramping_units(rates, mask, dt=task.dt)
            slow[f"{label}_iteration"] = int(k)
            slow[f"{label}_timescales"] = tau
            slow[f"{label}_ramping"] = ramp.is_ramping
            slow[f"{label}_ramping_fraction"] = ramp.fraction
            slow[f"{label}_ramping_traces"] = ramp.mean[:, ramp.is_ramping][:, :5]  # up to 5 example units
            varying = tau[~np.isnan(tau)]
            slow[f"{label}_median_timescale"] = float(np.median(varying)) if varying.size else float("nan")
            slow[f"{label}_fraction_censored"] = float(np.isinf(varying).mean()) if varying.size else float("nan")

        bar.update(1)
        S_final = trajs[ks[-1]][0]
        mean, comps, explained = _pca(S_final)
        pca = {"mean": mean, "components": comps, "explained": explained}
        portraits, speed_maps = {}, {}
        n_show = min(8, batch.batch_size)
        shown = _portrait_checkpoints(ks, abr, int(n_portraits))
        bar.total += len(shown)
        bar.set_description("analyze: speed maps", refresh=False)
        for k in shown:
            proj = (trajs[k][0][:, :n_show] - mean) @ comps.T
            portraits[k] = proj
            F = autonomous_map(net, data.checkpoints[k], u)
            speed_maps[k] = _speed_map(F, mean, comps, proj, int(speed_grid))
            bar.set_postfix_str(f"iteration {k}", refresh=False)
            bar.update(1)

    settings = {"n_init": int(n_init), "batch_size": int(batch_size), "seed": int(seed),
                "n_required": task.n_memories if inputs == "zero" else None,
                "inputs": u.tolist(), "inputs_rule": inputs if isinstance(inputs, str) else "array",
                "epoch": epoch, "skipped_nonfinite": skipped, "finder": dict(finder or {}),
                "gr": events.settings, "abrupt": dict(abrupt or {}), "loss_column": loss_column,
                "model": net.kind, "task": task.name}
    return RunAnalysis(path, data.config, data.seed, fps, scales, events, abr, lead,
                       {"iterations": hist_it, "loss": hist_loss}, slow, pca, portraits, speed_maps, settings)


def project_points(analysis: RunAnalysis, k: int, fixed_only=False):
    """Fixed/slow points of checkpoint k in the PCA plane: (points (K, 2), FixedPoints)."""
    fp: FixedPoints = analysis.fixed_points[k]
    if fixed_only:
        fp = fp.fixed()
    return (fp.states - analysis.pca["mean"]) @ analysis.pca["components"].T, fp


def _portraits_3pc(analysis: RunAnalysis, *, n_trials=4, n_probes=24, probe_steps=400):
    """Phase-portrait panels in the first three PCs, with probe trials of silence.

    Re-runs the analysis trials (same task, seed and batch as
    :func:`analyze_run`) at each portrait checkpoint. PCA (3 components) is
    fitted on the final checkpoint's visited states. A probe trial is a task
    trial whose input is switched off from a random time on and which then
    runs ``probe_steps`` more steps in silence (zero input); the panels hold
    its silent part, from the cut on, whose end state lies near an attractor.
    Returns ``(panels, axis_labels)``, or None when the run file is gone.
    """
    from ..io.runfile import read_run
    from ..plotting import principal_axes

    if not Path(analysis.run_file).is_file() or not analysis.portraits:
        return None
    data = read_run(analysis.run_file)
    ks = sorted(analysis.portraits)
    if any(k not in data.checkpoints for k in ks):
        return None
    net = network_from_config(data.config)
    task = task_from_config(data.config)
    st = analysis.settings
    rng = np.random.default_rng(st["seed"])
    batch = task.sample(int(st["batch_size"]), rng)
    B = batch.batch_size
    final = max(analysis.fixed_points)
    S_final = trajectory_states(net, net.forward(data.checkpoints[final], batch.inputs))
    mean, comps, explained = principal_axes(S_final, 3)
    # probe trials: input off from a random cut time, then probe_steps of silence
    prng = np.random.default_rng(st["seed"] + 1)
    trials = prng.integers(0, B, int(n_probes))
    T = batch.inputs.shape[0]
    cuts = prng.integers(1, T + 1, int(n_probes))
    probe_in = np.zeros((T + int(probe_steps), int(n_probes), task.n_inputs))
    for b, (trial, cut) in enumerate(zip(trials, cuts)):
        probe_in[:cut, b] = batch.inputs[:cut, trial]
    panels = []
    for k in ks:
        params = data.checkpoints[k]
        S = trajectory_states(net, net.forward(params, batch.inputs[:, :n_trials]))
        P = trajectory_states(net, net.forward(params, probe_in))
        # the silent part of each probe: from its cut (state after the last input) on
        silent = np.stack([P[cut:cut + int(probe_steps) + 1, b] for b, cut in enumerate(cuts)], axis=1)
        fp = analysis.fixed_points[k]
        panels.append({"title": f"iteration {k}", "trajectories": (S - mean) @ comps.T,
                       "probes": (silent - mean) @ comps.T, "points": (fp.states - mean) @ comps.T,
                       "stability": fp.stability, "is_fixed": fp.is_fixed})
    labels = tuple(f"PC{i + 1} ({100 * e:.0f}%)" for i, e in enumerate(explained))
    return panels, labels


def make_figures(analysis: RunAnalysis, out_dir, prefix="", *, progress=False) -> list[Path]:
    """Write the loss/GR figure, slow dynamics, phase portraits and speed maps as PNG; returns the paths.

    The phase portraits show three pairwise panels in the first three PCs per
    checkpoint, with probe trials of silence (:func:`_portraits_3pc`, which
    re-runs the network from the run file); without the run file they fall
    back to the stored 2-PC portraits.

    ``progress`` shows a bar on stderr, one step per figure.
    """
    from .. import plotting

    out = Path(out_dir)
    if not out.is_dir():
        raise ConfigError(f"figure folder {str(out)!r} does not exist")
    gr = analysis.gr
    slow = analysis.slow
    slow_panels = {}
    for label in ("initial", "final"):
        if f"{label}_timescales" not in slow:
            continue
        ramp = np.asarray(slow.get(f"{label}_ramping_traces", np.zeros((0, 0))))
        slow_panels[f"{label} (iteration {slow[f'{label}_iteration']})"] = {
            "timescales": np.asarray(slow[f"{label}_timescales"]),
            "ramping_fraction": float(slow[f"{label}_ramping_fraction"]),
            "example_ramping": ramp if ramp.size else None}
    panels = []
    for k in sorted(analysis.portraits):
        pts, fp = project_points(analysis, k)
        panels.append({"title": f"iteration {k}", "trajectories": analysis.portraits[k], "points": pts,
                       "stability": fp.stability, "is_fixed": fp.is_fixed, **analysis.speed_maps[k]})
    ev = analysis.pca["explained"]
    axes = (f"PC1 ({100 * ev[0]:.0f}%)", f"PC2 ({100 * ev[1]:.0f}%)")

    figures = [lambda: plotting.loss_with_gr_events(
        analysis.loss["iterations"], analysis.loss["loss"], gr.iterations, gr.n_stable, gr.distance, gr.events,
        analysis.abrupt.as_dict(), out / f"{prefix}loss_gr.png",
        title=f"{analysis.settings['model']} on {analysis.settings['task']} (seed {analysis.seed})",
        n_required=analysis.settings.get("n_required"))]
    if slow_panels:
        figures.append(lambda: plotting.slow_dynamics(
            slow_panels, out / f"{prefix}slow_dynamics.png",
            time_unit=f"time units, one step = {analysis.config['task'].get('dt', 1.0):g}",
            title=f"slow dynamics in the {slow['epoch']} epoch"))
    portraits3 = _portraits_3pc(analysis)
    if portraits3 is None:  # run file moved: the stored 2-PC portraits
        figures.append(lambda: plotting.phase_portraits(panels, out / f"{prefix}phase_portraits.png",
                                                        axis_labels=axes))
    else:
        figures.append(lambda: plotting.phase_portraits(
            portraits3[0], out / f"{prefix}phase_portraits.png", axis_labels=portraits3[1],
            title="task trials (grey), silent probes (blue, end: black dot) and fixed points"))
    figures.append(lambda: plotting.speed_maps(panels, out / f"{prefix}speed_maps.png", axis_labels=axes))
    paths = []
    with ProgressBar(total=len(figures), disable=not progress, desc="analyze: figures", leave=False) as bar:
        for draw in figures:
            paths.append(draw())
            bar.update(1)
    return paths
