"""Fixed and slow points (SPEC 5) on systems whose answers are known."""
import numpy as np
import pytest
from scipy.optimize import brentq

from bioplastic.analysis import autonomous_map, find_fixed_points, sample_states, trajectory_states
from bioplastic.errors import ConfigError, ShapeError
from bioplastic.networks import make_network

ALPHA = 0.1  # dt = 1, tau = 10: the networks' default


def lfrnn_params(W, n_inputs=1, n_outputs=1):
    W = np.asarray(W, dtype=float)
    N = W.shape[0]
    return {"W": np.asarray(W, float), "W_in": np.zeros((N, n_inputs)), "b": np.zeros(N),
            "W_out": np.zeros((n_outputs, N)), "b_out": np.zeros(n_outputs)}


def bistable_root(w=2.0):
    """Positive solution of a = w tanh(a)."""
    return brentq(lambda a: a - w * np.tanh(a), 0.5, 10)


def state_dim(net):
    return 2 * net.n_units if net.kind == "lstm" else net.n_units


# -- the map is the model -----------------------------------------------------
@pytest.mark.parametrize("kind", ["lfrnn", "rank1", "plrnn", "lstm"])
def test_map_is_the_models_euler_step(kind, rng):
    net = make_network(kind, 2, 1, n_units=6)
    params = net.init_params(rng)
    u = rng.standard_normal(2)
    x0 = rng.standard_normal((5, state_dim(net)))
    traj = net.forward(params, np.broadcast_to(u, (1, 5, 2)), x0=x0)
    F = autonomous_map(net, params, u)
    np.testing.assert_allclose(F.step(x0), trajectory_states(net, traj)[1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["lfrnn", "rank1", "plrnn", "lstm"])
def test_jacobian_and_vjp_match_finite_differences(kind, rng):
    net = make_network(kind, 2, 1, n_units=5)
    params = net.init_params(rng)
    F = autonomous_map(net, params, rng.standard_normal(2))
    D = state_dim(net)
    X = rng.standard_normal((3, D))
    J = F.jacobian(X)
    h = 1e-6
    for j in range(D):
        e = np.zeros(D)
        e[j] = h
        np.testing.assert_allclose(J[:, :, j], (F.step(X + e) - F.step(X - e)) / (2 * h), atol=1e-7)
    V = rng.standard_normal((3, D))
    np.testing.assert_allclose(F.vjp(X, V), np.einsum("ki,kij->kj", V, J), atol=1e-12)
    q, g = F.q_and_grad(X)
    G = F.step(X) - X
    np.testing.assert_allclose(q, 0.5 * (G ** 2).sum(1))
    np.testing.assert_allclose(g, np.einsum("ki,kij->kj", G, J - np.eye(D)), atol=1e-12)


# -- known answers ------------------------------------------------------------
@pytest.mark.parametrize("A_top", [0.9, 1.2])
def test_linear_network_has_one_fixed_point_with_known_eigenvalues(A_top, rng):
    # A PLRNN without coupling is linear: z' = A z + C u + h, so z* = (C u + h) / (1 - A)
    # and the Jacobian is diag(A).
    N = 6
    net = make_network("plrnn", 2, 1, n_units=N)
    A = np.concatenate([[A_top], rng.uniform(0.1, 0.8, N - 1)])
    p = {"A": A, "W": np.zeros((N, N)), "C": rng.standard_normal((N, 2)), "h": rng.standard_normal(N),
         "W_out": np.zeros((1, N)), "b_out": np.zeros(1)}
    u = np.array([0.3, -0.7])
    fp = find_fixed_points(net, p, rng.standard_normal((32, N)) * 3, inputs=u)
    assert fp.n_fixed == 1 and len(fp) == 1
    np.testing.assert_allclose(fp.states[0], (p["C"] @ u + p["h"]) / (1 - A), atol=1e-9)
    np.testing.assert_allclose(fp.eigenvalues[0].real, np.sort(A)[::-1], atol=1e-12)
    np.testing.assert_allclose(fp.eigenvalues[0].imag, 0, atol=1e-12)
    assert fp.stability[0] == ("stable" if A_top < 1 else "saddle")


def test_bistable_two_unit_network(rng):
    # Mutual inhibition W = [[0, -2], [-2, 0]]: two stable states (a, -a), (-a, a) with
    # a = 2 tanh(a), and a saddle at the origin. Jacobian (1-alpha) I + alpha W diag(phi'),
    # eigenvalues 1 - alpha +- 2 alpha d with d = 1 - tanh(a)^2 (d = 1 at the origin).
    net = make_network("lfrnn", 1, 1, n_units=2)
    p = lfrnn_params([[0.0, -2.0], [-2.0, 0.0]])
    fp = find_fixed_points(net, p, rng.uniform(-3, 3, (64, 2)))
    a = bistable_root()
    assert fp.n_fixed == 3 and fp.n_stable == 2
    stable = fp.fixed().subset(fp.fixed().is_stable)
    got = sorted(map(tuple, stable.states.round(8)))
    assert got == sorted([(round(-a, 8), round(a, 8)), (round(a, 8), round(-a, 8))])
    d = 1 - np.tanh(a) ** 2
    for ev in stable.eigenvalues:
        np.testing.assert_allclose(np.sort(ev.real), [1 - ALPHA - 2 * ALPHA * d, 1 - ALPHA + 2 * ALPHA * d],
                                   atol=1e-10)
    origin = fp.states[np.argmin(np.linalg.norm(fp.states, axis=1))]
    np.testing.assert_allclose(origin, 0, atol=1e-10)
    saddle = fp.subset(np.linalg.norm(fp.states, axis=1) < 1e-6)
    assert saddle.stability[0] == "saddle"
    np.testing.assert_allclose(np.sort(saddle.eigenvalues[0].real), [1 - 3 * ALPHA, 1 + ALPHA], atol=1e-10)


def test_hand_built_three_bit_memory_has_exactly_eight_stable_states(rng):
    # Three decoupled self-exciting units (W = 2 I): each is bistable, so there are
    # 3^3 = 27 fixed points of which 2^3 = 8 are stable, at (+-a, +-a, +-a).
    net = make_network("lfrnn", 3, 3, n_units=3)
    p = lfrnn_params(2 * np.eye(3), 3, 3)
    fp = find_fixed_points(net, p, rng.uniform(-3, 3, (256, 3)))
    a = bistable_root()
    assert fp.n_fixed == 27
    assert fp.n_stable == 8
    stable = fp.subset(fp.is_fixed & fp.is_stable).states
    np.testing.assert_allclose(np.abs(stable), a, atol=1e-9)
    assert len({tuple(np.sign(s)) for s in stable}) == 8
    assert set(fp.fixed().stability) == {"stable", "saddle", "unstable"}


def test_rank_one_network_is_bistable_along_m(rng):
    # W = m n^T / N with m = n = sqrt(2) 1 (no random bulk): on x = s 1 the
    # dynamics are s' = (1-alpha) s + alpha 2 tanh(s): stable at s = +-a, saddle at 0.
    N = 8
    net = make_network("rank1", 1, 1, n_units=N, g=0.0)
    p = {"chi": rng.standard_normal((N, N)), "m": np.full(N, np.sqrt(2)), "n": np.full(N, np.sqrt(2)),
         "W_in": np.zeros((N, 1)), "b": np.zeros(N), "W_out": np.zeros((1, N)), "b_out": np.zeros(1)}
    x0 = rng.uniform(-3, 3, (64, 1)) + 0.3 * rng.standard_normal((64, N))  # spread along m
    fp = find_fixed_points(net, p, x0)
    a = bistable_root()
    assert fp.n_fixed == 3 and fp.n_stable == 2
    st = fp.subset(fp.is_fixed & fp.is_stable).states
    np.testing.assert_allclose(np.sort(st[:, 0]), [-a, a], atol=1e-9)
    np.testing.assert_allclose(st - st[:, :1], 0, atol=1e-9)


def test_lstm_fixed_points_are_fixed_under_the_network(rng):
    net = make_network("lstm", 1, 1, n_units=4)
    params = net.init_params(rng)
    params["W_h"] *= 6.0  # strong recurrence: several fixed points
    traj = net.forward(params, np.zeros((60, 32, 1)), x0=rng.uniform(-1, 1, (32, 8)))
    X0 = sample_states(trajectory_states(net, traj), 128, rng)
    fp = find_fixed_points(net, params, X0, settle_steps=200)
    assert fp.n_stable >= 1
    fixed = fp.fixed().states
    run = net.forward(params, np.zeros((50, len(fixed), 1)), x0=fixed)
    np.testing.assert_allclose(trajectory_states(net, run)[-1][:, :4], fixed[:, :4], atol=1e-7)


def test_slow_points_are_kept_apart_from_fixed_points():
    # One unit, x' = (1-a) x + a (1.3 tanh(x) + b). Its left fixed-point pair is born in
    # a fold at b_c = 1.3 tanh(x_c) - x_c ~ 0.1002 (x_c = arccosh(sqrt(1.3))); just past it
    # (b = 0.11) one fixed point remains and a "ghost" slow point sits near -x_c with
    # speed a (b - b_c) ~ 1e-3 per step.
    net = make_network("lfrnn", 1, 1, n_units=1)
    p = lfrnn_params([[1.3]])
    p["b"] = np.array([0.11])
    xc = np.arccosh(np.sqrt(1.3))
    b_c = 1.3 * np.tanh(xc) - xc
    fp = find_fixed_points(net, p, np.linspace(-3, 3, 61)[:, None], slow_frac=1.0)
    assert fp.n_fixed == 1 and fp.fixed().states[0, 0] > 0
    slow = fp.subset(~fp.is_fixed)
    assert len(slow) == 1
    np.testing.assert_allclose(slow.states[0, 0], -xc, atol=1e-6)
    np.testing.assert_allclose(slow.speed[0], ALPHA * (0.11 - b_c), rtol=1e-6)


# -- errors -------------------------------------------------------------------
def test_nan_weights_give_a_clear_error(rng):
    net = make_network("lfrnn", 1, 1, n_units=4)
    params = net.init_params(rng)
    params["W"][1, 2] = np.nan
    with pytest.raises(ShapeError, match=r"cannot analyse this lfrnn model: params\['W'\] contains 1 non-finite"):
        find_fixed_points(net, params, np.zeros((3, 4)))


def test_bad_initial_states_are_rejected(rng):
    net = make_network("lfrnn", 1, 1, n_units=4)
    params = net.init_params(rng)
    with pytest.raises(ShapeError, match=r"initial_states must have shape \(K, 4\)"):
        find_fixed_points(net, params, np.zeros((3, 5)))
    with pytest.raises(ShapeError, match="NaN or inf"):
        find_fixed_points(net, params, np.full((3, 4), np.nan))
    with pytest.raises(ConfigError, match="needs the network's params"):
        find_fixed_points(net, None, np.zeros((3, 4)))
    with pytest.raises(ShapeError, match="states is empty"):
        sample_states(np.zeros((0, 4)), 3, rng)
    with pytest.raises(ShapeError, match=r"constant input must have shape \(1,\)"):
        autonomous_map(net, params, np.zeros(3))
