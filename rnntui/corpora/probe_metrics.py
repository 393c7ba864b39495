"""What each synthetic probe (rnntui.corpora.synthetic) was built to measure, computed from a model's predictions.

Every function here is a corpus ``metrics`` callable (see rnntui.corpora.Corpus):

    metrics(text, chars, logprobs) -> dict of JSON values

``text`` is a stretch of the corpus (the validation text, or its beginning), ``chars`` the vocabulary (column j of
``logprobs`` is ``chars[j]``), and ``logprobs[t]`` the model's log-probabilities for ``text[t + 1]`` given
``text[:t + 1]``, shape (len(text) - 1, len(chars)): what one teacher-forced pass over the text gives. Losses are
in nats per character. Only whole lines count: the first line of a stretch may start in the middle, so everything
before the first newline is context only, as is a last line without its newline.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from rnntui.errors import UserError

OPENING, CLOSING = "([{<", ")]}>"


class MetricsError(UserError):
    pass


def _prepare(text: str, chars: Sequence[str], logprobs) -> tuple[np.ndarray, dict[str, int]]:
    logprobs = np.asarray(logprobs, dtype=np.float64)
    if logprobs.shape != (max(len(text) - 1, 0), len(chars)):
        raise MetricsError(f"log-probabilities of shape {logprobs.shape} do not fit a text of {len(text)} "
                           f"characters and a vocabulary of {len(chars)}: expected ({len(text) - 1}, {len(chars)})")
    return logprobs, {c: j for j, c in enumerate(chars)}


def _lines(text: str) -> Iterator[tuple[int, str]]:
    """(position of its first character, the line without its newline) for every whole line after the first
    newline."""
    start = text.find("\n") + 1
    if start == 0:
        return
    while (end := text.find("\n", start)) >= 0:
        yield start, text[start:end]
        start = end + 1


def _score(logprobs: np.ndarray, column: dict[str, int], text: str, positions: list[int]):
    """(log-probability of the true character, whether it was the model's top guess) at each text position."""
    if not positions:
        return np.zeros(0), np.zeros(0, bool)
    pos = np.asarray(positions)
    rows = logprobs[pos - 1]
    true = np.array([column[text[p]] for p in positions])
    return rows[np.arange(len(pos)), true], rows.argmax(axis=1) == true


def _mean(values) -> float | None:
    return float(np.mean(values)) if len(values) else None


def brackets(text: str, chars: Sequence[str], logprobs) -> dict[str, Any]:
    """At each closing bracket: accuracy (is the right bracket the model's most probable closing bracket, i.e. does
    it remember which bracket is open) and loss (-log p of the bracket, under the full distribution: even a perfect
    model pays ln 2 where the generator's coin could have opened instead), overall and by the depth of the bracket
    being closed (1 = outermost)."""
    logprobs, column = _prepare(text, chars, logprobs)
    closers = [column[c] for c in CLOSING if c in column]
    positions, depths = [], []
    for start, line in _lines(text):
        stack = []
        for i, c in enumerate(line):
            if c in OPENING:
                stack.append(c)
            elif c in CLOSING and stack:
                positions.append(start + i)
                depths.append(len(stack))
                stack.pop()
    logp, _ = _score(logprobs, column, text, positions)
    if positions:
        rows = logprobs[np.asarray(positions) - 1][:, closers]
        right = np.asarray(closers)[rows.argmax(axis=1)] == np.array([column[text[p]] for p in positions])
    else:
        right = np.zeros(0, bool)
    depths = np.asarray(depths)
    by_depth = [{"depth": int(d), "accuracy": float(right[depths == d].mean()),
                 "loss": float(-logp[depths == d].mean()), "count": int((depths == d).sum())}
                for d in np.unique(depths)]
    return {"closing_accuracy": _mean(right), "closing_loss": _mean(-logp), "count": len(positions),
            "by_depth": by_depth}


def copy(text: str, chars: Sequence[str], logprobs) -> dict[str, Any]:
    """On the second copy of each line (``s`` + dashes + '>' + ``s``): per-character accuracy (the model's top
    guess is the right letter) and loss, and accuracy by position in the copy. ``distance`` is how far back each
    copied letter's source is (length + delay + 1, the same for every letter of a line); ``first_copy_loss`` is
    the loss on the random first copy, for contrast (ln(alphabet) at best)."""
    logprobs, column = _prepare(text, chars, logprobs)
    second, first, offsets, distance = [], [], [], None
    for start, line in _lines(text):
        cue = line.find(">")
        if cue < 0:
            continue
        letters = len(line) - cue - 1
        distance = cue + 1 if distance is None else distance
        second += [start + cue + 1 + m for m in range(letters)]
        offsets += range(letters)
        first += [start + m for m in range(letters)]
    logp, right = _score(logprobs, column, text, second)
    first_logp, _ = _score(logprobs, column, text, first)
    offsets = np.asarray(offsets, dtype=np.int64)
    by_position = [{"position": int(m), "accuracy": float(right[offsets == m].mean()),
                    "loss": float(-logp[offsets == m].mean())} for m in np.unique(offsets)]
    return {"copy_accuracy": _mean(right), "copy_loss": _mean(-logp), "first_copy_loss": _mean(-first_logp),
            "count": len(second), "distance": distance, "by_position": by_position}


def arithmetic(text: str, chars: Sequence[str], logprobs) -> dict[str, Any]:
    """For each line 'a+b=c': is the sum right under greedy decoding after '=' (exact match), and the accuracy
    and loss on the characters of c and the newline that ends it.

    Greedy decoding writes c and then the newline exactly when, at each of those positions, the model's top guess
    given the true prefix is the true character (by induction: each guess then extends the true prefix), so the
    exact-match rate needs no generation, only the teacher-forced predictions."""
    logprobs, column = _prepare(text, chars, logprobs)
    positions, line_of = [], []
    n_lines = 0
    for start, line in _lines(text):
        eq = line.find("=")
        if eq < 0:
            continue
        span = range(start + eq + 1, start + len(line) + 1)  # the sum's digits and the newline
        positions += span
        line_of += [n_lines] * len(span)
        n_lines += 1
    logp, right = _score(logprobs, column, text, positions)
    exact = np.ones(n_lines, bool)
    np.logical_and.at(exact, np.asarray(line_of, dtype=np.int64), right)
    return {"exact_match": _mean(exact) if n_lines else None, "sum_accuracy": _mean(right),
            "sum_loss": _mean(-logp), "count": n_lines}


def hello(text: str, chars: Sequence[str], logprobs) -> dict[str, Any]:
    """The lecture's h-e-l-l-o table: for each step of 'hello' and its newline, the input character, the target
    (the next character) and the mean probability the model gives each character of the vocabulary there, over
    every whole line; with the accuracy and loss over all those steps. (The table is in the lecture's order;
    "\\n" is the newline.)"""
    logprobs, column = _prepare(text, chars, logprobs)
    word = "hello\n"
    steps: list[list[int]] = [[] for _ in word]
    for start, line in _lines(text):
        if line != word[:-1]:
            continue
        for i in range(len(word)):
            if start + i + 1 < len(text):
                steps[i].append(start + i + 1)  # the position of the target; its row is the input's
    table, all_positions = [], []
    for i, positions in enumerate(steps):
        if not positions:
            continue
        probs = np.exp(logprobs[np.asarray(positions) - 1]).mean(axis=0)
        table.append({"input": word[i], "target": text[positions[0]],
                      "probs": {c: round(float(p), 6) for c, p in zip(chars, probs)}})
        all_positions += positions
    logp, right = _score(logprobs, column, text, all_positions)
    return {"accuracy": _mean(right), "loss": _mean(-logp), "count": len(steps[0]), "table": table}


METRICS = {"brackets": brackets, "copy": copy, "arithmetic": arithmetic, "hello": hello}
