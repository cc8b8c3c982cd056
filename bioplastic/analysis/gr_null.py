"""Permutation null for "GR events precede the loss drop" (SPEC 5).

The paper states that geometric restructuring (GR) events precede the
abrupt drop of the loss. Its body, and so its test of that claim, is not
available: the null below is **this project's reconstruction**.

Per run r (one training seed with a detected drop) the data are

- the checkpoint iterations ``t_0 < t_1 < ... < t_{C-1}``;
- a boolean event mask over the checkpoints. Checkpoint 0 has no
  predecessor and is never an event, so events live on the
  ``C' = C - 1`` *transitions* ``j = 1..C-1``;
- the search window ``[a, d]`` = [plateau start, drop iteration].

Statistics (the same definitions as
:func:`bioplastic.analysis.abrupt.gr_lead_time`):

- ``preceded_r = 1[ exists event j : a <= t_j <= d ]``;
- ``lead_r = d - max{ t_j : event j, a <= t_j <= d }`` (None if not preceded);
- across runs, ``K = sum_r preceded_r`` and the median lead over preceded runs.

**Null: circular shifts of each run's own event train.** Run r's train is
shifted by an offset ``s_r`` drawn uniformly from ``{0, ..., C'_r - 1}``,
independently across runs; the event on transition j moves to

    j -> ((j - 1 + s_r) mod C'_r) + 1 .

A shift keeps the number of events and their spacing (up to wrap-around)
and randomises only their timing relative to the drop. Under the null,
run r is preceded with probability

    p_r = #{ s : the shifted train has an event in [a, d] } / C'_r ,

and K is a sum of independent Bernoulli(p_r): Poisson-binomial. Its
distribution is the convolution ``P_K = (1 - p_1, p_1) * ... * (1 - p_R, p_R)``
and the one-sided p-value of "more runs preceded than chance" is the upper
tail ``P(K >= k_obs)`` (1 when ``k_obs = 0``). This is exact for any number
of runs (it equals the enumeration of all ``prod_r C'_r`` joint shifts) and
costs O(R^2). A seeded Monte Carlo estimate, which actually shifts the event
masks, is available as a cross-check.

The null distribution of the lead pools runs and shifts: each shift of run r
has weight ``1 / C'_r`` (every run weighs 1) and only shifts that put an
event in the window count, so it is the chance distribution of the lead of a
preceded run, the reference for the observed leads (and the chance level
drawn by :func:`bioplastic.plotting.lead_times`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError, ShapeError
from ..stats import bootstrap_median_ci

#: Null lead-time quantiles reported by :func:`gr_precedence_test` (name -> level).
LEAD_QUANTILES = {"q05": 0.05, "q50": 0.5, "q95": 0.95}

#: Largest (shifts x events) block processed at once when tabulating shifts.
_BLOCK = 4_000_000


@dataclass(frozen=True, eq=False)
class GRRun:
    """One run's GR events and search window, checked on construction.

    Parameters
    ----------
    checkpoints : (C,) int, strictly increasing checkpoint iterations, C >= 2
    is_event : (C,) bool, GR event at each checkpoint; ``is_event[0]`` must be
        False (the first checkpoint has no predecessor)
    plateau_start : float, start ``a`` of the search window (iterations)
    drop_iteration : float, end ``d`` of the search window (iterations), ``a <= d``
    label : str, name used in the per-run rows (e.g. the run file or seed)

    Raises
    ------
    ShapeError
        If the arrays are not 1-D, differ in length or have fewer than 2
        checkpoints.
    ConfigError
        If the checkpoints are not strictly increasing integers, checkpoint 0
        is flagged, or the window is not finite with ``a <= d``.

    Examples
    --------
    >>> run = GRRun([0, 10, 20, 30, 40], [False, False, True, False, False], 15, 35)
    >>> run.n_transitions, run_statistics(run)["lead"]
    (4, 15.0)
    """

    checkpoints: np.ndarray
    is_event: np.ndarray
    plateau_start: float
    drop_iteration: float
    label: str = ""

    def __post_init__(self):
        ck = np.asarray(self.checkpoints)
        ev = np.asarray(self.is_event)
        if ck.ndim != 1 or ev.ndim != 1:
            raise ShapeError(f"checkpoints and is_event must be 1-D, got shapes {ck.shape} and {ev.shape}")
        if ev.shape != ck.shape:
            raise ShapeError(f"the event mask has {ev.size} entries but there are {ck.size} checkpoints "
                             "(one flag per checkpoint)")
        if ck.size < 2:
            raise ShapeError(f"a run needs at least 2 checkpoints (one transition), got {ck.size}")
        if ck.dtype.kind == "f":
            if not np.all(np.isfinite(ck)) or np.any(ck != np.round(ck)):
                raise ConfigError("checkpoint iterations must be whole numbers")
        elif ck.dtype.kind not in "iu":
            raise ConfigError(f"checkpoint iterations must be integers, got dtype {ck.dtype}")
        ck = ck.astype(np.int64)
        if np.any(np.diff(ck) <= 0):
            i = int(np.flatnonzero(np.diff(ck) <= 0)[0])
            raise ConfigError(f"checkpoint iterations must be strictly increasing: {ck[i]} is followed by "
                              f"{ck[i + 1]} (position {i + 1})")
        if ev.dtype != np.bool_:
            if ev.dtype.kind not in "iub" or np.any((ev != 0) & (ev != 1)):
                raise ConfigError(f"is_event must be a boolean mask, got dtype {ev.dtype}")
            ev = ev.astype(bool)
        if ev[0]:
            raise ConfigError("checkpoint 0 cannot be a GR event: it has no predecessor to differ from")
        a, d = self.plateau_start, self.drop_iteration
        try:
            a, d = float(a), float(d)
        except (TypeError, ValueError):
            raise ConfigError(f"the window [plateau_start, drop_iteration] must be numbers, got [{a!r}, {d!r}]")
        if not (np.isfinite(a) and np.isfinite(d)):
            raise ConfigError(f"the window [plateau_start, drop_iteration] must be finite, got [{a}, {d}]")
        if a > d:
            raise ConfigError(f"the window starts after it ends: plateau_start {a} > drop_iteration {d}")
        ck.setflags(write=False)
        ev = ev.copy()
        ev.setflags(write=False)
        object.__setattr__(self, "checkpoints", ck)
        object.__setattr__(self, "is_event", ev)
        object.__setattr__(self, "plateau_start", a)
        object.__setattr__(self, "drop_iteration", d)
        object.__setattr__(self, "label", str(self.label))

    @classmethod
    def from_summary(cls, summary: dict, label: str | None = None) -> "GRRun":
        """Build a run from :meth:`bioplastic.analysis.run_analysis.RunAnalysis.summary`.

        Uses ``summary["checkpoints"]`` (iterations), ``summary["gr_events"]``
        (iterations of the events, each one of the checkpoints) and
        ``summary["abrupt"]`` (``detected``, ``plateau_start``,
        ``drop_iteration``). ``label`` defaults to the run file, else the seed.

        Raises
        ------
        ConfigError
            If a key is missing, the run has no detected drop (filter those
            runs first: the null is about the timing relative to a drop), or an
            event iteration is not a checkpoint.
        """
        for key in ("checkpoints", "gr_events", "abrupt"):
            if key not in summary:
                raise ConfigError(f"run summary lacks {key!r} (expected RunAnalysis.summary() output)")
        ab = summary["abrupt"]
        if label is None:
            label = summary.get("run_file") or (f"seed {summary['seed']}" if "seed" in summary else "")
        if not ab.get("detected"):
            raise ConfigError(f"run {label!r} has no detected drop, so there is no window to test; "
                              "keep only runs with summary['abrupt']['detected'] True")
        for key in ("plateau_start", "drop_iteration"):
            if ab.get(key) is None:
                raise ConfigError(f"run {label!r}: summary['abrupt'] lacks {key!r}")
        ck = np.asarray(summary["checkpoints"])
        events = np.asarray(summary["gr_events"]).ravel()
        missing = np.setdiff1d(events, ck)
        if missing.size:
            raise ConfigError(f"run {label!r}: GR events at iterations {missing.tolist()} are not checkpoints "
                              f"(events must be flagged at checkpoints)")
        return cls(ck, np.isin(ck, events), ab["plateau_start"], ab["drop_iteration"], label)

    @property
    def n_transitions(self) -> int:
        """``C' = C - 1``, the number of checkpoint transitions (and of shifts)."""
        return int(self.checkpoints.size - 1)

    @property
    def window_mask(self) -> np.ndarray:
        """(C',) bool over transitions j = 1..C-1: ``a <= t_j <= d``."""
        t = self.checkpoints[1:]
        return (t >= self.plateau_start) & (t <= self.drop_iteration)

    @property
    def event_positions(self) -> np.ndarray:
        """Transition indices ``j - 1`` (0..C'-1) of the events, increasing."""
        return np.flatnonzero(self.is_event[1:])


