"""Bio-plausible learning with TCR: claims (g) and (h), with controls, and predictions.

Every run: LFRNN N=32, g=1.5 (:mod:`bioplastic.local_study`), the task's
sustained held-out criterion and memory test (docs/tasks.md), each task rule
at its tuned setting (``bioplastic run local_rules_tuning``), paired seeds
(same initial weights and trials in every condition of a seed). Every run's
end is classified solved / diverged / collapsed / unsolved
(:func:`bioplastic.analysis.collapse.classify_outcome`); a run that diverges
keeps its checkpoints and is counted, never dropped.

Block ``controls`` (claim g), on the 3-bit flip-flop, delayed addition and
evidence accumulation, 10 seeds each:

- ``readout``: the delta rule on the readout alone (the network stays random);
- ``readout+tcr_stp``: the same network running with TCR-STP;
- ``readout+tcr_stp+freeze_in``: and freeze-in changing W goal-agnostically;
- ``freeze_in alone`` (``tcr_stp+freeze_in``): only W changes, by freeze-in;
- ``tcr_stp alone``: no parameter changes at all, so the untrained network
  with TCR-STP is evaluated once (held-out accuracy, memory test);
- each rule (e-prop, node perturbation) alone, + TCR-STP, + TCR-STP + freeze-in.

Claim (g) cells: paired speed-up of iterations to the sustained criterion,
rule + TCR-STP (+ freeze-in) over the rule alone, per task and rule.

Block ``freeze_in`` (claim h): e-prop + TCR-STP + freeze-in on the flip-flop
without cures, over freeze-in rate eta x STP strength eta_s; then the cures
(random weight perturbations of three sizes; the lambda_TCR controller) in
two cells. Claim (h) cells: the fraction of runs that collapse, per cell and
pooled (against 5%); and, in the cure cells where at least 3 of 10 runs
collapse without a cure, the paired drop in collapse with each cure (margin
0.3, stated before the run).

Block ``predictions`` (flip-flop, e-prop + TCR-STP): (i) blocking the STP
term (lambda_TCR = 0) before versus after the end of the search phase, (ii)
the range of tau_s where learning is fastest, (iii) the size and sign of the
fast weights S during the search phase and after it. The end of the search
phase of a seed, K, is the drop iteration the abrupt-learning detector finds
on the unblocked run of that seed, or, where it finds no plateau, the
iteration of the sustained criterion (stated before the run); seeds whose
unblocked run does not learn give no K and are left out (counted).

Settings chosen before the run from pilots on 2026-12-07 (disclosed): freeze-in
eta = 0.1 in the controls (eta = 10, the earlier protocol's value, diverged in
3 of 3 pilot runs on 100-step trials; with the tuned e-prop, 1 and 0.3 failed
on seed 0 and 0.1 learned); the phase-diagram grid and the two cure cells
(eta = 3, 10 at eta_s = 0.02, where the pilot failed or diverged).

Run: ``bioplastic run local_rules_tcr [--quick] [--seeds N] [--out DIR] [--workers N]``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bioplastic.claims import fraction_effect, format_effect, paired_mean_difference_effect, paired_speedup_effect
from bioplastic.experiments import run_local_analysis_job
from bioplastic.local_study import FREEZE_IN, MODEL, TASKS, TCR_STP, TRAINING, TUNED
from bioplastic.protocol import (map_jobs, resolve_settings, run_record, script_main, wall_time_line,
                                 write_outputs)
from bioplastic.provenance import provenance
from bioplastic.stats import censored_median, fmt_censored, fmt_fraction, fmt_median, median_summary

OUTCOMES = ("solved", "collapsed", "diverged", "unsolved")
RULES = ("eprop", "node_perturbation")
#: Control conditions: label -> (rule, the rule whose tuned training settings apply).
CONTROLS = {
    "readout": ("readout", "readout"),
    "readout+tcr_stp": ("readout+tcr_stp", "readout"),
    "readout+tcr_stp+freeze_in": ("readout+tcr_stp+freeze_in", "readout"),
    "freeze_in alone": ("tcr_stp+freeze_in", "readout"),
    "tcr_stp alone": ("readout+tcr_stp", "readout"),  # evaluated without training (iterations = 0)
}
VARIANTS = ("", "+tcr_stp", "+tcr_stp+freeze_in")

FULL = {"seeds": 10, "tasks": list(TASKS), "rules": list(RULES),
        "budgets": {"flipflop": 2000, "delayed_addition": 1000, "evidence_accumulation": 1000},
        "diagnostics_every": 50,
        "phase": {"etas": [0.1, 0.3, 1.0, 3.0, 10.0], "eta_s": [0.005, 0.02, 0.08], "budget": 800},
        "cures": {"cells": [[3.0, 0.02], [10.0, 0.02]], "perturbation_std": [0.01, 0.03, 0.1], "controller": True},
        "predictions": {"tau_s": [10.0, 30.0, 100.0, 300.0, 1000.0], "budget": 2000, "continue_after": 200,
                        "checkpoint_every": 20}}
QUICK = {"seeds": 3, "tasks": ["flipflop"], "rules": ["eprop"], "budgets": {"flipflop": 300},
         "diagnostics_every": 50,
         "phase": {"etas": [1.0, 10.0], "eta_s": [0.02], "budget": 300},
         "cures": {"cells": [[10.0, 0.02]], "perturbation_std": [0.03], "controller": True},
         "predictions": {"tau_s": [30.0, 300.0], "budget": 300, "continue_after": 50, "checkpoint_every": 20}}

#: A cure cell is judged only where at least this many runs of 10 collapse without a cure.
MIN_COLLAPSED_TO_CURE = 3
#: Smallest drop in the collapse fraction a cure must make to count (stated before the run).
CURE_MARGIN = 0.3
#: Chance level of the collapse fraction: below 5% freeze-in "does not collapse".
COLLAPSE_NULL = 0.05


# ----------------------------------------------------------------------------- jobs

def rule_settings(rule: str, parts: dict) -> dict:
    """Settings of ``rule`` (a name or composition) from per-part settings."""
    names = rule.split("+")
    if len(names) == 1:
        return dict(parts.get(rule, {}))
    return {p: dict(parts.get(p, {})) for p in names}


def _parts(tcr_stp=None, freeze_in=None) -> dict:
    return {**{r: TUNED[r]["rule_settings"] for r in TUNED}, "tcr_stp": dict(tcr_stp or TCR_STP),
            "freeze_in": dict(freeze_in or FREEZE_IN)}


def _job(out, name, seed, task, rule, parts, trained_by, iterations, **extra):
    training = {**TRAINING, **TUNED[trained_by]["training"], "iterations": iterations}
    training.update(extra.pop("training", {}))
    return {"name": name, "seed": seed, "model": dict(MODEL), "task": dict(TASKS[task]), "rule": rule,
            "rule_settings": rule_settings(rule, parts), "training": training,
            "run_file": str(out / "runs" / f"{name}.h5"), **extra}


def control_jobs(out: Path, s: dict) -> list[dict]:
    jobs = []
    for task in s["tasks"]:
        budget = s["budgets"][task]
        conds = dict(CONTROLS)
        conds.update({f"{r}{v}": (f"{r}{v}", r) for r in s["rules"] for v in VARIANTS})
        for label, (rule, trained_by) in conds.items():
            its = 0 if label == "tcr_stp alone" else budget
            for seed in range(s["seeds"]):
                name = f"controls_{task}_{label.replace(' ', '_')}_s{seed}"
                jobs.append(_job(out, name, seed, task, rule, _parts(), trained_by, its, block="controls",
                                 task_name=task, condition=label,
                                 training={"diagnostics_every": s["diagnostics_every"] if its else 0}))
    return jobs


def freeze_in_jobs(out: Path, s: dict) -> list[dict]:
    p, jobs = s["phase"], []
    cures = {"none": {}}
    cures.update({f"noise {x:g}": {"perturbation_std": x} for x in s["cures"]["perturbation_std"]})
    if s["cures"]["controller"]:
        cures["controller"] = {"controller": True}
    cells = {(float(a), float(b)) for a, b in s["cures"]["cells"]}
    for eta in p["etas"]:
        for eta_s in p["eta_s"]:
            for cure, extra in cures.items():
                if cure != "none" and (eta, eta_s) not in cells:
                    continue
                for seed in range(s["seeds"]):
                    name = f"freeze_in_eta{eta:g}_etas{eta_s:g}_{cure.replace(' ', '')}_s{seed}"
                    parts = _parts({**TCR_STP, "eta_s": eta_s}, {"eta": eta, **extra})
                    jobs.append(_job(out, name, seed, "flipflop", "eprop+tcr_stp+freeze_in", parts, "eprop",
                                     p["budget"], block="freeze_in", eta=eta, eta_s=eta_s, cure=cure))
    return jobs


def prediction_jobs(out: Path, s: dict, stage: int, K: dict | None = None) -> list[dict]:
    """Stage 1: the unblocked runs (with checkpoints for S) and the tau_s sweep; stage 2: the blocked runs."""
    p, jobs = s["predictions"], []
    common = {"training": {"continue_after": p["continue_after"]}, "block": "predictions"}
    if stage == 1:
        for seed in range(s["seeds"]):
            jobs.append(_job(out, f"pred_on_s{seed}", seed, "flipflop", "eprop+tcr_stp", _parts(), "eprop",
                             p["budget"], arm="on", fast_weights=True,
                             **{**common, "training": {**common["training"], "checkpoint_every": p["checkpoint_every"]}}))
            for tau in p["tau_s"]:
                if tau == TCR_STP["tau_s"]:
                    continue  # the unblocked run above
                jobs.append(_job(out, f"pred_tau{tau:g}_s{seed}", seed, "flipflop", "eprop+tcr_stp",
                                 _parts({**TCR_STP, "tau_s": tau}), "eprop", p["budget"], arm=f"tau_s {tau:g}",
                                 tau_s=tau, **common))
        return jobs
    for seed, k in sorted((K or {}).items()):
        for arm, window in (("blocked during search", {"start": k}), ("blocked after search", {"stop": k})):
            name = f"pred_{arm.split()[1]}_s{seed}"
            jobs.append(_job(out, name, seed, "flipflop", "eprop+tcr_stp", _parts(), "eprop", p["budget"], arm=arm,
                             K=k, **{**common, "training": {**common["training"],
                                                            "lambda_tcr": {"kind": "window", "value": 1.0, **window}}}))
    return jobs


def search_end(r: dict) -> int | None:
    """K: the drop iteration of the run's plateau, else its sustained criterion, else None."""
    pl = r.get("plateau") or {}
    if pl.get("detected") and pl.get("drop_iteration") is not None:
        return int(pl["drop_iteration"])
    return r["converged_at"]


