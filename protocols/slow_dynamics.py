"""Does TCR promote slow and ramping activity? Claim (f), with vs without TCR.

LFRNNs (N=32, g=1.5) learn each task by BPTT for a fixed budget (no early
stop, so both conditions train for the same number of iterations), without
TCR and with the TCR loss term at two strengths, on 10 paired seeds (same
initial weights and trials). In the task's memory epoch (flip-flop: hold;
delayed addition and evidence accumulation: delay) of the memory test's
trials (silences 10x longer than in training, so that timescales beyond the
training delays are measurable), the protocol measures, on the same 64
held-out trials, each unit's autocorrelation timescale and whether it ramps
(:mod:`bioplastic.analysis.slow_dynamics`). Per seed: the
median timescale over units and the fraction of ramping units; per cell:
the paired difference TCR - no TCR (median, bootstrap 95% interval).

Run: ``bioplastic run slow_dynamics [--quick] [--seeds N] [--out DIR] [--scheduler ADDRESS]``.
"""
from __future__ import annotations

from pathlib import Path


from bioplastic.claims import format_effect, median_ci_effect
from bioplastic.experiments import run_slow_dynamics_job
from bioplastic.plotting import paired_conditions
from bioplastic.protocol import (map_jobs, resolve_settings, run_record, script_main, wall_time_line,
                                 write_outputs)
from bioplastic.provenance import provenance
from bioplastic.stats import fmt_median, median_summary

MODEL = {"kind": "lfrnn", "n_units": 32, "g": 1.5}
# Budgets as in search_phase (evidence accumulation is learned within ~100 iterations there).
BUDGETS = {"flipflop": 2000, "delayed_addition": 4000, "evidence_accumulation": 1000}
# lambda_TCR relative to the losses at initialisation (tcr_relative): the TCR term starts
# at 10% and at 100% of the task loss. Fixed before the run.
CONDITIONS = {"no TCR": 0.0, "TCR 0.1": 0.1, "TCR 1": 1.0}
TRAINING = {"batch_size": 32, "optimizer": "adam", "lr": 1e-3, "clip": 1.0, "early_stop": False,
            "tcr_relative": True}
MEASURES = {"median_timescale": "median autocorrelation timescale (time units; censored units at the epoch length)",
            "ramping_fraction": "fraction of ramping units"}
FULL = {"seeds": 10, "tasks": list(BUDGETS), "conditions": list(CONDITIONS)}
QUICK = {"seeds": 3, "tasks": ["flipflop", "evidence_accumulation"], "conditions": ["no TCR", "TCR 1"],
         "budget_scale": 0.25}


def make_jobs(out: Path, settings: dict) -> list[dict]:
    scale = settings.get("budget_scale", 1.0)
    jobs = []
    for task in settings["tasks"]:
        for cond in settings["conditions"]:
            for seed in range(settings["seeds"]):
                name = f"{task}_{cond}_s{seed}".replace(" ", "")
                jobs.append({"name": name, "seed": seed, "task_name": task, "condition": cond,
                             "model": dict(MODEL), "task": {"name": task},
                             "training": {**TRAINING, "iterations": int(BUDGETS[task] * scale),
                                          "lambda_tcr": CONDITIONS[cond]},
                             "run_file": str(out / "runs" / f"{name}.h5")})
    return jobs


def _values(rows, key, measure):
    return [None if r[key] is None else r[key][measure] for r in rows]


def summarise(jobs, results, settings) -> dict:
    by = {}
    for j, r in zip(jobs, results):
        by.setdefault((j["task_name"], j["condition"]), []).append(r)
    out = {}
    for task in settings["tasks"]:
        base = sorted(by[(task, "no TCR")], key=lambda r: r["seed"])
        t = {"conditions": {}, "differences": {}}
        for cond in settings["conditions"]:
            rows = sorted(by[(task, cond)], key=lambda r: r["seed"])
            t["conditions"][cond] = {
                "success": sum(r["converged_at"] is not None for r in rows), "n": len(rows),
                **{f"final_{m}": _values(rows, "slow_final", m) for m in MEASURES},
                **{f"initial_{m}": _values(rows, "slow_initial", m) for m in MEASURES},
                "final_fraction_censored": _values(rows, "slow_final", "fraction_censored"),
                "memory_generalization": [r["memory_generalization"] for r in rows],
            }
            if cond == "no TCR":
                continue
            t["differences"][cond] = {}
            for m in MEASURES:
                pairs = [(a["slow_final"][m], b["slow_final"][m]) for a, b in zip(base, rows)
                         if a["slow_final"] and b["slow_final"] and a["slow_final"][m] is not None
                         and b["slow_final"][m] is not None]
                diffs = [w - wo for wo, w in pairs]
                t["differences"][cond][m] = median_ci_effect(diffs, kind="difference", null=0.0)
        out[task] = t
    return out


