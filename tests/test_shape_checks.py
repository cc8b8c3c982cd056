"""Every public entry checks its arrays against each other before a kernel runs (SPEC 12).

Each case hands one entry a single misshaped array (wrong T, B, N, I, O, a
wrong number of dimensions or a misshaped parameter) and expects a one-line
ShapeError that names the argument. Before issue 17, several of these read
past the end of an array inside a kernel or were silently broadcast by NumPy.
"""
import functools

import numpy as np
import pytest

import bioplastic as bp
from bioplastic.analysis import FixedPoints, find_fixed_points, match_fixed_points, state_spread
from bioplastic.analysis.attractors import memory_attractors
from bioplastic.analysis.collapse import greedy_clusters
from bioplastic.analysis.fast_weights import fast_weight_statistics
from bioplastic.analysis.fixed_points import sample_states
from bioplastic.analysis.maps import LeakyMap, LSTMMap, PLRNNMap, autonomous_map, trajectory_states
from bioplastic.analysis.slow_dynamics import autocorrelation_timescales, ramping_units
from bioplastic.compare import cca_correlations, procrustes_distance
from bioplastic.errors import ShapeError
from bioplastic.recording import record
from bioplastic.rules import EProp, NodePerturbation
from bioplastic.rules.context import Context
from bioplastic.rules.diagnostics import bptt_alignment, update_variance
from bioplastic.rules.models import leaky_form, simulate, to_model_grads
from bioplastic.tasks.base import TaskBatch
from bioplastic.validation import expect_shape

T, B, N = 12, 4, 6


@functools.lru_cache(maxsize=None)
def setup(kind):
    """A small network of ``kind`` on the 3-bit flip-flop, its params, a batch and its trajectory."""
    net = bp.make_network(kind, 3, 3, n_units=N)
    params = net.init_params(np.random.default_rng(0))
    task = bp.get_task("flipflop", n_steps=T)
    batch = task.sample(B, np.random.default_rng(1))
    traj = net.forward(params, batch.inputs)
    return net, params, task, batch, traj


def z(*shape):
    return np.zeros(shape)


def with_param(params, name, value):
    p = params.copy()
    p[name] = value
    return p


def ctx(kind="lfrnn"):
    net, params, _, batch, _ = setup(kind)
    return Context(net, params, batch)


def other_batch(batch, **arrays):
    """``batch`` with some of inputs / targets / loss_mask replaced (a consistent TaskBatch)."""
    a = {"inputs": batch.inputs, "targets": batch.targets, "loss_mask": batch.loss_mask, **arrays}
    return TaskBatch(a["inputs"], a["targets"], a["loss_mask"], batch.trial_table, batch.epochs, batch.dt)


def n():  # setup shortcuts: (net, params, task, batch, traj)
    return setup("lfrnn")


def fixed_points_2d():
    return FixedPoints(z(2, 2), z(2), np.full((2, 2), 0.5 + 0j), np.ones(2, bool))