# ----------------------------------------------------------------------------- summaries

def _outcomes(rows) -> dict:
    return {o: sum(r["outcome"] == o for r in rows) for o in OUTCOMES}


def condition_summary(rows, budget, criterion) -> dict:
    its = [r["converged_at"] for r in rows]
    mem = [r["memory_generalization"] for r in rows]
    col = [r["collapse"] or {} for r in rows]
    return {"n": len(rows), "outcomes": _outcomes(rows), "iterations_to_criterion": its,
            "time_to_criterion": censored_median(its, budget),
            "memory_generalization": median_summary(mem),
            "memory_passes": sum(m is not None and m >= criterion for m in mem),
            "n_stable": median_summary([c.get("n_stable") for c in col]),
            "memories_held": median_summary([c.get("n_memories_held") for c in col]),
            "final_accuracy": median_summary([r["final_accuracy"] for r in rows]),
            "alignment_with_bptt": median_summary([r["mean_alignment"] for r in rows]),
            "seeds": [r["seed"] for r in rows]}


def summarise_controls(jobs, results, s) -> dict:
    from bioplastic.tasks import get_task

    by = {}
    for j, r in zip(jobs, results):
        by.setdefault((j["task_name"], j["condition"]), []).append(r)
    out = {}
    for task in s["tasks"]:
        crit = get_task(**TASKS[task]).criterion
        conds = {c: condition_summary(sorted(rs, key=lambda r: r["seed"]), s["budgets"][task], crit)
                 for (t, c), rs in by.items() if t == task}
        speed = {}
        for base in ["readout", *s["rules"]]:
            for v in VARIANTS[1:]:
                if f"{base}{v}" in conds:
                    speed[f"{base}{v}"] = paired_speedup_effect(conds[base]["iterations_to_criterion"],
                                                                conds[f"{base}{v}"]["iterations_to_criterion"],
                                                                s["budgets"][task])
        out[task] = {"conditions": conds, "speedup_vs_alone": speed, "budget": s["budgets"][task]}
    return out


