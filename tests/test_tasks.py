"""Tests of bioplastic.tasks: a registry-wide contract, task definitions
checked against slow reference loops, and error paths."""
from __future__ import annotations

import numpy as np
import pytest

from bioplastic.errors import ConfigError, ShapeError, UnknownNameError
from bioplastic.tasks import (
    TASKS,
    DelayedAddition,
    EvidenceAccumulation,
    FlipFlop,
    Task,
    TaskBatch,
    get_task,
    list_tasks,
    register_task,
)

B = 16


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def sample(task, seed=0, batch_size=B):
    return task.sample(batch_size, np.random.default_rng(seed))


# -- registry-wide contract -----------------------------------------------------
@pytest.fixture(params=list_tasks())
def task(request):
    return get_task(request.param)


def test_builtins_registered():
    assert list_tasks() == ["delayed_addition", "evidence_accumulation", "flipflop"]
    assert isinstance(get_task("FlipFlop"), FlipFlop)  # names are case-insensitive


def test_batch_shapes_and_dtypes(task):
    batch = sample(task)
    T = task.n_steps
    assert isinstance(batch, TaskBatch)
    assert batch.inputs.shape == (T, B, task.n_inputs)
    assert batch.targets.shape == (T, B, task.n_outputs)
    assert batch.loss_mask.shape == (T, B, task.n_outputs)
    assert (batch.T, batch.batch_size) == (T, B)
    assert (batch.n_inputs, batch.n_outputs) == (task.n_inputs, task.n_outputs)
    assert batch.dt == task.dt
    for arr in (batch.inputs, batch.targets, batch.loss_mask):
        assert arr.dtype == np.float64
        assert np.all(np.isfinite(arr))


def test_loss_mask_binary_and_nonempty_per_trial(task):
    batch = sample(task, batch_size=64)
    assert set(np.unique(batch.loss_mask)) <= {0.0, 1.0}
    assert np.all(batch.loss_mask.sum(axis=(0, 2)) > 0)


def test_trial_table_and_epochs(task):
    batch = sample(task)
    table = batch.trial_table
    np.testing.assert_array_equal(table["trial"], np.arange(B))
    np.testing.assert_array_equal(table["start_step"], 0)
    np.testing.assert_array_equal(table["stop_step"], task.n_steps)
    for key, column in table.items():
        assert column.shape == (B,), key
        assert np.all(np.isfinite(column)), key
    assert batch.epochs
    for key, mask in batch.epochs.items():
        assert mask.shape == (task.n_steps, B), key
        assert mask.dtype == bool, key


def test_same_seed_same_batch_other_seed_differs(task):
    a, b, c = sample(task, seed=7), sample(task, seed=7), sample(task, seed=8)
    for field in ("inputs", "targets", "loss_mask"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    for key in a.trial_table:
        np.testing.assert_array_equal(a.trial_table[key], b.trial_table[key])
    for key in a.epochs:
        np.testing.assert_array_equal(a.epochs[key], b.epochs[key])
    assert not np.array_equal(a.inputs, c.inputs)


def test_perfect_outputs_solve_and_wrong_outputs_fail(task):
    batch = sample(task, batch_size=64)
    assert task.accuracy(batch.targets, batch) == 1.0
    assert task.is_solved(batch.targets, batch) is True
    for wrong in (np.zeros_like(batch.targets), -batch.targets):
        assert task.accuracy(wrong, batch) < 0.1
        assert task.is_solved(wrong, batch) is False


def test_settings_round_trip(task):
    settings = task.settings()
    assert set(settings) == set(type(task).defaults)
    rebuilt = get_task(task.name, **settings)
    assert rebuilt.settings() == settings
    np.testing.assert_array_equal(sample(task).inputs, sample(rebuilt).inputs)
    settings["dt"] = -1.0  # a copy: the task is unchanged
    assert task.dt == 1.0


def test_task_errors(task):
    with pytest.raises(ConfigError, match="unknown setting.*'bogus'"):
        get_task(task.name, bogus=1)
    with pytest.raises(ConfigError, match="dt must be positive"):
        get_task(task.name, dt=-1.0)
    with pytest.raises(ConfigError, match="n_steps must be >="):
        get_task(task.name, n_steps=1)
    with pytest.raises(ConfigError, match="criterion must be in"):
        get_task(task.name, criterion=1.5)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "4", None])
def test_bad_batch_size(task, bad):
    with pytest.raises(ConfigError, match="batch_size"):
        task.sample(bad, np.random.default_rng(0))


@pytest.mark.parametrize("bad", [0, None, np.random.RandomState(0)])
def test_bad_rng(task, bad):
    with pytest.raises(ConfigError, match="numpy.random.Generator"):
        task.sample(4, bad)