def run_statistics(run: GRRun) -> dict:
    """Whether GR preceded the drop in one run, and the lead.

    ``preceded = 1[exists event j: a <= t_j <= d]`` and
    ``lead = d - max{t_j : event j in [a, d]}`` (None if not preceded).

    Returns
    -------
    dict with ``preceded`` (bool), ``lead`` (float or None), ``n_events``,
    ``n_events_window``
    """
    ev_window = run.is_event[1:] & run.window_mask
    t = run.checkpoints[1:][ev_window]
    return {"preceded": bool(t.size), "lead": float(run.drop_iteration - t[-1]) if t.size else None,
            "n_events": int(run.is_event.sum()), "n_events_window": int(t.size)}


def shift_outcomes(run: GRRun) -> tuple[np.ndarray, np.ndarray]:
    """Outcome of every circular shift of a run's event train.

    For shift ``s`` in ``0..C'-1`` the event at transition position ``e``
    (``= j - 1``) moves to ``(e + s) mod C'``; the run is preceded if a moved
    event falls in the window and the lead is ``d - t_{1 + m}`` with m the
    largest moved position in the window.

    Returns
    -------
    preceded : (C',) bool, indexed by s
    lead : (C',) float, NaN where not preceded
    """
    n = run.n_transitions
    E = run.event_positions
    W = run.window_mask
    t = run.checkpoints[1:].astype(np.float64)
    preceded = np.zeros(n, dtype=bool)
    lead = np.full(n, np.nan)
    if E.size == 0:
        return preceded, lead
    step = max(1, _BLOCK // E.size)
    for lo in range(0, n, step):
        s = np.arange(lo, min(n, lo + step))
        pos = (E[None, :] + s[:, None]) % n  # (S, n_events)
        last = np.where(W[pos], pos, -1).max(axis=1)
        hit = last >= 0
        preceded[s] = hit
        lead[s[hit]] = run.drop_iteration - t[last[hit]]
    return preceded, lead


def preceded_probability(run: GRRun) -> float:
    """``p_r``: the fraction of the ``C'`` circular shifts that put an event in the window."""
    preceded, _ = shift_outcomes(run)
    return float(preceded.mean())


def poisson_binomial_pmf(probs) -> np.ndarray:
    """Distribution of ``K = sum_r B_r``, independent ``B_r ~ Bernoulli(p_r)``.

    ``P_K = (1 - p_1, p_1) * (1 - p_2, p_2) * ... * (1 - p_R, p_R)`` (discrete
    convolution), computed by the recursion
    ``P^{(r)}(k) = (1 - p_r) P^{(r-1)}(k) + p_r P^{(r-1)}(k - 1)``.

    Parameters
    ----------
    probs : (R,) array of probabilities in [0, 1]

    Returns
    -------
    (R + 1,) array, ``P(K = k)`` for k = 0..R

    Examples
    --------
    >>> poisson_binomial_pmf([0.5, 0.25]).tolist()
    [0.375, 0.5, 0.125]
    """
    p = np.asarray(probs, dtype=np.float64).ravel()
    if np.any(~np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ConfigError(f"probabilities must lie in [0, 1], got {p.tolist()}")
    pmf = np.zeros(p.size + 1)
    pmf[0] = 1.0
    for r, pr in enumerate(p):
        pmf[1:r + 2] = (1 - pr) * pmf[1:r + 2] + pr * pmf[:r + 1]
        pmf[0] *= 1 - pr
    return pmf


def poisson_binomial_sf(probs, k: int) -> float:
    """Upper tail ``P(K >= k)`` of the Poisson-binomial (1 for k <= 0, 0 for k > R)."""
    k = int(k)
    if k <= 0:
        return 1.0
    pmf = poisson_binomial_pmf(probs)
    if k >= pmf.size:
        return 0.0
    return float(min(1.0, pmf[k:].sum()))


def null_lead_distribution(runs) -> tuple[np.ndarray, np.ndarray]:
    """Chance distribution of the lead of a preceded run (pooled over runs and shifts).

    Every shift ``s`` of run r that puts an event in the window contributes
    its lead with weight ``1 / C'_r``; the weights are normalised to sum 1.

    Returns
    -------
    values : (M,) float leads (iterations)
    weights : (M,) float, summing to 1 (both empty if no shift of any run
        is preceded)
    """
    vals, wts = [], []
    for run in runs:
        pre, lead = shift_outcomes(run)
        vals.append(lead[pre])
        wts.append(np.full(int(pre.sum()), 1.0 / run.n_transitions))
    v = np.concatenate(vals) if vals else np.zeros(0)
    w = np.concatenate(wts) if wts else np.zeros(0)
    if w.size:
        w = w / w.sum()
    return v, w


def weighted_quantile(values, weights, q: float) -> float:
    """Lower weighted quantile: the smallest v with ``sum_{v_i <= v} w_i >= q sum w``."""
    v = np.asarray(values, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if v.size == 0:
        return float("nan")
    order = np.argsort(v, kind="stable")
    cdf = np.cumsum(w[order]) / w.sum()
    i = int(np.searchsorted(cdf, q - 1e-12, side="left"))
    return float(v[order][min(i, v.size - 1)])


def _monte_carlo_counts(runs, n_mc: int, rng: np.random.Generator, chunk: int = 2048) -> np.ndarray:
    """Counts K of preceded runs for ``n_mc`` joint shifts drawn at random.

    Independent of :func:`shift_outcomes`: each draw rolls the run's event
    mask over its transitions (gathers ``mask[(i - s) mod C']``) and checks
    the window.
    """
    counts = np.zeros(n_mc, dtype=np.int64)
    for run in runs:
        n = run.n_transitions
        mask, W = run.is_event[1:], run.window_mask
        s = rng.integers(0, n, size=n_mc)
        for lo in range(0, n_mc, chunk):
            ss = s[lo:lo + chunk]
            shifted = mask[(np.arange(n)[None, :] - ss[:, None]) % n]  # (S, C')
            counts[lo:lo + chunk] += (shifted & W[None, :]).any(axis=1)
    return counts


def _nan_to_none(x):
    return None if x is None or not np.isfinite(x) else float(x)


@dataclass
class GRNullResult:
    """Result of :func:`gr_precedence_test` (iterations; see the module docstring).

    Attributes
    ----------
    n_runs : int
    k_preceded : int, runs with a GR event in [plateau start, drop]
    expected_preceded : float, ``sum_r p_r``
    p_value : float, exact ``P(K >= k_preceded)`` under the shift null
    p_value_mc, p_value_mc_se : float or None, Monte Carlo estimate (plain
        fraction of ``n_mc`` draws with ``K >= k_preceded``) and its standard
        error ``sqrt(p (1 - p) / n_mc)``
    n_mc : int, Monte Carlo draws (0: not run)
    median_lead : float or None, median lead over preceded runs
    median_lead_ci : (low, high) or (None, None), bootstrap 95% interval
    null_lead_quantiles : dict ``q05``, ``q50``, ``q95`` -> float or None
    null_count_pmf : list, ``P(K = k)`` for k = 0..n_runs
    runs : list of dict, one row per run
    """

    n_runs: int
    k_preceded: int
    expected_preceded: float
    p_value: float
    p_value_mc: float | None
    p_value_mc_se: float | None
    n_mc: int
    median_lead: float | None
    median_lead_ci: tuple
    null_lead_quantiles: dict
    null_count_pmf: list
    runs: list = field(default_factory=list)

    def as_dict(self) -> dict:
        """JSON-friendly copy (floats, ints, None, lists, dicts)."""
        return {
            "n_runs": self.n_runs, "k_preceded": self.k_preceded,
            "expected_preceded": self.expected_preceded, "p_value": self.p_value,
            "p_value_mc": self.p_value_mc, "p_value_mc_se": self.p_value_mc_se, "n_mc": self.n_mc,
            "median_lead": self.median_lead, "median_lead_ci": list(self.median_lead_ci),
            "null_lead_quantiles": dict(self.null_lead_quantiles),
            "null_count_pmf": list(self.null_count_pmf),
            "null": "circular shift of each run's GR event train over its checkpoint transitions "
                    "(project reconstruction)",
            "runs": [dict(r) for r in self.runs],
        }


def gr_precedence_test(runs, *, n_mc: int = 0, seed: int = 0, n_boot: int = 2000, level: float = 0.95
                       ) -> GRNullResult:
    """Test "GR events precede the drop" against circular shifts of each run's events.

    Observed: ``k = sum_r preceded_r``. Null: each run's event train shifted
    by an independent uniform offset over its ``C'_r`` transitions, so
    ``K ~ PoissonBinomial(p_1, ..., p_R)`` and

        p_value = P(K >= k) = sum_{m >= k} P_K(m)   (1 when k = 0),

    exact for any number of runs. The median lead over preceded runs comes
    with a percentile-bootstrap interval
    (:func:`bioplastic.stats.bootstrap_median_ci`), and the null lead
    quantiles from :func:`null_lead_distribution`.

    Parameters
    ----------
    runs : sequence of GRRun, each with a detected drop
    n_mc : int, Monte Carlo draws of joint shifts for a cross-check of the
        exact p-value (0: skip)
    seed : int, seeds the Monte Carlo and bootstrap streams (split with
        ``numpy.random.SeedSequence``)
    n_boot : int, bootstrap resamples of the median lead
    level : float, bootstrap interval level

    Returns
    -------
    GRNullResult

    Raises
    ------
    ConfigError
        If ``runs`` is empty or holds something other than GRRun, or
        ``n_mc`` is negative.

    Examples
    --------
    >>> ck = list(range(0, 110, 10))   # 11 checkpoints, 10 transitions
    >>> ev = [False] * 11; ev[6] = True  # one event at iteration 60
    >>> res = gr_precedence_test([GRRun(ck, ev, 45, 75)])  # window holds 3 transitions
    >>> res.k_preceded, res.p_value
    (1, 0.3)
    """
    runs = list(runs)
    if not runs:
        raise ConfigError("gr_precedence_test needs at least one run")
    for i, r in enumerate(runs):
        if not isinstance(r, GRRun):
            raise ConfigError(f"runs[{i}] is a {type(r).__name__}, expected GRRun "
                              "(build it with GRRun(...) or GRRun.from_summary(summary))")
    if isinstance(n_mc, bool) or not isinstance(n_mc, (int, np.integer)) or n_mc < 0:
        raise ConfigError(f"n_mc must be a non-negative integer, got {n_mc!r}")
    mc_seq, boot_seq = np.random.SeedSequence(seed).spawn(2)

    rows, probs, leads = [], [], []
    for r in runs:
        obs = run_statistics(r)
        pre, lead = shift_outcomes(r)
        p = float(pre.mean())
        probs.append(p)
        if obs["preceded"]:
            leads.append(obs["lead"])
        rows.append({"label": r.label, "n_transitions": r.n_transitions, "n_events": obs["n_events"],
                     "n_window_transitions": int(r.window_mask.sum()), "plateau_start": r.plateau_start,
                     "drop_iteration": r.drop_iteration, "preceded": obs["preceded"], "lead": obs["lead"],
                     "p_preceded": p,
                     "null_lead_median": _nan_to_none(weighted_quantile(lead[pre], np.ones(int(pre.sum())), 0.5))})
    k = sum(row["preceded"] for row in rows)
    pmf = poisson_binomial_pmf(probs)
    p_value = poisson_binomial_sf(probs, k)

    p_mc = se_mc = None
    if n_mc:
        counts = _monte_carlo_counts(runs, int(n_mc), np.random.default_rng(mc_seq))
        p_mc = float(np.mean(counts >= k))
        se_mc = float(np.sqrt(p_mc * (1 - p_mc) / n_mc))

    if leads:
        med, lo, hi = bootstrap_median_ci(leads, n_boot=n_boot, level=level, seed=boot_seq)
        median_lead, ci = float(med), (float(lo), float(hi))
    else:
        median_lead, ci = None, (None, None)
    v, w = null_lead_distribution(runs)
    quant = {name: _nan_to_none(weighted_quantile(v, w, q)) for name, q in LEAD_QUANTILES.items()}
    return GRNullResult(n_runs=len(runs), k_preceded=int(k), expected_preceded=float(sum(probs)),
                        p_value=p_value, p_value_mc=p_mc, p_value_mc_se=se_mc, n_mc=int(n_mc),
                        median_lead=median_lead, median_lead_ci=ci, null_lead_quantiles=quant,
                        null_count_pmf=pmf.tolist(), runs=rows)