def summarise_freeze_in(jobs, results, s) -> dict:
    by = {}
    for j, r in zip(jobs, results):
        by.setdefault((j["eta"], j["eta_s"], j["cure"]), []).append(r)
    cells = {}
    for (eta, eta_s, cure), rs in sorted(by.items()):
        rs = sorted(rs, key=lambda r: r["seed"])
        o = _outcomes(rs)
        col = [r["collapse"] or {} for r in rs]
        cells[f"eta={eta:g} eta_s={eta_s:g} {cure}"] = {
            "eta": eta, "eta_s": eta_s, "cure": cure, "n": len(rs), "outcomes": o,
            "collapsed_per_seed": [r["outcome"] == "collapsed" for r in rs],
            "diverged_at": [r["diverged_at"] for r in rs],
            "distance_to_trivial": median_summary([c.get("distance_to_trivial") for c in col]),
            "share_at_trivial": median_summary([c.get("share_at_trivial") for c in col]),
            "n_stable": median_summary([c.get("n_stable") for c in col]),
            "final_accuracy": median_summary([r["final_accuracy"] for r in rs]),
            "W_norm": median_summary([r["W_norm"] for r in rs]),
            "min_lambda_tcr": [float(np.nanmin(r["lambda_tcr"])) if np.isfinite(r["lambda_tcr"]).any() else None
                               for r in rs]}
    return cells


