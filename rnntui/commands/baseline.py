"""`rnntui baseline`: n-gram baselines for a corpus, on the same split as a run (draft for issue 12, phase 2:
not yet registered in rnntui/cli.py)."""

from __future__ import annotations

import argparse
import json

from rnntui.commands import fail
from rnntui.commands.corpora import text_progress
from rnntui.core.config import TrainConfig
from rnntui.errors import UserError
from rnntui.util.options import parse_key_values
from rnntui.util.paths import cache_dir


def add_parser(sub) -> None:
    p = sub.add_parser(
        "baseline", help="n-gram baselines for a corpus (Kneser-Ney, orders 1..N)",
        description="Train character n-gram models of orders 1..N (interpolated modified Kneser-Ney) on the "
                    "training split of a corpus and score them on its validation split, the same split a run "
                    "uses. Results are cached per text and split.")
    p.add_argument("corpus", nargs="?", metavar="PATH_OR_CORPUS",
                   help="a text file, a directory, - (stdin) or a corpus name (default: python-docs)")
    p.add_argument("--order", type=int, default=8, help="highest order, 1 to 20 (default 8)")
    p.add_argument("--val-fraction", type=float, help="last fraction of the text used for validation (0.1)")
    p.add_argument("--encoding", help="text encoding of a corpus file or directory (utf-8)")
    p.add_argument("--no-normalize-newlines", dest="normalize_newlines", action="store_false", default=None)
    p.add_argument("--include", action="append", metavar="GLOB")
    p.add_argument("--exclude", action="append", metavar="GLOB")
    p.add_argument("--corpus-option", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--no-cache", action="store_true", help="recount even if a result is cached")
    p.add_argument("--json", action="store_true", help='print {"orders": [{"order", "loss", "bpc", "size"}, ...]}')
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from rnntui.analysis import ngram  # lazy: numpy and torch load only when the command runs
    from rnntui.run import load_dataset  # lazy: likewise

    try:
        ngram.check_order(args.order)
        fields = {"corpus": args.corpus, "val_fraction": args.val_fraction, "encoding": args.encoding,
                  "normalize_newlines": args.normalize_newlines, "include": args.include, "exclude": args.exclude}
        config = TrainConfig(**{k: v for k, v in fields.items() if v is not None},
                             corpus_options=parse_key_values(args.corpus_option, "--corpus-option"))
        with text_progress(config.corpus, quiet=args.json) as progress:
            dataset = load_dataset(config, progress)
        result = ngram.baseline(dataset, args.order, cache_dir=None if args.no_cache else cache_dir())
    except UserError as e:
        return fail(str(e))
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{dataset.name}: {result['train_chars']:,} training and {result['val_chars']:,} validation characters, "
          f"{result['vocab_size']} symbols; {result['variant']}"
          + (" (cached)" if result["cached"] else f" ({result['seconds']:.1f} s)"))
    print(f"{'order':>5} {'nats/char':>10} {'bits/char':>10} {'n-grams':>12} {'table':>10}")
    best = min(o["loss"] for o in result["orders"])
    for o in result["orders"]:
        mark = "  best" if o["loss"] == best else ""
        print(f"{o['order']:>5} {o['loss']:>10.4f} {o['bpc']:>10.4f} {o['size']:>12,} "
              f"{o['bytes'] / 2**20:>8.1f} MB{mark}")
    return 0
