"""Choosing the next character from logits, shared by every generation path (numpy and torch), without torch.

Each stream draws exactly one uniform number per character from its own seeded generator (PCG64) and picks the
character by inverse-CDF: the first one whose cumulative probability exceeds the draw. So the characters depend
only on the logits and the seed, whichever path computed the logits; two paths agree character for character as
long as their logits agree to within float32 rounding and no draw falls in the sliver between (see NOTES).

All arithmetic here is float64 on buffers allocated once for the batch; top-p alone sorts (and allocates) per
character.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from rnntui.errors import DataError, UserError

GREEDY_BELOW = 1e-3  # temperatures this close to 0 take the argmax: the limit of the distribution, without overflow
DRAW_BLOCK = 256  # uniform numbers drawn per generator call; a block gives the same sequence as single draws


class NotFiniteError(UserError):
    """The model's output is NaN or infinite: its weights diverged."""

    def __init__(self) -> None:
        super().__init__("the model's output is not finite (NaN or inf): its weights diverged; use an earlier "
                         "checkpoint (rnntui sample --best) or train again with a lower learning rate")


def check_options(temperatures: Sequence[float], top_k: int | None = None, top_p: float | None = None) -> None:

    if not temperatures:
        raise DataError("give at least one temperature, e.g. --temperature 0.2,0.5,1.0")
    for t in temperatures:
        if not math.isfinite(t) or t <= 0:
            raise DataError(f"temperature must be a positive number (got {t}); use e.g. 0.8, or 0.001 for argmax")
    if top_k is not None and top_k < 1:
        raise DataError(f"top-k must be at least 1 (got {top_k})")
    if top_p is not None and not (0 < top_p <= 1):
        raise DataError(f"top-p must be in (0, 1] (got {top_p})")


