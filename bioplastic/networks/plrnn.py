"""Piecewise-linear RNN (PLRNN), SPEC 1 (Durstewitz 2017; Schmidt et al. 2021).

    z[t+1] = A z[t] + W relu(z[t]) + C u[t] + h + sqrt(alpha) sigma xi[t]
    y[t]   = W_out z[t+1] + b_out        (or W_out relu(z[t+1]) + b_out)

A is diagonal (stored as a vector), W has a zero diagonal (a connectivity
constraint). A is the leak, so dt and tau do not enter the deterministic map;
alpha = dt / tau only scales the private noise.
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigError
from ..kernels.lfrnn import drive_inputs
from ..machinery.panels import forward_panels
from ..kernels.plrnn import plrnn_backward_rows_, plrnn_forward_rows_
from ..machinery.threads import n_blocks, run_blocks
from ..validation import finite_number
from .base import Constraint, Network, Trajectory, block_accumulators, empty3, sum_blocks

READOUTS = ("z", "relu")


class PLRNN(Network):
    """Piecewise-linear RNN with diagonal auto-regression and ReLU coupling.

    Model, for t = 0..T-1 (``A`` diagonal, ``diag(W) = 0``)::

        z[t+1] = A z[t] + W relu(z[t]) + C u[t] + h + sqrt(alpha) sigma xi[t]
        y[t]   = W_out a[t+1] + b_out,   a = z or relu(z) (``readout_from``)

    The trajectory holds ``states = z`` and ``rates = relu(z)`` (what TCR
    penalises by default), both (T+1, B, N) with index 0 the initial state.
    Parameter names: ``A`` (N,), ``W`` (N, N), ``C`` (N, I), ``h`` (N,),
    ``W_out`` (O, N), ``b_out`` (O,) (the readout is called ``W_out``,
    ``b_out`` in every model, "B" in the PLRNN papers).

    Parameters
    ----------
    n_units, n_inputs, n_outputs, dt, tau, noise_std, dtype, trainable
        See :class:`~bioplastic.networks.base.Network`. ``dt`` and ``tau``
        only set alpha = dt / tau, the scale of the noise.
    g : float
        Std scale of the initial off-diagonal weights, W_ij ~ N(0, g^2/N).
        The default 0.1 keeps the initial map bounded together with
        A ~ U(0.5, 0.9): with ReLU coupling, g >= 0.3 usually diverges
        (a sub-network active in the positive orthant has gain > 1), so
        recurrent structure is left for learning to build.
    readout_from : {"z", "relu"}
        Read the output from the states z (default, ``y = B z`` of the
        papers) or from relu(z).
    input_scale : float
        Input weights C ~ N(0, input_scale^2 / I).

    Examples
    --------
    >>> import numpy as np
    >>> net = PLRNN(20, 3, 3)
    >>> params = net.init_params(np.random.default_rng(0))
    >>> traj = net.forward(params, np.zeros((10, 4, 3)))
    >>> traj.states.shape, traj.outputs.shape
    ((11, 4, 20), (10, 4, 3))
    >>> bool(np.all(np.diag(params["W"]) == 0))
    True
    """

    kind = "plrnn"
    param_names = ("A", "W", "C", "h", "W_out", "b_out")
    default_trainable = param_names

    def __init__(self, n_units, n_inputs, n_outputs, *, g=0.1, readout_from="z", input_scale=1.0,
                 dt=1.0, tau=10.0, noise_std=0.0, dtype=None, trainable=None):
        self.g = g
        self.readout_from = readout_from
        self.input_scale = input_scale
        super().__init__(n_units, n_inputs, n_outputs, dt=dt, tau=tau, noise_std=noise_std,
                         dtype=dtype, trainable=trainable)
        self._validate()

    def _validate(self):
        if self.readout_from not in READOUTS:
            raise ConfigError(f"readout_from must be one of {READOUTS}, got {self.readout_from!r}")
        self.g = finite_number("g", self.g, minimum=0)
        self.input_scale = finite_number("input_scale", self.input_scale, minimum=0)

    def param_shapes(self):
        N, I, O = self.n_units, self.n_inputs, self.n_outputs
        return {"A": (N,), "W": (N, N), "C": (N, I), "h": (N,), "W_out": (O, N), "b_out": (O,)}

    def _init_arrays(self, rng):
        N, I, O = self.n_units, self.n_inputs, self.n_outputs
        off_diagonal = ~np.eye(N, dtype=bool)
        arrays = {
            "A": rng.uniform(0.5, 0.9, N),
            "W": rng.standard_normal((N, N)) * self.g / np.sqrt(N) * off_diagonal,
            "C": rng.standard_normal((N, I)) * self.input_scale / np.sqrt(I),
            "h": np.zeros(N),
            "W_out": rng.standard_normal((O, N)) / np.sqrt(N),
            "b_out": np.zeros(O),
        }
        return arrays, {"W": Constraint(connectivity=off_diagonal)}

    # -- dynamics ---------------------------------------------------------
    def _forward(self, params, inputs, noise, x0):
        T, B, _ = inputs.shape
        N = self.n_units
        zs = np.empty((T + 1, B, N), dtype=self.dtype)
        rs = np.empty_like(zs)
        ys = np.empty((T, B, self.n_outputs), dtype=self.dtype)
        scale = self.dtype.type(np.sqrt(self.alpha) * self.noise_std)
        read_z = self.readout_from == "z"
        W_out, b_out = params["W_out"], params["b_out"]
        # a readout from z cannot ride on the product of r: pack no output columns then
        P = forward_panels(params["W"], params["C"], params["h"], W_out[:0] if read_z else W_out,
                           b_out[:0] if read_z else b_out, 1.0)
        run_blocks(plrnn_forward_rows_, B, n_blocks(B, T, N * N),
                   x0, np.ascontiguousarray(inputs), P, empty3(self.dtype) if noise is None else noise, scale,
                   params["A"], read_z, W_out, b_out, zs, rs, ys)
        return Trajectory(zs, rs, ys)

    def _backward(self, params, traj, inputs, d_outputs, d_rates, d_states):
        zs, rs = traj.states, traj.rates
        T1, B, N = zs.shape
        I, O = self.n_inputs, self.n_outputs
        blocks = n_blocks(B, T1 - 1, N * N)
        acc = block_accumulators(blocks, {"A": (N,), "W": (N, N), "V": (I + 1, N), "W_out": (O, N),
                                          "b_out": (O,)}, self.dtype)
        run_blocks(plrnn_backward_rows_, B, blocks,
                   zs, rs, drive_inputs(inputs, self.dtype), params["A"], np.ascontiguousarray(params["W"]),
                   self.readout_from == "z",
                   empty3(self.dtype) if d_rates is None else d_rates,
                   empty3(self.dtype) if d_states is None else d_states, d_outputs, params["W_out"],
                   acc["A"], acc["W"], acc["V"], acc["W_out"], acc["b_out"])
        total = sum_blocks(acc)
        return {
            "A": total["A"],
            "W": total["W"],
            "C": np.ascontiguousarray(total["V"][:I].T),
            "h": total["V"][I],
            "W_out": total["W_out"],
            "b_out": total["b_out"],
        }
