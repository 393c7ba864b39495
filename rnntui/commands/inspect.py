"""`rnntui inspect`: which units of a trained model track quotes, brackets, indentation, line position...; one
unit's activation over a text; how the gates saturate (Karpathy, Johnson & Fei-Fei 2015).

Draft for issue 11, phase 2: not yet listed in rnntui/cli.py's COMMANDS; the features will come from the plugin
registry (register_features) rather than the built-ins alone.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from rnntui.commands.score import add_input_arguments, read_file, validation_split
from rnntui.errors import DataError

DEFAULT_CHARS = 10_000  # the paper's figures read a few thousand characters; 10,000 take ~1-2 s on a CPU


def add_parser(sub) -> None:
    p = sub.add_parser("inspect", help="find the units that track text features; gate saturation",
                       description="Record every layer's hidden state (and memory cell) over a text and rank the "
                       "units by how well they track each text feature (correlation; ROC AUC for on/off "
                       "features), show one unit's activation, or the gates' saturation.")
    add_input_arguments(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--feature", action="append", metavar="NAME", help="only this feature (repeatable)")
    p.add_argument("--unit", metavar="LAYER:INDEX",
                   help="one unit's activation at every character (LAYER:c:INDEX for an LSTM's memory cell)")
    p.add_argument("--gates", action="store_true",
                   help="per layer and gate, the fraction of characters each unit is < 0.1 and > 0.9")
    p.add_argument("--chars", type=int, default=DEFAULT_CHARS, help=f"read the first N characters ({DEFAULT_CHARS:,})")
    p.add_argument("--top", type=int, default=5, help="units listed per feature (5)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rnntui.core.features import builtin_features  # lazy: torch loads only when the command runs
    from rnntui.core.inspection import record  # lazy: likewise
    from rnntui.core.units import gate_saturation, pick_features, rank_features  # lazy: likewise
    from rnntui.run import load_model  # lazy: likewise

    if args.chars < 2 or args.top < 1:
        raise DataError("--chars must be at least 2 and --top at least 1")
    features = pick_features(builtin_features(), args.feature)  # before the slow part: a typo fails at once
    model, vocab, meta = load_model(Path(args.run_dir), best=args.best, device=args.device)
    if args.file:
        text, label = read_file(args.file)
        text = text[: args.chars]
    else:
        text, label = vocab.decode(validation_split(meta, vocab)[: args.chars]), "the validation split"
    recording = record(model, vocab, text, args.skip_unknown)
    what = f"{len(recording.text):,} characters of {label}"
    if args.unit:
        unit = recording.parse_unit(args.unit)
        show_unit(recording, unit, args.json)
    elif args.gates:
        report = gate_saturation(recording)
        if not report:
            raise DataError(f"cell {recording.cell!r} exposes no gates; --gates needs a gated cell (lstm, gru, ...)")
        print(json.dumps(report) if args.json else describe_gates(report, what))
    else:
        ranking = rank_features(recording, features, args.top)
        print(json.dumps(ranking) if args.json else describe_ranking(ranking, features, what))
    return 0


def describe_ranking(ranking: dict, features, what: str) -> str:
    lines = [f"units that track each feature over {what} (correlation; AUC for on/off features)"]
    width = max(len(f.name) for f in features)
    for feature in features:
        units = ranking[feature.name]
        if not units:
            lines.append(f"{feature.name:<{width}}  (does not vary over this text)")
            continue
        cells = []
        for u in units:
            name = f"{u['layer']}:{u['unit']}" if u["kind"] == "h" else f"{u['layer']}:{u['kind']}:{u['unit']}"
            cells.append(f"{name} {u['score']:+.2f}" + (f" auc {u['auc']:.2f}" if u["auc"] is not None else ""))
        lines.append(f"{feature.name:<{width}}  " + "   ".join(cells))
    return "\n".join(lines)


def describe_gates(report: list[dict], what: str) -> str:
    lines = [f"gate saturation over {what}: units left-saturated (< 0.1) / right-saturated (> 0.9) more than "
             "half the time"]
    for entry in report:
        left = sum(f > 0.5 for f in entry["left"])
        right = sum(f > 0.5 for f in entry["right"])
        line = f"layer {entry['layer']} {entry['gate']:<8} {left:>4} left  {right:>4} right of {len(entry['left'])}"
        if entry.get("memory"):
            shown = ", ".join(str(i) for i in entry["memory"][:8])
            line += f"   memory: {len(entry['memory'])} units ({shown}{', ...' if len(entry['memory']) > 8 else ''})"
        lines.append(line)
    return "\n".join(lines)


def show_unit(recording, unit, as_json: bool) -> None:
    """JSON, the text coloured by the unit (a terminal: red -1 ... blue +1, tanh of a memory cell, as in the
    paper), or one tab-separated line per character (a pipe)."""
    values = recording.activation(unit).tolist()
    if as_json:
        print(json.dumps({"unit": str(unit), "chars": list(recording.text), "values": values}, ensure_ascii=False))
        return
    if not sys.stdout.isatty():
        for char, value in zip(recording.text, values):
            print(f"{json.dumps(char, ensure_ascii=False)}\t{value:.4f}")
        return
    from rich.console import Console
    from rich.text import Text

    shown = Text()
    for char, value in zip(recording.text, values):
        v = math.tanh(value) if unit.kind != "h" else max(-1.0, min(1.0, value))
        fade = int(255 * (1 - abs(v)))
        colour = f"rgb({fade},{fade},255)" if v > 0 else f"rgb(255,{fade},{fade})"
        shown.append(char if char != "\n" else "↵\n", style=f"black on {colour}")
    Console().print(shown)
