"""Network base class: settings apart from parameters, constraints, trajectories.

A network object holds *settings* (sizes, tau, dt, nonlinearity, gain). Its
weights live in a separate :class:`Params` mapping that is passed explicitly,
so one network object can evaluate many parameter sets (checkpoints, rules).
Each parameter array may carry a :class:`Constraint` (frozen entries, absent
synapses, Dale signs) that is enforced after every update.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from .. import config
from ..machinery.linalg import dot_
from ..errors import ConfigError, ShapeError
from ..validation import as_array, expect_shape, positive


@dataclass
class Constraint:
    """What an update may do to one parameter array.

    Attributes
    ----------
    frozen : bool array or None
        True where the entry must keep its reference value.
    connectivity : bool array or None
        False where a synapse is absent: the entry is held at 0.
    sign : int8 array or None
        +1 / -1 where the entry must keep that sign (Dale's law), 0 free.
    """

    frozen: np.ndarray | None = None
    connectivity: np.ndarray | None = None
    sign: np.ndarray | None = None

    def mask_gradient(self, grad: np.ndarray) -> np.ndarray:
        """Zero the gradient where the entry cannot change."""
        if self.frozen is not None:
            grad = np.where(self.frozen, 0, grad)
        if self.connectivity is not None:
            grad = np.where(self.connectivity, grad, 0)
        return grad

    def enforce(self, value: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Project ``value`` back onto the allowed set (after an update)."""
        if self.frozen is not None:
            value = np.where(self.frozen, reference, value)
        if self.connectivity is not None:
            value = np.where(self.connectivity, value, 0)
        if self.sign is not None:
            value = np.where(self.sign * value < 0, 0, value)
        return value.astype(reference.dtype, copy=False)

    def arrays(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in (("frozen", self.frozen), ("connectivity", self.connectivity),
                                  ("sign", self.sign)) if v is not None}


def trainable_names(value, default=()) -> tuple:
    """``trainable`` as a tuple of names: ``default`` for None, one name for a string.

    The one place every way of giving ``trainable`` (a spec file, ``--set``,
    :func:`bioplastic.make_network`, :class:`Params`) goes through, so a
    single name such as ``"W"`` is that name, not its letters.

    Raises
    ------
    ConfigError
        If ``value`` is neither None, a string nor a sequence of names.
    """
    if value is None:
        return tuple(default)
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (bytes, dict)) or not hasattr(value, "__iter__"):
        raise ConfigError(f"trainable must be a parameter name or a list of names, got {value!r}")
    return tuple(value)


class Params(dict):
    """Parameter arrays by name, plus their :class:`Constraint` objects.

    A plain ``dict`` of arrays with one extra attribute, ``constraints``.
    ``trainable`` names the arrays an optimiser or rule may change.
    """

    def __init__(self, arrays=(), constraints=None, trainable=None):
        super().__init__(arrays)
        self.constraints: dict[str, Constraint] = dict(constraints or {})
        self.trainable: tuple[str, ...] = trainable_names(trainable, default=self)

    def copy(self) -> "Params":
        return Params({k: v.copy() for k, v in self.items()}, self.constraints, self.trainable)

    def enforce(self, reference: "Params") -> None:
        """Apply every constraint in place, relative to ``reference`` values."""
        for name, c in self.constraints.items():
            self[name] = c.enforce(self[name], reference[name])


@dataclass
class Trajectory:
    """What a forward pass produced, time-first.

    Attributes
    ----------
    states : (T+1, B, N) array, ``states[0]`` is the initial state.
    rates : (T+1, B, N) array, the activity TCR acts on (phi(x), relu(z), h).
    outputs : (T, B, O) array, readout after each step.
    extra : dict of model-specific arrays (e.g. LSTM cell states and gates).
    """

    states: np.ndarray
    rates: np.ndarray
    outputs: np.ndarray
    extra: dict = field(default_factory=dict)


