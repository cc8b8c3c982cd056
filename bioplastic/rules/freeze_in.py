"""Freeze-in training: consolidating the TCR short-term term into long-term weights.

**This is the project's reconstruction.** The paper (Haputhanthri et al.
2025) names freeze-in training, says it can converge to trivial fixed-point
attractors, and names two cures: random stochastic updates of the weights
and a controlling process for lambda_TCR(t). Its body (equations,
hyper-parameters) is not available, so the mechanism below is our reading of
that summary, not the paper's definition.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError
from ..registry import check_keys
from .base import Rule, Update

GATES = (None, "reward")
CONTROLLER_DEFAULTS = {"low": 0.5, "high": 1.5, "recover": 0.1, "min": 0.0, "max": 1.0}


class FreezeIn(Rule):
    """Consolidate the TCR-STP fast weights into ``W`` (optionally reward-gated),
    with random weight perturbations and a lambda_TCR(t) controller.

    After each batch (iteration k), with ``S_b[T]`` the TCR-STP fast weights
    at the end of trial b (see :class:`~bioplastic.rules.tcr_stp.TCRSTP`)::

        dW = eta * g_k * mean_b S_b[T]  +  sigma_w / sqrt(N) * zeta_k,   zeta_k ~ N(0, 1)

    - ``g_k = 1`` (goal-agnostic) or, with ``gate="reward"``, ``g_k = 1`` if
      the batch reward ``R_k = -L_task`` is at least its running mean
      ``Rbar <- (1 - beta) Rbar + beta R_k`` and 0 otherwise;
    - ``sigma_w`` (``perturbation_std``): random weight perturbations, the
      first cure against collapse onto trivial fixed points;
    - the controller, the second cure, sets the TCR strength
      ``lambda_TCR(k)`` (it multiplies the STP rate ``eta_s``, hence also
      what is consolidated) homeostatically, from the measured mean squared
      rate change per step ``m_k`` (the TCR measure) relative to its value
      ``m_0`` at the first iteration, ``rho_k = m_k / m_0``::

          lambda(0)   = max
          lambda(k+1) = lambda(k) * high / rho_k             if rho_k > high  (runaway)
                      = lambda(k) * rho_k / low              if rho_k < low   (activity frozen)
                      = lambda(k) + recover * (max - lambda(k))  otherwise
          then clipped to [min, max]

      TCR backs off, in proportion to the excursion, whenever the activity
      change leaves the band ``[low, high] * m_0`` (a collapse onto fixed
      points that ignore the inputs, or a runaway of the consolidation), and
      recovers toward its nominal strength inside the band.

    With ``tau_s -> inf`` and small ``eta_s``, ``S_b[T]`` is
    ``-(eta_s / (2 gain))`` times the TCR gradient of the trial (SPEC 4), so
    goal-agnostic freeze-in is a slow descent on the TCR loss through a
    local mechanism.

    Symbols and arguments: ``eta`` is ``eta``; ``sigma_w`` is
    ``perturbation_std``; ``beta`` the running-mean rate; the controller's
    ``low``, ``high``, ``recover``, ``min``, ``max`` come from ``controller``
    (``True`` for the defaults :data:`CONTROLLER_DEFAULTS`).

    Needs a TCR-STP rule in the same composition
    (``"eprop+tcr_stp+freeze_in"``). Modifies the recurrent ``W`` of an
    LFRNN or PLRNN (a rank-one network has no full-rank trainable W).

    Parameters
    ----------
    eta : float >= 0
    gate : None or "reward"
    perturbation_std : float >= 0
    controller : None, True or dict with keys low, high, recover, min, max
    beta : float in (0, 1]

    Reads: ``stp``; also ``reward`` with the gate and ``activity`` with the
    controller.
    """

    name = "freeze_in"
    supported_models = ("lfrnn", "plrnn")
    requires = ("stp",)

    def __init__(self, eta=1.0, gate=None, perturbation_std=0.0, controller=None, beta=0.1, modifies=None):
        self.eta = eta
        self.gate = gate
        self.perturbation_std = perturbation_std
        self.controller = controller
        self.beta = beta
        super().__init__(modifies)

    @property
    def reads(self):
        out = ("stp",)
        if self.gate == "reward":
            out += ("reward",)
        if self.controller:
            out += ("activity",)
        return out

    def computable(self, network):
        return ("W",)

    def controller_settings(self) -> dict | None:
        """The controller's resolved settings, or None without controller."""
        if not self.controller:
            return None
        given = {} if self.controller is True else dict(self.controller)
        check_keys("freeze_in controller: unknown key(s)", given, CONTROLLER_DEFAULTS)
        return {**CONTROLLER_DEFAULTS, **given}

    def check(self, network):
        for name in ("eta", "perturbation_std"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ConfigError(f"freeze_in {name} must be finite and >= 0, got {v!r}")
        if self.gate not in GATES:
            raise ConfigError(f"freeze_in gate must be None or 'reward', got {self.gate!r}")
        if not 0 < float(self.beta) <= 1:
            raise ConfigError(f"freeze_in beta must be in (0, 1], got {self.beta!r}")
        c = self.controller_settings()
        if c is not None and not (0 < c["low"] <= 1 <= c["high"] and 0 <= c["recover"] <= 1
                                  and 0 <= c["min"] <= c["max"]):
            raise ConfigError("freeze_in controller needs 0 < low <= 1 <= high, 0 <= recover <= 1 and "
                              f"0 <= min <= max, got {c}")
        return super().check(network)

    def init_state(self, network, params, rng):
        c = self.controller_settings()
        return {"lambda": 1.0 if c is None else float(c["max"]), "m0": None, "Rbar": None}

    def tcr_scale(self, state):
        return float(state["lambda"])

    def update(self, ctx, state):
        S = ctx.stp_end().mean(axis=0)
        g = 1.0
        info = {}
        if self.gate == "reward":
            R = float(np.sum(ctx.reward()))
            Rbar = R if state["Rbar"] is None else state["Rbar"]
            g = 1.0 if R >= Rbar else 0.0
            state["Rbar"] = (1 - self.beta) * Rbar + self.beta * R
            info["gate"] = g
        delta = (float(self.eta) * g) * S
        if self.perturbation_std:
            N = S.shape[0]
            zeta = ctx.rng.standard_normal(S.shape) * (float(self.perturbation_std) / np.sqrt(N))
            delta = delta + zeta.astype(S.dtype)
        c = self.controller_settings()
        if c is not None:
            m = ctx.activity()
            if state["m0"] is None:
                state["m0"] = max(m, 1e-300)
            rho = m / state["m0"] if math.isfinite(m) else math.inf
            lam = state["lambda"]
            if rho > c["high"]:
                lam = lam * c["high"] / rho
            elif rho < c["low"]:
                lam = lam * rho / c["low"]
            else:
                lam = lam + c["recover"] * (c["max"] - lam)
            state["lambda"] = float(min(max(lam, c["min"]), c["max"]))
            info["lambda_tcr"] = state["lambda"]
        return Update(deltas={"W": delta} if "W" in ctx.targets else {}, info=info)
