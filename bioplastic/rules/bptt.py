"""BPTT as a rule: the exact (non-local) gradient, the yardstick of SPEC 3."""
from __future__ import annotations

from ..training.objective import loss_and_grads
from .base import Rule, Update


class BPTT(Rule):
    """Backpropagation through time with the hand-written adjoint kernels.

    ``grad = dL_task/dtheta`` on the batch, exactly (the adjoint recursion of
    each model, checked against finite differences in ``tests/test_models.py``).
    Registered so that ``bioplastic rules list`` shows the yardstick next to
    the local rules and so that composite diagnostics can be sanity-checked
    (its alignment with itself is 1). It is not local: it reads ``adjoint``.
    ``bioplastic train --rule bptt`` uses :func:`bioplastic.train`, which also
    offers TCR as a loss term; BPTT cannot be composed with TCR-STP.

    Parameters
    ----------
    modifies : sequence of str or None
        Parameters to update (None: all trainable).
    """

    name = "bptt"
    reads = ("pre", "post", "error", "adjoint")
    local = False

    def update(self, ctx, state):
        ctx.require("adjoint")
        c = ctx.context
        ev = loss_and_grads(ctx.network, ctx.params, ctx.batch, noise=c.noise)
        ctx.offer(outputs=ev.traj.outputs)
        return Update(grads={k: ev.grads[k] for k in ctx.targets})
