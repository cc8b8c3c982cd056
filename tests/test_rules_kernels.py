"""Local-rule kernels against slow NumPy references, and e-prop against BPTT.

The references write SPEC 3/4's equations out one trial and one step at a
time, in float64, without calling any kernel.
"""
import numpy as np
import pytest

import bioplastic as bp
from bioplastic.errors import ShapeError
from bioplastic.kernels.activations import PHI_CODES
from bioplastic.machinery import threads
from bioplastic.kernels.eprop import CHUNK, eprop_leaky
from bioplastic.kernels.node_perturbation import node_perturbation_sums
from bioplastic.kernels.stp import leaky_stp_forward
from bioplastic.rules import Context, EProp
from bioplastic.rules.models import simulate
from bioplastic.training.objective import loss_and_grads

PHI = {"tanh": (np.tanh, lambda x: 1 - np.tanh(x) ** 2), "relu": (lambda x: np.maximum(x, 0), lambda x: (x > 0) * 1.0)}


def ref_stp_forward(x0, drive, noise, W, leak, gain, phi, eta_s, decay_s, zero_diag):
    f = PHI[phi][0]
    T, B, N = drive.shape
    xs, rs = np.zeros((T + 1, B, N)), np.zeros((T + 1, B, N))
    S_end = np.zeros((B, N, N))
    for b in range(B):
        S = np.zeros((N, N))
        x = x0[b].copy()
        xs[0, b], rs[0, b] = x, f(x)
        for t in range(T):
            r = f(x)
            xn = leak * x + gain * ((W + S) @ r + drive[t, b]) + noise[t, b]
            S = decay_s * S - eta_s * np.outer(xn - x, r)
            if zero_diag:
                np.fill_diagonal(S, 0.0)
            x = xn
            xs[t + 1, b], rs[t + 1, b] = x, f(x)
        S_end[b] = S
    return xs, rs, S_end


def ref_eprop(x0, u, ystar, cmask, noise, W_in, bias, W, W_out, b_out, F, leak, gain, phi, read_states,
              eta_s, decay_s, zero_diag):
    """Per-synapse traces for every unit (no presynaptic shortcut), one trial at a time."""
    f, df = PHI[phi]
    T, B, _ = u.shape
    N, I = W_in.shape
    g = {k: 0.0 for k in ("W", "W_in", "b", "W_out", "b_out", "leak")}
    loss = 0.0
    ys = np.zeros(ystar.shape)
    for b in range(B):
        x = x0[b].copy()
        S = np.zeros((N, N))
        E, Eu, Eb, Ea = np.zeros((N, N)), np.zeros((N, I)), np.zeros(N), np.zeros(N)
        for t in range(T):
            r = f(x)
            xn = leak * x + gain * ((W + S) @ r + W_in @ u[t, b] + bias) + noise[t, b]
            E = leak[:, None] * E + gain * r[None, :]
            Eu = leak[:, None] * Eu + gain * u[t, b][None, :]
            Eb = leak * Eb + gain
            Ea = leak * Ea + x
            a = xn if read_states else f(xn)
            y = W_out @ a + b_out
            ys[t, b] = y
            e = cmask[t, b] * (y - ystar[t, b])
            loss += 0.5 * np.sum(e * (y - ystar[t, b]))
            g["W_out"] = g["W_out"] + np.outer(e, a)
            g["b_out"] = g["b_out"] + e
            L = (F.T @ e) * (1.0 if read_states else df(xn))
            g["W"] = g["W"] + L[:, None] * E
            g["W_in"] = g["W_in"] + L[:, None] * Eu
            g["b"] = g["b"] + L * Eb
            g["leak"] = g["leak"] + L * Ea
            S = decay_s * S - eta_s * np.outer(xn - x, r)
            if zero_diag:
                np.fill_diagonal(S, 0.0)
            x = xn
    return g, ys, loss


@pytest.mark.parametrize("phi, per_unit_leak, zero_diag", [("tanh", False, False), ("relu", True, True)])
def test_stp_forward_matches_reference(rng, phi, per_unit_leak, zero_diag):
    T, B, N = 9, 3, 5
    x0 = rng.standard_normal((B, N))
    drive = rng.standard_normal((T, B, N))
    noise = 0.1 * rng.standard_normal((T, B, N))
    W = rng.standard_normal((N, N)) / np.sqrt(N)
    leak = rng.uniform(0.5, 0.9, N) if per_unit_leak else np.full(N, 0.9)
    gain = 1.0 if per_unit_leak else 0.1
    xs, rs, S = leaky_stp_forward(x0, drive, noise, W, leak, gain, PHI_CODES[phi], eta_s=0.3, decay_s=0.95,
                                  zero_diag=zero_diag)
    rx, rr, rS = ref_stp_forward(x0, drive, noise, W, leak, gain, phi, 0.3, 0.95, zero_diag)
    np.testing.assert_allclose(xs, rx, atol=1e-12)
    np.testing.assert_allclose(rs, rr, atol=1e-12)
    np.testing.assert_allclose(S, rS, atol=1e-12)
    assert np.abs(S).max() > 1e-3  # the fast weights did something


