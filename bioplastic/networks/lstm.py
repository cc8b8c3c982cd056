"""LSTM network, SPEC 1: standard cell with forget gate, readout from h.

    [i, f, g, o] = [sigmoid, sigmoid, tanh, sigmoid](W_x u[t] + W_h h[t] + b)
    c[t+1] = f c[t] + i g + sqrt(alpha) sigma xi[t]
    h[t+1] = o tanh(c[t+1]),   y[t] = W_out h[t+1] + b_out

TCR acts on h (the trajectory's ``rates``); ``states`` are the cell states c.
"""
from __future__ import annotations

import numpy as np

from ..kernels.lfrnn import drive_inputs
from ..kernels.lstm import gate_scales, lstm_backward_rows_, lstm_forward_rows_
from ..machinery.panels import adjoint_panels, pack_forward
from ..machinery.threads import n_blocks, run_blocks
from ..validation import as_array, finite_number
from .base import Network, Trajectory, block_accumulators, empty3, sum_blocks


class LSTM(Network):
    """Long short-term memory network (Hochreiter & Schmidhuber 1997; Gers 2000).

    Model, for t = 0..T-1, H = ``n_units``, gate blocks ordered
    ``[i | f | g | o]`` along the 4H axis::

        pre[t] = W_x u[t] + W_h h[t] + b
        i, f, o = sigmoid(pre_i), sigmoid(pre_f), sigmoid(pre_o);  g = tanh(pre_g)
        c[t+1] = f * c[t] + i * g + sqrt(alpha) sigma xi[t]
        h[t+1] = o * tanh(c[t+1])
        y[t]   = W_out h[t+1] + b_out

    The trajectory holds ``states = c`` (cell states), ``rates = h`` (what
    TCR penalises by default), both (T+1, B, H), and ``extra["gates"]``
    (T, B, 4H), the gate activations. ``backward``'s ``d_rates`` is the
    direct dL/dh, ``d_states`` the direct dL/dc.

    Parameter names: ``W_x`` (4H, I), ``W_h`` (4H, H), ``b`` (4H,),
    ``W_out`` (O, H), ``b_out`` (O,).

    The initial state ``x0`` given to :meth:`forward` is the concatenation
    ``[h0, c0]``, shape (B, 2H) (:meth:`initial_state` gives zeros).

    Parameters
    ----------
    n_units, n_inputs, n_outputs, dtype, trainable
        See :class:`~bioplastic.networks.base.Network`.
    dt, tau : float
        Not part of the LSTM dynamics; alpha = dt / tau only scales the
        private noise, which enters the cell state. Kept for uniformity.
    noise_std : float
        sigma of the cell noise (default 0: none).
    forget_bias : float
        Initial bias of the forget gate (default 1, Gers et al. 2000 /
        Jozefowicz et al. 2015); the other biases start at 0.

    Notes
    -----
    W_x and W_h are initialised U(-1/sqrt(H), 1/sqrt(H)) (the PyTorch
    default), W_out ~ N(0, 1/H).

    Examples
    --------
    >>> import numpy as np
    >>> net = LSTM(16, 3, 3)
    >>> params = net.init_params(np.random.default_rng(0))
    >>> traj = net.forward(params, np.zeros((10, 4, 3)))
    >>> traj.rates.shape, traj.extra["gates"].shape
    ((11, 4, 16), (10, 4, 64))
    """

    kind = "lstm"
    param_names = ("W_x", "W_h", "b", "W_out", "b_out")
    default_trainable = param_names
    forward_checks_finite = True  # every parameter reaches the packed panels

    def __init__(self, n_units, n_inputs, n_outputs, *, forget_bias=1.0, dt=1.0, tau=10.0,
                 noise_std=0.0, dtype=None, trainable=None):
        self.forget_bias = forget_bias
        super().__init__(n_units, n_inputs, n_outputs, dt=dt, tau=tau, noise_std=noise_std,
                         dtype=dtype, trainable=trainable)
        self._validate()

    def _validate(self):
        self.forget_bias = finite_number("forget_bias", self.forget_bias)

    def param_shapes(self):
        H, I, O = self.n_units, self.n_inputs, self.n_outputs
        return {"W_x": (4 * H, I), "W_h": (4 * H, H), "b": (4 * H,), "W_out": (O, H), "b_out": (O,)}

    def _init_arrays(self, rng):
        H, I, O = self.n_units, self.n_inputs, self.n_outputs
        k = 1.0 / np.sqrt(H)
        b = np.zeros(4 * H)
        b[H:2 * H] = self.forget_bias
        arrays = {
            "W_x": rng.uniform(-k, k, (4 * H, I)),
            "W_h": rng.uniform(-k, k, (4 * H, H)),
            "b": b,
            "W_out": rng.standard_normal((O, H)) / np.sqrt(H),
            "b_out": np.zeros(O),
        }
        return arrays, {}

    # -- dynamics ---------------------------------------------------------
    def initial_state(self, batch_size: int) -> np.ndarray:
        """Default initial state ``[h0, c0]``: zeros (B, 2H)."""
        return np.zeros((batch_size, 2 * self.n_units), dtype=self.dtype)

    def forward(self, params, inputs, *, noise=None, x0=None) -> Trajectory:
        """Run the LSTM on ``inputs`` (T, B, I).

        Parameters
        ----------
        params : Params or dict of arrays
        inputs : (T, B, I) array
        noise : (T, B, H) standard-normal cell noise or None (no noise)
        x0 : (B, 2H) initial ``[h0, c0]`` or None (zeros)
        """
        params = self.check_params(params, finite=not self.forward_checks_finite)
        inputs = self.check_inputs(inputs)
        T, B, _ = inputs.shape
        if noise is not None:
            noise = as_array("noise", noise, self.dtype, shape=(T, B, self.n_units),
                             what="(T, B, n_units) of the inputs")
        x0 = self.initial_state(B) if x0 is None else as_array(
            "x0 (LSTM: [h0, c0])", x0, self.dtype, shape=(B, 2 * self.n_units), what="(B, 2 n_units) of the inputs")
        return self._forward(params, inputs, noise, x0)

    def _forward(self, params, inputs, noise, x0):
        T, B, _ = inputs.shape
        H = self.n_units
        hs = np.empty((T + 1, B, H), dtype=self.dtype)
        cs = np.empty_like(hs)
        gates = np.empty((T, B, 4 * H), dtype=self.dtype)
        ys = np.empty((T, B, self.n_outputs), dtype=self.dtype)
        scale = self.dtype.type(np.sqrt(self.alpha) * self.noise_std)
        P, non_finite = pack_forward(params["W_h"], params["W_x"], params["b"], params["W_out"], params["b_out"],
                                     gate_scales(H, self.dtype))
        if non_finite:
            self.raise_non_finite(params)
        run_blocks(lstm_forward_rows_, B, n_blocks(B, T, 4 * H * H),
                   np.ascontiguousarray(x0[:, :H]), np.ascontiguousarray(x0[:, H:]), np.ascontiguousarray(inputs),
                   P, empty3(self.dtype) if noise is None else noise, scale,
                   params["W_out"], params["b_out"], hs, cs, gates, ys)
        return Trajectory(cs, hs, ys, {"gates": gates})

    def trajectory_shapes(self, T, B):
        """Cell states, hidden states, outputs and the four gates of every step."""
        return {**super().trajectory_shapes(T, B), "gates": (T, B, 4 * self.n_units)}

    def _backward(self, params, traj, inputs, d_outputs, d_rates, d_states):
        hs, cs = traj.rates, traj.states
        T1, B, H = hs.shape
        I, O = self.n_inputs, self.n_outputs
        blocks = n_blocks(B, T1 - 1, 4 * H * H)
        acc = block_accumulators(blocks, {"W_h": (4 * H, H), "V": (I + 1, 4 * H), "W_out": (O, H), "b_out": (O,)},
                                 self.dtype)
        run_blocks(lstm_backward_rows_, B, blocks,
                   hs, cs, traj.extra["gates"], drive_inputs(inputs, self.dtype),
                   adjoint_panels(params["W_h"], params["W_out"], 1.0),
                   empty3(self.dtype) if d_rates is None else d_rates,
                   empty3(self.dtype) if d_states is None else d_states, d_outputs,
                   acc["W_h"], acc["V"], acc["W_out"], acc["b_out"])
        total = sum_blocks(acc)
        return {
            "W_x": np.ascontiguousarray(total["V"][:I].T),
            "W_h": total["W_h"],
            "b": total["V"][I],
            "W_out": total["W_out"],
            "b_out": total["b_out"],
        }
