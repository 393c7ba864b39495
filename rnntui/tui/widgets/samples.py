"""The samples pane: the text the model wrote at each stage of training, newest last, the whole history kept."""

from __future__ import annotations

import math

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Label, Static

from rnntui import events
from rnntui.tui.format import duration


def sample_header(sample: events.Sample, bits: bool = False) -> str:
    parts = [f"step {sample.step:,}", duration(sample.elapsed)]
    if sample.val_loss is not None and math.isfinite(sample.val_loss):
        value = sample.val_loss / math.log(2) if bits else sample.val_loss
        parts.append(f"val {value:.3f} {'bits' if bits else 'nats'}")
    else:
        parts.append("val –")
    if sample.temperature != 1.0:
        parts.append(f"T {sample.temperature:g}")
    return " · ".join(parts)


class SampleEntry(Vertical):
    def __init__(self, sample: events.Sample, bits: bool = False):
        super().__init__(classes="sample")
        self.sample = sample
        self._bits = bits

    def compose(self) -> ComposeResult:
        yield Label(sample_header(self.sample, self._bits), classes="sample-header", markup=False)
        yield Static(self.sample.text, classes="sample-text", markup=False)

    def set_bits(self, bits: bool) -> None:
        self._bits = bits
        if self.is_mounted:
            self.query_one(".sample-header", Label).update(sample_header(self.sample, bits))


class SamplesPane(VerticalScroll):
    """Scrollable history of samples. It follows the newest unless the reader has scrolled up."""

    ALLOW_MAXIMIZE = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.bits = False
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
        self.mount_all([SampleEntry(sample, self.bits) for sample in found])
        self.count += len(found)
        self.border_title = f"Samples · {self.count}"
        if at_end:
            self.call_after_refresh(self.scroll_end, animate=False)

    def set_bits(self, bits: bool) -> None:
        self.bits = bits
        for entry in self.query(SampleEntry):
            entry.set_bits(bits)