def summarise_predictions(jobs, results, s) -> dict:
    arms = {}
    for j, r in zip(jobs, results):
        arms.setdefault(j["arm"], {})[r["seed"]] = r
    on = arms.get("on", {})
    budget = s["predictions"]["budget"]
    out = {"K": {str(seed): search_end(r) for seed, r in sorted(on.items())},
           "K_from_drop": sum(bool((r.get("plateau") or {}).get("detected"))
                              and (r["plateau"].get("drop_iteration") is not None) for r in on.values()),
           "search_phase_detected": sum(bool((r.get("plateau") or {}).get("detected")) for r in on.values()),
           "n_seeds": len(on)}
    # (i) blocking the STP term during vs after the search phase: paired differences in iterations
    for arm in ("blocked during search", "blocked after search"):
        rows = arms.get(arm, {})
        seeds = sorted(rows)
        a = [on[k]["converged_at"] for k in seeds]
        b = [rows[k]["converged_at"] for k in seeds]
        both = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
        out[arm] = {"seeds": seeds, "iterations_on": a, "iterations_blocked": b,
                    "solved_blocked": sum(y is not None for y in b),
                    "difference": paired_mean_difference_effect([x for x, _ in both], [y for _, y in both]),
                    "speedup_on_over_blocked": paired_speedup_effect(b, a, budget)}
    # (ii) tau_s sweep
    taus = {}
    for tau in s["predictions"]["tau_s"]:
        rows = on if tau == TCR_STP["tau_s"] else arms.get(f"tau_s {tau:g}", {})
        taus[f"{tau:g}"] = censored_median([rows[k]["converged_at"] for k in sorted(rows)], budget)
    out["tau_s"] = taus
    out["tau_s_fastest"] = fastest_range(taus)
    # (iii) fast weights during the search phase vs after it
    fw = {"during": {}, "after": {}}
    for seed, r in on.items():
        K = search_end(r)
        if K is None or not r.get("fast_weights"):
            continue
        during = [f for f in r["fast_weights"] if 0 < f["iteration"] < K]
        after = [f for f in r["fast_weights"] if f["iteration"] >= K]
        for key, sel in (("during", during), ("after", after)):
            if sel:
                fw[key][seed] = {m: float(np.nanmean([f[m] for f in sel if f[m] is not None] or [np.nan]))
                                 for m in ("relative_size", "sign_index", "depressing_fraction")}
    seeds = sorted(set(fw["during"]) & set(fw["after"]))
    out["fast_weights"] = {m: {"during": median_summary([fw["during"][k][m] for k in seeds]),
                               "after": median_summary([fw["after"][k][m] for k in seeds]),
                               "after_minus_during": paired_mean_difference_effect(
                                   [fw["during"][k][m] for k in seeds], [fw["after"][k][m] for k in seeds])}
                           for m in ("relative_size", "sign_index", "depressing_fraction")}
    out["fast_weights"]["seeds"] = seeds
    return out


def fastest_range(taus: dict) -> dict:
    """tau_s with the lowest median iterations, and every tau_s whose median lies in its 95% interval."""
    ok = {t: m for t, m in taus.items() if m["n"] and not m["all_censored"]}
    if not ok:
        return {"fastest": None, "range": None, "rule": "no tau_s solved"}
    best = min(ok, key=lambda t: ok[t]["median"])
    lo, hi = ok[best]["ci95"]
    within = [float(t) for t, m in ok.items() if lo <= m["median"] <= hi]
    return {"fastest": float(best), "range": [min(within), max(within)],
            "rule": "tau_s whose median iterations to criterion lie inside the fastest tau_s's 95% interval"}


# ----------------------------------------------------------------------------- claims and predictions

def claim_g(controls, s) -> dict:
    cells = []
    for task, d in controls.items():
        for rule in s["rules"]:
            for v in VARIANTS[1:]:
                eff = d["speedup_vs_alone"].get(f"{rule}{v}")
                if eff is not None:
                    cells.append({"name": f"{task} / {rule} {v}", "effect": eff})
    notes = []
    for task, d in controls.items():
        c = d["conditions"]
        ro = c.get("readout", {}).get("outcomes", {})
        notes.append(f"{task}: readout alone solved {ro.get('solved', 0)}/{c.get('readout', {}).get('n', 0)}, "
                     + ", ".join(f"{name} {c[name]['outcomes']['solved']}/{c[name]['n']}" for name in c
                                 if name != "readout"))
    easy = [f"{task} ({d['conditions']['readout']['outcomes']['solved']}/{d['conditions']['readout']['n']})"
            for task, d in controls.items() if "readout" in d["conditions"]
            and 2 * d["conditions"]["readout"]["outcomes"]["solved"] >= d["conditions"]["readout"]["n"]]
    if easy:
        notes.append("the readout alone on the random network solved " + ", ".join(easy)
                     + ": there a rule's speed-up is not evidence that it learns recurrent structure")
    return {"claim": "TCR accelerates bio-plausible training", "protocol": "local_rules_tcr",
            "setting": f"LFRNN N={MODEL['n_units']} g={MODEL['g']}; e-prop and node perturbation at their tuned "
                       f"settings (local_rules_tuning); TCR-STP eta_s={TCR_STP['eta_s']}, tau_s={TCR_STP['tau_s']:g}; "
                       f"freeze-in eta={FREEZE_IN['eta']:g}; budgets {s['budgets']}; {s['seeds']} paired seeds",
            "measure": "paired speed-up of iterations to the sustained criterion, rule + TCR-STP (+ freeze-in) over "
                       "the rule alone",
            "direction": "greater", "cells": cells,
            "notes": "Success within budget per condition (readout-only controls first): " + "; ".join(notes) + "."}


