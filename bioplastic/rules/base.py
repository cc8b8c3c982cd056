"""What a learning rule is: a small parameter object that declares what it
reads and what it modifies; the maths lives in kernels.

A rule

- has a registered ``name`` and stores its constructor arguments (no work in
  ``__init__``; :meth:`Rule.check` validates against a network where work
  starts);
- declares ``reads``, a subset of :data:`SIGNALS` (pre/post activity,
  injected noise, a global scalar such as reward or error, feedback
  weights...). The :class:`~bioplastic.rules.context.Context` it is given
  refuses access to anything undeclared, so locality is visible and checked;
- declares what it ``modifies``: parameter names of the network (resolved
  by :meth:`Rule.check`; ``None`` means every trainable parameter the rule
  can update);
- returns an :class:`Update` from :meth:`Rule.update`: ``grads`` (descent
  directions in gradient convention, applied by the optimiser: with SGD,
  ``theta <- theta - lr * grad``) and/or ``deltas`` (increments added to the
  parameters directly, e.g. consolidation or random weight perturbations).

Rules compose with ``+`` (see :mod:`bioplastic.rules.compose`).
"""
from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field

from ..errors import ConfigError, DivergenceError

#: Everything a rule may read, with what it means. A rule's ``reads`` is a
#: subset of these names.
SIGNALS = {
    "pre": "presynaptic activity: rates r_j[t], inputs u_j[t], 1 for biases",
    "post": "postsynaptic state x_i[t], rate phi(x_i[t]) and phi'(x_i[t])",
    "noise": "perturbation noise xi_i[t] the rule injects into its own units",
    "reward": "global scalar per trial: R = -(task loss of the trial)",
    "error": "output error y[t] - y*[t] (one value per output unit)",
    "feedback": "feedback weights carrying the output error to units (W_out^T or fixed random)",
    "stp": "the fast synaptic component S_ij of TCR short-term plasticity",
    "activity": "global scalar: mean squared change of the rates per step (the TCR measure)",
    "adjoint": "exact backward pass through time (non-local: BPTT only)",
}

#: Methods a rule class must provide (checked at registration and by plugins).
REQUIRED_METHODS = ("check", "init_state", "update", "settings")


class NonFiniteRewardError(DivergenceError):
    """A reward (or baseline) handed to a rule is NaN or infinite."""


@dataclass
class Update:
    """What a rule proposes after one batch.

    Attributes
    ----------
    grads : dict name -> array
        Descent directions (gradient convention) for the optimiser.
    deltas : dict name -> array
        Increments added to the parameters after the optimiser step.
    info : dict name -> float
        Scalars worth recording (reward, baseline, gate...).
    """

    grads: dict = field(default_factory=dict)
    deltas: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    def names(self) -> set:
        return set(self.grads) | set(self.deltas)


