"""Abrupt learning and GR events: does the phase space restructure before the loss drops, beyond chance?

LFRNNs and PLRNNs (SPEC 1) learn the 3-bit flip-flop, delayed addition and
evidence accumulation by BPTT (no TCR), over 12 seeds, with frequent
checkpoints. Each run is analysed with :mod:`bioplastic.analysis`: fixed
points at every checkpoint, GR events, the search-phase plateau and the drop
of the task loss, the GR lead time, slow dynamics. Whether GR events precede
the drop more often than chance is tested against a null built from each
run's own GR events shifted in time (:mod:`bioplastic.analysis.gr_null`),
pooled over every run that has a drop (claim (b) needs >= 20 of them) and per
task and model. ``predictions.json`` reports the drop iteration, the GR lead
time per seed, the fraction of runs in which GR preceded the drop, the
p-value and the chance distribution of the lead.

Run: ``bioplastic run abrupt_learning [--quick] [--seeds N] [--out DIR] [--scheduler ADDRESS]``.
"""
from __future__ import annotations

from pathlib import Path


from bioplastic.analysis.gr_null import GRRun, gr_precedence_test
from bioplastic.analysis.summary import condition_summary
from bioplastic.experiments import run_analysis_job
from bioplastic.io.atomic import write_text
from bioplastic.plotting import lead_times, loss_overview
from bioplastic.protocol import (map_jobs, resolve_settings, run_record, script_main, wall_time_line,
                                 write_json)
from bioplastic.provenance import provenance
from bioplastic.stats import fmt_fraction, fmt_median

MODELS = {
    "lfrnn": {"kind": "lfrnn", "n_units": 64, "g": 1.5},
    "plrnn": {"kind": "plrnn", "n_units": 64},
}
TASKS = {"flipflop": {"name": "flipflop"}, "delayed_addition": {"name": "delayed_addition"},
         "evidence_accumulation": {"name": "evidence_accumulation"}}
# Deviations from the defaults, and why (measured on seed 0 before fixing the protocol):
# - LFRNN flip-flop with input_scale=1 loses most of its loss in the first ~25 iterations and
#   then declines smoothly: no search phase. With weak input weights (0.1) the network first
#   has to grow its inputs, which gives a plateau (seed 0: about iterations 100-500).
MODEL_OVERRIDES = {("lfrnn", "flipflop"): {"input_scale": 0.1}}
# Delayed addition feeds a uniform value at every step; its fixed points are sought at the
# mean delay-epoch input (about [0.5, 0]); the other tasks are silent between cues (zero input).
ANALYSIS_INPUTS = {"flipflop": "zero", "delayed_addition": "epoch_mean", "evidence_accumulation": "zero"}
TRAINING = {"batch_size": 32, "lr": 3e-3, "clip": 1.0, "early_stop": False, "lambda_tcr": 0.0}
FULL = {"seeds": 12, "iterations": {"lfrnn": 2000, "plrnn": 1000}, "checkpoint_every": {"lfrnn": 25, "plrnn": 20},
        "n_init": 128, "figure_seeds": 2}
QUICK = {"seeds": 3, "iterations": {"lfrnn": 800, "plrnn": 600}, "checkpoint_every": {"lfrnn": 50, "plrnn": 40},
         "n_init": 64, "figure_seeds": 1}


def make_jobs(out: Path, settings: dict) -> list[dict]:
    jobs = []
    for model, mcfg in MODELS.items():
        for task, tcfg in TASKS.items():
            for seed in range(settings["seeds"]):
                name = f"{model}_{task}_seed{seed}"
                jobs.append({
                    "name": name, "model_name": model, "task_name": task, "seed": seed,
                    "model": {**mcfg, **MODEL_OVERRIDES.get((model, task), {})},
                    "task": dict(tcfg),
                    "training": {**TRAINING, "iterations": settings["iterations"][model],
                                 "checkpoint_every": settings["checkpoint_every"][model]},
                    "run_file": str(out / "runs" / f"{name}.h5"),
                    "analysis": {"n_init": settings["n_init"], "inputs": ANALYSIS_INPUTS[task]},
                    "figures": str(out / "figures") if seed < settings["figure_seeds"] else None,
                })
    return jobs


def _public(r):
    return {k: v for k, v in r.items() if k not in ("curve", "analysis")}


def gr_null(rows, seed=0) -> dict | None:
    """The shifted-event null over the runs of ``rows`` that have a drop (None without any)."""
    runs = [GRRun.from_summary(r["analysis"], label=f"{r['model']}/{r['task']}/seed {r['seed']}")
            for r in rows if r["drop_detected"]]
    if not runs:
        return None
    return gr_precedence_test(runs, n_mc=20000, seed=seed).as_dict()


