"""The vectorised nonlinearities against NumPy."""
import numpy as np
import pytest

from bioplastic.kernels.activations import PHI_CODES, dphi_, phi_, tanh_constants, tanh_row_

GRID = np.concatenate([np.linspace(-25, 25, 100_001), np.geomspace(1e-300, 1e-3, 200),
                       -np.geomspace(1e-300, 1e-3, 200), [0.0, -0.0, 19.999, 20.0, 20.001, 1e30, -1e30]])


@pytest.mark.parametrize("dtype, bound", [(np.float64, 3e-16), (np.float32, 4e-7)])
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


def test_tanh_constants_are_exact_where_it_matters():
    for dtype in (np.float64, np.float32):
        c = tanh_constants(dtype)
        assert c.dtype == dtype and c.shape == (48,)
        # ln2 hi has few enough bits that k * hi is exact for k <= 58
        hi = float(c[2])
        for k in range(59):
            assert float(dtype(k) * dtype(hi)) == k * hi
        np.testing.assert_array_equal(c[26:32], [2.0 ** -e for e in (1, 2, 4, 8, 16, 32)])


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
