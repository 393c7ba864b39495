"""`rnntui runs`: list past runs."""

from __future__ import annotations

import argparse
import json

from rnntui.core.runs import list_runs
from rnntui.util.paths import runs_dir
from rnntui.util.units import bits


def add_parser(sub) -> None:
    p = sub.add_parser("runs", help="list past runs", description="List the runs kept in the data directory.")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:

    found = list_runs()
    if args.json:
        print(json.dumps([{**vars(r), "path": str(r.path)} for r in found], indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    if not found:
        print(f"no runs yet in {runs_dir()}; start one with `rnntui train`")
        return 0
    table = Table("name", "corpus", "cell", "steps", "best val loss", "bits/char", "date")
    for r in found:
        bpc = "-" if r.best_val_loss is None else f"{bits(r.best_val_loss):.3f}"
        best = "-" if r.best_val_loss is None else f"{r.best_val_loss:.4f}"
        table.add_row(r.name, r.corpus, r.cell, str(r.steps), best, bpc, r.created)
    Console().print(table)
    print(f"in {runs_dir()}")
    return 0
