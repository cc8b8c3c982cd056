"""Abrupt-learning detector: search-phase plateau, drop iteration, drop size (SPEC 5).

The paper describes training that "begins with an initial search phase.
Following a long period of plateau ..., the values of the loss function
suddenly drop". Its quantitative definition is not available; this is the
project's reconstruction, a broken-stick regression of the log-loss curve.

1. ``y = log10(loss)`` is smoothed by a running median (``smooth`` points),
   replaced by its lower envelope (running minimum: the best loss so far, so
   that late instabilities and loss spikes of an already-learned network do
   not pose as structure) and reduced to at most ``max_points`` block
   medians (x: block mean iteration).
2. A continuous piecewise-linear function with four knots (five segments:
   room for an initial transient, a plateau, a drop, a slower decline and a
   floor) is fitted to y by least squares: a grid search over knot sets
   followed by coordinate-wise refinement at full resolution.
3. A segment is a **drop** if it falls by at least ``min_drop`` decades and
   the segment before it is **flat**: ``|slope| <= flat_ratio * |drop slope|``.
   Following segments at least half as steep extend the drop; preceding flat
   segments extend the plateau. Among drops, the largest fall wins. The
   plateau must last at least ``min_plateau`` of the curve's span.

Reported (in iterations and decades of loss): ``plateau_start``,
``plateau_end`` (= drop onset), ``plateau_length``, ``drop_iteration`` (the
midpoint of the drop segment), ``drop_end``, ``drop_size`` (fall of the
fitted curve over the drop, decades; ``drop_factor = 10**drop_size``). A
curve without such a pattern (steady or convex decay, no decay) is reported
as not abrupt, with the reason.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, ShapeError

#: Knots of the broken-stick fit (five segments: transient, plateau, drop,
#: slower decline, floor) and candidate positions per knot in the grid search.
N_KNOTS = 4
GRID = 20


@dataclass
class AbruptLearning:
    """Result of :func:`detect_abrupt_learning` (iterations, decades of loss)."""

    detected: bool
    reason: str
    plateau_start: float | None = None
    plateau_end: float | None = None
    drop_iteration: float | None = None
    drop_end: float | None = None
    drop_size: float | None = None
    plateau_slope: float | None = None
    drop_slope: float | None = None
    knots: list = field(default_factory=list)
    slopes: list = field(default_factory=list)
    fit: tuple = ()

    @property
    def plateau_length(self) -> float | None:
        if not self.detected:
            return None
        return self.plateau_end - self.plateau_start

    @property
    def drop_factor(self) -> float | None:
        return None if self.drop_size is None else float(10 ** self.drop_size)

    def as_dict(self) -> dict:
        out = {k: getattr(self, k) for k in ("detected", "reason", "plateau_start", "plateau_end",
                                             "plateau_length", "drop_iteration", "drop_end", "drop_size",
                                             "drop_factor", "plateau_slope", "drop_slope", "knots", "slopes")}
        return out


def _running_median(y, w):
    if w <= 1:
        return y.copy()
    h = w // 2
    pad = np.pad(y, h, mode="edge")
    win = np.lib.stride_tricks.sliding_window_view(pad, 2 * h + 1)
    return np.median(win, axis=1)


def _reduce(x, y, max_points):
    if len(x) <= max_points:
        return x, y
    xs = np.array_split(x, max_points)
    ys = np.array_split(y, max_points)
    return np.array([b.mean() for b in xs]), np.array([np.median(b) for b in ys])


class _HingeFit:
    """Least squares of y on [1, x, (x-b_1)+, ..., (x-b_m)+] for many knot sets at once."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def sse(self, knots):
        """knots: (S, m) knot positions -> (SSE (S,), beta (S, m + 2))."""
        x, y = self.x, self.y
        S, m = knots.shape
        X = np.empty((S, x.size, m + 2))
        X[:, :, 0] = 1.0
        X[:, :, 1] = x
        X[:, :, 2:] = np.maximum(x[None, :, None] - knots[:, None, :], 0.0)
        XtX = np.einsum("sni,snj->sij", X, X) + 1e-12 * np.eye(m + 2)
        Xty = np.einsum("sni,n->si", X, y)
        beta = np.linalg.solve(XtX, Xty[:, :, None])[:, :, 0]
        resid = y[None, :] - np.einsum("sni,si->sn", X, beta)
        return np.einsum("sn,sn->s", resid, resid), beta


