"""All figures (matplotlib, PNG). Plotting stays in this module.

Figures are drawn on their own Agg canvas (:func:`subplots`): this module
never imports pyplot nor selects a backend, so it leaves the user's
matplotlib state alone.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import ConfigError
from .io.atomic import atomic_path


#: Keyword arguments of ``pyplot.subplots`` that belong to the figure, not to its grid of axes.
_FIGURE_KEYS = ("layout", "dpi", "facecolor", "edgecolor", "frameon", "constrained_layout", "tight_layout")


def subplots(nrows: int = 1, ncols: int = 1, *, figsize=None, **kwargs):
    """A new figure and its axes, like ``pyplot.subplots`` but without pyplot.

    The figure has its own Agg canvas, so drawing never touches the user's
    global backend nor pyplot's figure registry (SPEC 11: no process-wide
    side effects).

    Parameters
    ----------
    nrows, ncols : int
        Grid of axes.
    figsize : (float, float) or None
        Width and height in inches (None: matplotlib's default).
    **kwargs
        ``layout``, ``dpi`` and the other figure options go to
        :class:`~matplotlib.figure.Figure`; the rest (``sharex``,
        ``squeeze``, ``gridspec_kw``, ...) to :meth:`Figure.subplots`.

    Returns
    -------
    fig : matplotlib.figure.Figure
    axes : Axes or array of Axes, as ``pyplot.subplots`` returns them

    Examples
    --------
    >>> fig, axes = subplots(1, 2, figsize=(6, 3), squeeze=False)
    >>> axes.shape
    (1, 2)
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig_kw = {k: kwargs.pop(k) for k in _FIGURE_KEYS if k in kwargs}
    fig = Figure(figsize=figsize, **fig_kw)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def _colors() -> list:
    import matplotlib

    return matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]


def _colormap(cmap):
    import matplotlib

    return matplotlib.colormaps.get_cmap(cmap)


