"""One seed per run, split into independent random streams.

A run is reproducible from a single integer: :func:`make_streams` splits it
with :class:`numpy.random.SeedSequence` into one Generator per purpose, so
adding draws to one stream (say, more task trials) never changes another
(say, the weight initialisation). Kernels never draw random numbers.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .errors import ConfigError
from .machinery.gaussian import fill_standard_normal_

# New streams go at the end: SeedSequence children are indexed, so appending
# one never changes the streams before it (old runs stay reproducible).
STREAMS = ("init", "task", "noise", "rule", "eval", "record", "memory")


def draw_seed() -> int:
    """Draw a fresh seed from OS entropy (recorded by callers)."""
    return int(np.random.SeedSequence().generate_state(1, dtype=np.uint32)[0])


#: Largest seed a run file can store (an HDF5 attribute of uint64).
SEED_MAX = 2 ** 64 - 1


def check_seed(seed) -> int:
    """Return ``seed`` as an int in [0, :data:`SEED_MAX`], drawing one when ``None``."""
    if seed is None:
        return draw_seed()
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= SEED_MAX:
        raise ConfigError(f"seed must be an integer in [0, 2**64 - 1] = [0, {SEED_MAX}] (what the run file "
                          f"can store), got {seed!r}")
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
    """Standard-normal array of ``shape``, drawn by a vectorised sampler in parallel.

    Node perturbation draws one Gaussian per unit, step and trial. NumPy's
    sampler costs more than a forward pass for them; here ``rng`` gives
    :data:`NORMAL_CHUNKS` 64-bit keys, the flattened array is split into that
    many contiguous chunks, and each chunk is filled by
    :func:`bioplastic.machinery.gaussian.fill_standard_normal_` (SplitMix64 and
    Box-Muller in compiled, vectorised loops, about 3 ns a draw) from its
    own key, the chunks running on the kernel threads. The result depends on
    ``rng``'s state and ``shape`` only, not on the thread count; it is not
    the array ``rng.standard_normal(shape)`` would give.
    """
    from .machinery.threads import kernel_threads, run_blocks

    keys = rng.integers(0, 2 ** 63, size=NORMAL_CHUNKS).astype(np.uint64)
    out = np.empty(shape, dtype=dtype)
    flat = out.reshape(-1)
    n = flat.shape[0]
    bounds = np.array([k * n // NORMAL_CHUNKS for k in range(NORMAL_CHUNKS + 1)], dtype=np.int64)
    threads = 1 if n < _PARALLEL_DRAWS else min(kernel_threads(), NORMAL_CHUNKS)
    run_blocks(_fill_chunks_, NORMAL_CHUNKS, threads, keys, bounds, flat)
    return out


@njit(cache=True, nogil=True)
def _fill_chunks_(block, c0, c1, keys, bounds, flat):
    for k in range(c0, c1):
        fill_standard_normal_(keys[k], flat[bounds[k]:bounds[k + 1]])
