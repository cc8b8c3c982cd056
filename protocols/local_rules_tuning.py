"""Fair baselines: tune each local rule alone on a grid stated before the run.

Every local rule is compared with and without TCR at its own best setting,
so that a speed-up is not a rescue of a badly tuned rule. Node perturbation
(sigma, learning rate, baseline at batch 32; then the winner's batch at 16
and 64), e-prop (learning rate, feedback kind and scale) and the readout-only
delta rule (learning rate) each train LFRNNs (N=32, g=1.5) on the 3-bit
flip-flop (100 steps) for at most 2000 iterations, 5 seeds per setting, with
Adam on the rules' updates. The grids and the selection rule live in
:mod:`bioplastic.local_study` and were fixed before the run: most runs reaching the sustained criterion, then the lower median
iterations to it (unsolved runs at budget + 1), then the lower median final
held-out loss. A rule whose winner solves no run gets a third stage, stated
before it ran: its winner with a 10x budget (same seeds), to say which
budget it would need. Tuned on the flip-flop only (the cost of three tasks' grids on
2 cores); the same settings are used on every task.

Run: ``bioplastic run local_rules_tuning [--quick] [--seeds N] [--out DIR]``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bioplastic.local_study import (BATCH_STAGE, MODEL, TASKS, TRAINING, TUNING_BUDGET, rule_label, selection_key,
                                    tuning_grid)
from bioplastic.protocol import (map_jobs, resolve_settings, run_record, script_main, wall_time_line,
                                 write_outputs)
from bioplastic.provenance import provenance
from bioplastic.stats import censored_median, fmt_censored, fmt_fraction, median_summary, fmt_median
from bioplastic.tasks import get_task
from bioplastic.experiments import run_local_job

FULL = {"seeds": 5, "budget": TUNING_BUDGET, "rules": ["node_perturbation", "eprop", "readout"], "every": 1,
        "long_budget": 10 * TUNING_BUDGET}
# Quick: every third setting of each grid, 2 seeds, a quarter of the budget (a smoke test of the machinery).
QUICK = {"seeds": 2, "budget": TUNING_BUDGET // 4, "rules": ["node_perturbation", "eprop", "readout"], "every": 3,
         "long_budget": TUNING_BUDGET // 2}
TASK = "flipflop"


def grid_with_batches(np_best=None) -> dict:
    """The stage-1 grid, plus node perturbation's stage-2 batch sizes once its winner is known."""
    grid = tuning_grid()
    if np_best is not None:
        for batch in BATCH_STAGE:
            grid["node_perturbation"].append((dict(np_best["rule_settings"]),
                                              {**np_best["training"], "batch_size": batch}))
    return grid


def make_jobs(out: Path, s: dict, grid: dict, rules, start=0) -> list[dict]:
    jobs = []
    for rule in rules:
        n_stage1 = len(tuning_grid()[rule])  # the quick setting thins stage 1 only
        for i, (settings, training) in enumerate(grid[rule]):
            if i < start or (i % s["every"] and i < n_stage1):
                continue
            for seed in range(s["seeds"]):
                name = f"{rule}_{i:02d}_s{seed}"
                jobs.append({"name": name, "seed": seed, "rule_name": rule, "setting": i,
                             "model": dict(MODEL), "task": dict(TASKS[TASK]), "rule": rule,
                             "rule_settings": dict(settings),
                             "training": {**TRAINING, **training, "iterations": s["budget"]},
                             "run_file": str(out / "runs" / f"{name}.h5")})
    return jobs


