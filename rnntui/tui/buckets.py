"""A curve kept at a fixed resolution, so the app's memory stays flat however long a run trains.

A ``Buckets`` curve holds at most ``capacity`` buckets of consecutive points. Each bucket records how many points
it holds, its first and last step and time, and per channel (e.g. the raw loss and its smoothed line) the first,
last, smallest and largest value and the sum. Until the curve fills, every point is a bucket of its own (the exact
points); when it fills, neighbouring buckets merge pairwise and each bucket holds twice as many points from then
on. The plot draws each of its columns as the minimum and maximum of the points under it, so spikes survive any
merging, and a curve cut into columns at bucket edges draws exactly as its raw points would.

Plain numpy and floats; nothing here draws.
"""

from __future__ import annotations

import numpy as np

CAPACITY = 4096  # buckets per curve (even): a few per column of the widest plot, ~0.5 MB for two channels

COUNT, STEP0, STEP1, TIME0, TIME1 = range(5)
FIRST, LAST, LO, HI, SUM = range(5)  # offsets within each channel's five columns
PER_CHANNEL = 5


class Buckets:
    """(step, elapsed seconds, value per channel) points of one series, at most ``capacity`` buckets of them."""

    def __init__(self, channels: tuple[str, ...] = ("value",), capacity: int = CAPACITY):
        if capacity < 2 or capacity % 2:
            raise ValueError(f"capacity must be even and at least 2 (got {capacity})")
        self.channels = channels
        self.capacity = capacity
        self.column = {name: 5 + PER_CHANNEL * i for i, name in enumerate(channels)}
        self.data = np.zeros((capacity, 5 + PER_CHANNEL * len(channels)))  # the closed buckets
        self.n = 0  # closed buckets in data
        self.width = 1  # points a bucket holds before it closes
        self.points = 0  # points recorded, over all buckets
        self.last_step: float | None = None
        self._open: list[float] | None = None  # the bucket filling now, as a list (cheap to update)

    def __len__(self) -> int:
        return self.points

    def add(self, step: float, time: float, *values: float) -> None:
        row = self._open
        if row is None:
            row = self._open = [1, step, step, time, time]
            for v in values:
                row += (v, v, v, v, v)
        else:
            row[COUNT] += 1
            row[STEP1] = step
            row[TIME1] = time
            i = 5
            for v in values:
                row[i + LAST] = v
                if v < row[i + LO]:
                    row[i + LO] = v
                if v > row[i + HI]:
                    row[i + HI] = v
                row[i + SUM] += v
                i += PER_CHANNEL
        self.points += 1
        self.last_step = step
        if row[COUNT] >= self.width:
            if self.n == self.capacity:
                self._merge()  # the open bucket now holds half the new width: it stays open
            else:
                self.data[self.n] = row
                self.n += 1
                self._open = None

    def _merge(self) -> None:
        """Halve the closed buckets by merging neighbours; every bucket holds twice the points from now on."""
        d = self.data
        a, b = d[0::2], d[1::2]
        merged = b.copy()  # last step, time and values come from the later bucket
        merged[:, COUNT] = a[:, COUNT] + b[:, COUNT]
        merged[:, STEP0] = a[:, STEP0]
        merged[:, TIME0] = a[:, TIME0]
        for i in self.column.values():
            merged[:, i + FIRST] = a[:, i + FIRST]
            merged[:, i + LO] = np.fmin(a[:, i + LO], b[:, i + LO])
            merged[:, i + HI] = np.fmax(a[:, i + HI], b[:, i + HI])
            merged[:, i + SUM] = a[:, i + SUM] + b[:, i + SUM]
        half = self.capacity // 2
        d[:half] = merged
        self.n = half
        self.width *= 2

    def rows(self) -> np.ndarray:
        """Every bucket, the one filling now last (a view when none is filling)."""
        if self._open is None:
            return self.data[: self.n]
        return np.vstack([self.data[: self.n], np.array(self._open, dtype=float)])

    def exact(self) -> bool:
        """Whether every bucket is a single point (no merge has happened)."""
        return self.width == 1 and self._open is None

    def truncate(self, step: float) -> None:
        """Forget the points at ``step`` and after (a resumed run repeats them). A bucket that holds points on
        both sides of ``step`` goes too, leaving a gap of less than one bucket before the new points."""
        steps = self.data[: self.n, STEP1]
        keep = int(np.searchsorted(steps, step, side="left"))
        if keep < self.n or (self._open is not None and self._open[STEP1] >= step):
            self._open = None
        self.n = keep
        self.points = int(self.data[: self.n, COUNT].sum()) + (int(self._open[COUNT]) if self._open else 0)
        self.last_step = self._last_row()[STEP1] if self.points else None

    def set_channel(self, name: str, rows: np.ndarray) -> None:
        """Replace one channel's columns (FIRST, LAST, LO, HI, SUM) in every bucket, the open one last."""
        i = self.column[name]
        self.data[: self.n, i: i + PER_CHANNEL] = rows[: self.n]
        if self._open is not None:
            self._open[i: i + PER_CHANNEL] = [float(v) for v in rows[self.n]]

    # -- reading -------------------------------------------------------------------------------------------------

    def _last_row(self):
        return self._open if self._open is not None else self.data[self.n - 1]

    def span(self, axis: str) -> tuple[float, float] | None:
        """The first and last step (or time) recorded."""
        if not self.points:
            return None
        first, last = (TIME0, TIME1) if axis == "time" else (STEP0, STEP1)
        start = self.data[0] if self.n else self._open
        return float(start[first]), float(self._last_row()[last])

    def last(self, name: str) -> float | None:
        """The channel's latest value."""
        return float(self._last_row()[self.column[name] + LAST]) if self.points else None

    def means(self, axis: str, name: str) -> tuple[np.ndarray, np.ndarray]:
        """One point per bucket: its middle step (or time) and its mean; the exact points while no merge has
        happened."""
        rows = self.rows()
        first, last = (TIME0, TIME1) if axis == "time" else (STEP0, STEP1)
        x = (rows[:, first] + rows[:, last]) / 2
        return x, rows[:, self.column[name] + SUM] / np.maximum(rows[:, COUNT], 1)

    def extremes(self, name: str) -> np.ndarray:
        """The channel's values in order, for a y range: the exact points while every bucket is a single point,
        else each bucket's minimum and maximum (so skipping the first 5 % skips the first 5 % of the steps)."""
        rows = self.rows()
        i = self.column[name]
        if self.width == 1 and self.points == len(rows):
            return rows[:, i + FIRST].copy()
        return np.column_stack([rows[:, i + LO], rows[:, i + HI]]).ravel()

    def points_for(self, axis: str, name: str, columns: int) -> tuple[np.ndarray, np.ndarray]:
        """At most ~2 points per column: each column's minimum and maximum at its middle, plus the first and last
        point (a column is a run of whole buckets). A short curve of single points comes back whole."""
        rows = self.rows()
        n = len(rows)
        first, last = (TIME0, TIME1) if axis == "time" else (STEP0, STEP1)
        i = self.column[name]
        if n == 0:
            return np.empty(0), np.empty(0)
        if self.width == 1 and self.points == n and (n <= 2 * columns or columns < 1):
            return rows[:, first].copy(), rows[:, i + FIRST].copy()
        groups = max(1, min(columns, n))
        edges = np.linspace(0, n, groups + 1).astype(int)
        starts = edges[:-1]
        lo = np.fmin.reduceat(rows[:, i + LO], starts)
        hi = np.fmax.reduceat(rows[:, i + HI], starts)
        mid = (rows[starts, first] + rows[edges[1:] - 1, last]) / 2
        xs = np.concatenate([[rows[0, first]], np.repeat(mid, 2), [rows[-1, last]]])
        ys = np.concatenate([[rows[0, i + FIRST]], np.column_stack([lo, hi]).ravel(), [rows[-1, i + LAST]]])
        return xs, ys
