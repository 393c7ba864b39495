"""Generation loops over a stepper: sampled streams (several temperatures, samples, stop texts) and beam search.

A stepper holds the recurrent state of a batch of streams (rnntui.core.numpy_cells.NumpyStepper for the built-in
cells, no torch; rnntui.core.torch_stepper.TorchStepper for any model). The loops here never import torch, so
``rnntui sample`` on a built-in cell starts writing before torch could even have been imported.

Log-probabilities are natural logarithms under the model itself (temperature 1, no top-k/top-p), so greedy
decoding, samples at any temperature and beam search can be compared. They count every generated character,
a stop text included; the stop text itself is not part of the continuation's text.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from rnntui.core.data import Vocab
from rnntui.errors import DataError
from rnntui.core.sampler import Sampler, log_softmax


class Stepper(Protocol):
    vocab_size: int

    def start(self, batch: int) -> None: ...  # fresh states for ``batch`` streams

    def prime(self, ids: np.ndarray) -> np.ndarray: ...  # one stream through a prompt -> logits (1, V)

    def feed(self, ids: np.ndarray) -> np.ndarray: ...  # one symbol per stream (B,) -> logits (B, V)

    def select(self, rows: np.ndarray) -> None: ...  # keep (and repeat) the streams ``rows``


@dataclass
class Continuation:
    logprob: float = 0.0  # total log-probability of the generated characters under the model
    n_chars: int = 0  # characters generated, a stop text included
    stop: str | None = None  # the stop text that ended it
    text: str = ""  # beam search fills it; sampled streams leave the text to the caller (it may be unbounded)
    temperature: float | None = None
    seed: int | None = None

    @property
    def mean_logprob(self) -> float:
        return self.logprob / self.n_chars if self.n_chars else 0.0


def prepare_prompt(vocab: Vocab, prime: str, skip_unknown: bool = False, what: str = "the prompt"
                   ) -> tuple[str, list[str]]:
    """Apply the unknown-character policy: an error naming them, or (skip_unknown) drop them and report which."""
    unknown = vocab.unknown(prime)
    if unknown and not skip_unknown:
        raise DataError(
            f"{what} has characters the model never saw: {''.join(unknown)!r}; "
            "remove them or pass --skip-unknown to drop them"
        )
    return "".join(c for c in prime if c not in set(unknown)), unknown


def start_logits(stepper: Stepper, vocab: Vocab, prime: str) -> np.ndarray:
    """Prime one stream; an empty prompt starts after a newline (or uniformly if the corpus has none). -> (1, V)"""
    stepper.start(1)
    if prime:
        return stepper.prime(vocab.encode(prime).astype(np.int64))
    if "\n" in vocab.chars:
        return stepper.feed(np.array([vocab.chars.index("\n")], dtype=np.int64))
    return np.zeros((1, len(vocab)), dtype=np.float32)


def parse_stops(values: Sequence[str]) -> list[str]:
    r"""Stop texts as typed on a command line: \n, \t and \\ stand for a newline, a tab and a backslash."""
    stops = []
    for value in values:
        text = value.replace("\\\\", "\0").replace("\\n", "\n").replace("\\t", "\t").replace("\0", "\\")
        if not text:
            raise DataError("--stop needs a non-empty text, e.g. --stop '\\n\\n' to end at a blank line")
        stops.append(text)
    return stops


class StopText:
    """Watches one stream for stop texts: releases characters once they cannot be the start of a stop text."""

    def __init__(self, stops: Sequence[str]):
        self.stops = list(stops)
        self.held = ""

    def push(self, ch: str) -> tuple[str, str | None]:
        """-> (text now safe to show, the stop text if one just ended the stream)."""
        held = self.held + ch
        for stop in self.stops:
            if held.endswith(stop):
                self.held = ""
                return held[: len(held) - len(stop)], stop
        keep = next((k for k in range(len(held), 0, -1) if any(s.startswith(held[-k:]) for s in self.stops)), 0)
        self.held = held[len(held) - keep:]
        return held[: len(held) - keep], None

    def flush(self) -> str:
        held, self.held = self.held, ""
        return held


class Sampling:
    """Independent sampled streams in one batch, all continuing the same prompt: stream i at ``temperatures[i]``
    with seed ``seeds[i]``. ``run`` yields (stream, text) pieces as they become final; ``results[i]`` holds each
    stream's log-probability, length and stop."""

    def __init__(self, stepper: Stepper, vocab: Vocab, prime: str, temperatures: Sequence[float],
                 seeds: Sequence[int], top_k: int | None = None, top_p: float | None = None,
                 stops: Sequence[str] = ()):
        self.sampler = Sampler(len(vocab), temperatures, seeds, top_k, top_p)  # checks the options first
        self.stepper, self.vocab, self.prime, self.stops = stepper, vocab, prime, list(stops)
        self.results = [Continuation(temperature=t, seed=s) for t, s in zip(temperatures, seeds)]

    def run(self, length: int | None) -> Iterator[tuple[int, str]]:
        """Generate ``length`` characters per stream (None: until the caller stops), fewer if a stop text ends
        every stream."""
        batch, chars, results, sampler = len(self.results), self.vocab.chars, self.results, self.sampler
        logits = start_logits(self.stepper, self.vocab, self.prime)
        if batch > 1:
            self.stepper.select(np.zeros(batch, dtype=np.int64))
            logits = np.repeat(logits, batch, axis=0)
        watchers = [StopText(self.stops) for _ in range(batch)] if self.stops else None
        live = list(range(batch))
        produced = 0
        while length is None or produced < length:
            ids = sampler(logits)
            for b in list(live):
                ch = chars[ids[b]]
                r = results[b]
                r.logprob += float(sampler.logprob[b])
                r.n_chars += 1
                if watchers is None:
                    yield b, ch
                    continue
                text, r.stop = watchers[b].push(ch)
                if text:
                    yield b, text
                if r.stop is not None:
                    live.remove(b)
            produced += 1
            if not live or produced == length:
                break
            logits = self.stepper.feed(ids)
        for b in live if watchers else ():
            held = watchers[b].flush()
            if held:
                yield b, held


