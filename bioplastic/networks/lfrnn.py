"""Leaky firing-rate RNN (LFRNN), SPEC 1.

    x[t+1] = (1 - alpha) x[t] + alpha (W r[t] + W_in u[t] + b) + sqrt(alpha) sigma xi[t]
    r = phi(x),   y[t] = W_out r[t+1] + b_out,   W_ij ~ N(0, g^2 / N)
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..kernels.activations import PHI_CODES
from ..kernels.lfrnn import drive_inputs, lfrnn_backward_rows_, lfrnn_forward_rows_
from ..machinery.panels import adjoint_panels, pack_forward
from ..machinery.threads import n_blocks, run_blocks
from ..validation import expect_shape, finite_number
from .base import Constraint, Network, Trajectory, block_accumulators, check_tcr_on, empty3, sum_blocks

#: (0, 0) epoch weights standing for "all ones" in the kernels.
NO_WEIGHTS = {np.dtype(d): np.zeros((0, 0), dtype=d) for d in ("float64", "float32")}


class LFRNN(Network):
    """Leaky firing-rate RNN integrated with numba Euler steps.

    Parameters
    ----------
    n_units, n_inputs, n_outputs, dt, tau, noise_std, dtype, trainable
        See :class:`~bioplastic.networks.base.Network`.
    g : float
        Gain of the recurrent initialisation, W_ij ~ N(0, g^2/N); g > 1 is
        the chaotic ("strongly connected") regime.
    nonlinearity : {"tanh", "relu", "softplus", "sigmoid"}
    sparsity : float in [0, 1)
        Fraction of absent recurrent synapses (held at zero).
    dale : float or None
        Fraction of excitatory units; when set, each presynaptic column of W
        keeps one sign (Dale's law) and the init uses |W| with that sign.
    input_scale : float
        Std of the input weights.

    Examples
    --------
    >>> import numpy as np
    >>> net = LFRNN(50, 3, 3, g=1.5)
    >>> params = net.init_params(np.random.default_rng(0))
    >>> traj = net.forward(params, np.zeros((20, 4, 3)))
    >>> traj.outputs.shape
    (20, 4, 3)
    """

    kind = "lfrnn"
    param_names = ("W", "W_in", "b", "W_out", "b_out")
    default_trainable = param_names
    forward_checks_finite = True  # every parameter reaches the packed panels

    def __init__(self, n_units, n_inputs, n_outputs, *, g=1.5, nonlinearity="tanh", sparsity=0.0,
                 dale=None, input_scale=1.0, dt=1.0, tau=10.0, noise_std=0.0, dtype=None, trainable=None):
        self.g = g
        self.nonlinearity = nonlinearity
        self.sparsity = sparsity
        self.dale = dale
        self.input_scale = input_scale
        super().__init__(n_units, n_inputs, n_outputs, dt=dt, tau=tau, noise_std=noise_std,
                         dtype=dtype, trainable=trainable)
        self._validate()

    def _validate_gain_and_nonlinearity(self):
        """Checks shared with the rank-one RNN."""
        if self.nonlinearity not in PHI_CODES:
            raise ConfigError(f"unknown nonlinearity {self.nonlinearity!r}; choose from {list(PHI_CODES)}")
        self.g = finite_number("g", self.g, minimum=0)
        self.input_scale = finite_number("input_scale", self.input_scale, minimum=0)

    def _validate(self):
        self._validate_gain_and_nonlinearity()
        if not 0 <= float(self.sparsity) < 1:
            raise ConfigError(f"sparsity must be in [0, 1), got {self.sparsity!r}")
        if self.dale is not None and not 0 < float(self.dale) < 1:
            raise ConfigError(f"dale (fraction excitatory) must be in (0, 1), got {self.dale!r}")

    def param_shapes(self):
        N, I, O = self.n_units, self.n_inputs, self.n_outputs
        return {"W": (N, N), "W_in": (N, I), "b": (N,), "W_out": (O, N), "b_out": (O,)}

    def _init_recurrent(self, rng):
        """W ~ N(0, g^2/N) plus its constraint (sparsity, Dale signs)."""
        N = self.n_units
        W = rng.standard_normal((N, N)) * self.g / np.sqrt(N)
        constraint = Constraint()
        if self.sparsity > 0:
            conn = rng.random((N, N)) >= self.sparsity
            W = W * conn / np.sqrt(1 - self.sparsity)  # keep the spectral radius near g
            constraint.connectivity = conn
        if self.dale is not None:
            n_exc = int(round(self.dale * N))
            col_sign = np.where(np.arange(N) < n_exc, 1, -1).astype(np.int8)
            sign = np.broadcast_to(col_sign, (N, N)).copy()
            W = np.abs(W) * sign
            W -= W.mean(axis=1, keepdims=True) * (W != 0)  # balance E and I input per unit
            W = np.where(sign * W < 0, 0, W)
            constraint.sign = sign
        return W, constraint

    def _init_arrays(self, rng):
        N, I, O = self.n_units, self.n_inputs, self.n_outputs
        W, c = self._init_recurrent(rng)
        arrays = {
            "W": W,
            "W_in": rng.standard_normal((N, I)) * self.input_scale,
            "b": np.zeros(N),
            "W_out": rng.standard_normal((O, N)) / np.sqrt(N),
            "b_out": np.zeros(O),
        }
        return arrays, ({"W": c} if c.arrays() else {})

    # -- dynamics ---------------------------------------------------------
    def recurrent_weights(self, params) -> np.ndarray:
        """The effective recurrent matrix the kernel runs on."""
        return params["W"]

    def _forward(self, params, inputs, noise, x0):
        return self.run_with_additive(params, inputs, noise, np.sqrt(self.alpha) * self.noise_std, x0)

    def run_with_additive(self, params, inputs, additive, scale, x0) -> Trajectory:
        """Euler integration with ``scale * additive[t]`` added to every state update.

        ``_forward`` passes the standard-normal noise with scale
        sqrt(alpha) sigma; node perturbation passes its current perturbation p
        (and the scaled noise) with scale alpha, since p enters as
        ``alpha (r W^T + u W_in^T + b + p)``. Shapes are checked against each
        other (ShapeError), values are not, except that non-finite parameters
        raise ShapeError (found while packing them: every array of
        ``param_names`` reaches the panels, through ``recurrent_weights`` in a
        subclass).

        Parameters
        ----------
        params : Params, of this network's shapes
        inputs : (T, B, I) array
        additive : (T, B, N) array or None
        scale : float
        x0 : (B, N) initial state
        """
        # shapes only (a few us): _forward hands these on from forward's checks
        self.check_param_shapes(params)
        T, B, _ = expect_shape("inputs", inputs, (None, None, self.n_inputs), "(T, B, n_inputs)")
        N = self.n_units
        if additive is not None:
            expect_shape("additive", additive, (T, B, N), "(T, B, n_units) of the inputs")
        expect_shape("x0", x0, (B, N), "(B, n_units) of the inputs")
        x0 = np.ascontiguousarray(x0, dtype=self.dtype)  # the kernel's type (a no-op from forward)
        dt = self.dtype.type
        W = self.recurrent_weights(params)
        noise_k = empty3(self.dtype) if additive is None else np.ascontiguousarray(additive, dtype=self.dtype)
        scale = 0.0 if additive is None else scale
        xs = np.empty((T + 1, B, N), dtype=self.dtype)
        rs = np.empty_like(xs)
        ys = np.empty((T, B, self.n_outputs), dtype=self.dtype)
        P, non_finite = pack_forward(W, params["W_in"], params["b"], params["W_out"], params["b_out"], self.alpha)
        if non_finite:
            self.raise_non_finite(params)
        run_blocks(lfrnn_forward_rows_, B, n_blocks(B, T, N * N),
                   x0, np.ascontiguousarray(inputs, dtype=self.dtype), P, noise_k, dt(scale), dt(self.alpha),
                   PHI_CODES[self.nonlinearity], params["W_out"], params["b_out"], xs, rs, ys)
        return Trajectory(xs, rs, ys)

    def backward_with_tcr(self, params, traj, inputs, d_outputs, lambda_tcr, *, tcr_on="rates",
                          epoch_mask=None):
        """As :meth:`Network.backward_with_tcr`, with the TCR term inside the
        adjoint kernel: no separate pass over the activity, no gradient array."""
        from ..training.loss import tcr_weights  # the training package imports this one

        check_tcr_on(tcr_on)
        params, inputs, d_outputs = self.check_backward_args(params, inputs, d_outputs)
        traj = self.check_trajectory(traj, *inputs.shape[:2])
        self.check_epoch_mask(epoch_mask, *inputs.shape[:2])
        weights, n = tcr_weights(traj.states.shape, epoch_mask, self.dtype)
        tcr = (1 if tcr_on == "rates" else 2, weights, self.dtype.type(2.0 * float(lambda_tcr) / n))
        grads, tcr_sum = self._adjoint(params, traj, inputs, d_outputs, None, None, tcr)
        return grads, tcr_sum / n

    def _backward(self, params, traj, inputs, d_outputs, d_rates, d_states):
        return self._adjoint(params, traj, inputs, d_outputs, d_rates, d_states, None)[0]

    def _adjoint(self, params, traj, inputs, d_outputs, d_rates, d_states, tcr):
        """The adjoint kernel on checked arrays: (grads, TCR sum of squared
        changes); ``tcr`` is (1 rates / 2 states, epoch weights, 2 lambda / n) or None."""
        a = self.alpha
        T, B, I = inputs.shape
        N, O = self.n_units, self.n_outputs
        W = self.recurrent_weights(params)
        blocks = n_blocks(B, T, N * N)
        acc = block_accumulators(blocks, {"W": (N, N), "V": (I + 1, N), "W_out": (O, N), "b_out": (O,)},
                                 self.dtype)
        tcr_on, tcr_w, tcr_c = (0, NO_WEIGHTS[self.dtype], self.dtype.type(0)) if tcr is None else tcr
        tcr_sum = np.zeros(blocks)
        run_blocks(lfrnn_backward_rows_, B, blocks,
                   traj.states, traj.rates, drive_inputs(inputs, self.dtype), adjoint_panels(W, params["W_out"], a),
                   self.dtype.type(a), PHI_CODES[self.nonlinearity],
                   empty3(self.dtype) if d_rates is None else d_rates,
                   empty3(self.dtype) if d_states is None else d_states, d_outputs,
                   tcr_on, tcr_w, tcr_c, acc["W"], acc["V"], acc["W_out"], acc["b_out"], tcr_sum)
        total = sum_blocks(acc)
        grads = {
            "W": a * total["W"],
            "W_in": np.ascontiguousarray(a * total["V"][:I].T),
            "b": a * total["V"][I],
            "W_out": total["W_out"],
            "b_out": total["b_out"],
        }
        return self._finish_grads(params, grads), float(tcr_sum.sum())

    def _finish_grads(self, params, grads):
        """Hook for subclasses that re-parametrise W (rank-one)."""
        return grads
