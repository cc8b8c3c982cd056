"""TCR as short-term plasticity: the STP identity of SPEC 4, and the STP run.

Identity: for small eta_s and tau_s -> inf, the fast weights a trial
accumulates, summed over the batch, equal

    sum_b S_b[T] = -(eta_s / (2 gain)) dF/dW,   F(W) = sum_{t,b,i} (x_i[t+1](W; x[t]) - x_i[t])^2

where x_i[t+1](W; x[t]) is one Euler step from the trajectory's state x[t]
(held fixed): the truncated, one-step-local TCR sum on states. In terms of
the TCR loss on states (mean over t, b, i, n = N T B terms) the factor is
eta_s n / (2 gain); gain = alpha = dt / tau for the LFRNN, 1 for the PLRNN.
F's gradient is taken by central finite differences of the network's own
forward pass, independent of the STP kernel.
"""
import numpy as np
import pytest

import bioplastic as bp
from bioplastic.rules import Context
from bioplastic.rules.models import leaky_form, simulate


def truncated_tcr_sum(net, params, W, traj, inputs):
    """F(W): one step from every (fixed) state of ``traj`` with recurrent weights W."""
    T1, B, N = traj.states.shape
    T = T1 - 1
    p = params.copy()
    p["W"] = W
    x0 = traj.states[:-1].reshape(T * B, N)
    u = inputs.reshape(1, T * B, -1)
    x1 = net.forward(p, u, x0=x0).states[1]
    return float(np.sum((x1 - x0) ** 2))


def fd_gradient(f, W, h=1e-6):
    g = np.zeros_like(W)
    for idx in np.ndindex(W.shape):
        Wp, Wm = W.copy(), W.copy()
        Wp[idx] += h
        Wm[idx] -= h
        g[idx] = (f(Wp) - f(Wm)) / (2 * h)
    return g


def accumulated_S(net, params, inputs, eta_s, tau_s):
    stp = (eta_s, 1.0 if np.isinf(tau_s) else 1.0 - net.dt / tau_s)
    return simulate(net, params, inputs, stp=stp).extra["S_end"].sum(axis=0)


@pytest.fixture(params=["lfrnn", "plrnn"])
def setup(request, rng):
    kind = request.param
    task = bp.get_task("flipflop", n_steps=25)
    net = bp.make_network(kind, 3, 3, n_units=6, **({"g": 1.5} if kind == "lfrnn" else {"g": 0.3}))
    params = net.init_params(rng)
    inputs = task.sample(3, rng).inputs
    traj = net.forward(params, inputs)
    W = params["W"]
    grad = fd_gradient(lambda w: truncated_tcr_sum(net, params, w, traj, inputs), W)
    gain = leaky_form(net, params).gain
    return net, params, inputs, grad, gain


def test_stp_accumulates_the_truncated_tcr_gradient(setup):
    net, params, inputs, grad, gain = setup
    eta_s = 1e-5
    S = accumulated_S(net, params, inputs, eta_s, np.inf)
    expected = -(eta_s / (2 * gain)) * grad
    if net.kind == "plrnn":
        np.fill_diagonal(expected, 0.0)  # the PLRNN's S keeps W's zero diagonal
    rel = np.linalg.norm(S - expected) / np.linalg.norm(expected)
    assert rel < 1e-3, rel
    # the increment opposes change: moving W along S lowers the truncated TCR sum
    assert np.vdot(S, grad) < 0


def test_identity_needs_small_eta_and_long_tau(setup):
    """The identity is a limit: a decaying S, or an S strong enough to change
    the dynamics, departs from it (so the test above can fail)."""
    net, params, inputs, grad, gain = setup
    diag = net.kind == "plrnn"

    def rel_err(eta_s, tau_s):
        S = accumulated_S(net, params, inputs, eta_s, tau_s)
        expected = -(eta_s / (2 * gain)) * grad
        if diag:
            np.fill_diagonal(expected, 0.0)
        return np.linalg.norm(S - expected) / np.linalg.norm(expected)

    small = rel_err(1e-5, np.inf)
    assert rel_err(1e-5, 5.0) > 20 * small           # fast decay forgets early increments
    assert rel_err(0.05 * gain, np.inf) > 20 * small  # strong STP changes the trajectory it learns from


def test_stp_opposes_activity_change(rng):
    """Running on W + S lowers the mean squared change of the rates (the TCR measure)."""
    task = bp.get_task("flipflop", n_steps=60)
    net = bp.make_network("lfrnn", 3, 3, n_units=32, g=2.0)
    params = net.init_params(rng)
    batch = task.sample(8, rng)
    plain = Context(net, params, batch).activity()
    with_stp = Context(net, params, batch, stp=(0.05, 100.0)).activity()
    assert with_stp < 0.9 * plain


@pytest.mark.parametrize("kind", ["lfrnn", "rank1"])
def test_perturbed_lfrnn_fast_path_matches_the_stp_kernel(kind):
    """Perturbed LFRNN runs go through the network's own kernels; with STP
    switched off (eta_s = 0) the STP kernel integrates the same equations."""
    net = bp.make_network(kind, 3, 2, n_units=12, noise_std=0.2)
    rng = np.random.default_rng(4)
    params = net.init_params(rng)
    T, B = 15, 5
    inputs = rng.standard_normal((T, B, 3))
    noise = net.draw_noise(rng, T, B)
    p = 0.1 * rng.standard_normal((T, B, 12))
    q = 0.1 * rng.standard_normal((T, B, 2))
    fast = simulate(net, params, inputs, noise, current=p, out_perturbation=q)
    slow = simulate(net, params, inputs, noise, stp=(0.0, 1.0), current=p, out_perturbation=q)
    for name in ("states", "rates", "outputs"):
        np.testing.assert_allclose(getattr(fast, name), getattr(slow, name), rtol=1e-12, atol=1e-12)
    # and the perturbations do act
    plain = simulate(net, params, inputs, noise)
    assert np.abs(fast.outputs - plain.outputs).max() > 1e-3
