"""One seed per run, split into independent random streams.

A run is reproducible from a single integer: :func:`make_streams` splits it
with :class:`numpy.random.SeedSequence` into one Generator per purpose, so
adding draws to one stream (say, more task trials) never changes another
(say, the weight initialisation). Kernels never draw random numbers.
"""
from __future__ import annotations

import numpy as np

from .errors import ConfigError

# New streams go at the end: SeedSequence children are indexed, so appending
# one never changes the streams before it (old runs stay reproducible).
STREAMS = ("init", "task", "noise", "rule", "eval", "record")


def draw_seed() -> int:
    """Draw a fresh seed from OS entropy (recorded by callers)."""
    return int(np.random.SeedSequence().generate_state(1, dtype=np.uint32)[0])


def check_seed(seed) -> int:
    """Return ``seed`` as a non-negative int, drawing one when ``None``."""
    if seed is None:
        return draw_seed()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def make_streams(seed: int) -> dict[str, np.random.Generator]:
    """Split ``seed`` into the named Generators of :data:`STREAMS`."""
    children = np.random.SeedSequence(check_seed(seed)).spawn(len(STREAMS))
    return {name: np.random.default_rng(ss) for name, ss in zip(STREAMS, children)}


#: Fixed number of sub-streams of :func:`standard_normal_chunks`: results do
#: not depend on how many threads fill them.
NORMAL_CHUNKS = 4
# Below this many draws one thread fills the array (a hand-off costs more).
_PARALLEL_DRAWS = 200_000


def standard_normal_chunks(rng: np.random.Generator, shape, dtype=np.float64) -> np.ndarray:
    """Standard-normal array of ``shape``, filled in parallel.

    Node perturbation draws one Gaussian per unit, step and trial, which at
    N = 100 costs twice a forward pass when one thread draws them. Here
    ``rng`` gives :data:`NORMAL_CHUNKS` seeds, the array is split along its
    first axis into that many chunks, each filled from its own Generator,
    and the chunks run on the kernel threads (numpy's fill releases the GIL).
    The result depends on ``rng``'s state only, not on the thread count, but
    it is not the array ``rng.standard_normal(shape)`` would give.
    """
    from .kernels.threads import kernel_threads, run_blocks

    seeds = rng.integers(0, 2 ** 63, size=NORMAL_CHUNKS)
    out = np.empty(shape, dtype=dtype)
    if out.ndim == 0:
        return np.random.default_rng(seeds[0]).standard_normal(dtype=dtype)
    n = out.shape[0]
    bounds = [(k * n // NORMAL_CHUNKS, (k + 1) * n // NORMAL_CHUNKS) for k in range(NORMAL_CHUNKS)]

    def fill(block, c0, c1):
        for k in range(c0, c1):
            lo, hi = bounds[k]
            if hi > lo:
                np.random.default_rng(seeds[k]).standard_normal(dtype=dtype, out=out[lo:hi])

    threads = 1 if out.size < _PARALLEL_DRAWS else min(kernel_threads(), NORMAL_CHUNKS)
    run_blocks(fill, NORMAL_CHUNKS, threads)
    return out
