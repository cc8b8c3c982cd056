"""All figures (matplotlib, Agg backend, PNG). Plotting stays in this module."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .io.atomic import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path) -> Path:
    """Save ``fig`` as PNG atomically and close it."""
    plt = _pyplot()
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def loss_curves(panels: dict, path, *, ylabel="task loss", title=None) -> Path:
    """One panel per key of ``panels``; each panel maps a condition label to
    a list of (iterations, values, converged_at) curves (one per seed).

    Seeds are thin lines, the dot marks the iteration where the run reached
    criterion; log-scaled loss.
    """
    plt = _pyplot()
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.4), sharey=True, squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
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
    plt = _pyplot()
    n = len(panels)
    fig, axes = plt.subplots(1, n, figsize=(4 * n, 3.6), squeeze=False)
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
