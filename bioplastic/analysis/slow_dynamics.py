"""Slow dynamics: per-unit autocorrelation timescales and ramping units (SPEC 5).

Both measures are computed inside an epoch mask (e.g. the delay epoch) and
are this project's reconstruction of "slow-time dynamics and ramping neural
activities" in the paper, whose definitions are not available.

**Autocorrelation timescale.** For unit i with activity ``r_i[t, b]`` and
mean ``m_i`` over all masked steps of all trials,

    C_i(l) = mean over (t, b) with t and t+l both masked of
             (r_i[t, b] - m_i) (r_i[t+l, b] - m_i),

``rho_i(l) = C_i(l) / C_i(0)``, and the timescale ``tau_i`` is the first lag
(linearly interpolated, times ``dt``) at which ``rho_i`` falls below 1/e.
Because the mean is pooled over trials, a unit that holds a different value
in each trial (a memory) decorrelates slowly; a unit whose rho stays above
1/e up to the longest available lag gets ``tau = inf`` (censored), a unit
with zero variance ``nan``.

**Ramping.** Masked steps are aligned on each trial's first masked step;
the trial-averaged activity ``rbar_i(p)`` at position p (kept where at least
half the trials have that many masked steps) is regressed on time ``p dt``.
Unit i ramps if the fit explains ``R^2 >= r2_min`` of the variance and the
fitted change over the epoch is at least ``min_change`` (activity units).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError, ShapeError


def _check(rates, mask):
    R = np.asarray(rates, dtype=np.float64)
    M = np.asarray(mask)
    if R.ndim != 3:
        raise ShapeError(f"rates must have shape (T, B, N), got {R.shape}")
    if M.ndim != 2 or M.dtype != bool:
        raise ShapeError(f"epoch mask must be a bool array (T, B), got {M.dtype} {M.shape}")
    if R.shape[0] == M.shape[0] + 1:
        R = R[1:]  # a trajectory: rates[t + 1] is the activity after step t
    if R.shape[:2] != M.shape:
        raise ShapeError(f"rates {R.shape} and epoch mask {M.shape} disagree on (T, B)")
    if not M.any():
        raise ConfigError("epoch mask selects no time steps: nothing to analyse (is the epoch empty "
                          "for this task's settings?)")
    if not np.all(np.isfinite(R[M])):
        raise ShapeError("rates contain NaN or inf inside the epoch")
    return R, M


def autocorrelation(rates, mask, max_lag=None) -> np.ndarray:
    """Per-unit autocorrelation rho_i(l) inside the mask, (L+1, N).

    Parameters
    ----------
    rates : (T, B, N) or (T+1, B, N) array (a trajectory: ``rates[1:]`` is used)
    mask : (T, B) bool epoch mask
    max_lag : int or None, largest lag (default: the longest masked run minus 1)
    """
    R, M = _check(rates, mask)
    T = R.shape[0]
    longest = int(M.sum(axis=0).max())
    L = longest - 1 if max_lag is None else min(int(max_lag), T - 1)
    m = R[M].mean(axis=0)
    X = np.where(M[:, :, None], R - m, 0.0)
    C = np.full((L + 1, R.shape[2]), np.nan)
    for lag in range(L + 1):
        valid = M[: T - lag] & M[lag:]
        n = valid.sum()
        if n == 0:
            break
        C[lag] = np.einsum("tbn,tbn,tb->n", X[: T - lag], X[lag:], valid.astype(np.float64)) / n
    with np.errstate(invalid="ignore", divide="ignore"):
        return C / C[0]


def autocorrelation_timescales(rates, mask, *, dt=1.0, max_lag=None) -> np.ndarray:
    """Time for each unit's autocorrelation to fall below 1/e, (N,).

    ``inf``: still above 1/e at the longest lag (slower than the epoch);
    ``nan``: the unit does not vary in the epoch.

    Examples
    --------
    An AR(1) process ``r[t+1] = a r[t] + noise`` has ``rho(l) = a^l``,
    hence ``tau = -1 / log(a)`` steps:

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a, T, B = 0.9, 400, 200
    >>> r = np.zeros((T, B, 1))
    >>> for t in range(1, T):
    ...     r[t] = a * r[t - 1] + rng.standard_normal((B, 1))
    >>> tau = autocorrelation_timescales(r[100:], np.ones((T - 100, B), bool), max_lag=60)
    >>> bool(abs(tau[0] - (-1 / np.log(a))) < 1.0)
    True
    """
    rho = autocorrelation(rates, mask, max_lag)
    thr = np.exp(-1.0)
    N = rho.shape[1]
    tau = np.full(N, np.inf)
    for i in range(N):
        r = rho[:, i]
        if not np.isfinite(r[0]):
            tau[i] = np.nan
            continue
        below = np.nonzero(r[1:] < thr)[0]
        if below.size:
            lag = below[0] + 1
            r0, r1 = r[lag - 1], r[lag]
            tau[i] = (lag - 1 + (r0 - thr) / (r0 - r1)) * dt
    return tau


@dataclass
class Ramping:
    """Result of :func:`ramping_units`.

    Attributes
    ----------
    is_ramping : (N,) bool
    slope : (N,) fitted change per time unit of the trial-averaged activity
    r2 : (N,) fraction of variance explained by the linear fit
    change : (N,) fitted change over the epoch (activity units)
    n_positions : int, aligned epoch positions used
    mean : (P, N) trial-averaged activity at each aligned position
    """

    is_ramping: np.ndarray
    slope: np.ndarray
    r2: np.ndarray
    change: np.ndarray
    n_positions: int
    mean: np.ndarray | None = None

    @property
    def fraction(self) -> float:
        """Fraction of units that ramp."""
        return float(self.is_ramping.mean())


def ramping_units(rates, mask, *, dt=1.0, r2_min=0.8, min_change=0.05) -> Ramping:
    """Units whose trial-averaged activity changes linearly through the epoch.

    Parameters
    ----------
    rates : (T, B, N) or (T+1, B, N) array
    mask : (T, B) bool epoch mask
    dt : float, step duration
    r2_min : float, smallest R^2 of the linear fit
    min_change : float, smallest fitted change over the epoch

    Returns
    -------
    Ramping

    Raises
    ------
    ConfigError
        If the mask is empty or the aligned epoch is shorter than 3 steps.
    """
    R, M = _check(rates, mask)
    T, B, N = R.shape
    pos = np.cumsum(M, axis=0) - 1  # position of each masked step within its trial's epoch
    n_per_trial = M.sum(axis=0)
    P = int(np.sort(n_per_trial)[::-1][max(0, (B - 1) // 2)])  # length reached by half the trials
    if P < 3:
        raise ConfigError(f"epoch too short for a ramp: half the trials have fewer than 3 masked steps ({P})")
    sums = np.zeros((P, N))
    counts = np.zeros(P)
    t_idx, b_idx = np.nonzero(M)
    p = pos[t_idx, b_idx]
    keep = p < P
    np.add.at(sums, p[keep], R[t_idx[keep], b_idx[keep]])
    np.add.at(counts, p[keep], 1)
    mean = sums / counts[:, None]
    t = np.arange(P) * dt
    tc = t - t.mean()
    yc = mean - mean.mean(axis=0)
    slope = tc @ yc / (tc @ tc)
    ss_tot = (yc ** 2).sum(axis=0)
    ss_res = ((yc - np.outer(tc, slope)) ** 2).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r2 = np.where(ss_tot > 0, 1 - ss_res / ss_tot, 0.0)
    change = slope * (t[-1] - t[0])
    is_ramp = (r2 >= r2_min) & (np.abs(change) >= min_change)
    return Ramping(is_ramp, slope, r2, change, P, mean)


def slow_dynamics_summary(rates, mask, *, dt=1.0, **ramp_kwargs) -> dict:
    """Median timescale, fraction censored and fraction of ramping units.

    ``median_capped_timescale`` counts censored units (slower than the epoch)
    at the epoch's longest lag, ``epoch_length`` (times dt): finite, and a
    lower bound of the true median when it reaches that length.
    """
    tau = autocorrelation_timescales(rates, mask, dt=dt)
    ramp = ramping_units(rates, mask, dt=dt, **ramp_kwargs)
    finite = tau[np.isfinite(tau)]
    varying = ~np.isnan(tau)
    longest = float(np.asarray(mask).sum(axis=0).max() - 1) * dt
    return {
        "median_timescale": float(np.median(np.where(np.isinf(tau[varying]), np.inf, tau[varying])))
        if varying.any() else float("nan"),
        "median_finite_timescale": float(np.median(finite)) if finite.size else float("nan"),
        "median_capped_timescale": float(np.median(np.minimum(tau[varying], longest)))
        if varying.any() else float("nan"),
        "epoch_length": longest,
        "fraction_censored": float(np.isinf(tau).sum() / max(varying.sum(), 1)),
        "ramping_fraction": ramp.fraction,
        "n_units": int(tau.size),
    }