def claim_h(cells, s) -> dict:
    out = []
    no_cure = {k: c for k, c in cells.items() if c["cure"] == "none"}
    for k, c in no_cure.items():
        out.append({"name": f"eta={c['eta']:g} eta_s={c['eta_s']:g}: collapse without cures",
                    "effect": fraction_effect(c["outcomes"]["collapsed"], c["n"], COLLAPSE_NULL)})
    tot = sum(c["outcomes"]["collapsed"] for c in no_cure.values())
    n = sum(c["n"] for c in no_cure.values())
    out.append({"name": "all cells pooled: collapse without cures", "effect": fraction_effect(tot, n, COLLAPSE_NULL)})
    unjudged = []
    for k, c in cells.items():
        if c["cure"] == "none":
            continue
        base = no_cure[f"eta={c['eta']:g} eta_s={c['eta_s']:g} none"]
        if base["outcomes"]["collapsed"] < MIN_COLLAPSED_TO_CURE:
            unjudged.append(f"eta={c['eta']:g} {c['cure']}")
            continue
        eff = paired_mean_difference_effect([float(x) for x in c["collapsed_per_seed"]],
                                            [float(x) for x in base["collapsed_per_seed"]], margin=CURE_MARGIN)
        out.append({"name": f"eta={c['eta']:g} eta_s={c['eta_s']:g}: collapse prevented by {c['cure']}",
                    "effect": eff})
    fail = "; ".join(f"{k}: " + ", ".join(f"{o} {v}" for o, v in c["outcomes"].items() if v)
                     for k, c in cells.items())
    cures = []
    for k, c in cells.items():
        if c["cure"] == "none":
            continue
        base = no_cure[f"eta={c['eta']:g} eta_s={c['eta_s']:g} none"]
        cures.append(f"at eta={c['eta']:g}, eta_s={c['eta_s']:g} {c['cure']} solved {c['outcomes']['solved']}/{c['n']} "
                     f"(without: {base['outcomes']['solved']}/{base['n']}), diverged {c['outcomes']['diverged']} "
                     f"(without: {base['outcomes']['diverged']})")
    return {"claim": "freeze-in collapses to trivial attractors without noise or a controller",
            "protocol": "local_rules_tcr",
            "setting": f"e-prop + TCR-STP + freeze-in on the 3-bit flip-flop, LFRNN N={MODEL['n_units']} "
                       f"g={MODEL['g']}, budget {s['phase']['budget']}, {s['seeds']} seeds per cell",
            "measure": f"fraction of runs whose end state collapses onto one attractor (>= 95% of long-silence "
                       f"trials settle on one point; project's reconstruction) against {COLLAPSE_NULL}; paired "
                       f"drop in collapse with each cure (margin {CURE_MARGIN})",
            "direction": "greater", "cells": out,
            "notes": ("Cure cells not judged (fewer than 3 of 10 collapsed without a cure): "
                      + (", ".join(unjudged) or "none") + ". What the cures did to the runs that failed otherwise: "
                      + ("; ".join(cures) or "no cure run") + ". Outcomes per cell: " + fail)}