class Rule:
    """Base class of learning rules.

    Subclasses set ``name`` and ``reads`` (class attributes or properties),
    may set ``supported_models`` (model kinds, None: any) and ``local``, and
    implement :meth:`update` and usually :meth:`computable`.

    Parameters
    ----------
    modifies : sequence of str or None
        Parameter names the rule may change. None: every trainable parameter
        of the network that the rule can compute an update for.
    """

    name: str = ""
    reads: tuple = ()
    supported_models: tuple | None = None
    #: False for rules that need non-local information (BPTT).
    local: bool = True
    #: (eta_s, tau_s) when the rule changes the dynamics with TCR-STP, else None.
    stp = None
    #: Capabilities the rule needs from another rule in a composition ("stp").
    requires: tuple = ()
    def __init__(self, modifies=None):
        self.modifies = modifies

    # -- description --------------------------------------------------------
    @property
    def source(self) -> str:
        """Where the rule comes from: "bioplastic", a plugin's "<distribution> <version>",
        or the defining module's top-level package for an unregistered rule."""
        from .registry import SOURCES

        return SOURCES.get(str(self.name).lower(), type(self).__module__.split(".")[0])

    def settings(self) -> dict:
        """Constructor arguments (JSON-friendly), so ``type(r)(**r.settings())`` rebuilds it."""
        sig = inspect.signature(type(self).__init__)
        out = {}
        for p in list(sig.parameters)[1:]:
            if p in ("args", "kwargs"):
                continue
            v = getattr(self, p, None)
            out[p] = list(v) if isinstance(v, tuple) else v
        return out

    def describe(self) -> dict:
        """Name, settings, reads and source: what run files record."""
        return {"name": self.name, "reads": list(self.reads), "source": self.source, **self.settings()}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        return f"{type(self).__name__}({args})"

    def __add__(self, other):
        from .compose import compose

        return compose(self, other)

    def copy(self):
        return copy.deepcopy(self)

    # -- contract -----------------------------------------------------------
    def computable(self, network) -> tuple:
        """Parameter names of ``network`` this rule can compute updates for
        (default: all of them)."""
        return tuple(network.param_names)

    def check(self, network) -> tuple:
        """Validate the rule against ``network``; return the parameter names it modifies.

        Raises
        ------
        ConfigError
            If the model kind is unsupported, or ``modifies`` names a
            parameter the model does not have, one the rule cannot update, or
            one that is not trainable.
        """
        who = f"rule {self.name!r}"
        if self.supported_models is not None and network.kind not in self.supported_models:
            raise ConfigError(f"{who} supports models {', '.join(self.supported_models)}; "
                              f"got a {network.kind!r} network")
        bad = [s for s in self.reads if s not in SIGNALS]
        if bad:
            raise ConfigError(f"{who} declares unknown signal(s) {bad} in reads; known: {', '.join(SIGNALS)}")
        can = self.computable(network)
        if self.modifies is None:
            return tuple(p for p in network.trainable if p in can)
        if isinstance(self.modifies, str):
            raise ConfigError(f"{who}: modifies must be a sequence of parameter names, got the string "
                              f"{self.modifies!r} (write ({self.modifies!r},))")
        out = []
        for p in self.modifies:
            if p not in network.param_names:
                raise ConfigError(f"{who} is asked to modify {p!r}, which a {network.kind!r} network does not "
                                  f"have; its parameters are {', '.join(network.param_names)}")
            if p not in can:
                raise ConfigError(f"{who} cannot compute an update for {p!r} of a {network.kind!r} network; "
                                  f"it can modify {', '.join(can) or 'nothing'}")
            if p not in network.trainable:
                raise ConfigError(f"{who} is asked to modify {p!r}, which this {network.kind!r} network does "
                                  f"not train (trainable: {', '.join(network.trainable)}); add it to the "
                                  "model's trainable parameters")
            out.append(p)
        return tuple(dict.fromkeys(out))

    def init_state(self, network, params, rng) -> dict:
        """Per-run state (baselines, fixed feedback weights...), drawn from ``rng``."""
        return {}

    def update(self, ctx, state) -> Update:  # pragma: no cover - overridden by every rule
        """Compute the update for the batch in ``ctx`` (a rule view of the Context)."""
        raise ConfigError(f"rule {type(self).__name__} does not define update(ctx, state); "
                          "every rule must (see docs/plugins.md)")

    def tcr_scale(self, state) -> float:
        """Multiplier of the TCR-STP strength this rule asks for (controller; default 1)."""
        return 1.0


def missing_methods(obj) -> list:
    """Names of :data:`REQUIRED_METHODS` that ``obj`` (class or instance) lacks.

    A subclass of :class:`Rule` that does not override ``update`` lacks it.
    """
    cls = obj if isinstance(obj, type) else type(obj)
    missing = [m for m in REQUIRED_METHODS if not callable(getattr(cls, m, None))]
    if isinstance(cls, type) and issubclass(cls, Rule) and cls.update is Rule.update:
        missing.append("update")
    return missing
