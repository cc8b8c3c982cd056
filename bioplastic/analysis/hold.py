"""Memory hold time of a 3-bit flip-flop network: how long each written pattern lasts without input.

The test (used by the Brian2 spiking and LIF validations): the three bits are
written by one ``PULSE_STEPS``-step pulse each (bit c at step ``2 + 4c``),
then the input stays silent. The hold time of a trial is the time from step
``WRITE_STEPS`` until the sign pattern of the decoded output first differs
from the written one for ``LOSS_STEPS`` consecutive steps; trials that never
lose it are censored at the window. Each of the 8 patterns (memories) is
tested ``repeats`` times.
"""
from __future__ import annotations

import itertools

import numpy as np

PULSE_STEPS = 3       # as in the task
WRITE_STEPS = 20      # bit c is pulsed at step 2 + 4c; holding is scored from step 20 on
LOSS_STEPS = 3        # a memory is lost when the decoded pattern is wrong for 3 steps in a row
PATTERNS = list(itertools.product((1, -1), repeat=3))
DEFINITION = (f"the three bits are written by one {PULSE_STEPS}-step pulse each (bit c at step 2+4c), then "
              f"the input is silent; hold time = time from step {WRITE_STEPS} until the sign pattern of the "
              f"decoded output first differs from the written one for {LOSS_STEPS} consecutive steps; "
              "trials that never lose it count as the full window (censored)")


def pattern_label(p) -> str:
    """"+-+" for the pattern (1, -1, 1)."""
    return "".join("+" if s > 0 else "-" for s in p)


def hold_inputs(hold_steps: int, repeats: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (T, 8 * repeats, 3) writing each pattern, then silence; and the patterns (B, 3)."""
    T = WRITE_STEPS + int(hold_steps)
    pats = np.array([p for p in PATTERNS for _ in range(int(repeats))], dtype=float)
    inputs = np.zeros((T, len(pats), 3))
    for c in range(3):
        on = 2 + 4 * c
        inputs[on:on + PULSE_STEPS, :, c] = pats[:, c]
    return inputs, pats


def hold_times(outputs: np.ndarray, pats: np.ndarray, dt_ms: float) -> np.ndarray:
    """Per trial, ms from ``WRITE_STEPS`` until the decoded pattern is wrong for ``LOSS_STEPS`` steps.

    ``outputs[t]`` is the readout after step t+1; trials that never lose the
    pattern get the full window (censored).
    """
    outputs = np.asarray(outputs)
    pats = np.asarray(pats)
    if outputs.ndim != 3 or outputs.shape[1:] != pats.shape:
        raise ValueError(f"outputs (T, B, 3) and patterns (B, 3) disagree: {outputs.shape} vs {pats.shape}")
    y = outputs[WRITE_STEPS - 1:]  # output after step WRITE_STEPS onward
    wrong = np.any(np.sign(y) != pats[None], axis=2)  # (steps, B)
    n, B = wrong.shape
    out = np.full(B, n * dt_ms)
    for b in range(B):
        run = 0
        for t in range(n):
            run = run + 1 if wrong[t, b] else 0
            if run == LOSS_STEPS:
                out[b] = (t - LOSS_STEPS + 1) * dt_ms
                break
    return out


def hold_by_memory(times, pats) -> dict:
    """{pattern label: [hold times of its trials]}."""
    labels = [pattern_label(p) for p in pats]
    return {lab: [float(h) for h, l2 in zip(times, labels) if l2 == lab] for lab in dict.fromkeys(labels)}


def window_ms(hold_steps: int, dt_ms: float) -> float:
    """Length of the scored window (the censoring time)."""
    return float((int(hold_steps) + 1) * dt_ms)