def save_figure(fig, path) -> Path:
    """Save ``fig`` as PNG atomically.

    Figures from :func:`subplots` are not registered with pyplot, so there
    is nothing to close: they are freed with their last reference.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    return path


def loss_curves(panels: dict, path, *, ylabel="task loss", title=None) -> Path:
    """One panel per key of ``panels``; each panel maps a condition label to
    a list of (iterations, values, converged_at) curves (one per seed).

    Seeds are thin lines, the dot marks the iteration where the run reached
    criterion; log-scaled loss.
    """
    n = len(panels)
    fig, axes = subplots(1, n, figsize=(4.2 * n, 3.4), sharey=True, squeeze=False)
    colors = _colors()
    for ax, (panel, conditions) in zip(axes[0], panels.items()):
        for ci, (label, curves) in enumerate(conditions.items()):
            c = colors[ci % len(colors)]
            for si, (its, vals, conv) in enumerate(curves):
                ax.plot(its, vals, color=c, lw=0.9, alpha=0.75, label=label if si == 0 else None)
                if conv is not None:
                    idx = np.searchsorted(its, conv)
                    if idx < len(vals):
                        ax.plot([its[idx]], [vals[idx]], "o", color=c, ms=4)
        ax.set_yscale("log")
        ax.set_title(str(panel))
        ax.set_xlabel("training iteration")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(frameon=False, fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def pc_trajectories(panels: dict, *, n_steps: int, path, n_trials=6) -> Path:
    """Trajectories in the plane of the first two PCs, one panel per entry.

    Each value is a (T * B, k) array of PC scores with time-major samples
    (as from ``pca(x.reshape(-1, N))`` of a (T, B, N) array); the first
    ``n_trials`` trials are drawn, each from its start (circle) on.
    """
    n = len(panels)
    fig, axes = subplots(1, n, figsize=(4 * n, 3.6), squeeze=False)
    for ax, (title, scores) in zip(axes[0], panels.items()):
        s = np.asarray(scores).reshape(n_steps, -1, scores.shape[-1])
        for b in range(min(n_trials, s.shape[1])):
            line, = ax.plot(s[:, b, 0], s[:, b, 1], lw=1)
            ax.plot(s[0, b, 0], s[0, b, 1], "o", color=line.get_color(), ms=4)
        ax.set_title(title)
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    fig.tight_layout()
    return save_figure(fig, path)


def _overlay_rates(ax, t, ours, theirs, trial, n_units, colors, labels) -> None:
    """Rates of the first ``n_units`` units in ``trial``: ``ours`` solid, ``theirs`` dashed, one colour per unit."""
    theirs = np.asarray(theirs)
    for k in range(min(n_units, ours.shape[2])):
        c = colors[k % len(colors)]
        ax.plot(t, ours[:, trial, k], color=c, lw=1.6, label=labels[0] if k == 0 else None)
        ax.plot(t, theirs[:, trial, k], "--", color=c, lw=1.0, label=labels[1] if k == 0 else None)
    ax.set_xlabel("time (ms)")
    ax.legend(frameon=False, fontsize=8)


def _overlay_outputs(ax, t, targets, ours, theirs, trial, colors, labels) -> None:
    """Task outputs in ``trial``: targets dotted, ``ours`` solid, ``theirs`` dashed (outputs sit on ``t[1:]``)."""
    theirs = np.asarray(theirs)
    for o in range(ours.shape[2]):
        c = colors[o % len(colors)]
        ax.plot(t[1:], targets[:, trial, o], ":", color="0.5", lw=1.0, label="target" if o == 0 else None)
        ax.plot(t[1:], ours[:, trial, o], color=c, lw=1.6, label=labels[0] if o == 0 else None)
        ax.plot(t[1:], theirs[:, trial, o], "--", color=c, lw=1.0, label=labels[1] if o == 0 else None)
    ax.set_title("task outputs")
    ax.set_xlabel("time (ms)")
    ax.legend(frameon=False, fontsize=8)


def brian2_comparison(traj, result, batch, path, *, mode="rate", time_unit_ms=10.0, figures=None,
                      trial=0, n_units=4) -> Path:
    """Rate network (bioplastic) against its Brian2 export, one trial.

    Panels: rates of ``n_units`` units (solid: bioplastic, dashed: Brian2,
    in spiking mode the population estimate ``r_hat``); the task outputs with
    their targets; in rate mode the max over units of |x_bioplastic -
    x_Brian2| per step (log scale), in spiking mode ``r_hat`` against ``r``
    for all units and steps. ``figures`` (the agreement numbers) go in the
    title.
    """
    T1 = traj.rates.shape[0]
    t = np.arange(T1) * batch.dt * time_unit_ms
    fig, axes = subplots(1, 3, figsize=(14, 3.6))
    colors = _colors()
    ax = axes[0]
    _overlay_rates(ax, t, traj.rates, result["rates"], trial, n_units, colors,
                   ("bioplastic", "Brian2" if mode == "rate" else "Brian2 population r_hat"))
    ax.set_title(f"rates of {min(n_units, traj.rates.shape[2])} units (trial {trial})")
    _overlay_outputs(axes[1], t, batch.targets, traj.outputs, result["outputs"], trial, colors,
                     ("bioplastic", "Brian2"))
    ax = axes[2]
    if mode == "rate":
        diff = np.abs(np.asarray(result["states"]) - traj.states).max(axis=(1, 2))
        ax.semilogy(t, np.maximum(diff, 1e-18), color="k", lw=1.0)
        ax.axhline(1e-8, color="r", ls=":", lw=1.0, label="1e-8")
        ax.set_title("max |x_bioplastic - x_Brian2| (all trials, units)")
        ax.set_xlabel("time (ms)")
        ax.legend(frameon=False, fontsize=8)
    else:
        ax.plot(traj.rates.ravel(), np.asarray(result["rates"]).ravel(), ".", ms=1, alpha=0.2, color="k")
        ax.plot([-1, 1], [-1, 1], "r:", lw=1.0)
        ax.set_xlabel("rate network r")
        ax.set_ylabel("spiking population r_hat")
        ax.set_title("all units, steps and trials")
    if figures:
        keys = ("max_abs_diff", "rate_correlation", "accuracy_spiking", "accuracy_rate", "accuracy_brian2")
        fig.suptitle(f"Brian2 {mode} mode: " + ", ".join(f"{k} = {figures[k]:.3g}" for k in keys if k in figures))
    fig.tight_layout()
    return save_figure(fig, path)


def memory_hold_times(panels: dict, path, *, window_ms: float, title=None) -> Path:
    """Hold time of each flip-flop memory, one point per trial, per panel (e.g. per seed).

    ``panels`` maps a label to ``{pattern_label: [hold times in ms]}``; a
    point at ``window_ms`` (dashed line) was held for the whole window
    (censored). Horizontal bars are medians.
    """
    n = len(panels)
    fig, axes = subplots(1, n, figsize=(4.6 * n, 3.4), sharey=True, squeeze=False)
    rng = np.random.default_rng(0)  # jitter only
    for ax, (label, patterns) in zip(axes[0], panels.items()):
        for x, (pat, times) in enumerate(patterns.items()):
            times = np.asarray(times, dtype=float)
            ax.plot(x + rng.uniform(-0.15, 0.15, times.size), times, "o", ms=3, alpha=0.7, color="C0")
            if times.size:
                ax.plot([x - 0.3, x + 0.3], [np.median(times)] * 2, color="k", lw=1.5)
        ax.axhline(window_ms, color="r", ls="--", lw=1.0)
        ax.set_ylim(0, 1.05 * window_ms)
        ax.set_xticks(range(len(patterns)))
        ax.set_xticklabels(list(patterns), rotation=45, fontsize=8)
        ax.set_title(str(label))
        ax.set_xlabel("memory (signs of the 3 bits)")
    axes[0][0].set_ylabel("hold time (ms)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


# -- geometry of memory (bioplastic.analysis) ----------------------------------
STABILITY_STYLE = {
    "stable": {"color": "#1f4e9e", "marker": "o", "label": "stable"},
    "saddle": {"color": "#d62728", "marker": "X", "label": "saddle"},
    "unstable": {"color": "#ff7f0e", "marker": "^", "label": "unstable"},
    "marginal": {"color": "#2ca02c", "marker": "D", "label": "marginal"},
}


def _running_median_plot(y, w):
    if len(y) < w or w < 3:
        return np.asarray(y)
    h = w // 2
    pad = np.pad(np.asarray(y, dtype=float), h, mode="edge")
    return np.median(np.lib.stride_tricks.sliding_window_view(pad, 2 * h + 1), axis=1)


def loss_with_gr_events(iterations, loss, ckpt_iterations, n_stable, distance, events, abrupt: dict, path, *,
                        title=None, n_required=None) -> Path:
    """Loss curve with the plateau shaded, the drop and the GR events marked.

    Top: task loss (log scale; thin: raw, thick: running median), the
    search-phase plateau shaded, the drop iteration as a solid line, GR
    events as dashed lines. Bottom: stable fixed points per checkpoint (steps),
    the number the task needs (``n_required``, dotted), and the geometry
    distance to the previous checkpoint (dots, right axis).
    """
    fig, (ax, bx) = subplots(2, 1, figsize=(7.5, 5.2), sharex=True, gridspec_kw={"height_ratios": [2, 1.2]})
    it = np.asarray(iterations)
    ax.plot(it, loss, color="0.7", lw=0.6)
    smooth = _running_median_plot(loss, max(3, len(it) // 100 * 2 + 1))
    ax.plot(it, smooth, color="k", lw=1.3, label="task loss")
    ax.set_yscale("log")
    finite = np.asarray(loss)[np.isfinite(loss) & (np.asarray(loss) > 0)]
    if finite.size:  # keep rare loss spikes from squashing the curve
        lo, hi = np.quantile(finite, [0.002, 0.995])
        ax.set_ylim(lo / 1.5, max(hi, float(np.max(smooth))) * 1.5)
    if abrupt.get("detected"):
        ax.axvspan(abrupt["plateau_start"], abrupt["plateau_end"], color="#fde49c", alpha=0.6,
                   label="search phase (plateau)")
        ax.axvline(abrupt["drop_iteration"], color="#d62728", lw=1.8,
                   label=f"drop ({abrupt['drop_size']:.2f} decades)")
    for i, e in enumerate(np.asarray(events)):
        for a in (ax, bx):
            a.axvline(e, color="#1f4e9e", ls="--", lw=0.9, label="GR event" if (i == 0 and a is ax) else None)
    if not abrupt.get("detected"):
        ax.text(0.99, 0.97, "no abrupt drop detected", transform=ax.transAxes, ha="right", va="top", fontsize=8)
    ax.set_ylabel("task loss")
    ax.legend(frameon=False, fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    bx.step(ckpt_iterations, n_stable, where="post", color="#1f4e9e", lw=1.4, label="stable fixed points")
    if n_required is not None:
        bx.axhline(n_required, color="#1f4e9e", ls=":", lw=1.2, label=f"memories the task needs ({n_required})")
    bx.set_ylabel("stable fixed points", color="#1f4e9e")
    cx = bx.twinx()
    cx.plot(ckpt_iterations, distance, "o", color="#d62728", ms=3, label="geometry distance")
    h1, l1 = bx.get_legend_handles_labels()
    h2, l2 = cx.get_legend_handles_labels()
    bx.legend(h1 + h2, l1 + l2, frameon=False, fontsize=7, loc="upper left")
    cx.set_ylabel("geometry distance", color="#d62728")
    cx.set_ylim(-0.03, 1.03)
    bx.set_xlabel("training iteration")
    bx.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def slow_dynamics(panels: dict, path, *, time_unit="steps", title=None) -> Path:
    """Autocorrelation timescales and ramping units, before and after training.

    ``panels`` maps a label (e.g. "initial (iteration 0)", "final") to
    ``{"timescales": (N,) array (inf: slower than the epoch, NaN: silent),
    "ramping_fraction": float, "example": (P,) or None, "example_ramping":
    (P, k) trial-averaged traces of up to k ramping units}``. Left: cumulative
    distribution of the units' timescales (censored units at the right edge);
    right: trial-averaged activity of example ramping units per label.
    """
    fig, (ax, bx) = subplots(1, 2, figsize=(10, 3.6))
    finite_max = max([float(np.nanmax(np.where(np.isinf(p["timescales"]), np.nan, p["timescales"])))
                      for p in panels.values() if np.any(np.isfinite(p["timescales"]))] or [1.0])
    edge = finite_max * 1.15
    for ci, (label, p) in enumerate(panels.items()):
        tau = np.asarray(p["timescales"], dtype=float)
        tau = tau[~np.isnan(tau)]
        c = f"C{ci % 10}"
        if tau.size:
            shown = np.sort(np.where(np.isinf(tau), edge, tau))
            ax.step(shown, np.arange(1, tau.size + 1) / tau.size, where="post", color=c,
                    label=f"{label}: median {np.median(tau):.3g}, {np.isinf(tau).mean():.0%} censored, "
                          f"{p['ramping_fraction']:.0%} ramping")
        tr = p.get("example_ramping")
        if tr is not None and np.size(tr):
            tr = np.asarray(tr)
            for k in range(tr.shape[1]):
                bx.plot(np.arange(tr.shape[0]), tr[:, k], color=c, lw=1, alpha=0.8,
                        label=f"{label}: ramping unit" if k == 0 else None)
    ax.axvline(edge, color="0.6", ls=":", lw=1, label="slower than the epoch (censored)")
    ax.set_xlabel(f"autocorrelation timescale ({time_unit})")
    ax.set_ylabel("fraction of units")
    ax.grid(alpha=0.3)
    ax.legend(frameon=False, fontsize=7, loc="upper left")
    bx.set_xlabel(f"time in the epoch ({time_unit})")
    bx.set_ylabel("trial-averaged rate")
    bx.grid(alpha=0.3)
    if bx.lines:
        bx.legend(frameon=False, fontsize=7)
    else:
        bx.text(0.5, 0.5, "no ramping unit", transform=bx.transAxes, ha="center", va="center")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def paired_conditions(panels: dict, path, *, ylabel: str, title=None, log=False) -> Path:
    """Per-seed values of paired conditions, one panel per group, seeds joined by lines.

    ``panels`` maps a panel title to ``{condition: [value per seed]}`` (same
    seeds in every condition, None/NaN where missing); the bar is the median.
    """
    n = len(panels)
    fig, axes = subplots(1, n, figsize=(3.3 * n + 0.8, 3.5), squeeze=False)
    for ax, (name, conds) in zip(axes[0], panels.items()):
        labels = list(conds)
        vals = np.array([[np.nan if v is None else float(v) for v in conds[c]] for c in labels])
        for s in range(vals.shape[1]):
            ax.plot(range(len(labels)), vals[:, s], color="0.7", lw=0.7, zorder=1,
                    label="one seed (paired)" if s == 0 else None)
        for i in range(len(labels)):
            v = vals[i][np.isfinite(vals[i])]
            ax.plot(np.full(v.size, i), v, "o", color=f"C{i % 10}", ms=4, zorder=2)
            if v.size:
                ax.plot([i - 0.25, i + 0.25], [np.median(v)] * 2, color="k", lw=1.6, zorder=3,
                        label="median" if i == 0 else None)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, fontsize=8)
        ax.set_title(str(name), fontsize=9)
        ax.set_ylabel(ylabel, fontsize=8)
        if log:
            ax.set_yscale("log")
        ax.grid(alpha=0.3, axis="y")
    axes[0][0].legend(frameon=False, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def _draw_points(ax, points, stability, is_fixed, seen, dims=(0, 1)):
    points = np.asarray(points)
    i, j = dims
    if points.size == 0:
        return
    slow = ~np.asarray(is_fixed, dtype=bool)
    if slow.any():
        ax.scatter(points[slow, i], points[slow, j], s=14, marker="x", color="0.45", lw=0.8,
                   label=None if "slow" in seen else "slow point", zorder=3)
        seen.add("slow")
    for name, st in STABILITY_STYLE.items():
        sel = (~slow) & (np.asarray(stability) == name)
        if sel.any():
            ax.scatter(points[sel, i], points[sel, j], s=42, marker=st["marker"], color=st["color"],
                       edgecolor="white", lw=0.6, label=None if name in seen else st["label"], zorder=4)
            seen.add(name)


def principal_axes(X, n=3):
    """PCA of the samples in ``X`` (..., D): ``(mean (D,), components (n, D), explained (n,))``.

    Components are orthonormal rows (zero rows when D or the number of
    samples is below ``n``); ``explained`` is each one's fraction of the
    total variance. Project with ``(X - mean) @ components.T``.

    Examples
    --------
    >>> X = np.random.default_rng(0).standard_normal((50, 4, 6))
    >>> mean, comps, ev = principal_axes(X, 3)
    >>> mean.shape, comps.shape, ev.shape, bool(ev[0] >= ev[1] >= ev[2])
    ((6,), (3, 6), (3,), True)
    """
    X = np.asarray(X, dtype=float)
    X = X.reshape(-1, X.shape[-1])
    mean = X.mean(axis=0)
    _, s, vt = np.linalg.svd(X - mean, full_matrices=False)
    var = s ** 2
    total = var.sum()
    comps = np.zeros((n, X.shape[1]))
    explained = np.zeros(n)
    m = min(n, vt.shape[0])
    comps[:m] = vt[:m]
    if total > 0:
        explained[:m] = var[:m] / total
    return mean, comps, explained


def phase_portraits(panels: list, path, *, axis_labels=("PC1", "PC2"), title=None) -> Path:
    """Trajectories (grey), silent probe trials and fixed points coloured by stability.

    Each panel (one per checkpoint) is a dict with ``title``, ``trajectories``
    (T+1, B, k) task trials, ``points`` (K, k), ``stability`` (K,) labels and
    ``is_fixed`` (K,), and optionally ``probes`` (P+1, B', k): trajectories
    under zero input (silence), drawn in blue with their end states as black
    dots, so the attractors show where the probes settle.

    With k = 2 the figure has one row of panels (PC1 against PC2). With
    k >= 3 each checkpoint gets a row of three pairwise panels (PC1-PC2,
    PC1-PC3, PC2-PC3), so memories that differ along the third PC stay apart.
    ``axis_labels`` names the axes (missing names become "PC3"...).
    """
    n = len(panels)
    dims = min(int(np.asarray(panels[0]["trajectories"]).shape[-1]), 3) if n else 2
    labels = list(axis_labels)[:dims] + [f"PC{i + 1}" for i in range(len(axis_labels), dims)]
    pairs = [(0, 1)] if dims < 3 else [(0, 1), (0, 2), (1, 2)]
    if len(pairs) == 1:
        fig, axes = subplots(1, n, figsize=(3.4 * n, 3.4), squeeze=False)
        grid = [[ax] for ax in axes[0]]
    else:
        fig, axes = subplots(n, 3, figsize=(10.2, 3.1 * n + 0.4), squeeze=False)
        grid = list(axes)
    seen = set()
    for row, p in zip(grid, panels):
        tr = np.asarray(p["trajectories"])
        probes = p.get("probes")
        for c, (ax, (i, j)) in enumerate(zip(row, pairs)):
            for b in range(tr.shape[1]):
                ax.plot(tr[:, b, i], tr[:, b, j], color="0.6", lw=0.5, alpha=0.45,
                        label=None if "trial" in seen else "task trial")
                seen.add("trial")
            if probes is not None and np.size(probes):
                pr = np.asarray(probes)
                for b in range(pr.shape[1]):
                    ax.plot(pr[:, b, i], pr[:, b, j], color="#4c9be8", lw=0.7, alpha=0.7,
                            label=None if "probe" in seen else "probe in silence (zero input)")
                    seen.add("probe")
                ax.scatter(pr[-1, :, i], pr[-1, :, j], s=9, color="k", zorder=3.5,
                           label=None if "end" in seen else "probe end state")
                seen.add("end")
            _draw_points(ax, p["points"], p["stability"], p["is_fixed"], seen, dims=(i, j))
            ax.set_xlabel(labels[i], fontsize=8)
            ax.set_ylabel(labels[j], fontsize=8)
            ax.tick_params(labelsize=7)
            ax.set_aspect("equal", adjustable="datalim")
            if c == 0 or len(pairs) == 1:
                ax.set_title(p["title"], fontsize=9, loc="left" if len(pairs) > 1 else "center")
    fig.legend(frameon=False, fontsize=7, loc="lower center", ncol=4, bbox_to_anchor=(0.5, -0.04 if n > 1 else -0.1))
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def speed_maps(panels: list, path, *, axis_labels=("PC1", "PC2"), title=None) -> Path:
    """log10 speed |F(x) - x| on a grid in the PCA plane, one panel per checkpoint.

    Each panel is a dict as for :func:`phase_portraits` plus ``a`` (G,),
    ``b`` (G,) grid coordinates and ``speed`` (G, G) (rows: b, columns: a).
    """
    n = len(panels)
    fig, axes = subplots(1, n, figsize=(3.6 * n, 3.3), squeeze=False)
    seen = set()
    logs = [np.log10(np.maximum(np.asarray(p["speed"]), 1e-12)) for p in panels]
    lo = min(float(np.min(v)) for v in logs)
    hi = max(float(np.max(v)) for v in logs)
    im = None
    for ax, p, ls in zip(axes[0], panels, logs):
        im = ax.pcolormesh(p["a"], p["b"], ls, cmap="viridis", vmin=lo, vmax=hi, shading="auto")
        tr = np.asarray(p["trajectories"])
        for b in range(tr.shape[1]):
            ax.plot(tr[:, b, 0], tr[:, b, 1], color="white", lw=0.5, alpha=0.7)
        _draw_points(ax, p["points"], p["stability"], p["is_fixed"], seen)
        ax.set_xlim(p["a"][0], p["a"][-1])
        ax.set_ylim(p["b"][0], p["b"][-1])
        ax.set_title(p["title"], fontsize=9)
        ax.set_xlabel(axis_labels[0])
    axes[0][0].set_ylabel(axis_labels[1])
    fig.colorbar(im, ax=list(axes[0]), label="log10 speed |F(x) - x| per step", shrink=0.85)
    if title:
        fig.suptitle(title)
    return save_figure(fig, path)


def lead_times(groups: dict, path, *, title=None, null_leads: dict | None = None) -> Path:
    """GR lead time before the drop, one column per condition, one dot per seed.

    The lead of a seed is ``drop_iteration - t_last``, with ``t_last`` the last
    GR event in the search window [plateau start, drop iteration].

    Parameters
    ----------
    groups : dict
        Maps a label to a dict with ``leads`` (list of float, seeds where GR
        preceded the drop), ``n_not_preceded`` and ``n_no_drop``; the last
        two are printed under the label.
    path : str or Path, PNG written
    title : str, optional
    null_leads : dict, optional
        Maps a label (of ``groups``) to the chance level of the lead: a dict
        with ``q05``, ``q50`` and ``q95`` (quantiles of the lead under the
        shifted-events null, e.g. ``GRNullResult.null_lead_quantiles`` from
        :func:`bioplastic.analysis.gr_null.gr_precedence_test`), or that
        result's ``as_dict()``. Drawn as a grey band (5-95 %) and a dashed
        line (median); labels without an entry, or with None values, get no
        band.

    Returns
    -------
    Path
    """
    labels = list(groups)
    null_leads = {} if null_leads is None else null_leads
    unknown = sorted(set(map(str, null_leads)) - set(map(str, labels)))
    if unknown:
        raise ConfigError(f"null_leads has labels that are not groups: {unknown} (groups: {labels})")
    fig, ax = subplots(figsize=(max(3.0, 1.5 * len(labels)) + 3.2, 3.8))  # + room for the legend
    rng = np.random.default_rng(0)
    seen = set()

    def once(name):  # legend label for the first mark of each kind only
        if name in seen:
            return None
        seen.add(name)
        return name

    for i, lab in enumerate(labels):
        q = null_leads.get(lab)
        if q is not None:
            q = q.get("null_lead_quantiles", q)
            lo, med, hi = (q.get(k) for k in ("q05", "q50", "q95"))
            if lo is not None and hi is not None and np.isfinite(lo) and np.isfinite(hi):
                ax.fill_between([i - 0.35, i + 0.35], [lo] * 2, [hi] * 2, color="0.8", alpha=0.7, lw=0, zorder=1,
                                label=once("chance (shifted-event null), 5-95%"))
            if med is not None and np.isfinite(med):
                ax.plot([i - 0.35, i + 0.35], [med] * 2, color="0.35", lw=1.2, ls="--", zorder=2,
                        label=once("chance (shifted-event null), median"))
        v = np.asarray(groups[lab]["leads"], dtype=float)
        if v.size:
            ax.plot(i + 0.08 * rng.standard_normal(v.size), v, "o", color="#1f4e9e", ms=5, alpha=0.8, zorder=3,
                    label=once("seed (GR preceded the drop)"))
            ax.plot([i - 0.25, i + 0.25], [np.median(v)] * 2, color="k", lw=1.5, zorder=4,
                    label=once("median over seeds"))
    ax.axhline(0, color="0.5", lw=0.8, zorder=0, label="drop iteration (lead 0)")
    ax.set_xticks(range(len(labels)))
    wrapped = {lab: str(lab).replace(", ", "\n") for lab in labels}
    ax.set_xticklabels([f"{wrapped[lab]}\nGR not before: {groups[lab]['n_not_preceded']}\n"
                        f"no drop: {groups[lab]['n_no_drop']}" for lab in labels], fontsize=7)
    ax.set_xlim(-0.6, len(labels) - 0.4)
    ax.set_ylabel("lead before the drop (training iterations)")
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), framealpha=0.8)
    if title:
        import textwrap

        fig.suptitle(textwrap.fill(title, 80), fontsize=9)
    fig.tight_layout()
    return save_figure(fig, path)


# -- local learning rules (protocols/local_rules_tcr.py) ----------------------------
def iterations_to_criterion(groups: dict, path, *, budget: int, title=None) -> Path:
    """Iterations to criterion per condition, one panel per group.

    ``groups`` maps a panel title to ``{condition: [iterations or None]}``
    (one entry per seed). Solved runs are filled dots; runs that did not
    reach criterion within ``budget`` are open markers drawn at the budget
    (censored); the bar is the median over seeds (unsolved counted at the
    budget).
    """
    n = len(groups)
    fig, axes = subplots(1, n, figsize=(max(3.6, 1.1 * max(len(c) for c in groups.values()) + 1.5) * n, 3.6),
                         squeeze=False)
    for ax, (panel, conds) in zip(axes[0], groups.items()):
        for ci, (label, its) in enumerate(conds.items()):
            vals = np.array([budget if i is None else i for i in its], dtype=float)
            jitter = np.linspace(-0.15, 0.15, len(vals)) if len(vals) > 1 else np.zeros(1)
            solved = np.array([i is not None for i in its])
            ax.plot(ci + jitter[solved], vals[solved], "o", color="C0", ms=5)
            ax.plot(ci + jitter[~solved], vals[~solved], "o", mfc="none", color="C3", ms=5)
            if len(vals):
                ax.plot([ci - 0.25, ci + 0.25], [np.median(vals)] * 2, color="k", lw=1.5)
        ax.axhline(budget, color="C3", lw=0.8, ls="--")
        ax.set_xticks(range(len(conds)))
        ax.set_xticklabels(list(conds), rotation=30, ha="right", fontsize=8)
        ax.set_title(str(panel), fontsize=10)
        ax.set_ylabel("iterations to criterion")
        ax.grid(alpha=0.3, axis="y")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def rule_diagnostics(panels: dict, path, *, title=None) -> Path:
    """Cosine alignment with the BPTT gradient and relative update variance.

    ``panels`` maps a rule label to a list of ``(iterations, alignment,
    relative_variance)`` curves (one per seed; NaN where not measured).
    """
    fig, axes = subplots(1, 2, figsize=(9, 3.4), squeeze=False)
    for ci, (label, curves) in enumerate(panels.items()):
        c = f"C{ci % 10}"
        for si, (its, align, rel) in enumerate(curves):
            ok = np.isfinite(align)
            axes[0][0].plot(np.asarray(its)[ok], np.asarray(align)[ok], color=c, lw=0.8, alpha=0.7,
                            label=label if si == 0 else None)
            ok = np.isfinite(rel) & (np.asarray(rel) > 0)
            axes[0][1].plot(np.asarray(its)[ok], np.asarray(rel)[ok], color=c, lw=0.8, alpha=0.7)
    axes[0][0].set_ylabel("cos(update, BPTT gradient)")
    axes[0][0].axhline(0, color="k", lw=0.5)
    axes[0][1].set_ylabel("update variance / |update|^2")
    axes[0][1].set_yscale("log")
    for ax in axes[0]:
        ax.set_xlabel("training iteration")
        ax.grid(alpha=0.3)
    axes[0][0].legend(frameon=False, fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def freeze_in_traces(panels: dict, path, *, title=None) -> Path:
    """lambda_TCR(t), TCR measure and accuracy of freeze-in runs.

    ``panels`` maps a condition to a list of ``(iterations, lambda_tcr,
    tcr_measure, accuracy, diverged_at)`` per seed; a cross marks divergence.
    """
    fig, axes = subplots(1, 3, figsize=(12, 3.4), squeeze=False)
    for ci, (label, curves) in enumerate(panels.items()):
        c = f"C{ci % 10}"
        for si, (its, lam, tcr, acc, div) in enumerate(curves):
            for ax, y in zip(axes[0], (lam, tcr, acc)):
                y = np.asarray(y, dtype=float)
                ok = np.isfinite(y)
                ax.plot(np.asarray(its)[ok], y[ok], color=c, lw=0.8, alpha=0.75, label=label if si == 0 else None)
                if div is not None and ok.any():
                    ax.plot([np.asarray(its)[ok][-1]], [y[ok][-1]], "x", color=c, ms=7)
    for ax, lab in zip(axes[0], ("lambda_TCR (STP strength multiplier)", "mean squared rate change", "accuracy")):
        ax.set_ylabel(lab)
        ax.set_xlabel("training iteration")
        ax.grid(alpha=0.3)
    axes[0][1].set_yscale("log")
    axes[0][0].legend(frameon=False, fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def loss_overview(panels: dict, path, *, title=None) -> Path:
    """One panel per key (task); each maps a label (model) to a list of
    (iterations, loss, drop_iteration or None) per seed.

    Thin lines: running median of each seed's loss (raw losses spike over
    many decades in unstable runs); dots: detected drop iterations. The y
    range ignores the top 0.5 % of losses.
    """
    n = len(panels)
    fig, axes = subplots(1, n, figsize=(4.2 * n, 3.4), squeeze=False)
    colors = _colors()
    for ax, (panel, conditions) in zip(axes[0], panels.items()):
        lows, highs = [], []
        for ci, (label, curves) in enumerate(conditions.items()):
            c = colors[ci % len(colors)]
            for si, (its, vals, drop) in enumerate(curves):
                its = np.asarray(its)
                sm = _running_median_plot(vals, max(3, len(its) // 100 * 2 + 1))
                ax.plot(its, sm, color=c, lw=0.9, alpha=0.8, label=label if si == 0 else None)
                if drop is not None:
                    ax.plot([drop], [np.interp(drop, its, sm)], "o", color=c, ms=5, mec="k", mew=0.5)
                good = sm[np.isfinite(sm) & (sm > 0)]
                if good.size:
                    lows.append(np.min(good))
                    highs.append(np.quantile(good, 0.995))
        ax.set_yscale("log")
        if lows:
            ax.set_ylim(min(lows) / 1.5, max(highs) * 1.5)
        ax.set_title(str(panel))
        ax.set_xlabel("training iteration")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, fontsize=8)
    axes[0][0].set_ylabel("task loss (running median)")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


# -- grids of cells (protocols/search_phase.py, tcr_regimes.py) -------------------
def cell_heatmaps(panels: dict, path, *, colorbar_label: str, vmin=0.0, vmax=1.0, cmap="viridis",
                  title=None) -> Path:
    """One heatmap per panel: rows x columns of cells, a value per cell, text in it.

    ``panels`` maps a panel title to ``{"rows": [labels], "cols": [labels],
    "values": (R, C) array (NaN: not run, drawn grey), "text": (R, C) list of
    str, "xlabel": str, "ylabel": str}``. One colour scale for all panels.
    """
    n = len(panels)
    ncols = min(n, 3)
    nrows = -(-n // ncols)
    first = next(iter(panels.values()))
    cw, rh = 1.0 * len(first["cols"]) + 2.2, 0.45 * len(first["rows"]) + 1.6
    fig, axes = subplots(nrows, ncols, figsize=(cw * ncols + 1.2, rh * nrows + 0.6), squeeze=False,
                         layout="constrained")
    cm = _colormap(cmap).with_extremes(bad="0.85")
    im = None
    for ax, (name, p) in zip(axes.ravel(), panels.items()):
        vals = np.ma.masked_invalid(np.asarray(p["values"], dtype=float))
        im = ax.imshow(vals, cmap=cm, vmin=vmin, vmax=vmax, aspect="auto")
        for i in range(vals.shape[0]):
            for j in range(vals.shape[1]):
                txt = p["text"][i][j]
                if txt:
                    dark = vals.mask[i, j] or (vals[i, j] - vmin) / max(vmax - vmin, 1e-12) < 0.55
                    ax.text(j, i, txt, ha="center", va="center", fontsize=6.5, color="w" if dark else "k")
        ax.set_xticks(range(len(p["cols"])))
        ax.set_xticklabels(p["cols"], fontsize=7, rotation=30, ha="right")
        ax.set_yticks(range(len(p["rows"])))
        ax.set_yticklabels(p["rows"], fontsize=7)
        ax.set_xlabel(p.get("xlabel", ""), fontsize=8)
        ax.set_ylabel(p.get("ylabel", ""), fontsize=8)
        ax.set_title(str(name), fontsize=9)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    if im is not None:
        cb = fig.colorbar(im, ax=axes, shrink=0.8, pad=0.02)
        cb.set_label(colorbar_label, fontsize=8)
    if title:
        import textwrap

        fig.suptitle(textwrap.fill(title, 110), fontsize=9)
    return save_figure(fig, path)


def outcome_bars(panels: dict, path, *, title=None,
                 colors=(("solved", "C2"), ("collapsed", "C1"), ("diverged", "C3"), ("unsolved", "0.7"))) -> Path:
    """How runs ended: one stacked horizontal bar per condition, one panel per key.

    ``panels`` maps a panel title to ``{condition: {outcome: count}}`` with
    outcomes among solved, collapsed, diverged, unsolved; bars show fractions
    of the condition's runs, with the counts written in the segments.
    """
    n = len(panels)
    rows = max(len(c) for c in panels.values())
    fig, axes = subplots(1, n, figsize=(4.6 * n, 0.32 * rows + 1.4), squeeze=False)
    for ax, (panel, conds) in zip(axes[0], panels.items()):
        labels = list(conds)
        for i, label in enumerate(labels):
            counts = conds[label]
            total = max(sum(counts.values()), 1)
            left = 0.0
            for outcome, color in colors:
                k = counts.get(outcome, 0)
                if k:
                    ax.barh(i, k / total, left=left, color=color, edgecolor="w",
                            label=outcome if outcome not in ax.get_legend_handles_labels()[1] else None)
                    ax.text(left + k / total / 2, i, str(k), ha="center", va="center", fontsize=7)
                left += k / total
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("fraction of runs")
        ax.set_title(str(panel), fontsize=10)
    axes[0][-1].legend(frameon=False, fontsize=7, loc="lower right")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return save_figure(fig, path)


def lif_comparison(traj, result, batch, path, *, time_unit_ms=10.0, n_per_unit=1, figures=None, trial=0,
                   n_units=4) -> Path:
    """Rate network against its LIF conversion, one trial, in four panels.

    (a) spike raster of trial 0 (neurons grouped by rate unit, time in ms);
    (b) filtered spike rates ``r_hat`` (dashed) against the rate units ``r``
    (solid) for ``n_units`` units; (c) task outputs decoded from spikes
    (dashed) and of the rate network (solid) with the targets (dotted);
    (d) the firing-rate distribution of all neurons (Hz). ``figures`` (the
    agreement numbers) go in the title.
    """
    T1 = traj.rates.shape[0]
    t = np.arange(T1) * batch.dt * time_unit_ms
    fig, axes = subplots(1, 4, figsize=(18, 3.8))
    colors = _colors()
    ax = axes[0]
    if "spike_i" in result and len(result["spike_i"]):
        ax.plot(np.asarray(result["spike_t"]) * time_unit_ms, np.asarray(result["spike_i"]) / n_per_unit, "|",
                ms=2, color="k", alpha=0.6)
    ax.set_xlim(0, t[-1])
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("rate unit (neurons stacked)" if n_per_unit > 1 else "neuron = rate unit")
    ax.set_title(f"spikes, trial {trial}")
    ax = axes[1]
    _overlay_rates(ax, t, traj.rates, result["rates"], trial, n_units, colors,
                   ("rate unit r", "LIF filtered spikes r_hat"))
    ax.set_ylabel("rate (units of phi)")
    ax.set_title(f"{min(n_units, traj.rates.shape[2])} units")
    _overlay_outputs(axes[2], t, batch.targets, traj.outputs, result["outputs"], trial, colors,
                     ("rate network", "LIF network"))
    axes[2].set_ylabel("output y (task units)")
    ax = axes[3]
    rates = np.asarray(result["neuron_rate_hz"])
    ax.hist(rates, bins=30, color="0.4")
    ax.set_xlabel("firing rate per neuron (Hz)")
    ax.set_ylabel("neurons")
    ax.set_title(f"all neurons and trials (mean {rates.mean():.1f} Hz)")
    if figures:
        keys = ("accuracy_lif", "accuracy_rate", "accuracy_mean_field", "rate_correlation", "isi_cv_median")
        fig.suptitle("Brian2 LIF mode: " + ", ".join(f"{k} = {figures[k]:.3g}" for k in keys if k in figures))
    fig.tight_layout()
    return save_figure(fig, path)


# -- training curves of one run (`bioplastic plot RUN.h5`) ---------------------------
def _finite_xy(history, column):
    its = np.asarray(history["iteration"], dtype=float)
    y = np.asarray(history[column], dtype=float)
    ok = np.isfinite(y)
    return its[ok], y[ok]


def curve_panels(history: dict) -> list[str]:
    """Panels :func:`training_curves` draws for ``history``, in order.

    ``"loss"`` (needs ``task_loss`` or ``loss``), ``"accuracy"`` (``accuracy``
    or ``eval_accuracy``), ``"tcr"`` (``lambda_tcr`` or ``tcr_loss``) and
    ``"alignment"`` (``alignment``, recorded by local rules); a panel is listed
    only when one of its columns has a finite value.

    Examples
    --------
    >>> curve_panels({"iteration": [0, 1], "task_loss": [1.0, 0.5], "alignment": [float("nan")] * 2})
    ['loss']
    """
    if "iteration" not in history:
        raise ConfigError(f"history has no 'iteration' column; columns: {sorted(history)}")
    wanted = {"loss": ("task_loss", "loss", "eval_loss"), "accuracy": ("accuracy", "eval_accuracy"),
              "tcr": ("lambda_tcr", "tcr_loss"), "alignment": ("alignment",)}
    return [name for name, cols in wanted.items()
            if any(c in history and np.isfinite(np.asarray(history[c], dtype=float)).any() for c in cols)]


def training_curves(history: dict, path, *, title=None, criterion=None) -> Path:
    """Training curves of one run, one panel per kind of column in its history.

    Panels (those :func:`curve_panels` finds): task loss per update (thin:
    raw, thick: running median; dots: held-out ``eval_loss``; dashed: total
    loss with the TCR term, when it differs), log scale; training accuracy
    per update and held-out accuracy at the evaluations, with the task's
    ``criterion`` (dotted); the TCR measure (mean squared rate change) with
    lambda_TCR on the right axis; for local rules, the cosine alignment of the
    rule's update with the BPTT gradient and the relative update variance
    (right axis).

    Parameters
    ----------
    history : dict of 1-D arrays, a run file's history (``iteration`` plus any
        of :data:`bioplastic.training.HISTORY_COLUMNS` and the local-rule
        columns ``alignment``, ``update_variance``)
    path : str or Path, PNG written
    title : str, optional
    criterion : float, optional, accuracy criterion drawn on the accuracy panel

    Returns
    -------
    Path

    Raises
    ------
    ConfigError
        If the history has no iteration column or no column to draw.
    """
    names = curve_panels(history)
    if not names:
        raise ConfigError(f"history has no curve to draw (columns: {sorted(history)})")
    n = len(names)
    fig, axes = subplots(1, n, figsize=(4.3 * n, 3.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        if name == "loss":
            col = "task_loss" if "task_loss" in history else "loss"
            if col in history:
                it, y = _finite_xy(history, col)
                ax.plot(it, y, color="0.7", lw=0.6)
                ax.plot(it, _running_median_plot(y, max(3, len(it) // 50 * 2 + 1)), color="k", lw=1.4,
                        label="task loss (running median)")
            if "loss" in history and col != "loss" and "task_loss" in history:
                it, y = _finite_xy(history, "loss")
                _, t = _finite_xy(history, "task_loss")
                if y.shape == t.shape and not np.allclose(y, t):
                    ax.plot(it, _running_median_plot(y, max(3, len(it) // 50 * 2 + 1)), "--", color="C1",
                            lw=1.0, label="total loss (task + TCR)")
            if "eval_loss" in history:
                it, y = _finite_xy(history, "eval_loss")
                ax.plot(it, y, "o", color="C3", ms=3.5, label="held-out loss")
            if ax.lines and all(np.all(np.asarray(line.get_ydata()) > 0) for line in ax.lines):
                ax.set_yscale("log")
            ax.set_ylabel("loss")
        elif name == "accuracy":
            if "accuracy" in history:
                it, y = _finite_xy(history, "accuracy")
                ax.plot(it, y, color="0.6", lw=0.7, label="training batch")
            if "eval_accuracy" in history:
                it, y = _finite_xy(history, "eval_accuracy")
                ax.plot(it, y, "o-", color="C0", ms=3.5, lw=1.2, label="held-out")
            if criterion is not None:
                ax.axhline(float(criterion), color="C2", ls=":", lw=1.2, label=f"criterion ({float(criterion):g})")
            ax.set_ylim(-0.02, 1.02)
            ax.set_ylabel("accuracy")
        elif name == "tcr":
            if "tcr_loss" in history:
                it, y = _finite_xy(history, "tcr_loss")
                ax.plot(it, y, color="C4", lw=1.0, label="TCR measure (mean squared rate change)")
                if y.size and np.all(y > 0):
                    ax.set_yscale("log")
            ax.set_ylabel("TCR measure", color="C4")
            if "lambda_tcr" in history:
                it, lam = _finite_xy(history, "lambda_tcr")
                bx = ax.twinx()
                off = lam.size == 0 or not np.any(lam != 0)
                bx.plot(it, lam, color="k", lw=1.2, ls="--",
                        label="lambda_TCR" + (" (0: TCR off)" if off else ""))
                bx.set_ylabel("lambda_TCR")
                bx.set_ylim(-0.05, 1.0 if off else 1.15 * float(np.max(np.abs(lam))))
                h1, l1 = ax.get_legend_handles_labels()
                h2, l2 = bx.get_legend_handles_labels()
                ax.legend(h1 + h2, l1 + l2, frameon=False, fontsize=7, loc="best")
        elif name == "alignment":
            it, y = _finite_xy(history, "alignment")
            ax.plot(it, y, "o-", color="C0", ms=3, lw=1.0, label="cos(update, BPTT gradient)")
            ax.axhline(0, color="0.5", lw=0.7)
            ax.set_ylim(min(-0.1, float(np.min(y)) - 0.05), 1.02)
            ax.set_ylabel("alignment with BPTT")
            if "update_variance" in history:
                it, v = _finite_xy(history, "update_variance")
                ok = v > 0
                if ok.any():
                    bx = ax.twinx()
                    bx.plot(it[ok], v[ok], "s:", color="C3", ms=3, lw=0.8, label="update variance / |update|^2")
                    bx.set_yscale("log")
                    bx.set_ylabel("relative update variance", color="C3")
                    h1, l1 = ax.get_legend_handles_labels()
                    h2, l2 = bx.get_legend_handles_labels()
                    ax.legend(h1 + h2, l1 + l2, frameon=False, fontsize=7, loc="lower right")
        if ax.get_legend() is None and ax.get_legend_handles_labels()[1]:
            ax.legend(frameon=False, fontsize=7)
        ax.set_xlabel("training iteration")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)
