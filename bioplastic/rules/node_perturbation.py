"""Node perturbation (Fiete & Seung 2006; Miconi 2017), SPEC 3."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..kernels.node_perturbation import node_perturbation_sums
from ..machinery.threads import blas_on_one_thread
from ..seeding import standard_normal_chunks
from ..validation import positive
from .base import Rule, Update
from .models import LEAKY_KINDS, leaky_form, readout_activity, to_model_grads

BASELINES = ("unperturbed", "running")


class NodePerturbation(Rule):
    """Reward-modulated node perturbation.

    Every trial b gets its own perturbation ``xi_b[t] ~ N(0, sigma^2)`` of
    the input current of every unit (and, with ``perturb_outputs``, of every
    output). From the perturbed trial's reward ``R_b = -L_b`` (its share of
    the masked MSE) and a baseline ``Rbase_b``::

        e_ij  = sum_t xi_i[t] pre_j[t]                      (eligibility)
        dW_ij = eta sum_b (R_b - Rbase_b) e_ij / sigma^2      (SPEC 3)

    The rule returns ``grad = -sum_b (R_b - Rbase_b) e / sigma^2``
    (gradient convention), so ``SGD(lr=eta)`` applies SPEC's update exactly;
    its expectation over perturbations is the gradient of the task loss to
    first order in sigma.

    Symbols and arguments: ``sigma`` is ``sigma``; ``eta`` is the optimiser's
    learning rate; ``pre_j`` is the presynaptic rate ``r_j[t]`` (``W``), the
    input ``u_j[t]`` (``W_in``/``C``), 1 (biases), the unit's own state
    divided by the gain (the PLRNN's diagonal ``A``) and the read-out activity
    (``W_out``, ``b_out``, through output perturbations). The rank-one RNN's
    ``m``, ``n`` follow from ``dW`` by its chain rule.

    Parameters
    ----------
    sigma : float > 0
        Std of the perturbation.
    baseline : {"unperturbed", "running"}
        ``Rbase_b``: the reward of the same trial without perturbation (one
        extra forward pass), or a running mean of past batch-mean rewards,
        ``Rbar <- (1 - beta) Rbar + beta mean_b R_b``.
    beta : float in (0, 1]
        Rate of the running mean.
    perturb_outputs : bool
        Also perturb the outputs, so the readout learns by node perturbation
        too (otherwise ``W_out``, ``b_out`` cannot be modified by this rule).
    modifies : sequence of str or None
        Parameters to update (None: all trainable ones it can).

    Reads: ``pre`` (rates, inputs), ``noise`` (its perturbation), ``reward``.

    Examples
    --------
    >>> import numpy as np, bioplastic as bp
    >>> from bioplastic.rules import NodePerturbation
    >>> from bioplastic.training.local import train_local
    >>> task = bp.get_task("flipflop", n_steps=30)
    >>> net = bp.make_network("lfrnn", 3, 3, n_units=16)
    >>> r = train_local(net, task, NodePerturbation(sigma=0.05), iterations=3, seed=0, progress=False)
    >>> r.history["task_loss"].shape
    (4,)
    """

    name = "node_perturbation"
    reads = ("pre", "noise", "reward")
    supported_models = LEAKY_KINDS

    def __init__(self, sigma=0.1, baseline="unperturbed", beta=0.1, perturb_outputs=True, modifies=None):
        self.sigma = sigma
        self.baseline = baseline
        self.beta = beta
        self.perturb_outputs = perturb_outputs
        super().__init__(modifies)

    def computable(self, network):
        names = list(network.param_names)
        if not self.perturb_outputs:
            names = [n for n in names if n not in ("W_out", "b_out")]
        return tuple(names)

    def check(self, network):
        positive("node_perturbation sigma", self.sigma)
        if self.baseline not in BASELINES:
            raise ConfigError(f"node_perturbation baseline must be one of {BASELINES}, got {self.baseline!r}")
        if not 0 < float(self.beta) <= 1:
            raise ConfigError(f"node_perturbation beta must be in (0, 1], got {self.beta!r}")
        return super().check(network)

    def init_state(self, network, params, rng):
        return {"baseline": None}

    def update(self, ctx, state):
        net = ctx.network
        T, B, _ = ctx.batch.inputs.shape
        N, O = net.n_units, net.n_outputs
        sigma = float(self.sigma)
        dtype = net.dtype
        xi = standard_normal_chunks(ctx.rng, (T, B, N), dtype)  # in parallel: costs more than a forward pass
        xi *= dtype.type(sigma)
        q = None
        if self.perturb_outputs:
            q = ctx.rng.standard_normal((T, B, O), dtype=dtype)
            q *= dtype.type(sigma)
        traj = ctx.perturb(xi, q)
        R = ctx.reward(traj.outputs)
        if self.baseline == "unperturbed":
            Rb = ctx.reward()
        else:
            Rb = np.full(B, R.mean() if state["baseline"] is None else state["baseline"])
            state["baseline"] = float((1 - self.beta) * Rb[0] + self.beta * R.mean())
        mod = (R - Rb) / sigma ** 2
        form = leaky_form(net, ctx.params)
        want_leak = "A" in ctx.targets
        # The sums are large products. Threaded, OpenBLAS leaves its threads
        # spinning against the next forward pass's row blocks (2x slower);
        # on one thread the whole update is 30% faster at N = 100.
        with blas_on_one_thread():
            s = node_perturbation_sums(xi, mod, pre=traj.rates[:-1], pre_in=ctx.batch.inputs,
                                       dpre=traj.states[:-1] / form.gain if want_leak else None)
            so = node_perturbation_sums(q, mod, pre=readout_activity(net, traj)[1:]) if self.perturb_outputs else None
        fg = {"W": -s["pre"], "W_in": -s["pre_in"], "b": -s["bias"],
              "leak": None if s["diag"] is None else -s["diag"]}
        if so is not None:
            fg["W_out"], fg["b_out"] = -so["pre"], -so["bias"]
        grads = to_model_grads(net, ctx.params, fg)
        return Update(grads={k: grads[k] for k in ctx.targets},
                      info={"reward": float(R.mean()), "baseline": float(np.mean(Rb))})