def claim_f(summary, settings) -> dict:
    cells = []
    for task, t in summary.items():
        for cond, d in t["differences"].items():
            for m, eff in d.items():
                cells.append({"name": f"{task} / {cond} / {m.replace('_', ' ')}", "effect": eff})
    return {"claim": "TCR promotes slow and ramping activity", "protocol": "slow_dynamics",
            "setting": f"LFRNN N={MODEL['n_units']} g={MODEL['g']}, Adam {TRAINING['lr']}, fixed budgets "
                       f"{({t: BUDGETS[t] for t in settings['tasks']})}, lambda_TCR relative to the initial losses "
                       f"{[CONDITIONS[c] for c in settings['conditions'] if CONDITIONS[c]]}, {settings['seeds']} "
                       "paired seeds, memory epoch of each task",
            "measure": "paired difference TCR - no TCR of the median unit autocorrelation timescale and of the "
                       "fraction of ramping units, end of training",
            "direction": "greater", "cells": cells,
            "notes": _notes(summary, cells)}


def _notes(summary, cells) -> str:
    from bioplastic.claims import cell_verdict

    parts = []
    for m in MEASURES:
        sel = [c for c in cells if c["name"].endswith(m.replace("_", " "))]
        k = sum(cell_verdict(c["effect"], "greater") == "supports" for c in sel)
        parts.append(f"{m.replace('_', ' ')}: {k} of {len(sel)} cells support")
    success = "; ".join(f"{task}: " + ", ".join(f"{c} {d['success']}/{d['n']}" for c, d in t["conditions"].items())
                        for task, t in summary.items())
    return ("The row mixes two measures, judged separately here: " + "; ".join(parts) + ". Slower dynamics "
            "can also mean a network that failed to learn: success within the same budget was " + success +
            ". Timescale and ramping definitions are the project's reconstruction (docs/analysis.md); units "
            "slower than the epoch count at its length.")


def plot(summary, settings, out: Path) -> list[Path]:
    paths = []
    for m, label in MEASURES.items():
        panels = {task: {c: t["conditions"][c][f"final_{m}"] for c in settings["conditions"]}
                  for task, t in summary.items()}
        paths.append(paired_conditions(panels, out / f"{m}.png", ylabel=label,
                                       title=f"{label}, memory epoch, end of training (paired seeds)"))
    return paths


def report(pred, settings) -> str:
    lines = ["# slow_dynamics: does TCR promote slow and ramping activity?", "",
             f"LFRNN N={MODEL['n_units']}, g={MODEL['g']}, tanh; Adam lr={TRAINING['lr']}, batch "
             f"{TRAINING['batch_size']}, no early stop (every run trains its whole budget); TCR on rates over "
             "the whole trial with lambda relative to the losses at initialisation (`tcr_relative`: 0.1 means "
             f"the TCR term starts at 10% of the task loss); {settings['seeds']} paired seeds. Measured in the "
             "memory epoch of 64 held-out memory-test trials (silences 10x longer than in training), noise off.",
             "",
             "| task | condition | success | median timescale | ramping fraction | TCR - no TCR: timescale | "
             "TCR - no TCR: ramping |", "|---|---|---|---|---|---|---|"]
    for task, t in pred["results"].items():
        for cond in settings["conditions"]:
            c = t["conditions"][cond]
            ts = median_summary(c["final_median_timescale"])
            rf = median_summary(c["final_ramping_fraction"])
            d = t["differences"].get(cond, {})
            dt = format_effect(d["median_timescale"]) if d else ""
            dr = format_effect(d["ramping_fraction"]) if d else ""
            lines.append(f"| {task} | {cond} | {c['success']}/{c['n']} | {fmt_median(ts, 2)} | {fmt_median(rf, 2)} | "
                         f"{dt} | {dr} |")
    lines += ["", "Timescale: time for a unit's autocorrelation (pooled over trials) to fall below 1/e; units "
              "slower than the epoch count at its length, so medians that reach it are lower bounds. Ramping: "
              "the trial-averaged activity fits a line (R^2 >= 0.8) and changes by >= 0.05 over the epoch. "
              "Both are the project's reconstruction (the paper's definitions are not available).", "",
              "![timescales](median_timescale.png)", "", "![ramping](ramping_fraction.png)", "",
              wall_time_line(pred)]
    return "\n".join(lines) + "\n"


def main(out, quick=False, seeds=None):
    settings, out = resolve_settings(FULL, QUICK, quick, seeds, out)
    jobs = make_jobs(out, settings)
    results, wall = map_jobs(run_slow_dynamics_job, jobs, desc="slow_dynamics")
    summary = summarise(jobs, results, settings)
    pred = {"protocol": "slow_dynamics", "quick": quick, "provenance": provenance(list(range(settings["seeds"]))),
            "settings": {**settings, "model": MODEL, "training": TRAINING, "budgets": BUDGETS,
                         "conditions": {c: CONDITIONS[c] for c in settings["conditions"]}},
            "measures": MEASURES, **run_record(results, wall), "results": summary,
            "claims": {"f": claim_f(summary, settings)}}
    return write_outputs(out, pred, report(pred, settings), plot=lambda: plot(summary, settings, out))


if __name__ == "__main__":
    script_main(main, __doc__, "slow_dynamics")
