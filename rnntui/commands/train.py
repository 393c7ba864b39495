"""`rnntui train`: train a model headless, printing progress with rich."""

from __future__ import annotations

import argparse
from pathlib import Path

from rnntui.commands.corpora import text_progress
from rnntui.commands.progress import print_events
from rnntui.core.config import DEFAULT_PRESET, TrainConfig, apply_preset
from rnntui.util.options import parse_key_values

# option -> TrainConfig field, for the options that override a preset
MODEL_OPTIONS = {
    "cell": "cell", "layers": "n_layer", "hidden": "n_hidden", "embed": "n_embd", "dropout": "dropout",
    "seq_len": "seq_len", "batch_size": "batch_size", "optimizer": "optimizer", "lr": "lr",
    "weight_decay": "weight_decay", "schedule": "schedule", "warmup": "warmup_steps", "clip": "clip",
    "clip_mode": "clip_mode", "max_steps": "max_steps", "max_time": "max_time", "eval_every": "eval_every",
    "sample_every": "sample_every", "sample_length": "sample_length", "seed": "seed", "device": "device",
    "precision": "precision", "eval_chars": "eval_chars", "threads": "threads",
    "val_fraction": "val_fraction", "encoding": "encoding", "keep": "keep_checkpoints",
    "normalize_newlines": "normalize_newlines", "include": "include", "exclude": "exclude",
}


def add_model_arguments(p: argparse.ArgumentParser) -> None:
    """The options shared by `rnntui train` and the app (`rnntui [PATH_OR_CORPUS]`)."""
    p.add_argument("--preset", default=None, help="starting configuration: default, char-rnn, min-char-rnn")
    p.add_argument("--cell", help="recurrent cell: rnn, lstm, gru, or any plugin's (see `rnntui cells`)")
    p.add_argument("--cell-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a cell hyperparameter, e.g. forget_bias=0 or nonlinearity=relu (repeatable)")
    p.add_argument("--layers", type=int, help="number of stacked cells")
    p.add_argument("--hidden", type=int, help="hidden size of each cell")
    p.add_argument("--embed", type=int, help="embedding size (default: the hidden size)")
    p.add_argument("--dropout", type=float, help="dropout between layers and before the output")
    p.add_argument("--seq-len", type=int, help="characters per stream per step (truncated BPTT length)")
    p.add_argument("--batch-size", type=int, help="parallel streams per step")
    p.add_argument("--optimizer", help="adamw, adam, rmsprop, adagrad or sgd")
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--schedule", help="constant, cosine (with --warmup) or decay (char-rnn's per-epoch decay)")
    p.add_argument("--warmup", type=int, help="warm-up steps")
    p.add_argument("--clip", type=float, help="gradient clipping threshold (0 = off)")
    p.add_argument("--clip-mode", help="norm (global L2 norm, default) or value (element-wise, as char-rnn)")
    p.add_argument("--max-steps", type=int, help="stop at this step (a resumed run continues up to it)")
    p.add_argument("--max-time", type=float, metavar="SECONDS",
                   help="stop after this many seconds of training (evaluation and sampling not counted)")
    p.add_argument("--eval-every", type=int, help="validate (and checkpoint) every N steps")
    p.add_argument("--eval-chars", type=int, metavar="N",
                   help="validate on the first N characters of the validation split (default: all of it)")
    p.add_argument("--sample-every", type=int, help="write a sample every N steps")
    p.add_argument("--sample-length", type=int, help="characters per training sample")
    p.add_argument("--val-fraction", type=float, help="last fraction of the text used for validation (0.1)")
    p.add_argument("--encoding", help="text encoding of a corpus file or directory (utf-8)")
    p.add_argument("--no-normalize-newlines", dest="normalize_newlines", action="store_false", default=None,
                   help="keep CRLF and CR line endings (by default they become LF)")
    p.add_argument("--include", action="append", metavar="GLOB",
                   help="in a directory corpus, read only files matching GLOB (repeatable), e.g. '*.py'")
    p.add_argument("--exclude", action="append", metavar="GLOB",
                   help="in a directory corpus, leave out files and directories matching GLOB (repeatable)")
    p.add_argument("--corpus-option", action="append", default=[], metavar="KEY=VALUE",
                   help="an option of a registered corpus, e.g. depth=12 for brackets (see `rnntui corpora show`)")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto, cpu, cuda or mps")
    p.add_argument("--threads", type=int, help="CPU threads for torch (the default preset uses 1)")
    p.add_argument("--precision", help="fp32, bf16 (autocast) or auto (bf16 where the CPU or GPU runs it natively)")
    p.add_argument("--keep", type=int, help="checkpoints to keep besides the best (3)")


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model headless", description="Train a character-level model.")
    p.add_argument("corpus", nargs="?", metavar="PATH_OR_CORPUS",
                   help="a text file, a directory, - (stdin) or a corpus name "
                        "(default: python-docs, see `rnntui corpora`)")
    add_model_arguments(p)
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run exactly where its last checkpoint left off")
    p.add_argument("--run-dir", help="where to keep the run (default: a new directory under `rnntui runs`)")
    p.add_argument("--log-json", metavar="FILE", help="also write every event as a JSON line to FILE")
    p.add_argument("--quiet", action="store_true", help="print only evaluations and the end")
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The preset (``--preset``, else the default) with the options given on the command line on top."""
    overrides = {field: getattr(args, opt) for opt, field in MODEL_OPTIONS.items() if getattr(args, opt) is not None}
    if args.corpus:
        overrides["corpus"] = args.corpus
    if getattr(args, "corpus_option", None):
        overrides["corpus_options"] = parse_key_values(args.corpus_option, "--corpus-option")
    if args.cell_option:
        overrides["cell_options"] = parse_key_values(args.cell_option, "--cell-option")
    elif "cell" in overrides:
        overrides["cell_options"] = {}  # the preset's options belong to the preset's cell
    return apply_preset(args.preset or DEFAULT_PRESET, **overrides)


def run(args: argparse.Namespace) -> int:
    from rnntui import run as runs  # lazy: torch loads only once the command runs (`--help` stays quick)

    config = None if args.resume else config_from_args(args)  # a bad option fails before any reading
    with text_progress(args.corpus or "", quiet=args.quiet) as progress:  # reading and encoding a large corpus
        if args.resume:
            trainer = runs.resume_trainer(args.resume, args.max_steps, args.max_time, args.device, progress)
        else:
            trainer = runs.build_trainer(config, Path(args.run_dir) if args.run_dir else None, progress)
    try:
        return print_events(trainer, log_json=args.log_json, quiet=args.quiet)
    finally:
        trainer.close()