def test_accuracy_rejects_bad_outputs(task):
    batch = sample(task)
    with pytest.raises(ShapeError, match="outputs must have shape"):
        task.accuracy(batch.targets[:-1], batch)
    with pytest.raises(ShapeError, match="outputs must have shape"):
        task.accuracy(batch.targets[..., 0], batch)
    outputs = batch.targets.copy()
    outputs[0, 0, 0] = np.nan
    with pytest.raises(ShapeError, match="non-finite"):
        task.accuracy(outputs, batch)
    with pytest.raises(ShapeError, match="non-finite"):
        task.is_solved(outputs, batch)
    with pytest.raises(ConfigError, match="TaskBatch"):
        task.accuracy(batch.targets, batch.targets)


# -- registry -------------------------------------------------------------------
def test_unknown_task_name_lists_known():
    with pytest.raises(UnknownNameError, match="unknown task 'flipflp'.*'flipflop'.*Known: delayed_addition"):
        get_task("flipflp")


def test_register_custom_task(monkeypatch):
    monkeypatch.setattr(TASKS, "_items", dict(TASKS._items))

    @register_task
    class Constant(Task):
        """Output 1 at every step."""

        name = "constant"
        n_inputs = n_outputs = 1
        defaults = {**Task.defaults, "n_steps": 5}

        def _sample(self, batch_size, rng):
            ones = np.ones((self.n_steps, batch_size, 1))
            return TaskBatch(ones, ones, ones, self._trial_table(batch_size), {}, self.dt)

        def _accuracy(self, outputs, batch):
            return np.mean(np.abs(outputs - 1) < 0.5)

    assert "constant" in list_tasks()
    task = get_task("constant", n_steps=3)
    batch = sample(task, batch_size=2)
    assert batch.T == 3 and task.is_solved(batch.targets, batch)
    with pytest.raises(ConfigError, match="already registered"):
        register_task(type("Other", (Constant,), {}))


def test_register_task_rejects_non_tasks():
    with pytest.raises(ConfigError, match="subclass of Task"):
        register_task(dict)
    with pytest.raises(ConfigError, match="subclass of Task"):
        register_task(FlipFlop())

    class Nameless(FlipFlop):
        name = ""

    with pytest.raises(ConfigError, match="non-empty string `name`"):
        register_task(Nameless)


def test_task_batch_checks_shapes():
    x = np.zeros((5, 2, 1))
    table = {"trial": np.arange(2), "start_step": np.zeros(2), "stop_step": np.full(2, 5)}
    with pytest.raises(ShapeError, match="loss_mask shape"):
        TaskBatch(x, x, np.zeros((5, 2, 2)), table, {}, 1.0)
    with pytest.raises(ShapeError, match=r"trial_table\['trial'\]"):
        TaskBatch(x, x, x, {**table, "trial": np.arange(3)}, {}, 1.0)
    with pytest.raises(ShapeError, match=r"epochs\['delay'\]"):
        TaskBatch(x, x, x, table, {"delay": np.zeros((5, 2))}, 1.0)
    with pytest.raises(ConfigError, match="stop_step"):
        TaskBatch(x, x, x, {"trial": np.arange(2), "start_step": np.zeros(2)}, {}, 1.0)


# -- flip-flop --------------------------------------------------------------------
def slow_flipflop_targets(inputs):
    """Target: sign of the last pulse seen on each channel, 0 before any."""
    T, nb, nc = inputs.shape
    targets = np.zeros_like(inputs)
    for b in range(nb):
        for c in range(nc):
            level = 0.0
            for t in range(T):
                if inputs[t, b, c] != 0:
                    level = np.sign(inputs[t, b, c])
                targets[t, b, c] = level
    return targets


@pytest.mark.parametrize("settings", [{}, {"n_bits": 2, "pulse_prob": 0.2, "pulse_steps": 1}])
def test_flipflop_targets_match_slow_loop(settings):
    task = FlipFlop(**settings)
    batch = sample(task, batch_size=32)
    assert batch.inputs.shape[2] == batch.targets.shape[2] == task.n_inputs == task.n_outputs == task.n_bits
    assert set(np.unique(batch.inputs)) <= {-1.0, 0.0, 1.0}
    np.testing.assert_array_equal(batch.targets, slow_flipflop_targets(batch.inputs))
    started = np.maximum.accumulate(batch.inputs != 0, axis=0)
    np.testing.assert_array_equal(batch.loss_mask, started)  # settle_steps=0
    np.testing.assert_array_equal(batch.epochs["hold"], started.any(axis=2))