def predictions_for_experiments(pr) -> dict:
    """The testable numbers, each with its interval and n."""
    during, after = pr["blocked during search"], pr["blocked after search"]
    fw = pr["fast_weights"]
    return {
        "blocking_stp_during_search": {
            "text": "blocking the STP term (eta_s -> 0) until the end of the search phase changes the iterations to "
                    "the sustained criterion by X (blocked - unblocked, mean over paired seeds)",
            "effect": during["difference"]},
        "blocking_stp_after_search": {
            "text": "blocking it from the end of the search phase on changes them by X (the control: the search "
                    "phase is already over; where K is the criterion iteration it cannot change them, "
                    f"K came from a detected drop in {pr['K_from_drop']} of {pr['n_seeds']} seeds)",
            "effect": after["difference"]},
        "tau_s_fastest_range": {
            "text": "the STP time constant tau_s (steps; tau = 10 steps) in which learning is fastest",
            "fastest": pr["tau_s_fastest"]["fastest"], "range": pr["tau_s_fastest"]["range"],
            "per_tau_s": pr["tau_s"]},
        "fast_weight_size": {
            "text": "size of the fast synaptic change over a trial relative to the synapse's weight, "
                    "median |S_ij| / median |W_ij|, during the search phase and after it",
            "during": fw["relative_size"]["during"], "after": fw["relative_size"]["after"],
            "after_minus_during": fw["relative_size"]["after_minus_during"]},
        "fast_weight_sign": {
            "text": "sign of the fast changes: mean sign(S_ij) sign(W_ij) (-1: every change depresses its synapse)",
            "during": fw["sign_index"]["during"], "after": fw["sign_index"]["after"],
            "after_minus_during": fw["sign_index"]["after_minus_during"]},
    }


# ----------------------------------------------------------------------------- figures

def plot(jobs, results, summary, s, out: Path) -> list[Path]:
    from bioplastic.plotting import cell_heatmaps, iterations_to_criterion, loss_curves, outcome_bars

    files = []
    groups = {task: {c: d["iterations_to_criterion"] for c, d in t["conditions"].items() if c != "tcr_stp alone"}
              for task, t in summary["controls"].items()}
    for task, g in groups.items():
        files.append(iterations_to_criterion({task: g}, out / f"iterations_to_criterion_{task}.png",
                                             budget=s["budgets"][task],
                                             title=f"{task}: iterations to the sustained criterion (open: not solved)"))
    files.append(outcome_bars({task: {c: d["outcomes"] for c, d in t["conditions"].items()}
                               for task, t in summary["controls"].items()}, out / "control_outcomes.png",
                              title="How each control and rule ended (10 paired seeds per bar)"))
    panels = {}
    for j, r in zip(jobs, results):
        if j["block"] == "controls" and j["condition"] != "tcr_stp alone":
            base = j["condition"].split("+")[0]
            panels.setdefault(f"{j['task_name']}: {base}", {}).setdefault(j["condition"], []).append(
                (r["curve"][0], r["curve"][1], r["converged_at"]))
    files.append(loss_curves(panels, out / "loss_curves.png", title="Task loss per seed (dot: sustained criterion)"))
    fi = summary["freeze_in"]
    rows = [f"eta_s={x:g}" for x in s["phase"]["eta_s"]]
    cols = [f"eta={x:g}" for x in s["phase"]["etas"]]
    heat = {}
    for o in OUTCOMES:
        vals = np.full((len(rows), len(cols)), np.nan)
        text = [["" for _ in cols] for _ in rows]
        for c in fi.values():
            if c["cure"] != "none":
                continue
            i, k = s["phase"]["eta_s"].index(c["eta_s"]), s["phase"]["etas"].index(c["eta"])
            vals[i, k] = c["outcomes"][o] / c["n"]
            text[i][k] = f"{c['outcomes'][o]}/{c['n']}"
        heat[o] = {"rows": rows, "cols": cols, "values": vals, "text": text, "xlabel": "freeze-in rate",
                   "ylabel": "STP strength"}
    files.append(cell_heatmaps(heat, out / "freeze_in_phase_diagram.png", colorbar_label="fraction of runs",
                               title="e-prop + TCR-STP + freeze-in on the flip-flop, no cures: how runs end"))
    cures = {}
    for c in fi.values():
        if any(x["cure"] != "none" and x["eta"] == c["eta"] and x["eta_s"] == c["eta_s"] for x in fi.values()):
            cures.setdefault(f"eta={c['eta']:g} eta_s={c['eta_s']:g}", {})[c["cure"]] = c["outcomes"]
    if cures:
        files.append(outcome_bars(cures, out / "freeze_in_cures.png", title="Freeze-in's cures: how runs end"))
    files.append(_plot_predictions(summary["predictions"], out / "predictions.png"))
    return files


