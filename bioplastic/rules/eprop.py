"""e-prop for rate networks (Bellec et al. 2020; equals RFLO, Murray 2019), SPEC 3."""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..kernels.eprop import eprop_leaky
from ..validation import positive
from .base import Rule, Update
from .models import LEAKY_KINDS, leaky_form, scaled_noise, to_model_grads

FEEDBACKS = ("symmetric", "random")


class EProp(Rule):
    """Online eligibility traces times a broadcast learning signal.

    For the leaky form ``x[t+1] = leak x[t] + gain ((W + S) r[t] + W_in u[t]
    + b)`` (LFRNN: leak = 1 - alpha, gain = alpha; PLRNN: leak = A, gain = 1)::

        eps_ij[t+1] = leak_i eps_ij[t] + gain r_j[t]          (eligibility trace)
        L_i[t]      = sum_k F_ki (y_k[t] - y*_k[t]) m_k[t] * 2/n * phi'(x_i[t+1])
        dW_ij       = eta sum_{t,b} L_i[t] eps_ij[t+1]

    with the same traces for ``W_in`` (presynaptic ``u_j``), ``b`` (1) and
    the PLRNN's ``A`` (``x_i[t]``), and the exact delta rule for the readout.
    ``F`` is ``W_out`` (symmetric e-prop, ``B = W_out^T`` in SPEC 3) or a
    fixed random matrix (random e-prop). ``m`` is the loss mask, ``n`` its
    sum, so with symmetric feedback the update is the gradient of the masked
    MSE with the propagation through other units dropped; it is exact when
    the recurrent weights are zero. The rule returns the descent direction
    (``-dW / eta``); the optimiser's learning rate is ``eta``.

    Traces are per synapse when the leak differs per unit (PLRNN) and
    presynaptic (one per unit) otherwise. Everything runs in one fused
    forward kernel (:func:`bioplastic.kernels.eprop.eprop_leaky`) whose
    working memory does not depend on T. With TCR-STP composed in, the
    kernel runs the network on ``W + S``.

    Parameters
    ----------
    feedback : {"symmetric", "random"}
        Feedback weights ``F`` of the learning signal.
    feedback_scale : float > 0
        Random feedback ``F_ki ~ N(0, feedback_scale^2 / N)``, drawn once per
        run from the rule's stream.
    modifies : sequence of str or None
        Parameters to update (None: all trainable ones).

    Reads: ``pre``, ``post``, ``error``, ``feedback``.

    Examples
    --------
    >>> import bioplastic as bp
    >>> from bioplastic.rules import EProp
    >>> from bioplastic.training.local import train_local
    >>> task = bp.get_task("flipflop", n_steps=30)
    >>> net = bp.make_network("plrnn", 3, 3, n_units=8)
    >>> r = train_local(net, task, EProp(feedback="random"), iterations=2, seed=0, progress=False)
    >>> r.status
    'max_iterations'
    """

    name = "eprop"
    reads = ("pre", "post", "error", "feedback")
    supported_models = LEAKY_KINDS

    def __init__(self, feedback="symmetric", feedback_scale=1.0, modifies=None):
        self.feedback = feedback
        self.feedback_scale = feedback_scale
        super().__init__(modifies)

    def check(self, network):
        if self.feedback not in FEEDBACKS:
            raise ConfigError(f"eprop feedback must be one of {FEEDBACKS}, got {self.feedback!r}")
        positive("eprop feedback_scale", self.feedback_scale)
        return super().check(network)

    def init_state(self, network, params, rng):
        if self.feedback == "random":
            F = rng.standard_normal((network.n_outputs, network.n_units)) * (
                float(self.feedback_scale) / np.sqrt(network.n_units))
            return {"F": F.astype(network.dtype)}
        return {}

    def update(self, ctx, state):
        ctx.require("pre", "post", "error", "feedback")
        net = ctx.network
        c = ctx.context
        f = leaky_form(net, ctx.params)
        F = ctx.feedback() if self.feedback == "symmetric" else state["F"]
        stp = c.stp_args
        B = c.inputs.shape[1]
        res = eprop_leaky(net.initial_state(B), c.inputs, c.targets, c.cmask, scaled_noise(net, c.noise),
                          f.W_in, f.b, f.W, f.W_out, f.b_out, F, f.leak, f.gain, f.phi_code,
                          read_states=f.read_states, leak_grad="A" in ctx.targets,
                          eta_s=0.0 if stp is None else stp[0], decay_s=1.0 if stp is None else stp[1],
                          stp=stp is not None, zero_diag=f.zero_diag, record_outputs=True)
        ctx.offer(outputs=res["outputs"], S_end=res["S_end"], tcr_sum=res["tcr_sum"])
        fg = {k: res[k] for k in ("W", "W_in", "b", "W_out", "b_out", "leak") if k in res}
        grads = to_model_grads(net, ctx.params, fg)
        return Update(grads={k: grads[k] for k in ctx.targets}, info={"task_loss": res["task_loss"]})
