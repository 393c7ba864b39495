"""The data behind the loss pane and the runs screen: loss curves at a fixed resolution, TensorBoard-style
smoothing, a y range that ignores the first outliers, and reading a past run's logs.

Plain numpy; nothing here draws (the widgets in rnntui.tui.widgets do).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnntui import events
from rnntui.tui.buckets import CAPACITY, COUNT, FIRST, LAST, PER_CHANNEL, SUM, Buckets

DEFAULT_SMOOTHING = 0.6  # TensorBoard's default


class Ema:
    """TensorBoard's exponential moving average with bias correction: ``last = w*last + (1-w)*y``, shown as
    ``last / (1 - w**n)``. Non-finite points pass through and do not count; a constant series is unchanged."""

    def __init__(self, weight: float):
        self.weight = min(max(weight, 0.0), 0.999)
        self.last = 0.0
        self.n = 0

    def add(self, y: float, times: int = 1) -> float:
        """Add ``y`` (``times`` times in a row) and return the smoothed value after it."""
        if not math.isfinite(y):
            return y
        w = self.weight
        kept = w**times
        self.last = self.last * kept + (1 - kept) * y
        self.n += times
        return self.last / (1 - w**self.n) if w > 0 else self.last


class LossHistory:
    """The train loss (raw and smoothed) and validation loss of one run, each at a fixed resolution
    (rnntui.tui.buckets), so a run of a million steps takes the memory of one of a few thousand."""

    def __init__(self, smoothing: float = DEFAULT_SMOOTHING, capacity: int = CAPACITY):
        self.train = Buckets(("raw", "smooth"), capacity)
        self.val = Buckets(("value",), capacity)
        self._ema = Ema(smoothing)
        self.smoothing = self._ema.weight
        self.version = 0  # bumped on every change, so a view redraws only when needed

    def add_step(self, step: int, elapsed: float, loss: float) -> None:
        if self.train.points and step <= self.train.last_step:  # a resumed run repeats steps: keep the newer
            self.train.truncate(step)
            self.set_smoothing(self.smoothing)
        self.train.add(step, elapsed, loss, self._ema.add(loss))
        self.version += 1

    def add_eval(self, step: int, elapsed: float, val_loss: float) -> None:
        if self.val.points and step <= self.val.last_step:
            self.val.truncate(step)
        self.val.add(step, elapsed, val_loss)
        self.version += 1

    def set_smoothing(self, weight: float) -> None:
        """Smooth the raw loss again with another weight. Exact while each bucket is one step; a bucket of many
        is smoothed as its first step, the mean of the steps between, and its last step, which at the plot's
        resolution (many steps per column) draws the same line."""
        ema = self._ema = Ema(weight)
        self.smoothing = ema.weight
        rows = self.train.rows()
        raw = self.train.column["raw"]
        smoothed = np.empty((len(rows), PER_CHANNEL))
        for k, (count, first, last, total) in enumerate(rows[:, [COUNT, raw + FIRST, raw + LAST, raw + SUM]]):
            a = ema.add(first)
            if count == 1:
                smoothed[k] = a, a, a, a, a
                continue
            b = ema.add((total - first - last) / (count - 2), int(count) - 2) if count > 2 else a
            c = ema.add(last)
            smoothed[k] = a, c, min(a, b, c), max(a, b, c), count * (a + b + c) / 3
        self.train.set_channel("smooth", smoothed)
        self.version += 1

    def latest(self) -> tuple[float | None, float | None]:
        return self.train.last("smooth"), self.val.last("value")

    @classmethod
    def from_events(cls, found: list[events.Event], smoothing: float = DEFAULT_SMOOTHING) -> LossHistory:
        history = cls(smoothing)
        for event in found:
            if isinstance(event, events.Step):
                history.add_step(event.step, event.elapsed, event.loss)
            elif isinstance(event, events.Eval):
                history.add_eval(event.step, event.elapsed, event.val_loss)
        return history


def robust_limits(series: list[np.ndarray], skip_first: bool = True) -> tuple[float, float] | None:
    """A y range for the given series. With ``skip_first`` the first points of each long series (the loss of an
    untrained model, far above the rest) are left out, so the part that moves stays readable."""
    parts = []
    for ys in series:
        ys = ys[np.isfinite(ys)]
        if skip_first and len(ys) > 20:
            ys = ys[max(3, len(ys) // 20):]
        if len(ys):
            parts.append(ys)
    if not parts:
        return None
    values = np.concatenate(parts)
    lo, hi = float(values.min()), float(values.max())
    pad = (hi - lo) * 0.05 or abs(hi) * 0.05 or 0.05
    return lo - pad, hi + pad


# -- past runs -----------------------------------------------------------------------------------------------------


@dataclass
class RunRecord:
    """What the app shows of a run from its directory: configuration, curves, samples."""

    path: Path
    info: dict = field(default_factory=dict)
    history: LossHistory = field(default_factory=LossHistory)
    samples: list[events.Sample] = field(default_factory=list)
    done: events.Done | None = None

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config(self) -> dict:
        return self.info.get("config", {})


def read_jsonl(path: Path) -> list[events.Event]:
    found = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    found.append(events.from_dict(json.loads(line)))
                except (ValueError, KeyError, TypeError):
                    continue  # a line cut short by a crash, or a type this version doesn't know
    except OSError:
        pass
    return found


def load_run(path: Path, smoothing: float = DEFAULT_SMOOTHING) -> RunRecord:
    path = Path(path)
    try:
        info = json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        info = {}
    logged = read_jsonl(path / "events.jsonl")
    record = RunRecord(path, info, LossHistory.from_events(logged, smoothing))
    for event in logged:
        if isinstance(event, events.Done):
            record.done = event
    seen = set()
    for sample in read_jsonl(path / "samples.jsonl"):
        if isinstance(sample, events.Sample) and (sample.step, sample.text) not in seen:
            seen.add((sample.step, sample.text))
            record.samples.append(sample)
    record.samples.sort(key=lambda s: s.step)
    return record
