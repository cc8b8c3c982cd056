"""Local learning rules and TCR: node perturbation and e-prop, with and without
TCR short-term plasticity, and freeze-in with and without its cures.

Block 1 (TCR for local rules). LFRNNs (SPEC 1) learn the 3-bit flip-flop and
delayed addition with node perturbation or e-prop (SPEC 3) in three variants,
over paired seeds (same initial weights and trials):

- ``plain``: the task rule alone;
- ``tcr_stp``: the network runs on ``W + S`` with TCR as short-term synaptic
  plasticity (SPEC 4; S resets every trial);
- ``tcr_stp+freeze_in``: the fast term is also consolidated into ``W``
  after every batch (freeze-in, this project's reconstruction).

Block 2 (freeze-in and its cures). e-prop with a strong freeze-in, alone, with
random weight perturbations, with the lambda_TCR(t) controller, and with
both.

Per condition: iterations to criterion per seed, success rate, loss
reduction, paired speed-ups with bootstrap intervals, and the rule
diagnostics (cosine alignment with BPTT, update variance).

Run: ``bioplastic run local_rules_tcr [--quick] [--seeds N] [--out DIR]``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bioplastic.io.atomic import write_text
from bioplastic.plotting import freeze_in_traces, iterations_to_criterion, loss_curves, rule_diagnostics
from bioplastic.protocol import map_jobs, script_main, write_json
from bioplastic.stats import bootstrap_median_ci, speedup_ratios
from bioplastic.tasks import get_task
from bioplastic.training.local import run_local_job

MODEL = {"kind": "lfrnn", "n_units": 32, "tau": 10.0, "dt": 1.0, "nonlinearity": "tanh"}
TASKS = {
    "flipflop": {"name": "flipflop", "n_steps": 40, "settle_steps": 2},
    "delayed_addition": {"name": "delayed_addition", "n_steps": 20, "response_steps": 3},
}
TCR_STP = {"eta_s": 0.02, "tau_s": 100.0}
FREEZE_IN = {"eta": 10.0}
VARIANTS = {
    "plain": ("", {}),
    "tcr_stp": ("+tcr_stp", {"tcr_stp": TCR_STP}),
    "tcr_stp+freeze_in": ("+tcr_stp+freeze_in", {"tcr_stp": TCR_STP, "freeze_in": FREEZE_IN}),
}
CURES = {
    "freeze_in": {},
    "+noise": {"perturbation_std": 0.1},
    "+controller": {"controller": True},
    "+noise+controller": {"perturbation_std": 0.1, "controller": True},
}
TRAINING = {"batch_size": 32, "optimizer": "adam", "lr": 3e-3, "diagnostics_every": 10, "checkpoint_every": 100}
# (QUICK and FULL set their own diagnostics_every.)

QUICK = {"gains": [3.0], "seeds": 3, "rules": ["eprop", "node_perturbation"], "tasks": list(TASKS),
         "iterations": {"flipflop": 400, "delayed_addition": 200}, "diagnostics_every": 20,
         "cure_gain": 1.5, "cure_etas": [30.0], "cure_iterations": 300}
FULL = {"gains": [1.5, 3.0], "seeds": 8, "rules": ["eprop", "node_perturbation"], "tasks": list(TASKS),
        "iterations": {"flipflop": 1500, "delayed_addition": 1500}, "diagnostics_every": 10,
        "cure_gain": 1.5, "cure_etas": [10.0, 30.0], "cure_iterations": 800}

TASK_TEXT = {
    "flipflop": "3-bit flip-flop (T={T}, the 2 steps after each pulse unscored, criterion accuracy 0.95; budget "
                "{budget} iterations)",
    "delayed_addition": "delayed addition (T={T}, response window 3 steps, correct if |error| < 0.04, criterion "
                        "0.9; budget {budget} iterations)",
}
SPEEDUP_DEFINITION = ("iterations to criterion of the plain rule / of the variant, paired by seed (same initial "
                      "weights and trials); an unsolved run counts as the budget, so a pair holding one is "
                      "censored and its ratio a bound")


def _job(out, name, seed, gain, task, rule, settings, iterations, diagnostics_every):
    return {"name": name, "seed": seed, "model": {**MODEL, "g": gain}, "task": dict(TASKS[task]),
            "rule": rule, "rule_settings": settings,
            "training": {**TRAINING, "iterations": iterations, "diagnostics_every": diagnostics_every},
            "run_file": str(out / "runs" / f"{name}.h5")}


def make_jobs(out: Path, s: dict) -> list[dict]:
    jobs = []
    for g in s["gains"]:
        for task in s["tasks"]:
            for rule in s["rules"]:
                for variant, (suffix, settings) in VARIANTS.items():
                    for seed in range(s["seeds"]):
                        name = f"g{g}_{task}_{rule}{suffix}_seed{seed}"
                        j = _job(out, name, seed, g, task, rule + suffix, settings, s["iterations"][task],
                                 s.get("diagnostics_every", TRAINING["diagnostics_every"]))
                        jobs.append({**j, "block": "tcr", "gain": g, "task_name": task, "task_rule": rule,
                                     "variant": variant})
    for eta in s["cure_etas"]:
        for cure, extra in CURES.items():
            for seed in range(s["seeds"]):
                name = f"cure_eta{eta}_{cure.strip('+')}_seed{seed}"
                settings = {"tcr_stp": TCR_STP, "freeze_in": {"eta": eta, **extra}}
                j = _job(out, name, seed, s["cure_gain"], "flipflop", "eprop+tcr_stp+freeze_in", settings,
                         s["cure_iterations"], s.get("diagnostics_every", TRAINING["diagnostics_every"]))
                jobs.append({**j, "block": "cure", "eta": eta, "cure": cure})
    return jobs


def _loss_change(r):
    """(final loss, final / first): means over the last and first 10 evaluated iterations."""
    tl = r["task_loss"][np.isfinite(r["task_loss"])]
    if tl.size < 2:
        return None, None
    k = max(1, min(10, tl.size // 4))
    return float(tl[-k:].mean()), float(tl[-k:].mean() / tl[:k].mean())


def _diag(r):
    a = r["alignment"][np.isfinite(r["alignment"])]
    ok = np.isfinite(r["update_variance"]) & (r["grad_norm"] > 0)
    rel = r["update_variance"][ok] / r["grad_norm"][ok] ** 2
    return (float(a.mean()) if a.size else None, float(np.median(rel)) if rel.size else None)


def _median(v):
    v = [x for x in v if x is not None]
    return float(np.median(v)) if v else None


def _condition(results, budget):
    its = [r["converged_at"] for r in results]
    solved = [i for i in its if i is not None]
    diags = [_diag(r) for r in results]
    losses = [_loss_change(r) for r in results]
    return {
        "iterations_to_criterion": its,
        "success_rate": len(solved) / len(its),
        "median_iterations_solved": float(np.median(solved)) if solved else None,
        "diverged": sum(r["status"] == "diverged" for r in results),
        "final_accuracy": [r["final_accuracy"] for r in results],
        "loss_ratio_last_first": [x[1] for x in losses],
        "final_task_loss": [x[0] for x in losses],
        "mean_alignment_with_bptt": _median([d[0] for d in diags]),
        "median_relative_update_variance": _median([d[1] for d in diags]),
        "budget": budget,
    }


def summarise(jobs, results, s) -> dict:
    by = {}
    for j, r in zip(jobs, results):
        key = ((j["gain"], j["task_name"], j["task_rule"], j["variant"]) if j["block"] == "tcr"
               else (j["eta"], j["cure"]))
        by.setdefault((j["block"], key), []).append(r)
    tcr = {}
    for g in s["gains"]:
        for task in s["tasks"]:
            budget = s["iterations"][task]
            for rule in s["rules"]:
                conds = {v: _condition(by[("tcr", (g, task, rule, v))], budget) for v in VARIANTS}
                base = conds["plain"]["iterations_to_criterion"]
                speed = {}
                for v in list(VARIANTS)[1:]:
                    other = conds[v]["iterations_to_criterion"]
                    ratios = speedup_ratios(base, other, budget)
                    med, lo, hi = bootstrap_median_ci(ratios, seed=0)
                    speed[v] = {"per_seed": ratios.tolist(), "median": med, "ci95": [lo, hi],
                                "censored_pairs": sum(a is None or b is None for a, b in zip(base, other))}
                tcr[f"g={g} {task} {rule}"] = {"gain": g, "task": task, "rule": rule, "conditions": conds,
                                                "speedup_vs_plain": speed}
    cures = {}
    for eta in s["cure_etas"]:
        conds = {}
        for cure in CURES:
            rs = by[("cure", (eta, cure))]
            c = _condition(rs, s["cure_iterations"])
            c["min_lambda_tcr"] = [float(np.nanmin(r["lambda_tcr"])) for r in rs]
            c["final_W_norm"] = [r["W_norm"] for r in rs]
            c["diverged_at"] = [r["diverged_at"] for r in rs]
            conds[cure] = c
        cures[f"eta={eta}"] = {"gain": s["cure_gain"], "freeze_in_eta": eta, "conditions": conds}
    return {"tcr": tcr, "freeze_in_cures": cures}


def target_variance(task_name) -> float | None:
    """Loss of always answering the mean, for delayed addition (the loss plateau to beat)."""
    if task_name != "delayed_addition":
        return None
    cfg = dict(TASKS[task_name])
    batch = get_task(cfg.pop("name"), **cfg).sample(4096, np.random.default_rng(0))
    return float(np.var(batch.trial_table["target"]))


def plot(jobs, results, out: Path, s):
    files = []
    panels, groups, diag = {}, {}, {}
    for j, r in zip(jobs, results):
        if j["block"] != "tcr":
            continue
        key = f"g={j['gain']} {j['task_name']}\n{j['task_rule']}"
        panels.setdefault(key, {}).setdefault(j["variant"], []).append(
            (r["iterations"], r["task_loss"], r["converged_at"]))
        if j["task_name"] == "flipflop":
            groups.setdefault(f"g={j['gain']} flipflop, {j['task_rule']}", {}).setdefault(j["variant"], []).append(
                r["converged_at"])
        if j["variant"] == "plain" and j["task_name"] == "flipflop" and j["gain"] == s["gains"][-1]:
            ok = r["grad_norm"] > 0
            rel = np.where(ok, r["update_variance"] / np.where(ok, r["grad_norm"], 1.0) ** 2, np.nan)
            diag.setdefault(j["task_rule"], []).append((r["iterations"], r["alignment"], rel))
    files.append(loss_curves(panels, out / "loss_curves.png",
                             title="Local rules: task loss per seed (dot: criterion reached)"))
    budget = s["iterations"]["flipflop"]
    files.append(iterations_to_criterion(groups, out / "iterations_to_criterion.png", budget=budget,
                                         title="3-bit flip-flop: iterations to criterion (open: not solved)"))
    files.append(rule_diagnostics(diag, out / "rule_diagnostics.png",
                                  title=f"Rule diagnostics on the flip-flop (g={s['gains'][-1]}, plain rules)"))
    cure_panels = {}
    for j, r in zip(jobs, results):
        if j["block"] == "cure":
            cure_panels.setdefault(f"eta={j['eta']} {j['cure']}", []).append(
                (r["iterations"], r["lambda_tcr"], r["tcr_loss"], r["accuracy"], r["diverged_at"]))
    files.append(freeze_in_traces(cure_panels, out / "freeze_in_cures.png",
                                  title=f"e-prop + strong freeze-in on the flip-flop (g={s['cure_gain']}): "
                                        "x marks divergence"))
    return files


def _fmt_its(its):
    return ", ".join("-" if i is None else str(i) for i in its)


def _fmt(x, nd=2):
    return "-" if x is None or not np.isfinite(x) else f"{x:.{nd}f}"


def report(pred, s, wall) -> str:
    L = [
        "# local_rules_tcr: TCR for node perturbation and e-prop; freeze-in and its cures", "",
        f"LFRNN N={MODEL['n_units']}, tau=10, dt=1, tanh, gains {s['gains']}; Adam lr={TRAINING['lr']} on the "
        f"rules' updates, batch {TRAINING['batch_size']}; {s['seeds']} paired seeds per condition. Tasks: "
        + "; ".join(TASK_TEXT[t].format(T=TASKS[t]["n_steps"], budget=s["iterations"][t]) for t in s["tasks"])
        + ". Success is the task's criterion on the training batch, confirmed on 128 held-out trials.", "",
        f"TCR-STP: eta_s={TCR_STP['eta_s']}, tau_s={TCR_STP['tau_s']}; freeze-in consolidation eta="
        f"{FREEZE_IN['eta']} (block 1). Node perturbation: sigma=0.1, baseline from an unperturbed pass. e-prop: "
        "symmetric feedback (W_out^T).", "",
    ]
    if pred["quick"]:
        L += ["**Quick setting**: local rules are slow learners, so this uses a small network (N=32), short trials, "
              "one gain, 3 seeds and small budgets. Read the numbers as a smoke test of the phenomena, not as "
              "estimates: intervals from 3 seeds are wide.", ""]
    L += ["## Block 1: TCR for local rules", "",
          "| gain | task | rule | variant | success | iterations to criterion (per seed) | final loss (median) "
          "| loss last/first (median) | speed-up vs plain (median, 95% CI) | censored pairs | alignment with BPTT "
          "| rel. update variance |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, d in pred["results"]["tcr"].items():
        for v, c in d["conditions"].items():
            sp = d["speedup_vs_plain"].get(v)
            sps = "" if sp is None else f"{sp['median']:.2f} [{sp['ci95'][0]:.2f}, {sp['ci95'][1]:.2f}]"
            cen = "" if sp is None else sp["censored_pairs"]
            L.append(f"| {d['gain']} | {d['task']} | {d['rule']} | {v} | {c['success_rate']:.2f} | "
                     f"{_fmt_its(c['iterations_to_criterion'])} | {_fmt(_median(c['final_task_loss']), 3)} | "
                     f"{_fmt(_median(c['loss_ratio_last_first']))} | "
                     f"{sps} | {cen} | {_fmt(c['mean_alignment_with_bptt'])} | "
                     f"{_fmt(c['median_relative_update_variance'], 3)} |")
    tv = pred.get("delayed_addition_mean_predictor_loss")
    L += ["", f"Speed-up: {SPEEDUP_DEFINITION}. Final loss: mean task loss of the last 10 evaluated iterations; "
          "loss last/first: that over the mean of the first 10 (below 1: the loss fell). Alignment: cosine of the rule's update with the "
          f"BPTT gradient on the same batch, averaged over training (measured every {s.get('diagnostics_every', 10)} "
          "iterations). Relative update "
          "variance: trace of the covariance of the full-batch update (from 4 sub-batches) over its squared norm, "
          "median over training.", ""]
    if tv is not None:
        L += [f"Delayed addition: always answering the mean sum gives a loss of {tv:.3f}; a final loss near it "
              "means nothing was learned about the marked values. (The last/first ratio depends on where the "
              "loss started: read the final loss against this number.)", ""]
    L += ["## Block 2: freeze-in and its cures", "",
          f"e-prop + TCR-STP + freeze-in on the flip-flop at g={s['cure_gain']}, budget {s['cure_iterations']} "
          "iterations. Cures: random weight perturbations (sigma_w=0.1) and the homeostatic lambda_TCR(t) "
          "controller (backs TCR off when the mean squared rate change leaves [0.5, 1.5] x its initial value).", "",
          "| freeze-in eta | condition | diverged | success | iterations to criterion | final accuracy (held out) | "
          "min lambda_TCR | final norm of W |", "|---|---|---|---|---|---|---|---|"]
    for key, d in pred["results"]["freeze_in_cures"].items():
        for cure, c in d["conditions"].items():
            acc = ", ".join(_fmt(a) for a in c["final_accuracy"])
            lam = ", ".join(_fmt(x) for x in c["min_lambda_tcr"])
            wn = ", ".join("-" if w is None or not np.isfinite(w) else f"{w:.3g}" for w in c["final_W_norm"])
            L.append(f"| {d['freeze_in_eta']} | {cure} | {c['diverged']}/{len(c['final_accuracy'])} | "
                     f"{c['success_rate']:.2f} | {_fmt_its(c['iterations_to_criterion'])} | {acc} | {lam} | {wn} |")
    L += ["", "## Predictions", ""]
    L += [f"- {p}" for p in pred["predictions"]]
    L += ["", "## Caveats", "",
          "- The paper's body is not available: TCR-STP (SPEC 4) and especially freeze-in (consolidation of the "
          "STP term, its reward gate, the perturbation and controller cures) are this project's reconstruction.",
          "- Local rules here feed Adam (the usual practice for e-prop); with SGD the learning rate is the rules' "
          "eta and everything is slower.",
          "- Effects are reported as measured, including where TCR did not help or hurt.", "",
          "![loss curves](loss_curves.png)", "", "![iterations to criterion](iterations_to_criterion.png)", "",
          "![rule diagnostics](rule_diagnostics.png)", "", "![freeze-in cures](freeze_in_cures.png)", "",
          f"Wall time: {wall:.0f} s on the local processes."]
    return "\n".join(L) + "\n"


def predictions(res) -> list[str]:
    out = []
    for key, d in res["tcr"].items():
        for v, sp in d["speedup_vs_plain"].items():
            c, p = d["conditions"][v], d["conditions"]["plain"]
            out.append(f"{d['rule']} on {d['task']} (g={d['gain']}): {v} changes iterations to criterion by a "
                       f"factor {sp['median']:.2f} (95% CI {sp['ci95'][0]:.2f}-{sp['ci95'][1]:.2f}; success "
                       f"{c['success_rate']:.2f} vs {p['success_rate']:.2f} plain; {sp['censored_pairs']} censored "
                       "pairs)")
    for key, d in res["freeze_in_cures"].items():
        c = d["conditions"]
        n = len(c["freeze_in"]["final_accuracy"])
        out.append(f"strong freeze-in (eta={d['freeze_in_eta']}, g={d['gain']}): diverged in "
                   f"{c['freeze_in']['diverged']}/{n} seeds alone, {c['+noise']['diverged']}/{n} with weight "
                   f"perturbations, {c['+controller']['diverged']}/{n} with the controller, "
                   f"{c['+noise+controller']['diverged']}/{n} with both")
    return out


def main(out, quick=False, seeds=None):
    out = Path(out)
    s = dict(QUICK if quick else FULL)
    if seeds is not None:
        s["seeds"] = int(seeds)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    jobs = make_jobs(out, s)
    results, wall = map_jobs(run_local_job, jobs, desc="local_rules_tcr")
    res = summarise(jobs, results, s)
    pred = {"protocol": "local_rules_tcr", "quick": quick, "settings": {**s, **TRAINING},
            "model": MODEL, "tasks": TASKS, "tcr_stp": TCR_STP, "freeze_in": FREEZE_IN, "cures": CURES,
            "speedup_definition": SPEEDUP_DEFINITION, "wall_seconds": wall,
            "delayed_addition_mean_predictor_loss": target_variance("delayed_addition")
            if "delayed_addition" in s["tasks"] else None,
            "results": res, "predictions": predictions(res)}
    write_json(out / "predictions.json", pred)
    plot(jobs, results, out, s)
    text = report(pred, s, wall)
    write_text(out / "report.md", text)
    print(text)
    return pred


if __name__ == "__main__":
    script_main(main, __doc__, "local_rules_tcr")
