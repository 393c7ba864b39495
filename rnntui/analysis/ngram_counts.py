"""Counting the n-grams of a long integer text, order by order, in bounded memory (for rnntui.analysis.ngram).

Every k-gram of the training text gets a compact id. The 1-grams are numbered in symbol order; the k-gram ending
at position i has the key ``id of the (k-1)-gram ending at i-1 * V + x[i]`` and is numbered by its rank among
the distinct keys. So the table of order k is a sorted array of keys whose index is the id, and the key itself
names the history (the first k-1 symbols: ``key // V``) and the last symbol (``key % V``). Keys fit in 64 bits for
any order, because ids are compact (at most one per position).

Memory. Positions are read CHUNK at a time. The distinct k-grams are collected for one range of history ids at a
time and at most ``budget`` of them are held (a range that holds more is split in two and read again), so the
resident memory stays near 60 bytes x budget + 60 bytes x CHUNK, whatever the length of the text. Everything else
lives in raw files in a work directory, read back in slices (never mapped whole): per order its table (keys, raw
counts, continuation counts), and, while the next order is counted, the id of the k-gram at each position (4
bytes a character).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

CHUNK = 1 << 22  # positions (or table entries) read at once
BUDGET = 1 << 22  # distinct n-grams held at once while counting one range of histories
MAX_POSITIONS = 2**31 - 2  # ids and counts are int32


class Column:
    """A 1-D array in a raw file, read and written in slices."""

    def __init__(self, path: Path, dtype):
        self.path, self.dtype = Path(path), np.dtype(dtype)
        self.path.write_bytes(b"")

    def __len__(self) -> int:
        return self.path.stat().st_size // self.dtype.itemsize

    def read(self, start: int, stop: int) -> np.ndarray:
        count = max(0, stop - start)
        return np.fromfile(self.path, self.dtype, count=count, offset=start * self.dtype.itemsize)

    def append(self, values: np.ndarray) -> None:
        with open(self.path, "ab") as f:
            np.asarray(values, dtype=self.dtype).tofile(f)

    def write(self, start: int, values: np.ndarray) -> None:
        with open(self.path, "r+b") as f:
            f.seek(start * self.dtype.itemsize)
            np.asarray(values, dtype=self.dtype).tofile(f)

    def chunks(self, size: int | None = None) -> Iterator[tuple[int, np.ndarray]]:
        n, size = len(self), size or CHUNK
        for start in range(0, n, size):
            yield start, self.read(start, min(start + size, n))

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)


@dataclass
class Level:
    """The n-grams of one order k."""

    order: int
    size: int  # distinct k-grams
    keys: Column  # int64, sorted; index = id; history id = key // V, last symbol = key % V
    raw: Column  # int32: occurrences in the training text
    raw_coc: np.ndarray  # counts of counts: [j] = entries with raw count j, for j = 0..4; [5] = more
    cont: Column | None = None  # int32: distinct symbols seen before the k-gram (Kneser-Ney continuation count)
    cont_coc: np.ndarray | None = None


def _merge(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]):
    """Sorted distinct keys with summed counts (and one suffix id each) from several such tables."""
    if len(parts) == 1:
        return parts[0]
    keys = np.concatenate([p[0] for p in parts])
    unique, inverse = np.unique(keys, return_inverse=True)
    counts = np.bincount(inverse, weights=np.concatenate([p[1] for p in parts]), minlength=len(unique))
    suffix = None
    if parts[0][2] is not None:  # a key's suffix is the same wherever it occurs: keep any
        suffix = np.empty(len(unique), np.int64)
        suffix[inverse] = np.concatenate([p[2] for p in parts])
    return unique, counts.astype(np.int64), suffix


def _sort_with_origin(key: np.ndarray, index_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """The keys sorted, and where each came from in ``key``: one sort of the keys packed with their index
    (key << index_bits | index), several times faster than argsort (NumPy sorts plain integers with SIMD)."""
    packed = np.sort((key << index_bits) | np.arange(len(key), dtype=np.int64))
    return packed >> index_bits, packed & ((1 << index_bits) - 1)


def _runs(sorted_keys: np.ndarray) -> np.ndarray:
    """Where each run of equal values starts in a sorted array."""
    starts = np.empty(len(sorted_keys), bool)
    starts[:1] = True
    np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=starts[1:])
    return np.flatnonzero(starts)


class NGramCounts:
    """The n-gram tables of orders 1..max_order of ``train`` (1-D unsigned symbol ids below ``vocab_size``),
    written into a fresh directory under ``workdir``, which the caller owns and removes (use as a context
    manager for a temporary one)."""

    def __init__(self, train: np.ndarray, vocab_size: int, max_order: int, workdir: Path,
                 budget: int = BUDGET, progress: Callable[[str], None] | None = None):
        if len(train) > MAX_POSITIONS:
            raise ValueError("n-gram counting handles up to 2**31 characters")
        self.train, self.V, self.budget = train, int(vocab_size), max(16, int(budget))
        # keys are below (len + 1) * V; what is left of 63 bits numbers the positions of a chunk (see _sort_with_origin)
        self.index_bits = 63 - int((len(train) + 1) * self.V).bit_length()
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.levels: list[Level] = []
        self.partitions: list[int] = []  # ranges of histories each order was counted in (memory diagnostics)
        self._ids: Column | None = None  # the id of the (k-1)-gram ending at each position, while order k is counted
        for k in range(1, max_order + 1):
            if progress:
                progress(f"counting {k}-grams")
            self._count_order(k)
        if self._ids is not None:
            self._ids.delete()
            self._ids = None

    # -- one order ----------------------------------------------------------------------------------------------

    def _count_order(self, k: int) -> None:
        n_hist = self.levels[-1].size if k > 1 else 1
        keys = Column(self.dir / f"keys{k}", np.int64)
        raw = Column(self.dir / f"raw{k}", np.int32)
        suffix = Column(self.dir / f"suffix{k}", np.int64) if k > 1 else None
        ids = Column(self.dir / f"ids{k}", np.int32)
        n = len(self.train)
        for start in range(0, n, CHUNK):
            ids.append(np.full(min(CHUNK, n - start), -1, np.int32))
        coc = np.zeros(6, np.int64)
        pending, offset, parts = self._initial_ranges(k, n_hist), 0, 0
        while pending:
            lo, hi = pending.pop(0)
            table = self._distinct(k, lo, hi, n_hist)
            if table is None:  # too many distinct k-grams for the budget: read the two halves separately
                mid = (lo + hi) // 2
                pending[:0] = [(lo, mid), (mid, hi)]
                continue
            unique, counts, suffixes = table
            keys.append(unique)
            raw.append(counts)
            if suffix is not None:
                suffix.append(suffixes)
            coc += np.bincount(np.minimum(counts, 5), minlength=6)
            self._assign(k, ids, lo, hi, n_hist, unique, offset)
            offset += len(unique)
            parts += 1
        self.partitions.append(parts)
        if k > 1:
            self._continuation(self.levels[-1], suffix)
            suffix.delete()
            self._ids.delete()
        self._ids = ids
        self.levels.append(Level(k, offset, keys, raw, coc))

    def _initial_ranges(self, k: int, n_hist: int) -> list[tuple[int, int]]:
        """Split the history ids so that each range should hold fewer than ``budget`` distinct k-grams: the count
        is guessed from the growth of the last two orders (a wrong guess costs a re-read, never memory)."""
        if k == 1:
            return [(0, 1)]
        before = self.levels[-2].size if k > 2 else 1
        guess = min(len(self.train), n_hist * min(self.V, max(1.0, n_hist / before)))
        parts = max(1, min(n_hist, math.ceil(guess / (0.8 * self.budget))))
        edges = np.linspace(0, n_hist, parts + 1).round().astype(np.int64)
        return [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:]) if b > a]

    def _positions(self, k: int, lo: int, hi: int, n_hist: int):
        """For each chunk of positions holding a k-gram whose history id is in [lo, hi): (first position, mask of
        those positions in the chunk or None for all, their keys, their suffix ids or None for k = 1)."""
        n = len(self.train)
        chunk = min(CHUNK, 1 << self.index_bits)
        for start in range(k - 1, n, chunk):
            stop = min(start + chunk, n)
            sym = np.asarray(self.train[start:stop], dtype=np.int64)
            if k == 1:
                yield start, None, sym, None
                continue
            both = self._ids.read(start - 1, stop).astype(np.int64)
            history, suffix = both[:-1], both[1:]
            if lo == 0 and hi == n_hist:
                yield start, None, history * self.V + sym, suffix
            else:
                mask = (history >= lo) & (history < hi)
                yield start, mask, history[mask] * self.V + sym[mask], suffix[mask]

    def _distinct(self, k: int, lo: int, hi: int, n_hist: int):
        """The sorted distinct keys of the range with their counts and suffix ids, or None past the budget."""
        merged, pending, waiting = None, [], 0
        for _, _, key, suffix in self._positions(k, lo, hi, n_hist):
            if not len(key):
                continue
            sorted_keys, origin = _sort_with_origin(key, self.index_bits)
            first = _runs(sorted_keys)
            counts = np.diff(first, append=len(key))
            if suffix is not None:  # a k-gram's suffix is the same wherever it occurs: keep its first one's
                suffix = suffix[origin[first]]
            pending.append((sorted_keys[first], counts, suffix))
            waiting += len(first)
            if waiting >= self.budget // 2:
                merged = _merge(([merged] if merged else []) + pending)
                pending, waiting = [], 0
                if len(merged[0]) > self.budget and hi - lo > 1:
                    return None
        parts = ([merged] if merged else []) + pending
        if not parts:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), None if k == 1 else np.zeros(0, np.int64)
        return _merge(parts)

    def _assign(self, k: int, ids: Column, lo: int, hi: int, n_hist: int, unique: np.ndarray, offset: int) -> None:
        """Write the id of each k-gram of the range at its position."""
        for start, mask, key, _ in self._positions(k, lo, hi, n_hist):
            # search the chunk's own distinct keys, in order: ~7x faster than searching every key
            sorted_keys, origin = _sort_with_origin(key, self.index_bits)
            first = _runs(sorted_keys)
            ids_sorted = np.repeat(offset + np.searchsorted(unique, sorted_keys[first]),
                                   np.diff(first, append=len(key)))
            found = np.empty(len(key), np.int64)
            found[origin] = ids_sorted
            if mask is None:
                ids.write(start, found)
            elif mask.any():
                chunk = ids.read(start, start + len(mask))
                chunk[mask] = found
                ids.write(start, chunk)

    def _continuation(self, level: Level, suffix: Column) -> None:
        """Continuation counts of the (k-1)-grams: how many distinct k-grams end with each (one suffix id per
        distinct k-gram), counted for one range of ids at a time."""
        cont = Column(self.dir / f"cont{level.order}", np.int32)
        coc = np.zeros(6, np.int64)
        for lo in range(0, level.size, self.budget):
            hi = min(lo + self.budget, level.size)
            acc = np.zeros(hi - lo, np.int64)
            for _, s in suffix.chunks():
                if lo > 0 or hi < level.size:
                    s = s[(s >= lo) & (s < hi)]
                acc += np.bincount(s - lo, minlength=hi - lo)
            cont.append(acc)
            coc += np.bincount(np.minimum(acc, 5), minlength=6)
        level.cont, level.cont_coc = cont, coc
