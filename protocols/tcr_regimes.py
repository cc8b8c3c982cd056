"""TCR where the search phase is: does TCR shorten it, and where does it enable learning?

Claims (c) TCR accelerates BPTT, (d) TCR enables learning in strongly
connected networks and (e) TCR helps LSTMs in the search phase, measured
in the regimes where they should appear: the cells of ``search_phase`` that
have a search phase (a plateau, then a drop, in most runs), strongly coupled
LFRNNs (g = 3 and 5) and LSTM cells with a search phase. In every cell the
TCR loss term (SPEC 4) is swept over a log grid of strengths, relative to the
losses at initialisation so that a value means the same in every task and
model (``tcr_relative``: lambda 0.1 makes the TCR term 10% of the task loss at
the start), and at the middle strength over schedules (constant, decaying,
on during the search phase only: the ``search_phase`` controller) and
targets (rates or states; whole trial or the task's memory epoch). 10
paired seeds per condition (same initial weights and trials as the run
without TCR).

Per cell and condition: success within budget; iterations to the sustained
criterion; the paired speed-up (iterations without TCR / with TCR; censored
runs make bounds); the paired speed-up of the plateau length (pairs in which
both runs have a plateau then a drop); memory generalization; stable fixed
points of the final network. ``predictions.json`` lists every cell and
condition whose speed-up interval excludes 1, in either direction.

Run: ``bioplastic run tcr_regimes [--quick] [--seeds N] [--out DIR] [--scheduler ADDRESS]``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bioplastic.claims import (format_effect, median_ci_effect, paired_mean_difference_effect,
                               paired_speedup_effect)
from bioplastic.experiments import run_search_job
from bioplastic.plotting import cell_heatmaps
from bioplastic.protocol import (map_jobs, resolve_settings, run_record, script_main, wall_time_line,
                                 write_outputs)
from bioplastic.provenance import provenance
from bioplastic.stats import MIN_N_INTERVAL, censored_median, fmt_censored, fmt_median, median_summary

N_UNITS = 32
SGD = {"optimizer": "sgd", "lr": 0.3}
ADAM_1E3 = {"optimizer": "adam", "lr": 1e-3}
ADAM_3E3 = {"optimizer": "adam", "lr": 3e-3}
# The cells, chosen from the search_phase protocol's full run (2026-12-07, seeds
# 0-9, without TCR) before any TCR run; the seeds here are 100-109, so the choice
# does not select the very runs measured.
# - search_phase: cells meeting search_phase's stated rule (a plateau then a drop
#   in >= 50% of runs, success in >= 30%), the PLRNN ones (flip-flop with SGD:
#   7/10 plateaus, 10/10 solved; delayed addition with Adam 1e-3: 7/10, 10/10);
# - lstm: the LSTM cells meeting the same rule (delayed addition, Adam 1e-3:
#   10/10, 10/10; flip-flop, SGD: 8/10, 10/10);
# - strong_coupling: LFRNN at g >= 3 where training without TCR fails or is slow
#   (flip-flop, Adam 1e-3, g = 3 and 5: 0/10 solved; delayed addition, g = 3:
#   0/10, stuck on the plateau; flip-flop, Adam 3e-3, g = 5: 6/10 solved).
# Evidence-accumulation cells also meet the rule, but there the sustained
# criterion is met (10-60 iterations) before the loss drops (90-300), so a
# shorter search phase cannot show in iterations to criterion: left out.
# Budgets as in search_phase.
CELLS = {
    "flipflop / PLRNN / SGD 0.3": {"kind": "search_phase", "task": {"name": "flipflop"},
                                   "model": {"kind": "plrnn"}, "optimiser": SGD, "budget": 2000},
    "delayed_addition / PLRNN / Adam 1e-3": {"kind": "search_phase", "task": {"name": "delayed_addition"},
                                             "model": {"kind": "plrnn"}, "optimiser": ADAM_1E3, "budget": 4000},
    "flipflop / LFRNN g=3 / Adam 1e-3": {"kind": "strong_coupling", "task": {"name": "flipflop"},
                                         "model": {"kind": "lfrnn", "g": 3.0}, "optimiser": ADAM_1E3,
                                         "budget": 2000},
    "flipflop / LFRNN g=5 / Adam 1e-3": {"kind": "strong_coupling", "task": {"name": "flipflop"},
                                         "model": {"kind": "lfrnn", "g": 5.0}, "optimiser": ADAM_1E3,
                                         "budget": 2000},
    "flipflop / LFRNN g=5 / Adam 3e-3": {"kind": "strong_coupling", "task": {"name": "flipflop"},
                                         "model": {"kind": "lfrnn", "g": 5.0}, "optimiser": ADAM_3E3,
                                         "budget": 2000},
    "delayed_addition / LFRNN g=3 / Adam 1e-3": {"kind": "strong_coupling", "task": {"name": "delayed_addition"},
                                                 "model": {"kind": "lfrnn", "g": 3.0}, "optimiser": ADAM_1E3,
                                                 "budget": 4000},
    "delayed_addition / LSTM / Adam 1e-3": {"kind": "lstm", "task": {"name": "delayed_addition"},
                                            "model": {"kind": "lstm"}, "optimiser": ADAM_1E3, "budget": 4000},
    "flipflop / LSTM / SGD 0.3": {"kind": "lstm", "task": {"name": "flipflop"}, "model": {"kind": "lstm"},
                                  "optimiser": SGD, "budget": 2000},
}
# TCR conditions, fixed before the run. lambda is relative (tcr_relative=True).
# The log grid of strengths (constant, rates, whole trial), then at the middle
# strength 0.1: two schedules and two targets.
LAMBDAS = (0.01, 0.03, 0.1, 0.3, 1.0)
MIDDLE = 0.1
CONDITIONS = {
    "no TCR": {"lambda_tcr": 0.0},
    **{f"lambda {v:g}": {"lambda_tcr": v} for v in LAMBDAS},
    "decay 0.1": {"lambda_tcr": {"kind": "exponential", "value": MIDDLE, "half_life": 250}},
    "search phase only 0.1": {"lambda_tcr": {"kind": "search_phase", "value": MIDDLE}},
    "states 0.1": {"lambda_tcr": MIDDLE, "tcr_on": "states"},
    "memory epoch 0.1": {"lambda_tcr": MIDDLE, "tcr_epoch": "memory"},
}
TRAINING = {"batch_size": 32, "clip": 1.0, "continue_after": 200, "tcr_relative": True}
# Smallest gain in success (fraction of runs reaching the criterion) that claim (d) counts
# as "enables learning"; set after the results were seen (see bioplastic.claims.VERDICT_RULE).
SUCCESS_MARGIN = 0.2
SEED0 = 100  # seeds SEED0 .. SEED0 + seeds - 1 (search_phase used 0-9)
FULL = {"seeds": 10, "cells": list(CELLS), "conditions": list(CONDITIONS)}
QUICK = {"seeds": 5, "cells": ["flipflop / PLRNN / SGD 0.3", "delayed_addition / LSTM / Adam 1e-3"],
         "conditions": ["no TCR", "lambda 0.1", "search phase only 0.1"]}


def make_jobs(out: Path, settings: dict) -> list[dict]:
    jobs = []
    for cell in settings["cells"]:
        c = CELLS[cell]
        for cond in settings["conditions"]:
            for seed in range(SEED0, SEED0 + settings["seeds"]):
                name = f"{cell}_{cond}_s{seed}".replace(" / ", "_").replace(" ", "").replace("=", "")
                jobs.append({
                    "name": name, "seed": seed, "cell": cell, "condition": cond,
                    "model": {**c["model"], "n_units": N_UNITS}, "task": dict(c["task"]),
                    "training": {**TRAINING, **c["optimiser"], "iterations": c["budget"], **CONDITIONS[cond]},
                    "run_file": str(out / "runs" / f"{name}.h5"), "attractors": True,
                })
    return jobs



def _plateau_length(r):
    p = r["plateau"]
    return p.get("plateau_length") if p.get("detected") else None


def summarise_condition(rows, base, budget) -> dict:
    """One condition's numbers; ``base`` is the no-TCR rows of the cell (None for the baseline itself)."""
    rows = sorted(rows, key=lambda r: r["seed"])
    its = [r["converged_at"] for r in rows]
    out = {
        "n": len(rows), "success": sum(i is not None for i in its),
        "iterations_to_criterion": censored_median(its, budget),
        "plateau": sum(bool(r["plateau"].get("detected")) for r in rows),
        "plateau_length": median_summary(_plateau_length(r) for r in rows),
        "memory_generalization": median_summary(r["memory_generalization"] for r in rows),
        "stable_fixed_points": median_summary((r["attractors"] or {}).get("n_stable") for r in rows),
        "memories_formed": sum(bool((r["attractors"] or {}).get("formed")) for r in rows),
        "lambda_scale": median_summary(r["lambda_scale"] for r in rows),
        "per_seed": [{"seed": r["seed"], "converged_at": r["converged_at"], "plateau_length": _plateau_length(r),
                      "memory_generalization": r["memory_generalization"],
                      "n_stable": (r["attractors"] or {}).get("n_stable"), "status": r["status"]} for r in rows],
    }
    if base is not None:
        base = sorted(base, key=lambda r: r["seed"])
        if [r["seed"] for r in base] != [r["seed"] for r in rows]:
            raise ValueError("paired conditions must have the same seeds")
        out["speedup"] = paired_speedup_effect([r["converged_at"] for r in base], its, budget)
        both = [(a, b) for a, b in zip(map(_plateau_length, base), map(_plateau_length, rows))
                if a is not None and b is not None]
        out["plateau_speedup"] = median_ci_effect([a / max(b, 1.0) for a, b in both], kind="ratio", null=1.0)
        out["plateau_pairs"] = {"both": len(both),
                                "removed": sum(a is not None and b is None for a, b in
                                               zip(map(_plateau_length, base), map(_plateau_length, rows))),
                                "added": sum(a is None and b is not None for a, b in
                                             zip(map(_plateau_length, base), map(_plateau_length, rows)))}
        out["success_difference"] = paired_mean_difference_effect(
            [r["converged_at"] is not None for r in base], [i is not None for i in its], margin=SUCCESS_MARGIN)
    return out


