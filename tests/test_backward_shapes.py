"""The adjoint never reads past its inputs: a trajectory that does not match them is a ShapeError.

Before 2026-12-07, ``Network.backward`` took the trajectory on trust: one
longer than the inputs made the adjoint kernels read past the end of the
inputs (garbage gradients, and a segfault at large T).
"""
import numpy as np
import pytest

import bioplastic as bp
from bioplastic.errors import ShapeError
from bioplastic.networks.base import Trajectory

MODELS = ["lfrnn", "plrnn", "rank1", "lstm"]


def setup(kind, T=12, B=4):
    net = bp.make_network(kind, 2, 1, n_units=6)
    params = net.init_params(np.random.default_rng(0))
    u = np.random.default_rng(1).standard_normal((T, B, 2))
    return net, params, u


def variants(net, params, T, B):
    """(label, trajectory, inputs, d_outputs) that do not fit together."""
    rng = np.random.default_rng(2)
    long_u = rng.standard_normal((3 * T, B, 2))
    long_traj = net.forward(params, long_u)
    wide = net.forward(params, rng.standard_normal((T, B + 3, 2)))
    u = rng.standard_normal((T, B, 2))
    d = np.ones((T, B, 1))
    yield "trajectory longer than the inputs", long_traj, u, d
    yield "trajectory shorter than the inputs", net.forward(params, u[: T // 2]), u, d
    yield "trajectory of another batch", wide, u, d
    good = net.forward(params, u)
    yield "states of another size", Trajectory(good.states[..., :-1], good.rates, good.outputs, good.extra), u, d
    yield "not a trajectory", {"states": good.states}, u, d


@pytest.mark.parametrize("kind", MODELS)
def test_backward_refuses_a_trajectory_that_does_not_match_the_inputs(kind):
    T, B = 12, 4
    net, params, _ = setup(kind, T, B)
    for label, traj, u, d in variants(net, params, T, B):
        with pytest.raises(ShapeError, match="traj|Trajectory"):
            net.backward(params, traj, u, d)
        with pytest.raises(ShapeError, match="traj|Trajectory"):
            net.backward_with_tcr(params, traj, u, d, 0.1)


def test_lstm_backward_needs_its_gates():
    T, B = 8, 3
    net, params, u = setup("lstm", T, B)
    traj = net.forward(params, u)
    with pytest.raises(ShapeError, match="gates"):
        net.backward(params, Trajectory(traj.states, traj.rates, traj.outputs, {}), u, np.ones((T, B, 1)))
    bad = Trajectory(traj.states, traj.rates, traj.outputs, {"gates": traj.extra["gates"][:-1]})
    with pytest.raises(ShapeError, match="traj.gates"):
        net.backward(params, bad, u, np.ones((T, B, 1)))


@pytest.mark.parametrize("kind", MODELS)
def test_matching_trajectory_still_gives_the_same_gradients(kind):
    net, params, u = setup(kind)
    traj = net.forward(params, u)
    d = np.random.default_rng(3).standard_normal((u.shape[0], u.shape[1], 1))
    g1 = net.backward(params, traj, u, d)
    # a float32 copy of the trajectory is cast back, not refused
    cast = Trajectory(traj.states.astype(np.float32).astype(np.float64), traj.rates, traj.outputs, traj.extra)
    g2 = net.backward(params, cast, u, d)
    for k in g1:
        assert np.all(np.isfinite(g1[k]))
        np.testing.assert_allclose(g1[k], g2[k], rtol=1e-5, atol=1e-6)