def summarise(rows: list[dict]) -> dict:
    out = {}
    for task in TASKS:
        out[task] = {}
        for model in MODELS:
            sel = [r for r in rows if r["task"] == task and r["model"] == model]
            out[task][model] = {"summary": condition_summary([_public(r) for r in sel]), "null": gr_null(sel),
                                "per_seed": [_public(r) for r in sel]}
    return out


def claim_b(pooled, results, settings) -> dict:
    cells = []
    if pooled is not None:
        cells.append({"name": "pooled: every run with a drop (LFRNN and PLRNN, 3 tasks)", "effect": _pvalue(pooled)})
    for task, by_model in results.items():
        for model, d in by_model.items():
            if d["null"] is not None:
                cells.append({"name": f"{model} / {task}", "effect": _pvalue(d["null"])})
    return {"claim": "GR events precede the drop", "protocol": "abrupt_learning",
            "setting": f"BPTT without TCR, LFRNN g=1.5 and PLRNN, N=64, {settings['seeds']} seeds per task and "
                       "model, fixed points at every checkpoint",
            "measure": "runs whose search window [plateau start, drop] holds a GR event, against circular shifts "
                       "of each run's own GR events over its checkpoints (exact one-sided p)",
            "direction": "greater", "cells": cells,
            "notes": "GR events, the plateau/drop detector and the null are the project's reconstruction."}


def _pvalue(null):
    return {"kind": "pvalue", "p": null["p_value"], "n": null["n_runs"], "observed": null["k_preceded"],
            "expected": null["expected_preceded"]}


def plot(rows, out: Path):
    panels = {}
    for r in rows:
        its, loss = r["curve"]
        panels.setdefault(r["task"], {}).setdefault(r["model"], []).append((its, loss, r["drop_iteration"]))
    loss_overview(panels, out / "loss_curves.png", title="task loss per seed (dot: detected drop iteration)")
    groups, nulls = {}, {}
    for task in TASKS:
        for model in MODELS:
            sel = [r for r in rows if r["task"] == task and r["model"] == model]
            label = f"{model}, {task}"
            groups[label] = {
                "leads": [r["gr_lead"] for r in sel if r["gr_preceded"]],
                "n_not_preceded": sum(r["gr_preceded"] is False for r in sel),
                "n_no_drop": sum(not r["drop_detected"] for r in sel)}
            nulls[label] = gr_null(sel)
    lead_times(groups, out / "gr_lead_times.png", null_leads=nulls,
               title="GR lead before the drop (one dot per seed); grey: chance (shifted-event null)")


DEFINITIONS = {
    "drop": "broken-stick fit (4 knots) of the lower envelope of the smoothed log10 task loss; a drop is a "
            "segment falling >= 0.3 decades after a segment at least 4x flatter (bioplastic.analysis.abrupt)",
    "drop_iteration": "midpoint of the drop segment(s) in log-loss",
    "gr_event": "checkpoint where the number of stable fixed points changes to a new value that holds for at "
                "least 2 checkpoints, or where the OSPA distance (cut-off 1, in units of the state spread) "
                "between successive labelled fixed-point sets is an outlier (> max(0.2, median + 3 robust SD)) "
                "(bioplastic.analysis.geometry)",
    "gr_preceded": "at least one GR event between the plateau start and the drop iteration",
    "gr_lead": "drop iteration minus the last GR event in that window (iterations)",
    "gr_chance": "probability that the window holds an event if the run's events were spread uniformly over "
                 "its checkpoint transitions",
    "gr_null": "each run's own GR event train circularly shifted over its checkpoint transitions "
               "(bioplastic.analysis.gr_null); p = P(K >= k observed runs preceded), K Poisson-binomial, exact",
    "intervals": "medians with percentile-bootstrap 95% intervals over seeds; fractions with Wilson 95% "
                 "intervals",
}


def _null_text(null):
    if null is None:
        return "no run with a drop"
    q = null["null_lead_quantiles"]
    lead = ("-" if null["median_lead"] is None else f"{null['median_lead']:.0f}")
    return (f"{null['k_preceded']} of {null['n_runs']} runs preceded vs {null['expected_preceded']:.1f} expected "
            f"by chance, p = {null['p_value']:.3g}; median lead {lead} iterations (chance: median "
            f"{q['q50'] if q['q50'] is None else round(q['q50'])}, 5-95% "
            f"{q['q05'] if q['q05'] is None else round(q['q05'])}-{q['q95'] if q['q95'] is None else round(q['q95'])})")


