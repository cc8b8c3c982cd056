"""Shift null for "GR events precede the drop" on synthetic event trains with known p-values."""
import itertools
import json
from fractions import Fraction

import numpy as np
import pytest

from bioplastic.analysis.abrupt import AbruptLearning, gr_lead_time
from bioplastic.analysis.gr_null import (GRRun, gr_precedence_test, null_lead_distribution, poisson_binomial_pmf,
                                         poisson_binomial_sf, preceded_probability, run_statistics, shift_outcomes,
                                         weighted_quantile)
from bioplastic.errors import ConfigError, ShapeError


# -- slow, obviously-correct references ---------------------------------------------
def brute_shifts(run):
    """Per shift s: (preceded, lead), by moving each event j to ((j - 1 + s) mod C') + 1 in a Python loop."""
    ck = [int(c) for c in run.checkpoints]
    mask = [bool(m) for m in run.is_event]
    C = len(ck)
    n = C - 1
    out = []
    for s in range(n):
        moved = [False] * C
        for j in range(1, C):
            if mask[j]:
                moved[((j - 1 + s) % n) + 1] = True
        inside = [ck[j] for j in range(1, C) if moved[j] and run.plateau_start <= ck[j] <= run.drop_iteration]
        out.append((bool(inside), run.drop_iteration - max(inside) if inside else None))
    return out


def brute_tail(runs, k):
    """P(K >= k) as a Fraction, enumerating every joint shift of the runs."""
    tables = [[pre for pre, _ in brute_shifts(r)] for r in runs]
    hits = total = 0
    for combo in itertools.product(*tables):
        total += 1
        hits += sum(combo) >= k
    return Fraction(hits, total)


def make_run(n_transitions, event_positions, window_positions, *, step=10, label=""):
    """Checkpoints 0, step, ..., n*step; events at transitions j (1-based); window spanning the
    transitions ``window_positions = (first, last)`` (1-based, inclusive)."""
    ck = np.arange(n_transitions + 1) * step
    mask = np.zeros(n_transitions + 1, dtype=bool)
    mask[list(event_positions)] = True
    first, last = window_positions
    return GRRun(ck, mask, ck[first] - step / 2, ck[last] + step / 4, label)


def random_run(rng, n_transitions, n_events):
    ck = np.cumsum(rng.integers(1, 30, size=n_transitions + 1))
    mask = np.zeros(n_transitions + 1, dtype=bool)
    mask[1 + rng.choice(n_transitions, size=n_events, replace=False)] = True
    a, d = np.sort(rng.uniform(ck[0], ck[-1], size=2))
    return GRRun(ck, mask, a, d)


# -- one run -------------------------------------------------------------------------
@pytest.mark.parametrize("n", [10, 17])
@pytest.mark.parametrize("w", [1, 3, 5])
def test_one_event_window_of_w_transitions_has_p_w_over_n(n, w):
    run = make_run(n, [3], (2, 1 + w))  # window: transitions 2..w+1; the event at 3 is inside for w >= 2
    assert int(run.window_mask.sum()) == w
    assert preceded_probability(run) == w / n
    res = gr_precedence_test([run])
    assert res.runs[0]["p_preceded"] == w / n
    assert res.expected_preceded == w / n
    if w >= 2:
        assert res.k_preceded == 1
        assert res.p_value == pytest.approx(w / n, rel=1e-15)
    else:  # window = transition 2 only, event at 3: not preceded, the tail P(K >= 0) is 1
        assert res.k_preceded == 0
        assert res.p_value == 1.0


def test_shift_outcomes_match_a_python_loop_over_shifts():
    rng = np.random.default_rng(3)
    for n, m in [(1, 1), (2, 1), (5, 2), (9, 4), (12, 12), (30, 3)]:
        run = random_run(rng, n, m)
        pre, lead = shift_outcomes(run)
        ref = brute_shifts(run)
        assert pre.tolist() == [p for p, _ in ref]
        assert [None if np.isnan(x) else x for x in lead] == [x for _, x in ref]
        assert preceded_probability(run) == sum(p for p, _ in ref) / n


