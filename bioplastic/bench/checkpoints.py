"""The cost of writing the run file at every checkpoint (``bioplastic bench --checkpoints``)."""
from __future__ import annotations

import os
import statistics
import tempfile
import time

from ..errors import ConfigError

#: Iterations and checkpoint intervals of the checkpoint benchmark.
CHECKPOINT_ITERATIONS = 400
CHECKPOINT_EVERY = (1, 100)
QUICK_CHECKPOINTS = {"iterations": 40, "every": (1, 10), "repeats": 1}


def run_checkpoint_benchmark(iterations=CHECKPOINT_ITERATIONS, every=CHECKPOINT_EVERY, repeats=3, quick=False,
                             model="lfrnn", task="flipflop", log=None) -> list[dict]:
    """Time training with a run file written at checkpoints, for each interval in ``every``.

    What ``bioplastic train --model lfrnn --task flipflop --checkpoint-every K
    --no-early-stop --iterations 400 --out DIR`` does, in this process (so
    the timings hold training and writes, not Python's start): the default
    LFRNN spec (N = 64, Adam, batch 32) trained on the 3-bit flip-flop, the
    run file written at checkpoints and at the end. Each interval runs with
    the default ``min_write_interval`` (checkpoints that come faster are
    written together, :mod:`bioplastic.training.writes`); the smallest
    interval runs once more with ``min_write_interval = 0``, the file
    written at every checkpoint, which measures what one write costs. A run
    with few checkpoints costs about the training alone; the ratio of the
    others' time to it is the cost of their writes. After an untimed warm-up
    run the settings take turns over ``repeats`` rounds (a slow spell of the
    machine falls on all of them); medians are reported.

    Returns
    -------
    list of dict, one per setting: ``every``, ``min_write_interval`` (s),
    ``iterations``, ``checkpoints`` (kept, the first and last included),
    ``median_s`` (of the whole training), ``ms_per_iteration``, ``file_mb``
    (the run file at the end) and ``vs_sparsest`` (median time over that of
    the largest interval).
    """
    import bioplastic as bp
    from .. import config
    from ..io.specs import load_spec, network_from_spec

    if quick:
        iterations, every, repeats = (QUICK_CHECKPOINTS[k] for k in ("iterations", "every", "repeats"))
    every = tuple(int(k) for k in every)
    if not every or min(every) < 1:
        raise ConfigError(f"checkpoint intervals must be positive integers, got {every!r}")
    spec = load_spec(model)
    task_obj = bp.get_task(task)
    training = {k: v for k, v in spec["training"].items() if k != "iterations"}
    default_interval = config.get("min_write_interval")
    settings = [(k, default_interval) for k in every]
    if default_interval > 0:
        settings.append((min(every), 0.0))

    def run(k, interval, n):
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "run.h5")
            net = network_from_spec(spec, task_obj)
            config.set(min_write_interval=interval)
            try:
                t0 = time.perf_counter()
                bp.train(net, task_obj, seed=0, iterations=n, checkpoint_every=k, early_stop=False,
                         run_file=path, progress=False, **training)
                elapsed = time.perf_counter() - t0
            finally:
                config.set(min_write_interval=default_interval)
            return elapsed, os.path.getsize(path)

    run(1, 0.0, 3)  # warm-up: kernels, caches
    times, sizes = {s: [] for s in settings}, {}
    for _ in range(int(repeats)):
        for s in settings:
            t, sizes[s] = run(*s, iterations)
            times[s].append(t)
        if log is not None:
            log("  checkpoints: " + ", ".join(f"every {k} ({w:g} s): {times[(k, w)][-1]:.2f} s"
                                              for k, w in settings))
    base = statistics.median(times[(max(every), default_interval)])
    out = []
    for s in settings:
        med = statistics.median(times[s])
        out.append({"every": s[0], "min_write_interval": s[1], "iterations": int(iterations),
                    "checkpoints": len(range(0, iterations + 1, s[0])), "median_s": round(med, 3),
                    "ms_per_iteration": round(1e3 * med / iterations, 3), "file_mb": round(sizes[s] / 1e6, 2),
                    "vs_sparsest": round(med / base, 2)})
    return out


def format_checkpoint_table(records) -> str:
    """Table of the checkpoint benchmark."""
    rows = [("checkpoint every", "write interval s", "iterations", "checkpoints", "median s", "ms/iteration",
             "file MB", "x sparsest")]
    rows += [(str(r["every"]), f"{r['min_write_interval']:g}", str(r["iterations"]), str(r["checkpoints"]),
              f"{r['median_s']:.2f}", f"{r['ms_per_iteration']:.2f}", f"{r['file_mb']:.2f}", f"{r['vs_sparsest']:.2f}")
             for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