def summarise(jobs, results, s, grid) -> dict:
    by = {}
    for j, r in zip(jobs, results):
        by.setdefault((j["rule_name"], j["setting"]), []).append(r)
    out = {}
    for rule in s["rules"]:
        rows = []
        for (rname, i), rs in sorted(by.items()):
            if rname != rule:
                continue
            settings, training = grid[rule][i]
            its = [r["converged_at"] for r in rs]
            k = sum(i is not None for i in its)
            rows.append({"setting": i, "rule_settings": settings, "training": training,
                         "label": rule_label(rule, settings, training),
                         "solved": k, "n": len(rs), "diverged": sum(r["status"] == "diverged" for r in rs),
                         "iterations_to_criterion": its,
                         "time_to_criterion": censored_median(its, s["budget"]),
                         "final_loss": [r["final_loss"] for r in rs],
                         "final_accuracy": [r["final_accuracy"] for r in rs],
                         "memory_generalization": [r["memory_generalization"] for r in rs],
                         "key": list(selection_key(k, its, s["budget"], [r["final_loss"] for r in rs]))})
        rows.sort(key=lambda r: tuple(r["key"]))
        out[rule] = {"best": rows[0], "ranked": rows}
    return out


def plot(summary, s, out: Path) -> list[Path]:
    from bioplastic.plotting import save_figure, subplots

    fig, axes = subplots(1, len(summary), figsize=(5 * len(summary), 4), squeeze=False)
    for ax, (rule, d) in zip(axes[0], summary.items()):
        rows = sorted(d["ranked"], key=lambda r: r["setting"])
        x = np.arange(len(rows))
        frac = [r["solved"] / r["n"] for r in rows]
        ax.bar(x, frac, color=["C3" if r["setting"] == d["best"]["setting"] else "C0" for r in rows])
        ax.set_xticks(x)
        ax.set_xticklabels([r["label"].replace(" ", "\n") for r in rows], fontsize=5, rotation=90)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("fraction of seeds solved")
        ax.set_title(f"{rule} (red: selected)")
    fig.suptitle(f"Tuning on the 3-bit flip-flop, budget {s['budget']} iterations, {s['seeds']} seeds per setting")
    fig.tight_layout()
    return [save_figure(fig, out / "tuning.png")]


def report(pred, s) -> str:
    L = ["# local_rules_tuning: each local rule at its best setting", "",
         f"LFRNN N={MODEL['n_units']}, g={MODEL['g']}, tanh; 3-bit flip-flop, {get_task(**TASKS[TASK]).n_steps} steps "
         f"(default settings); Adam on the rules' updates; budget {s['budget']} iterations; "
         f"{s['seeds']} seeds per setting; node perturbation's batch tuned in a second stage (its stage-1 winner at batch "
         f"{', '.join(map(str, BATCH_STAGE))}). Success: the task's sustained held-out criterion (accuracy >= 0.95 on "
         "3 evaluations in a row, every 10 iterations). Grid and selection rule stated before the run "
         "(bioplastic/local_study.py): most runs solved, then lower median iterations to criterion (unsolved at "
         "budget + 1), then lower median final held-out loss.", ""]
    if pred["quick"]:
        L += ["**Quick setting**: every third grid point, 2 seeds, a quarter of the budget. A smoke test, not "
              "a tuning.", ""]
    for rule, d in pred["results"].items():
        b = d["best"]
        L += [f"## {rule}: selected `{b['label']}`", "",
              "| rank | setting | solved | iterations to criterion (median, CI) | final held-out loss (median) | "
              "memory test accuracy (median) | diverged |", "|---|---|---|---|---|---|---|"]
        for rank, r in enumerate(d["ranked"], 1):
            L.append(f"| {rank} | {r['label']} | {fmt_fraction(r['solved'], r['n'])} | "
                     f"{fmt_censored(r['time_to_criterion'])} | "
                     f"{fmt_median(median_summary(r['final_loss']), 4)} | "
                     f"{fmt_median(median_summary(r['memory_generalization']), 2)} | {r['diverged']} |")
        L.append("")
    for rule, d in pred["results"].items():
        lb = d.get("long_budget")
        if lb is None:
            continue
        L += [f"**{rule} solved no run within {s['budget']} iterations at any setting.** Its selected setting "
              f"(`{lb['setting']}`) trained for {lb['budget']} iterations on the same seeds: "
              f"{fmt_fraction(lb['solved'], lb['n'])} solved, iterations to criterion {fmt_censored(lb['time_to_criterion'])}, "
              f"final held-out loss {fmt_median(median_summary(lb['final_loss']), 4)}, memory test "
              f"{fmt_median(median_summary(lb['memory_generalization']), 2)}. "
              + (f"It would need more than {lb['budget']} iterations." if lb["solved"] == 0 else ""), ""]
    L += ["![tuning](tuning.png)", "", wall_time_line(pred)]
    return "\n".join(L) + "\n"