def test_run_statistics_agree_with_gr_lead_time():
    rng = np.random.default_rng(4)
    for _ in range(20):
        run = random_run(rng, 15, 3)
        ab = AbruptLearning(True, "", plateau_start=run.plateau_start, plateau_end=run.drop_iteration,
                            drop_iteration=run.drop_iteration)
        ref = gr_lead_time(run.checkpoints[run.is_event], ab)
        got = run_statistics(run)
        assert got["preceded"] == ref["preceded"]
        assert got["lead"] == ref["lead"]
        assert got["n_events_window"] == ref["n_events_search"]


def test_events_on_every_transition_always_precede_and_no_events_never():
    full = make_run(8, range(1, 9), (3, 4))
    assert preceded_probability(full) == 1.0
    none = make_run(8, [], (3, 4))
    assert preceded_probability(none) == 0.0
    res = gr_precedence_test([full, none])
    assert [r["p_preceded"] for r in res.runs] == [1.0, 0.0]
    assert [r["preceded"] for r in res.runs] == [True, False]
    assert res.runs[1]["lead"] is None and res.runs[1]["null_lead_median"] is None
    assert res.k_preceded == 1 and res.p_value == 1.0  # K = 1 under every shift
    assert res.null_count_pmf == [0.0, 1.0, 0.0]
    # a window that holds no transition can never be hit
    empty = GRRun([0, 10, 20, 30], [False, True, True, True], 11, 19)
    assert preceded_probability(empty) == 0.0


# -- several runs: Poisson-binomial ----------------------------------------------------
def test_poisson_binomial_by_hand():
    assert poisson_binomial_pmf([0.5, 0.25]).tolist() == [0.375, 0.5, 0.125]
    assert poisson_binomial_sf([0.5, 0.25], 0) == 1.0
    assert poisson_binomial_sf([0.5, 0.25], 1) == pytest.approx(0.625, rel=1e-15)
    assert poisson_binomial_sf([0.5, 0.25], 2) == pytest.approx(0.125, rel=1e-15)
    assert poisson_binomial_sf([0.5, 0.25], 3) == 0.0
    # equal probabilities: the binomial
    from math import comb
    pmf = poisson_binomial_pmf([0.3] * 12)
    assert pmf == pytest.approx([comb(12, k) * 0.3 ** k * 0.7 ** (12 - k) for k in range(13)], rel=1e-12)
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        poisson_binomial_pmf([0.2, 1.5])


def test_exact_p_equals_enumeration_of_all_joint_shifts():
    rng = np.random.default_rng(5)
    for trial in range(6):
        runs = [random_run(rng, n, m) for n, m in [(4, 1), (5, 2), (6, 2)]]
        probs = [preceded_probability(r) for r in runs]
        for k in range(4):
            assert poisson_binomial_sf(probs, k) == pytest.approx(float(brute_tail(runs, k)), rel=1e-12, abs=1e-15)
        res = gr_precedence_test(runs)
        assert res.p_value == pytest.approx(float(brute_tail(runs, res.k_preceded)), rel=1e-12, abs=1e-15)
        assert sum(res.null_count_pmf) == pytest.approx(1.0, rel=1e-12)


def test_known_three_run_tail():
    # p = 2/4, 1/5, 3/6; all three preceded: P(K >= 3) = 1/2 * 1/5 * 1/2 = 1/20
    runs = [make_run(4, [2], (2, 3)), make_run(5, [4], (4, 4)), make_run(6, [1], (1, 3))]
    assert [preceded_probability(r) for r in runs] == [0.5, 0.2, 0.5]
    res = gr_precedence_test(runs)
    assert res.k_preceded == 3
    assert res.p_value == pytest.approx(0.05, rel=1e-14)
    assert res.expected_preceded == pytest.approx(1.2)
    assert float(brute_tail(runs, 3)) == res.p_value


def test_monte_carlo_agrees_with_exact_p_and_is_seeded():
    rng = np.random.default_rng(6)
    runs = [random_run(rng, int(rng.integers(5, 40)), int(rng.integers(1, 4))) for _ in range(12)]
    n_mc = 20000
    res = gr_precedence_test(runs, n_mc=n_mc, seed=11)
    assert 0.01 < res.p_value < 0.99  # a non-trivial tail, so the check means something
    se = np.sqrt(res.p_value * (1 - res.p_value) / n_mc)
    assert abs(res.p_value_mc - res.p_value) <= 4 * se
    assert res.p_value_mc_se == pytest.approx(np.sqrt(res.p_value_mc * (1 - res.p_value_mc) / n_mc))
    again = gr_precedence_test(runs, n_mc=n_mc, seed=11)
    assert again.p_value_mc == res.p_value_mc and again.median_lead_ci == res.median_lead_ci
    assert gr_precedence_test(runs).p_value_mc is None


