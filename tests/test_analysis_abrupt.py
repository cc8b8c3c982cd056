"""Abrupt-learning detector on synthetic loss curves with a known plateau and drop."""
import numpy as np
import pytest

from bioplastic.analysis import AbruptLearning, detect_abrupt_learning, gr_lead_time
from bioplastic.errors import ConfigError, ShapeError


def plateau_then_drop(k, *, onset, width, high=0.2, low=0.005, transient=0.8, noise=0.1, rng=None):
    """Fast initial fall to ``high`` (time constant 10), plateau, logistic drop to ``low``
    centred at ``onset + 3 width``, multiplicative log-normal noise."""
    centre = onset + 3 * width
    loss = low + (high - low) / (1 + np.exp((k - centre) / width)) + transient * np.exp(-k / 10)
    if rng is not None:
        loss = loss * np.exp(noise * rng.standard_normal(k.size))
    return loss, centre


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("onset, width", [(300, 10), (600, 15), (150, 5)])
def test_known_plateau_and_drop_are_found(seed, onset, width):
    rng = np.random.default_rng(seed)
    k = np.arange(1000)
    loss, centre = plateau_then_drop(k, onset=onset, width=width, rng=rng)
    r = detect_abrupt_learning(k, loss)
    assert r.detected, r.reason
    # the drop (logistic, 10%-90% within centre +- 2.2 width) is located within a few widths
    assert abs(r.drop_iteration - centre) <= 3 * width + 10
    assert centre - 6 * width - 20 <= r.plateau_end <= centre + 10
    # the plateau starts after the initial transient, early on
    assert r.plateau_start <= 60
    assert r.plateau_length == pytest.approx(r.plateau_end - r.plateau_start)
    # true fall log10(0.2 / 0.005) = 1.6 decades; the fit's drop segment takes most of it
    assert 1.0 <= r.drop_size <= 1.8
    assert r.drop_factor == pytest.approx(10 ** r.drop_size)


def test_without_transient_and_with_arbitrary_iteration_numbers():
    k = np.arange(0, 5000, 5)  # evaluated every 5 iterations
    loss, centre = plateau_then_drop(k, onset=2000, width=40, transient=0.0, rng=np.random.default_rng(0))
    r = detect_abrupt_learning(k, loss)
    assert r.detected and abs(r.drop_iteration - centre) < 150
    assert r.plateau_start < 250


@pytest.mark.parametrize("name", ["exponential", "power", "flat", "linear_in_log"])
def test_gradual_curves_are_not_abrupt(name):
    rng = np.random.default_rng(1)
    k = np.arange(1000)
    curve = {
        "exponential": 0.05 + 0.8 * np.exp(-k / 200),
        "power": 1 / (1 + k / 20),
        "flat": np.full(k.size, 0.2),
        "linear_in_log": 10 ** (-k / 500),
    }[name]
    r = detect_abrupt_learning(k, curve * np.exp(0.1 * rng.standard_normal(k.size)))
    assert not r.detected
    assert "no flat segment" in r.reason
    assert r.plateau_length is None and r.drop_factor is None


def test_a_late_loss_spike_does_not_hide_the_drop():
    # after learning, the loss spikes back up for a while (an instability); the
    # detector reads the lower envelope, so the plateau/drop stays the answer.
    k = np.arange(1000)
    loss, centre = plateau_then_drop(k, onset=200, width=10, rng=np.random.default_rng(3))
    loss[600:700] = 0.15
    r = detect_abrupt_learning(k, loss)
    assert r.detected and abs(r.drop_iteration - centre) < 40


def test_lead_time():
    r = AbruptLearning(True, "", plateau_start=50, plateau_end=400, drop_iteration=450, drop_end=500, drop_size=1)
    out = gr_lead_time([25, 100, 300, 475, 600], r)
    assert out == {"preceded": True, "lead": 150.0, "first_lead": 350.0, "lag_after_drop": None,
                   "n_events_search": 2, "chance": None}
    out = gr_lead_time([475, 600], r)
    assert out["preceded"] is False and out["lead"] is None and out["lag_after_drop"] == 25.0
    out = gr_lead_time([450], r)
    assert out["preceded"] is True and out["lead"] == 0.0
    # 5 events over 10 transitions (p = 0.5); checkpoints 100..400 lie in [50, 450]: n = 4
    out = gr_lead_time([25, 100, 300, 475, 600], r, checkpoint_iterations=np.arange(0, 1100, 100))
    assert out["chance"] == pytest.approx(1 - 0.5 ** 4)
    none = gr_lead_time([100], AbruptLearning(False, "no drop"))
    assert none["preceded"] is None and none["lead"] is None


def test_bad_curves_give_clear_errors():
    k = np.arange(100)
    with pytest.raises(ShapeError, match="equal length"):
        detect_abrupt_learning(k, np.ones(99))
    with pytest.raises(ShapeError, match="at least 20 points"):
        detect_abrupt_learning(k[:10], np.ones(10))
    with pytest.raises(ShapeError, match="finite and positive"):
        detect_abrupt_learning(k, np.r_[np.ones(99), np.nan])
    with pytest.raises(ShapeError, match="finite and positive"):
        detect_abrupt_learning(k, np.zeros(100))
    with pytest.raises(ConfigError, match="strictly increasing"):
        detect_abrupt_learning(k[::-1], np.ones(100))