def _fit_knots(x, y, n_knots, grid, passes=3, chunk=2000):
    """Continuous piecewise-linear least squares with ``n_knots`` knots:
    grid search over ordered knot sets, then coordinate-wise refinement."""
    from itertools import combinations

    fit = _HingeFit(x, y)
    inner = x[1:-1]
    cand = np.unique(np.quantile(inner, np.linspace(0, 1, grid)))
    sets = np.array(list(combinations(range(len(cand)), n_knots)), dtype=np.int64)
    best, knots = np.inf, None
    for lo in range(0, len(sets), chunk):
        trial = cand[sets[lo:lo + chunk]]
        sse, _ = fit.sse(trial)
        i = int(np.argmin(sse))
        if sse[i] < best:
            best, knots = sse[i], trial[i].copy()
    for _ in range(passes):
        for m in range(n_knots):
            lo = knots[m - 1] if m > 0 else x[0]
            hi = knots[m + 1] if m < n_knots - 1 else x[-1]
            opts = inner[(inner > lo) & (inner < hi)]
            if opts.size == 0:
                continue
            trial = np.repeat(knots[None, :], opts.size, axis=0)
            trial[:, m] = opts
            sse, _ = fit.sse(trial)
            knots = trial[int(np.argmin(sse))]
    sse, beta = fit.sse(knots[None, :])
    return knots, beta[0], float(sse[0])