def summarise(jobs, results, settings) -> dict:
    by = {}
    for j, r in zip(jobs, results):
        by.setdefault((j["cell"], j["condition"]), []).append(r)
    out = {}
    for cell in settings["cells"]:
        budget = CELLS[cell]["budget"]
        base = by[(cell, "no TCR")]
        out[cell] = {"kind": CELLS[cell]["kind"], "budget": budget, "conditions": {}}
        for cond in settings["conditions"]:
            rows = by[(cell, cond)]
            out[cell]["conditions"][cond] = summarise_condition(rows, None if cond == "no TCR" else base, budget)
    return out


def _excludes_one(eff) -> str | None:
    if eff.get("all_censored") or eff["n"] < MIN_N_INTERVAL or not np.all(np.isfinite(eff["ci95"])):
        return None
    lo, hi = eff["ci95"]
    return "faster with TCR" if lo > 1 else ("slower with TCR" if hi < 1 else None)


def significant(summary) -> list[dict]:
    """Every cell and condition whose speed-up interval (iterations to criterion or plateau) excludes 1."""
    out = []
    for cell, d in summary.items():
        for cond, c in d["conditions"].items():
            for measure in ("speedup", "plateau_speedup"):
                if measure in c:
                    direction = _excludes_one(c[measure])
                    if direction:
                        out.append({"cell": cell, "condition": cond, "measure": measure, "direction": direction,
                                    "effect": format_effect(c[measure])})
    return out