def _plot_predictions(pr, path) -> Path:
    from bioplastic.plotting import save_figure, subplots

    fig, axes = subplots(1, 2, figsize=(10, 3.6))
    taus = [float(t) for t in pr["tau_s"]]
    med = [pr["tau_s"][t]["median"] for t in pr["tau_s"]]
    lo = [pr["tau_s"][t]["ci95"][0] for t in pr["tau_s"]]
    hi = [pr["tau_s"][t]["ci95"][1] for t in pr["tau_s"]]
    axes[0].errorbar(taus, med, yerr=[np.subtract(med, lo), np.subtract(hi, med)], fmt="o-", capsize=3)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("STP time constant tau_s (steps)")
    axes[0].set_ylabel("iterations to criterion (median, 95% CI)")
    axes[0].set_title("e-prop + TCR-STP, flip-flop")
    fw = pr["fast_weights"]
    for i, m in enumerate(("relative_size", "sign_index", "depressing_fraction")):
        for k, key in enumerate(("during", "after")):
            e = fw[m][key]
            if e["n"]:
                axes[1].errorbar(i + (k - 0.5) * 0.3, e["median"],
                                 yerr=[[e["median"] - e["ci95"][0]], [e["ci95"][1] - e["median"]]], fmt="o",
                                 color=f"C{k}", capsize=3, label=f"{key} the search phase" if i == 0 else None)
    axes[1].set_xticks(range(3))
    axes[1].set_xticklabels(["|S| / |W|", "sign index", "depressing fraction"])
    axes[1].axhline(0, color="k", lw=0.5)
    if axes[1].get_legend_handles_labels()[0]:
        axes[1].legend(frameon=False, fontsize=8)
    axes[1].set_title("fast weights S at the end of trials")
    fig.tight_layout()
    return save_figure(fig, path)


# ----------------------------------------------------------------------------- report

def _fmt_size(m: dict) -> str:
    """A median summary of a size that can blow up (a weight norm, a distance): scientific when large."""
    if not m or not m.get("n") or m.get("median") is None or not np.isfinite(m["median"]) or m["median"] < 1e3:
        return fmt_median(m, 2)
    lo, hi = m["ci95"]
    return f"{m['median']:.1e} [{lo:.1e}, {hi:.1e}] (n={m['n']})"


def report(pred, s) -> str:
    R = pred["results"]
    L = ["# local_rules_tcr: TCR for bio-plausible learning, with controls; freeze-in; predictions", "",
         f"LFRNN N={MODEL['n_units']}, g={MODEL['g']}, tau=10, dt=1, tanh. Tasks at their default settings; success "
         "is the task's sustained held-out criterion (docs/tasks.md), every run takes the memory test (silences 10x "
         f"longer). Rules at their tuned settings (local_rules_tuning): "
         + "; ".join(f"{r}: {TUNED[r]['rule_settings'] or 'defaults'}, Adam lr={TUNED[r]['training']['lr']:g}, batch "
                     f"{TUNED[r]['training']['batch_size']}" for r in TUNED)
         + f". TCR-STP eta_s={TCR_STP['eta_s']}, tau_s={TCR_STP['tau_s']:g}; freeze-in eta={FREEZE_IN['eta']:g}. "
         f"{s['seeds']} paired seeds per condition. Outcomes: solved (sustained criterion), diverged, collapsed "
         "(>= 95% of long-silence trials settle onto one point; docs/analysis.md), unsolved.", ""]
    if pred["quick"]:
        L += ["**Quick setting**: one task, e-prop only, 3 seeds, short budgets, a 2-cell phase diagram. A smoke "
              "test of the protocol, not estimates.", ""]
    L += ["## Controls and claim (g)", ""]
    for task, t in R["controls"].items():
        L += [f"### {task} (budget {t['budget']} iterations)", "",
              "| condition | solved | collapsed | diverged | iterations to criterion | speed-up vs alone | memory test "
              "(median; passes) | stable fixed points | memories held | alignment with BPTT |",
              "|---|---|---|---|---|---|---|---|---|---|"]
        for c, d in t["conditions"].items():
            o = d["outcomes"]
            sp = t["speedup_vs_alone"].get(c)
            L.append(f"| {c} | {fmt_fraction(o['solved'], d['n'])} | {o['collapsed']} | {o['diverged']} | "
                     f"{fmt_censored(d['time_to_criterion'])} | {'' if sp is None else format_effect(sp)} | "
                     f"{fmt_median(d['memory_generalization'], 2)}; {d['memory_passes']} | "
                     f"{fmt_median(d['n_stable'])} | {fmt_median(d['memories_held'])} | "
                     f"{fmt_median(d['alignment_with_bptt'], 2)} |")
        L.append("")
    L += ["`tcr_stp alone` changes no parameter, so the untrained network with TCR-STP is evaluated once. Speed-up: "
          "iterations without / with, paired by seed; censored pairs give bounds (>=, <=). Alignment: cosine of the "
          f"update with the BPTT gradient on the same batch, every {s['diagnostics_every']} iterations, mean over "
          "training, median over seeds.", "", "![outcomes](control_outcomes.png)", "",
          "## Freeze-in: collapse, divergence and the cures (claim h)", "",
          "| cell | cure | solved | collapsed | diverged | unsolved | distance to trivial attractor | stable points | "
          "final accuracy | norm of W |", "|---|---|---|---|---|---|---|---|---|---|"]
    for k, c in R["freeze_in"].items():
        o = c["outcomes"]
        L.append(f"| eta={c['eta']:g}, eta_s={c['eta_s']:g} | {c['cure']} | {fmt_fraction(o['solved'], c['n'])} | "
                 f"{fmt_fraction(o['collapsed'], c['n'])} | {fmt_fraction(o['diverged'], c['n'])} | {o['unsolved']} | "
                 f"{_fmt_size(c['distance_to_trivial'])} | {fmt_median(c['n_stable'])} | "
                 f"{fmt_median(c['final_accuracy'], 2)} | {_fmt_size(c['W_norm'])} |")
    L += ["", "Distance to the trivial attractor: median over trials of |x(end of silence) - x_trivial| / sqrt(N), "
          "x_trivial the point most long-silence trials settle on (docs/analysis.md).", "",
          "![phase diagram](freeze_in_phase_diagram.png)", ""]
    pr = R["predictions"]
    P = pred["predictions"]
    L += ["## Predictions for experiments", "",
          f"e-prop + TCR-STP on the flip-flop. The search phase was detected (plateau then drop) in "
          f"{pr['search_phase_detected']} of {pr['n_seeds']} unblocked runs; K per seed (drop, else sustained "
          f"criterion): {pr['K']}.", "",
          f"- Blocking STP during the search phase: {format_effect(P['blocking_stp_during_search']['effect'])} "
          f"iterations (blocked runs solved: {pr['blocked during search']['solved_blocked']} of "
          f"{len(pr['blocked during search']['seeds'])}).",
          f"- Blocking STP after the search phase: {format_effect(P['blocking_stp_after_search']['effect'])} "
          f"iterations (solved: {pr['blocked after search']['solved_blocked']} of "
          f"{len(pr['blocked after search']['seeds'])}).",
          f"- tau_s: fastest {P['tau_s_fastest_range']['fastest']}, range {P['tau_s_fastest_range']['range']} "
          "(" + ", ".join(f"{t}: {fmt_censored(m)}" for t, m in pr["tau_s"].items()) + ").",
          f"- Fast-weight size |S|/|W|: during {fmt_median(P['fast_weight_size']['during'], 4)}, after "
          f"{fmt_median(P['fast_weight_size']['after'], 4)}; after - during "
          f"{format_effect(P['fast_weight_size']['after_minus_during'])}.",
          f"- Fast-weight sign index: during {fmt_median(P['fast_weight_sign']['during'], 3)}, after "
          f"{fmt_median(P['fast_weight_sign']['after'], 3)}; after - during "
          f"{format_effect(P['fast_weight_sign']['after_minus_during'])}.", "",
          "![predictions](predictions.png)", "", wall_time_line(pred)]
    return "\n".join(L) + "\n"