class BeamSearch:
    """The ``width`` most probable continuations (by total log-probability, optionally divided by length ** alpha
    when stop texts make them differ in length), deterministic: ties go to the earlier beam, then the lower symbol.

    ``run`` yields text pieces that together make the best continuation: the prefix every surviving beam shares
    as soon as they agree (the committed prefix), then the rest of the best one at the end. A beam that ends in a
    stop text is finished (it needs to rank among the ``width`` best at that step); the search ends at ``length``
    characters or once ``width`` beams have finished."""

    def __init__(self, stepper: Stepper, vocab: Vocab, prime: str, width: int, stops: Sequence[str] = (),
                 length_norm: float = 0.0):
        check_beam(width, len(vocab))
        if not length_norm >= 0:
            raise DataError(f"--length-norm must be 0 or more (got {length_norm}); 1 ranks by mean log-probability")
        self.stepper, self.vocab, self.prime, self.width = stepper, vocab, prime, width
        self.stops, self.alpha = list(stops), length_norm
        self.results: list[Continuation] = []

    def score(self, c: Continuation) -> float:
        return c.logprob / max(c.n_chars, 1) ** self.alpha

    def run(self, length: int) -> Iterator[str]:
        if length < 1:
            raise DataError(f"beam search needs a --length of at least 1 (got {length})")
        V, width, chars = len(self.vocab), self.width, self.vocab.chars
        hold = max((len(s) for s in self.stops), default=1) - 1  # characters a later stop text may still take back
        logits = start_logits(self.stepper, self.vocab, self.prime)
        history = np.zeros((width, length), dtype=np.int64)
        scores = np.zeros(1)
        finished: list[Continuation] = []
        logp, scratch = np.empty((width, V)), np.empty((width, V))
        committed = 0
        for t in range(length):
            n = len(scores)
            candidates = (scores[:, None] + log_softmax(logits, logp[:n], scratch[:n])).ravel()
            survivors = []  # (beam it extends, symbol, score), best first
            for rank, flat in enumerate(np.argsort(-candidates, kind="stable")):
                if len(survivors) == width:
                    break
                row, symbol = divmod(int(flat), V)
                stop = self._stop_after(history[row, :t], symbol, t)
                if stop is None:
                    survivors.append((row, symbol, candidates[flat]))
                elif rank < width:
                    text = self._text(history[row, :t]) + chars[symbol]
                    finished.append(Continuation(float(candidates[flat]), t + 1, stop, text[: len(text) - len(stop)]))
            rows, symbols, kept = (list(column) for column in zip(*survivors)) if survivors else ([], [], [])
            if rows:
                history[: len(rows), :t] = history[rows, :t]
                history[: len(rows), t] = symbols
            scores = np.array(kept)
            texts = [c.text for c in finished]  # every final result is one of these or descends from a beam
            end = min([t + 1 - hold] * bool(rows) + [len(s) for s in texts])
            while committed < end and self._agree(history[: len(rows)], texts, committed):
                yield chars[history[0, committed]] if rows else texts[0][committed]
                committed += 1
            if not rows or len(finished) >= width or t == length - 1:
                break
            self.stepper.select(np.array(rows))
            logits = self.stepper.feed(np.array(symbols, dtype=np.int64))
        steps = t + 1  # fewer than ``length`` when enough beams finished early
        active = [Continuation(float(s), steps, None, self._text(history[i, :steps])) for i, s in enumerate(scores)]
        self.results = sorted(finished + active, key=self.score, reverse=True)[:width]
        if self.results[0].text[committed:]:
            yield self.results[0].text[committed:]

    def _text(self, ids: np.ndarray) -> str:
        return "".join(self.vocab.chars[i] for i in ids)

    def _stop_after(self, ids: np.ndarray, symbol: int, t: int) -> str | None:
        if not self.stops:
            return None
        tail = self._text(ids[max(0, t - max(map(len, self.stops)) + 1):]) + self.vocab.chars[symbol]
        return next((s for s in self.stops if tail.endswith(s)), None)

    def _agree(self, history: np.ndarray, texts: list[str], i: int) -> bool:
        first = self.vocab.chars[history[0, i]] if len(history) else texts[0][i]
        return (len(history) == 0 or bool((history[:, i] == history[0, i]).all())) and all(s[i] == first for s in texts)


def check_beam(width: int, vocab_size: int) -> None:
    if width < 1:
        raise DataError(f"--beam must be at least 1 (got {width}); 1 is greedy decoding")
    if width > vocab_size:
        raise DataError(f"--beam {width} is wider than the model's vocabulary ({vocab_size} characters); "
                        f"use at most {vocab_size}")


def random_seed() -> int:
    return int.from_bytes(os.urandom(4))
