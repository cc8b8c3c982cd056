"""GR events: matching of fixed points, the OSPA geometry distance, event flags."""
import numpy as np
import pytest

from bioplastic.analysis import FixedPoints, gr_events, match_fixed_points, state_spread
from bioplastic.errors import ConfigError


def points(xy, stable=None):
    """FixedPoints at the rows of ``xy``; stable (|lambda| = 0.5) or saddle (1.5, 0.5)."""
    xy = np.asarray(xy, dtype=float).reshape(-1, 2)
    stable = np.ones(len(xy), bool) if stable is None else np.asarray(stable, bool)
    eig = np.where(stable[:, None], [[0.5, 0.5]], [[1.5, 0.5]]).astype(complex)
    return FixedPoints(xy, np.zeros(len(xy)), eig, np.ones(len(xy), bool))


def test_distance_is_zero_for_identical_sets_and_one_for_disjoint():
    P = points([[0, 0], [1, 0]])
    assert match_fixed_points(P, P, 1.0)[2] == 0
    far = points([[10, 10], [20, 20]])
    assert match_fixed_points(P, far, 1.0)[2] == pytest.approx(1.0)
    assert match_fixed_points(points([]), points([]), 1.0)[2] == 0
    assert match_fixed_points(P, points([]), 1.0)[2] == 1.0


def test_distance_of_a_small_shift_and_of_a_new_point():
    P = points([[0, 0], [1, 0]])
    moved = points([[0, 0.1], [1, 0]])
    pairs, cost, d = match_fixed_points(P, moved, 1.0)
    assert d == pytest.approx(0.1 / 2)
    assert sorted(map(tuple, pairs)) == [(0, 0), (1, 1)]
    np.testing.assert_allclose(sorted(cost), [0, 0.1])
    # the same shift in units of a larger state spread is smaller
    assert match_fixed_points(P, moved, 2.0)[2] == pytest.approx(0.1 / 2 / 2)
    # one extra point costs the cut-off (1) over max(m, n) = 3
    extra = points([[0, 0], [1, 0], [5, 5]])
    assert match_fixed_points(P, extra, 1.0)[2] == pytest.approx(1 / 3)


def test_a_change_of_stability_counts_as_unmatched():
    P = points([[0, 0]], stable=[True])
    Q = points([[0, 0]], stable=[False])
    pairs, _, d = match_fixed_points(P, Q, 1.0)
    assert d == 1.0 and len(pairs) == 0


def test_distance_is_symmetric_and_obeys_the_triangle_inequality(rng):
    sizes = rng.integers(0, 5, size=6)
    sets = [points(rng.standard_normal((n, 2)), rng.random(n) < 0.5) for n in sizes]
    for A in sets:
        for B in sets:
            dab = match_fixed_points(A, B, 1.0)[2]
            assert dab == pytest.approx(match_fixed_points(B, A, 1.0)[2])
            for C in sets:
                assert dab <= match_fixed_points(A, C, 1.0)[2] + match_fixed_points(C, B, 1.0)[2] + 1e-12


def test_events_at_a_count_change_and_at_a_jump(rng):
    # 10 checkpoints: one stable point jittering; a second stable point appears at
    # iteration 400; at 700 both jump far away (same count).
    fps = {}
    for i, k in enumerate(range(0, 1000, 100)):
        base = [[0, 0]] if k < 400 else [[0, 0], [3, 0]]
        xy = np.array(base, float) + 0.01 * rng.standard_normal((len(base), 2))
        if k >= 700:
            xy += [0, 5]
        fps[k] = points(xy)
    ev = gr_events(fps, 1.0)
    assert ev.events.tolist() == [400, 700]
    assert "stable fixed points 1 -> 2" in ev.reasons[4]
    assert "geometry distance" in ev.reasons[7]
    assert ev.n_stable.tolist() == [1] * 4 + [2] * 6
    assert np.isnan(ev.distance[0]) and ev.distance[1] < 0.05


def test_a_one_checkpoint_flicker_is_not_an_event_unless_persist_is_1(rng):
    counts = [1, 1, 2, 1, 1, 2, 2, 2, 3]  # flicker at 20; lasting change at 50; change into the last
    fps = {10 * i: points(np.array([[3.0 * j, 0] for j in range(n)])) for i, n in enumerate(counts)}
    assert gr_events(fps, 1.0).events.tolist() == [50, 80]
    assert gr_events(fps, 1.0, persist=1).events.tolist() == [20, 30, 50, 80]
    with pytest.raises(ConfigError, match="persist must be a positive integer"):
        gr_events(fps, 1.0, persist=0)


def test_no_events_in_a_quiet_run(rng):
    fps = {k: points(np.array([[0, 0], [2, 0]]) + 0.01 * rng.standard_normal((2, 2))) for k in range(0, 500, 50)}
    ev = gr_events(fps, {k: 1.0 for k in fps})
    assert ev.events.size == 0
    assert ev.threshold >= 0.2


def test_slow_points_do_not_count():
    P = points([[0, 0], [5, 5]])
    P.is_fixed = np.array([True, False])
    Q = points([[0, 0]])
    assert match_fixed_points(P, Q, 1.0)[2] == 0
    assert gr_events({0: P, 10: Q}, 1.0).events.size == 0


def test_errors():
    with pytest.raises(ConfigError, match="need at least 2, got 1"):
        gr_events({0: points([[0, 0]])}, 1.0)
    with pytest.raises(ConfigError, match="scales must be positive"):
        gr_events({0: points([[0, 0]]), 1: points([[0, 0]])}, 0.0)
    with pytest.raises(ConfigError, match="scale must be positive"):
        match_fixed_points(points([[0, 0]]), points([[0, 0]]), -1)


def test_state_spread():
    X = np.random.default_rng(0).standard_normal((10000, 3)) * [1, 2, 2]
    assert state_spread(X) == pytest.approx(3.0, rel=0.03)
    assert state_spread(np.ones((5, 3))) == 1.0
