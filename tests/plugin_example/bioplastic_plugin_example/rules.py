"""A learning rule written in plain NumPy, registered as a bioplastic plugin."""
import numpy as np

from bioplastic.rules import Rule, Update


class DeltaReadout(Rule):
    """Delta (Widrow-Hoff) rule on the linear readout, in plain NumPy.

    With the output error ``e[t] = dL/dy[t]`` (the masked MSE's derivative)
    and the activity the readout reads ``a[t+1]`` (rates for most models)::

        dW_out = -eta sum_{t,b} e[t] a[t+1]^T,    db_out = -eta sum_{t,b} e[t]

    returned as the descent direction (``eta`` is the optimiser's learning
    rate). Local: each readout synapse sees its presynaptic rate and its
    output unit's error. Works for every model kind (it never touches the
    recurrent dynamics).

    Parameters
    ----------
    modifies : sequence of str or None
        Subset of ("W_out", "b_out"); None: both.
    """

    name = "delta_readout"
    reads = ("pre", "error")

    def __init__(self, modifies=None):
        super().__init__(modifies)

    def computable(self, network):
        return tuple(n for n in ("W_out", "b_out") if n in network.param_names)

    def update(self, ctx, state):
        e = ctx.error()                 # (T, B, O)
        grads = {}
        if "W_out" in ctx.targets:
            a = ctx.pre("W_out")        # (T, B, N)
            grads["W_out"] = np.einsum("tbo,tbn->on", e, a)
        if "b_out" in ctx.targets:
            grads["b_out"] = e.sum(axis=(0, 1))
        return Update(grads=grads)
