"""`rnntui score`: what each character of a text costs a trained model (bits per character, and with --per-char
the loss and the model's top guesses at every character).

Draft for issue 11, phase 2: not yet listed in rnntui/cli.py's COMMANDS.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rnntui.core.config import TrainConfig
from rnntui.errors import DataError

EVAL_STREAMS = 64  # rnntui.core.data.eval_chunks' default: how Trainer.evaluate reads the validation split


def add_parser(sub) -> None:
    p = sub.add_parser("score", help="bits per character of a text under a trained model",
                       description="Score a text with a trained model: bits and nats per character, perplexity. "
                       "Without FILE, the run's own validation split, read exactly as training evaluates it, so "
                       "the number is the run's validation loss for that checkpoint.")
    add_input_arguments(p)
    p.add_argument("--json", action="store_true", help="print the totals as JSON")
    p.add_argument("--per-char", action="store_true",
                   help="one JSON line per character: char, bits (null for the first), top (the 5 likeliest "
                   "guesses as [char, probability]); the totals go to stderr, or last with --json")
    p.set_defaults(run=run)


def add_input_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments ``score`` and ``inspect`` share: the run and the text."""
    p.add_argument("run_dir", metavar="RUN_DIR", help="a run directory (its latest checkpoint) or a checkpoint")
    p.add_argument("file", metavar="FILE", nargs="?",
                   help="the text; - reads stdin; default: the run's validation split")
    p.add_argument("--skip-unknown", action="store_true",
                   help="drop characters the model never saw (default: refuse the text, naming them)")
    p.add_argument("--best", action="store_true", help="use the run's best checkpoint rather than its latest")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")


def read_file(spec: str) -> tuple[str, str]:
    """FILE or - -> (its text, newlines normalised as training reads files; a label)."""
    from rnntui.corpora.sources import read_text_file  # lazy: torch (through core.data) waits for the command

    if spec == "-":
        return sys.stdin.read().replace("\r\n", "\n").replace("\r", "\n"), "stdin"
    return read_text_file(spec), spec


def validation_split(meta: dict, vocab):
    """The run's validation split as symbol ids (the first eval_chars + 1 of them, as the run evaluates it)."""
    from rnntui.run import load_dataset  # lazy: torch loads only when the command runs

    config = TrainConfig.from_json(meta["config"])
    dataset = load_dataset(config)
    if dataset.vocab != vocab:
        raise DataError(f"the corpus {config.corpus!r} changed since this run trained; give a FILE to read")
    if len(dataset.val) < 2:
        raise DataError("this run has no validation split (--val-fraction 0); give a FILE to read")
    return dataset.val if config.eval_chars is None else dataset.val[: config.eval_chars + 1]


def run(args: argparse.Namespace) -> int:
    from rnntui.core.device import autocast_dtype  # lazy: torch loads only when the command runs
    from rnntui.core.inspection import score, score_ids  # lazy: likewise
    from rnntui.run import load_model  # lazy: likewise

    model, vocab, meta = load_model(Path(args.run_dir), best=args.best, device=args.device)
    if args.file:
        text, label = read_file(args.file)
        result = score(model, vocab, text, args.skip_unknown)
    else:
        config = TrainConfig.from_json(meta["config"])
        label = "the validation split"
        result = score_ids(model, vocab, validation_split(meta, vocab), streams=EVAL_STREAMS,
                           seq_len=max(config.seq_len, 128),  # as Trainer.evaluate reads it
                           amp_dtype=autocast_dtype(config.precision, model.head.weight.device))
    totals = {**result.totals(), "text": label, "step": meta.get("step")}
    if args.per_char:
        for line in result.per_char():
            print(json.dumps(line, ensure_ascii=False))
    if args.json:
        print(json.dumps(totals, ensure_ascii=False))
        return 0
    summary = (f"{result.bits_per_char:.4f} bits/char ({result.nats_per_char:.4f} nats, perplexity "
               f"{result.perplexity:.3f}) over {result.chars:,} characters of {label}, "
               f"checkpoint step {meta.get('step')}")
    if not args.file and meta.get("val_loss") is not None:
        summary += f"; the run measured {meta['val_loss'] / 0.6931471805599453:.4f} at this step"
    print(summary, file=sys.stderr if args.per_char else sys.stdout)
    return 0
