"""The samples pane: the text the model wrote at each stage of training, newest last. A long run's pane keeps the
first stages and the latest samples (the run's samples.jsonl has them all), so it stays quick however long the
run."""

from __future__ import annotations

import math

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widget import Widget
from textual.widgets import Static

from rnntui import events
from rnntui.util.units import bits as to_bits
from rnntui.util.units import duration


def sample_header(sample: events.Sample, bits: bool = False) -> str:
    parts = [f"step {sample.step:,}", duration(sample.elapsed)]
    if sample.val_loss is not None and math.isfinite(sample.val_loss):
        value = to_bits(sample.val_loss) if bits else sample.val_loss
        parts.append(f"val {value:.3f} {'bits' if bits else 'nats'}")
    else:
        parts.append("val –")
    if sample.temperature != 1.0:
        parts.append(f"T {sample.temperature:g}")
    return " · ".join(parts)


class SampleHeader(Widget):
    """Step, training time and validation loss of one sample, in the pane's units. Drawn from the pane's state,
    so switching units repaints only the headers on screen (the others when they scroll into view)."""

    DEFAULT_CSS = "SampleHeader { height: 1; width: 1fr; }"

    def __init__(self, sample: events.Sample, units: int):
        super().__init__(classes="sample-header")
        self.sample = sample
        self.units = units  # the pane's units version this header was drawn with

    def render(self) -> Text:
        pane = self.parent.parent if self.parent is not None else None
        bits = getattr(pane, "bits", False)
        return Text(sample_header(self.sample, bits), no_wrap=True, overflow="ellipsis")


class SampleEntry(Vertical):
    def __init__(self, sample: events.Sample, units: int = 0):
        super().__init__(classes="sample")
        self.sample = sample
        self.header = SampleHeader(sample, units)

    def compose(self) -> ComposeResult:
        yield self.header
        yield Static(self.sample.text, classes="sample-text", markup=False)


# 2,000 mounted samples made a unit switch take 1.3 s and each new batch of samples 2 s; 200 keep both instant.
MAX_SHOWN = 200
KEEP_FIRST = 8  # the first stages, from noise to words, stay in the pane


class SamplesPane(VerticalScroll):
    """Scrollable history of samples. It follows the newest unless the reader has scrolled up."""

    ALLOW_MAXIMIZE = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.bits = False
        self.units = 0  # bumped when the units change
        self.count = 0

    def on_mount(self) -> None:
        self.border_title = "Samples"
        self._empty = Static("Samples appear here as the model trains: first noise, then words, then style.",
                             classes="placeholder")
        self.mount(self._empty)

    def clear(self) -> None:
        self.count = 0
        self.remove_children(".sample")
        if self.is_mounted:
            self._empty.display = True
        self.border_title = "Samples"

    def add_samples(self, found: list[events.Sample]) -> None:
        if not found:
            return
        at_end = self.scroll_y >= self.max_scroll_y - 1
        self._empty.display = False
        shown = list(self.query_children(SampleEntry))
        first = max(0, KEEP_FIRST - len(shown))
        kept = found[:first] + found[first:][-(MAX_SHOWN - KEEP_FIRST):]
        self.mount_all([SampleEntry(sample, self.units) for sample in kept])
        excess = len(shown) + len(kept) - MAX_SHOWN
        if excess > 0:
            self.remove_children(shown[KEEP_FIRST:KEEP_FIRST + excess])
        self.count += len(found)
        self.border_title = f"Samples · {self.count:,}" + (
            f" · the first {KEEP_FIRST} and the last {MAX_SHOWN - KEEP_FIRST} shown" if self.count > MAX_SHOWN else "")
        if at_end:
            self.call_after_refresh(self.scroll_end, animate=False)

    def set_bits(self, bits: bool) -> None:
        self.bits = bits
        self.units += 1
        self._refresh_visible_headers()

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._refresh_visible_headers()

    def _refresh_visible_headers(self) -> None:
        top, bottom = self.scroll_y, self.scroll_y + self.size.height
        for entry in self.query_children(SampleEntry):
            region = entry.virtual_region
            if entry.header.units != self.units and region.bottom >= top and region.y <= bottom:
                entry.header.units = self.units
                entry.header.refresh()