# (id, call that must raise, regex the message must match: the argument's name)
CASES = [
    # -- networks: forward ------------------------------------------------------
    ("forward inputs of another I", lambda: n()[0].forward(n()[1], z(T, B, 2)),
     r"inputs must have shape \(\?, \?, 3\), got \(12, 4, 2\): \(T, B, n_inputs\)"),
    ("forward inputs 2-D", lambda: setup("plrnn")[0].forward(setup("plrnn")[1], z(T, 3)), "inputs"),
    ("forward noise of another T", lambda: setup("rank1")[0].forward(setup("rank1")[1], z(T, B, 3),
                                                                      noise=z(T + 1, B, N)), "noise"),
    ("forward x0 of another B", lambda: setup("lstm")[0].forward(setup("lstm")[1], z(T, B, 3), x0=z(B + 1, 2 * N)),
     "x0"),
    ("forward param of another N", lambda: n()[0].forward(with_param(n()[1], "W", z(N, N + 1)), z(T, B, 3)),
     r"params\['W'\] must have shape \(6, 6\), got \(6, 7\): \(N, N\)"),
    ("check_params missing array", lambda: setup("plrnn")[0].check_params(
        {k: v for k, v in setup("plrnn")[1].items() if k != "A"}), r"missing \['A'\]"),
    ("forward LSTM gate weights", lambda: setup("lstm")[0].forward(
        with_param(setup("lstm")[1], "W_h", z(3 * N, N)), z(T, B, 3)),
     r"params\['W_h'\] must have shape \(24, 6\), got \(18, 6\): \(4N, N\) of this lstm"),
    # -- networks: backward -----------------------------------------------------
    ("backward trajectory longer than inputs", lambda: n()[0].backward(
        n()[1], n()[0].forward(n()[1], z(2 * T, B, 3)), z(T, B, 3), z(T, B, 3)), "traj"),
    ("backward d_outputs of another O", lambda: setup("plrnn")[0].backward(
        setup("plrnn")[1], setup("plrnn")[4], setup("plrnn")[3].inputs, z(T, B, 2)),
     r"d_outputs must have shape \(12, 4, 3\), got \(12, 4, 2\): \(T, B, n_outputs\)"),
    ("backward d_outputs of another T", lambda: setup("lstm")[0].backward(
        setup("lstm")[1], setup("lstm")[4], setup("lstm")[3].inputs, z(T - 1, B, 3)), "d_outputs"),
    ("backward d_rates of another N", lambda: setup("rank1")[0].backward(
        setup("rank1")[1], setup("rank1")[4], setup("rank1")[3].inputs, z(T, B, 3), d_rates=z(T + 1, B, N - 1)),
     "d_rates"),
    ("backward d_states of another B", lambda: n()[0].backward(
        n()[1], n()[4], n()[3].inputs, z(T, B, 3), d_states=z(T + 1, B + 1, N)), "d_states"),
    ("backward_with_tcr epoch mask of another T (fused LFRNN)", lambda: n()[0].backward_with_tcr(
        n()[1], n()[4], n()[3].inputs, z(T, B, 3), 0.1, epoch_mask=np.ones((T + 1, B), bool)), "epoch_mask"),
    ("backward_with_tcr epoch mask of another B (PLRNN)", lambda: setup("plrnn")[0].backward_with_tcr(
        setup("plrnn")[1], setup("plrnn")[4], setup("plrnn")[3].inputs, z(T, B, 3), 0.1,
        epoch_mask=np.ones((T, B + 2), bool)), r"epoch_mask must have shape \(12, 4\)"),
    ("backward_with_tcr d_outputs checked before the TCR kernel (LSTM)", lambda: setup("lstm")[0].backward_with_tcr(
        setup("lstm")[1], setup("lstm")[4], setup("lstm")[3].inputs, z(T, B + 1, 3), 0.1), "d_outputs"),
    ("run_with_additive additive of another T", lambda: n()[0].run_with_additive(
        n()[1], n()[3].inputs, z(T + 5, B, N), 0.1, z(B, N)), "additive"),
    ("run_with_additive x0 of another N", lambda: setup("rank1")[0].run_with_additive(
        setup("rank1")[1], z(T, B, 3), None, 0.0, z(B, N + 1)), "x0"),
    ("run_with_additive misshaped bias", lambda: n()[0].run_with_additive(
        with_param(n()[1], "b", z(N + 3)), z(T, B, 3), None, 0.0, z(B, N)), r"params\['b'\]"),
    # -- rules --------------------------------------------------------------------
    ("Context batch of another I", lambda: Context(
        bp.make_network("lfrnn", 2, 3, n_units=N), bp.make_network("lfrnn", 2, 3, n_units=N).init_params(
            np.random.default_rng(0)), n()[3]), r"batch\.inputs must have shape \(\?, \?, 2\)"),
    ("Context batch targets of another O", lambda: Context(n()[0], n()[1], other_batch(
        n()[3], targets=z(T, B, 2), loss_mask=z(T, B, 2))), r"batch\.targets"),
    ("Context noise of another B", lambda: Context(n()[0], n()[1], n()[3], noise=z(T, B - 1, N)), "noise"),
    ("Context misshaped readout", lambda: Context(n()[0], with_param(n()[1], "W_out", z(3, N - 1)), n()[3]),
     r"params\['W_out'\]"),
    ("Context.error outputs of another T", lambda: ctx().error(z(T - 2, B, 3)), "outputs"),
    ("reward outputs that NumPy would broadcast", lambda: ctx().view(NodePerturbation(), ()).reward(z(1, B, 3)),
     r"outputs must have shape \(12, 4, 3\)"),
    ("simulate current of another N", lambda: simulate(n()[0], n()[1], n()[3].inputs, current=z(T, B, N + 1)),
     "current"),
    ("simulate out_perturbation of another O", lambda: simulate(
        n()[0], n()[1], n()[3].inputs, out_perturbation=z(T, B, 1)), "out_perturbation"),
    ("simulate STP x0 of another B", lambda: simulate(n()[0], n()[1], n()[3].inputs, stp=(0.1, 0.9),
                                                      x0=z(B + 1, N)), "x0"),
    ("simulate STP noise of another T (PLRNN)", lambda: simulate(
        setup("plrnn")[0], setup("plrnn")[1], setup("plrnn")[3].inputs, z(T + 1, B, N), stp=(0.1, 0.9)), "noise"),
    ("simulate STP inputs 2-D", lambda: simulate(n()[0], n()[1], z(T, 3), stp=(0.1, 0.9)), "inputs"),
    ("leaky_form misshaped leak", lambda: leaky_form(setup("plrnn")[0], with_param(setup("plrnn")[1], "A", z(N, 1))),
     r"params\['A'\]"),
    ("to_model_grads misshaped W", lambda: to_model_grads(setup("rank1")[0], setup("rank1")[1], {"W": z(N, 2)}),
     r"form_grads\['W'\]"),
    ("eprop random feedback of another O", lambda: EProp(feedback="random").update(
        ctx().view(EProp(), ("W",)), {"F": z(2, N)}), "feedback"),
    ("update_variance noise of another B", lambda: update_variance(
        NodePerturbation(), {"baseline": None}, ("W",), n()[0], n()[1], n()[3], z(T, B + 4, N), None,
        np.random.default_rng(0)), "noise"),
    ("bptt_alignment direction of another shape", lambda: bptt_alignment(
        n()[0], n()[1], n()[3], None, {"W": z(N * N)}), r"direction\['W'\]"),
    # -- tasks --------------------------------------------------------------------
    ("accuracy outputs of another T", lambda: n()[2].accuracy(z(T + 1, B, 3), n()[3]), "outputs"),
    ("accuracy batch of another task's outputs", lambda: bp.get_task("flipflop", n_steps=T, n_bits=2).accuracy(
        z(T, B, 3), n()[3]), r"batch\.inputs|batch\.targets"),
    ("TaskBatch loss mask of another O", lambda: other_batch(n()[3], loss_mask=z(T, B, 2)), "loss_mask"),
    # -- analysis -----------------------------------------------------------------
    ("autonomous_map input of another I", lambda: autonomous_map(n()[0], n()[1], np.zeros(2)), "constant input"),
    ("map vjp with one vector for many states", lambda: autonomous_map(n()[0], n()[1]).vjp(z(5, N), z(1, N)),
     r"V must have shape \(5, 6\)"),
    ("LeakyMap non-square W", lambda: LeakyMap(z(N, N + 1), z(N), 0.1, "tanh"), "W"),
    ("PLRNNMap leak of another N", lambda: PLRNNMap(z(N + 1), z(N, N), z(N)), r"A must have shape \(6,\)"),
    ("LSTMMap drive of another H", lambda: LSTMMap(z(4 * N, N), z(N)), r"d must have shape \(24,\)"),
    ("find_fixed_points initial states of another D", lambda: find_fixed_points(n()[0], n()[1], z(4, N + 1)),
     "initial_states"),
    ("trajectory_states of another network", lambda: trajectory_states(
        bp.make_network("lfrnn", 3, 3, n_units=N + 2), n()[4]), r"traj\.states"),
    ("sample_states 1-D", lambda: sample_states(z(N), 3, np.random.default_rng(0)), "states"),
    ("FixedPoints q of another K", lambda: FixedPoints(z(3, 2), z(2), z(3, 2) + 0j, np.ones(3, bool)),
     r"FixedPoints\.q"),
    ("FixedPoints.subset mask of another K", lambda: fixed_points_2d().subset(np.ones(5, bool)), "mask"),
    ("match_fixed_points of different dimensions", lambda: match_fixed_points(
        fixed_points_2d(), FixedPoints(z(2, 1), z(2), np.full((2, 1), 0.5 + 0j), np.ones(2, bool)), 1.0),
     r"Q\.states"),
    ("state_spread 1-D", lambda: state_spread(z(N)), "states"),
    ("autocorrelation mask of another B", lambda: autocorrelation_timescales(z(T, B, N), np.ones((T, B + 1), bool)),
     "epoch mask"),
    ("ramping_units rates 2-D", lambda: ramping_units(z(T, N), np.ones((T, B), bool)), "rates"),
    ("greedy_clusters 1-D", lambda: greedy_clusters(z(N), 0.1), "X"),
    ("memory_attractors task of another I", lambda: memory_attractors(
        n()[0], n()[1], bp.get_task("delayed_addition"), n_init=4, batch_size=2, settle_steps=0), "inputs"),
    ("fast_weight_statistics task of another I", lambda: fast_weight_statistics(
        n()[0], n()[1], bp.get_task("delayed_addition"), (0.1, 100.0), n_trials=2), "inputs"),
    # -- compare and recording ---------------------------------------------------
    ("procrustes samples differ", lambda: procrustes_distance(z(20, 4), z(21, 4)), "model and data"),
    ("cca 1-D activity", lambda: cca_correlations(z(20), z(20, 3)), "activity"),
    ("record targets of another O", lambda: record(
        bp.make_network("lfrnn", 3, 2, n_units=N), bp.make_network("lfrnn", 3, 2, n_units=N).init_params(
            np.random.default_rng(0)), n()[3], ("outputs", "targets")), r"batch\.targets"),
    ("record noise of another T", lambda: record(
        bp.make_network("lfrnn", 3, 3, n_units=N, noise_std=0.1), n()[1], n()[3], ("states",), noise=z(T + 1, B, N)),
     "noise"),
]


