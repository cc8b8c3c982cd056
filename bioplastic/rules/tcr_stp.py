"""Temporal consistency regularization as short-term synaptic plasticity (SPEC 4)."""
from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError
from .base import Rule, Update
from .models import LEAKY_KINDS


class TCRSTP(Rule):
    """A fast synaptic component that opposes change of each unit's activity.

    Every recurrent synapse carries, within a trial, a fast component
    ``S_ij`` (reset to 0 at trial start) and the network runs on ``W + S``::

        S[t+1] = (1 - dt / tau_s) S[t] - eta_s (x_i[t+1] - x_i[t]) r_j[t]

    For the leaky form ``x[t+1] = leak x[t] + gain ((W + S) r[t] + ...)``
    (LFRNN: gain = alpha = dt / tau) the increment is
    ``-(eta_s / (2 gain))`` times the derivative with respect to ``W_ij`` of
    the one-step TCR term ``(x_i[t+1] - x_i[t])^2`` with ``x[t]`` held
    fixed. Hence, for small ``eta_s`` and ``tau_s -> inf``, the accumulated
    ``S[T]`` of a trial equals ``-(eta_s / (2 gain))`` times the gradient of
    the truncated TCR sum on states, ``sum_t |x[t+1] - x[t]|^2``: TCR as a
    local, unsupervised synaptic mechanism (tested in
    ``tests/test_rules_stp.py``).

    Symbols and arguments: ``eta_s`` is ``eta_s`` (multiplied in training by
    the lambda_TCR schedule and any controller), ``tau_s`` is ``tau_s`` in
    the network's time unit (``inf``: no decay), ``dt`` the network's step,
    ``x`` the state (PLRNN: z) and ``r`` the rate (PLRNN: relu(z)). For the
    PLRNN ``S`` keeps a zero diagonal, like ``W`` (self-coupling is ``A``).

    This rule changes the dynamics only; it modifies no long-term parameter.
    Compose it with a task rule (``eprop+tcr_stp``) and optionally with
    :class:`~bioplastic.rules.freeze_in.FreezeIn`, which consolidates ``S``.

    Parameters
    ----------
    eta_s : float >= 0
        STP rate.
    tau_s : float > 0 or inf
        Decay time constant of ``S``.

    Reads: ``pre`` (r_j), ``post`` (x_i).
    """

    name = "tcr_stp"
    reads = ("pre", "post")
    supported_models = LEAKY_KINDS

    def __init__(self, eta_s=0.05, tau_s=100.0):
        self.eta_s = eta_s
        self.tau_s = tau_s
        super().__init__(modifies=())

    def settings(self):
        return {"eta_s": self.eta_s, "tau_s": self.tau_s}

    @property
    def stp(self):
        return (float(self.eta_s), float(self.tau_s))

    def computable(self, network):
        return ()

    def check(self, network):
        try:
            eta, tau = float(self.eta_s), float(self.tau_s)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"tcr_stp eta_s and tau_s must be numbers, got {self.eta_s!r}, {self.tau_s!r}") from exc
        if not math.isfinite(eta) or eta < 0:
            raise ConfigError(f"tcr_stp eta_s must be finite and >= 0, got {self.eta_s!r}")
        if not tau > 0 or np.isnan(tau):
            raise ConfigError(f"tcr_stp tau_s must be > 0 (inf for no decay), got {self.tau_s!r}")
        if tau < network.dt:
            raise ConfigError(f"tcr_stp tau_s ({tau}) must not be shorter than the step dt ({network.dt})")
        super().check(network)
        return ()

    def update(self, ctx, state):
        return Update()
