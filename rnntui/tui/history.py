"""The data behind the loss pane and the runs screen: loss curves as growing arrays, TensorBoard-style smoothing,
downsampling to the pane's width, a y range that ignores the first outliers, and reading a past run's logs.

Plain numpy; nothing here draws (the widgets in rnntui.tui.widgets do).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rnntui import events

MAX_POINTS = 200_000  # per curve; past this every other point is dropped (and the stride doubles)
DEFAULT_SMOOTHING = 0.6  # TensorBoard's default


class Buffer:
    """A growing float64 array with amortised O(1) append."""

    def __init__(self, capacity: int = 1024):
        self._data = np.empty(capacity)
        self.n = 0

    def append(self, value: float) -> None:
        if self.n == len(self._data):
            self._data = np.resize(self._data, 2 * len(self._data))
        self._data[self.n] = value
        self.n += 1

    def view(self) -> np.ndarray:
        return self._data[: self.n]

    def replace(self, values: np.ndarray) -> None:
        self._data = np.array(values, dtype=float, copy=True)
        if len(self._data) == 0:
            self._data = np.empty(1024)
        self.n = len(values)

    def __len__(self) -> int:
        return self.n


def smooth(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's exponential moving average with bias correction: ``last = w*last + (1-w)*y``, shown as
    ``last / (1 - w**n)``. Non-finite points pass through and do not count; a constant series is unchanged."""
    ema = Ema(weight)
    return np.array([ema.add(v) for v in values], dtype=float)


class Ema:
    def __init__(self, weight: float):
        self.weight = min(max(weight, 0.0), 0.999)
        self.last = 0.0
        self.n = 0

    def add(self, y: float) -> float:
        if not math.isfinite(y):
            return y
        w = self.weight
        self.last = self.last * w + (1 - w) * y
        self.n += 1
        return self.last / (1 - w**self.n) if w > 0 else self.last


class Curve:
    """(step, elapsed seconds, value) points of one series."""

    def __init__(self):
        self.steps = Buffer()
        self.times = Buffer()
        self.values = Buffer()

    def add(self, step: float, time: float, value: float) -> None:
        self.steps.append(step)
        self.times.append(time)
        self.values.append(value)

    def __len__(self) -> int:
        return len(self.values)

    def x(self, axis: str) -> np.ndarray:
        return self.times.view() if axis == "time" else self.steps.view()

    def thin(self) -> None:
        for buf in (self.steps, self.times, self.values):
            buf.replace(buf.view()[::2])


class LossHistory:
    """The train loss (raw and smoothed) and validation loss of one run."""

    def __init__(self, smoothing: float = DEFAULT_SMOOTHING):
        self.train = Curve()
        self.smoothed = Buffer()
        self.val = Curve()
        self._ema = Ema(smoothing)
        self.smoothing = self._ema.weight
        self.version = 0  # bumped on every change, so a view redraws only when needed

    def add_step(self, step: int, elapsed: float, loss: float) -> None:
        if len(self.train) and step <= self.train.steps.view()[-1]:  # a resumed run repeats steps: keep the newer
            keep = int(np.searchsorted(self.train.steps.view(), step))
            for buf in (self.train.steps, self.train.times, self.train.values):
                buf.n = keep
            self.set_smoothing(self.smoothing)
        self.train.add(step, elapsed, loss)
        self.smoothed.append(self._ema.add(loss))
        if len(self.train) > MAX_POINTS:
            self.train.thin()
            self.smoothed.replace(self.smoothed.view()[::2])
        self.version += 1

    def add_eval(self, step: int, elapsed: float, val_loss: float) -> None:
        self.val.add(step, elapsed, val_loss)
        self.version += 1

    def set_smoothing(self, weight: float) -> None:
        self._ema = Ema(weight)
        self.smoothing = self._ema.weight
        self.smoothed.replace(np.array([self._ema.add(v) for v in self.train.values.view()], dtype=float))
        self.version += 1

    def latest(self) -> tuple[float | None, float | None]:
        loss = float(self.smoothed.view()[-1]) if len(self.smoothed) else None
        val = float(self.val.values.view()[-1]) if len(self.val) else None
        return loss, val

    @classmethod
    def from_events(cls, found: list[events.Event], smoothing: float = DEFAULT_SMOOTHING) -> LossHistory:
        history = cls(smoothing)
        for event in found:
            if isinstance(event, events.Step):
                history.add_step(event.step, event.elapsed, event.loss)
            elif isinstance(event, events.Eval):
                history.add_eval(event.step, event.elapsed, event.val_loss)
        return history


def downsample(x: np.ndarray, y: np.ndarray, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """At most ~2 points per bucket: each bucket's minimum and maximum (in that order of x), plus the endpoints,
    so spikes survive and the cost of drawing is set by the pane's width, not the run's length."""
    n = len(x)
    if n <= 2 * buckets or buckets < 1:
        return x, y
    edges = np.linspace(0, n, buckets + 1).astype(int)
    starts = edges[:-1]
    lo = np.minimum.reduceat(y, starts)
    hi = np.maximum.reduceat(y, starts)
    mid = (x[starts] + x[np.minimum(edges[1:], n) - 1]) / 2
    xs = np.repeat(mid, 2)
    ys = np.column_stack([lo, hi]).ravel()
    xs = np.concatenate([[x[0]], xs, [x[-1]]])
    ys = np.concatenate([[y[0]], ys, [y[-1]]])
    return xs, ys


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
    started: events.Started | None = None

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
        elif isinstance(event, events.Started) and record.started is None:
            record.started = event
    seen = set()
    for sample in read_jsonl(path / "samples.jsonl"):
        if isinstance(sample, events.Sample) and (sample.step, sample.text) not in seen:
            seen.add((sample.step, sample.text))
            record.samples.append(sample)
    record.samples.sort(key=lambda s: s.step)
    return record


def checkpoint_budget(path: Path) -> dict:
    """The newest checkpoint's step, budget and train time, read from its JSON (no torch needed)."""
    try:
        found = sorted((Path(path) / "checkpoints").glob("step-*.json"))
        meta = json.loads(found[-1].read_text())
    except (OSError, ValueError, IndexError):
        return {}
    config = meta.get("config", {})
    return {"step": meta.get("step", 0), "max_steps": config.get("max_steps"), "max_time": config.get("max_time"),
            "train_time": meta.get("train_time", 0.0)}
