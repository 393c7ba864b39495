"""The loss history at a fixed resolution: buckets that merge pairwise as a run grows, drawn as the raw points
would be, with memory that stays flat however many steps a run takes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rnntui import events
from rnntui.tui.buckets import COUNT, FIRST, HI, LAST, LO, STEP0, STEP1, SUM, TIME0, TIME1, Buckets
from rnntui.tui.history import Ema, LossHistory, load_run, robust_limits
from rnntui.util.units import bits


def raw_downsample(x: np.ndarray, y: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """How the loss pane downsampled the raw points before the history kept buckets (the reference)."""
    n = len(x)
    if n <= 2 * buckets or buckets < 1:
        return x, y
    edges = np.linspace(0, n, buckets + 1).astype(int)
    starts = edges[:-1]
    lo = np.minimum.reduceat(y, starts)
    hi = np.maximum.reduceat(y, starts)
    mid = (x[starts] + x[np.minimum(edges[1:], n) - 1]) / 2
    xs = np.concatenate([[x[0]], np.repeat(mid, 2), [x[-1]]])
    ys = np.concatenate([[y[0]], np.column_stack([lo, hi]).ravel(), [y[-1]]])
    return xs, ys


def ema_reference(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's debiased exponential moving average, written out."""
    out, last = [], 0.0
    for n, v in enumerate(values, 1):
        last = weight * last + (1 - weight) * v
        out.append(last / (1 - weight**n) if weight else last)
    return np.array(out)


