"""The New run screen: corpus, cell, preset and hyperparameters, checked before the run starts. Cells and corpora
come from the inventory (rnntui.engine.inventory), so this process never loads a plugin or torch."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.validation import Integer, Number
from textual.widgets import Button, Footer, Input, Label, LoadingIndicator, Select, Static

from rnntui.core.config import PRESETS, ConfigError, apply_preset, validate
from rnntui.corpora import DEFAULT_CORPUS
from rnntui.engine import inventory

# field id -> (label, TrainConfig field, kind, validator)
FIELDS = {
    "layers": ("layers", "n_layer", int, Integer(minimum=1)),
    "hidden": ("hidden size", "n_hidden", int, Integer(minimum=1)),
    "seq-len": ("sequence length", "seq_len", int, Integer(minimum=1)),
    "batch": ("batch size", "batch_size", int, Integer(minimum=1)),
    "lr": ("learning rate", "lr", float, Number(minimum=0)),
    "dropout": ("dropout", "dropout", float, Number(minimum=0, maximum=0.999)),
    "clip": ("gradient clip", "clip", float, Number(minimum=0)),
    "max-steps": ("budget: steps", "max_steps", int, Integer(minimum=1)),
    "max-time": ("budget: seconds", "max_time", float, Number(minimum=0)),
}
OPTIONAL = {"max-steps", "max-time"}


def corpus_details(row: dict[str, Any]) -> str:
    """What is known of a corpus without reading it (an inventory row): description, source, licence, size, and
    whether it is here or needs a download."""
    lines = [row["description"]]
    lines += [f"{key}: {row[key]}" for key in ("source", "licence") if row.get(key)]
    facts = [f"size: {row['size']:,} characters"] if row.get("size") else []
    if not row["offline"]:
        url = f" ({row['url']})" if row.get("url") else ""
        facts.append(f"not downloaded yet: `rnntui corpora fetch {row['name']}`{url}")
    if facts:
        lines.append(" · ".join(facts))
    return "\n".join(line for line in lines if line)


def cell_details(row: dict[str, Any]) -> str:
    """A cell's description and options (an inventory row), and its size at the default hidden size."""
    text = row["description"] or "(no description)"
    if row["hyperparameters"]:
        text += "\noptions: " + ", ".join(f"{k}={v!r}" for k, v in row["hyperparameters"].items())
    if row.get("parameters") is not None:
        text += f"\n{row['parameters']:,} parameters per layer at {row['input_size']}→{row['hidden_size']}"
    return text