class Network(ABC):
    """Base class of all rate networks.

    Subclasses set ``kind`` and ``param_names`` and implement
    ``_init_arrays``, ``_forward`` and ``_backward``. The public ``forward``
    and ``backward`` validate arguments, so subclasses can trust them.

    Parameters
    ----------
    n_units, n_inputs, n_outputs : int
        Sizes N, I and O.
    dt, tau : float
        Euler step and time constant (same time unit); alpha = dt / tau.
    noise_std : float
        sigma of the private noise; the Euler step adds sqrt(alpha) sigma xi.
    dtype : {"float64", "float32"} or None
        Floating type (``None``: ``bioplastic.config``).
    trainable : str, sequence of str or None
        Parameter arrays that learning may change (default: the model's); a
        string is one name.
    """

    kind: str = ""
    param_names: tuple[str, ...] = ()
    default_trainable: tuple[str, ...] = ()
    #: True when ``_forward`` finds non-finite parameters itself (in the pass
    #: that packs them for the kernel) and calls :meth:`raise_non_finite`:
    #: ``forward`` then skips the separate scan of every array.
    forward_checks_finite: bool = False

    def __init__(self, n_units, n_inputs, n_outputs, *, dt=1.0, tau=10.0, noise_std=0.0,
                 dtype=None, trainable=None):
        self.n_units = n_units
        self.n_inputs = n_inputs
        self.n_outputs = n_outputs
        self.dt = dt
        self.tau = tau
        self.noise_std = noise_std
        self.dtype = dtype
        self.trainable = trainable
        self._validate_common()

    # -- settings ---------------------------------------------------------
    def _validate_common(self):
        for name in ("n_units", "n_inputs", "n_outputs"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ConfigError(f"{name} must be a positive integer, got {v!r}")
            setattr(self, name, int(v))
        self.dt = positive("dt", self.dt)
        self.tau = positive("tau", self.tau)
        if self.dt > self.tau:
            raise ConfigError(f"dt ({self.dt}) must not exceed tau ({self.tau}): the Euler step would overshoot")
        ns = float(self.noise_std)
        if not np.isfinite(ns) or ns < 0:
            raise ConfigError(f"noise_std must be >= 0, got {self.noise_std!r}")
        self.noise_std = ns
        self.dtype = config.resolve_dtype(self.dtype)
        trainable = trainable_names(self.trainable, default=self.default_trainable)
        unknown = [p for p in trainable if p not in self.param_names]
        if unknown:
            raise ConfigError(f"{self.kind}: cannot train {unknown}; parameters are {list(self.param_names)}")
        self.trainable = trainable

    @property
    def alpha(self) -> float:
        """Euler factor dt / tau."""
        return self.dt / self.tau

    @property
    def n_rates(self) -> int:
        """Dimension of the activity TCR acts on."""
        return self.n_units

    def settings(self) -> dict:
        """Constructor arguments, JSON-serialisable (recorded in run files)."""
        out = {"kind": self.kind}
        for k, v in vars(self).items():
            if k.startswith("_"):
                continue
            if isinstance(v, np.dtype):
                v = v.name
            elif isinstance(v, tuple):
                v = list(v)
            out[k] = v
        return out

    def __repr__(self):
        s = self.settings()
        s.pop("kind")
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in s.items())})"

    # -- parameters -------------------------------------------------------
    def init_params(self, rng: np.random.Generator) -> Params:
        """Draw initial parameters from ``rng`` (the run's "init" stream)."""
        if not isinstance(rng, np.random.Generator):
            raise ConfigError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        arrays, constraints = self._init_arrays(rng)
        arrays = {k: np.ascontiguousarray(v, dtype=self.dtype) for k, v in arrays.items()}
        params = Params(arrays, constraints, self.trainable)
        params.enforce(params)
        return params

    @abstractmethod
    def param_shapes(self) -> dict[str, tuple]:
        """Shape of every parameter array, by name."""

    @abstractmethod
    def _init_arrays(self, rng) -> tuple[dict, dict]:
        """Initial arrays and constraints, drawn from ``rng``."""

    @abstractmethod
    def _forward(self, params, inputs, noise, x0) -> "Trajectory":
        """Forward pass on validated arguments."""

    @abstractmethod
    def _backward(self, params, traj, inputs, d_outputs, d_rates, d_states) -> dict:
        """Adjoint pass on validated arguments."""

    def check_params(self, params, finite: bool = True) -> Params:
        """Return ``params`` with arrays cast to this network's dtype, checked.

        Raises ShapeError for a missing, extra, misshaped or (unless
        ``finite`` is False) non-finite array.
        """
        if not isinstance(params, dict):
            raise ShapeError(f"params must be a mapping of arrays, got {type(params).__name__}")
        shapes = self.param_shapes()
        missing = [k for k in shapes if k not in params]
        extra = [k for k in params if k not in shapes]
        if missing or extra:
            raise ShapeError(f"{self.kind} params: missing {missing}, unexpected {extra}")
        # where a shape comes from is worked out only for a misshaped array (this runs per call)
        arrays = {k: as_array(f"params[{k!r}]", params[k], self.dtype, shape=shapes[k], finite=finite,
                              what=None if getattr(params[k], "shape", None) == shapes[k] else self.param_what(k))
                  for k in shapes}
        constraints = getattr(params, "constraints", {})
        trainable = getattr(params, "trainable", self.trainable)
        return Params(arrays, constraints, trainable)

    def check_param_shapes(self, params) -> None:
        """Raise the ShapeError of :meth:`check_params` for a missing, extra or
        misshaped array, without casting or scanning values (a few us: for
        entries that hand parameters on to other checked code or to kernels
        that cast them, e.g. the local rules' context)."""
        if not isinstance(params, dict):
            raise ShapeError(f"params must be a mapping of arrays, got {type(params).__name__}")
        shapes = self.param_shapes()
        if len(params) != len(shapes) or any(k not in params for k in shapes):
            self.check_params(params, finite=False)  # names what is missing or unexpected
        for k, shape in shapes.items():
            if np.shape(params[k]) != shape:  # the message only on failure: this runs per update
                expect_shape(f"params[{k!r}]", params[k], shape, self.param_what(k))

    def param_what(self, name: str) -> str:
        """How the shape of parameter ``name`` follows from the sizes, e.g.
        ``(4N, I) of this lstm`` (for error messages; worked out once per set of sizes)."""
        key = (self.n_units, self.n_inputs, self.n_outputs)
        cached = self.__dict__.get("_param_what")
        if cached is None or cached[0] != key:
            cached = self._param_what = (key, self._symbolic_param_shapes())
        return cached[1][name]

    def _symbolic_param_shapes(self) -> dict:
        """``param_shapes`` with N, I and O as symbols: evaluated at three
        distinct primes, each dimension read back as a multiple of one."""
        import copy

        symbols = {1009: "N", 1013: "I", 1019: "O"}
        probe = copy.copy(self)
        probe.n_units, probe.n_inputs, probe.n_outputs = symbols

        def dim(d):
            for prime, sym in symbols.items():
                if d % prime == 0:
                    return sym if d == prime else f"{d // prime}{sym}"
            return str(d)

        return {k: "(" + ", ".join(dim(d) for d in shape) + ("," if len(shape) == 1 else "") + f") of this {self.kind}"
                for k, shape in probe.param_shapes().items()}

    def raise_non_finite(self, params):
        """Raise the ShapeError of :meth:`check_params` for the array that is
        not finite; for a kernel that found non-finite weights in ``params``."""
        self.check_params(params)
        # All finite, yet the kernel saw inf: a product of them overflowed.
        raise ShapeError(f"{self.kind} params: the weights the kernel runs on overflow to inf")

    # -- dynamics ---------------------------------------------------------
    def check_inputs(self, inputs) -> np.ndarray:
        """``inputs`` (T, B, I) cast to this network's dtype, checked (ShapeError)."""
        arr = as_array("inputs", inputs, self.dtype, shape=(None, None, self.n_inputs), what="(T, B, n_inputs)")
        if arr.shape[0] < 1 or arr.shape[1] < 1:  # the kernels' panels need a step and a trial
            raise ShapeError(f"inputs must hold at least one step and one trial (T, B >= 1), got {arr.shape}")
        return arr

    def check_epoch_mask(self, epoch_mask, T: int, B: int) -> None:
        """ShapeError unless ``epoch_mask`` is None or (T, B) like the inputs."""
        if epoch_mask is not None:
            expect_shape("epoch_mask", epoch_mask, (T, B), "(T, B) of the inputs")

    def draw_noise(self, rng: np.random.Generator, n_steps: int, batch_size: int):
        """Standard-normal private noise (T, B, N), or None when noise_std == 0."""
        if self.noise_std == 0:
            return None
        return rng.standard_normal((n_steps, batch_size, self.n_units)).astype(self.dtype)

    def initial_state(self, batch_size: int) -> np.ndarray:
        """Default initial state x0: zeros (B, N)."""
        return np.zeros((batch_size, self.n_units), dtype=self.dtype)

    def forward(self, params, inputs, *, noise=None, x0=None) -> Trajectory:
        """Run the network on ``inputs`` (T, B, I).

        Parameters
        ----------
        params : Params or dict of arrays
        inputs : (T, B, I) array
        noise : (T, B, N) standard-normal array or None (no noise)
        x0 : (B, N) initial state or None (zeros)
        """
        # After a pass has swept the caches, scanning every array costs 10 to
        # 20 us; models that pack their weights count non-finite ones there.
        params = self.check_params(params, finite=not self.forward_checks_finite)
        inputs = self.check_inputs(inputs)
        T, B, _ = inputs.shape
        if noise is not None:
            noise = as_array("noise", noise, self.dtype, shape=(T, B, self.n_units),
                             what="(T, B, n_units) of the inputs")
        x0 = self.initial_state(B) if x0 is None else as_array("x0", x0, self.dtype, shape=(B, self.n_units),
                                                                what="(B, n_units) of the inputs")
        return self._forward(params, inputs, noise, x0)

    def backward(self, params, traj: Trajectory, inputs, d_outputs, d_rates=None, d_states=None) -> dict:
        """Gradients of a loss w.r.t. every parameter array, by the adjoint method.

        Parameters
        ----------
        params, inputs : as given to ``forward``
        traj : the Trajectory that ``forward`` returned
        d_outputs : (T, B, O) dL/dy
        d_rates : (T+1, B, N) direct dL/d(rates), e.g. from TCR, or None
        d_states : (T+1, B, N) direct dL/d(states), or None

        Returns
        -------
        dict mapping every parameter name to its gradient (same shape).
        """
        params, inputs, d_outputs = self.check_backward_args(params, inputs, d_outputs)
        T, B, _ = inputs.shape
        traj = self.check_trajectory(traj, T, B)
        shape = (T + 1, B, self.n_rates)
        d_rates = None if d_rates is None else as_array("d_rates", d_rates, self.dtype, shape=shape,
                                                        what="(T+1, B, n_rates) of the inputs")
        d_states = None if d_states is None else as_array(
            "d_states", d_states, self.dtype, shape=(T + 1, B, traj.states.shape[2]),
            what="(T+1, B, state size) of the inputs")
        return self._backward(params, traj, inputs, d_outputs, d_rates, d_states)

    def trajectory_shapes(self, T: int, B: int) -> dict:
        """Shapes of the trajectory arrays the adjoint reads, for ``T`` steps of ``B`` trials
        (``name`` is a Trajectory attribute or a key of its ``extra``)."""
        return {"states": (T + 1, B, self.n_units), "rates": (T + 1, B, self.n_rates),
                "outputs": (T, B, self.n_outputs)}

    def check_trajectory(self, traj, T: int, B: int) -> Trajectory:
        """``traj`` checked against the inputs' ``T`` and ``B`` and cast to this network's dtype.

        The adjoint kernels index the trajectory by the inputs' steps and
        trials: a trajectory from other inputs would be read out of bounds,
        so a mismatch is a ShapeError naming the array. Values are not scanned
        for NaN here (a forward pass made them; the loss reports divergence).
        """
        if not isinstance(traj, Trajectory):
            raise ShapeError(f"traj must be the Trajectory that forward returned, got {type(traj).__name__}")
        arrays = {"states": traj.states, "rates": traj.rates, "outputs": traj.outputs}
        extra = dict(traj.extra)
        for name, shape in self.trajectory_shapes(T, B).items():
            if name not in arrays and name not in extra:
                raise ShapeError(f"{self.kind} backward needs the trajectory's extra[{name!r}] from forward")
            value = arrays[name] if name in arrays else extra[name]
            if value is None:
                raise ShapeError(f"traj.{name} is missing (None)")
            checked = as_array(f"traj.{name} (for inputs of {T} steps x {B} trials)", value, self.dtype,
                               shape=shape, finite=False)
            if name in arrays:
                arrays[name] = checked
            else:
                extra[name] = checked
        return Trajectory(arrays["states"], arrays["rates"], arrays["outputs"], extra)

    def check_backward_args(self, params, inputs, d_outputs):
        """``params``, ``inputs`` and ``d_outputs`` (T, B, O), checked and cast."""
        params = self.check_params(params)
        inputs = self.check_inputs(inputs)
        T, B, _ = inputs.shape
        return params, inputs, as_array("d_outputs", d_outputs, self.dtype, shape=(T, B, self.n_outputs),
                                        what="(T, B, n_outputs) of the inputs")

    def backward_with_tcr(self, params, traj: Trajectory, inputs, d_outputs, lambda_tcr, *, tcr_on="rates",
                          epoch_mask=None) -> tuple[dict, float]:
        """Gradients of ``L + lambda_TCR L_TCR`` and the value of L_TCR (SPEC 4).

        ``L_TCR = sum e[t,b] ||a[t+1,b] - a[t,b]||^2 / n`` on the rates or the
        states a; ``d_outputs`` is dL/dy of the other terms. The value is
        measured even when ``lambda_tcr`` is 0 (a diagnostic).

        Parameters
        ----------
        params, traj, inputs, d_outputs : as for :meth:`backward`
        lambda_tcr : float, weight of the TCR term
        tcr_on : {"rates", "states"}
        epoch_mask : (T, B) weights e of the changes, or None (all ones)

        Returns
        -------
        grads : dict, as :meth:`backward`
        l_tcr : float
        """
        from ..training.loss import tcr_loss  # the training package imports this one

        check_tcr_on(tcr_on)
        # every array checked against the others before the TCR and adjoint kernels run
        params, inputs, d_outputs = self.check_backward_args(params, inputs, d_outputs)
        T, B, _ = inputs.shape
        traj = self.check_trajectory(traj, T, B)
        self.check_epoch_mask(epoch_mask, T, B)
        act = traj.rates if tcr_on == "rates" else traj.states
        l_tcr, d_act = tcr_loss(act, epoch_mask, grad_scale=lambda_tcr, need_grad=bool(lambda_tcr))
        if d_act is not None:  # a diverged trajectory: the ShapeError that backward gives
            d_act = as_array(f"d_{tcr_on}", d_act, self.dtype)
        grads = self._backward(params, traj, inputs, d_outputs, d_act if tcr_on == "rates" else None,
                               d_act if tcr_on == "states" else None)
        return grads, l_tcr


