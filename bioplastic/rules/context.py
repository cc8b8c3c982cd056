"""One batch as learning rules see it: lazily computed, cached, access-checked.

The training loop builds a :class:`Context` per iteration (network,
parameters, batch, private noise, the effective TCR-STP setting and the
rule's random stream). Each rule receives a :class:`RuleView` of it that
only hands out the signals the rule declared in ``reads``; asking for another
raises :class:`UndeclaredSignalError`. Signals are computed on first use and
shared: the unperturbed trajectory is simulated once however many composed
rules read it, and a rule that runs its own fused pass (e-prop) can
:meth:`~Context.offer` its outputs so nobody simulates again.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ConfigError, ShapeError
from ..validation import expect_shape
from .base import SIGNALS, NonFiniteRewardError
from .models import readout_activity, simulate


class UndeclaredSignalError(ConfigError):
    """A rule asked its context for a signal it did not declare in ``reads``."""


def stp_kernel_args(stp, dt) -> tuple[float, float] | None:
    """(eta_s, tau_s) -> (eta_s, decay_s = 1 - dt / tau_s) for the kernels."""
    if stp is None:
        return None
    if not isinstance(stp, (tuple, list)) or len(stp) != 2:
        raise ConfigError(f"stp must be None or (eta_s, tau_s), got {stp!r}")
    eta_s, tau_s = stp
    return float(eta_s), (1.0 if math.isinf(tau_s) else 1.0 - dt / float(tau_s))


class Context:
    """Signals of one batch for the rules.

    Parameters
    ----------
    network : Network (a leaky one for most local rules)
    params : Params
    batch : TaskBatch
    noise : (T, B, N) standard-normal private noise of the network, or None
    stp : None or (eta_s, tau_s): the network runs on W + S with TCR-STP at
        this effective strength (SPEC 4)
    rng : numpy.random.Generator, the rules' stream (default: seeded 0)
    iteration : int, training iteration (for messages and schedules)

    Raises
    ------
    ShapeError
        If the parameters, the batch's inputs, targets and loss mask or the
        noise do not fit the network and each other (checked here, once, so
        that no rule kernel reads one array by another's sizes).
    """

    def __init__(self, network, params, batch, *, noise=None, stp=None, rng=None, iteration=0):
        check_context_args(network, params, batch, noise)
        self.network = network
        self.params = params
        self.batch = batch
        self.noise = noise
        self.stp = stp
        self.rng = np.random.default_rng(0) if rng is None else rng
        self.iteration = iteration
        dtype = network.dtype
        self.inputs = np.ascontiguousarray(batch.inputs, dtype=dtype)
        self.targets = np.ascontiguousarray(batch.targets, dtype=dtype)
        self.mask = np.ascontiguousarray(batch.loss_mask, dtype=dtype)
        self.n_scored = max(float(self.mask.sum()), 1.0)
        #: dL/dy = cmask * (y - y*) for the masked mean squared error.
        self.cmask = (2.0 / self.n_scored) * self.mask
        self._cache: dict = {}

    # -- shared, cached signals ----------------------------------------------
    @property
    def stp_args(self):
        """(eta_s, decay_s) for the kernels, or None without STP."""
        return stp_kernel_args(self.stp, self.network.dt)

    def trajectory(self):
        """The unperturbed trajectory (with STP when on), simulated once."""
        if "traj" not in self._cache:
            self._cache["traj"] = simulate(self.network, self.params, self.inputs, self.noise, stp=self.stp_args)
        return self._cache["traj"]

    def outputs(self) -> np.ndarray:
        """Outputs (T, B, O) of the unperturbed pass."""
        if "outputs" in self._cache:
            return self._cache["outputs"]
        return self.trajectory().outputs

    def offer(self, **signals) -> None:
        """Let a rule that ran an equivalent unperturbed pass share its results
        (``outputs``, ``S_end``, ``tcr_sum``); existing entries are kept."""
        for k, v in signals.items():
            if v is not None:
                self._cache.setdefault(k, v)

    def check_outputs(self, outputs) -> None:
        """ShapeError unless ``outputs`` is (T, B, O) like the batch's targets
        (NumPy would broadcast a (1, B, O) or (T, 1, O) array silently)."""
        expect_shape("outputs", outputs, self.targets.shape, "(T, B, n_outputs) of the batch's targets")

    def trial_losses(self, outputs) -> np.ndarray:
        """Per-trial task loss (B,), summing to the batch's masked MSE."""
        self.check_outputs(outputs)
        with np.errstate(over="ignore", invalid="ignore"):
            err = (np.asarray(outputs) - self.targets) * self.mask
            return np.sum(err * err, axis=(0, 2)) / self.n_scored

    def task_loss(self) -> float:
        return float(np.sum(self.trial_losses(self.outputs())))

    def error(self, outputs=None) -> np.ndarray:
        """dL/dy (T, B, O) of the masked mean squared error."""
        if outputs is None:
            return self.cmask * (self.outputs() - self.targets)
        self.check_outputs(outputs)
        return self.cmask * (outputs - self.targets)

    def activity(self) -> float:
        """Mean squared change of the rates per step (the TCR measure, SPEC 4)."""
        if "tcr_sum" in self._cache:
            T, B, _ = self.inputs.shape
            return self._cache["tcr_sum"] / (T * B * self.network.n_rates)
        r = self.trajectory().rates
        d = r[1:] - r[:-1]
        return float(np.mean(d * d))

    def stp_end(self) -> np.ndarray:
        """Fast weights S (B, N, N) at the end of each trial."""
        if self.stp is None:
            raise ConfigError("no TCR short-term plasticity in this run: compose the rules with 'tcr_stp'")
        if "S_end" in self._cache:
            return self._cache["S_end"]
        return self.trajectory().extra["S_end"]

    def perturbed(self, current=None, out_perturbation=None):
        """A trajectory with perturbations of the input current and outputs (not cached)."""
        return simulate(self.network, self.params, self.inputs, self.noise, stp=self.stp_args,
                        current=current, out_perturbation=out_perturbation)

    def view(self, rule, targets=()) -> "RuleView":
        return RuleView(self, rule, targets)


class RuleView:
    """The part of a :class:`Context` one rule may read (its declared ``reads``).

    Attributes ``network``, ``params``, ``batch``, ``rng``, ``iteration``,
    ``targets`` (the parameter names the rule modifies) and ``stp`` pass
    through. A rule that runs its own fused kernel on ``params`` and
    ``batch`` states what it reads with :meth:`require`.
    """

    def __init__(self, ctx: Context, rule, targets=()):
        self._ctx = ctx
        self.rule_name = getattr(rule, "name", type(rule).__name__)
        self.reads = frozenset(rule.reads)
        self.targets = tuple(targets)
        self.network, self.params, self.batch = ctx.network, ctx.params, ctx.batch
        self.rng, self.iteration, self.stp = ctx.rng, ctx.iteration, ctx.stp

    @property
    def context(self) -> Context:
        return self._ctx

    def require(self, *signals) -> None:
        """Raise UndeclaredSignalError unless every signal is declared in ``reads``."""
        for s in signals:
            if s not in SIGNALS:
                raise ConfigError(f"unknown signal {s!r}; known: {', '.join(SIGNALS)}")
            if s not in self.reads:
                raise UndeclaredSignalError(
                    f"rule {self.rule_name!r} reads {s!r} ({SIGNALS[s]}) but does not declare it; "
                    f"its reads are {sorted(self.reads)}")

    def _require_any(self, *signals):
        if not any(s in self.reads for s in signals):
            raise UndeclaredSignalError(f"rule {self.rule_name!r} needs one of {list(signals)} in its reads "
                                        f"for this signal; its reads are {sorted(self.reads)}")

    # -- signals -------------------------------------------------------------
    def trajectory(self):
        """Unperturbed trajectory (states = post, rates = pre/post)."""
        self._require_any("pre", "post")
        return self._ctx.trajectory()

    def pre(self, name: str) -> np.ndarray:
        """Presynaptic activity (T, B, M) of parameter ``name``: rates for
        recurrent weights, inputs for input weights, ones for biases, the
        read-out activity for ``W_out``, the own state for the PLRNN's ``A``."""
        self.require("pre")
        ctx = self._ctx
        if name in ("W_in", "C"):
            return ctx.inputs
        T, B, _ = ctx.inputs.shape
        if name in ("b", "h", "b_out"):
            return np.ones((T, B, 1), dtype=ctx.network.dtype)
        traj = ctx.trajectory()
        if name == "W_out":
            return readout_activity(ctx.network, traj)[1:]
        if name == "A":
            return traj.states[:-1]
        return traj.rates[:-1]

    def post(self):
        """(states, rates) (T+1, B, N) of the postsynaptic units."""
        self.require("post")
        t = self._ctx.trajectory()
        return t.states, t.rates

    def outputs(self) -> np.ndarray:
        self._require_any("error", "reward", "post")
        return self._ctx.outputs()

    def error(self, outputs=None) -> np.ndarray:
        """dL/dy (T, B, O): the output error weighted by the loss mask."""
        self.require("error")
        return self._ctx.error(outputs)

    def reward(self, outputs=None) -> np.ndarray:
        """Per-trial reward R_b = -(task loss of trial b) (B,), checked finite."""
        self.require("reward")
        y = self._ctx.outputs() if outputs is None else outputs
        R = -self._ctx.trial_losses(y)
        check_reward(R, self._ctx.iteration)
        return R

    def feedback(self) -> np.ndarray:
        """Symmetric feedback weights W_out (O, N) (the rule's own random ones live in its state)."""
        self.require("feedback")
        return self.params["W_out"]

    def perturb(self, current=None, out_perturbation=None):
        """Run the network with perturbation noise injected into units / outputs."""
        self.require("noise")
        return self._ctx.perturbed(current, out_perturbation)

    def stp_end(self) -> np.ndarray:
        """TCR-STP fast weights S (B, N, N) at the end of each trial."""
        self.require("stp")
        return self._ctx.stp_end()

    def activity(self) -> float:
        self.require("activity")
        return self._ctx.activity()

    def offer(self, **signals) -> None:
        self._ctx.offer(**signals)


def check_context_args(network, params, batch, noise) -> None:
    """ShapeError unless the parameters, the batch and the noise of a
    :class:`Context` fit ``network`` and each other: the rule kernels index
    them all by the inputs' (T, B) and the network's (N, I, O)."""
    network.check_param_shapes(params)
    for name in ("inputs", "targets", "loss_mask"):
        if not hasattr(batch, name):
            raise ShapeError(f"batch must be a TaskBatch (inputs, targets, loss_mask), got {type(batch).__name__}")
    T, B, _ = expect_shape("batch.inputs", batch.inputs, (None, None, network.n_inputs),
                           f"(T, B, n_inputs) of this {network.kind}")
    for name in ("targets", "loss_mask"):
        expect_shape(f"batch.{name}", getattr(batch, name), (T, B, network.n_outputs),
                     f"(T, B, n_outputs) of the inputs and this {network.kind}")
    if noise is not None:
        expect_shape("noise", noise, (T, B, network.n_units), "(T, B, n_units) of the batch's inputs")


def check_reward(R, iteration=None) -> None:
    """Raise NonFiniteRewardError if any reward is NaN or infinite."""
    R = np.asarray(R, dtype=float)
    bad = int(R.size - np.count_nonzero(np.isfinite(R)))
    if bad:
        where = "" if iteration is None else f" at iteration {iteration}"
        raise NonFiniteRewardError(
            f"non-finite reward (NaN or inf) in {bad} of {R.size} trial(s){where}: the network's outputs "
            "diverged; lower the learning rate, the gain g or the TCR-STP strength", iteration=iteration)
