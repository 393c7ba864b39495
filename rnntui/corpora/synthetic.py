"""Synthetic probes: small languages generated deterministically, each built to test one ability of a cell.

Every probe is a stream of lines, generated from a seed with PCG64's raw output (stable across NumPy versions,
unlike its distributions), cut at ``chars`` characters; a longer text starts with the shorter one.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

VERSION = "1"  # bump when any generator's output changes, so cached encodings are not reused
BATCH_LINES = 4096


class _Random:
    """Uniform integers from PCG64's raw 64-bit output: reproducible for a seed on any NumPy version."""

    def __init__(self, seed: int):
        self.bits = np.random.PCG64(seed)

    def below(self, n: int, size: int | tuple[int, ...]) -> np.ndarray:
        """Integers in [0, n) (n is small, so the modulo bias is below 2**-50)."""
        count = int(np.prod(size))
        return (self.bits.random_raw(count) % np.uint64(n)).astype(np.int64).reshape(size)


def _cut(lines: Iterator[str], chars: int) -> Iterator[str]:
    left = chars
    for chunk in lines:
        if left <= 0:
            return
        yield chunk[:left]
        left -= len(chunk)


def hello(chars: int = 100_000, seed: int = 0) -> Iterator[str]:
    """The lectures' toy: 'hello' over and over, one per line."""
    block = "hello\n" * 10_000
    return _cut(iter(lambda: block, None), chars)


def brackets(chars: int = 1_000_000, depth: int = 6, length: int = 40, kinds: int = 3, seed: int = 0
             ) -> Iterator[str]:
    """Lines of ``length`` brackets, balanced, nested at most ``depth`` deep, of ``kinds`` kinds: (), [], {}, <>."""
    if depth < 1 or length < 2 or not 1 <= kinds <= 4:
        raise ValueError("brackets needs depth >= 1, length >= 2 and kinds between 1 and 4")
    length -= length % 2
    opening, closing = "([{<"[:kinds], ")]}>"[:kinds]
    rng = _Random(seed)

    def lines() -> Iterator[str]:
        while True:
            coin = rng.below(2, (BATCH_LINES, length))
            kind = rng.below(kinds, (BATCH_LINES, length))
            out = []
            for row in range(BATCH_LINES):
                stack: list[int] = []
                line = []
                flips, kinds_row = coin[row].tolist(), kind[row].tolist()
                for i in range(length):
                    left = length - i
                    can_open = len(stack) < depth and len(stack) + 1 <= left - 1
                    if stack and (not can_open or flips[i]):
                        line.append(closing[stack.pop()])
                    else:
                        stack.append(kinds_row[i])
                        line.append(opening[kinds_row[i]])
                out.append("".join(line))
            yield "\n".join(out) + "\n"

    return _cut(lines(), chars)


def copy(chars: int = 1_000_000, length: int = 8, delay: int = 16, alphabet: int = 8, seed: int = 0
         ) -> Iterator[str]:
    """Lines ``s`` + '-' * delay + '>' + ``s``: a random string of ``length`` letters, then the same again."""
    if length < 1 or delay < 0 or not 2 <= alphabet <= 26:
        raise ValueError("copy needs length >= 1, delay >= 0 and an alphabet of 2 to 26 letters")
    rng = _Random(seed)
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)[:alphabet]
    middle = np.frombuffer(b"-" * delay + b">", dtype=np.uint8)
    newline = np.frombuffer(b"\n", dtype=np.uint8)

    def lines() -> Iterator[str]:
        while True:
            s = letters[rng.below(alphabet, (BATCH_LINES, length))]
            rows = np.concatenate([s, np.broadcast_to(middle, (BATCH_LINES, len(middle))), s,
                                   np.broadcast_to(newline, (BATCH_LINES, 1))], axis=1)
            yield rows.tobytes().decode("ascii")

    return _cut(lines(), chars)


def arithmetic(chars: int = 1_000_000, digits: int = 4, seed: int = 0) -> Iterator[str]:
    """Lines 'a+b=c' with a and b of 1 to ``digits`` digits (each length equally likely) and c their sum."""
    if not 1 <= digits <= 18:
        raise ValueError("arithmetic needs digits between 1 and 18")
    rng = _Random(seed)
    low = np.array([0] + [10 ** (d - 1) for d in range(2, digits + 1)], dtype=np.int64)
    span = np.array([10] + [9 * 10 ** (d - 1) for d in range(2, digits + 1)], dtype=np.int64)

    def lines() -> Iterator[str]:
        while True:
            d = rng.below(digits, (2, BATCH_LINES))
            raw = rng.bits.random_raw(2 * BATCH_LINES).reshape(2, BATCH_LINES)
            a, b = (low[d] + (raw % span[d].astype(np.uint64)).astype(np.int64)).tolist()
            yield "".join(f"{x}+{y}={x + y}\n" for x, y in zip(a, b))

    return _cut(lines(), chars)


PROBES = {
    "hello": (hello, "the lectures' h-e-l-l-o toy (a test of the shortest memory). The word 'hello' on every "
              "line: after the first 'l' comes another 'l', after the second an 'o', so even this needs a hidden "
              "state that remembers one step back; a working cell reaches a loss near zero within a few hundred "
              "steps."),
    "brackets": (brackets, "balanced nested brackets (a test of memory for structure). Lines of (), [], {} (and "
                 "<> with kinds=4), each `length` brackets long, nested at most `depth` deep. Opening and "
                 "closing are coin flips, but each closing bracket must match the last unclosed one: the loss on "
                 "closing brackets falls only if the cell keeps a stack of open brackets, like the closing braces "
                 "and code depth of the char-rnn studies. Raise `depth` to probe memory; the best possible loss "
                 "is the entropy of the coin flips and kinds."),
    "copy": (copy, "a random string, then the same again after a delay (a test of memory span). Each line holds "
             "a random string of `length` letters (from `alphabet`), `delay` dashes, '>', and the same string "
             "again. The first copy is unpredictable (ln(alphabet) nats a letter); the second is predictable only "
             "by a cell that remembers it across the delay, so the loss on it measures memory span. Lengthen "
             "`delay` until a cell fails."),
    "arithmetic": (arithmetic, "additions written as text (a test of learning an algorithm). Lines 'a+b=c', the "
                   "task of Jozefowicz et al. (2015) without distractors: the operands are random, the sum is "
                   "fully determined. The loss on the digits after '=' shows whether the cell learned to add and "
                   "carry; since the sum is written most significant digit first, it must work out the carries "
                   "before writing them."),
}