def test_events_just_before_the_drop_in_20_runs_are_significant():
    runs = []
    for i in range(20):  # checkpoints every 10 up to 1000; window [200, 600]: 41 of 100 transitions
        ck = np.arange(0, 1001, 10)
        mask = np.isin(ck, [590, 850] if i % 2 else [580])
        runs.append(GRRun(ck, mask, 200.0, 600.0, f"seed {i}"))
    res = gr_precedence_test(runs, n_mc=2000)
    assert res.k_preceded == 20
    assert res.p_value < 0.01
    assert res.p_value_mc == 0.0
    assert res.median_lead == pytest.approx(15.0)  # leads 10 (ten runs) and 20 (ten runs)
    lo, hi = res.median_lead_ci
    assert 10.0 <= lo <= 15.0 <= hi <= 20.0
    q = res.null_lead_quantiles
    assert q["q05"] <= q["q50"] <= q["q95"] and q["q50"] > res.median_lead  # chance leads are longer


def test_events_after_the_drop_give_p_one():
    ck = np.arange(0, 1001, 10)
    runs = [GRRun(ck, np.isin(ck, [700, 900]), 200.0, 600.0) for _ in range(20)]
    res = gr_precedence_test(runs, n_mc=500)
    assert res.k_preceded == 0
    assert res.p_value == 1.0 and res.p_value_mc == 1.0
    assert res.median_lead is None and res.median_lead_ci == (None, None)
    assert res.expected_preceded > 10  # chance alone would have preceded most runs


# -- null distribution of the lead ---------------------------------------------------
def test_null_leads_for_one_event():
    run = make_run(10, [7], (5, 7))  # checkpoints 0..100, window [45, 72.5]: transitions 50, 60, 70
    v, w = null_lead_distribution([run])
    assert sorted(v.tolist()) == [2.5, 12.5, 22.5]
    assert w.tolist() == [1 / 3] * 3
    res = gr_precedence_test([run])
    assert res.null_lead_quantiles == {"q05": 2.5, "q50": 12.5, "q95": 22.5}
    assert res.runs[0]["lead"] == 2.5 and res.runs[0]["null_lead_median"] == 12.5


def test_null_leads_weigh_each_run_equally():
    a = make_run(10, [1], (5, 7))  # 3 preceded shifts of 10: leads 2.5, 12.5, 22.5, weight 1/10 each
    b = GRRun(np.arange(6) * 10, [False, True, False, False, False, False], 35, 45)  # 1 of 5: lead 5
    v, w = null_lead_distribution([a, b])
    got = {float(x): float(y) for x, y in zip(v, w)}
    assert got == pytest.approx({2.5: 0.2, 12.5: 0.2, 22.5: 0.2, 5.0: 0.4})
    assert weighted_quantile(v, w, 0.5) == 5.0
    assert weighted_quantile(v, w, 0.7) == 12.5
    assert np.isnan(weighted_quantile([], [], 0.5))


def test_result_is_json_friendly():
    rng = np.random.default_rng(7)
    runs = [random_run(rng, 20, 2) for _ in range(5)]
    d = gr_precedence_test(runs, n_mc=100).as_dict()
    back = json.loads(json.dumps(d))
    for key in ("n_runs", "k_preceded", "expected_preceded", "p_value", "p_value_mc", "median_lead",
                "median_lead_ci", "null_lead_quantiles", "runs"):
        assert key in back
    assert len(back["runs"]) == 5 and set(back["null_lead_quantiles"]) == {"q05", "q50", "q95"}
    assert {"label", "preceded", "lead", "p_preceded"} <= set(back["runs"][0])


# -- construction from stored analyses and errors --------------------------------------
def summary(detected=True, events=(20, 40)):
    return {"run_file": "runs/seed3.h5", "seed": 3, "checkpoints": [0, 10, 20, 30, 40, 50],
            "gr_events": list(events),
            "abrupt": {"detected": detected, "plateau_start": 15.0 if detected else None,
                       "drop_iteration": 42.0 if detected else None}}


