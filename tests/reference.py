"""Slow, obviously-correct NumPy references of the network models (and of the flip-flop sampler's scan).

Each function loops over time steps and trials and writes every equation of
SPEC 1 out for one trial's vectors, in float64, without calling any kernel.
They return ``(states, rates, outputs)`` (T+1, B, N), (T+1, B, N), (T, B, O);
the LSTM also returns its gates. ``forward(net, ...)`` dispatches on
``net.kind``; ``REFERENCES`` lists the kinds covered, so a registry-wide test
can demand a reference for every registered model.
"""
from __future__ import annotations

import numpy as np

PHI = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "softplus": lambda x: np.logaddexp(0.0, x),
    "sigmoid": lambda x: 1.0 / (1.0 + np.exp(-x)),
}


def _f64(params):
    return {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}


def _noise(noise, shape):
    return np.zeros(shape) if noise is None else np.asarray(noise, dtype=np.float64)


def lfrnn(params, inputs, noise, x0, *, alpha, sigma, phi, W=None):
    """x[t+1] = (1-a) x[t] + a (W phi(x[t]) + W_in u[t] + b) + sqrt(a) sigma xi[t]."""
    p = _f64(params)
    W = p["W"] if W is None else np.asarray(W, dtype=np.float64)
    u = np.asarray(inputs, dtype=np.float64)
    T, B, _ = u.shape
    N = W.shape[0]
    xi = _noise(noise, (T, B, N))
    f = PHI[phi]
    x = np.zeros((T + 1, B, N))
    r = np.zeros((T + 1, B, N))
    y = np.zeros((T, B, p["W_out"].shape[0]))
    for b in range(B):
        x[0, b] = x0[b]
        r[0, b] = f(x[0, b])
        for t in range(T):
            x[t + 1, b] = ((1 - alpha) * x[t, b] + alpha * (W @ r[t, b] + p["W_in"] @ u[t, b] + p["b"])
                           + np.sqrt(alpha) * sigma * xi[t, b])
            r[t + 1, b] = f(x[t + 1, b])
            y[t, b] = p["W_out"] @ r[t + 1, b] + p["b_out"]
    return x, r, y


def rank1(params, inputs, noise, x0, *, g, alpha, sigma, phi):
    """LFRNN with W = g chi + m n^T / N."""
    p = _f64(params)
    N = p["m"].shape[0]
    W = g * p["chi"] + np.outer(p["m"], p["n"]) / N
    return lfrnn(params, inputs, noise, x0, alpha=alpha, sigma=sigma, phi=phi, W=W)


def plrnn(params, inputs, noise, x0, *, alpha, sigma, readout_from):
    """z[t+1] = diag(A) z[t] + W relu(z[t]) + C u[t] + h + sqrt(a) sigma xi[t]."""
    p = _f64(params)
    u = np.asarray(inputs, dtype=np.float64)
    T, B, _ = u.shape
    N = p["A"].shape[0]
    xi = _noise(noise, (T, B, N))
    A = np.diag(p["A"])
    z = np.zeros((T + 1, B, N))
    r = np.zeros((T + 1, B, N))
    y = np.zeros((T, B, p["W_out"].shape[0]))
    for b in range(B):
        z[0, b] = x0[b]
        r[0, b] = np.maximum(z[0, b], 0.0)
        for t in range(T):
            z[t + 1, b] = (A @ z[t, b] + p["W"] @ r[t, b] + p["C"] @ u[t, b] + p["h"]
                           + np.sqrt(alpha) * sigma * xi[t, b])
            r[t + 1, b] = np.maximum(z[t + 1, b], 0.0)
            read = z[t + 1, b] if readout_from == "z" else r[t + 1, b]
            y[t, b] = p["W_out"] @ read + p["b_out"]
    return z, r, y


def lstm(params, inputs, noise, x0, *, alpha, sigma):
    """Standard LSTM cell, gates [i, f, g, o], cell noise sqrt(a) sigma xi.

    Returns (c, h, outputs, gates) with x0 = [h0, c0].
    """
    p = _f64(params)
    u = np.asarray(inputs, dtype=np.float64)
    T, B, _ = u.shape
    H = p["W_h"].shape[1]
    xi = _noise(noise, (T, B, H))

    def sigmoid(v):
        return 1.0 / (1.0 + np.exp(-v))

    h = np.zeros((T + 1, B, H))
    c = np.zeros((T + 1, B, H))
    gates = np.zeros((T, B, 4 * H))
    y = np.zeros((T, B, p["W_out"].shape[0]))
    for b in range(B):
        h[0, b] = x0[b, :H]
        c[0, b] = x0[b, H:]
        for t in range(T):
            pre = p["W_x"] @ u[t, b] + p["W_h"] @ h[t, b] + p["b"]
            i = sigmoid(pre[:H])
            f = sigmoid(pre[H:2 * H])
            g = np.tanh(pre[2 * H:3 * H])
            o = sigmoid(pre[3 * H:])
            c[t + 1, b] = f * c[t, b] + i * g + np.sqrt(alpha) * sigma * xi[t, b]
            h[t + 1, b] = o * np.tanh(c[t + 1, b])
            gates[t, b] = np.concatenate([i, f, g, o])
            y[t, b] = p["W_out"] @ h[t + 1, b] + p["b_out"]
    return c, h, y, gates


def forward(net, params, inputs, noise=None, x0=None):
    """Reference (states, rates, outputs) of ``net`` (dispatch on ``net.kind``)."""
    B = np.shape(inputs)[1]
    x0 = np.zeros(net.initial_state(B).shape) if x0 is None else np.asarray(x0, dtype=np.float64)
    common = dict(alpha=net.dt / net.tau, sigma=net.noise_std)
    if net.kind == "lfrnn":
        return lfrnn(params, inputs, noise, x0, phi=net.nonlinearity, **common)
    if net.kind == "rank1":
        return rank1(params, inputs, noise, x0, g=net.g, phi=net.nonlinearity, **common)
    if net.kind == "plrnn":
        return plrnn(params, inputs, noise, x0, readout_from=net.readout_from, **common)
    if net.kind == "lstm":
        return lstm(params, inputs, noise, x0, **common)[:3]
    raise KeyError(f"no NumPy reference for model {net.kind!r}; add one to tests/reference.py")


REFERENCES = ("lfrnn", "lstm", "plrnn", "rank1")


def flipflop_scan(draws, signs, min_gap, pulse_steps, settle_steps):
    """NumPy reference of :func:`bioplastic.tasks.scan.flipflop_scan_` (the sampler's former code)."""
    T = draws.shape[0]
    onsets = np.zeros_like(draws)
    since = np.full(draws.shape[1:], min_gap)
    for t in range(T):
        onsets[t] = draws[t] & (since >= min_gap)
        since = np.where(onsets[t], 1, since + 1)
    pulses = np.where(onsets, signs, 0.0)
    inputs = np.zeros(draws.shape)
    for k in range(pulse_steps):
        inputs[k:] += pulses[: T - k]
    targets = np.zeros(draws.shape)
    level = np.zeros(draws.shape[1:])
    for t in range(T):
        level = np.where(onsets[t], signs[t], level)
        targets[t] = level
    settling = np.zeros(draws.shape, dtype=bool)
    for k in range(settle_steps):
        settling[k:] |= onsets[: T - k]
    return onsets, inputs, targets, settling
