"""Timing in blocks that take turns, so a slow spell of the machine falls on every side."""
from __future__ import annotations

import gc
import statistics
import time

#: Timed blocks per implementation: the blocks of the implementations take
#: turns, so that a slow spell of the machine (seen here: 1.5x for minutes,
#: when a neighbour on the host is busy) falls on all of them alike.
ROUNDS = 7


def time_blocks(fns, repeats, warmup, rounds=ROUNDS):
    """Median ms of each callable (None stays None), timed in blocks that take turns.

    Each callable is called ``warmup`` times untimed, then the callables run
    ``min(rounds, repeats)`` times in turn, each time one untimed call and
    then a block of ``ceil(repeats / rounds)`` timed calls; the median is
    taken over all of a callable's timed calls.

    Blocks rather than alternation call by call: torch's OpenMP threads and
    numpy's OpenBLAS threads spin for a while after each call, and
    alternating the runtimes makes each pay for the other's spinning
    threads. For the same reason bioplastic's kernel workers are sent to
    sleep (:func:`~bioplastic.machinery.threads.idle_workers`) before each block,
    and the block's first call, which wakes the sleeping threads of either
    side, is not timed. Many short blocks rather than a few long ones: this
    machine has slow spells of tens of seconds (up to 1.5x), and with three
    blocks a spell could fall on one side's blocks only (the ratio of the
    N=100 float64 forward pass ranged 3.5x to 4.7x over five runs within an
    hour).
    """
    from ..machinery.threads import idle_workers

    rounds = max(1, min(rounds, repeats))
    per_block = max(1, -(-repeats // rounds))
    times = [[] for _ in fns]
    for fn in fns:
        if fn is not None:
            for _ in range(warmup):
                fn()
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            if fn is None:
                continue
            idle_workers()
            gc.collect()
            fn()  # wakes this side's threads after the other side's block
            for _ in range(per_block):
                t0 = time.perf_counter()
                fn()
                times[i].append(time.perf_counter() - t0)
    return [None if fn is None else 1e3 * statistics.median(t) for fn, t in zip(fns, times)]
