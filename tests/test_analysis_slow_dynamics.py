"""Slow dynamics: autocorrelation timescales and ramping units inside an epoch mask."""
import numpy as np
import pytest

from bioplastic.analysis import autocorrelation, autocorrelation_timescales, ramping_units
from bioplastic.analysis.slow_dynamics import slow_dynamics_summary
from bioplastic.errors import ConfigError, ShapeError


def ar1(a, T, B, N, rng):
    r = np.zeros((T, B, N))
    for t in range(1, T):
        r[t] = a * r[t - 1] + rng.standard_normal((B, N))
    return r[100:]  # drop the start-up


@pytest.mark.parametrize("a", [0.5, 0.8, 0.95])
def test_ar1_timescale(a, rng):
    # rho(l) = a^l, so rho falls below 1/e at l = -1 / log(a) (interpolated linearly)
    r = ar1(a, 400, 300, 2, rng)
    tau = autocorrelation_timescales(r, np.ones(r.shape[:2], bool), dt=2.0, max_lag=100)
    exact = -1 / np.log(a)
    lo, hi = np.floor(exact), np.ceil(exact)
    lin = lo + (a ** lo - np.exp(-1)) / (a ** lo - a ** hi)  # interpolation of the exact rho
    np.testing.assert_allclose(tau, 2.0 * lin, rtol=0.08)
    rho = autocorrelation(r, np.ones(r.shape[:2], bool), max_lag=5)
    np.testing.assert_allclose(rho[:, 0], a ** np.arange(6), atol=0.03)


def test_mask_restricts_pairs_to_the_epoch(rng):
    # white noise inside the epoch, a constant (huge) outside: the outside must not leak in
    T, B = 60, 200
    r = np.full((T, B, 1), 50.0)
    mask = np.zeros((T, B), bool)
    mask[20:50] = True
    r[mask] = rng.standard_normal((mask.sum(), 1))
    tau = autocorrelation_timescales(r, mask)
    assert tau[0] < 1.0


def test_memory_units_are_censored_and_silent_units_nan(rng):
    T, B = 40, 50
    held = np.broadcast_to(rng.standard_normal((1, B, 1)), (T, B, 1))  # a value held per trial
    silent = np.zeros((T, B, 1))
    r = np.concatenate([held, silent, rng.standard_normal((T, B, 1))], axis=2)
    tau = autocorrelation_timescales(r, np.ones((T, B), bool))
    assert np.isinf(tau[0]) and np.isnan(tau[1]) and tau[2] < 1
    s = slow_dynamics_summary(r, np.ones((T, B), bool))
    assert s["fraction_censored"] == 0.5 and s["n_units"] == 3


def test_trajectory_rates_are_aligned(rng):
    # (T+1, B, N) trajectories use rates[1:], the activity after each step
    T, B = 30, 8
    traj = rng.standard_normal((T + 1, B, 2))
    mask = np.ones((T, B), bool)
    np.testing.assert_allclose(autocorrelation(traj, mask, 3), autocorrelation(traj[1:], mask, 3))


def test_ramping_fraction(rng):
    # 3 ramping units (up, down, different slopes) + 3 noisy flat units; the epoch
    # starts at a different step in each trial (aligned on its onset).
    T, B, N = 80, 40, 6
    mask = np.zeros((T, B), bool)
    start = rng.integers(10, 30, B)
    for b in range(B):
        mask[start[b]:start[b] + 40, b] = True
    pos = np.cumsum(mask, axis=0) - 1
    r = 0.05 * rng.standard_normal((T, B, N))
    for i, slope in enumerate([0.02, -0.01, 0.005]):
        r[:, :, i] += np.where(mask, slope * pos, 0.0)
    res = ramping_units(r, mask)
    assert res.is_ramping.tolist() == [True, True, True, False, False, False]
    assert res.fraction == 0.5
    np.testing.assert_allclose(res.slope[:3], [0.02, -0.01, 0.005], atol=2e-3)
    np.testing.assert_allclose(res.change[:3], np.array([0.02, -0.01, 0.005]) * 39, rtol=0.1)
    assert res.n_positions == 40


def test_empty_epoch_mask_is_a_clear_error(rng):
    r = rng.standard_normal((10, 4, 3))
    empty = np.zeros((10, 4), bool)
    with pytest.raises(ConfigError, match="epoch mask selects no time steps"):
        autocorrelation_timescales(r, empty)
    with pytest.raises(ConfigError, match="epoch mask selects no time steps"):
        ramping_units(r, empty)


def test_other_bad_input(rng):
    r = rng.standard_normal((10, 4, 3))
    with pytest.raises(ShapeError, match=r"disagree on \(T, B\)"):
        autocorrelation_timescales(r, np.ones((9, 5), bool))
    with pytest.raises(ShapeError, match="bool array"):
        autocorrelation_timescales(r, np.ones((10, 4)))
    with pytest.raises(ShapeError, match=r"shape \(T, B, N\)"):
        autocorrelation_timescales(r[0], np.ones((4, 3), bool))
    short = np.zeros((10, 4), bool)
    short[3:5] = True
    with pytest.raises(ConfigError, match="epoch too short for a ramp"):
        ramping_units(r, short)
    bad = r.copy()
    bad[2, 1, 0] = np.nan
    with pytest.raises(ShapeError, match="NaN or inf inside the epoch"):
        ramping_units(bad, np.ones((10, 4), bool))
