"""Compare trained networks with a (synthetic) population recording.

LFRNNs learn the 3-bit flip-flop by BPTT (several seeds); each is then run on
the exact trials of ``data/flipflop_population.h5`` and compared with the
recorded rates by Procrustes distance and CCA on the top principal components
(:mod:`bioplastic.compare`). Controls: the same networks before training, and
the trained networks against trial-shuffled data (which breaks the trial
correspondence). The dataset is synthetic (data/README.md), so the numbers
demonstrate the pipeline, not a biological finding.

Run: ``bioplastic run compare_to_data [--quick] [--seeds N]``.
"""
from __future__ import annotations


import numpy as np

from bioplastic.compare import compare, pca
from bioplastic.datasets import load_example
from bioplastic.experiments import run_train_job
from bioplastic.io.atomic import write_text
from bioplastic.io.runfile import read_run
from bioplastic.networks import make_network
from bioplastic.plotting import pc_trajectories
from bioplastic.protocol import map_jobs, resolve_settings, script_main, write_json
from bioplastic.stats import bootstrap_median_ci

FULL = {"seeds": 6, "n_units": 64, "iterations": 2000}
QUICK = {"seeds": 3, "n_units": 32, "iterations": 800}
N_COMPONENTS = 3


def main(out, quick=False, seeds=None):
    settings, out = resolve_settings(FULL, QUICK, quick, seeds, out)
    data = load_example("flipflop_population")
    jobs = [{"name": f"seed{s}", "seed": s, "model": {"kind": "lfrnn", "n_units": settings["n_units"], "g": 1.5},
             "task": {"name": "flipflop"},
             "training": {"iterations": settings["iterations"], "lr": 3e-3},
             "run_file": str(out / "runs" / f"seed{s}.h5")} for s in range(settings["seeds"])]
    results, wall = map_jobs(run_train_job, jobs, desc="compare_to_data")
    rec = data["rates_hz"]
    shuffle = np.random.default_rng(0).permutation(rec.shape[1])
    rows, example = [], None
    for job, res in zip(jobs, results):
        run = read_run(job["run_file"])
        model = dict(run.config["model"])
        net = make_network(model.pop("kind"), **model)
        trained = net.forward(run.params, data["inputs"]).rates[1:]
        untrained = net.forward(run.checkpoints[0], data["inputs"]).rates[1:]
        row = {"seed": job["seed"], "status": res["status"], "converged_at": res["converged_at"],
               "trained": compare(trained, rec, N_COMPONENTS),
               "untrained": compare(untrained, rec, N_COMPONENTS),
               "trained_vs_shuffled_trials": compare(trained, rec[:, shuffle], N_COMPONENTS)}
        rows.append(row)
        if example is None:
            example = trained
    summary = {}
    for cond in ("trained", "untrained", "trained_vs_shuffled_trials"):
        for measure in ("procrustes", "cca_mean"):
            med, lo, hi = bootstrap_median_ci([r[cond][measure] for r in rows])
            summary[f"{cond}.{measure}"] = {"median": med, "ci95": [lo, hi]}
    pred = {"protocol": "compare_to_data", "quick": quick, "settings": settings, "dataset": data["path"],
            "dataset_is_synthetic": bool(data["attrs"].get("synthetic", False)),
            "n_components": N_COMPONENTS, "per_seed": rows, "summary": summary, "wall_seconds": wall}
    write_json(out / "predictions.json", pred)
    pc_trajectories({"model (trained, seed 0)": pca(example.reshape(-1, example.shape[-1]), 3)[0],
                     "data (synthetic)": pca(rec.reshape(-1, rec.shape[-1]), 3)[0]},
                    n_steps=rec.shape[0], path=out / "pc_trajectories.png", n_trials=6)
    lines = ["# compare_to_data: trained LFRNNs vs a synthetic population recording", "",
             f"{settings['seeds']} seeds, LFRNN N={settings['n_units']} g=1.5, BPTT up to {settings['iterations']} "
             f"iterations; comparison on the top {N_COMPONENTS} PCs of each. Dataset: synthetic (data/README.md).",
             "", "| condition | Procrustes distance (median, 95% CI) | mean CCA (median, 95% CI) |", "|---|---|---|"]
    for cond in ("trained", "untrained", "trained_vs_shuffled_trials"):
        p, c = summary[f"{cond}.procrustes"], summary[f"{cond}.cca_mean"]
        lines.append(f"| {cond} | {p['median']:.3f} [{p['ci95'][0]:.3f}, {p['ci95'][1]:.3f}] | "
                     f"{c['median']:.3f} [{c['ci95'][0]:.3f}, {c['ci95'][1]:.3f}] |")
    lines += ["", "Lower Procrustes distance and higher CCA mean more similar population geometry. The "
              "shuffled control keeps each signal's statistics but breaks the trial correspondence.",
              "", "![PC trajectories](pc_trajectories.png)", "", f"Wall time: {wall:.0f} s."]
    text = "\n".join(lines) + "\n"
    write_text(out / "report.md", text)
    print(text)
    return pred


if __name__ == "__main__":
    script_main(main, __doc__, "compare_to_data")
