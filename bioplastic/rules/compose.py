"""Composition of rules: a task rule plus TCR-STP plus freeze-in, and so on.

``compose(a, b, c)`` (or ``a + b + c``, or the name ``"a+b+c"``) is a rule
whose ``reads`` and ``modifies`` are the unions of its parts'. Each part
still sees only its own declared signals. Per iteration the parts run in
order on one shared :class:`~bioplastic.rules.context.Context` (so the
unperturbed trajectory is simulated at most once), and their updates add
up, each scaled by its weight::

    grad  = sum_k w_k grad_k,     delta = sum_k w_k delta_k

The TCR-STP setting of the run comes from the (single) part with ``stp``;
its strength is multiplied by every part's ``tcr_scale`` (the freeze-in
controller).
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from .base import Rule, Update


class Composite(Rule):
    """Several rules acting together; see the module docstring.

    Parameters
    ----------
    rules : sequence of Rule
    weights : sequence of float or None (all 1)
    """

    def __init__(self, rules, weights=None):
        self.rules = list(rules)
        self.weights = None if weights is None else [float(w) for w in weights]
        self.modifies = None

    @property
    def parts(self):
        return self.rules

    @property
    def name(self):
        return "+".join(r.name for r in self.rules)

    @property
    def reads(self):
        return tuple(dict.fromkeys(s for r in self.rules for s in r.reads))

    @property
    def local(self):
        return all(getattr(r, "local", True) for r in self.rules)

    @property
    def supported_models(self):
        kinds = None
        for r in self.rules:
            if r.supported_models is not None:
                kinds = tuple(r.supported_models) if kinds is None else tuple(k for k in kinds
                                                                               if k in r.supported_models)
        return kinds

    @property
    def stp(self):
        stps = [r.stp for r in self.rules if r.stp is not None]
        return stps[0] if stps else None

    def settings(self):
        return {"rules": [r.describe() for r in self.rules], "weights": self.weights}

    def describe(self):
        return {"name": self.name, "reads": list(self.reads), "rules": [r.describe() for r in self.rules],
                "weights": self.weights}

    def __repr__(self):
        return f"Composite({self.rules!r}, weights={self.weights!r})"

    def _weights(self):
        return [1.0] * len(self.rules) if self.weights is None else self.weights

    def check(self, network):
        if not self.rules:
            raise ConfigError("a composition needs at least one rule")
        if self.weights is not None and (len(self.weights) != len(self.rules)
                                         or not all(np.isfinite(self.weights))):
            raise ConfigError(f"composition weights must be {len(self.rules)} finite numbers, got {self.weights}")
        names = [r.name for r in self.rules]
        if len(set(names)) != len(names):
            raise ConfigError(f"a rule appears twice in the composition {'+'.join(names)}")
        with_stp = [r.name for r in self.rules if r.stp is not None]
        if len(with_stp) > 1:
            raise ConfigError(f"only one TCR-STP rule per composition, got {with_stp}")
        for r in self.rules:
            if "stp" in getattr(r, "requires", ()) and not with_stp:
                raise ConfigError(f"rule {r.name!r} consolidates the TCR short-term term S: compose it with "
                                  f"'tcr_stp' (e.g. 'eprop+tcr_stp+{r.name}')")
            if with_stp and not getattr(r, "local", True):
                raise ConfigError(f"rule {r.name!r} differentiates the network without STP and cannot be "
                                  "composed with 'tcr_stp'; use TCR as a loss term (bioplastic.train) instead")
        targets = []
        for r in self.rules:
            targets.extend(r.check(network))
        return tuple(dict.fromkeys(targets))

    def init_state(self, network, params, rng):
        return {"parts": [r.init_state(network, params, rng) for r in self.rules],
                "targets": [r.check(network) for r in self.rules]}

    def tcr_scale(self, state):
        scale = 1.0
        for r, st in zip(self.rules, state["parts"]):
            scale *= float(r.tcr_scale(st))
        return scale

    def update(self, ctx, state):
        total = Update()
        ctx_all = ctx.context
        for r, st, tg, w in zip(self.rules, state["parts"], state["targets"], self._weights()):
            u = r.update(ctx_all.view(r, tg), st)
            for kind in ("grads", "deltas"):
                acc = getattr(total, kind)
                for k, v in getattr(u, kind).items():
                    acc[k] = acc[k] + w * v if k in acc else w * v
            total.info.update({f"{r.name}.{k}": v for k, v in u.info.items()})
        return total


def compose(*rules, weights=None) -> Composite:
    """Compose rules (objects or registered names); nested compositions flatten."""
    from .registry import get_rule

    flat = []
    for r in rules:
        r = get_rule(r) if isinstance(r, str) else r
        flat.extend(r.rules if isinstance(r, Composite) else [r])
    return Composite(flat, weights)