def test_from_summary():
    run = GRRun.from_summary(summary())
    assert run.is_event.tolist() == [False, False, True, False, True, False]
    assert (run.plateau_start, run.drop_iteration, run.label) == (15.0, 42.0, "runs/seed3.h5")
    assert run_statistics(run) == {"preceded": True, "lead": 2.0, "n_events": 2, "n_events_window": 2}
    assert GRRun.from_summary(summary(), label="x").label == "x"


def test_from_summary_rejects_bad_runs():
    with pytest.raises(ConfigError, match="no detected drop"):
        GRRun.from_summary(summary(detected=False))
    with pytest.raises(ConfigError, match=r"events at iterations \[25\] are not checkpoints"):
        GRRun.from_summary(summary(events=(20, 25)))
    s = summary()
    del s["gr_events"]
    with pytest.raises(ConfigError, match="lacks 'gr_events'"):
        GRRun.from_summary(s)


@pytest.mark.parametrize("args, err, match", [
    (([0, 10, 20], [False, True], 0, 20), ShapeError, "event mask has 2 entries but there are 3 checkpoints"),
    (([0, 20, 10], [False, True, False], 0, 20), ConfigError, "strictly increasing: 20 is followed by 10"),
    (([0, 10, 10], [False, True, False], 0, 20), ConfigError, "strictly increasing"),
    (([0, 10, 20], [False, True, False], 15, 5), ConfigError, "plateau_start 15.0 > drop_iteration 5.0"),
    (([0, 10, 20], [True, False, False], 0, 20), ConfigError, "checkpoint 0 cannot be a GR event"),
    (([0], [False], 0, 20), ShapeError, "at least 2 checkpoints"),
    (([[0, 10]], [[False, True]], 0, 20), ShapeError, "must be 1-D"),
    (([0, 10.5, 20], [False, True, False], 0, 20), ConfigError, "whole numbers"),
    (([0, 10, 20], [0.0, 0.5, 1.0], 0, 20), ConfigError, "boolean mask"),
    (([0, 10, 20], [False, True, False], 0, np.nan), ConfigError, "must be finite"),
])
def test_bad_runs_raise(args, err, match):
    with pytest.raises(err, match=match):
        GRRun(*args)


def test_bad_test_arguments():
    with pytest.raises(ConfigError, match="at least one run"):
        gr_precedence_test([])
    with pytest.raises(ConfigError, match=r"runs\[0\] is a dict, expected GRRun"):
        gr_precedence_test([summary()])
    with pytest.raises(ConfigError, match="n_mc"):
        gr_precedence_test([make_run(4, [1], (1, 2))], n_mc=-1)


# -- figure ------------------------------------------------------------------------------
def test_lead_times_figure_with_chance_band(tmp_path):
    import matplotlib.image as mpimg

    from bioplastic.plotting import lead_times

    groups = {"PLRNN, flipflop": {"leads": [10, 20, 35], "n_not_preceded": 1, "n_no_drop": 2},
              "vanilla, flipflop": {"leads": [], "n_not_preceded": 4, "n_no_drop": 0},
              "GRU, flipflop": {"leads": [5], "n_not_preceded": 0, "n_no_drop": 0}}
    rng = np.random.default_rng(8)
    res = gr_precedence_test([random_run(rng, 20, 2) for _ in range(4)])
    null = {"PLRNN, flipflop": res.null_lead_quantiles, "vanilla, flipflop": res.as_dict(),
            "GRU, flipflop": {"q05": None, "q50": None, "q95": None}}
    path = lead_times(groups, tmp_path / "leads.png", title="t", null_leads=null)
    img = mpimg.imread(path)
    assert path.stat().st_size > 0 and img.ndim == 3 and img.shape[0] > 0 and img.shape[1] > 0
    # the protocol's call, without chance levels, still works
    plain = lead_times(groups, tmp_path / "plain.png", title="t")
    assert mpimg.imread(plain).size > 0
    with pytest.raises(ConfigError, match="not groups"):
        lead_times(groups, tmp_path / "bad.png", null_leads={"LSTM": res.null_lead_quantiles})
