"""Sequential scans over time for task samplers (numba).

A trial's pulses depend on which earlier pulses were kept, so building them
is a scan over time; in NumPy it is a Python loop over T steps on small
(B, C) arrays, which cost more than an e-prop update of a 32-unit network.
"""
import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def flipflop_scan_(draws, signs, min_gap, pulse_steps, settle_steps):
    """Onsets, inputs, targets and the settling mask of flip-flop trials.

    Per channel (b, c), scanning t = 0..T-1: an onset is kept when it was
    drawn and the last kept one is at least ``min_gap`` steps back; the
    input is the kept onset's sign for ``pulse_steps`` steps; the target is
    the sign of the last kept onset (0 before the first); ``settling`` marks
    the ``settle_steps`` steps from each onset on.

    Parameters
    ----------
    draws : (T, B, C) bool, candidate onsets
    signs : (T, B, C) float64, +-1
    min_gap, pulse_steps, settle_steps : int

    Returns
    -------
    onsets (bool), inputs, targets (float64), settling (bool), each (T, B, C)
    """
    T, B, C = draws.shape
    onsets = np.zeros((T, B, C), dtype=np.bool_)
    inputs = np.zeros((T, B, C))
    targets = np.zeros((T, B, C))
    settling = np.zeros((T, B, C), dtype=np.bool_)
    for b in range(B):
        for c in range(C):
            since = min_gap
            level = 0.0
            for t in range(T):
                if draws[t, b, c] and since >= min_gap:
                    onsets[t, b, c] = True
                    level = signs[t, b, c]
                    since = 1
                    for k in range(pulse_steps):
                        if t + k < T:
                            inputs[t + k, b, c] += level
                    for k in range(settle_steps):
                        if t + k < T:
                            settling[t + k, b, c] = True
                else:
                    since += 1
                targets[t, b, c] = level
    return onsets, inputs, targets, settling
