"""Where is the search phase? Plateaus and drops of BPTT training without TCR.

The paper's claims are about training that sits on a plateau (the search
phase) and then drops. This protocol maps where that happens, before TCR is
measured anywhere: a grid of task x memory length x model (LFRNN at five
gains, PLRNN, rank-one RNN, LSTM) x optimiser (Adam at three learning rates,
SGD), 10 seeds per cell, BPTT, no TCR. Per cell: the fraction of runs with
a plateau followed by a drop (``bioplastic.analysis.abrupt``), the median
plateau length, success within budget and iterations to the sustained
criterion (docs/tasks.md), the memory test and the stable fixed points of
the final network against the number the task needs. Heatmaps summarise the
grid; ``predictions.json`` lists the search-phase cells by a rule stated
before the run (below) and carries claim (a).

Run: ``bioplastic run search_phase [--quick] [--seeds N] [--out DIR] [--scheduler ADDRESS]``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bioplastic.analysis.summary import wilson_interval
from bioplastic.claims import fraction_effect
from bioplastic.experiments import run_search_job
from bioplastic.plotting import cell_heatmaps
from bioplastic.protocol import (map_jobs, resolve_settings, run_record, script_main, wall_time_line,
                                 write_outputs)
from bioplastic.provenance import provenance
from bioplastic.stats import censored_median, fmt_censored, fmt_fraction, fmt_median, median_summary
from bioplastic.tasks import get_task

# The grid, fixed before the full run (2026-12-07). Sizes and budgets are chosen
# to fit 2 cores in 90 minutes: N = 32 units (the flip-flop, delayed addition and
# evidence accumulation are all learnable at this size), budgets that let Adam
# 1e-3 solve the flip-flop (pilot: ~1000-1400 iterations) and an LSTM or PLRNN
# solve delayed addition (pilot: 1500-5600 iterations at 1e-3 to 3e-3). SGD's
# learning rate, 0.3 with gradient clipping at norm 1, was the middle of
# {0.03, 0.1, 0.3, 1.0} on a pilot flip-flop run (seed 1000, not a grid seed):
# the largest at which the LFRNN, PLRNN and LSTM all reached criterion.
ARCHS = {
    "LFRNN g=1": {"kind": "lfrnn", "g": 1.0},
    "LFRNN g=1.5": {"kind": "lfrnn", "g": 1.5},
    "LFRNN g=3": {"kind": "lfrnn", "g": 3.0},
    "LFRNN g=5": {"kind": "lfrnn", "g": 5.0},
    "LFRNN g=8": {"kind": "lfrnn", "g": 8.0},
    "PLRNN": {"kind": "plrnn"},
    "rank-one": {"kind": "rank1"},
    "LSTM": {"kind": "lstm"},
}
OPTIMISERS = {
    "Adam 1e-4": {"optimizer": "adam", "lr": 1e-4},
    "Adam 1e-3": {"optimizer": "adam", "lr": 1e-3},
    "Adam 3e-3": {"optimizer": "adam", "lr": 3e-3},
    "SGD 0.3": {"optimizer": "sgd", "lr": 0.3},
}
BUDGETS = {"flipflop": 2000, "delayed_addition": 4000, "evidence_accumulation": 2000}
# memory factor: the task's silent intervals stretched by this factor (Task.memory_settings)
MEMORY = (1, 2)
N_UNITS = 32
TRAINING = {"batch_size": 32, "clip": 1.0, "continue_after": 200}
# A cell "has a search phase" when, in at least half of its runs, a plateau is
# followed by a drop, and at least 3 in 10 runs reach the sustained criterion
# within the budget (so a drop is seen and can be shortened). Stated before the run.
SEARCH_PHASE_RULE = {"min_plateau_fraction": 0.5, "min_success_fraction": 0.3}
FULL = {"seeds": 10, "tasks": list(BUDGETS), "memory": list(MEMORY), "archs": list(ARCHS),
        "optimisers": list(OPTIMISERS)}
QUICK = {"seeds": 3, "tasks": ["flipflop", "delayed_addition"], "memory": [1],
         "archs": ["LFRNN g=1.5", "PLRNN", "LSTM"], "optimisers": ["Adam 1e-3", "SGD 0.3"]}


def task_settings(task: str, memory: int) -> dict:
    """The task's settings with its silences ``memory`` times longer (1: the defaults)."""
    t = get_task(task)
    return {"name": task, **(t.memory_settings(memory) if memory > 1 else {})}


def make_jobs(out: Path, settings: dict) -> list[dict]:
    jobs = []
    for task in settings["tasks"]:
        for mem in settings["memory"]:
            for arch in settings["archs"]:
                for opt in settings["optimisers"]:
                    for seed in range(settings["seeds"]):
                        name = f"{task}_m{mem}_{arch}_{opt}_s{seed}".replace(" ", "").replace("=", "")
                        jobs.append({
                            "name": name, "seed": seed, "cell": [task, mem, arch, opt],
                            "model": {**ARCHS[arch], "n_units": N_UNITS},
                            "task": task_settings(task, mem),
                            "training": {**TRAINING, **OPTIMISERS[opt], "iterations": BUDGETS[task]},
                            "run_file": str(out / "runs" / f"{name}.h5"), "attractors": True,
                        })
    return jobs