# ----------------------------------------------------------------------------- main

def _light(r):
    """Drop per-iteration arrays a summary does not need (keep the loss curve)."""
    return {k: v for k, v in r.items() if not isinstance(v, np.ndarray) or k == "lambda_tcr"}


def main(out, quick=False, seeds=None):
    s, out = resolve_settings(FULL, QUICK, quick, seeds, out)
    jobs = control_jobs(out, s) + freeze_in_jobs(out, s) + prediction_jobs(out, s, 1)
    results, wall = map_jobs(run_local_analysis_job, jobs, desc="local_rules_tcr")
    results = [_light(r) for r in results]
    pred1 = [(j, r) for j, r in zip(jobs, results) if j["block"] == "predictions"]
    K = {r["seed"]: search_end(r) for j, r in pred1 if j["arm"] == "on" and search_end(r) is not None}
    jobs2 = prediction_jobs(out, s, 2, K)
    results2, wall2 = map_jobs(run_local_analysis_job, jobs2, desc="local_rules_tcr (blocking)")
    jobs, results = jobs + jobs2, results + [_light(r) for r in results2]

    def block(name):
        sel = [(j, r) for j, r in zip(jobs, results) if j["block"] == name]
        return [j for j, _ in sel], [r for _, r in sel]

    summary = {"controls": summarise_controls(*block("controls"), s),
               "freeze_in": summarise_freeze_in(*block("freeze_in"), s),
               "predictions": summarise_predictions(*block("predictions"), s)}
    pred = {"protocol": "local_rules_tcr", "quick": quick, "provenance": provenance(list(range(s["seeds"]))),
            "settings": {**s, "model": MODEL, "tasks": TASKS, "tuned": TUNED, "tcr_stp": TCR_STP,
                         "freeze_in": FREEZE_IN, "training": TRAINING},
            **run_record(results, wall + wall2), "results": summary,
            "claims": {"g": claim_g(summary["controls"], s), "h": claim_h(summary["freeze_in"], s)},
            "predictions": predictions_for_experiments(summary["predictions"])}
    return write_outputs(out, pred, report(pred, s), plot=lambda: plot(jobs, results, summary, s, out))


if __name__ == "__main__":
    script_main(main, __doc__, "local_rules_tcr")
