"""A network trained on the 3-bit flip-flop: the finder must find its 8 stable memory states.

Training takes about 10 s (N=32, 2500 BPTT iterations on 60-step trials); the
hand-built 3-bit network in test_analysis_fixed_points.py covers the same
claim in milliseconds.
"""
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from bioplastic import get_task, make_network, train
from bioplastic.analysis import find_fixed_points, sample_states


@pytest.fixture(scope="module")
def trained():
    task = get_task("flipflop", n_steps=60)
    net = make_network("lfrnn", 3, 3, n_units=32, g=1.5)
    with threadpool_limits(1):  # small matmuls: threaded BLAS only oversubscribes the cores
        result = train(net, task, iterations=2500, lr=5e-3, seed=1, early_stop=False, progress=False)
    return net, task, result.params


def test_trained_flipflop_has_eight_stable_memory_states(trained):
    net, task, params = trained
    batch = task.sample(32, np.random.default_rng(0))
    traj = net.forward(params, batch.inputs)
    x0 = sample_states(traj.states, 128, np.random.default_rng(1))
    fp = find_fixed_points(net, params, x0, settle_steps=1000)
    stable = fp.subset(fp.is_fixed & fp.is_stable)
    assert len(stable) == 8, fp.summary()
    # each stable state stores one of the 2^3 bit patterns: its readout has that sign pattern
    y = np.tanh(stable.states) @ params["W_out"].T + params["b_out"]
    assert {tuple(s) for s in np.sign(y).astype(int)} == {(a, b, c) for a in (-1, 1) for b in (-1, 1)
                                                          for c in (-1, 1)}
    assert np.all(np.abs(y) > 0.5)
    # and it is a memory: with no input the network stays there
    run = net.forward(params, np.zeros((200, 8, 3)), x0=stable.states)
    np.testing.assert_allclose(run.states[-1], stable.states, atol=1e-8)
    # the saddles between memories are there too (Sussillo & Barak 2013)
    assert (fp.fixed().stability == "saddle").sum() >= 6
