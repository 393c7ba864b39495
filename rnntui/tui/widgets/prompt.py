"""The prompt pane: type a prompt, Enter streams the model's continuation from the current weights."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.widgets import Input, Label, Static, TextArea

MAX_SHOWN = 20_000  # characters of a continuation kept on screen (length 0 generates until Escape)


class PromptArea(TextArea):
    """Multi-line prompt: Enter submits, ctrl+j (or shift+enter / alt+enter where the terminal sends it) starts a
    new line, pasted text keeps its lines."""

    BINDINGS = [
        Binding("enter", "submit", "Generate", priority=True),
        Binding("ctrl+j,shift+enter,alt+enter", "newline", "New line", key_display="^j"),
    ]

    @dataclass
    class Submitted(Message):
        area: PromptArea
        text: str

    def action_submit(self) -> None:
        self.post_message(self.Submitted(self, self.text))

    def action_newline(self) -> None:
        self.insert("\n")


class NumberField(Input):
    """A number that up/down change by a step; empty means "off" where that is allowed."""

    BINDINGS = [
        Binding("up", "bump(1)", "More", show=False),
        Binding("down", "bump(-1)", "Less", show=False),
    ]

    def __init__(self, value, *, step: float, low: float, high: float, integer: bool = False,
                 optional: bool = False, **kwargs):
        self.step, self.low, self.high, self.integer, self.optional = step, low, high, integer, optional
        super().__init__(self._format(value), type="integer" if integer else "number",
                         placeholder="off" if optional else "", compact=True, select_on_focus=True, **kwargs)

    def _format(self, value) -> str:
        if value is None:
            return ""
        return str(int(value)) if self.integer else f"{value:g}"

    @property
    def number(self) -> float | int | None:
        """The value, clamped into range; None when empty and optional."""
        text = self.value.strip()
        if not text:
            return None if self.optional else self.low
        try:
            value = int(float(text)) if self.integer else float(text)
        except ValueError:
            return None if self.optional else self.low
        return min(max(value, self.low), self.high)

    def set_number(self, value) -> None:
        self.value = self._format(value)

    def action_bump(self, direction: int) -> None:
        current = self.number
        if current is None:
            new = self.low if direction > 0 else None
        else:
            new = current + direction * self.step
            if self.optional and new < self.low:
                new = None
            else:
                new = min(max(new, self.low), self.high)
                if not self.integer:
                    new = round(new, 4)
        self.set_number(new)


class PromptPane(Vertical):
    """The prompt, the sampling settings, and the streamed continuation."""

    ALLOW_MAXIMIZE = True

    @dataclass
    class Generate(Message):
        prompt: str
        temperature: float
        top_k: int | None
        top_p: float | None
        length: int

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.request: int | None = None
        self.prompt_used = ""
        self.continuation: list[str] = []
        self.shown_chars = 0
        self.generating = False
        self.stopped = False

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="gen-output"):
            yield Static(Text("Type a prompt below and press Enter: the model continues it, from its weights as "
                              "they are now, while training goes on.", style="dim"), id="continuation")
        yield Label("", id="gen-notice", markup=False)
        yield PromptArea(id="prompt-input", soft_wrap=True, show_line_numbers=False, compact=True,
                         placeholder="Prompt (Enter: generate · ^j: new line · Esc: stop)")
        with Horizontal(id="gen-settings"):
            yield Label("temp", classes="field-label")
            yield NumberField(0.8, step=0.1, low=0.001, high=5.0, id="temperature", tooltip="temperature")
            yield Label("top-k", classes="field-label")
            yield NumberField(None, step=1, low=1, high=100_000, integer=True, optional=True, id="top-k",
                              tooltip="sample among the k likeliest characters (empty: off)")
            yield Label("top-p", classes="field-label")
            yield NumberField(None, step=0.05, low=0.05, high=1.0, optional=True, id="top-p",
                              tooltip="sample among the likeliest characters holding mass p (empty: off)")
            yield Label("length", classes="field-label")
            yield NumberField(500, step=100, low=0, high=1_000_000, integer=True, id="length",
                              tooltip="characters to generate (0: until Esc)")

    def on_mount(self) -> None:
        self.border_title = "Prompt"
        self.query_one("#gen-notice").display = False
        self._subtitle()

    def _subtitle(self) -> None:
        if self.generating:
            self.border_subtitle = f"generating · {self.shown_chars:,} chars · Esc stops"
        elif self.shown_chars:
            self.border_subtitle = f"{self.shown_chars:,} chars written · Enter generate · ^↑/^↓ temperature"
        else:
            self.border_subtitle = "Enter generate · ^↑/^↓ temperature · Tab settings"

    # -- settings ------------------------------------------------------------------------------------------------

    def field(self, name: str) -> NumberField:
        return self.query_one(f"#{name}", NumberField)

    def settings(self) -> tuple[float, int | None, float | None, int]:
        return (self.field("temperature").number, self.field("top-k").number, self.field("top-p").number,
                int(self.field("length").number))

    def bump_temperature(self, direction: int) -> float:
        field = self.field("temperature")
        field.action_bump(direction)
        return field.number

    # -- generation ----------------------------------------------------------------------------------------------

    @on(PromptArea.Submitted)
    def _submitted(self, message: PromptArea.Submitted) -> None:
        message.stop()
        temperature, top_k, top_p, length = self.settings()
        self.post_message(self.Generate(message.text, temperature, top_k, top_p, length))

    def begin(self, request: int) -> None:
        self.request = request
        self.generating = True
        self.prompt_used = ""
        self.continuation = []
        self.shown_chars = 0
        self.stopped = False
        self.query_one("#gen-notice").display = False
        self._render_output()
        self._subtitle()

    def started(self, prompt: str, dropped: str) -> None:
        self.prompt_used = prompt
        notice = self.query_one("#gen-notice", Label)
        if dropped:
            notice.update(f"⚠ dropped characters the model never saw: {dropped!r}")
            notice.display = True
        self._render_output()

    def add_text(self, text: str) -> None:
        self.continuation.append(text)
        self.shown_chars += len(text)
        if self.shown_chars > MAX_SHOWN * 2:
            joined = "".join(self.continuation)[-MAX_SHOWN:]
            self.continuation = [joined]
        self._render_output()
        self._subtitle()

    def finish(self, reason: str, message: str | None = None) -> None:
        self.generating = False
        self.request = None
        if reason == "error" and message:
            notice = self.query_one("#gen-notice", Label)
            notice.update(f"✗ {message}")
            notice.display = True
        elif reason == "cancelled":
            self.stopped = True
            self._render_output()
        self._subtitle()

    def _render_output(self) -> None:
        text = Text()
        text.append(self.prompt_used[-MAX_SHOWN:], style="dim")
        text.append("".join(self.continuation))
        if self.stopped:
            text.append("  [stopped]", style="dim italic")
        self.query_one("#continuation", Static).update(text)
        scroller = self.query_one("#gen-output", VerticalScroll)
        scroller.call_after_refresh(scroller.scroll_end, animate=False)