def claims(summary, settings) -> dict:
    rows = {}

    def cells_of(kinds, key):
        return [{"name": f"{cell} / {cond}", "effect": c[key]} for cell, d in summary.items() if d["kind"] in kinds
                for cond, c in d["conditions"].items() if key in c]

    common = (f"BPTT, N={N_UNITS}, {settings['seeds']} paired seeds (seeds {SEED0}-{SEED0 + settings['seeds'] - 1}) "
              "per condition; lambda_TCR relative to the initial losses")
    rows["c"] = {"claim": "TCR accelerates BPTT", "protocol": "tcr_regimes",
                 "setting": common + "; search-phase cells of search_phase and strongly coupled LFRNNs (not LSTM)",
                 "measure": "paired speed-up of iterations to the sustained criterion (no TCR / TCR)",
                 "direction": "greater", "cells": cells_of(("search_phase", "strong_coupling"), "speedup")}
    rows["d"] = {"claim": "TCR enables learning in strongly connected networks", "protocol": "tcr_regimes",
                 "setting": common + "; LFRNN g = 3 and 5 (flip-flop, delayed addition)",
                 "measure": "paired difference in success within budget (TCR - no TCR), mean over seeds",
                 "direction": "greater", "cells": cells_of(("strong_coupling",), "success_difference")}
    rows["e"] = {"claim": "TCR helps LSTMs in the search phase", "protocol": "tcr_regimes",
                 "setting": common + "; LSTM cells with a search phase",
                 "measure": "paired speed-up of iterations to the sustained criterion (no TCR / TCR)",
                 "direction": "greater", "cells": cells_of(("lstm",), "speedup")}
    return rows


