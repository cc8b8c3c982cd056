"""The fused small-dimension products of the LFRNN kernels against NumPy."""
import numpy as np
import pytest

from bioplastic.machinery.small import combine_rows_, readout_rows_

TOL = {np.float64: 1e-12, np.float32: 2e-5}


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("K", [1, 2, 3, 4, 5, 8, 9])
def test_combine_rows(dtype, K):
    rng = np.random.default_rng(K)
    rows, N = 6, 37
    base = rng.standard_normal((rows, N)).astype(dtype)
    coef = rng.standard_normal((rows, K)).astype(dtype)
    M = rng.standard_normal((K, N)).astype(dtype)
    out = np.full((rows, N), np.nan, dtype=dtype)
    combine_rows_(out, base, dtype(0.8), coef, M, dtype(0.3))
    want = 0.8 * base + 0.3 * coef.astype(np.float64) @ M
    np.testing.assert_allclose(out, want, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("K", [1, 2, 3, 4, 5, 8, 9])
def test_combine_rows_with_implicit_bias_row(dtype, K):
    """coef with one column fewer than M has rows: M's last row is added with
    coefficient 1 (the forward kernel passes u and [W_in^T; b] this way)."""
    rng = np.random.default_rng(10 + K)
    rows, N = 5, 33
    base = rng.standard_normal((rows, N)).astype(dtype)
    coef = rng.standard_normal((rows, K - 1)).astype(dtype)
    M = rng.standard_normal((K, N)).astype(dtype)
    out = np.full((rows, N), np.nan, dtype=dtype)
    combine_rows_(out, base, dtype(0.8), coef, M, dtype(0.3))
    want = 0.8 * base + 0.3 * (coef.astype(np.float64) @ M[:-1] + M[-1])
    np.testing.assert_allclose(out, want, rtol=TOL[dtype], atol=TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("O", [1, 2, 3, 4, 7])
def test_readout_rows(dtype, O):
    rng = np.random.default_rng(O)
    rows, N = 5, 101
    r = rng.standard_normal((rows, N)).astype(dtype)
    W_out = rng.standard_normal((O, N)).astype(dtype)
    b_out = rng.standard_normal(O).astype(dtype)
    y = np.empty((rows, O), dtype=dtype)
    readout_rows_(y, r, W_out, b_out)
    np.testing.assert_allclose(y, r.astype(np.float64) @ W_out.T + b_out, rtol=10 * TOL[dtype], atol=10 * TOL[dtype])


def test_rows_of_larger_arrays():
    """The kernels pass row blocks xs[t, b0:b1]: only those rows change."""
    rng = np.random.default_rng(0)
    xs = rng.standard_normal((3, 8, 10))
    before = xs.copy()
    coef, M = rng.standard_normal((3, 2)), rng.standard_normal((2, 10))
    combine_rows_(xs[1, 2:5], xs[0, 2:5], 0.5, coef, M, 1.0)
    np.testing.assert_allclose(xs[1, 2:5], 0.5 * before[0, 2:5] + coef @ M, rtol=1e-13)
    mask = np.ones_like(xs, dtype=bool)
    mask[1, 2:5] = False
    np.testing.assert_array_equal(xs[mask], before[mask])


@pytest.mark.parametrize("I", [0, 1, 2, 3, 4, 6])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_drive_inputs_append_a_column_of_ones(I, dtype):
    from bioplastic.kernels.lfrnn import drive_inputs, forward_weights

    rng = np.random.default_rng(I)
    u = rng.standard_normal((5, 4, I))
    v = drive_inputs(u, dtype)
    assert v.shape == (5, 4, I + 1) and v.dtype == dtype
    np.testing.assert_array_equal(v[..., :I], u.astype(dtype))
    np.testing.assert_array_equal(v[..., I], 1)
    W_in, b = rng.standard_normal((7, I)).astype(dtype), rng.standard_normal(7).astype(dtype)
    _, V = forward_weights(np.zeros((7, 7), dtype), W_in, b)
    np.testing.assert_allclose(v @ V, u @ W_in.T + b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("N,I", [(1, 1), (17, 3), (40, 2), (100, 3)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_forward_weights_are_the_transpose_and_stacked_drive(N, I, dtype):
    from bioplastic.kernels.lfrnn import forward_weights

    rng = np.random.default_rng(N + I)
    W = rng.standard_normal((N, N)).astype(dtype)
    W_in = rng.standard_normal((N, I)).astype(dtype)
    b = rng.standard_normal(N).astype(dtype)
    WT, V = forward_weights(W, W_in, b)
    assert WT.flags.c_contiguous and V.flags.c_contiguous and WT.dtype == V.dtype == dtype
    np.testing.assert_array_equal(WT, W.T)
    np.testing.assert_array_equal(V, np.vstack([W_in.T, b]))


def test_forward_weights_of_a_rectangular_matrix():
    from bioplastic.kernels.lfrnn import forward_weights

    rng = np.random.default_rng(1)
    W, W_in, b = rng.standard_normal((40, 10)), rng.standard_normal((40, 3)), rng.standard_normal(40)
    WT, V = forward_weights(W, W_in, b)
    np.testing.assert_array_equal(WT, W.T)
    np.testing.assert_array_equal(V, np.vstack([W_in.T, b]))
