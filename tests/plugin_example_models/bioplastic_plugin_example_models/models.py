"""A rate network in plain NumPy, registered as a bioplastic model plugin."""
import numpy as np

from bioplastic.networks import Network, Trajectory
from bioplastic.validation import positive


class NumpyRNN(Network):
    """Leaky tanh RNN in plain NumPy (no numba): a template for a new model.

    With ``a = dt / tau``::

        x[t+1] = (1 - a) x[t] + a (W r[t] + W_in u[t] + b) + sqrt(a) sigma xi[t]
        r[t] = tanh(x[t]),    y[t] = W_out r[t+1] + b_out

    The backward pass is the adjoint of these equations, written by hand
    and checked against finite differences.

    Parameters
    ----------
    n_units, n_inputs, n_outputs, dt, tau, noise_std, dtype, trainable
        See :class:`bioplastic.networks.Network`.
    g : float > 0, default 1.0
        Gain of the initial recurrent weights, ``W_ij ~ N(0, g^2 / N)``.
    """

    kind = "numpy_rnn"                 # registry name = entry-point name
    param_names = ("W", "W_in", "b", "W_out", "b_out")
    default_trainable = param_names

    def __init__(self, n_units, n_inputs, n_outputs, *, g=1.0, dt=1.0, tau=10.0, noise_std=0.0,
                 dtype=None, trainable=None):
        self.g = positive("g", g)      # a ConfigError naming g for a bad value
        super().__init__(n_units, n_inputs, n_outputs, dt=dt, tau=tau, noise_std=noise_std,
                         dtype=dtype, trainable=trainable)

    def param_shapes(self):
        N, I, O = self.n_units, self.n_inputs, self.n_outputs
        return {"W": (N, N), "W_in": (N, I), "b": (N,), "W_out": (O, N), "b_out": (O,)}

    def _init_arrays(self, rng):
        N, I, O = self.n_units, self.n_inputs, self.n_outputs
        arrays = {"W": rng.standard_normal((N, N)) * self.g / np.sqrt(N),
                  "W_in": rng.standard_normal((N, I)),
                  "b": np.zeros(N),
                  "W_out": rng.standard_normal((O, N)) / np.sqrt(N),
                  "b_out": np.zeros(O)}
        return arrays, {}              # no constraints (frozen entries, Dale signs...)

    def _forward(self, params, inputs, noise, x0):
        a = self.alpha
        T, B, _ = inputs.shape
        x = np.empty((T + 1, B, self.n_units), dtype=self.dtype)
        x[0] = x0
        drive = inputs @ params["W_in"].T + params["b"]           # (T, B, N)
        for t in range(T):
            x[t + 1] = (1 - a) * x[t] + a * (np.tanh(x[t]) @ params["W"].T + drive[t])
            if noise is not None:
                x[t + 1] += a ** 0.5 * self.noise_std * noise[t]
        r = np.tanh(x)
        return Trajectory(states=x, rates=r, outputs=r[1:] @ params["W_out"].T + params["b_out"])

    def _backward(self, params, traj, inputs, d_outputs, d_rates, d_states):
        a = self.alpha
        r, T = traj.rates, inputs.shape[0]
        dphi = 1 - r * r                                           # tanh'(x[t])
        g_r = np.zeros_like(r)                                     # direct dL/dr[t]: readout, TCR
        g_r[1:] = d_outputs @ params["W_out"]
        if d_rates is not None:
            g_r += d_rates
        g_x = g_r * dphi                                           # direct dL/dx[t]
        if d_states is not None:
            g_x += d_states
        grads = {"W_out": np.einsum("tbo,tbn->on", d_outputs, r[1:]), "b_out": d_outputs.sum(axis=(0, 1)),
                 "W": np.zeros_like(params["W"]), "W_in": np.zeros_like(params["W_in"]),
                 "b": np.zeros_like(params["b"])}
        lam = g_x[T]                                               # total dL/dx[T]
        for t in range(T - 1, -1, -1):                             # lam: total dL/dx[t+1]
            d_drive = a * lam                                      # dL/d(W r[t] + W_in u[t] + b)
            grads["W"] += d_drive.T @ r[t]
            grads["W_in"] += d_drive.T @ inputs[t]
            grads["b"] += d_drive.sum(axis=0)
            lam = (1 - a) * lam + (d_drive @ params["W"]) * dphi[t] + g_x[t]
        return grads

    def autonomous_map(self, params, u):
        """The one-step map ``x -> F(x)`` at constant input ``u`` (I,), for
        fixed-point analysis: the LFRNN's map with tanh."""
        from bioplastic.analysis.maps import LeakyMap

        F = LeakyMap(params["W"], params["W_in"] @ u + params["b"], self.alpha, "tanh")
        F.kind = self.kind
        return F
