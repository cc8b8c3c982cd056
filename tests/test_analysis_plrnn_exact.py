"""Exact PLRNN fixed points against an independent brute-force reference."""
import itertools

import numpy as np
import pytest

from bioplastic.analysis import find_fixed_points, plrnn_exact_fixed_points, sample_states
from bioplastic.errors import ConfigError, ShapeError
from bioplastic.networks import make_network


def multistable_plrnn(rng, N):
    """A perturbed winner-take-all PLRNN: mutual inhibition (W ~ -1) and positive drive
    (h ~ 1), so several single-winner states are stable and mixed states are saddles."""
    net = make_network("plrnn", 1, 1, n_units=N)
    W = -1.0 + 0.3 * rng.standard_normal((N, N))
    np.fill_diagonal(W, 0)
    p = {"A": rng.uniform(0.3, 0.7, N), "W": W, "C": rng.standard_normal((N, 1)),
         "h": 1 + 0.2 * rng.standard_normal(N), "W_out": np.zeros((1, N)), "b_out": np.zeros(1)}
    return net, p


def reference_fixed_points(p, u):
    """Brute force, written independently: for each on/off pattern s, solve
    z = A z + W (s * z) + c column by column with numpy, keep sign-consistent solutions,
    and confirm each through the PLRNN update itself."""
    A, W = p["A"], p["W"]
    c = p["C"] @ u + p["h"]
    N = len(A)
    found = []
    for s in itertools.product([0.0, 1.0], repeat=N):
        s = np.array(s)
        lhs = np.diag(1 - A) - W * s  # (I - diag(A) - W diag(s)) z = c
        if abs(np.linalg.det(lhs)) < 1e-12:
            continue
        z = np.linalg.solve(lhs, c)
        if np.all((z > 0) == (s > 0)):
            assert np.allclose(A * z + W @ np.maximum(z, 0) + c, z, atol=1e-9)
            found.append(z)
    return np.array(found).reshape(-1, N)


def as_set(Z, decimals=7):
    return sorted(tuple(z) for z in np.round(Z, decimals) + 0.0)


@pytest.mark.parametrize("seed", range(6))
def test_exact_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    N = 5
    net, p = multistable_plrnn(rng, N)
    u = np.array([0.4])
    ref = reference_fixed_points(p, u)
    fp = plrnn_exact_fixed_points(net, p, regions="all", inputs=u)
    assert fp.info["n_regions"] == 2 ** N
    assert as_set(fp.states) == as_set(ref)
    for z, ev in zip(fp.states, fp.eigenvalues):
        M = np.diag(p["A"]) + p["W"] * (z > 0)
        np.testing.assert_allclose(np.sort(np.abs(ev)), np.sort(np.abs(np.linalg.eigvals(M))), atol=1e-10)


def test_reference_cases_are_multistable():
    # guard: the comparison above must exercise several stable points and saddles
    for seed in range(6):
        ref = reference_fixed_points(multistable_plrnn(np.random.default_rng(seed), 5)[1], np.array([0.4]))
        assert len(ref) >= 5


@pytest.mark.parametrize("seed", range(4))
def test_q_minimiser_finds_the_exact_stable_points(seed):
    rng = np.random.default_rng(seed)
    net, p = multistable_plrnn(rng, 5)
    exact = plrnn_exact_fixed_points(net, p, regions="all")
    stable = exact.states[exact.is_stable]
    found = find_fixed_points(net, p, rng.uniform(-4, 4, (256, 5)), settle_steps=300)
    got = found.states[found.is_fixed & found.is_stable]
    assert as_set(got, 6) == as_set(stable, 6)
    # every fixed point the minimiser reports is one of the exact ones
    for z in found.fixed().states:
        assert np.min(np.linalg.norm(exact.states - z, axis=1)) < 1e-7


def test_visited_regions_give_a_subset(rng):
    net, p = multistable_plrnn(rng, 6)
    traj = net.forward(p, np.zeros((40, 16, 1)), x0=rng.uniform(-3, 3, (16, 6)))
    visited = plrnn_exact_fixed_points(net, p, states=traj.states)
    every = plrnn_exact_fixed_points(net, p, regions="all")
    assert visited.info["n_regions"] <= 16 * 41
    assert set(as_set(visited.states)) <= set(as_set(every.states))
    # a stable fixed point that trajectories converge to lies in a visited region
    if every.is_stable.any():
        x0 = sample_states(traj.states, 8, rng)
        long = net.forward(p, np.zeros((500, 8, 1)), x0=x0).states[-1]
        for z in long:
            if np.linalg.norm(p["A"] * z + p["W"] @ np.maximum(z, 0) + p["h"] - z) < 1e-10:
                assert np.min(np.linalg.norm(visited.states - z, axis=1)) < 1e-8


def test_errors(rng):
    net, p = multistable_plrnn(rng, 4)
    with pytest.raises(ConfigError, match="exactly one of states="):
        plrnn_exact_fixed_points(net, p)
    with pytest.raises(ConfigError, match="regions must be 'all'"):
        plrnn_exact_fixed_points(net, p, regions="some")
    with pytest.raises(ShapeError, match=r"regions must be a bool array \(R, 4\)"):
        plrnn_exact_fixed_points(net, p, regions=np.ones((2, 3), bool))
    with pytest.raises(ConfigError, match="need a PLRNN"):
        plrnn_exact_fixed_points(make_network("lfrnn", 1, 1, n_units=4), p, regions="all")
    big = make_network("plrnn", 1, 1, n_units=20)
    with pytest.raises(ConfigError, match="N=20 > 16"):
        plrnn_exact_fixed_points(big, big.init_params(rng), regions="all")
    p["h"] = p["h"].copy()
    p["h"][0] = np.inf
    with pytest.raises(ShapeError, match="non-finite"):
        plrnn_exact_fixed_points(net, p, regions="all")
