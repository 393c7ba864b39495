"""`rnntui sample`: stream text from a trained model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rnntui.errors import DataError


def add_parser(sub) -> None:
    p = sub.add_parser("sample", help="generate text from a run or checkpoint",
                       description="Prime a trained model with text and stream its continuation.")
    p.add_argument("checkpoint", metavar="RUN_DIR_OR_CHECKPOINT")
    prime = p.add_mutually_exclusive_group()
    prime.add_argument("--prime", default="", help="text to start from (may span lines)")
    prime.add_argument("--prime-file", metavar="FILE", help="read the priming text from FILE")
    p.add_argument("--temperature", type=float, default=0.8,
                   help="randomness: <1 safer, >1 wilder; near 0 (e.g. 0.001) always takes the likeliest character")
    p.add_argument("--top-k", type=int, help="sample only among the K likeliest characters")
    p.add_argument("--top-p", type=float, help="sample only among the likeliest characters holding mass P")
    p.add_argument("--length", type=int, default=500, help="characters to generate; 0 = until Ctrl-C")
    p.add_argument("--seed", type=int, help="seed for reproducible samples")
    p.add_argument("--skip-unknown", action="store_true",
                   help="drop prompt characters the model never saw (default: refuse the prompt)")
    p.add_argument("--best", action="store_true", help="use the run's best checkpoint rather than its latest")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # lazy: torch loads only once the command runs (`rnntui --help` stays quick)
    from rnntui.core.sampling import check_sampling, generate, prepare_prime
    from rnntui.corpora.sources import read_text_file  # lazy: likewise (numpy, torch through core.data)
    from rnntui.run import load_model  # lazy: likewise

    if args.length < 0:
        raise DataError("--length must be 0 (unbounded) or more")
    check_sampling(args.temperature, args.top_k, args.top_p)
    prime = read_text_file(args.prime_file) if args.prime_file else args.prime
    model, vocab, meta = load_model(Path(args.checkpoint), best=args.best, device=args.device)
    prime, dropped = prepare_prime(vocab, prime, skip_unknown=args.skip_unknown)
    if dropped:
        print(f"rnntui: warning: dropped characters the model never saw: {''.join(dropped)!r}", file=sys.stderr)
    out = sys.stdout
    out.write(prime)
    try:
        for ch in generate(model, vocab, prime, args.length or None, args.temperature, args.top_k, args.top_p,
                           args.seed):
            out.write(ch)
            out.flush()
    except KeyboardInterrupt:
        pass
    out.write("\n")
    return 0
