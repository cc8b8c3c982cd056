"""The vectorised Gaussian sampler (SplitMix64 + Box-Muller) against NumPy."""
import numpy as np
import pytest
from scipy import stats

from bioplastic.machinery.gaussian import GAMMA, cos_sin_turn_, fill_standard_normal_, log_unit_

MASK = (1 << 64) - 1


def _splitmix_reference(key: int, count: int) -> np.ndarray:
    """SplitMix64 draws 1..count of the stream ``key``, in Python integers."""
    out = []
    for i in range(1, count + 1):
        z = (key + i * int(GAMMA)) & MASK
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        out.append(z ^ (z >> 31))
    return np.array(out, dtype=np.uint64)


def _reference_normals(key: int, n: int) -> np.ndarray:
    """The sampler's output, with NumPy's log, cos and sin."""
    h = (n + 1) // 2
    z = _splitmix_reference(key, 2 * h)
    u1 = ((z[0::2] >> np.uint64(11)) + np.uint64(1)).astype(np.float64) * 2.0 ** -53
    u2 = (z[1::2] >> np.uint64(11)).astype(np.float64) * 2.0 ** -53
    r = np.sqrt(-2.0 * np.log(u1))
    return np.concatenate([r * np.cos(2 * np.pi * u2), (r * np.sin(2 * np.pi * u2))[: n - h]])


@pytest.mark.parametrize("n", [1, 2, 7, 64, 1001])
@pytest.mark.parametrize("key", [0, 12345, 2 ** 63 + 17])
def test_matches_a_numpy_reference(n, key):
    out = np.empty(n)
    fill_standard_normal_(np.uint64(key), out)
    np.testing.assert_allclose(out, _reference_normals(key, n), rtol=1e-13, atol=1e-14)


def test_float32_output_is_the_float64_draws_rounded():
    a, b = np.empty(999), np.empty(999, dtype=np.float32)
    fill_standard_normal_(np.uint64(3), a)
    fill_standard_normal_(np.uint64(3), b)
    np.testing.assert_array_equal(b, a.astype(np.float32))


def test_log_polynomial_is_accurate_on_the_unit_interval():
    u = np.concatenate([np.linspace(2.0 ** -53, 1, 200_001), np.geomspace(2.0 ** -53, 1, 20_001)])
    got = np.empty_like(u)
    log_unit_(u, got)
    ref = np.log(u)
    assert got[-1] == 0.0  # ln 1
    rel = np.abs(got - ref) / np.maximum(np.abs(ref), 1e-300)
    assert np.max(rel[ref != 0]) < 1e-15


def test_cos_sin_polynomials_are_accurate_on_a_turn():
    u = np.concatenate([np.linspace(0, 1, 400_001, endpoint=False), [0.125, 0.25, 0.375, 0.5, 0.875]])
    c, s = np.empty_like(u), np.empty_like(u)
    cos_sin_turn_(u, c, s)
    assert np.max(np.abs(c - np.cos(2 * np.pi * u))) < 2e-15
    assert np.max(np.abs(s - np.sin(2 * np.pi * u))) < 2e-15
    assert c[0] == 1.0 and s[0] == 0.0


def test_draws_are_standard_normal():
    n = 2_000_000
    x = np.empty(n)
    fill_standard_normal_(np.uint64(20261202), x)
    se = 1 / np.sqrt(n)
    assert abs(x.mean()) < 5 * se
    assert abs(x.var() - 1) < 5 * np.sqrt(2) * se
    assert abs(stats.skew(x)) < 5 * np.sqrt(6) * se
    assert abs(stats.kurtosis(x)) < 5 * np.sqrt(24) * se
    assert stats.kstest(x, "norm").pvalue > 1e-3
    tail = np.mean(np.abs(x) > 3)  # 0.0027 for a standard normal
    assert abs(tail - 0.0026998) < 5 * np.sqrt(0.0027 / n)


def test_draws_are_uncorrelated():
    n = 1_000_000
    x, y = np.empty(n), np.empty(n)
    fill_standard_normal_(np.uint64(1), x)
    fill_standard_normal_(np.uint64(2), y)
    h = n // 2
    bound = 5 / np.sqrt(h)
    assert abs(np.corrcoef(x[:-1], x[1:])[0, 1]) < bound      # neighbours in a stream
    assert abs(np.corrcoef(x[:h], x[h:])[0, 1]) < bound        # cosine and sine of the same pair
    assert abs(np.corrcoef(x[:h] ** 2, x[h:] ** 2)[0, 1]) < bound
    assert abs(np.corrcoef(x, y)[0, 1]) < 5 / np.sqrt(n)      # two keys


def test_same_key_same_draws_and_keys_differ():
    a, b, c = np.empty(100), np.empty(100), np.empty(100)
    fill_standard_normal_(np.uint64(9), a)
    fill_standard_normal_(np.uint64(9), b)
    fill_standard_normal_(np.uint64(10), c)
    np.testing.assert_array_equal(a, b)
    assert not np.any(a == c)
