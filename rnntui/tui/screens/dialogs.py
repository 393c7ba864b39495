"""Small modal dialogs: quit while training, confirm, and the budget for resuming a run."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label

from rnntui.util.units import duration


class QuitScreen(ModalScreen[str | None]):
    """Quitting while a run trains: keep a final checkpoint, or not."""

    BINDINGS = [
        Binding("k", "choose('checkpoint')", "Keep a checkpoint and quit"),
        Binding("d", "choose('discard')", "Quit without a checkpoint"),
        Binding("escape", "choose(None)", "Cancel"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label("A run is training. Quit and stop it?", classes="question")
            yield Label("Keeping a checkpoint lets you resume it exactly later (o: Runs).", classes="question")
            with Horizontal(classes="buttons"):
                yield Button("Keep a checkpoint (k)", id="checkpoint", variant="primary")
                yield Button("Don't keep (d)", id="discard", variant="error")
                yield Button("Cancel (Esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#checkpoint").focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(None if event.button.id == "cancel" else event.button.id)

    def action_choose(self, choice: str | None) -> None:
        self.dismiss(choice)


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, yes: str = "Yes"):
        super().__init__()
        self.question = question
        self.yes = yes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self.question, classes="question", markup=False)
            with Horizontal(classes="buttons"):
                yield Button(f"{self.yes} (y)", id="yes", variant="error")
                yield Button("No (n)", id="no")

    def on_mount(self) -> None:
        self.query_one("#no").focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class ResumeScreen(ModalScreen[tuple[int | None, float | None] | None]):
    """The budget to resume a run up to: total steps and/or total training seconds (the run's own count)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, path: Path, budget: dict):
        super().__init__()
        self.path = Path(path)
        self.budget = budget

    def compose(self) -> ComposeResult:
        b = self.budget
        step, max_steps, max_time = b.get("step", 0), b.get("max_steps"), b.get("max_time")
        spent = (max_steps is not None and step >= max_steps) or (max_time is not None and
                                                                  b.get("train_time", 0) >= max_time)
        if spent:  # offer as much again
            max_steps = step + (max_steps or step) if max_steps else None
            max_time = b.get("train_time", 0) + max_time if max_time else None
        with Vertical(classes="dialog"):
            yield Label(f"Resume {self.path.name} exactly from step {step:,} "
                        f"({duration(b.get('train_time'))} trained).", classes="question", markup=False)
            yield Label("Budget, counted from the start of the run (leave both empty to train until stopped):",
                        classes="question")
            with Horizontal(classes="row"):
                yield Label("total steps")
                yield Input("" if max_steps is None else str(max_steps), type="integer", id="max-steps")
            with Horizontal(classes="row"):
                yield Label("total seconds")
                yield Input("" if max_time is None else f"{max_time:g}", type="number", id="max-time")
            yield Label("", classes="error", id="resume-error")
            with Horizontal(classes="buttons"):
                yield Button("Resume", id="resume", variant="primary")
                yield Button("Cancel (Esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#max-steps").focus()

    @on(Input.Submitted)
    @on(Button.Pressed, "#resume")
    def _resume(self) -> None:
        step, trained = self.budget.get("step", 0), self.budget.get("train_time", 0.0)
        try:
            text = self.query_one("#max-steps", Input).value.strip()
            max_steps = int(text) if text else None
            text = self.query_one("#max-time", Input).value.strip()
            max_time = float(text) if text else None
        except ValueError:
            self.query_one("#resume-error", Label).update("write whole steps and seconds as numbers")
            return
        if max_steps is not None and max_steps <= step:
            self.query_one("#resume-error", Label).update(f"total steps must be more than {step:,}, where it is")
            return
        if max_time is not None and max_time <= trained:
            self.query_one("#resume-error", Label).update(f"total seconds must be more than {trained:.0f}")
            return
        self.dismiss((max_steps, max_time))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
