"""`rnntui sample`: stream text from a trained model: one sample, several temperatures or samples side by side,
or beam search.

The built-in cells are stepped in numpy (rnntui.core.numpy_cells): nothing here imports torch for them, so the
first character comes in a fraction of a second. Plugin cells and other devices go through torch.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

from rnntui.errors import DataError
from rnntui.util.units import bits


def add_parser(sub) -> None:
    p = sub.add_parser("sample", help="generate text from a run or checkpoint",
                       description="Prime a trained model with text and stream its continuation. Several "
                       "temperatures or --num-samples give labelled sections side by side; --beam gives the most "
                       "probable continuations. Each result comes with its log-probability under the model.")
    p.add_argument("checkpoint", metavar="RUN_DIR_OR_CHECKPOINT")
    prime = p.add_mutually_exclusive_group()
    prime.add_argument("--prime", default="", help="text to start from (may span lines)")
    prime.add_argument("--prime-file", metavar="FILE", help="read the priming text from FILE")
    p.add_argument("--temperature", metavar="T[,T...]",
                   help="randomness: <1 safer, >1 wilder; near 0 (e.g. 0.001) always takes the likeliest "
                   "character; a list (0.2,0.5,1.0) continues the prompt once per temperature (default 0.8)")
    p.add_argument("--top-k", type=int, help="sample only among the K likeliest characters")
    p.add_argument("--top-p", type=float, help="sample only among the likeliest characters holding mass P")
    p.add_argument("--num-samples", type=int, default=1, metavar="K",
                   help="K independent samples (per temperature), seeds SEED, SEED+1, ...")
    p.add_argument("--beam", type=int, metavar="N",
                   help="beam search: the N most probable continuations (deterministic; 1 = greedy)")
    p.add_argument("--length-norm", type=float, default=0.0, metavar="ALPHA",
                   help="with --beam and --stop: rank by log-probability / length**ALPHA (default 0: total; "
                   "1: per character), so that short continuations do not win just by being short")
    p.add_argument("--stop", action="append", default=[], metavar="TEXT",
                   help="end a continuation where it writes TEXT (not shown), e.g. '\\n\\n' for a blank line; "
                   "\\n and \\t are understood; may be repeated")
    p.add_argument("--length", type=int, default=500, help="characters to generate; 0 = until Ctrl-C (one stream)")
    p.add_argument("--seed", type=int, help="seed for reproducible samples (default: random, and reported)")
    p.add_argument("--skip-unknown", action="store_true",
                   help="drop prompt characters the model never saw (default: refuse the prompt)")
    p.add_argument("--best", action="store_true", help="use the run's best checkpoint rather than its latest")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
    p.add_argument("--threads", type=int, default=1,
                   help="CPU threads for torch (plugin cells; default 1: at batch 1 more threads only contend)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile a plugin cell's step (the first run compiles for a while, later runs "
                   "read the cache); gained 0-25%% at batch 1 in our measurements; built-in cells always run in numpy")
    p.set_defaults(run=run)


def check_args(args: argparse.Namespace) -> tuple[list[float], list[str]]:
    """Everything that can be refused before the model is read. -> (temperatures, stop texts)."""
    from rnntui.core.decode import parse_stops  # lazy: numpy loads only when the command runs
    from rnntui.core.sampler import check_options, parse_temperatures  # lazy: likewise

    if args.length < 0:
        raise DataError("--length must be 0 (unbounded) or more")
    if args.threads < 1:
        raise DataError(f"--threads must be at least 1 (got {args.threads})")
    if args.num_samples < 1:
        raise DataError(f"--num-samples must be at least 1 (got {args.num_samples})")
    stops = parse_stops(args.stop)
    if args.beam is not None:
        if args.beam < 1:
            raise DataError(f"--beam must be at least 1 (got {args.beam}); 1 is greedy decoding")
        given = [name for name, value in (("--temperature", args.temperature), ("--top-k", args.top_k),
                 ("--top-p", args.top_p), ("--seed", args.seed)) if value is not None]
        if given or args.num_samples != 1:
            raise DataError(f"--beam is deterministic and gives --beam N results; drop "
                            f"{', '.join(given + ['--num-samples'] * (args.num_samples != 1))}")
        if not math.isfinite(args.length_norm) or args.length_norm < 0:
            raise DataError(f"--length-norm must be 0 or more (got {args.length_norm}); 1 ranks by mean "
                            "log-probability")
        temperatures = []
    else:
        if args.length_norm:
            raise DataError("--length-norm ranks beam search results; use it with --beam")
        temperatures = parse_temperatures(args.temperature if args.temperature is not None else "0.8")
        check_options(temperatures, args.top_k, args.top_p)
    if args.length == 0 and (args.beam is not None or len(temperatures) * args.num_samples > 1):
        raise DataError("--length 0 (until Ctrl-C) works with one sampled stream; give a --length for several "
                        "temperatures, --num-samples or --beam")
    return temperatures, stops


def run(args: argparse.Namespace) -> int:
    # One BLAS thread: a step is a matrix-vector product, and on a busy machine threaded small products ran up to
    # 10x slower (NOTES-generate.md). It only works before numpy loads; a value the user set is kept.
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from rnntui.core.decode import check_beam, prepare_prompt  # lazy: numpy, after the thread setting above
    from rnntui.core.numpy_cells import NumpyStepper  # lazy: likewise
    from rnntui.corpora.sources import read_text_file  # lazy: likewise
    from rnntui.inference import open_stepper  # lazy: likewise

    temperatures, stops = check_args(args)
    prime = read_text_file(args.prime_file) if args.prime_file else args.prime
    stepper, vocab, meta = open_stepper(Path(args.checkpoint), best=args.best, device=args.device,
                                        compile=args.compile)
    if not isinstance(stepper, NumpyStepper):  # the torch path: plugin cells, other devices
        import torch

        torch.set_num_threads(args.threads)
    prime, dropped = prepare_prompt(vocab, prime, skip_unknown=args.skip_unknown)
    if dropped:
        print(f"rnntui: warning: dropped characters the model never saw: {''.join(dropped)!r}", file=sys.stderr)
    out = ChunkedOutput(sys.stdout)
    if args.beam is not None:
        check_beam(args.beam, len(vocab))
        return _beam(args, stepper, vocab, prime, stops, out)
    return _sample(args, stepper, vocab, prime, temperatures, stops, out)


def _sample(args, stepper, vocab, prime, temperatures, stops, out) -> int:
    from rnntui.core.decode import Sampling, random_seed  # lazy: numpy loads only when the command runs

    base = args.seed if args.seed is not None else random_seed()
    k = args.num_samples
    sampling = Sampling(stepper, vocab, prime, [t for t in temperatures for _ in range(k)],
                        [base + i for _ in temperatures for i in range(k)], args.top_k, args.top_p, stops)
    results = sampling.results
    sections = len(results) > 1

    def label(i: int) -> str:
        r = results[i]
        sample = f", sample {i % k + 1} of {k}" if k > 1 else ""
        return f"temperature {r.temperature:g}{sample}, seed {r.seed}"

    if sections:
        out.write(heading(label(0)))
    out.write(prime)
    out.flush_next()  # the first character goes out as soon as it exists
    later = [[] for _ in results]  # streams after the first are shown once the batch is done
    try:
        for stream, text in sampling.run(args.length or None):
            if stream == 0:
                out.write(text)
            else:
                later[stream].append(text)
    except KeyboardInterrupt:
        if sections:
            raise
    out.write("\n")
    if not sections:
        out.flush()
        print(f"rnntui: {summary(results[0])}; temperature {results[0].temperature:g}, seed {results[0].seed}",
              file=sys.stderr)
        return 0
    out.write(footer(results[0]))
    for i in range(1, len(results)):
        out.write("\n" + heading(label(i)) + prime + "".join(later[i]) + "\n" + footer(results[i]))
    out.flush()
    return 0


def _beam(args, stepper, vocab, prime, stops, out) -> int:
    from rnntui.core.decode import BeamSearch  # lazy: numpy loads only when the command runs

    search = BeamSearch(stepper, vocab, prime, args.beam, stops, args.length_norm)
    norm = f", ranked by log-probability / length^{args.length_norm:g}" if args.length_norm else ""
    if args.beam > 1:
        out.write(heading(f"beam 1 of {args.beam}{norm} (written as the beams agree)"))
    out.write(prime)
    out.flush_next()
    for text in search.run(args.length):
        out.write(text)
    out.write("\n")
    results = search.results
    if args.beam == 1:
        out.flush()
        print(f"rnntui: {summary(results[0])}; greedy (beam 1)", file=sys.stderr)
        return 0
    out.write(footer(results[0]))
    for i, r in enumerate(results[1:], 2):
        out.write("\n" + heading(f"beam {i} of {args.beam}") + prime + r.text + "\n" + footer(r))
    out.flush()
    return 0


def heading(label: str) -> str:
    return f"=== {label} ===\n"


def summary(r) -> str:
    stopped = f", stopped at {r.stop!r}" if r.stop is not None else ""
    return (f"{r.n_chars} characters{stopped}, log-probability {r.logprob:.2f}: {r.mean_logprob:.3f} per character "
            f"({bits(-r.mean_logprob):.3f} bits)")


def footer(r) -> str:
    return f"--- {summary(r)}\n"


class ChunkedOutput:
    """Writes to a stream, flushing at most every ``interval`` seconds: a terminal sees the text arrive smoothly, a
    pipe or a file gets it in chunks rather than one system call per character."""

    def __init__(self, stream, interval: float | None = None):
        self.stream = stream
        self.interval = interval if interval is not None else (1 / 30 if stream.isatty() else 0.25)
        self.last_flush = -math.inf

    def write(self, text: str) -> None:
        self.stream.write(text)
        now = time.monotonic()
        if now - self.last_flush >= self.interval:
            self.flush(now)

    def flush_next(self) -> None:
        """Flush at the next write, whenever it comes."""
        self.last_flush = -math.inf

    def flush(self, now: float | None = None) -> None:
        self.stream.flush()
        self.last_flush = time.monotonic() if now is None else now
