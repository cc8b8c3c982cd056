"""Rank-one RNN, SPEC 1 (Mastrogiuseppe & Ostojic 2018).

An LFRNN whose recurrent matrix is a fixed random bulk plus a trained
rank-one structure::

    W = g chi + m n^T / N,    chi_ij ~ N(0, 1/N) fixed,   m, n trained
    x[t+1] = (1 - alpha) x[t] + alpha (W r[t] + W_in u[t] + b) + sqrt(alpha) sigma xi[t]
    r = phi(x),   y[t] = W_out r[t+1] + b_out
"""
from __future__ import annotations

import numpy as np

from .base import Network
from .lfrnn import LFRNN


class RankOneRNN(LFRNN):
    """Leaky rate RNN with connectivity ``W = g chi + m n^T / N``.

    Runs on the LFRNN kernels (see :class:`~bioplastic.networks.lfrnn.LFRNN`
    for the dynamics). Parameter names: ``chi`` (N, N), fixed random bulk,
    not trainable by default; ``m`` (N,), ``n`` (N,), the rank-one structure;
    ``W_in`` (N, I), ``b`` (N,), ``W_out`` (O, N), ``b_out`` (O,).

    Gradients follow from the effective-weight gradient dL/dW by the chain
    rule: ``dL/dm = dL/dW n / N``, ``dL/dn = dL/dW^T m / N`` and
    ``dL/dchi = g dL/dW`` (exact, so ``chi`` can be put in ``trainable``;
    optimisers leave it alone by default).

    Parameters
    ----------
    n_units, n_inputs, n_outputs, dt, tau, noise_std, dtype, trainable
        See :class:`~bioplastic.networks.base.Network`.
    g : float
        Strength of the random bulk; g > 1 is chaotic without structure.
        Default 0.8: the structured (rank-one) part shapes the dynamics.
    nonlinearity : {"tanh", "relu", "softplus", "sigmoid"}
    input_scale : float
        Std of the input weights.

    Examples
    --------
    >>> import numpy as np
    >>> net = RankOneRNN(50, 2, 1)
    >>> params = net.init_params(np.random.default_rng(0))
    >>> W = net.recurrent_weights(params)
    >>> int(np.linalg.matrix_rank(W - net.g * params["chi"]))
    1
    """

    kind = "rank1"
    param_names = ("chi", "m", "n", "W_in", "b", "W_out", "b_out")
    default_trainable = ("m", "n", "W_in", "b", "W_out", "b_out")

    def __init__(self, n_units, n_inputs, n_outputs, *, g=0.8, nonlinearity="tanh", input_scale=1.0,
                 dt=1.0, tau=10.0, noise_std=0.0, dtype=None, trainable=None):
        self.g = g
        self.nonlinearity = nonlinearity
        self.input_scale = input_scale
        Network.__init__(self, n_units, n_inputs, n_outputs, dt=dt, tau=tau, noise_std=noise_std,
                         dtype=dtype, trainable=trainable)
        self._validate()

    def _validate(self):
        self._validate_gain_and_nonlinearity()

    def param_shapes(self):
        N, I, O = self.n_units, self.n_inputs, self.n_outputs
        return {"chi": (N, N), "m": (N,), "n": (N,), "W_in": (N, I), "b": (N,), "W_out": (O, N),
                "b_out": (O,)}

    def _init_arrays(self, rng):
        N, I, O = self.n_units, self.n_inputs, self.n_outputs
        arrays = {
            "chi": rng.standard_normal((N, N)) / np.sqrt(N),
            "m": rng.standard_normal(N),
            "n": rng.standard_normal(N),
            "W_in": rng.standard_normal((N, I)) * self.input_scale,
            "b": np.zeros(N),
            "W_out": rng.standard_normal((O, N)) / np.sqrt(N),
            "b_out": np.zeros(O),
        }
        return arrays, {}

    def recurrent_weights(self, params) -> np.ndarray:
        """Effective recurrent matrix ``g chi + m n^T / N``."""
        return self.g * params["chi"] + np.outer(params["m"], params["n"]) / self.n_units

    def _finish_grads(self, params, grads):
        dW = grads.pop("W")
        N = self.n_units
        out = {
            "chi": self.g * dW,
            "m": dW @ params["n"] / N,
            "n": dW.T @ params["m"] / N,
        }
        out.update(grads)
        return {k: out[k] for k in self.param_names}