def log_softmax(logits: np.ndarray, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """(B, V) logits -> (B, V) float64 log-probabilities in ``out``; ``scratch`` is a (B, V) float64 buffer.
    The sampler's reported log-probabilities are computed the same way, so greedy decoding and a beam of one sum
    exactly the same numbers."""
    np.copyto(out, logits)
    largest = out.max(axis=1, keepdims=True)
    if not np.isfinite(largest).all():
        raise NotFiniteError()
    out -= largest
    np.exp(out, out=scratch)
    out -= np.log(scratch.sum(axis=1, keepdims=True))
    return out


class Sampler:
    """Draws one symbol per stream from (B, V) logits: temperature (one per stream), top-k, top-p, and argmax for
    temperatures below GREEDY_BELOW. After each call ``logprob`` holds the log-probability, under the model itself
    (temperature 1, no filtering), of each drawn symbol: comparable across temperatures."""

    def __init__(self, vocab_size: int, temperatures: Sequence[float], seeds: Sequence[int],
                 top_k: int | None = None, top_p: float | None = None):
        check_options(temperatures, top_k, top_p)
        if len(seeds) != len(temperatures):
            raise ValueError("one seed per stream")
        batch = len(temperatures)
        self.top_k = top_k if top_k is not None and top_k < vocab_size else None
        self.top_p = top_p if top_p is not None and top_p < 1.0 else None
        temps = np.asarray(temperatures, dtype=np.float64)
        self.greedy = temps < GREEDY_BELOW
        self.inv_temperature = (1.0 / np.where(self.greedy, 1.0, temps))[:, None]
        self.generators = [np.random.Generator(np.random.PCG64(seed)) for seed in seeds]
        self.draws = np.empty((batch, DRAW_BLOCK))
        self.next_draw = DRAW_BLOCK
        self.shifted = np.empty((batch, vocab_size))
        self.weights = np.empty((batch, vocab_size))
        self.cdf = np.empty((batch, vocab_size))
        self.below = np.empty((batch, vocab_size), dtype=bool)
        self.kth = np.empty((batch, vocab_size))
        self.rows = np.arange(batch)
        self.ids = np.empty(batch, dtype=np.int64)
        self.logprob = np.empty(batch)

    def _uniforms(self) -> np.ndarray:
        if self.next_draw == DRAW_BLOCK:
            for gen, row in zip(self.generators, self.draws):
                gen.random(out=row)
            self.next_draw = 0
        u = self.draws[:, self.next_draw]
        self.next_draw += 1
        return u

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        """(B, V) logits -> (B,) symbol ids (a buffer reused by the next call)."""
        u = self._uniforms()
        if len(u) == 1 and self.top_k is None and self.top_p is None:
            return self._one(logits[0], float(u[0]))
        shifted, w = self.shifted, self.weights
        np.copyto(shifted, logits)
        largest = shifted.max(axis=1, keepdims=True)
        if not np.isfinite(largest).all():  # a NaN, a +inf, or a row of -inf
            raise NotFiniteError()
        shifted -= largest  # log p + a constant; the largest is exactly 0
        np.exp(shifted, out=w)
        log_total = np.log(w.sum(axis=1))
        np.multiply(shifted, self.inv_temperature, out=w)
        np.exp(w, out=w)  # p ** (1 / T), up to a constant per row
        if self.top_k is not None:  # keep the k likeliest (ties at the k-th kept), as filter_logits does
            np.copyto(self.kth, shifted)
            self.kth.partition(-self.top_k, axis=1)
            np.less(shifted, self.kth[:, -self.top_k, None], out=self.below)
            w[self.below] = 0.0
        if self.top_p is not None:
            self._nucleus(w)
        cdf = np.cumsum(w, axis=1, out=self.cdf)
        np.less_equal(cdf, (u * cdf[:, -1])[:, None], out=self.below)
        ids = self.below.sum(axis=1, out=self.ids)  # the first index whose cumulative weight exceeds the draw
        if ids.max() >= w.shape[1]:  # u * total rounded up to the total: take the last symbol with weight
            ids[:] = np.minimum(ids, w.shape[1] - 1 - np.argmax(w[:, ::-1] > 0, axis=1))
        if self.greedy.any():
            ids[self.greedy] = shifted[self.greedy].argmax(axis=1)
        np.subtract(shifted[self.rows, ids], log_total, out=self.logprob)
        return ids

    def _one(self, logits: np.ndarray, u: float) -> np.ndarray:
        """The same draw for a single stream without top-k/top-p, in fewer (1-D) operations."""
        shifted, w = self.shifted[0], self.weights[0]
        np.copyto(shifted, logits)
        largest = shifted.max()
        if not math.isfinite(largest):
            raise NotFiniteError()
        shifted -= largest
        np.exp(shifted, out=w)
        log_total = np.log(w.sum())  # np.log, as log_softmax uses: math.log may differ in the last bit
        if self.greedy[0]:
            i = int(shifted.argmax())
        else:
            if self.inv_temperature[0, 0] != 1.0:
                np.multiply(shifted, self.inv_temperature[0, 0], out=w)
                np.exp(w, out=w)
            cdf = np.cumsum(w, out=self.cdf[0])
            i = int(np.searchsorted(cdf, u * cdf[-1], side="right"))
            if i == len(w):
                i = len(w) - 1 - int(np.argmax(w[::-1] > 0))
        self.ids[0] = i
        self.logprob[0] = shifted[i] - log_total
        return self.ids

    def _nucleus(self, w: np.ndarray) -> None:
        """Keep the smallest set of likeliest symbols whose mass reaches top_p (as filter_logits does)."""
        order = np.argsort(-w, axis=1, kind="stable")
        sorted_w = np.take_along_axis(w, order, axis=1)
        cumulative = np.cumsum(sorted_w, axis=1)
        before = (cumulative - sorted_w) / cumulative[:, -1:]
        drop = before >= self.top_p
        np.put_along_axis(w, order, np.where(drop, 0.0, sorted_w), axis=1)


def parse_temperatures(text: str) -> list[float]:
    """'0.2,0.5,1.0' -> [0.2, 0.5, 1.0]; refuses an empty list, a non-number, and temperatures <= 0."""

    parts = [p.strip() for p in text.split(",")]
    if not any(parts):
        raise DataError("give at least one temperature, e.g. --temperature 0.2,0.5,1.0")
    try:
        temperatures = [float(p) for p in parts]
    except ValueError:
        raise DataError(f"--temperature takes numbers separated by commas, e.g. 0.2,0.5,1.0 (got {text!r})") from None
    check_options(temperatures)
    return temperatures