def classify(r: dict) -> str:
    """'plateau_then_drop', 'no_drop_unsolved' (stuck within the budget), 'smooth' or 'diverged'."""
    if r["status"] == "diverged":
        return "diverged"
    if r["plateau"]["detected"]:
        return "plateau_then_drop"
    return "no_drop_unsolved" if r["converged_at"] is None else "smooth"



def summarise_cell(rows: list[dict], budget: int) -> dict:
    n = len(rows)
    kinds = [classify(r) for r in rows]
    k_plateau = kinds.count("plateau_then_drop")
    solved = [r["converged_at"] for r in rows]
    k_solved = sum(v is not None for v in solved)
    att = [r["attractors"] or {} for r in rows]
    required = next((a.get("n_required") for a in att if a), None)
    return {
        "n": n, "budget": budget,
        "plateau": {"k": k_plateau, "n": n, "fraction": k_plateau / n, "ci95": list(wilson_interval(k_plateau, n))},
        "outcomes": {k: kinds.count(k) for k in ("plateau_then_drop", "smooth", "no_drop_unsolved", "diverged")},
        "plateau_length": median_summary(r["plateau"].get("plateau_length") for r in rows if r["plateau"]["detected"]),
        "drop_iteration": median_summary(r["plateau"].get("drop_iteration") for r in rows if r["plateau"]["detected"]),
        "success": {"k": k_solved, "n": n, "fraction": k_solved / n, "ci95": list(wilson_interval(k_solved, n))},
        "iterations_to_criterion": censored_median(solved, budget),
        "memory_generalization": median_summary(r["memory_generalization"] for r in rows),
        "final_accuracy": median_summary(r["final_accuracy"] for r in rows),
        "stable_fixed_points": median_summary(a.get("n_stable") for a in att),
        "n_required": required,
        "memories_formed": sum(bool(a.get("formed")) for a in att),
        "per_seed": [{"seed": r["seed"], "outcome": kd, "converged_at": r["converged_at"],
                      "plateau_length": r["plateau"].get("plateau_length"),
                      "drop_iteration": r["plateau"].get("drop_iteration"),
                      "memory_generalization": r["memory_generalization"],
                      "final_accuracy": r["final_accuracy"], "n_stable": (r["attractors"] or {}).get("n_stable")}
                     for r, kd in zip(rows, kinds)],
    }


def has_search_phase(cell: dict) -> bool:
    return (cell["plateau"]["fraction"] >= SEARCH_PHASE_RULE["min_plateau_fraction"]
            and cell["success"]["fraction"] >= SEARCH_PHASE_RULE["min_success_fraction"])


def cell_name(task, mem, arch, opt) -> str:
    return f"{task} x{mem} / {arch} / {opt}"


def summarise(jobs, results, settings) -> list[dict]:
    groups = {}
    for j, r in zip(jobs, results):
        groups.setdefault(tuple(j["cell"]), []).append(r)
    cells = []
    for (task, mem, arch, opt), rows in groups.items():
        c = summarise_cell(rows, BUDGETS[task])
        c.update({"name": cell_name(task, mem, arch, opt), "task": task, "memory": mem, "arch": arch,
                  "optimiser": opt, "task_settings": task_settings(task, mem)})
        c["search_phase"] = has_search_phase(c)
        cells.append(c)
    return cells


def claim_a(cells, settings) -> dict:
    return {
        "claim": "abrupt learning after a search plateau", "protocol": "search_phase",
        "setting": (f"BPTT without TCR, N={N_UNITS}, {settings['seeds']} seeds per cell; grid of "
                    f"{len(settings['tasks'])} tasks x memory {settings['memory']} x {len(settings['archs'])} "
                    f"models x {len(settings['optimisers'])} optimisers"),
        "measure": "fraction of runs with a plateau followed by a drop of the task loss (Wilson 95%), "
                   "null 0.5: most runs of the cell",
        "direction": "greater", "scope": "exists",
        "cells": [{"name": c["name"], "effect": fraction_effect(c["plateau"]["k"], c["plateau"]["n"], 0.5)}
                  for c in cells],
        "notes": "The detector is the project's reconstruction (docs/analysis.md); cells are the regimes.",
    }


