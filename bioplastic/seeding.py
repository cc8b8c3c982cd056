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
