"""The Plugins screen: loaded plugins, what each registered, and failures with their tracebacks (from the
inventory: rnntui.engine.inventory, so this process never loads a plugin or torch)."""

from __future__ import annotations

import asyncio

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label, LoadingIndicator, Static

from rnntui.engine import inventory


def _short(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class PluginsScreen(Screen[None]):
    BINDINGS = [Binding("escape,q", "close", "Back")]

    def __init__(self):
        super().__init__()
        self.rows: list[dict] = []

    def compose(self) -> ComposeResult:
        yield Label("Plugins", classes="screen-title")
        yield LoadingIndicator(id="loading")
        yield DataTable(id="plugins-table", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="plugin-detail"):
            yield Static("", id="plugin-text", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("plugin", "status", "version", "source", "cells", "corpora")
        self._load()

    @work(exclusive=True, group="load-plugins")
    async def _load(self) -> None:
        table = self.query_one(DataTable)
        try:
            self.rows = (inventory.cached() or await asyncio.to_thread(inventory.load)).plugins
        except Exception as e:
            self.rows = []
            self.query_one("#plugin-text", Static).update(f"the plugin manager failed: {e}")
        self.query_one("#loading").display = False
        for row in self.rows:
            table.add_row(row["name"], row["status"], row["version"], row["source"],
                          _short(", ".join(row["cells"]) or "–"), _short(", ".join(row["corpora"]) or "–"))
        failed = sum(1 for r in self.rows if r["errors"])
        self.query_one(".screen-title", Label).update(
            f"Plugins · {len(self.rows)} loaded" + (f" · {failed} with failures" if failed else ""))
        if self.rows:
            self._show(0)
        table.focus()

    @on(DataTable.RowHighlighted)
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show(event.cursor_row)

    def _show(self, index: int) -> None:
        if not 0 <= index < len(self.rows):
            return
        row = self.rows[index]
        lines = [f"{row['name']} {row['version']} · {row['source']} · {row['location']}",
                 f"cells: {', '.join(row['cells']) or 'none'}",
                 f"corpora: {', '.join(row['corpora']) or 'none'}"]
        if row["note"]:
            lines.append(f"not loaded: {row['note']}")
        for error in row["errors"]:
            lines += ["", "Problem (what failed was skipped; everything else works):", error]
        self.query_one("#plugin-text", Static).update("\n".join(lines))

    def action_close(self) -> None:
        self.dismiss(None)
