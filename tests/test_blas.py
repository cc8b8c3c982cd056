"""gemm_ (BLAS with alpha, beta, strides and transposes) against NumPy."""
import numpy as np
import pytest
from numba import njit

from bioplastic.machinery.blas import gemm, gemm_


@njit
def _gemm_in_numba(alpha, A, B, beta, C, ta, tb):
    gemm_(alpha, A, B, beta, C, ta, tb)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-4)])
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
def test_gemm_matches_numpy(dtype, tol, ta, tb):
    rng = np.random.default_rng(0)
    m, k, n = 5, 7, 4
    # rows of larger arrays: leading dimensions differ from the widths
    big_a = rng.standard_normal((3, 11, 13)).astype(dtype)
    big_b = rng.standard_normal((2, 9, 12)).astype(dtype)
    A = big_a[1, 1:1 + k, 2:2 + m] if ta else big_a[1, 1:1 + m, 2:2 + k]
    B = big_b[1, 0:n, 3:3 + k] if tb else big_b[1, 0:k, 3:3 + n]
    big_c = rng.standard_normal((8, 10)).astype(dtype)
    outside = big_c.copy()
    C = big_c[2:2 + m, 1:1 + n]
    want = 0.7 * ((A.T if ta else A) @ (B.T if tb else B)) + 1.5 * C
    _gemm_in_numba(0.7, A, B, 1.5, C, ta, tb)
    np.testing.assert_allclose(C, want, rtol=tol, atol=tol)
    outside[2:2 + m, 1:1 + n] = C
    np.testing.assert_array_equal(big_c, outside)  # nothing outside C was written


def test_gemm_beta_zero_ignores_old_values():
    A, B = np.ones((2, 3)), np.ones((3, 2))
    C = np.full((2, 2), np.nan)
    gemm(1.0, A, B, 0.0, C)
    np.testing.assert_array_equal(C, 3.0)


def test_gemm_writes_only_its_block():
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((4, 6, 5))
    before = xs.copy()
    gemm(1.0, np.ones((2, 3)), np.ones((3, 5)), 1.0, xs[2, 1:3])
    changed = np.argwhere(xs != before)
    assert {tuple(i[:2]) for i in changed} == {(2, 1), (2, 2)}


def test_gemm_empty_inner_dimension_scales_c():
    C = np.full((2, 3), 2.0)
    gemm(1.0, np.zeros((2, 0)), np.zeros((0, 3)), 0.5, C)
    np.testing.assert_array_equal(C, 1.0)


def test_gemm_rejects_bad_shapes_and_strides():
    with pytest.raises(ValueError, match="do not chain"):
        gemm(1.0, np.ones((2, 3)), np.ones((4, 2)), 0.0, np.ones((2, 2)))
    with pytest.raises(ValueError, match="adjacent columns"):
        gemm(1.0, np.ones((2, 6))[:, ::2], np.ones((3, 2)), 0.0, np.ones((2, 2)))