def long_runs(out, s, rule, best):
    """The winner of ``rule`` for ``s["long_budget"]`` iterations; returns (jobs, results, wall)."""
    jobs = []
    for seed in range(s["seeds"]):
        name = f"{rule}_long_s{seed}"
        jobs.append({"name": name, "seed": seed, "rule_name": rule, "setting": best["setting"],
                     "model": dict(MODEL), "task": dict(TASKS[TASK]), "rule": rule,
                     "rule_settings": dict(best["rule_settings"]),
                     "training": {**TRAINING, **best["training"], "iterations": s["long_budget"]},
                     "run_file": str(out / "runs" / f"{name}.h5")})
    results, wall = map_jobs(run_local_job, jobs, desc=f"local_rules_tuning ({rule}, long budget)")
    return jobs, _scalars(results), wall


def _scalars(results):
    return [{k: v for k, v in r.items() if not isinstance(v, np.ndarray)} for r in results]


def main(out, quick=False, seeds=None):
    s, out = resolve_settings(FULL, QUICK, quick, seeds, out)
    grid = tuning_grid()
    jobs = make_jobs(out, s, grid, s["rules"])
    results, wall = map_jobs(run_local_job, jobs, desc="local_rules_tuning (stage 1)")
    results = _scalars(results)
    stage1 = summarise(jobs, results, s, grid)
    # Stage 2: node perturbation's stage-1 winner at other batch sizes (stated before the run).
    grid = grid_with_batches(stage1["node_perturbation"]["best"])
    jobs2 = make_jobs(out, s, grid, ["node_perturbation"], start=len(tuning_grid()["node_perturbation"]))
    results2, wall2 = map_jobs(run_local_job, jobs2, desc="local_rules_tuning (stage 2)")
    jobs, results = jobs + jobs2, results + _scalars(results2)
    summary = summarise(jobs, results, s, grid)
    # Stage 3: a rule whose winner solved nothing trains 10x longer at that setting.
    long = {}
    for rule, d in summary.items():
        if d["best"]["solved"] == 0:
            long[rule] = long_runs(out, s, rule, d["best"])
    wall += sum(w for _, _, w in long.values())
    results += [r for _, rs, _ in long.values() for r in rs]
    for rule, (ljobs, lres, _) in long.items():
        summary[rule]["long_budget"] = {"budget": s["long_budget"], "setting": summary[rule]["best"]["label"],
                                        "solved": sum(r["converged_at"] is not None for r in lres), "n": len(lres),
                                        "time_to_criterion": censored_median([r["converged_at"] for r in lres],
                                                                             s["long_budget"]),
                                        "final_loss": [r["final_loss"] for r in lres],
                                        "memory_generalization": [r["memory_generalization"] for r in lres]}
    best = {rule: {"rule_settings": d["best"]["rule_settings"], "training": d["best"]["training"]}
            for rule, d in summary.items()}
    pred = {"protocol": "local_rules_tuning", "quick": quick, "provenance": provenance(list(range(s["seeds"]))),
            "settings": {**s, "model": MODEL, "task": TASKS[TASK], "training": TRAINING,
                         "batch_stage": list(BATCH_STAGE)},
            **run_record(results, wall + wall2), "results": summary, "best": best}
    return write_outputs(out, pred, report(pred, s), plot=lambda: plot(summary, s, out))


if __name__ == "__main__":
    script_main(main, __doc__, "local_rules_tuning")
