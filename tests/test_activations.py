"""The vectorised nonlinearities against NumPy."""
import numpy as np
import pytest

from bioplastic.kernels.activations import LN2_HI, LN2_LO, PHI_CODES, dphi_, phi_, tanh_constants, tanh_row_

GRID = np.concatenate([np.linspace(-25, 25, 100_001), np.geomspace(1e-300, 1e-3, 200),
                       -np.geomspace(1e-300, 1e-3, 200), [0.0, -0.0, 19.999, 20.0, 20.001, 1e30, -1e30]])


@pytest.mark.parametrize("dtype, bound", [(np.float64, 4e-16), (np.float32, 4e-7)])
def test_tanh_row_matches_numpy(dtype, bound):
    x = GRID.astype(dtype)
    out = np.empty_like(x)
    tanh_row_(x, out, tanh_constants(dtype))
    assert out.dtype == dtype
    err = np.abs(out.astype(np.float64) - np.tanh(x.astype(np.float64)))
    assert err.max() <= bound
    # odd, bounded, and exact at the saturation
    np.testing.assert_array_equal(out[x > 20], 1.0)
    np.testing.assert_array_equal(out[x < -20], -1.0)
    assert np.all(np.abs(out) <= 1.0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_tanh_row_non_finite(dtype):
    x = np.array([np.nan, np.inf, -np.inf, 0.5], dtype=dtype)
    out = np.empty_like(x)
    tanh_row_(x, out, tanh_constants(dtype))
    assert np.isnan(out[0])  # divergence stays visible downstream
    assert out[1] == 1.0 and out[2] == -1.0
    assert out[3] == pytest.approx(np.tanh(0.5), abs=1e-7)


def test_tanh_float32_constants_keep_their_dtype():
    c = tanh_constants(np.float32)
    assert c.dtype == np.float32 and c.shape == (12,)
    assert float(c[0]) == pytest.approx(7.90531110763549805)


def test_ln2_split_is_exact_for_every_exponent():
    # k * LN2_HI must be exact for every k the float64 tanh can produce (k <= 58)
    for k in range(59):
        assert k * LN2_HI + k * LN2_LO == pytest.approx(k * np.log(2), rel=1e-15, abs=1e-15)
        assert float(np.float64(k) * np.float64(LN2_HI)) == float(np.longdouble(k) * np.longdouble(LN2_HI))


def test_tanh_float64_relative_error_near_zero():
    # the expm1 form keeps tanh(v) ~ v to full precision for tiny v, where
    # (1 - e) / (1 + e) would lose all relative accuracy
    x = np.concatenate([np.geomspace(1e-300, 1.0, 2000), -np.geomspace(1e-300, 1.0, 2000)])
    out = np.empty_like(x)
    tanh_row_(x, out, tanh_constants(np.float64))
    rel = np.abs(out - np.tanh(x)) / np.abs(np.tanh(x))
    assert rel.max() <= 1e-15
    assert np.signbit(out[x < 0]).all()
    zeros = np.array([0.0, -0.0])
    tanh_row_(zeros, out[:2], tanh_constants(np.float64))
    assert out[0] == 0.0 and not np.signbit(out[0]) and np.signbit(out[1])


NUMPY_PHI = {
    "tanh": (np.tanh, lambda x: 1 - np.tanh(x) ** 2),
    "relu": (lambda x: np.maximum(x, 0), lambda x: (x > 0).astype(float)),
    "softplus": (lambda x: np.logaddexp(0, x), lambda x: 1 / (1 + np.exp(-x))),
    "sigmoid": (lambda x: 1 / (1 + np.exp(-x)), lambda x: np.exp(-x) / (1 + np.exp(-x)) ** 2),
}


@pytest.mark.parametrize("name", list(PHI_CODES))
def test_phi_and_derivative_2d(name):
    x = np.random.default_rng(0).standard_normal((7, 33)) * 4
    r, d = np.empty_like(x), np.empty_like(x)
    phi_(x, r, PHI_CODES[name])
    dphi_(x, r, d, PHI_CODES[name])
    f, df = NUMPY_PHI[name]
    np.testing.assert_allclose(r, f(x), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(d, df(x), rtol=1e-12, atol=1e-15)