def plot(summary, settings, out: Path) -> list[Path]:
    cells, conds = list(summary), [c for c in settings["conditions"] if c != "no TCR"]
    vals = np.full((len(cells), len(conds)), np.nan)
    text = [[""] * len(conds) for _ in cells]
    succ = np.full((len(cells), len(conds) + 1), np.nan)
    stext = [[""] * (len(conds) + 1) for _ in cells]
    for i, cell in enumerate(cells):
        for j, cond in enumerate(["no TCR"] + conds):
            c = summary[cell]["conditions"][cond]
            succ[i, j] = c["success"] / c["n"]
            stext[i][j] = f"{c['success']}/{c['n']}"
            if cond == "no TCR":
                continue
            e = c["speedup"]
            if not e.get("all_censored") and np.isfinite(e["median"]):
                vals[i, j - 1] = np.log2(e["median"])
                ci = "" if e["n"] < MIN_N_INTERVAL else f"\n[{e['ci95'][0]:.2f}, {e['ci95'][1]:.2f}]"
                text[i][j - 1] = f"{e.get('bound') or ''}{e['median']:.2f}{ci}"
            else:
                text[i][j - 1] = "all\ncensored"
    p1 = cell_heatmaps({"speed-up of iterations to the sustained criterion (median [95% CI]; >= bound)": {
        "rows": cells, "cols": conds, "values": vals, "text": text, "xlabel": "TCR condition (lambda relative "
        "to the initial losses)", "ylabel": "cell"}}, out / "speedup_heatmap.png",
        colorbar_label="log2 speed-up (> 0: TCR faster)", vmin=-2, vmax=2, cmap="RdBu",
        title="TCR speed-up per cell and condition (paired seeds)")
    p2 = cell_heatmaps({"success within budget": {
        "rows": cells, "cols": ["no TCR"] + conds, "values": succ, "text": stext, "xlabel": "condition",
        "ylabel": "cell"}}, out / "success_heatmap.png", colorbar_label="fraction of runs reaching the criterion",
        cmap="magma", title="success within budget, with and without TCR")
    return [p1, p2]