def plot(cells, settings, out: Path) -> list[Path]:
    paths = []
    archs, opts = settings["archs"], settings["optimisers"]
    by = {(c["task"], c["memory"], c["arch"], c["optimiser"]): c for c in cells}
    for what, label, cmap, vmax in (("plateau", "fraction of runs with a plateau then a drop", "viridis", 1.0),
                                    ("success", "fraction of runs reaching the sustained criterion", "magma", 1.0)):
        panels = {}
        for task in settings["tasks"]:
            for mem in settings["memory"]:
                vals = np.full((len(archs), len(opts)), np.nan)
                text = [[""] * len(opts) for _ in archs]
                for i, a in enumerate(archs):
                    for jj, o in enumerate(opts):
                        c = by.get((task, mem, a, o))
                        if c is None:
                            continue
                        vals[i, jj] = c[what]["fraction"]
                        if what == "plateau":
                            pl = c["plateau_length"]
                            text[i][jj] = f"{c['plateau']['k']}/{c['n']}" + (
                                f"\n{pl['median']:.0f} it" if pl["n"] else "") + ("\n*" if c["search_phase"] else "")
                        else:
                            it = c["iterations_to_criterion"]
                            text[i][jj] = f"{c['success']['k']}/{c['n']}" + (
                                "" if it["all_censored"] else f"\n{'>=' if it['bound'] else ''}{it['median']:.0f}")
                panels[f"{task}, silences x{mem} (budget {BUDGETS[task]})"] = {
                    "rows": archs, "cols": opts, "values": vals, "text": text,
                    "xlabel": "optimiser (learning rate)", "ylabel": "model"}
        title = ("search phase: k/n runs with a plateau then a drop, median plateau length (iterations); "
                 "* = search-phase cell" if what == "plateau" else
                 "success within budget: k/n runs, median iterations to the sustained criterion")
        paths.append(cell_heatmaps(panels, out / f"{what}_heatmap.png", colorbar_label=label, cmap=cmap,
                                   vmax=vmax, title=title))
    return paths


def report(pred: dict, settings: dict) -> str:
    cells = pred["cells"]
    sp = [c for c in cells if c["search_phase"]]
    lines = [
        "# search_phase: where does BPTT training sit on a plateau and then drop?", "",
        f"BPTT without TCR; N={N_UNITS} units; batch {TRAINING['batch_size']}, gradient clipping at norm "
        f"{TRAINING['clip']}; budgets {({t: BUDGETS[t] for t in settings['tasks']})} iterations, training "
        f"continued {TRAINING['continue_after']} iterations past the sustained criterion (so the drop and what "
        f"follows are on the curve); {settings['seeds']} seeds per cell. Success: the task's sustained criterion "
        "(docs/tasks.md). Plateau and drop: `bioplastic.analysis.abrupt` (broken-stick fit of the smoothed "
        "log task loss). Memory test: accuracy with silences 10x longer than in training. Stable fixed points "
        "of the final network at zero input, against the number the task needs.", "",
        f"Search-phase cells (rule stated before the run: plateau-then-drop in >= "
        f"{SEARCH_PHASE_RULE['min_plateau_fraction']:.0%} of runs and success in >= "
        f"{SEARCH_PHASE_RULE['min_success_fraction']:.0%}): **{len(sp)} of {len(cells)}**.", "",
        "| cell | plateau then drop | plateau length | success | iterations to criterion | memory test | "
        "stable fixed points (need) | outcomes (drop / smooth / stuck / diverged) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in cells:
        pl, su = c["plateau"], c["success"]
        o = c["outcomes"]
        need = "-" if c["n_required"] is None else c["n_required"]
        lines.append(
            f"| {'**' if c['search_phase'] else ''}{c['name']}{'**' if c['search_phase'] else ''} | "
            f"{fmt_fraction(pl['k'], pl['n'], pl['ci95'])} | {fmt_median(c['plateau_length'])} | "
            f"{su['k']}/{su['n']} | {fmt_censored(c['iterations_to_criterion'])} | "
            f"{fmt_median(c['memory_generalization'], 2)} | {fmt_median(c['stable_fixed_points'])} ({need}) | "
            f"{o['plateau_then_drop']} / {o['smooth']} / {o['no_drop_unsolved']} / {o['diverged']} |")
    lines += ["", "Outcomes: *drop*: a plateau followed by a drop was detected; *smooth*: reached the criterion "
              "without a detected plateau; *stuck*: neither a drop nor success within the budget; *diverged*: "
              "non-finite loss.", "",
              "![search phase](plateau_heatmap.png)", "", "![success](success_heatmap.png)", "",
              wall_time_line(pred)]
    return "\n".join(lines) + "\n"


def main(out, quick=False, seeds=None):
    settings, out = resolve_settings(FULL, QUICK, quick, seeds, out)
    jobs = make_jobs(out, settings)
    results, wall = map_jobs(run_search_job, jobs, desc="search_phase")
    cells = summarise(jobs, results, settings)
    pred = {"protocol": "search_phase", "quick": quick,
            "provenance": provenance(list(range(settings["seeds"]))),
            "settings": {**settings, "n_units": N_UNITS, "training": TRAINING, "budgets": BUDGETS,
                         "archs": {a: ARCHS[a] for a in settings["archs"]},
                         "optimisers": {o: OPTIMISERS[o] for o in settings["optimisers"]}},
            "search_phase_rule": SEARCH_PHASE_RULE, **run_record(results, wall),
            "search_phase_cells": [c["name"] for c in cells if c["search_phase"]],
            "cells": cells, "claims": {"a": claim_a(cells, settings)}}
    return write_outputs(out, pred, report(pred, settings), plot=lambda: plot(cells, settings, out))


if __name__ == "__main__":
    script_main(main, __doc__, "search_phase")
