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
from numba import njit

from ..errors import ShapeError
from ..kernels.tcr import tcr_loss_


def task_loss(outputs, targets, mask):
    """Masked mean squared error and dL/doutputs, all (T, B, O)::

        err = (y - y*) m,   n = max(sum m, 1),   L = sum err^2 / n,   dL/dy = (2 / n) err

    One compiled pass (:func:`_masked_mse_`): as NumPy ufuncs, the six steps
    cost about 55 us of an N=100 BPTT iteration, right after the forward
    kernel has swept the caches.
    """
    if outputs.shape != targets.shape or mask.shape != targets.shape:
        raise ShapeError(f"outputs {outputs.shape}, targets {targets.shape} and loss mask "
                         f"{mask.shape} must have the same shape")
    dtype = np.result_type(outputs, targets, mask)  # NumPy's promotion, as the ufuncs had it
    if dtype not in (np.float32, np.float64):
        dtype = np.dtype(np.float64)
    mask = np.ascontiguousarray(mask, dtype=dtype)
    n = max(float(mask.sum()), 1.0)  # NumPy's sum, so that dL/dy keeps its bits for any mask
    d_out = np.empty(outputs.shape, dtype=dtype)
    loss = _masked_mse_(np.ascontiguousarray(outputs, dtype=dtype).reshape(-1),
                        np.ascontiguousarray(targets, dtype=dtype).reshape(-1), mask.reshape(-1), n,
                        d_out.reshape(-1))
    return float(loss), d_out


@njit(cache=True, nogil=True, error_model="numpy")
def _masked_mse_(y, target, m, n, d_out):
    """Write ``d_out = (2 / n) (y - target) m`` and return ``sum err^2 / n``
    (see :func:`task_loss`), all 1-D of one dtype.

    ``err`` and ``d_out`` are computed in the data's dtype exactly as NumPy
    would, so the gradient is the same bits; the loss is summed in float64,
    in order (NumPy summed float32 squares in float32).
    """
    scale = d_out.dtype.type(2.0 / n)
    total = 0.0
    for i in range(y.shape[0]):
        err = (y[i] - target[i]) * m[i]
        e = np.float64(err)
        total += e * e
        d_out[i] = scale * err
    return total / n


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
