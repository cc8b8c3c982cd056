"""The paper's claims, one verdict rule, and the ``REPRODUCTION.md`` scoreboard.

A protocol that measures a claim of Haputhanthri et al. 2025 (SPEC 9) puts a
``"claims"`` mapping in its ``predictions.json``: claim id (``"a"`` ..
``"h"``) -> a row::

    {"claim": "TCR accelerates BPTT", "protocol": "tcr_regimes",
     "setting": "LFRNN N=32, Adam 1e-3, flip-flop, ...",
     "measure": "speed-up of iterations to the sustained criterion, paired seeds",
     "direction": "greater",
     "cells": [{"name": "flipflop / g=1.5", "effect": EFFECT}, ...],
     "notes": "free text"}

``direction`` is the paper's direction relative to the null (``"greater"``
or ``"less"``). Each cell is one regime; its EFFECT is one of

- ``{"kind": "ratio", "null": 1.0, "median", "ci95": [lo, hi], "n",
  "n_censored", "bound": None | ">=" | "<=", "all_censored"}``: a median
  paired ratio; ``bound`` says the median is a lower (``">="``) or upper
  (``"<="``) bound because censored pairs decide it;
- ``{"kind": "fraction", "null", "k", "n", "ci95"}`` (Wilson interval);
- ``{"kind": "difference", "null": 0.0, "median", "ci95", "n"}``;
- ``{"kind": "pvalue", "p", "n", "observed", "expected"}``: a one-sided
  test in the paper's direction against chance.

:func:`cell_verdict` judges a cell, :func:`claim_verdict` a row, both by the
rule in :data:`VERDICT_RULE`; :func:`render_reproduction` writes the
scoreboard. Build effects with :func:`median_ci_effect` and
:func:`fraction_effect`.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .errors import ConfigError
from .stats import MIN_N_INTERVAL  # intervals are printed only for n >= this (SPEC 9)
#: A ratio, difference or fraction cell needs n >= this for a verdict.
MIN_N_VERDICT = 10
#: A one-sided test (p-value cell) needs n >= this for a verdict.
MIN_N_PVALUE = 20
#: Significance level of a one-sided test cell.
ALPHA = 0.05
#: A difference effect may carry its own practical margin (``"margin"``, in the
#: effect's units, e.g. 0.2 for a difference of success fractions): an interval
#: that contains the null but whose end on the paper's side stays short of
#: ``null + margin`` rules out an effect of that size and contradicts the claim.
#: Practical margin of a ratio. A ratio cell whose 95% interval contains the
#: null (1) but whose end on the paper's side stays within this fraction of it
#: (``hi < 1.1`` for ``"greater"``, ``lo > 1/1.1`` for ``"less"``) rules out a
#: speed-up of practical size and counts as contradicting the claim. The
#: margin is multiplicative, so it is the same on both sides on a log scale.
PRACTICAL_MARGIN = 0.10

DIRECTIONS = ("greater", "less")
BOUNDS = (None, ">=", "<=")
EFFECT_KINDS = ("ratio", "fraction", "difference", "pvalue")
CELL_VERDICTS = ("supports", "contradicts", "neutral", "too few")
CLAIM_VERDICTS = ("reproduced", "not reproduced", "inconclusive")


class Claim(NamedTuple):
    """One claim of the paper (SPEC 9) and the protocol that measures it."""

    id: str
    text: str
    protocol: str
    measured_as: str


CLAIMS = (
    Claim("a", "abrupt learning after a search plateau", "search_phase",
          "fraction of runs with plateau then drop; plateau length"),
    Claim("b", "GR events precede the drop", "abrupt_learning",
          "lead times against a permutation null"),
    Claim("c", "TCR accelerates BPTT", "tcr_regimes",
          "speed-up of plateau length and of iterations to sustained criterion"),
    Claim("d", "TCR enables learning in strongly connected networks", "tcr_regimes",
          "success within budget at g >= 3, with vs without"),
    Claim("e", "TCR helps LSTMs in the search phase", "tcr_regimes", "as (c), for LSTMs"),
    Claim("f", "TCR promotes slow and ramping activity", "slow_dynamics",
          "autocorrelation timescales, ramping fraction"),
    Claim("g", "TCR accelerates bio-plausible training", "local_rules_tcr",
          "local rules +- TCR-STP +- freeze-in, with readout-only controls"),
    Claim("h", "freeze-in collapses to trivial attractors without noise or a controller", "local_rules_tcr",
          "fraction collapsing / diverging / solving"),
)
#: The protocols that measure the claims, in the order of the claims.
CLAIM_PROTOCOLS = tuple(dict.fromkeys(c.protocol for c in CLAIMS))
#: Protocols whose claims are not yet measured with the new criteria: the
#: reason their rows are inconclusive until they report a ``"claims"`` entry.
NOT_YET_MOVED: dict[str, str] = {}

VERDICT_RULE = (
    "**Verdict rule.** Each claim is measured in one or more *cells* (regimes: task, network, optimiser, "
    "setting), each giving an effect with its 95% interval (percentile bootstrap over seeds for a median "
    "ratio or difference, Wilson for a fraction) and its n. A cell is *too few* if n < 10 (n < 20 for a "
    "one-sided test) or if every pair is censored. Otherwise a ratio, difference or fraction cell "
    "*supports* the claim if its 95% interval lies strictly on the paper's side of the null (1 for a "
    "ratio, 0 for a difference, chance for a fraction) and *contradicts* it if the interval lies strictly "
    "on the other side; a ratio whose interval contains 1 but whose end on the paper's side is within 10% "
    "of 1 (below 1.1 when the paper says greater, above 1/1.1 when it says less) also *contradicts*, since "
    "it rules out an effect of practical size; any other cell is *neutral*. A censored ratio whose median "
    "is a bound is not counted on the side the bound leaves open: a lower bound (>=) neither contradicts "
    "'greater' nor supports 'less', an upper bound (<=) neither supports 'greater' nor contradicts 'less' "
    "(such a cell is neutral). A one-sided test in the paper's direction supports if p < 0.05 and is "
    "otherwise neutral (it cannot contradict). A claim is **reproduced** if at least one cell supports "
    "and none contradicts; **not reproduced** if none supports and at least one contradicts, or if its "
    "cells are one-sided tests none of which reaches p < 0.05 with n >= 20; **inconclusive** otherwise "
    "(no usable cell, or support in some regimes and contradiction in others: regime-dependent). "
    "Intervals are printed only for n >= 5 and censored ratios as bounds (>=, <=). With m cells per claim "
    "about 2.5% of them would support by chance alone (a 95% interval misses on a given side 2.5% of the "
    "time when there is no effect), so the number of supporting cells out of m is printed: one supporting "
    "cell out of many is weak evidence. A difference may state its own practical margin m (claim (d): 0.2, "
    "twenty percentage points of success): an interval that contains 0 but stays below m (paper says greater) "
    "also contradicts; this margin was added on 2026-12-07 after the tcr_regimes results were seen (TCR solved "
    "0 of 10 runs in every strong-coupling cell, where the rule without it said only 'neutral'). A claim "
    "that a phenomenon *exists* (row scope 'exists': claim (a), "
    "abrupt learning after a search plateau) is reproduced when at least one cell supports it, whatever "
    "the others show; the cells where it is absent are listed as the regimes where it does not hold."
)


# ----------------------------------------------------------------------------- building effects

def median_ci_effect(values, *, kind, null, n_censored=0, bound=None, seed=0) -> dict:
    """A ratio or difference effect from per-seed values: median and bootstrap 95% interval.

    Parameters
    ----------
    values : array_like, shape (n_seeds,)
        One value per seed (pair), censored pairs included; non-finite values
        are dropped and ``n`` counts the finite ones.
    kind : {"ratio", "difference"}
    null : float
        Value of no effect (1 for a ratio, 0 for a difference).
    n_censored : int
        Pairs among ``values`` in which a run did not reach criterion (ratio only).
    bound : {None, ">=", "<="}
        The median is a lower / upper bound because censored pairs decide it (ratio only).
    seed : int
        Seed of the bootstrap (:func:`bioplastic.stats.bootstrap_median_ci`).

    Returns
    -------
    dict
        The effect (see the module docstring); NaN median and interval when no value is finite.

    Examples
    --------
    >>> e = median_ci_effect([1.2, 1.4, 1.1, 1.3, 1.5], kind="ratio", null=1.0)
    >>> e["median"], e["n"], e["all_censored"]
    (1.3, 5, False)
    """
    from .stats import bootstrap_median_ci

    if kind not in ("ratio", "difference"):
        raise ConfigError(f"median_ci_effect: kind must be 'ratio' or 'difference', got {kind!r}")
    if bound not in BOUNDS:
        raise ConfigError(f"median_ci_effect: bound must be one of {BOUNDS}, got {bound!r}")
    v = np.asarray(values, dtype=float).ravel()
    n_given = int(v.size)
    v = v[np.isfinite(v)]
    n = int(v.size)
    n_censored = int(n_censored)
    if not 0 <= n_censored <= n_given:
        raise ConfigError(f"median_ci_effect: n_censored={n_censored} is not in [0, {n_given}] (the number of values)")
    if kind == "difference" and (n_censored or bound is not None):
        raise ConfigError("median_ci_effect: a difference has no censoring; give n_censored/bound only for a ratio")
    med, lo, hi = bootstrap_median_ci(v, seed=seed)
    effect = {"kind": kind, "null": float(null), "median": med, "ci95": [lo, hi], "n": n}
    if kind == "ratio":
        effect.update(n_censored=n_censored, bound=bound, all_censored=bool(n_given > 0 and n_censored == n_given))
    return effect


def paired_speedup_effect(without, with_, budget, *, seed=0) -> dict:
    """Median paired speed-up ``T_without / T_with`` of times to criterion, censoring as bounds.

    ``without`` and ``with_`` hold, per seed (the same initial weights and
    trials in both), the iteration a run reached its criterion, or None when
    it did not within ``budget``. A pair in which only the run without the
    treatment is censored gives a lower bound ``budget / T_with``; only the
    treated run censored, an upper bound ``T_without / budget``; both censored,
    no information (the pair is left out of ``n`` and counted in
    ``n_censored``). Bounds enter the median at their bound value, so when
    censored pairs are all of one kind the median is itself a bound of that
    kind (``">="`` or ``"<="``); with both kinds it is neither and only the
    censored count is reported. Fully censored comparisons are ``all_censored``.

    Examples
    --------
    >>> e = paired_speedup_effect([400, 600, None], [200, 300, 500], 1000)
    >>> e["median"], e["bound"], e["n_censored"]
    (2.0, '>=', 1)
    """
    if len(without) != len(with_):
        raise ConfigError(f"paired_speedup_effect: {len(without)} runs without and {len(with_)} with: pairs differ")
    ratios, lower, upper, both = [], 0, 0, 0
    for a, b in zip(without, with_):
        if a is None and b is None:
            both += 1
            continue
        lower += a is None and b is not None
        upper += b is None and a is not None
        ta = float(budget if a is None else a)
        tb = float(budget if b is None else b)
        ratios.append(ta / max(tb, 1.0))
    bound = ">=" if lower and not upper else ("<=" if upper and not lower else None)
    eff = median_ci_effect(ratios, kind="ratio", null=1.0, n_censored=lower + upper, bound=bound, seed=seed)
    eff["n_both_censored"] = both
    eff["n_pairs"] = len(without)
    eff["all_censored"] = bool(len(without) > 0 and not ratios)
    return eff


def paired_mean_difference_effect(a, b, *, n_boot=2000, seed=0, margin=None) -> dict:
    """Mean paired difference ``b - a`` (e.g. success 0/1 with minus without) with a
    percentile-bootstrap 95% interval over pairs; pairs with a None are dropped.

    ``margin`` is the smallest difference of practical interest (see
    :func:`cell_verdict`).

    Examples
    --------
    >>> paired_mean_difference_effect([0, 0, 1, 0], [1, 1, 1, 0])["median"]
    0.5
    """
    d = np.array([float(y) - float(x) for x, y in zip(a, b) if x is not None and y is not None])
    n = int(d.size)
    extra = {} if margin is None else {"margin": float(margin)}
    if n == 0:
        return {"kind": "difference", "null": 0.0, "statistic": "mean", "median": float("nan"),
                "ci95": [float("nan"), float("nan")], "n": 0, **extra}
    rng = np.random.default_rng(seed)
    boots = d[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
    lo, hi = np.quantile(boots, [0.025, 0.975])
    return {"kind": "difference", "null": 0.0, "statistic": "mean", "median": float(d.mean()),
            "ci95": [float(lo), float(hi)], "n": n, **extra}


def fraction_effect(k, n, null) -> dict:
    """A fraction k/n with its Wilson 95% interval against the chance level ``null``.

    Examples
    --------
    >>> e = fraction_effect(14, 20, 0.5)
    >>> e["k"], e["n"], [round(x, 2) for x in e["ci95"]]
    (14, 20, [0.48, 0.85])
    """
    from .stats import wilson_interval

    k, n = int(k), int(n)
    if n < 0 or not 0 <= k <= n:
        raise ConfigError(f"fraction_effect: need 0 <= k <= n, got k={k}, n={n}")
    lo, hi = wilson_interval(k, n)
    return {"kind": "fraction", "null": float(null), "k": k, "n": n, "ci95": [lo, hi]}


# ----------------------------------------------------------------------------- formatting

def _finite(x) -> bool:
    return x is not None and isinstance(x, (int, float)) and math.isfinite(x)


def _decimals(*values) -> int:
    """Decimals that show ``values`` on one scale: 0 from 100, 1 from 10, 2 from 0.1, more below."""
    m = max((abs(v) for v in values if _finite(v)), default=0.0)
    if m >= 100:
        return 0
    if m >= 10:
        return 1
    if m >= 0.1 or m == 0:
        return 2
    return min(6, 2 + math.ceil(-math.log10(m)) - 1)


def _need(effect: dict, *keys):
    missing = [k for k in keys if k not in effect]
    if missing:
        raise ConfigError(f"{effect.get('kind')!r} effect lacks key(s) {missing}: {effect!r}")
    return [effect[k] for k in keys]


def _interval(ci) -> tuple:
    if ci is None or len(ci) != 2:
        return None, None
    return ci[0], ci[1]


def _num(x, d: int) -> str:
    return f"{x:.{d}f}" if _finite(x) else "nan"


def format_effect(effect) -> str:
    """The text of a table cell for an effect.

    Intervals are printed only when n >= 5 (otherwise ``"n too small (n=3)"``
    follows the point value); a censored ratio whose median is a bound is
    printed with ``>=`` or ``<=``; a fully censored comparison as ``"all
    censored (n=10)"``.

    Parameters
    ----------
    effect : dict or None
        An effect (see the module docstring); None or ``{"status": "not
        measured"}`` gives ``"not measured"``.

    Returns
    -------
    str

    Examples
    --------
    >>> format_effect({"kind": "ratio", "null": 1.0, "median": 1.42, "ci95": [1.1, 2.0], "n": 10,
    ...                "n_censored": 3, "bound": ">=", "all_censored": False})
    '>= 1.42 [1.10, 2.00] (n=10, 3 censored)'
    >>> format_effect({"kind": "fraction", "null": 0.5, "k": 14, "n": 20, "ci95": [0.481, 0.855]})
    '14/20 = 0.70 [0.48, 0.85]'
    >>> format_effect({"kind": "pvalue", "p": 0.003, "n": 24, "observed": 15, "expected": 9.1})
    'p = 0.003 (15 of 24 vs 9.1 expected)'
    """
    if effect is None or effect.get("status") == "not measured":
        return "not measured"
    kind = effect.get("kind")
    if kind == "pvalue":
        p, n, obs, exp = _need(effect, "p", "n", "observed", "expected")
        ptext = "p = nan" if not _finite(p) else ("p < 0.001" if p < 0.001 else f"p = {p:.3f}")
        obs_text = f"{obs:.0f}" if _finite(obs) and float(obs).is_integer() else _num(obs, 1)
        return f"{ptext} ({obs_text} of {n} vs {_num(exp, 1)} expected)"
    if kind == "fraction":
        k, n = _need(effect, "k", "n")
        lo, hi = _interval(effect.get("ci95"))
        if n == 0:
            return "no runs (n=0)"
        text = f"{k}/{n} = {k / n:.2f}"
        if n < MIN_N_INTERVAL:
            return f"{text}, n too small (n={n})"
        return f"{text} [{_num(lo, 2)}, {_num(hi, 2)}]"
    if kind in ("ratio", "difference"):
        med, n = _need(effect, "median", "n")
        lo, hi = _interval(effect.get("ci95"))
        n_cens = int(effect.get("n_censored") or 0) if kind == "ratio" else 0
        if kind == "ratio" and effect.get("all_censored"):
            return f"all censored (n={effect.get('n_pairs', n)})"
        if not _finite(med):
            return f"no finite value (n={n})"
        bound = effect.get("bound") if kind == "ratio" else None
        if bound not in BOUNDS:
            raise ConfigError(f"ratio effect: bound must be one of {BOUNDS}, got {bound!r}")
        d = _decimals(med, lo, hi)
        text = ("mean " if effect.get("statistic") == "mean" else "") + (f"{bound} " if bound else "") + _num(med, d)
        cens = f", {n_cens} censored" if n_cens else ""
        if n < MIN_N_INTERVAL:
            return f"{text}, n too small (n={n}){cens}"
        return f"{text} [{_num(lo, d)}, {_num(hi, d)}] (n={n}{cens})"
    raise ConfigError(f"unknown effect kind {kind!r}; expected one of {EFFECT_KINDS}")


# ----------------------------------------------------------------------------- verdicts

def cell_verdict(effect, direction) -> str:
    """Verdict of one cell: "supports", "contradicts", "neutral" or "too few" (see :data:`VERDICT_RULE`).

    Parameters
    ----------
    effect : dict or None
        An effect (see the module docstring); None or not measured gives "too few".
    direction : {"greater", "less"}
        The paper's direction relative to the null.

    Examples
    --------
    >>> cell_verdict({"kind": "difference", "null": 0.0, "median": 3.2, "ci95": [1.0, 5.0], "n": 10},
    ...              "greater")
    'supports'
    >>> cell_verdict({"kind": "ratio", "null": 1.0, "median": 1.0, "ci95": [0.9, 1.05], "n": 12,
    ...               "n_censored": 0, "bound": None, "all_censored": False}, "greater")
    'contradicts'
    """
    if direction not in DIRECTIONS:
        raise ConfigError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    if effect is None or effect.get("status") == "not measured":
        return "too few"
    kind = effect.get("kind")
    if kind not in EFFECT_KINDS:
        raise ConfigError(f"unknown effect kind {kind!r}; expected one of {EFFECT_KINDS}")
    (n,) = _need(effect, "n")
    if kind == "pvalue":
        (p,) = _need(effect, "p")
        if n < MIN_N_PVALUE or not _finite(p):
            return "too few"
        return "supports" if p < ALPHA else "neutral"
    if n < MIN_N_VERDICT or (kind == "ratio" and effect.get("all_censored")):
        return "too few"
    lo, hi = _interval(effect.get("ci95"))
    (null,) = _need(effect, "null")
    if not (_finite(lo) and _finite(hi)):
        return "too few"
    greater = direction == "greater"
    near, far = (lo, hi) if greater else (hi, lo)  # interval ends nearest to / farthest on the paper's side
    beyond = (lambda x: x > null) if greater else (lambda x: x < null)
    short = (lambda x: x < null) if greater else (lambda x: x > null)
    if beyond(near):
        verdict = "supports"
    elif short(far):
        verdict = "contradicts"
    elif kind == "ratio" and (far < null * (1 + PRACTICAL_MARGIN) if greater
                              else far > null / (1 + PRACTICAL_MARGIN)):
        verdict = "contradicts"
    elif kind == "difference" and _finite(effect.get("margin")) and (
            far < null + effect["margin"] if greater else far > null - effect["margin"]):
        verdict = "contradicts"
    else:
        verdict = "neutral"
    bound = effect.get("bound") if kind == "ratio" else None
    if bound is not None:
        # A lower bound may hide a larger true value, an upper bound a smaller one.
        opens_paper_side = (bound == ">=") == greater
        if (opens_paper_side and verdict == "contradicts") or (not opens_paper_side and verdict == "supports"):
            verdict = "neutral"
    return verdict


def _cells(row: dict) -> list[dict]:
    cells = row.get("cells") or []
    if not isinstance(cells, list):
        raise ConfigError(f"claim row {row.get('claim')!r}: 'cells' must be a list, got {type(cells).__name__}")
    return cells


def _names(cells, limit=6) -> str:
    names = [c.get("name", "?") for c in cells]
    more = f"; and {len(names) - limit} more" if len(names) > limit else ""
    return "; ".join(names[:limit]) + more


def judge_cells(row: dict) -> list[tuple[dict, str]]:
    """Each cell of a claim row with its :func:`cell_verdict`."""
    cells = _cells(row)
    if cells and row.get("direction") not in DIRECTIONS:
        raise ConfigError(f"claim row {row.get('claim')!r}: 'direction' must be one of {DIRECTIONS}, "
                          f"got {row.get('direction')!r}")
    return [(c, "too few" if c.get("status") == "not measured" else cell_verdict(c.get("effect"), row["direction"]))
            for c in cells]


def claim_verdict(row) -> tuple[str, str]:
    """Verdict of a claim row: ("reproduced" | "not reproduced" | "inconclusive", explanation).

    See :data:`VERDICT_RULE`. A row with no cells, or with ``"status": "not
    measured"``, is inconclusive with its ``"reason"``.

    Examples
    --------
    >>> row = {"direction": "greater", "cells": [{"name": "g=1.5", "effect": {
    ...     "kind": "difference", "null": 0.0, "median": 3.2, "ci95": [1.0, 5.0], "n": 10}}]}
    >>> claim_verdict(row)
    ('reproduced', 'supported in 1 of 1 cells (g=1.5); none contradicts')
    """
    if row is None:
        return "inconclusive", "not measured"
    if row.get("status") == "not measured":
        return "inconclusive", f"not measured: {row.get('reason') or 'no reason given'}"
    judged = judge_cells(row)
    if not judged:
        return "inconclusive", f"no cells measured{': ' + row['reason'] if row.get('reason') else ''}"
    m = len(judged)
    sup = [c for c, v in judged if v == "supports"]
    con = [c for c, v in judged if v == "contradicts"]
    neu = [c for c, v in judged if v == "neutral"]
    if row.get("scope") == "exists" and sup:
        absent = f"; absent (contradicted) in {len(con)} ({_names(con)})" if con else ""
        return "reproduced", (f"holds in {len(sup)} of {m} cells ({_names(sup)}){absent}; the claim is that the "
                              "phenomenon exists in some regime")
    if sup and not con:
        return "reproduced", f"supported in {len(sup)} of {m} cells ({_names(sup)}); none contradicts"
    if con and not sup:
        return "not reproduced", f"contradicted in {len(con)} of {m} cells ({_names(con)}); none supports"
    if sup and con:
        return "inconclusive", (f"regime-dependent: supported in {len(sup)} of {m} cells ({_names(sup)}), "
                                f"contradicted in {len(con)} ({_names(con)})")
    kinds = {(c.get("effect") or {}).get("kind") for c, _ in judged}
    if neu and kinds == {"pvalue"}:
        return "not reproduced", (f"one-sided test not significant (p >= {ALPHA}) with n >= {MIN_N_PVALUE} "
                                  f"in {len(neu)} of {m} cells ({_names(neu)})")
    if not neu:
        return "inconclusive", f"no usable cell: {m} of {m} too few (small n, or all censored)"
    return "inconclusive", f"no cell supports or contradicts: {len(neu)} of {m} neutral, {m - len(neu)} too few"


# ----------------------------------------------------------------------------- scoreboard

def resolve_claims(predictions_by_protocol: dict) -> list[dict]:
    """Each claim of :data:`CLAIMS` with its row, judged cells and verdict.

    Parameters
    ----------
    predictions_by_protocol : dict
        Protocol name -> its ``predictions.json`` content, or None (not run).

    Returns
    -------
    list of dict
        In claim order: ``id``, ``claim``, ``protocol``, ``row`` (or None),
        ``cells`` (list of (cell, verdict)), ``verdict``, ``explanation``.
    """
    out = []
    for c in CLAIMS:
        pred = predictions_by_protocol.get(c.protocol)
        row = ((pred or {}).get("claims") or {}).get(c.id)
        cells = []
        if row is not None:
            cells = judge_cells(row)
            verdict, why = claim_verdict(row)
        elif c.protocol in NOT_YET_MOVED:
            verdict, why = "inconclusive", NOT_YET_MOVED[c.protocol]
        elif pred is None:
            verdict, why = "inconclusive", f"protocol {c.protocol} has not been run"
        else:
            verdict, why = "inconclusive", f"protocol {c.protocol} did not report claim ({c.id})"
        out.append({"id": c.id, "claim": c.text, "protocol": c.protocol, "row": row, "cells": cells,
                    "verdict": verdict, "explanation": why})
    return out


def verdict_summary(resolved: list[dict]) -> dict:
    """JSON-ready verdicts of :func:`resolve_claims`: claim id -> verdict, explanation, cell counts."""
    return {r["id"]: {"claim": r["claim"], "protocol": r["protocol"], "verdict": r["verdict"],
                      "explanation": r["explanation"], "n_cells": len(r["cells"]),
                      "supporting": [c.get("name") for c, v in r["cells"] if v == "supports"],
                      "contradicting": [c.get("name") for c, v in r["cells"] if v == "contradicts"]}
            for r in resolved}


def _md(text) -> str:
    """Text safe inside a markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _seeds_text(seeds) -> str:
    if isinstance(seeds, list) and seeds and all(isinstance(s, int) for s in seeds):
        if seeds == list(range(seeds[0], seeds[0] + len(seeds))) and len(seeds) > 2:
            return f"{seeds[0]}..{seeds[-1]} ({len(seeds)})"
        return ", ".join(map(str, seeds))
    return "none recorded" if not seeds else str(seeds)


def _provenance_line(name: str, pred, status) -> str:
    if pred is None:
        return f"- **{name}**: {status or 'not run'}."
    prov = pred.get("provenance")
    parts = []
    if status:
        parts.append(status)
    parts.append("quick settings" if pred.get("quick") else "full settings")
    if prov:
        commit = prov.get("commit")
        commit_text = "not a git checkout" if commit is None else (
            f"commit {commit[:12]}" + (" (uncommitted changes)" if prov.get("dirty") else ""))
        parts += [f"bioplastic {prov.get('version', '?')}", commit_text, f"command `{prov.get('command', '?')}`",
                  f"at {prov.get('timestamp', '?')}", f"seeds {_seeds_text(prov.get('seeds'))}"]
    else:
        parts.append("no provenance recorded")
    wall = pred.get("wall_seconds")
    parts.append(f"wall time {wall:.0f} s" if _finite(wall) else "wall time not recorded")
    return f"- **{name}**: " + "; ".join(parts) + "."


def format_prediction(entry: dict) -> str:
    """The value of one testable prediction (an entry of a protocol's ``"predictions"``).

    An entry carries ``text`` and one of: ``effect`` (any effect of this
    module); ``fastest`` and ``range`` (a best setting and the settings
    within its interval); ``during``, ``after`` and ``after_minus_during``
    (median summaries and their paired difference).
    """
    from .stats import fmt_median

    if "effect" in entry:
        return format_effect(entry["effect"])
    if "fastest" in entry:
        if entry["fastest"] is None:
            return "none solved"
        lo, hi = entry["range"]
        return f"fastest at {entry['fastest']:g}; within its 95% interval: {lo:g} to {hi:g}"
    if "after_minus_during" in entry:
        return (f"during {fmt_median(entry['during'], 3)}, after {fmt_median(entry['after'], 3)}; after - during "
                f"{format_effect(entry['after_minus_during'])}")
    return "-"


def prediction_lines(predictions_by_protocol: dict) -> list[str]:
    """The scoreboard's section of testable predictions: one row per prediction of every protocol."""
    rows = [(name, p) for name, pred in predictions_by_protocol.items() if pred
            for p in (pred.get("predictions") or {}).values() if isinstance(p, dict) and "text" in p]
    if not rows:
        return []
    lines = ["## Predictions for experiments", "",
             "Numbers an experiment could test, each with its 95% interval and n (project's reconstruction of "
             "the mechanisms; see each protocol's report).", "",
             "| protocol | prediction | measured |", "|---|---|---|"]
    lines += ["| " + " | ".join(_md(x) for x in (name, p["text"], format_prediction(p))) + " |" for name, p in rows]
    return lines + [""]


def render_reproduction(predictions_by_protocol: dict, *, quick: bool, generated: str, status=None) -> str:
    """The markdown of ``REPRODUCTION.md``.

    Parameters
    ----------
    predictions_by_protocol : dict
        Protocol name -> its ``predictions.json`` content, or None (not run).
    quick : bool
        The protocols ran with their quick settings (said at the top).
    generated : str
        When the scoreboard was made (printed as is).
    status : dict, optional
        Protocol name -> how its outputs were obtained (e.g. "read from
        runs/x", "protocols/x.py does not exist yet"), printed in the
        provenance section.

    Returns
    -------
    str
        Title, :data:`VERDICT_RULE`, one table row per claim, a section per
        claim listing every cell, the testable predictions
        (:func:`prediction_lines`), and each protocol's provenance.
    """
    status = status or {}
    resolved = resolve_claims(predictions_by_protocol)
    lines = ["# Reproduction of Haputhanthri et al. 2025: the scoreboard", ""]
    if quick:
        lines += ["> **Quick settings.** These numbers come from the protocols' `--quick` settings (few seeds, "
                  "short budgets), not the full ones: they check the pipeline, not the claims.", ""]
    lines += [f"Generated {generated} by `bioplastic run reproduce{' --quick' if quick else ''}`.", "",
              VERDICT_RULE, "",
              "| claim | protocol and setting | effect (95% CI, n) | regime where it holds | verdict |",
              "|---|---|---|---|---|"]
    for r in resolved:
        row, cells = r["row"] or {}, r["cells"]
        setting = f"{r['protocol']}: {row['setting']}" if row.get("setting") else r["protocol"]
        sup = [c for c, v in cells if v == "supports"]
        con = [c for c, v in cells if v == "contradicts"]
        shown = sup[0] if sup else (cells[0][0] if cells else None)
        effect = "-" if shown is None else f"{shown.get('name', '?')}: {format_effect(shown.get('effect'))}"
        if cells:
            regime = f"{_names(sup, limit=3) or 'none'} ({len(sup)} of {len(cells)} cells)"
            if con:
                regime += f"; contradicted in {len(con)} ({_names(con, limit=2)})"
        else:
            regime = "-"
        verdict = f"**{r['verdict']}**" + (f": {r['explanation']}" if r["verdict"] == "inconclusive" else "")
        lines.append("| " + " | ".join(_md(x) for x in (f"({r['id']}) {r['claim']}", setting, effect, regime,
                                                              verdict)) + " |")
    lines += ["", "## Claims, cell by cell", ""]
    for r in resolved:
        row = r["row"] or {}
        lines += [f"### ({r['id']}) {r['claim']}", "",
                  f"Protocol `{r['protocol']}`."
                  + (f" Setting: {row['setting']}." if row.get("setting") else "")
                  + (f" Measure: {row['measure']}." if row.get("measure") else "")
                  + (f" The paper's direction: {row['direction']} than the null." if row.get("direction") else ""),
                  "", f"Verdict: **{r['verdict']}**: {r['explanation']}.", ""]
        lines += [f"- {c.get('name', '?')}: {format_effect(c.get('effect'))}: {v}" for c, v in r["cells"]]
        if r["cells"]:
            lines.append("")
        if row.get("notes"):
            lines += [f"Notes: {row['notes']}", ""]
    lines += prediction_lines(predictions_by_protocol)
    lines += ["## Provenance", ""]
    names = list(CLAIM_PROTOCOLS) + [p for p in predictions_by_protocol if p not in CLAIM_PROTOCOLS]
    lines += [_provenance_line(p, predictions_by_protocol.get(p), status.get(p)) for p in names]
    return "\n".join(lines) + "\n"


def load_predictions(folder):
    """``folder/predictions.json`` as a dict, or None if there is none.

    Raises
    ------
    ConfigError
        If the file is not valid JSON or does not hold a JSON object.
    """
    path = Path(folder) / "predictions.json"
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data
