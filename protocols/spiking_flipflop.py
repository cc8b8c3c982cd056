"""Spiking flip-flop: does a trained rate network keep its memories as Poisson populations?

LFRNNs (SPEC 1, N=64, g=1.5, tanh) learn the 3-bit flip-flop by BPTT (or are
loaded from the run files of an earlier run), are exported to Brian2 in
spiking mode (SPEC 8: each unit a population of Poisson neurons, see
``bioplastic.export.brian2_spiking``), and the exported standalone script is
run on held-out trials. Per seed the protocol reports

- the flip-flop accuracy of the output decoded from the spiking populations
  (and of the rate network on the same trials), and the correlation of the
  population rates with the rate network's rates;
- for each of the 8 memories (sign patterns of the 3 bits) how long the
  spiking network holds it without input: the three bits are written by
  one pulse each, then the input stays silent for a long window, and the
  hold time is the time until the decoded pattern first differs from the
  written one for ``LOSS_STEPS`` consecutive steps (censored at the window),
  for several population sizes M (fewer neurons, more finite-size noise);
- the accuracy when one rate-network time unit is 1 ms instead of 10 ms (the
  network then runs 10x faster against the same synaptic filters and sees
  10x fewer spikes per time constant).

Run: ``bioplastic run spiking_flipflop [--quick] [--seeds N] [--out DIR]``. On 2 cores the quick
setting (2 seeds, 5 s hold window) takes about 1.5-3 minutes, the full one (5 seeds, 10 s window, 4
population sizes) about 20 minutes when the machine is shared.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from bioplastic.analysis.hold import (DEFINITION as HOLD_DEFINITION, WRITE_STEPS, hold_by_memory,
                                      hold_inputs, hold_times)
from bioplastic.experiments import run_train_job
from bioplastic.io.atomic import write_text
from bioplastic.plotting import memory_hold_times
from bioplastic.protocol import map_jobs, script_main, write_json
from bioplastic.stats import bootstrap_median_ci

FULL = {"seeds": 5, "n_units": 64, "iterations": 3000, "eval_trials": 64, "hold_steps": 1000,
        "hold_repeats": 4, "hold_pop_sizes": [100, 50, 25, 10]}
QUICK = {"seeds": 2, "n_units": 64, "iterations": 2000, "eval_trials": 16, "hold_steps": 500,
         "hold_repeats": 2, "hold_pop_sizes": [100, 25, 10]}
# Trained past the default criterion (0.95) so that the attractors are clear.
TASK = {"name": "flipflop", "criterion": 0.98}
TRAINING = {"batch_size": 32, "lr": 3e-3, "clip": 1.0, "checkpoint_every": 500}
SPIKING = {"n_per_pop": 100, "nu_max": 200.0, "tau_syn": 5.0, "tau_out": 10.0, "dt_spike": 0.5}
TIME_UNIT_MS = 10.0   # one rate-network step (dt = 1) is 10 ms, tau = 10 is 100 ms
def spiking_job(job: dict) -> dict:
    """Export one trained run, run its standalone script and the memory-hold test."""
    from bioplastic.export import brian2 as b2x

    spiking = {**SPIKING, "seed": job["seed"]}
    exp = b2x.write_export(job["run_file"], job["export_dir"], mode="spiking", force=True, codegen="auto",
                           trials=job["eval_trials"], trial_seed=1000 + job["seed"],
                           time_unit=TIME_UNIT_MS * 1e-3, spiking=spiking)
    summary = b2x.run_script_and_compare(exp)  # the standalone script, in a fresh python -I
    net, params, task = exp["network"], exp["params"], exp["task"]
    # memory hold: spiking (library call, same code as the script) and the rate network
    inputs, pats = hold_inputs(job["hold_steps"], job["hold_repeats"])
    dt_ms = TIME_UNIT_MS * net.dt
    held_spiking = {}
    for k, M in enumerate(job["hold_pop_sizes"]):
        sp = b2x.simulate(exp["model"], inputs, mode="spiking", codegen=exp["settings"]["codegen"],
                          **{**spiking, "n_per_pop": M, "seed": 10_000 + 100 * job["seed"] + k})
        held_spiking[str(M)] = hold_by_memory(hold_times(sp["outputs"], pats, dt_ms), pats)
    held_rate = hold_by_memory(hold_times(net.forward(params, inputs).outputs, pats, dt_ms), pats)
    # the same trials with 1 ms per time unit
    fast = b2x.to_brian2_model(net, params, time_unit=1e-3, mode="spiking")
    fast_spk = {**spiking, "dt_spike": 0.1, "seed": 20_000 + job["seed"]}
    res_fast = b2x.simulate(fast, exp["batch"].inputs, mode="spiking", codegen=exp["settings"]["codegen"],
                            **fast_spk)
    traj = net.forward(params, exp["batch"].inputs)
    fig_fast = b2x.spiking_agreement(traj, res_fast, task, exp["batch"])
    return {"seed": job["seed"], "agreement": summary["agreement"],
            "script_wall_seconds": summary["script"]["wall_seconds"],
            "bioplastic_modules_in_script": summary["script"]["bioplastic_modules_loaded"],
            "hold_ms_spiking": held_spiking, "hold_ms_rate": held_rate,
            "window_ms": float((inputs.shape[0] - WRITE_STEPS + 1) * dt_ms),
            "time_unit_1ms": {k: fig_fast[k] for k in ("accuracy_spiking", "accuracy_rate", "rate_correlation")}}


def summarise(train, spk, settings) -> dict:
    window = spk[0]["window_ms"]
    acc = [s["agreement"]["accuracy_spiking"] for s in spk]
    corr = [s["agreement"]["rate_correlation"] for s in spk]
    med_acc, lo_acc, hi_acc = bootstrap_median_ci(acc, seed=0)
    med_c, lo_c, hi_c = bootstrap_median_ci(corr, seed=0)
    hold = {}
    for M in spk[0]["hold_ms_spiking"]:
        per_memory = {}
        for lab in spk[0]["hold_ms_rate"]:
            times = np.concatenate([s["hold_ms_spiking"][M][lab] for s in spk])
            rate_times = np.concatenate([s["hold_ms_rate"][lab] for s in spk])
            med, lo, hi = bootstrap_median_ci(times, seed=0)
            per_memory[lab] = {"median_hold_ms": med, "ci95": [lo, hi], "n_trials": int(times.size),
                               "fraction_held_full_window": float(np.mean(times >= window)),
                               "rate_network_fraction_held": float(np.mean(rate_times >= window)),
                               "rate_network_median_hold_ms": float(np.median(rate_times)),
                               "rate_network_per_seed_ms": [float(np.median(s["hold_ms_rate"][lab]))
                                                            for s in spk],
                               "per_seed_median_ms": [float(np.median(s["hold_ms_spiking"][M][lab]))
                                                      for s in spk]}
        pooled = np.concatenate([t for s in spk for t in s["hold_ms_spiking"][M].values()])
        hold[M] = {"per_memory": per_memory, "pooled_median_ms": float(np.median(pooled)),
                   "pooled_fraction_held_full_window": float(np.mean(pooled >= window)),
                   "pooled_mean_ms": float(np.mean(pooled))}
    return {
        "training": [{"seed": t["seed"], "status": t["status"], "converged_at": t["converged_at"],
                      "final_accuracy": t["final_accuracy"], "run_file": t["run_file"]} for t in train],
        "accuracy_spiking": {"per_seed": acc, "median": med_acc, "ci95": [lo_acc, hi_acc]},
        "accuracy_rate": {"per_seed": [s["agreement"]["accuracy_rate"] for s in spk]},
        "rate_correlation": {"per_seed": corr, "median": med_c, "ci95": [lo_c, hi_c]},
        "output_correlation": {"per_seed": [s["agreement"]["output_correlation"] for s in spk]},
        "mean_rate_hz": {"per_seed": [s["agreement"]["mean_rate_hz"] for s in spk]},
        "hold_window_ms": window,
        "hold_by_population_size": hold,
        "time_unit_1ms": {"accuracy_spiking": [s["time_unit_1ms"]["accuracy_spiking"] for s in spk],
                          "accuracy_rate": [s["time_unit_1ms"]["accuracy_rate"] for s in spk],
                          "rate_correlation": [s["time_unit_1ms"]["rate_correlation"] for s in spk]},
        "script_ran_without_bioplastic": all(not s["bioplastic_modules_in_script"] for s in spk),
    }



def fmt_list(v, f="{:.3f}"):
    return ", ".join(f.format(x) for x in v)


def report(pred, settings, wall) -> str:
    s = pred["summary"]
    seeds = list(range(settings["seeds"]))
    lines = [
        "# spiking_flipflop: trained flip-flop LFRNNs as Poisson populations in Brian2", "",
        f"LFRNN N={settings['n_units']}, g=1.5, tanh, tau=10, dt=1, trained by BPTT (Adam lr {TRAINING['lr']}, "
        f"batch {TRAINING['batch_size']}, up to {settings['iterations']} iterations, stop at flip-flop accuracy "
        f">= {TASK['criterion']}), seeds {seeds}. Export: one rate-network time unit = {TIME_UNIT_MS:g} ms "
        f"(tau = {10 * TIME_UNIT_MS:g} ms); each unit = {SPIKING['n_per_pop']} Poisson neurons, "
        f"0..{SPIKING['nu_max']:g} Hz for tanh -1..1, synaptic filter {SPIKING['tau_syn']:g} ms, readout filter "
        f"{SPIKING['tau_out']:g} ms, dt {SPIKING['dt_spike']:g} ms (brian2 cython target when a compiler "
        "works, else numpy). Spike seed = run seed.", "",
        "## Decoding and tracking", "",
        f"On {settings['eval_trials']} held-out flip-flop trials per seed (1 s each), run by the exported "
        f"standalone script in a fresh `python -I` (bioplastic not importable: "
        f"{'yes' if s['script_ran_without_bioplastic'] else 'NO'}):", "",
        "| seed | training | accuracy, spiking | accuracy, rate network | corr(r_hat, r) | corr(outputs) | "
        "mean rate (Hz) | accuracy at 1 ms/unit, spiking (rate) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, t in enumerate(s["training"]):
        tr = f"{t['status']} at {t['converged_at']}" if t["converged_at"] is not None else t["status"]
        lines.append(f"| {t['seed']} | {tr} | {s['accuracy_spiking']['per_seed'][i]:.3f} | "
                     f"{s['accuracy_rate']['per_seed'][i]:.3f} | {s['rate_correlation']['per_seed'][i]:.3f} | "
                     f"{s['output_correlation']['per_seed'][i]:.3f} | {s['mean_rate_hz']['per_seed'][i]:.1f} | "
                     f"{s['time_unit_1ms']['accuracy_spiking'][i]:.3f} ({s['time_unit_1ms']['accuracy_rate'][i]:.3f}) |")
    a, c = s["accuracy_spiking"], s["rate_correlation"]
    lines += ["", f"Median over seeds: spiking accuracy {a['median']:.3f} (95% CI {a['ci95'][0]:.3f}-"
              f"{a['ci95'][1]:.3f}), rate correlation {c['median']:.3f} ({c['ci95'][0]:.3f}-{c['ci95'][1]:.3f}); "
              "bootstrap over seeds, wide with few seeds.", "",
              "## How long the spiking network holds each memory", "",
              f"Definition: {HOLD_DEFINITION}. Window {s['hold_window_ms']:.0f} ms, "
              f"{settings['hold_repeats']} trials per memory and seed (independent spikes); M = neurons per "
              "population. Medians with a bootstrap 95% interval over the trials of all seeds; a median equal "
              "to the window is a lower bound (censored).", ""]
    hold = s["hold_by_population_size"]
    M0 = max(hold, key=int)
    lines += [f"M = {M0} (the export's setting):", "",
              "| memory | median hold (ms) [95% CI] | held whole window | per-seed medians (ms) | "
              "rate network: held whole window | rate network: per-seed hold (ms) |",
              "|---|---|---|---|---|---|"]
    for lab, m in hold[M0]["per_memory"].items():
        lines.append(f"| {lab} | {m['median_hold_ms']:.0f} [{m['ci95'][0]:.0f}, {m['ci95'][1]:.0f}] | "
                     f"{m['fraction_held_full_window']:.2f} | {fmt_list(m['per_seed_median_ms'], '{:.0f}')} | "
                     f"{m['rate_network_fraction_held']:.2f} | {fmt_list(m['rate_network_per_seed_ms'], '{:.0f}')} |")
    lines += ["", "The rate network is deterministic (no noise), so its hold time per seed and memory is one "
              "number; where it is below the window, that memory is a slow point rather than a stable fixed "
              "point of the trained network (training trials last 1 s)."]
    labs = list(hold[M0]["per_memory"])
    lines += ["", "All population sizes (median hold in ms per memory, pooled over seeds):", "",
              "| M | " + " | ".join(labs) + " | all: median (mean) | all: held whole window |",
              "|---|" + "---|" * (len(labs) + 2)]
    for M, h in sorted(hold.items(), key=lambda kv: -int(kv[0])):
        lines.append(f"| {M} | " + " | ".join(f"{h['per_memory'][lab]['median_hold_ms']:.0f}" for lab in labs)
                     + f" | {h['pooled_median_ms']:.0f} ({h['pooled_mean_ms']:.0f}) | "
                     f"{h['pooled_fraction_held_full_window']:.2f} |")
    lines += ["",
              "![hold times](hold_times.png)", "",
              "Per-seed export folders `export/seed<S>/` hold the standalone script, its weights, "
              "`comparison.png` (rate network vs spiking populations, one trial) and `agreement.json`.", "",
              "Caveats: the spiking network is a mean-field mapping (all-to-all between populations, Poisson "
              "neurons, analog input current), not a fitted LIF network; its only noise is the finite "
              "population. Decoding lags the rate network by about the filter time constants, which costs "
              "accuracy around each input pulse.", "", f"Wall time: {wall:.0f} s."]
    return "\n".join(lines) + "\n"


def main(out, quick=False, seeds=None):
    out = Path(out)
    settings = dict(QUICK if quick else FULL)
    if seeds is not None:
        settings["seeds"] = int(seeds)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    jobs = [{"name": f"flipflop_seed{s}", "seed": s,
             "model": {"kind": "lfrnn", "n_units": settings["n_units"], "g": 1.5},
             "task": dict(TASK), "training": {**TRAINING, "iterations": settings["iterations"]},
             "run_file": str(out / "runs" / f"flipflop_seed{s}.h5")} for s in range(settings["seeds"])]
    train, wall_train = map_jobs(run_train_job, jobs, desc="train")
    spk_jobs = [{"seed": j["seed"], "run_file": j["run_file"], "export_dir": str(out / "export" / f"seed{j['seed']}"),
                 "eval_trials": settings["eval_trials"], "hold_steps": settings["hold_steps"],
                 "hold_repeats": settings["hold_repeats"], "hold_pop_sizes": settings["hold_pop_sizes"]}
                for j in jobs]
    spk, wall_spk = map_jobs(spiking_job, spk_jobs, desc="brian2")
    wall = wall_train + wall_spk
    summary = summarise(train, spk, settings)
    pred = {"protocol": "spiking_flipflop", "quick": quick, "seeds": list(range(settings["seeds"])),
            "settings": {**settings, "task": TASK, "training": TRAINING, "spiking": SPIKING,
                         "time_unit_ms": TIME_UNIT_MS},
            "hold_definition": HOLD_DEFINITION, "summary": summary,
            "per_seed": [{k: v for k, v in s.items()} for s in spk], "wall_seconds": wall}
    write_json(out / "predictions.json", pred)
    panels = {f"M = {M} neurons per unit": {lab: [t for s in spk for t in s["hold_ms_spiking"][M][lab]]
                                            for lab in spk[0]["hold_ms_rate"]}
              for M in spk[0]["hold_ms_spiking"]}
    memory_hold_times(panels, out / "hold_times.png",
                      window_ms=summary["hold_window_ms"],
                      title=f"Spiking flip-flop: hold time of each memory, seeds {pred['seeds']} pooled "
                            "(dots: trials, bar: median, dashed: window)")
    text = report(pred, settings, wall)
    write_text(out / "report.md", text)
    print(text)
    return pred


if __name__ == "__main__":
    script_main(main, __doc__, "spiking_flipflop")
