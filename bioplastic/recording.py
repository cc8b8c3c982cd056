"""Recording network activity for analysis and export (SPEC 7).

A :class:`Recording` says what to record (states, rates, inputs, targets,
outputs, and model extras such as STP traces), on how many trials, and at
which checkpoints. The trials are one fixed batch drawn from the run's own
"record" stream, so every checkpoint is recorded on the same trials and the
recording is reproducible from the seed. Recording happens only at the chosen
checkpoints: a run that records nothing pays nothing.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import ConfigError, ShapeError
from .validation import expect_shape

#: What every model can record. Model extras (``Trajectory.extra``) may add more.
RECORDABLE = ("states", "rates", "inputs", "targets", "outputs")


@dataclass
class Recording:
    """What to record during training.

    Parameters
    ----------
    what : sequence of str
        Any of ``RECORDABLE`` or a key of the model's ``Trajectory.extra``.
    n_trials : int
        Trials in the fixed recording batch.
    at : "checkpoints", "final" or sequence of int
        Iterations at which to record: every checkpoint, only the final
        parameters, or the listed iterations (which also become checkpoints).
    noise : bool
        Run the recording batch with the network's private noise (drawn from
        the record stream) instead of noiselessly.
    """

    what: tuple = ("states", "rates", "outputs")
    n_trials: int = 16
    at: object = "checkpoints"
    noise: bool = False

    def __post_init__(self):
        if isinstance(self.what, str):
            self.what = (self.what,)
        self.what = tuple(self.what)
        if not self.what:
            raise ConfigError("Recording.what is empty: name at least one of " + ", ".join(RECORDABLE))
        if isinstance(self.n_trials, bool) or not isinstance(self.n_trials, (int, np.integer)) or self.n_trials < 1:
            raise ConfigError(f"Recording.n_trials must be a positive integer, got {self.n_trials!r}")
        if isinstance(self.at, str):
            if self.at not in ("checkpoints", "final"):
                raise ConfigError(f"Recording.at must be 'checkpoints', 'final' or a list of iterations, got {self.at!r}")
        else:
            self.at = tuple(int(k) for k in self.at)

    def extra_checkpoints(self) -> tuple:
        """Iterations that must be checkpoints for this recording."""
        return () if isinstance(self.at, str) else self.at

    def wants(self, k: int, is_final: bool) -> bool:
        if self.at == "checkpoints":
            return True
        if self.at == "final":
            return is_final
        return k in self.at or is_final and not self.at

    def describe(self) -> dict:
        return {"what": list(self.what), "n_trials": int(self.n_trials),
                "at": self.at if isinstance(self.at, str) else list(self.at), "noise": self.noise}


def make_recording(spec) -> Recording | None:
    """A Recording from None, a Recording, or a mapping of its fields."""
    if spec is None or isinstance(spec, Recording):
        return spec
    if isinstance(spec, dict):
        unknown = set(spec) - {"what", "n_trials", "at", "noise"}
        if unknown:
            raise ConfigError(f"unknown recording setting(s) {sorted(unknown)}; use what, n_trials, at, noise")
        return Recording(**spec)
    raise ConfigError(f"cannot build a Recording from {spec!r}")


def record(network, params, batch, what, noise=None, simulate=None) -> dict:
    """Run ``batch`` through the network and return the requested arrays.

    ``simulate(network, params, inputs, noise) -> Trajectory`` replaces
    ``network.forward`` when the training dynamics differ from the plain
    network's (TCR short-term plasticity in a local-rule run).

    Returns a dict name -> array, time-first: states/rates (T+1, B, N),
    outputs (T, B, O), inputs (T, B, I), targets (T, B, O), extras as the
    model gives them.

    Raises
    ------
    ShapeError
        If the batch does not fit the network (the recorded targets must
        line up with the outputs) or ``noise`` the batch.
    """
    if not hasattr(batch, "inputs") or not hasattr(batch, "targets"):
        raise ShapeError(f"batch must be a TaskBatch (inputs, targets), got {type(batch).__name__}")
    T, B = expect_shape("batch.inputs", batch.inputs, (None, None, network.n_inputs),
                        f"(T, B, n_inputs) of this {network.kind}")[:2]
    expect_shape("batch.targets", batch.targets, (T, B, network.n_outputs),
                 f"(T, B, n_outputs) of the inputs and this {network.kind}")
    traj = (network.forward(params, batch.inputs, noise=noise) if simulate is None
            else simulate(network, params, batch.inputs, noise))
    available = {"states": traj.states, "rates": traj.rates, "outputs": traj.outputs,
                 "inputs": batch.inputs, "targets": batch.targets, **traj.extra}
    missing = [w for w in what if w not in available]
    if missing:
        raise ConfigError(f"cannot record {missing} from a {network.kind} network; "
                          f"available: {sorted(available)}")
    return {w: np.asarray(available[w]) for w in what}
