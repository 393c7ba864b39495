"""Runs without a budget: the horizon-free learning rates, the overfitting warning and --patience, on constructed
loss sequences."""

from __future__ import annotations

import math

import pytest

from rnntui.errors import UserError
from rnntui.core.schedules import OverfitWatch, Patience, PlateauSchedule, check_patience, inverse_sqrt


def test_inverse_sqrt_warms_up_then_falls_without_a_horizon():
    rates = [inverse_sqrt(8e-3, s, warmup_steps=50, timescale=1000) for s in range(0, 200_000, 10)]
    assert inverse_sqrt(8e-3, 0, 50) == pytest.approx(8e-3 / 50)
    assert inverse_sqrt(8e-3, 49, 50) == pytest.approx(8e-3) == inverse_sqrt(8e-3, 50, 50)
    assert inverse_sqrt(8e-3, 50 + 3000, 50, 1000) == pytest.approx(4e-3)  # half after 3 timescales
    assert inverse_sqrt(8e-3, 50 + 15_000, 50, 1000) == pytest.approx(2e-3)  # a quarter after 15
    after = rates[5:]
    assert all(a > b > 0 for a, b in zip(after, after[1:]))  # falls for ever, never reaches zero
    assert inverse_sqrt(1.0, 10, warmup_steps=0) == pytest.approx(math.sqrt(1000 / 1010))


def test_the_plateau_schedule_holds_the_peak_while_the_validation_loss_improves():
    s = PlateauSchedule(lr=8e-3, warmup_steps=50, patience_steps=500)
    assert s.rate(0) == pytest.approx(8e-3 / 50) and s.rate(49) == pytest.approx(8e-3)
    for step, val in zip(range(250, 5001, 250), [2.5 - 0.05 * i for i in range(20)]):
        assert not s.observe(step, val)
    assert s.rate(5000) == 8e-3 and s.cuts == []


def test_the_plateau_schedule_halves_the_rate_once_the_best_is_old_enough_down_to_a_floor():
    s = PlateauSchedule(lr=8e-3, patience_steps=500, factor=0.5, min_ratio=0.1)
    losses = {250: 1.8, 500: 1.64, 750: 1.66, 1000: 1.70}  # best at 500, then worse
    assert [s.observe(step, v) for step, v in losses.items()] == [False, False, False, True]
    assert s.rate(1001) == pytest.approx(4e-3) and s.cuts == [1000]
    assert not s.observe(1250, 1.639)  # within the threshold of the best: no improvement, and the wait restarted
    assert s.observe(1500, 1.65) and s.rate(1501) == pytest.approx(2e-3)
    assert not s.observe(1750, 1.60) and s.best == 1.60  # a new best
    assert not s.observe(2000, 1.61) and s.observe(2250, 1.62) and s.rate(2251) == pytest.approx(1e-3)
    assert s.observe(2750, 1.63) and s.rate(2751) == pytest.approx(8e-4)  # the floor: 10 % of the peak
    assert not s.observe(3250, 1.64) and s.rate(10**6) == pytest.approx(8e-4) and s.cuts == [1000, 1500, 2250, 2750]


def test_the_plateau_schedule_survives_a_checkpoint_round_trip():
    s = PlateauSchedule(lr=1e-2, warmup_steps=10, patience_steps=100)
    for step, val in ((100, 2.0), (200, 2.1), (300, 2.2)):
        s.observe(step, val)
    restored = PlateauSchedule.from_state(s.state())
    assert restored == s and restored.rate(301) == s.rate(301) == pytest.approx(2.5e-3)  # cut at 200 and 300
    fresh = PlateauSchedule.from_state(PlateauSchedule(lr=1.0).state())  # no evaluation yet: best is infinite
    assert fresh.best == math.inf and not fresh.observe(10, float("nan")) and fresh.observe(10, 3.0) is False


def overfitting_run(evals: int = 12, best_at: int = 3):
    """(step, smoothed train loss, val loss): both fall until ``best_at``, then train keeps falling and val rises."""
    for i in range(evals):
        train = 2.0 - 0.05 * i
        val = 2.1 - 0.1 * i if i <= best_at else 2.1 - 0.1 * best_at + 0.03 * (i - best_at)
        yield 250 * (i + 1), train, val


def test_overfitting_is_said_once_when_validation_rises_for_several_evaluations_while_training_falls():
    watch = OverfitWatch(evaluations=3, margin=0.01)
    said = [(step, watch.observe(step, train, val)) for step, train, val in overfitting_run()]
    warnings = [(step, message) for step, message in said if message]
    assert [step for step, _ in warnings] == [1750]  # best at 1000; 1250, 1500 and 1750 are over 1 % above it
    message = warnings[0][1]
    assert message.startswith("overfitting: the validation loss rose 5 % since its best (1.800 at step 1,000, "
                              "now 1.890)")
    assert "training loss fell (1.850 → 1.700)" in message
    for advice in ("dropout", "bigger corpus", "smaller model", "stop"):
        assert advice in message
    assert "\n" not in message


def test_no_overfitting_warning_while_training_loss_rises_too_or_validation_recovers():
    watch = OverfitWatch(evaluations=3)
    diverging = [(250, 2.0, 2.1), (500, 1.9, 2.0), (750, 2.0, 2.1), (1000, 2.1, 2.2), (1250, 2.2, 2.3)]
    assert not any(watch.observe(*e) for e in diverging)  # both rise: not overfitting (a rate too high)
    watch = OverfitWatch(evaluations=3)
    noisy = [(250, 2.0, 2.0), (500, 1.9, 2.05), (750, 1.8, 2.06), (1000, 1.7, 2.005), (1250, 1.6, 2.07)]
    assert not any(watch.observe(*e) for e in noisy)  # the third evaluation dips back within 1 % of the best
    # a new best after a warning starts a new episode, which may warn again
    watch = OverfitWatch(evaluations=2)
    run = [(1, 2.0, 2.0), (2, 1.9, 2.1), (3, 1.8, 2.2), (4, 1.7, 1.9), (5, 1.6, 2.0), (6, 1.5, 2.1), (7, 1.4, 2.2)]
    assert [step for step, *rest in run if watch.observe(step, *rest)] == [3, 6]


def test_patience_stops_after_k_evaluations_without_improvement():
    patience = Patience(3)
    vals = [2.0, 1.9, 1.95, 1.92, 1.85, 1.86, 1.9, 1.87]
    stops = [patience.observe(v) for v in vals]
    assert stops == [False, False, False, False, False, False, False, True]
    assert "3 evaluations" in patience.reason() and "best 1.8500" in patience.reason()
    assert Patience(1).observe(2.0) is False


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3"])
def test_patience_refuses_zero_negative_and_non_integers_in_one_line(bad):
    with pytest.raises(UserError, match=r"^--patience must be a positive whole number of evaluations \(got "):
        check_patience(bad)
    with pytest.raises(UserError):
        Patience(bad)
