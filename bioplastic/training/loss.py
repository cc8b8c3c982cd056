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
from ..kernels.tcr import tcr_loss_


def task_loss(outputs, targets, mask):
    """Masked mean squared error and dL/doutputs, all (T, B, O)."""
    if outputs.shape != targets.shape or mask.shape != targets.shape:
        raise ShapeError(f"outputs {outputs.shape}, targets {targets.shape} and loss mask "
                         f"{mask.shape} must have the same shape")
    n = max(float(mask.sum()), 1.0)
    err = (outputs - targets) * mask
    loss = float(np.sum(err * err) / n)
    return loss, (2.0 / n) * err


def tcr_weights(shape, epoch_mask, dtype):
    """The kernels' epoch weights and the normaliser n of L_TCR.

    Parameters
    ----------
    shape : (T+1, B, N) shape of the activity.
    epoch_mask : (T, B) bool/float or None.
    dtype : dtype of the activity.

    Returns
    -------
    weights : (T, B) array of ``dtype``, or (0, 0) standing for all ones.
    n : float, ``N sum(e)`` (``N T B`` without a mask), at least 1.
    """
    T1, B, N = shape
    if epoch_mask is None:
        return np.zeros((0, 0), dtype=dtype), max(float(N * (T1 - 1) * B), 1.0)
    weights = np.ascontiguousarray(epoch_mask, dtype=dtype)
    if weights.shape != (T1 - 1, B):
        raise ShapeError(f"TCR epoch mask must have shape {(T1 - 1, B)}, got {weights.shape}")
    return weights, max(float(N * weights.sum(dtype=np.float64)), 1.0)


def tcr_loss(activity, epoch_mask=None, *, grad_scale=1.0, need_grad=True):
    """Temporal consistency loss on activity (T+1, B, N) and its gradient.

    Parameters
    ----------
    activity : (T+1, B, N) rates (or states), index 0 the initial state.
    epoch_mask : (T, B) bool/float or None; weight of the change r[t+1]-r[t].
    grad_scale : float, multiplies the returned gradient (pass lambda_TCR to
        get lambda_TCR dL_TCR/da without another pass over the array).
    need_grad : bool, False returns None for the gradient.

    Returns
    -------
    loss : float
    grad : (T+1, B, N) grad_scale * dL_TCR/d activity, or None
    """
    activity = np.ascontiguousarray(activity)
    weights, n = tcr_weights(activity.shape, epoch_mask, activity.dtype)
    grad = np.empty_like(activity) if need_grad else np.zeros((0, 0, 0), dtype=activity.dtype)
    total = tcr_loss_(activity, weights, activity.dtype.type(float(grad_scale) / n), grad)
    return float(total / n), (grad if need_grad else None)
