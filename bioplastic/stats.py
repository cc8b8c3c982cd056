"""Small statistics used by protocols: medians and ratios with bootstrap intervals, Wilson intervals of proportions."""
from __future__ import annotations

import math

import numpy as np


def bootstrap_median_ci(values, *, n_boot=2000, level=0.95, seed=0):
    """Median of ``values`` with a percentile bootstrap interval.

    Returns (median, low, high); NaNs when ``values`` is empty.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    boots = np.median(v[rng.integers(0, v.size, size=(n_boot, v.size))], axis=1)
    lo, hi = np.quantile(boots, [(1 - level) / 2, (1 + level) / 2])
    return float(np.median(v)), float(lo), float(hi)


def speedup_ratios(iters_without, iters_with, budget):
    """Per-seed ratio (iterations without TCR) / (iterations with TCR).

    Seeds are paired (same initial weights and trials). A run that did not
    reach criterion is counted at the iteration ``budget``, so its ratio is a
    bound, not a measurement; the caller reports how many were censored.
    """
    a = np.array([budget if x is None else x for x in iters_without], dtype=float)
    b = np.array([budget if x is None else x for x in iters_with], dtype=float)
    return a / np.maximum(b, 1.0)


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n (Wilson 1927); (nan, nan) for n = 0.

    ``centre +- half`` with ``centre = (p + z^2/2n) / (1 + z^2/n)`` and
    ``half = z sqrt(p (1-p)/n + z^2/4n^2) / (1 + z^2/n)``.

    Examples
    --------
    >>> [round(v, 3) for v in wilson_interval(3, 4)]
    [0.301, 0.954]
    """
    if n == 0:
        return float("nan"), float("nan")
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + level / 2))
    p = successes / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def median_summary(values, *, seed=0) -> dict:
    """``{"median", "ci95", "n"}`` of the finite values among ``values`` (None is skipped).

    >>> median_summary([1.0, None, 3.0, 2.0])["median"]
    2.0
    """
    v = [float(x) for x in values if x is not None and np.isfinite(float(x))]
    med, lo, hi = bootstrap_median_ci(v, seed=seed)
    return {"median": med, "ci95": [lo, hi], "n": len(v)}


def censored_median(values, budget, *, n_boot=2000, seed=0) -> dict:
    """Median time-to-criterion of runs right-censored at ``budget``.

    ``values`` holds one entry per run: the iteration the run reached its
    criterion, or None when it did not within ``budget``. A censored run is
    counted at the budget, so the median is exact while fewer than half the
    runs are censored and a lower bound (``bound=">="``) otherwise; the
    percentile-bootstrap interval's upper end is a bound as soon as it
    reaches the budget.

    Returns
    -------
    dict with ``median``, ``ci95``, ``n``, ``n_censored``, ``bound``
    (None or ">=") and ``all_censored``.

    Examples
    --------
    >>> censored_median([100, 200, None], 1000)["median"], censored_median([100, None, None], 1000)["bound"]
    (200.0, '>=')
    """
    n = len(values)
    n_cens = sum(v is None for v in values)
    filled = [float(budget) if v is None else float(v) for v in values]
    med, lo, hi = bootstrap_median_ci(filled, n_boot=n_boot, seed=seed)
    return {"median": med, "ci95": [lo, hi], "n": n, "n_censored": n_cens,
            "bound": ">=" if n and 2 * n_cens >= n else None, "all_censored": bool(n and n_cens == n)}


#: Intervals are printed only for n >= this (SPEC 9).
MIN_N_INTERVAL = 5


def fmt_median(m: dict, digits: int = 0) -> str:
    """Text of ``{"median", "ci95", "n"}``: the interval only when n >= 5.

    >>> fmt_median({"median": 3.0, "ci95": [1.0, 5.0], "n": 7})
    '3 [1, 5] (n=7)'
    >>> fmt_median({"median": 3.0, "ci95": [1.0, 5.0], "n": 2})
    '3 (n=2, n too small)'
    """
    if not m or m.get("n", 0) == 0 or m.get("median") is None:
        return "-"
    if m["n"] < MIN_N_INTERVAL:
        return f"{m['median']:.{digits}f} (n={m['n']}, n too small)"
    lo, hi = m["ci95"]
    return f"{m['median']:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}] (n={m['n']})"


def fmt_fraction(k: int, n: int, ci=None) -> str:
    """``k/n`` with its 95% interval when n >= 5 (Wilson unless ``ci`` is given).

    >>> fmt_fraction(9, 10)
    '9/10 [0.60, 0.98]'
    """
    if n == 0:
        return "-"
    if n < MIN_N_INTERVAL:
        return f"{k}/{n} (n too small)"
    if ci is None:
        ci = wilson_interval(k, n)
    return f"{k}/{n} [{ci[0]:.2f}, {ci[1]:.2f}]"


def fmt_censored(m: dict) -> str:
    """Text of :func:`censored_median`: bounds as >=, all-censored as such, interval when n >= 5."""
    if m["n"] == 0:
        return "-"
    if m["all_censored"]:
        return f"all censored (n={m['n']})"
    b = ">= " if m["bound"] else ""
    if m["n"] < MIN_N_INTERVAL:
        return f"{b}{m['median']:.0f} (n={m['n']}, n too small)"
    return f"{b}{m['median']:.0f} [{m['ci95'][0]:.0f}, {m['ci95'][1]:.0f}] ({m['n_censored']} of {m['n']} censored)"