def report(pred, settings) -> str:
    lines = ["# tcr_regimes: does TCR shorten the search phase, and where does it enable learning?", "",
             f"BPTT; N={N_UNITS}; batch {TRAINING['batch_size']}, clipping at {TRAINING['clip']}; training continued "
             f"{TRAINING['continue_after']} iterations past the sustained criterion; {settings['seeds']} paired "
             f"seeds per condition (seeds {SEED0}-{SEED0 + settings['seeds'] - 1}; search_phase chose the cells on "
             "seeds 0-9). lambda_TCR is relative to the losses at initialisation (`tcr_relative`). Conditions: "
             + "; ".join(f"`{c}`: {CONDITIONS[c]}" for c in settings["conditions"]) + ".", "",
             "Speed-up: iterations to the sustained criterion without TCR / with TCR, per seed; a run that did not "
             "reach the criterion makes its pair a bound, pairs where neither did are left out (counted as "
             "censored). Plateau speed-up: plateau length without / with, over pairs where both runs have a "
             "plateau then a drop.", ""]
    if pred["significant"]:
        lines += ["Intervals that exclude 1:", ""]
        lines += [f"- {s['cell']} / {s['condition']} ({s['measure']}): {s['effect']}, {s['direction']}"
                  for s in pred["significant"]]
    else:
        lines += ["No speed-up interval excludes 1."]
    lines += [""]
    for cell, d in pred["results"].items():
        lines += [f"## {cell} ({d['kind'].replace('_', ' ')}, budget {d['budget']})", "",
                  "| condition | success | iterations to criterion | speed-up | plateau then drop | plateau speed-up "
                  "(pairs with both) | memory test | stable fixed points |", "|---|---|---|---|---|---|---|---|"]
        for cond, c in d["conditions"].items():
            sp = format_effect(c["speedup"]) if "speedup" in c else ""
            pp = ""
            if "plateau_speedup" in c:
                pairs = c["plateau_pairs"]
                pp = (format_effect(c["plateau_speedup"]) if pairs["both"] else "no pair") + \
                    f"; removed {pairs['removed']}, added {pairs['added']}"
            lines.append(f"| {cond} | {c['success']}/{c['n']} | {fmt_censored(c['iterations_to_criterion'])} | {sp} | "
                         f"{c['plateau']}/{c['n']} | {pp} | {fmt_median(c['memory_generalization'], 2)} | "
                         f"{fmt_median(c['stable_fixed_points'])} |")
        lines.append("")
    lines += ["![speed-up](speedup_heatmap.png)", "", "![success](success_heatmap.png)", "",
              "TCR's form and the search-phase controller are the project's reconstruction (SPEC 4); the "
              "effects are reported as measured, whatever their sign.", "",
              wall_time_line(pred)]
    return "\n".join(lines) + "\n"


def main(out, quick=False, seeds=None):
    settings, out = resolve_settings(FULL, QUICK, quick, seeds, out)
    jobs = make_jobs(out, settings)
    results, wall = map_jobs(run_search_job, jobs, desc="tcr_regimes")
    summary = summarise(jobs, results, settings)
    pred = {"protocol": "tcr_regimes", "quick": quick,
            "provenance": provenance(list(range(SEED0, SEED0 + settings["seeds"]))),
            "settings": {**settings, "n_units": N_UNITS, "training": TRAINING,
                         "cells": {c: CELLS[c] for c in settings["cells"]},
                         "conditions": {c: CONDITIONS[c] for c in settings["conditions"]}},
            **run_record(results, wall), "significant": significant(summary),
            "results": summary, "claims": claims(summary, settings)}
    return write_outputs(out, pred, report(pred, settings), plot=lambda: plot(summary, settings, out))


if __name__ == "__main__":
    script_main(main, __doc__, "tcr_regimes")
