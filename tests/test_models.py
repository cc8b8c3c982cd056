"""Tests of bioplastic.networks: every registered model against its slow NumPy
reference (tests/reference.py), adjoint gradients against central finite
differences (with TCR on rates and on states), error paths and constraints."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

import reference
from bioplastic.errors import ConfigError, ShapeError, UnknownNameError
from bioplastic.kernels.activations import PHI_CODES
from bioplastic.networks import Constraint, list_models, make_network
from bioplastic.training.objective import loss_and_grads
from bioplastic.training.optim import Adam

T, B, I, O = 6, 3, 2, 2
SMALL = dict(n_units=5, dt=1.0, tau=4.0, noise_std=0.3)

# Every registered model with defaults, plus the variants that change the maths.
VARIANTS = (
    [(kind, {}) for kind in list_models()]
    + [("lfrnn", {"nonlinearity": nl}) for nl in PHI_CODES if nl != "tanh"]
    + [("lfrnn", {"dale": 0.6}), ("lfrnn", {"sparsity": 0.4}), ("lfrnn", {"g": 3.0, "nonlinearity": "relu"})]
    + [("plrnn", {"readout_from": "relu"}), ("plrnn", {"g": 0.8})]
    + [("rank1", {"nonlinearity": "softplus"})]
)
IDS = [kind + "".join(f"-{k}={v}" for k, v in s.items()) for kind, s in VARIANTS]


def build(kind, dtype="float64", seed=0, **settings):
    """A small network, its parameters, inputs, noise and a random x0."""
    net = make_network(kind, I, O, **{**SMALL, "dtype": dtype, **settings})
    rng = np.random.default_rng(seed)
    params = net.init_params(rng)
    inputs = rng.standard_normal((T, B, I))
    noise = net.draw_noise(rng, T, B)
    x0 = rng.standard_normal(net.initial_state(B).shape)
    return net, params, inputs, noise, x0


def fake_batch(rng, inputs):
    """A stand-in for TaskBatch: random targets, loss mask and one TCR epoch."""
    return SimpleNamespace(
        inputs=inputs,
        targets=rng.standard_normal((T, B, O)),
        loss_mask=(rng.random((T, B, O)) < 0.7).astype(float),
        epochs={"delay": rng.random((T, B)) < 0.6},
    )


# -- registry ---------------------------------------------------------------------
def test_builtins_registered():
    assert set(list_models()) >= {"lfrnn", "plrnn", "rank1", "lstm"}


@pytest.mark.parametrize("kind", list_models())
def test_every_model_has_a_reference(kind):
    assert kind in reference.REFERENCES, f"add a NumPy reference for {kind!r} to tests/reference.py"


@pytest.mark.parametrize("kind", list_models())
def test_defaults_and_settings_roundtrip(kind):
    net = make_network(kind, I, O, n_units=7)
    assert net.dtype == np.float64
    params = net.init_params(np.random.default_rng(0))
    assert tuple(params) == net.param_names
    assert all(params[k].shape == s for k, s in net.param_shapes().items())
    assert set(params.trainable) <= set(net.param_names)
    settings = net.settings()
    assert settings.pop("kind") == kind
    settings.pop("n_inputs"), settings.pop("n_outputs")
    again = make_network(kind, I, O, **settings)
    assert again.settings() == net.settings()


# -- (a) forward pass equals the NumPy reference ----------------------------------
@pytest.mark.parametrize("kind, settings", VARIANTS, ids=IDS)
def test_forward_matches_reference_float64(kind, settings):
    net, params, inputs, noise, x0 = build(kind, **settings)
    assert noise is not None
    traj = net.forward(params, inputs, noise=noise, x0=x0)
    states, rates, outputs = reference.forward(net, params, inputs, noise, x0)
    for got, want in ((traj.states, states), (traj.rates, rates), (traj.outputs, outputs)):
        assert got.dtype == np.float64
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind, settings", VARIANTS, ids=IDS)
def test_forward_matches_reference_float32(kind, settings):
    net, params, inputs, noise, x0 = build(kind, dtype="float32", **settings)
    assert all(v.dtype == np.float32 for v in params.values())
    traj = net.forward(params, inputs, noise=noise, x0=x0)
    states, rates, outputs = reference.forward(net, params, inputs.astype(np.float32),
                                               noise, x0.astype(np.float32))
    for got, want in ((traj.states, states), (traj.rates, rates), (traj.outputs, outputs)):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kind", list_models())
def test_noiseless_and_default_x0(kind):
    net, params, inputs, _, _ = build(kind, noise_std=0.0)
    assert net.draw_noise(np.random.default_rng(0), T, B) is None
    traj = net.forward(params, inputs)
    states, rates, outputs = reference.forward(net, params, inputs)
    np.testing.assert_allclose(traj.outputs, outputs, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(traj.rates, rates, rtol=1e-12, atol=1e-12)


# -- (b) adjoint gradients equal central finite differences -----------------------
def finite_difference(f, params, name, eps=1e-6):
    out = np.zeros_like(params[name])
    flat = out.reshape(-1)
    for k in range(flat.size):
        p = params.copy()
        p[name].reshape(-1)[k] += eps
        up = f(p)
        p[name].reshape(-1)[k] -= 2 * eps
        flat[k] = (up - f(p)) / (2 * eps)
    return out


@pytest.mark.parametrize("tcr_on", ["rates", "states"])
@pytest.mark.parametrize("kind, settings", VARIANTS, ids=IDS)
def test_gradients_match_finite_differences(kind, settings, tcr_on):
    net, params, inputs, noise, x0 = build(kind, seed=3, **settings)
    # move every array off its special init (zero biases, zero diagonal, signs)
    rng = np.random.default_rng(7)
    for name in params:
        params[name] = params[name] + 0.1 * rng.standard_normal(params[name].shape)
    batch = fake_batch(rng, inputs)
    kw = dict(lambda_tcr=0.8, tcr_on=tcr_on, tcr_epoch="delay", noise=noise, x0=x0)
    ev = loss_and_grads(net, params, batch, **kw)
    assert ev.tcr_loss > 0 and ev.task_loss > 0

    def f(p):
        return loss_and_grads(net, p, batch, need_grads=False, **kw).loss

    assert f(params) == pytest.approx(ev.loss, rel=1e-14)
    assert set(ev.grads) == set(net.param_names)
    for name in net.param_names:
        g = ev.grads[name]
        assert g.shape == params[name].shape and g.dtype == np.float64
        fd = finite_difference(f, params, name)
        err = np.linalg.norm(g - fd) / max(np.linalg.norm(g) + np.linalg.norm(fd), 1e-12)
        assert err < 1e-5, f"{kind} {settings} d/d{name}: relative error {err:.2e}"


@pytest.mark.parametrize("kind", list_models())
def test_float32_gradients_close_to_float64(kind):
    results = []
    for dtype in ("float64", "float32"):
        net, params, inputs, noise, x0 = build(kind, dtype=dtype, seed=5)
        batch = fake_batch(np.random.default_rng(2), inputs)
        ev = loss_and_grads(net, params, batch, lambda_tcr=0.5, noise=noise, x0=x0)
        assert all(g.dtype == np.dtype(dtype) for g in ev.grads.values())
        results.append(ev)
    g64, g32 = results[0].grads, results[1].grads
    for name in g64:
        scale = max(np.abs(g64[name]).max(), 1e-3)
        np.testing.assert_allclose(g32[name], g64[name], atol=1e-4 * scale, rtol=1e-3)


def test_rank1_gradients_follow_the_effective_weights():
    """dL/dm, dL/dn, dL/dchi are the chain rule of the LFRNN's dL/dW."""
    net, params, inputs, noise, x0 = build("rank1", seed=4)
    lf = make_network("lfrnn", I, O, **{**SMALL, "g": net.g})
    lf_params = {"W": net.recurrent_weights(params), **{k: params[k] for k in ("W_in", "b", "W_out", "b_out")}}
    batch = fake_batch(np.random.default_rng(0), inputs)
    ev = loss_and_grads(net, params, batch, noise=noise, x0=x0)
    ev_lf = loss_and_grads(lf, lf_params, batch, noise=noise, x0=x0)
    assert ev.loss == pytest.approx(ev_lf.loss, rel=1e-13)
    dW = ev_lf.grads["W"]
    N = net.n_units
    np.testing.assert_allclose(ev.grads["m"], dW @ params["n"] / N, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(ev.grads["n"], dW.T @ params["m"] / N, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(ev.grads["chi"], net.g * dW, rtol=1e-10, atol=1e-14)


# -- model-specific facts ---------------------------------------------------------
def test_plrnn_init_is_bounded_and_rates_are_relu():
    net = make_network("plrnn", 3, 2, n_units=60)
    params = net.init_params(np.random.default_rng(0))
    assert np.all(np.diag(params["W"]) == 0)
    assert np.all((params["A"] >= 0.5) & (params["A"] <= 0.9))
    rng = np.random.default_rng(1)
    u = np.zeros((400, 4, 3))
    u[:50] = rng.standard_normal((50, 4, 3))
    traj = net.forward(params, u)
    assert np.all(np.isfinite(traj.states)) and np.abs(traj.states).max() < 100
    np.testing.assert_array_equal(traj.rates, np.maximum(traj.states, 0))


def test_lstm_forget_bias_and_gates():
    net = make_network("lstm", I, O, n_units=4, forget_bias=2.0)
    params = net.init_params(np.random.default_rng(0))
    H = 4
    np.testing.assert_array_equal(params["b"][H:2 * H], 2.0)
    np.testing.assert_array_equal(np.delete(params["b"], np.s_[H:2 * H]), 0.0)
    traj = net.forward(params, np.zeros((T, B, I)))
    gates = traj.extra["gates"]
    assert gates.shape == (T, B, 4 * H)
    np.testing.assert_allclose(traj.rates[1:], gates[..., 3 * H:] * np.tanh(traj.states[1:]))


def test_rank1_chi_is_fixed_by_default():
    net, params, inputs, noise, x0 = build("rank1")
    assert "chi" not in net.trainable and "chi" not in params.trainable
    chi = params["chi"].copy()
    ev = loss_and_grads(net, params, fake_batch(np.random.default_rng(0), inputs), noise=noise, x0=x0)
    Adam(lr=0.1).step(params, ev.grads)
    np.testing.assert_array_equal(params["chi"], chi)
    assert not np.array_equal(params["m"], build("rank1")[1]["m"])


# -- (c) bad input raises clear errors --------------------------------------------
@pytest.mark.parametrize("kind", list_models())
def test_wrong_input_shape(kind):
    net, params, inputs, _, _ = build(kind)
    with pytest.raises(ShapeError, match=r"inputs must have shape \(\?, \?, 2\), got \(6, 3, 3\)"):
        net.forward(params, np.zeros((T, B, I + 1)))
    with pytest.raises(ShapeError, match="inputs must have shape"):
        net.forward(params, np.zeros((T, I)))


@pytest.mark.parametrize("kind", list_models())
def test_nan_in_params(kind):
    net, params, inputs, _, _ = build(kind)
    params["W_out"][0, 0] = np.nan
    with pytest.raises(ShapeError, match=r"params\['W_out'\] contains 1 non-finite"):
        net.forward(params, inputs)


@pytest.mark.parametrize("kind", list_models())
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_in_any_param_is_named(kind, bad):
    """Models with ``forward_checks_finite`` (LFRNN, rank-one, LSTM) skip the
    separate scan in forward and count non-finite weights while packing
    them: every array must still be named, as for the others."""
    net, params, inputs, _, _ = build(kind)
    for name in net.param_names:
        broken = params.copy()
        broken[name].reshape(-1)[-1] = bad
        with pytest.raises(ShapeError, match=rf"params\['{name}'\] contains 1 non-finite"):
            net.forward(broken, inputs)


def test_finite_weights_that_overflow_in_the_kernel_are_refused():
    """A rank-one network's g chi + m n^T / N can overflow to inf from finite
    arrays; the kernel would then run on inf."""
    net, params, inputs, _, _ = build("rank1", g=2.0)
    params["chi"][0, 0] = 1e308
    with pytest.raises(ShapeError, match="rank1 params: the weights the kernel runs on overflow"), \
            pytest.warns(RuntimeWarning, match="overflow"):
        net.forward(params, inputs)


@pytest.mark.parametrize("kind", list_models())
def test_nan_in_inputs(kind):
    net, params, inputs, _, _ = build(kind)
    inputs[2, 1, 0] = np.inf
    with pytest.raises(ShapeError, match="inputs contains 1 non-finite"):
        net.forward(params, inputs)


@pytest.mark.parametrize("kind", list_models())
def test_missing_or_misshaped_params(kind):
    net, params, inputs, _, _ = build(kind)
    name = net.param_names[0]
    bad = dict(params)
    del bad[name]
    with pytest.raises(ShapeError, match=f"missing \\['{name}'\\]"):
        net.forward(bad, inputs)
    bad[name] = np.zeros(tuple(s + 1 for s in params[name].shape))
    with pytest.raises(ShapeError, match=f"params\\['{name}'\\] must have shape"):
        net.forward(bad, inputs)


@pytest.mark.parametrize("kind", list_models())
def test_wrong_noise_and_x0_shape(kind):
    net, params, inputs, noise, x0 = build(kind)
    with pytest.raises(ShapeError, match="noise must have shape"):
        net.forward(params, inputs, noise=noise[:-1])
    with pytest.raises(ShapeError, match="x0"):
        net.forward(params, inputs, x0=x0[:, :-1])


@pytest.mark.parametrize("kind", list_models())
@pytest.mark.parametrize("setting", ["tau", "dt"])
def test_negative_time_constants(kind, setting):
    with pytest.raises(ConfigError, match=f"{setting} must be positive"):
        make_network(kind, I, O, n_units=3, **{setting: -1.0})


@pytest.mark.parametrize("kind", list_models())
def test_negative_noise(kind):
    with pytest.raises(ConfigError, match="noise_std must be >= 0"):
        make_network(kind, I, O, n_units=3, noise_std=-0.1)


@pytest.mark.parametrize("kind", ["lfrnn", "rank1"])
def test_unknown_nonlinearity(kind):
    with pytest.raises(ConfigError, match="unknown nonlinearity 'elu'"):
        make_network(kind, I, O, n_units=3, nonlinearity="elu")


def test_unknown_readout():
    with pytest.raises(ConfigError, match="readout_from must be one of"):
        make_network("plrnn", I, O, n_units=3, readout_from="h")


@pytest.mark.parametrize("kind", list_models())
def test_unknown_setting(kind):
    with pytest.raises(ConfigError, match=f"unknown setting\\(s\\) for model '{kind}': 'n_unit' "
                                          r"\(did you mean 'n_units'\?\)"):
        make_network(kind, I, O, n_unit=4)


def test_settings_of_another_model_rejected():
    with pytest.raises(ConfigError, match="unknown setting.*'nonlinearity'"):
        make_network("plrnn", I, O, nonlinearity="tanh")
    with pytest.raises(ConfigError, match="unknown setting.*'dale'"):
        make_network("rank1", I, O, dale=0.8)


def test_unknown_model():
    with pytest.raises(UnknownNameError, match="unknown model 'lstn'; did you mean 'lstm'"):
        make_network("lstn", I, O, n_units=3)


@pytest.mark.parametrize("kind", list_models())
def test_trainable_must_name_parameters(kind):
    with pytest.raises(ConfigError, match=rf"{kind}: cannot train \['Q'\]"):
        make_network(kind, I, O, n_units=3, trainable=["b_out", "Q"])


# -- (d) constraints survive optimiser steps --------------------------------------
def adam_steps(net, params, n=3, lr=0.2, seed=0):
    rng = np.random.default_rng(seed)
    inputs = rng.standard_normal((T, B, I))
    batch = fake_batch(rng, inputs)
    opt = Adam(lr=lr)
    for _ in range(n):
        ev = loss_and_grads(net, params, batch, lambda_tcr=0.3)
        opt.step(params, ev.grads)
    return ev


def test_plrnn_diagonal_stays_zero():
    net = make_network("plrnn", I, O, n_units=6)
    params = net.init_params(np.random.default_rng(0))
    W0 = params["W"].copy()
    ev = adam_steps(net, params, lr=0.05)
    assert np.any(np.diag(ev.grads["W"]) != 0)  # the raw gradient wants to move it
    np.testing.assert_array_equal(np.diag(params["W"]), 0.0)
    assert not np.array_equal(params["W"], W0)


def test_lfrnn_dale_signs_kept():
    net = make_network("lfrnn", I, O, n_units=6, dale=0.5)
    params = net.init_params(np.random.default_rng(0))
    sign = params.constraints["W"].sign
    np.testing.assert_array_equal(sign[:, :3], 1)
    np.testing.assert_array_equal(sign[:, 3:], -1)
    assert np.all(sign * params["W"] >= 0)
    adam_steps(net, params, n=5, lr=0.5)
    assert np.all(sign * params["W"] >= 0)
    assert np.all(params["W"][:, :3] >= 0) and np.all(params["W"][:, 3:] <= 0)


def test_lfrnn_sparsity_zeros_kept():
    net = make_network("lfrnn", I, O, n_units=6, sparsity=0.5)
    params = net.init_params(np.random.default_rng(0))
    conn = params.constraints["W"].connectivity
    assert 0 < conn.sum() < conn.size
    np.testing.assert_array_equal(params["W"][~conn], 0.0)
    adam_steps(net, params)
    np.testing.assert_array_equal(params["W"][~conn], 0.0)
    assert np.all(params["W"][conn] != 0)


@pytest.mark.parametrize("kind", list_models())
def test_frozen_entries_kept(kind):
    net = make_network(kind, I, O, n_units=5)
    params = net.init_params(np.random.default_rng(0))
    frozen = np.random.default_rng(1).random(params["W_out"].shape) < 0.5
    params.constraints["W_out"] = Constraint(frozen=frozen)
    before = params["W_out"].copy()
    adam_steps(net, params)
    np.testing.assert_array_equal(params["W_out"][frozen], before[frozen])
    assert np.all(params["W_out"][~frozen] != before[~frozen])


@pytest.mark.parametrize("kind", list_models())
def test_untrainable_arrays_untouched(kind):
    net = make_network(kind, I, O, n_units=5, trainable=["W_out", "b_out"])
    params = net.init_params(np.random.default_rng(0))
    before = params.copy()
    adam_steps(net, params)
    for name in net.param_names:
        same = np.array_equal(params[name], before[name])
        assert same == (name not in ("W_out", "b_out")), name


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16, np.int32])
def test_count_non_finite(dtype):
    from bioplastic.validation import count_non_finite

    a = np.arange(24, dtype=dtype).reshape(2, 3, 4)
    assert count_non_finite(a) == 0
    if np.dtype(dtype).kind == "f":
        a[0, 1, 2], a[1, 2, 3], a[1, 0, 0] = np.nan, np.inf, -np.inf
        assert count_non_finite(a) == 3
        assert count_non_finite(a[:, :, ::2]) == 2  # strided view: a[0, 1, 2] and a[1, 0, 0]
