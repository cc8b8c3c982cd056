"""Across-seed summaries of run analyses: medians with bootstrap intervals,
fractions with Wilson intervals (what protocols report as predictions)."""
from __future__ import annotations

import numpy as np

from ..stats import median_summary, wilson_interval  # noqa: F401  (wilson_interval: re-exported)


def seed_row(analysis_summary: dict, history_accuracy=None, criterion=None) -> dict:
    """One seed's numbers from :meth:`RunAnalysis.summary`."""
    ab, lead = analysis_summary["abrupt"], analysis_summary["lead"]
    row = {
        "seed": analysis_summary["seed"],
        "drop_detected": bool(ab["detected"]),
        "plateau_start": ab["plateau_start"],
        "drop_iteration": ab["drop_iteration"],
        "plateau_length": ab["plateau_length"],
        "drop_size_decades": ab["drop_size"],
        "gr_preceded": lead["preceded"],
        "gr_lead": lead["lead"],
        "gr_first_lead": lead["first_lead"],
        "gr_lag_after_drop": lead["lag_after_drop"],
        "gr_chance": lead["chance"],
        "n_gr_events": len(analysis_summary["gr_events"]),
        "n_checkpoints": len(analysis_summary["checkpoints"]),
        "n_stable_initial": analysis_summary["n_stable"][0],
        "n_stable_final": analysis_summary["n_stable"][-1],
        "no_drop_reason": None if ab["detected"] else ab["reason"],
    }
    if history_accuracy is not None and criterion is not None:
        hit = np.nonzero(np.asarray(history_accuracy) >= criterion)[0]
        row["first_iteration_at_criterion"] = int(hit[0]) if hit.size else None
    return row


def _median_ci(values, seed=0):
    v = [float(x) for x in values if x is not None]
    return {**median_summary(v, seed=seed), "values": v}


def condition_summary(rows: list[dict]) -> dict:
    """Across seeds: drop detection, drop iteration, plateau length, drop size,
    GR lead (seeds where GR preceded), fraction preceded with a Wilson interval
    (over seeds with a detected drop) and the mean chance level."""
    drops = [r for r in rows if r["drop_detected"]]
    preceded = [r for r in drops if r["gr_preceded"]]
    chance = [r["gr_chance"] for r in drops if r["gr_chance"] is not None]
    lo, hi = wilson_interval(len(preceded), len(drops))
    dlo, dhi = wilson_interval(len(drops), len(rows))
    return {
        "n_seeds": len(rows),
        "drop_detected": {"k": len(drops), "n": len(rows), "fraction": len(drops) / len(rows) if rows else None,
                          "ci95": [dlo, dhi]},
        "drop_iteration": _median_ci([r["drop_iteration"] for r in drops]),
        "plateau_length": _median_ci([r["plateau_length"] for r in drops]),
        "drop_size_decades": _median_ci([r["drop_size_decades"] for r in drops]),
        "gr_lead": _median_ci([r["gr_lead"] for r in preceded]),
        "gr_lead_per_seed": {str(r["seed"]): r["gr_lead"] for r in rows},
        "gr_preceded": {"k": len(preceded), "n": len(drops),
                        "fraction": len(preceded) / len(drops) if drops else None, "ci95": [lo, hi]},
        "gr_chance_mean": float(np.mean(chance)) if chance else None,
    }
