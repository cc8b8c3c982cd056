"""Generate data/flipflop_population.h5: a small SYNTHETIC population recording.

This is not real neural data. It stands in for a recording so that the
comparison tools and their example run without downloads. Each of 40
"neurons" has a firing rate that mixes the three flip-flop memory bits with
random tuning, a slow ramp within the trial, a softplus nonlinearity, and
Poisson spike-count noise in 10 ms bins, smoothed. The trials are 3-bit
flip-flop trials drawn with bioplastic's own task (seed 2024), so a model can
be run on exactly the same inputs.

Run: python data/make_example.py   (writes data/flipflop_population.h5)
"""
from pathlib import Path

import h5py
import numpy as np

import bioplastic as bp

SEED = 2024
N_NEURONS = 40
N_TRIALS = 32


def main(path=Path(__file__).with_name("flipflop_population.h5")):
    rng = np.random.default_rng(SEED)
    task = bp.get_task("flipflop")
    batch = task.sample(N_TRIALS, np.random.default_rng(SEED))
    T = batch.T
    memory = batch.targets                                    # (T, B, 3): sign of last pulse, 0 before
    tuning = rng.normal(0, 1.0, (3, N_NEURONS))               # mixed selectivity
    baseline = rng.uniform(-0.5, 0.5, N_NEURONS)
    ramp = rng.normal(0, 0.6, N_NEURONS) * np.linspace(0, 1, T)[:, None, None]
    drive = memory @ tuning + baseline + ramp                 # (T, B, N)
    rate_hz = 20.0 * np.log1p(np.exp(drive))                  # softplus, ~20 Hz scale
    counts = rng.poisson(rate_hz * 0.010)                     # 10 ms bins
    kernel = np.exp(-np.arange(10) / 3.0)
    kernel /= kernel.sum()
    smoothed = np.apply_along_axis(lambda c: np.convolve(c, kernel)[: len(c)], 0, counts / 0.010)
    with h5py.File(path, "w") as f:
        f.attrs["description"] = __doc__
        f.attrs["synthetic"] = True
        f.attrs["seed"] = SEED
        f.attrs["bin_seconds"] = 0.010
        f.create_dataset("rates_hz", data=smoothed.astype(np.float32), compression="gzip")
        f.create_dataset("inputs", data=batch.inputs.astype(np.float32), compression="gzip")
        f.create_dataset("targets", data=batch.targets.astype(np.float32), compression="gzip")
        for col, v in batch.trial_table.items():
            f.create_dataset(f"trial_table/{col}", data=v)
    print(f"wrote {path}: rates {smoothed.shape} (T, trials, neurons)")


if __name__ == "__main__":
    main()