def report(pred: dict, settings: dict) -> str:
    pooled = pred["gr_null_pooled"]
    lines = [
        "# abrupt_learning: do GR events precede the drop of the loss, beyond chance?", "",
        f"**Pooled over every run with a drop: {_null_text(pooled)}.**", "",
        f"BPTT (Adam lr={TRAINING['lr']}, batch {TRAINING['batch_size']}, no TCR, no early stop), "
        f"{settings['seeds']} seeds per model and task; budgets {settings['iterations']} iterations, checkpoints "
        f"every {settings['checkpoint_every']} iterations, fixed-point search from {settings['n_init']} visited "
        "states (+ the same states run 1000 steps forward) per checkpoint.",
        f"Models: {MODELS}; overrides {({'/'.join(k): v for k, v in MODEL_OVERRIDES.items()})} "
        "(see the protocol source for why). Tasks at their default settings.", "",
        "| task | model | drop detected | drop iteration | plateau length | drop size (decades) | "
        "GR preceded drop | GR lead (iterations) | chance of 'preceded' |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for task, by_model in pred["results"].items():
        for model, d in by_model.items():
            s = d["summary"]
            dd, gp = s["drop_detected"], s["gr_preceded"]
            gp_txt = fmt_fraction(gp["k"], gp["n"], gp["ci95"])
            ch = "-" if s["gr_chance_mean"] is None else f"{s['gr_chance_mean']:.2f}"
            lines.append(f"| {task} | {model} | {dd['k']}/{dd['n']} | {fmt_median(s['drop_iteration'])} | "
                         f"{fmt_median(s['plateau_length'])} | {fmt_median(s['drop_size_decades'], 2)} | {gp_txt} | "
                         f"{fmt_median(s['gr_lead'])} | {ch} |")
    lines += ["", "Shifted-event null per task and model:", ""]
    for task, by_model in pred["results"].items():
        for model, d in by_model.items():
            lines.append(f"- {task} / {model}: {_null_text(d['null'])}")
    lines += ["", "Per seed (drop iteration / GR lead / events in the run / stable fixed points first -> last "
              "(needed) / sustained criterion / memory test):", ""]
    for task, by_model in pred["results"].items():
        for model, d in by_model.items():
            parts = []
            for r in d["per_seed"]:
                need = "" if r.get("n_required") is None else f" ({r['n_required']})"
                crit = "not met" if r["converged_at"] is None else f"from {r['converged_at']}"
                mem = "-" if r["memory_generalization"] is None else f"{r['memory_generalization']:.2f}"
                tail = (f"{r['n_gr_events']} events, {r['n_stable_initial']}->{r['n_stable_final']}{need}, "
                        f"criterion {crit}, memory {mem}")
                if r["drop_detected"]:
                    lead = ("GR did not precede" if not r["gr_preceded"] else f"lead {r['gr_lead']:.0f}")
                    parts.append(f"seed {r['seed']}: drop {r['drop_iteration']:.0f}, {lead}, {tail}")
                else:
                    parts.append(f"seed {r['seed']}: no drop, {tail}")
            lines.append(f"- {task} / {model}: " + "; ".join(parts))
    lines += [
        "", "Definitions (this project's reconstruction; the paper's are not available):", "",
        *[f"- **{k}**: {v}" for k, v in DEFINITIONS.items()],
        "", "Reading the table: 'GR preceded' is only informative against chance: with frequent GR events "
        "(stable fixed points appearing and vanishing while Adam wanders) almost any window contains one. The "
        "shifted-event null keeps each run's own number and spacing of events and moves them in time; the "
        "chance column is the older uniform approximation. Runs without a detected drop are reported, not "
        "dropped.", "",
        "![loss curves](loss_curves.png)", "", "![GR lead times](gr_lead_times.png)", "",
        "Per-run figures (loss with GR events, PCA phase portraits, speed maps) are in `figures/`.", "",
        wall_time_line(pred),
    ]
    return "\n".join(lines) + "\n"


def main(out, quick=False, seeds=None):
    settings, out = resolve_settings(FULL, QUICK, quick, seeds, out)
    jobs = make_jobs(out, settings)
    rows, wall = map_jobs(run_analysis_job, jobs, desc="abrupt_learning")
    for j, r in zip(jobs, rows):
        r.update({"model": j["model_name"], "task": j["task_name"]})
    results = summarise(rows)
    pooled = gr_null(rows)
    pred = {"protocol": "abrupt_learning", "quick": quick, "provenance": provenance(list(range(settings["seeds"]))),
            "settings": {**settings, "training": TRAINING, "models": MODELS,
                         "model_overrides": {"/".join(k): v for k, v in MODEL_OVERRIDES.items()},
                         "analysis_inputs": ANALYSIS_INPUTS},
            "definitions": DEFINITIONS, **run_record(rows, wall), "gr_null_pooled": pooled, "results": results,
            "claims": {"b": claim_b(pooled, results, settings)}}
    write_json(out / "predictions.json", pred)
    plot(rows, out)
    text = report(pred, settings)
    write_text(out / "report.md", text)
    print(text)
    return pred


if __name__ == "__main__":
    script_main(main, __doc__, "abrupt_learning")