def detect_abrupt_learning(iterations, loss, *, smooth=None, max_points=200, min_drop=0.3, flat_ratio=0.25,
                           min_plateau=0.05) -> AbruptLearning:
    """Find the search-phase plateau and the abrupt drop in a loss curve.

    Parameters
    ----------
    iterations : (n,) increasing array, training iterations
    loss : (n,) array of positive losses (the task loss)
    smooth : int or None, running-median width in points (default
        ``max(5, n // 50)``, made odd)
    max_points : int, block medians kept for the fit
    min_drop : float, smallest drop, decades of loss (0.3 = a factor 2)
    flat_ratio : float, the plateau's |slope| is at most this fraction of
        the drop's
    min_plateau : float, shortest plateau as a fraction of the curve's span

    Returns
    -------
    AbruptLearning

    Raises
    ------
    ShapeError
        If the arrays differ in length, have fewer than 20 points, or the
        loss is not finite and positive.
    ConfigError
        If the iterations are not strictly increasing.

    Examples
    --------
    >>> import numpy as np
    >>> k = np.arange(1000)
    >>> loss = 0.01 + 0.19 / (1 + np.exp((k - 500) / 8))
    >>> r = detect_abrupt_learning(k, loss)
    >>> r.detected, abs(r.drop_iteration - 500) < 25
    (True, True)
    """
    it = np.asarray(iterations, dtype=np.float64)
    L = np.asarray(loss, dtype=np.float64)
    if it.ndim != 1 or L.shape != it.shape:
        raise ShapeError(f"iterations and loss must be 1-D of equal length, got {it.shape} and {L.shape}")
    if it.size < 20:
        raise ShapeError(f"a loss curve needs at least 20 points to find a plateau and a drop, got {it.size}")
    if not np.all(np.isfinite(L)) or np.any(L <= 0):
        raise ShapeError("loss must be finite and positive (it is analysed on a log scale)")
    if np.any(np.diff(it) <= 0):
        raise ConfigError("iterations must be strictly increasing")
    w = max(5, it.size // 50) if smooth is None else int(smooth)
    w += (w + 1) % 2
    y = np.minimum.accumulate(_running_median(np.log10(L), w))
    x, y = _reduce(it, y, int(max_points))
    x0, span = x[0], x[-1] - x[0]
    xn = (x - x0) / span
    knots_n, beta, _ = _fit_knots(xn, y, N_KNOTS, GRID)
    slopes_n = np.cumsum(beta[1:])  # slope of each segment, per unit of xn
    bounds_n = np.concatenate([[0.0], knots_n, [1.0]])
    yfit = beta[0] + beta[1] * bounds_n + np.maximum(bounds_n[:, None] - knots_n[None, :], 0) @ beta[2:]
    slopes = slopes_n / span  # decades per iteration
    bounds = x0 + bounds_n * span
    fit = (bounds, yfit)
    base = dict(knots=bounds[1:-1].tolist(), slopes=slopes.tolist(), fit=fit)

    n_seg = len(slopes)
    best = None
    for j in range(1, n_seg):
        s = slopes[j]
        if s >= 0:
            continue
        if abs(slopes[j - 1]) > flat_ratio * abs(s):
            continue
        end = j
        while end + 1 < n_seg and slopes[end + 1] <= 0.5 * s:
            end += 1
        start = j - 1
        while start - 1 >= 0 and abs(slopes[start - 1]) <= flat_ratio * abs(s):
            start -= 1
        fall = yfit[j] - yfit[end + 1]
        plateau = bounds[j] - bounds[start]
        if fall < min_drop or plateau < min_plateau * span:
            continue
        if best is None or fall > best[0]:
            best = (fall, j, end, start)
    if best is None:
        total = yfit[0] - yfit[-1]
        steep = int(np.argmin(slopes))
        reason = (f"no flat segment followed by a fall of >= {min_drop} decades (curve falls {total:.2f} decades "
                  f"in all; steepest segment {steep} of {n_seg}, slopes {np.round(slopes * span, 2).tolist()} "
                  "decades per run length)")
        return AbruptLearning(False, reason, **base)
    fall, j, end, start = best
    plateau_slope = (yfit[j] - yfit[start]) / max(bounds[j] - bounds[start], 1e-300)
    return AbruptLearning(
        True, "flat segment followed by a steep fall",
        plateau_start=float(bounds[start]), plateau_end=float(bounds[j]),
        drop_iteration=float(0.5 * (bounds[j] + bounds[end + 1])), drop_end=float(bounds[end + 1]),
        drop_size=float(fall), plateau_slope=float(plateau_slope), drop_slope=float(slopes[j]), **base)


def gr_lead_time(event_iterations, abrupt: AbruptLearning, checkpoint_iterations=None) -> dict:
    """Lead time of GR events before the drop.

    Definitions (this project's): the *search window* runs from the plateau
    start to the drop iteration. GR *preceded* the drop when at least one GR
    event lies in that window; the **lead time** is ``drop_iteration`` minus
    the last such event (the nearest GR event before the drop, so a
    conservative lead), ``first_lead`` uses the first. ``lag_after_drop`` is
    the delay of the first event after the drop when none preceded it.

    With ``checkpoint_iterations`` (all checkpoints of the run) the result
    also holds ``chance``: the probability that the window would contain an
    event if the run's events were spread uniformly over its checkpoint
    transitions, ``1 - (1 - p)^n`` with p the fraction of transitions flagged
    and n the checkpoints in the window. "Preceded" means little when
    ``chance`` is near 1.

    Returns
    -------
    dict with ``preceded`` (bool or None without a drop), ``lead``,
    ``first_lead``, ``lag_after_drop`` (iterations or None),
    ``n_events_search``, and ``chance`` (None without checkpoints or a drop)
    """
    ev = np.sort(np.asarray(event_iterations, dtype=np.float64).ravel())
    out = {"preceded": None, "lead": None, "first_lead": None, "lag_after_drop": None, "n_events_search": 0,
           "chance": None}
    if not abrupt.detected:
        return out
    window = ev[(ev >= abrupt.plateau_start) & (ev <= abrupt.drop_iteration)]
    out["n_events_search"] = int(window.size)
    out["preceded"] = bool(window.size)
    if window.size:
        out["lead"] = float(abrupt.drop_iteration - window[-1])
        out["first_lead"] = float(abrupt.drop_iteration - window[0])
    after = ev[ev > abrupt.drop_iteration]
    if not window.size and after.size:
        out["lag_after_drop"] = float(after[0] - abrupt.drop_iteration)
    if checkpoint_iterations is not None:
        ck = np.asarray(checkpoint_iterations, dtype=np.float64)
        if ck.size >= 2:
            p = min(1.0, ev.size / (ck.size - 1))
            n = int(((ck[1:] >= abrupt.plateau_start) & (ck[1:] <= abrupt.drop_iteration)).sum())
            out["chance"] = float(1 - (1 - p) ** n)
    return out
