"""The delta rule on the readout alone: the control every local rule is measured against."""
from __future__ import annotations

import numpy as np

from .base import Rule, Update
from .models import LEAKY_KINDS


class Readout(Rule):
    """Train only the linear readout, with the delta rule (Widrow-Hoff).

    With the masked mean squared error ``L`` and its output error
    ``e_k[t] = dL/dy_k[t] = 2/n m_k[t] (y_k[t] - y*_k[t])``::

        dW_out_kj = -eta sum_{t,b} e_k[t] a_j[t+1],      db_out_k = -eta sum_{t,b} e_k[t]

    where ``a`` is the read-out activity (rates, or states for a PLRNN that
    reads out ``z``). This is the exact gradient of the task loss with
    respect to the readout, and it is local: each readout synapse sees its
    presynaptic rate and its output's error. The recurrent network is left as
    initialised (a reservoir), so a task solved by this rule is solved by the
    random dynamics plus a linear readout.

    Composed with TCR-STP (``"readout+tcr_stp"``) the network runs on
    ``W + S`` and the readout learns from that activity; with freeze-in
    (``"readout+tcr_stp+freeze_in"``) the consolidated S changes ``W`` too,
    goal-agnostically: the control that tells what freeze-in does without a
    task rule steering ``W``.

    Parameters
    ----------
    modifies : sequence of str or None
        Parameters to update (None: ``W_out`` and ``b_out`` where trainable).

    Reads: ``pre`` (the read-out activity), ``error``.
    """

    name = "readout"
    reads = ("pre", "error")
    supported_models = LEAKY_KINDS

    def computable(self, network):
        return tuple(p for p in ("W_out", "b_out") if p in network.param_names)

    def update(self, ctx, state):
        err = ctx.error()                      # (T, B, O)
        grads = {}
        if "W_out" in ctx.targets:
            a = ctx.pre("W_out")               # (T, B, N)
            grads["W_out"] = np.einsum("tbo,tbn->on", err, a, optimize=True).astype(a.dtype, copy=False)
        if "b_out" in ctx.targets:
            grads["b_out"] = err.sum(axis=(0, 1)).astype(err.dtype, copy=False)
        return Update(grads=grads)
