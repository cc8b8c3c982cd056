"""One evaluation of the training objective: forward, losses, adjoint gradients."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..networks.base import check_tcr_on
from .loss import task_loss, tcr_loss



@dataclass
class Evaluation:
    """Losses, gradients and the trajectory of one batch."""

    loss: float
    task_loss: float
    tcr_loss: float
    grads: dict
    traj: object


def loss_and_grads(network, params, batch, *, lambda_tcr=0.0, tcr_on="rates", tcr_epoch=None,
                   noise=None, x0=None, need_grads=True) -> Evaluation:
    """Evaluate L = L_task + lambda_TCR L_TCR on ``batch`` and its gradients.

    Parameters
    ----------
    network : Network
    params : Params
    batch : TaskBatch (inputs, targets, loss_mask, epochs)
    lambda_tcr : float, weight of the TCR term (SPEC 4)
    tcr_on : {"rates", "states"}, which activity TCR penalises
    tcr_epoch : str or None, name of a task epoch restricting TCR to it
    noise : (T, B, N) standard-normal noise or None
    """
    check_tcr_on(tcr_on)
    epoch = None
    if tcr_epoch is not None:
        if tcr_epoch not in batch.epochs:
            raise ConfigError(f"task has no epoch {tcr_epoch!r}; epochs: {sorted(batch.epochs)}")
        epoch = batch.epochs[tcr_epoch]
    traj = network.forward(params, batch.inputs, noise=noise, x0=x0)
    targets = batch.targets.astype(network.dtype, copy=False)
    mask = batch.loss_mask.astype(network.dtype, copy=False)
    with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported by the caller
        l_task, d_out = task_loss(traj.outputs, targets, mask)
        # The TCR loss is always measured (a diagnostic); its gradient only enters when lambda > 0.
        grads = None
        if need_grads:
            grads, l_tcr = network.backward_with_tcr(params, traj, batch.inputs, d_out, lambda_tcr,
                                                     tcr_on=tcr_on, epoch_mask=epoch)
        else:
            l_tcr, _ = tcr_loss(traj.rates if tcr_on == "rates" else traj.states, epoch, need_grad=False)
    total = l_task + float(lambda_tcr) * l_tcr
    return Evaluation(total, l_task, l_tcr, grads, traj)
