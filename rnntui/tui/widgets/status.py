"""The status bar (what is running and how fast) and the error panel."""

from __future__ import annotations

import math
from pathlib import Path

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Collapsible, Label, Static

from rnntui import events
from rnntui.util.units import duration, loss, si

STATE_STYLES = {
    "starting": ("◌ starting", "bold yellow"), "running": ("● training", "bold green"),
    "paused": ("❚❚ paused", "bold yellow"), "finished": ("■ finished", "bold cyan"),
    "stopped": ("■ stopped", "bold cyan"), "error": ("✗ error", "bold red"), "crashed": ("✗ crashed", "bold red"),
    "idle": ("○ no run", "dim"), "opened": ("❚❚ opened", "bold yellow"),
}


class StatusBar(Static):
    """Two lines: the run (name, corpus, cell, parameters, device) and its progress (step, epoch, chars/s,
    elapsed, ETA for the budget, learning rate, pre-clip gradient norm and its split by layer, losses)."""

    def __init__(self, **kwargs):
        super().__init__("", **kwargs)
        self.clear()

    def clear(self) -> None:
        self.state = "idle"
        self.started: events.Started | None = None
        self.shape = ""
        self.last: events.Step | None = None
        self.loss: float | None = None
        self.val: float | None = None
        self.best: float | None = None
        self.bits = False
        self.speed: float | None = None  # chars/s, smoothed over steps
        self.grad_flow: dict[str, float] = {}  # the latest pre-clip gradient norm of each part, embedding to head
        self.pending = False  # a run waits for `space` (rnntui --no-start)
        self.dirty = True

    def on_resize(self) -> None:
        self.dirty = True
        self.refresh_status()

    def add_step(self, event: events.Step) -> None:
        self.last = event
        if math.isfinite(event.chars_per_sec):
            self.speed = event.chars_per_sec if self.speed is None else 0.9 * self.speed + 0.1 * event.chars_per_sec

    def set_started(self, started: events.Started, shape: str = "") -> None:
        self.started = started
        self.shape = shape
        self.dirty = True

    def render_status(self) -> Text:
        """Line 1: the run; then the progress, packed into the width (one or two lines),
        most important first: step, losses, speed, ETA, elapsed, epoch, learning rate, gradient norm."""
        width = self.size.width or 120
        label, style = STATE_STYLES.get(self.state, (self.state, "bold"))
        top = Text(no_wrap=True, overflow="ellipsis")
        top.append(f" {label} ", style=style)
        s = self.started
        if s is not None:
            top.append(Path(s.run_dir).name, style="bold")
            corpus = Path(s.corpus).name if ("/" in s.corpus or "\\" in s.corpus) else s.corpus
            cell = f"{s.cell} {self.shape}".strip()
            top.append(f" · {corpus} · {cell} · {si(s.n_params)} params · {s.device}")
        elif self.state == "idle":
            hint = "space starts training · n another run · o a past one" if self.pending else \
                "n starts a new run · o opens a past one"
            top.append(hint, style="dim")
        top.truncate(width, overflow="ellipsis")
        step = self.last.step if self.last else (s.step if s else 0)
        budget = f"/{s.max_steps:,}" if s and s.max_steps else ""
        units = " bits" if self.bits else ""
        best = f" (best {loss(self.best, self.bits)})" if self.best is not None else ""
        parts: list[tuple[str, str]] = [(f"step {step:,}{budget}", "bold"), (f"loss {loss(self.loss, self.bits)}", "bold"),
                                        (f"val {loss(self.val, self.bits)}{units}{best}", "bold")]
        if self.last is not None:
            e = self.last
            speed = self.speed if self.speed is not None else e.chars_per_sec
            parts += [(f"{si(speed)} chars/s", ""), (f"ETA {duration(e.eta) if e.eta is not None else '∞'}", ""),
                      (f"{duration(e.elapsed)} trained", ""), (f"epoch {e.epoch:.2f}", ""), (f"lr {e.lr:.2e}", ""),
                      (f"‖g‖ {e.grad_norm:.3g}", "")]
        if self.grad_flow:  # how the gradient shrinks (or grows) on its way down the stack
            parts.append(("‖g‖ by layer, embedding→head " + " ".join(f"{n:.2g}" for n in self.grad_flow.values()),
                          "dim"))
        lines = [Text(" ")]
        for text, part_style in parts:
            line = lines[-1]
            sep = " · " if len(line) > 1 else ""
            if len(line) + len(sep) + len(text) > width and len(line) > 1:
                if len(lines) == 2:
                    break
                line = Text(" ")
                lines.append(line)
                sep = ""
            line.append(sep)
            line.append(text, style=part_style)
        return Text("\n").join([top, *lines])

    def refresh_status(self, force: bool = False) -> None:
        if self.dirty or force:
            self.dirty = False
            text = self.render_status()
            lines = text.plain.count("\n") + 1
            # a layout pass only when the bar changes height: the text alone changes several times a second
            self.update(text, layout=lines != self.size.height)


class ErrorPanel(Vertical):
    """The run's error: the message, the traceback (folded), and the way on. The app stays usable around it."""

    def compose(self) -> ComposeResult:
        yield Label("", id="error-message", markup=False)
        with Collapsible(title="traceback", id="error-traceback", collapsed=True):
            with VerticalScroll():
                yield Static("", id="error-traceback-text", markup=False)
        yield Label("", id="error-hint", classes="hint")

    def on_mount(self) -> None:
        self.border_title = "The run stopped with an error"

    def show_error(self, message: str, traceback: str | None, answers: bool = False) -> None:
        """``answers``: the run's process is alive, so the prompt still answers from the last weights."""
        self.query_one("#error-message", Label).update(message)
        hint = "e/Esc hides this · n new run · o past runs"
        self.query_one("#error-hint", Label).update(hint + (" · the prompt still answers" if answers else ""))
        collapsible = self.query_one("#error-traceback", Collapsible)
        collapsible.display = bool(traceback)
        self.query_one("#error-traceback-text", Static).update(traceback or "")
        self.display = True