@pytest.mark.parametrize("call, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_mismatched_array_is_a_shape_error_naming_it(call, match):
    with pytest.raises(ShapeError, match=match) as info:
        call()
    assert "\n" not in str(info.value)  # one line


def test_there_are_enough_cases():
    assert len(CASES) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)


def test_expect_shape_wildcards_and_message():
    x = np.zeros((3, 4, 2))
    assert expect_shape("x", x, (None, 4, None)) == (3, 4, 2)
    with pytest.raises(ShapeError, match=r"^x must have shape \(3, 4, 5\), got \(3, 4, 2\): \(T, B, O\)$"):
        expect_shape("x", x, (3, 4, 5), "(T, B, O)")
    with pytest.raises(ShapeError, match=r"x must have shape \(\?, 4\), got \(3, 4, 2\)"):
        expect_shape("x", x, (None, 4))


@pytest.mark.parametrize("kind", ["lfrnn", "plrnn", "rank1", "lstm"])
def test_valid_arrays_still_pass_every_checked_entry(kind):
    net, params, task, batch, traj = setup(kind)
    d = np.random.default_rng(4).standard_normal((T, B, 3))
    mask = np.ones((T, B), bool)
    mask[: T // 2] = False
    grads, l_tcr = net.backward_with_tcr(params, traj, batch.inputs, d, 0.3, epoch_mask=mask)
    assert set(grads) == set(net.param_names) and np.isfinite(l_tcr)
    assert 0 <= task.accuracy(traj.outputs, batch) <= 1
    rec = record(net, params, batch, ("outputs", "targets"))
    assert rec["targets"].shape == rec["outputs"].shape
    F = autonomous_map(net, params)
    X = trajectory_states(net, traj)[-1]
    assert F.vjp(X, np.ones_like(X)).shape == X.shape
    if kind == "lstm":
        return
    # local-rule entries on the same arrays
    out = simulate(net, params, batch.inputs, current=np.zeros((T, B, N)), out_perturbation=np.zeros((T, B, 3)))
    np.testing.assert_allclose(out.outputs, traj.outputs, rtol=1e-10, atol=1e-12)
    c = Context(net, params, batch, noise=np.zeros((T, B, N)))
    assert c.error(traj.outputs).shape == (T, B, 3)
    u = EProp().update(c.view(EProp(), ("W_out",)), {})
    assert u.grads["W_out"].shape == params["W_out"].shape


def test_plrnn_tcr_gradient_unchanged_by_the_up_front_checks():
    """The generic backward_with_tcr now checks everything first and calls the
    adjoint once: it must still equal backward with the TCR gradient added."""
    from bioplastic.training.loss import tcr_loss

    net, params, _, batch, traj = setup("plrnn")
    d = np.random.default_rng(5).standard_normal((T, B, 3))
    mask = np.random.default_rng(6).random((T, B)) < 0.5
    grads, l_tcr = net.backward_with_tcr(params, traj, batch.inputs, d, 0.7, epoch_mask=mask)
    l_ref, d_rates = tcr_loss(traj.rates, mask, grad_scale=0.7)
    ref = net.backward(params, traj, batch.inputs, d, d_rates=d_rates)
    assert l_tcr == pytest.approx(l_ref)
    for k in ref:
        np.testing.assert_allclose(grads[k], ref[k], rtol=1e-12, atol=1e-14)
