"""Loss terms and their gradients: masked task MSE and TCR (SPEC 4).

    L = L_task + lambda_TCR(k) * L_TCR
    L_task = sum_{t,b,o} m[t,b,o] (y - y*)^2 / sum(m)
    L_TCR  = sum_{t,b,i} e[t,b] (r[t+1,b,i] - r[t,b,i])^2 / (N sum(e))

where m is the task's loss mask and e an optional epoch mask over the T
differences (all ones by default): the mean squared change of activity per
step. Each function returns the loss and its gradient.
"""
from __future__ import annotations

import numpy as np

from ..errors import ShapeError


def task_loss(outputs, targets, mask):
    """Masked mean squared error and dL/doutputs, all (T, B, O)."""
    if outputs.shape != targets.shape or mask.shape != targets.shape:
        raise ShapeError(f"outputs {outputs.shape}, targets {targets.shape} and loss mask "
                         f"{mask.shape} must have the same shape")
    n = max(float(mask.sum()), 1.0)
    err = (outputs - targets) * mask
    loss = float(np.sum(err * err) / n)
    return loss, (2.0 / n) * err


def tcr_loss(activity, epoch_mask=None):
    """Temporal consistency loss on activity (T+1, B, N) and its gradient.

    Parameters
    ----------
    activity : (T+1, B, N) rates (or states), index 0 the initial state.
    epoch_mask : (T, B) bool/float or None; weight of the change r[t+1]-r[t].

    Returns
    -------
    loss : float
    grad : (T+1, B, N) dL_TCR/d activity
    """
    T1, B, N = activity.shape
    diff = activity[1:] - activity[:-1]
    if epoch_mask is None:
        weighted = diff
        n = float(N * (T1 - 1) * B)
    else:
        w = np.asarray(epoch_mask, dtype=activity.dtype)
        if w.shape != (T1 - 1, B):
            raise ShapeError(f"TCR epoch mask must have shape {(T1 - 1, B)}, got {w.shape}")
        weighted = diff * w[:, :, None]
        n = float(N * w.sum())
    n = max(n, 1.0)
    loss = float(np.sum(weighted * diff) / n)
    g = (2.0 / n) * weighted
    grad = np.zeros_like(activity)
    grad[1:] += g
    grad[:-1] -= g
    return loss, grad