def noisy_loss(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    steps = np.arange(1, n + 1)
    return 1.4 + 2.8 * np.exp(-steps / (n / 8)) + rng.normal(0, 0.05, n) + (rng.random(n) < 0.01) * 0.5


def feed(history: LossHistory, values: np.ndarray, first_step: int = 1) -> tuple[np.ndarray, np.ndarray]:
    steps = np.arange(first_step, first_step + len(values), dtype=float)
    times = steps * 0.05
    for s, t, v in zip(steps, times, values):
        history.add_step(int(s), float(t), float(v))
    return steps, times


def test_a_short_run_is_kept_exactly():
    history = LossHistory(smoothing=0.6, capacity=64)
    values = noisy_loss(50)
    steps, times = feed(history, values)
    assert history.train.exact() and len(history.train) == 50
    x, raw = history.train.points_for("step", "raw", columns=40)
    assert np.array_equal(x, steps) and np.array_equal(raw, values)
    x, smoothed = history.train.points_for("time", "smooth", columns=40)
    assert np.array_equal(x, times) and np.allclose(smoothed, ema_reference(values, 0.6))
    assert history.latest() == (pytest.approx(ema_reference(values, 0.6)[-1]), None)


def test_buckets_hold_the_min_max_mean_of_the_raw_points_they_merged():
    capacity, width = 64, 16
    history = LossHistory(smoothing=0.0, capacity=capacity)
    values = noisy_loss(capacity * width)
    steps, times = feed(history, values)
    train = history.train
    assert train.width == width and train.n == capacity and len(train) == len(values)
    rows = train.rows()
    raw = train.column["raw"]
    grouped = values.reshape(capacity, width)
    assert np.all(rows[:, COUNT] == width)
    assert np.array_equal(rows[:, raw + LO], grouped.min(1)) and np.array_equal(rows[:, raw + HI], grouped.max(1))
    assert np.allclose(rows[:, raw + SUM] / rows[:, COUNT], grouped.mean(1))
    assert np.array_equal(rows[:, raw + FIRST], grouped[:, 0]) and np.array_equal(rows[:, raw + LAST], grouped[:, -1])
    assert np.array_equal(rows[:, STEP0], steps[::width]) and np.array_equal(rows[:, STEP1], steps[width - 1::width])
    assert np.array_equal(rows[:, TIME0], times[::width]) and np.array_equal(rows[:, TIME1], times[width - 1::width])


@pytest.mark.parametrize("axis", ["step", "time"])
def test_the_plot_draws_a_merged_curve_as_it_drew_the_raw_points(axis):
    capacity, width, columns = 256, 8, 64  # the columns fall on bucket edges
    history = LossHistory(smoothing=0.6, capacity=capacity)
    values = noisy_loss(capacity * width, seed=3)
    steps, times = feed(history, values)
    x_raw = times if axis == "time" else steps
    for channel, y_raw in (("raw", values), ("smooth", ema_reference(values, 0.6))):
        xs, ys = history.train.points_for(axis, channel, columns)
        want_x, want_y = raw_downsample(x_raw, y_raw, columns)
        assert np.allclose(xs, want_x) and np.allclose(ys, want_y), channel
    # columns that do not fall on bucket edges still bracket the raw points under them
    xs, ys = history.train.points_for(axis, "raw", 50)
    assert ys.min() == values.min() and ys.max() == values.max() and len(xs) == 2 * 50 + 2


def test_a_partly_filled_bucket_is_drawn_and_counted():
    history = LossHistory(smoothing=0.0, capacity=16)
    values = noisy_loss(16 * 4 + 3)
    feed(history, values)
    train = history.train
    assert len(train) == len(values) and train.rows()[-1, COUNT] == 3
    assert train.span("step") == (1.0, float(len(values)))
    assert history.latest()[0] == values[-1]
    xs, ys = train.points_for("step", "raw", 8)
    assert xs[-1] == len(values) and ys[-1] == values[-1] and ys.min() == values.min()


def test_memory_stays_flat_over_a_million_steps():
    history = LossHistory()
    arrays = lambda: sum(c.data.nbytes for c in (history.train, history.val))  # noqa: E731
    at_start = arrays()
    for step in range(1, 1_000_001):
        history.add_step(step, step * 0.05, 1.5 + 1 / step)
        if step % 250 == 0:
            history.add_eval(step, step * 0.05, 1.6 + 1 / step)
    assert len(history.train) == 1_000_000 and len(history.val) == 4000
    assert arrays() == at_start and history.train.data.shape == (history.train.capacity, 15)
    assert history.train.n <= history.train.capacity and len(history.train.rows()) <= history.train.capacity + 1
    assert history.train.width == 256  # 1e6 / 4096, rounded up to a power of two
    assert history.train.span("step") == (1.0, 1_000_000.0)
    x, y = history.train.points_for("step", "raw", 100)
    assert len(x) == 202 and y[0] == 2.5 and y.min() == pytest.approx(1.5 + 1e-6)


def test_resmoothing_is_exact_for_single_steps_and_close_after_merging():
    history = LossHistory(smoothing=0.6, capacity=64)
    values = noisy_loss(60)
    feed(history, values)
    history.set_smoothing(0.9)
    assert np.allclose(history.train.points_for("step", "smooth", 100)[1], ema_reference(values, 0.9))
    assert history.latest()[0] == pytest.approx(ema_reference(values, 0.9)[-1])

    history = LossHistory(smoothing=0.6, capacity=256)
    values = noisy_loss(256 * 32, seed=5)
    feed(history, values)
    history.set_smoothing(0.95)
    exact = ema_reference(values, 0.95)
    _, drawn = history.train.points_for("step", "smooth", 64)
    _, want = raw_downsample(np.arange(len(values)), exact, 64)
    spread = values.max() - values.min()
    assert np.abs(drawn - want).max() < 0.05 * spread  # within 5 % of the plot's height
    assert history.latest()[0] == pytest.approx(exact[-1], abs=0.01 * spread)
    # new steps continue the new smoothing
    history.add_step(len(values) + 1, 0.0, 1.0)
    assert history.latest()[0] == pytest.approx(0.95 * exact[-1] + 0.05 * 1.0, abs=0.01 * spread)


def test_a_resumed_run_that_repeats_steps_keeps_the_newer_ones():
    history = LossHistory(smoothing=0.0, capacity=64)
    feed(history, np.full(40, 2.0))
    history.add_eval(20, 1.0, 2.1)
    history.add_eval(40, 2.0, 2.2)
    feed(history, np.full(10, 1.0), first_step=31)  # resumed from the checkpoint at step 30
    history.add_eval(40, 2.5, 1.1)
    x, y = history.train.points_for("step", "raw", 100)
    assert list(x) == list(range(1, 41)) and list(y) == [2.0] * 30 + [1.0] * 10
    assert list(history.val.means("step", "value")[1]) == [2.1, 1.1]

    merged = LossHistory(smoothing=0.0, capacity=16)
    feed(merged, np.full(16 * 8, 2.0))  # buckets of 8 steps
    feed(merged, np.full(20, 1.0), first_step=100)  # step 100 falls inside the bucket of steps 97-104
    rows = merged.train.rows()
    raw = merged.train.column["raw"]
    assert rows[rows[:, raw + LO] == 2.0, STEP1].max() == 96  # the old steps up to that bucket stay
    assert rows[rows[:, raw + LO] == 1.0, STEP0].min() == 100 and merged.train.last_step == 119
    assert len(merged.train) == 96 + 20


def unpadded(limits: tuple[float, float]) -> tuple[float, float]:
    lo, hi = limits
    pad = (hi - lo) / 1.1 * 0.05
    return lo + pad, hi - pad


def test_the_robust_range_of_a_merged_curve_leaves_out_the_first_steps_as_the_raw_one_did():
    capacity, width = 512, 16
    history = LossHistory(smoothing=0.6, capacity=capacity)
    n = capacity * width
    values = 1.4 + 2.8 * np.exp(-np.arange(n) / 1000) + np.random.default_rng(7).normal(0, 0.05, n)
    feed(history, values)
    exact = ema_reference(values, 0.6)
    lo, hi = robust_limits([history.train.extremes("smooth")])
    # the range the pane took from every raw point leaves out the first 5 % of the steps; the merged one the
    # first 5 % of the buckets: the same steps, to within a bucket
    raw_lo, raw_hi = robust_limits([exact])
    assert lo == pytest.approx(raw_lo, rel=0.01) and hi == pytest.approx(raw_hi, rel=0.01)
    assert unpadded((lo, hi))[1] < exact[: n // 25].min()
    short = LossHistory(smoothing=0.6, capacity=capacity)
    feed(short, values[:300])
    assert robust_limits([short.train.extremes("smooth")]) == robust_limits([exact[:300]])


def test_ema_counts_repeated_values_as_steps():
    one, many = Ema(0.9), Ema(0.9)
    for _ in range(7):
        one.add(2.0)
    one.add(3.0)
    many.add(2.0, times=7)
    assert many.add(3.0) == pytest.approx(one.last / (1 - 0.9**8)) and many.n == 8
    assert math.isnan(many.add(float("nan"))) and many.n == 8


def test_capacity_must_be_even():
    with pytest.raises(ValueError):
        Buckets(capacity=7)


def test_a_past_run_is_read_into_buckets(tmp_path):
    found = [events.Step(s, s / 100, 2.0 - s / 1000, 1e-3, 1.0, 1e4, s * 0.1) for s in range(1, 301)]
    found += [events.Eval(s, 1.9, bits(1.9), 1.9, s * 0.1) for s in (100, 200, 300)]
    (tmp_path / "events.jsonl").write_text("".join(
        __import__("json").dumps(e.to_dict()) + "\n" for e in found))
    record = load_run(tmp_path)
    assert len(record.history.train) == 300 and len(record.history.val) == 3
    assert record.history.train.span("time") == (pytest.approx(0.1), pytest.approx(30.0))