@pytest.mark.parametrize("kind", ["lfrnn", "rank1", "plrnn"])
def test_simulate_without_stp_is_the_network_forward(rng, kind):
    net = bp.make_network(kind, 3, 2, n_units=6, noise_std=0.2)
    p = net.init_params(rng)
    u = rng.standard_normal((10, 4, 3))
    noise = net.draw_noise(rng, 10, 4)
    ref = net.forward(p, u, noise=noise)
    got = simulate(net, p, u, noise, current=np.zeros((10, 4, 6)))  # goes through the STP kernel
    np.testing.assert_allclose(got.states, ref.states, atol=1e-13)
    np.testing.assert_allclose(got.outputs, ref.outputs, atol=1e-13)
    # a perturbation of the current is a perturbation of the drive
    p_cur = 0.1 * rng.standard_normal((10, 4, 6))
    moved = simulate(net, p, u, noise, current=p_cur)
    assert np.abs(moved.states - ref.states).max() > 1e-3


@pytest.mark.parametrize("per_unit_leak, read_states, stp, T", [
    (False, False, False, 2 * CHUNK + 3),   # chunk flushes plus a remainder
    (False, False, True, 7),
    (True, True, True, 11),                  # per-synapse traces (PLRNN-like)
    (True, False, False, 5),
])
@pytest.mark.parametrize("blocks", [1, 3])
def test_eprop_kernel_matches_reference(rng, monkeypatch, per_unit_leak, read_states, stp, T, blocks):
    """Serial, and with the trials split into row blocks on threads."""
    monkeypatch.setattr(threads, "MIN_PARALLEL_WORK", 0)
    old_threads = threads.kernel_threads()
    threads.set_kernel_threads(blocks)
    B, N, I, O = 3, 5, 2, 2
    phi = "relu" if per_unit_leak else "tanh"
    x0 = 0.1 * rng.standard_normal((B, N))
    u = rng.standard_normal((T, B, I))
    ystar = rng.standard_normal((T, B, O))
    cmask = (rng.random((T, B, O)) < 0.7) * 0.05
    noise = 0.05 * rng.standard_normal((T, B, N))
    W_in, bias = rng.standard_normal((N, I)), 0.1 * rng.standard_normal(N)
    W = rng.standard_normal((N, N)) / np.sqrt(N)
    W_out, b_out = rng.standard_normal((O, N)), rng.standard_normal(O)
    F = rng.standard_normal((O, N))
    leak = rng.uniform(0.5, 0.9, N) if per_unit_leak else np.full(N, 0.9)
    gain = 1.0 if per_unit_leak else 0.1
    eta_s, decay_s = (0.2, 0.97) if stp else (0.0, 1.0)
    got = eprop_leaky(x0, u, ystar, cmask, noise, W_in, bias, W, W_out, b_out, F, leak, gain, PHI_CODES[phi],
                      read_states=read_states, leak_grad=True, eta_s=eta_s, decay_s=decay_s, stp=stp,
                      zero_diag=per_unit_leak)
    ref, ys, loss = ref_eprop(x0, u, ystar, cmask, noise, W_in, bias, W, W_out, b_out, F, leak, gain, phi,
                              read_states, eta_s, decay_s, per_unit_leak)
    threads.set_kernel_threads(old_threads)
    for k in ("W", "W_in", "b", "W_out", "b_out", "leak"):
        np.testing.assert_allclose(got[k], ref[k], atol=1e-12, err_msg=k)
    np.testing.assert_allclose(got["outputs"], ys, atol=1e-12)
    assert got["task_loss"] == pytest.approx(loss, rel=1e-12)


def test_eprop_kernel_rejects_bad_shapes(rng):
    B, N, I, O, T = 2, 4, 3, 2, 5
    args = [np.zeros((B, N)), np.zeros((T, B, I)), np.zeros((T, B, O)), np.zeros((T, B, O)), None,
            np.zeros((N, I)), np.zeros(N), np.zeros((N, N)), np.zeros((O, N)), np.zeros(O), np.zeros((O + 1, N)),
            0.9, 0.1, 0]
    with pytest.raises(ShapeError, match=r"feedback must have shape \(2, 4\)"):
        eprop_leaky(*args)


