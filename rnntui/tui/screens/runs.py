"""The Runs screen: past runs with their curves and samples; open, resume exactly, compare, delete."""

from __future__ import annotations

import shutil
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, Static
from textual_plot import HiResMode

from rnntui.core.runs import checkpoint_budget, list_runs
from rnntui.tui.history import RunRecord, load_run, robust_limits
from rnntui.tui.screens.dialogs import ConfirmScreen, ResumeScreen
from rnntui.tui.widgets.loss import PreviewPlot
from rnntui.tui.widgets.samples import sample_header
from rnntui.util.paths import runs_dir
from rnntui.util.units import bits, duration


class RunsScreen(Screen[None]):
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    BINDINGS = [
        Binding("o", "open", "Open", tooltip="Open the run: its curves and samples, its model paused (Enter too)"),
        Binding("r", "resume", "Resume"),
        Binding("c", "compare", "Compare"),
        Binding("d", "delete", "Delete"),
        Binding("escape,q", "close", "Back"),
    ]

    def __init__(self):
        super().__init__()
        self.paths: list[Path] = []
        self.record: RunRecord | None = None

    def compose(self) -> ComposeResult:
        yield Label("Runs", classes="screen-title")
        with Horizontal(id="runs-body"):
            yield DataTable(id="runs-table", cursor_type="row", zebra_stripes=True)
            with Vertical(id="run-detail"):
                yield PreviewPlot(id="run-preview", allow_pan_and_zoom=False)
                yield Static("", id="run-info", markup=False)
                with VerticalScroll(id="run-samples"):
                    yield Static("", id="run-samples-text", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(" ", "run", "corpus", "cell", "steps", "best val", "bits/char", "date")
        self.reload()
        table.focus()

    def reload(self) -> None:
        table = self.query_one(DataTable)
        table.clear()
        found = list(reversed(list_runs()))  # newest first
        self.paths = [r.path for r in found]
        current = getattr(self.app, "run_dir", None)
        overlays = getattr(self.app, "overlays", {})
        for r in found:
            mark = ("●" if current is not None and Path(current) == r.path else " ") + \
                   ("≈" if r.name in overlays else " ")
            best = "–" if r.best_val_loss is None else f"{r.best_val_loss:.4f}"
            bpc = "–" if r.best_val_loss is None else f"{bits(r.best_val_loss):.3f}"
            table.add_row(mark, r.name, r.corpus, r.cell, f"{r.steps:,}", best, bpc, r.created, key=str(r.path))
        self.query_one(".screen-title", Label).update(
            f"Runs · {len(found)} in {runs_dir()}  (● current · ≈ overlaid on the loss plot)")
        if not found:
            self.query_one("#run-info", Static).update("No runs yet. Press Esc, then n to start one.")

    def selected(self) -> Path | None:
        table = self.query_one(DataTable)
        if not self.paths or table.cursor_row is None or not 0 <= table.cursor_row < len(self.paths):
            return None
        return self.paths[table.cursor_row]

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        path = self.selected()
        if path is not None:
            self.show(path)

    @on(DataTable.RowSelected)
    def _selected(self) -> None:
        self.action_open()

    def show(self, path: Path) -> None:
        record = self.record = load_run(path)
        preview = self.query_one("#run-preview", PreviewPlot)
        preview.clear()
        h = record.history
        width = max(preview.size.width - 8, 10)
        shown = []
        if len(h.train):
            x, y = h.train.points_for("step", "smooth", width)
            preview.plot(x, y, line_style=self.app.get_css_variables().get("primary", "white"),
                         hires_mode=HiResMode.BRAILLE)
            shown.append(h.train.extremes("smooth"))
        if len(h.val):
            x, y = h.val.points_for("step", "value", width)
            preview.plot(x, y, line_style=self.app.get_css_variables().get("accent", "yellow"),
                         hires_mode=HiResMode.BRAILLE)
            shown.append(h.val.extremes("value"))
        limits = robust_limits(shown)
        preview.set_ylimits(*(limits or (None, None)))
        c = record.config
        budget = checkpoint_budget(path)
        lines = [f"{record.name}",
                 f"corpus {record.info.get('corpus', '?')}",
                 f"{c.get('cell', '?')} {c.get('n_layer', '?')}×{c.get('n_hidden', '?')} · seq {c.get('seq_len', '?')}"
                 f" · batch {c.get('batch_size', '?')} · lr {c.get('lr', '?')} · {record.info.get('n_params', 0):,}"
                 " params"]
        if budget:
            limit = []
            if budget.get("max_steps"):
                limit.append(f"{budget['max_steps']:,} steps")
            if budget.get("max_time"):
                limit.append(duration(budget["max_time"]))
            lines.append(f"checkpoint at step {budget['step']:,} · {duration(budget['train_time'])} trained · "
                         f"budget {' / '.join(limit) or 'none'}")
        else:
            lines.append("no checkpoint yet")
        if record.done is not None:
            lines.append(f"ended: {record.done.reason.replace('_', ' ')} at step {record.done.step:,}")
        self.query_one("#run-info", Static).update("\n".join(lines))
        samples = record.samples[-5:]
        text = "\n\n".join(f"── {sample_header(s)}\n{s.text}" for s in samples) or "no samples yet"
        self.query_one("#run-samples-text", Static).update(text)

    # -- actions -------------------------------------------------------------------------------------------------

    def action_open(self) -> None:
        path = self.selected()
        if path is not None:
            self.dismiss(None)
            self.app.open_run(path)

    def action_resume(self) -> None:
        path = self.selected()
        if path is None:
            return
        budget = checkpoint_budget(path)
        if not budget:
            self.notify(f"{path.name} has no checkpoint to resume from.", severity="warning")
            return

        def chosen(result) -> None:
            if result is not None:
                self.dismiss(None)
                self.app.resume_run(path, *result)

        self.app.push_screen(ResumeScreen(path, budget), chosen)

    def action_compare(self) -> None:
        path = self.selected()
        if path is None:
            return
        shown = self.app.toggle_overlay(path)
        row = self.query_one(DataTable).cursor_row
        self.reload()
        self.query_one(DataTable).move_cursor(row=row)
        self.notify(f"{path.name} {'overlaid on' if shown else 'removed from'} the loss plot.", timeout=2)

    def action_delete(self) -> None:
        path = self.selected()
        if path is None:
            return
        engine = getattr(self.app, "engine", None)
        if engine is not None and engine.alive and getattr(self.app, "run_dir", None) is not None \
                and Path(self.app.run_dir) == path:
            self.notify("This run is loaded; start or open another run before deleting it.", severity="warning")
            return

        def answered(yes: bool) -> None:
            if yes:
                if path.name in self.app.overlays:
                    self.app.toggle_overlay(path)
                shutil.rmtree(path, ignore_errors=True)
                self.notify(f"Deleted {path.name}.")
                self.reload()

        self.app.push_screen(ConfirmScreen(f"Delete {path.name} and its checkpoints? This cannot be undone.",
                                           yes="Delete"), answered)

    def action_close(self) -> None:
        self.dismiss(None)
