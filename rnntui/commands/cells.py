"""`rnntui cells`: every recurrent cell `rnntui train --cell` accepts, its plugin, description and size."""

from __future__ import annotations

import argparse
import json

from rnntui.commands import fail
from rnntui.commands.plugins import add_plugins_dir_everywhere
from rnntui.plugins import get_registry


def add_parser(sub) -> None:
    p = sub.add_parser(
        "cells", help="list the recurrent cells (built-in and from plugins)",
        description="List every cell `rnntui train --cell NAME` accepts: its plugin, whether it has a "
        "whole-sequence path (else rnntui runs its step in a loop), its parameter count for one layer of the "
        "given size, and its description.")
    p.add_argument("name", nargs="?", metavar="CELL", help="show this cell in full")
    p.add_argument("--json", action="store_true", help="print JSON (with the full descriptions and options)")
    p.add_argument("--hidden", type=int, default=256, help="hidden size for the parameter counts (256)")
    p.add_argument("--input", type=int, default=None, help="input size for the parameter counts (default: hidden)")
    p.set_defaults(run=run)
    add_plugins_dir_everywhere(sub)


def run(args: argparse.Namespace) -> int:
    if args.hidden < 1 or (args.input is not None and args.input < 1):
        return fail("--hidden and --input must be positive")
    registry = get_registry()
    if args.name is not None:
        try:
            registry.cell(args.name)
        except LookupError as e:
            return fail(str(e))
    from rnntui.plugins.listing import cell_rows  # lazy: it imports torch, which parsing options must not

    rows = cell_rows(registry, args.input or args.hidden, args.hidden, only=args.name)
    if args.json:
        print(json.dumps(rows, indent=1, default=str))
        return 0
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console(highlight=False)
    if args.name is not None:
        row = rows[0]
        options = ", ".join(f"{k}={v!r}" for k, v in row["hyperparameters"].items()) or "none"
        console.print(f"[bold]{escape(row['name'])}[/] from plugin {escape(row['plugin'])} "
                      f"{escape(row['plugin_version'])} ({row['source']})")
        console.print(escape(row["description"] or "(no description)"), markup=True)
        console.print(f"options: {escape(options)}  (--cell-option KEY=VALUE)")
        console.print(f"path: {'its own whole-sequence forward' if row['sequence_path'] else 'the step loop'}; "
                      f"parameters: {row['parameters']:,} at input {row['input_size']}, hidden {row['hidden_size']}")
        return 0
    cells = [(row["name"], row["plugin"], "sequence" if row["sequence_path"] else "steps",
              "-" if row["parameters"] is None else f"{row['parameters']:,}") for row in rows]
    headers = ("cell", "plugin", "path", f"params {rows[0]['input_size']}→{args.hidden}" if rows else "params")
    widths = [max([len(header), *(len(c[i]) for c in cells)]) for i, header in enumerate(headers)]
    room = max(20, console.width - sum(widths) - 2 * len(widths))
    table = Table(box=None, pad_edge=False, header_style="bold")
    for header, width in zip(headers, widths):
        table.add_column(header, no_wrap=True, min_width=width, justify="right" if header == headers[3] else "left")
    table.add_column("description", no_wrap=True)
    for row, values in zip(rows, cells):
        summary = row["summary"] if len(row["summary"]) <= room else row["summary"][:room - 1] + "…"
        table.add_row(*map(escape, values), escape(summary))
    console.print(table)
    console.print("[dim]path: sequence = the cell's own whole-sequence forward, steps = rnntui's step loop; "
                  "`rnntui cells NAME` shows one cell in full[/]")
    rejected = sorted(name for kind, name in registry.rejected if kind == "cell")
    if rejected:
        print(f"not offered (see `rnntui plugins`): {', '.join(rejected)}")
    return 0