def test_flipflop_pulses_and_table():
    task = FlipFlop(pulse_prob=0.3, pulse_steps=1, settle_steps=2)
    batch = sample(task, batch_size=32)
    on = batch.inputs != 0
    for c in range(task.n_bits):
        np.testing.assert_array_equal(batch.trial_table[f"n_pulses_{c}"], on[:, :, c].sum(axis=0))
        first = batch.trial_table[f"first_pulse_step_{c}"]
        np.testing.assert_array_equal(first, np.argmax(on[:, :, c], axis=0))
        assert np.all(first < task.n_steps // 10)  # forced early pulse
    for b in range(32):
        for c in range(task.n_bits):
            onsets = np.flatnonzero(on[:, b, c])
            assert np.all(np.diff(onsets) >= task.min_gap)
            expected = np.zeros(task.n_steps)
            expected[onsets[0] :] = 1.0
            for s in onsets:
                expected[s : s + 2] = 0.0  # settle window
            np.testing.assert_array_equal(batch.loss_mask[:, b, c], expected)


def test_flipflop_pulse_duration():
    task = FlipFlop(pulse_prob=0.0, pulse_steps=4)  # only the forced pulse
    batch = sample(task)
    np.testing.assert_array_equal(np.abs(batch.inputs).sum(axis=0), 4.0)
    np.testing.assert_array_equal(batch.trial_table["n_pulses_1"], 1)


def test_flipflop_accuracy_counts_masked_entries():
    task = FlipFlop(criterion=0.5)
    batch = sample(task)
    outputs = 0.3 * batch.targets
    masked = np.argwhere(batch.loss_mask > 0)
    wrong = masked[: len(masked) // 4]
    outputs[tuple(wrong.T)] *= -1
    outputs[batch.loss_mask == 0] = 5.0  # unmasked entries do not count
    expected = 1 - len(wrong) / len(masked)
    assert task.accuracy(outputs, batch) == pytest.approx(expected)
    assert task.is_solved(outputs, batch)


def test_flipflop_setting_errors():
    with pytest.raises(ConfigError, match=r"pulse_prob must be in \[0, 1\]"):
        FlipFlop(pulse_prob=1.5)
    with pytest.raises(ConfigError, match="pulse_steps must be >= 1"):
        FlipFlop(pulse_steps=0)
    with pytest.raises(ConfigError, match="settle_steps must be <= n_steps // 4"):
        FlipFlop(n_steps=20, settle_steps=6)
    with pytest.raises(ConfigError, match="n_bits must be an integer"):
        FlipFlop(n_bits=2.0)


# -- delayed addition -------------------------------------------------------------
def test_delayed_addition_target_is_sum_of_marked_values():
    task = DelayedAddition()
    batch = sample(task, batch_size=32)
    S = task.n_steps - task.response_steps
    values, marks = batch.inputs[:, :, 0], batch.inputs[:, :, 1]
    assert np.all((values >= 0) & (values < 1))
    table = batch.trial_table
    for b in range(32):
        marked = np.flatnonzero(marks[:, b])
        assert len(marked) == 2
        assert marked[0] < S // 2 <= marked[1] < S
        total = values[marked, b].sum()
        assert table["target"][b] == pytest.approx(total)
        np.testing.assert_array_equal([table["mark_step_0"][b], table["mark_step_1"][b]], marked)
        np.testing.assert_allclose([table["value_0"][b], table["value_1"][b]], values[marked, b])
        np.testing.assert_allclose(batch.targets[S:, b, 0], total)
        np.testing.assert_array_equal(batch.targets[:S, b, 0], 0.0)
        np.testing.assert_array_equal(batch.loss_mask[:, b, 0], np.arange(task.n_steps) >= S)
        delay = (np.arange(task.n_steps) > marked[1]) & (np.arange(task.n_steps) < S)
        np.testing.assert_array_equal(batch.epochs["delay"][:, b], delay)
    np.testing.assert_array_equal(batch.epochs["response"], batch.loss_mask[:, :, 0] > 0)


def test_delayed_addition_tolerance():
    task = DelayedAddition(tolerance=0.04)
    batch = sample(task)
    assert task.accuracy(batch.targets + 0.03, batch) == 1.0
    assert task.accuracy(batch.targets - 0.05, batch) == 0.0
    # only the mean over the response window counts
    outputs = batch.targets.copy()
    outputs[-task.response_steps :] += np.where(np.arange(task.response_steps) % 2, 0.5, -0.5)[:, None, None]
    if task.response_steps % 2:
        outputs[-1] += 0.5
    assert task.accuracy(outputs, batch) == 1.0
    # half the trials off by 0.1
    outputs = batch.targets.copy()
    outputs[:, : B // 2] += 0.1
    assert task.accuracy(outputs, batch) == 0.5
    assert not task.is_solved(outputs, batch)


def test_delayed_addition_setting_errors():
    with pytest.raises(ConfigError, match="n_steps must be >= response_steps"):
        DelayedAddition(n_steps=10, response_steps=8)
    with pytest.raises(ConfigError, match="tolerance must be positive"):
        DelayedAddition(tolerance=0)


# -- evidence accumulation ----------------------------------------------------------
def test_evidence_target_is_sign_of_presented_evidence():
    task = EvidenceAccumulation()
    batch = sample(task, batch_size=256)
    table = batch.trial_table
    evidence = batch.inputs[:, :, 0]
    total = evidence.sum(axis=0)  # the evidence channel is 0 outside the stimulus
    np.testing.assert_allclose(table["evidence_sum"], total)
    np.testing.assert_array_equal(table["choice"], np.sign(total))
    steps = np.arange(task.n_steps)
    start, stop, go = table["stim_start"][0], table["stim_stop"][0], table["delay_stop"][0]
    assert (start, stop, go) == (5, 50, 70)
    for b in range(256):
        np.testing.assert_array_equal(batch.targets[:, b, 0], np.where(steps >= go, np.sign(total[b]), 0.0))
    np.testing.assert_array_equal(batch.inputs[:, :, 1], (steps >= go)[:, None] * np.ones(256))
    assert np.all(evidence[:start] == 0) and np.all(evidence[stop:] == 0)
    for name, lo, hi in (("stimulus", start, stop), ("delay", stop, go)):
        expected = np.broadcast_to(((steps >= lo) & (steps < hi))[:, None], (task.n_steps, 256))
        np.testing.assert_array_equal(batch.epochs[name], expected)
    np.testing.assert_array_equal(batch.epochs["response"], batch.loss_mask[:, :, 0] > 0)
    assert set(np.abs(table["coherence"])) <= set(task.coherences)
    # the target follows the evidence, not the coherence sign: some trials disagree
    assert np.any(np.sign(table["coherence"]) != table["choice"])


def test_evidence_without_noise_equals_coherence():
    task = EvidenceAccumulation(noise=0.0, coherences=[0.3])
    batch = sample(task)
    coherence = batch.trial_table["coherence"]
    stimulus = batch.inputs[task.stim_start : task.stim_stop, :, 0]
    np.testing.assert_allclose(stimulus, np.broadcast_to(coherence, (45, B)))
    assert np.all(np.abs(coherence) == 0.3)
    assert len(np.unique(np.sign(coherence))) == 2
    np.testing.assert_array_equal(batch.trial_table["choice"], np.sign(coherence))


def test_evidence_accuracy_uses_sign_of_mean_response():
    task = EvidenceAccumulation()
    batch = sample(task)
    outputs = 0.1 * batch.targets
    outputs[: task.delay_stop] = -5.0  # outside the response epoch: ignored
    assert task.accuracy(outputs, batch) == 1.0
    outputs[:, :4] *= -1
    assert task.accuracy(outputs, batch) == pytest.approx(1 - 4 / B)


def test_evidence_setting_errors():
    with pytest.raises(ConfigError, match="leave a stimulus epoch"):
        EvidenceAccumulation(n_steps=35)
    with pytest.raises(ConfigError, match="coherences must be a non-empty"):
        EvidenceAccumulation(coherences=[])
    with pytest.raises(ConfigError, match="coherences entry must be finite and >= 0"):
        EvidenceAccumulation(coherences=[0.1, -0.2])
    with pytest.raises(ConfigError, match="noise must be finite and >= 0"):
        EvidenceAccumulation(noise=-1)


@pytest.mark.parametrize("min_gap,pulse_steps,settle_steps,p", [(3, 3, 0, 0.04), (3, 3, 2, 0.3), (1, 1, 0, 0.5),
                                                                 (6, 2, 5, 0.9)])
def test_flipflop_scan_matches_the_numpy_reference(min_gap, pulse_steps, settle_steps, p):
    from bioplastic.tasks.scan import flipflop_scan_
    from reference import flipflop_scan

    rng = np.random.default_rng(min_gap + settle_steps)
    draws = rng.random((60, 7, 3)) < p
    signs = np.where(rng.random((60, 7, 3)) < 0.5, -1.0, 1.0)
    for fast, slow in zip(flipflop_scan_(draws, signs, min_gap, pulse_steps, settle_steps),
                          flipflop_scan(draws, signs, min_gap, pulse_steps, settle_steps)):
        assert fast.dtype == slow.dtype
        np.testing.assert_array_equal(fast, slow)