@pytest.mark.parametrize("T", [1, 3, 6, 9])
def test_node_perturbation_kernel_matches_einsum(rng, T):
    B, N, M, I = 4, 5, 3, 2
    xi, pre, pre_in, dpre = (rng.standard_normal(s) for s in ((T, B, N), (T, B, M), (T, B, I), (T, B, N)))
    mod = rng.standard_normal(B)
    s = node_perturbation_sums(xi, mod, pre=pre, pre_in=pre_in, dpre=dpre)
    np.testing.assert_allclose(s["pre"], np.einsum("b,tbi,tbj->ij", mod, xi, pre), atol=1e-12)
    np.testing.assert_allclose(s["pre_in"], np.einsum("b,tbi,tbj->ij", mod, xi, pre_in), atol=1e-12)
    np.testing.assert_allclose(s["bias"], np.einsum("b,tbi->i", mod, xi), atol=1e-12)
    np.testing.assert_allclose(s["diag"], np.einsum("b,tbi,tbi->i", mod, xi, dpre), atol=1e-12)


def test_node_perturbation_sums_do_not_depend_on_the_thread_count(rng, monkeypatch):
    from bioplastic.machinery import threads

    monkeypatch.setattr(threads, "MIN_PARALLEL_WORK", 0)
    xi, pre = rng.standard_normal((13, 6, 7)), rng.standard_normal((13, 6, 7))
    mod = rng.standard_normal(6)
    old = threads.kernel_threads()
    try:
        outs = []
        for n in (1, 2, 3):
            threads.set_kernel_threads(n)
            outs.append(node_perturbation_sums(xi, mod, pre=pre))
    finally:
        threads.set_kernel_threads(old)
    for s in outs[1:]:
        for k in ("pre", "bias"):
            np.testing.assert_array_equal(s[k], outs[0][k])


def test_node_perturbation_kernel_rejects_nonfinite_reward(rng):
    xi = rng.standard_normal((3, 2, 4))
    with pytest.raises(ShapeError, match="reward modulation .* non-finite"):
        node_perturbation_sums(xi, np.array([1.0, np.nan]), pre=xi)


def _eprop_vs_bptt(net, params, batch, noise):
    rule = EProp()
    targets = rule.check(net)
    u = rule.update(Context(net, params, batch, noise=noise).view(rule, targets), rule.init_state(net, params, None))
    ev = loss_and_grads(net, params, batch, noise=noise)
    return targets, u.grads, ev.grads


@pytest.mark.parametrize("kind, settings", [("lfrnn", {}), ("lfrnn", {"nonlinearity": "softplus"}),
                                            ("plrnn", {}), ("plrnn", {"readout_from": "relu"}),
                                            ("rank1", {"g": 0.0})])
def test_eprop_is_exact_bptt_without_recurrence(rng, kind, settings):
    """With zero recurrent weights nothing propagates through other units, so
    e-prop's truncation drops nothing: its update is the BPTT gradient for
    every parameter (SPEC 3, Murray 2019)."""
    task = bp.get_task("delayed_addition", n_steps=25)
    net = bp.make_network(kind, task.n_inputs, task.n_outputs, n_units=7, noise_std=0.1, **settings)
    p = net.init_params(rng)
    if kind == "rank1":
        p["m"][:] = 0.0  # W = g chi + m n^T / N = 0 with g = 0
    else:
        p["W"][:] = 0.0
    p["h" if kind == "plrnn" else "b"] = 0.1 * rng.standard_normal(7)  # exercise the bias path
    batch = task.sample(5, rng)
    noise = net.draw_noise(rng, batch.T, 5)
    targets, g_e, g_b = _eprop_vs_bptt(net, p, batch, noise)
    for k in targets:
        np.testing.assert_allclose(g_e[k], g_b[k], rtol=1e-9, atol=1e-13 * np.abs(g_b[k]).max(), err_msg=k)


def test_eprop_is_not_exact_with_recurrence(rng):
    """The test above can fail: with recurrent weights e-prop is an approximation."""
    task = bp.get_task("flipflop", n_steps=30)
    net = bp.make_network("lfrnn", 3, 3, n_units=10, g=1.5)
    p = net.init_params(rng)
    batch = task.sample(4, rng)
    _, g_e, g_b = _eprop_vs_bptt(net, p, batch, None)
    rel = np.linalg.norm(g_e["W"] - g_b["W"]) / np.linalg.norm(g_b["W"])
    cos = np.vdot(g_e["W"], g_b["W"]) / np.linalg.norm(g_e["W"]) / np.linalg.norm(g_b["W"])
    assert rel > 1e-3 and cos > 0.3  # different, but pointing the same way
    np.testing.assert_allclose(g_e["W_out"], g_b["W_out"], rtol=1e-10)  # the readout stays exact