class NewRunScreen(Screen[dict | None]):
    """Returns the new run's TrainConfig as a dict, or None."""

    VERTICAL_BREAKPOINTS = [(0, "-short"), (40, "-tall")]

    BINDINGS = [
        Binding("ctrl+s", "start", "Start run"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self):
        super().__init__()
        self.inventory: inventory.Inventory | None = None
        self.presets = {name: apply_preset(name) for name in PRESETS}
        self.filled_preset = None  # the preset the fields were last filled from

    def compose(self) -> ComposeResult:
        yield Label("New run", classes="screen-title")
        yield LoadingIndicator(id="loading")
        with VerticalScroll(id="form"):
            with Horizontal(classes="row"):
                yield Label("corpus")
                yield Select([], id="corpus", allow_blank=True, prompt="a registered corpus", compact=True)
            with Horizontal(classes="row"):
                yield Label("or a text file")
                yield Input(placeholder="path to a UTF-8 text file (overrides the corpus above)", id="corpus-path",
                            compact=True)
            yield Static("", id="corpus-details", classes="details", markup=False)
            with Horizontal(classes="row"):
                yield Label("cell")
                yield Select([], id="cell", prompt="a registered cell", compact=True)
            yield Static("", id="cell-details", classes="details", markup=False)
            with Horizontal(classes="row"):
                yield Label("preset")
                yield Select([], id="preset", prompt="a preset", compact=True)
            for field_id, (label, _, kind, validator) in FIELDS.items():
                with Horizontal(classes="row"):
                    yield Label(label)
                    yield Input(id=field_id, type="integer" if kind is int else "number", validators=[validator],
                                valid_empty=field_id in OPTIONAL, compact=True,
                                placeholder="none: until stopped" if field_id in OPTIONAL else "")
            yield Label("", id="form-error")
            with Horizontal(id="buttons"):
                yield Button("Start (ctrl+s)", id="start", variant="primary")
                yield Button("Cancel (Esc)", id="cancel")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#form").display = False
        self._load()

    @work(exclusive=True, group="load-inventory")
    async def _load(self) -> None:
        try:
            self.inventory = inventory.cached() or await asyncio.to_thread(inventory.load)
        except Exception as e:  # a broken plugin set-up must not take the screen down
            self.query_one("#loading").display = False
            self.query_one("#form-error", Label).update(f"could not load cells and corpora: {e}")
            self.query_one("#form").display = True
            return
        corpora = sorted(row["name"] for row in self.inventory.corpora)
        self.query_one("#corpus", Select).set_options([(name, name) for name in corpora])
        cells = sorted(row["name"] for row in self.inventory.cells)
        self.query_one("#cell", Select).set_options([(name, name) for name in cells])
        self.query_one("#preset", Select).set_options([(name, name) for name in self.presets])
        self.query_one("#corpus", Select).value = DEFAULT_CORPUS if DEFAULT_CORPUS in corpora else corpora[0]
        self.query_one("#preset", Select).value = "default" if "default" in self.presets else next(iter(self.presets))
        self._fill_from_preset()
        self.query_one("#loading").display = False
        self.query_one("#form").display = True
        self.query_one("#corpus", Select).focus()

    def _fill_from_preset(self) -> None:
        preset = self.query_one("#preset", Select).value
        config = self.presets.get(preset)
        if config is None or preset == self.filled_preset:
            return
        self.filled_preset = preset
        for field_id, (_, name, kind, _) in FIELDS.items():
            value = getattr(config, name)
            self.query_one(f"#{field_id}", Input).value = "" if value is None else (
                str(value) if kind is int else f"{value:g}")
        if self.inventory is not None and self.inventory.cell(config.cell):
            self.query_one("#cell", Select).value = config.cell

    @on(Select.Changed, "#preset")
    def _preset_changed(self) -> None:
        self._fill_from_preset()

    @on(Select.Changed, "#corpus")
    def _corpus_changed(self, event: Select.Changed) -> None:
        row = self.inventory.corpus(event.value) if self.inventory else None
        self.query_one("#corpus-details", Static).update(corpus_details(row) if row else "")

    @on(Select.Changed, "#cell")
    def _cell_changed(self, event: Select.Changed) -> None:
        row = self.inventory.cell(event.value) if self.inventory else None
        self.query_one("#cell-details", Static).update(cell_details(row) if row else "")

    # -- checking and starting -----------------------------------------------------------------------------------

    def build_config(self) -> dict:
        """The form -> TrainConfig dict; raises ValueError with the reason for the first invalid value."""
        if self.inventory is None:
            raise ValueError("cells and corpora are still loading")
        preset = self.query_one("#preset", Select).value
        if preset not in self.presets:
            raise ValueError("choose a preset")
        overrides: dict[str, Any] = {}
        path = self.query_one("#corpus-path", Input).value.strip()
        if path:
            file = Path(path).expanduser()
            if not file.is_file():
                raise ValueError(f"{path}: no such file; give a path to a text file, or leave it empty")
            overrides["corpus"] = str(file.resolve())
        else:
            corpus = self.query_one("#corpus", Select).value
            if corpus is Select.NULL:
                raise ValueError("choose a corpus or give a text file")
            overrides["corpus"] = corpus
        cell = self.query_one("#cell", Select).value
        if cell is Select.NULL or not self.inventory.cell(cell):
            raise ValueError("choose a cell")
        overrides["cell"] = cell
        if cell != self.presets[preset].cell:
            overrides["cell_options"] = {}  # the preset's options belong to the preset's cell
        for field_id, (label, name, kind, _) in FIELDS.items():
            text = self.query_one(f"#{field_id}", Input).value.strip()
            if not text:
                if field_id in OPTIONAL:
                    overrides[name] = None
                    continue
                raise ValueError(f"{label}: give a value")
            try:
                overrides[name] = kind(text)
            except ValueError:
                raise ValueError(f"{label}: {text!r} is not a {'whole number' if kind is int else 'number'}") \
                    from None
        try:
            config = apply_preset(preset, **overrides)
            validate(config)
        except ConfigError as e:
            raise ValueError(str(e)) from None
        return config.to_json()

    @on(Button.Pressed, "#start")
    @on(Input.Submitted)
    def action_start(self) -> None:
        error = self.query_one("#form-error", Label)
        try:
            config = self.build_config()
        except ValueError as e:
            error.update(f"✗ {e}")
            return
        error.update("")
        self.dismiss(config)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