TCR_TARGETS = ("rates", "states")


def check_tcr_on(tcr_on) -> None:
    """ConfigError unless ``tcr_on`` names an activity TCR can act on."""
    if tcr_on not in TCR_TARGETS:
        raise ConfigError(f"tcr_on must be one of {TCR_TARGETS}, got {tcr_on!r}")


EMPTY3 = {np.dtype("float64"): np.zeros((0, 0, 0)), np.dtype("float32"): np.zeros((0, 0, 0), np.float32)}


def empty3(dtype) -> np.ndarray:
    """A (0, 0, 0) array standing for "absent" in kernels (numba needs an array)."""
    return EMPTY3[np.dtype(dtype)]


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b through the kernels' BLAS (see :mod:`bioplastic.machinery.linalg`)."""
    if a.dtype != b.dtype or a.dtype.kind != "f":
        return a @ b
    return dot_(_contiguous(a), _contiguous(b))


def _contiguous(x):
    return x if (x.flags.c_contiguous or x.flags.f_contiguous) else np.ascontiguousarray(x)


def readout(rates_after: np.ndarray, W_out: np.ndarray, b_out: np.ndarray) -> np.ndarray:
    """y[t] = r[t+1] W_out^T + b_out for all t at once (one BLAS call)."""
    T, B, N = rates_after.shape
    return (matmul(rates_after.reshape(T * B, N), W_out.T) + b_out).reshape(T, B, -1)


def block_accumulators(blocks: int, shapes: dict, dtype) -> dict:
    """Zeroed per-block gradient accumulators ``{name: (blocks,) + shape}``
    for the adjoint kernels that :func:`~bioplastic.machinery.threads.run_blocks`
    runs on row blocks (block k writes index k)."""
    return {name: np.zeros((blocks,) + tuple(shape), dtype=dtype) for name, shape in shapes.items()}


def sum_blocks(acc: dict) -> dict:
    """The accumulators of :func:`block_accumulators` summed over their blocks,
    in block order (so the result does not depend on which thread ran which).

    Added one block after another: the same bits as ``v.sum(axis=0)``, which
    accumulates along a leading axis in that order too, at a third of its
    cost for two blocks (2 against 6 us per array)."""
    return {name: _sum_leading(v) for name, v in acc.items()}


def _sum_leading(v: np.ndarray) -> np.ndarray:
    if v.shape[0] == 1:
        return v[0]
    total = v[0] + v[1]
    for k in range(2, v.shape[0]):
        total += v[k]
    return total
