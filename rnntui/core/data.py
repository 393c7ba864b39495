"""Text -> vocabulary of Unicode code points -> compact integer array -> train/validation streams for truncated BPTT.

Reading text (files, directories, stdin, registered corpora) lives in ``rnntui.corpora.sources``; the streaming,
cached encoding of large texts in ``rnntui.corpora.textcache``; both build on this module, never the reverse. This module holds what both need: the vocabulary and
its policy for huge alphabets, character counting, and the split into carried streams.
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import TYPE_CHECKING

import numpy as np

from rnntui.core.config import check_val_fraction
from rnntui.errors import DataError

if TYPE_CHECKING:
    import torch

# The vocabulary policy. Up to MAX_VOCAB distinct characters are kept, ids stored as uint8 (<= 256 symbols) or
# uint16. A text with more distinct characters keeps its MAX_VOCAB - 1 most frequent ones (ties: lower code point
# first) and maps every rarer character to UNKNOWN (U+FFFD, the Unicode replacement character), which is then one
# symbol of the vocabulary; a note says how many characters and occurrences were mapped.
MAX_VOCAB = 65_535
UNKNOWN = "\ufffd"


def check_text(text: str, what: str) -> None:
    if not text.strip():
        raise DataError(f"{what} is empty or only whitespace; give a text with some content")


def to_codes(text: str) -> np.ndarray:
    """The code points of ``text``: uint8 for ASCII (no copy beyond the encode), else uint32."""
    if text.isascii():
        return np.frombuffer(text.encode("ascii"), dtype=np.uint8)
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


class CharCounts:
    """How often each code point occurs, accumulated chunk by chunk."""

    def __init__(self) -> None:
        self.counts = np.zeros(128, dtype=np.int64)
        self.n = 0

    def add(self, codes: np.ndarray) -> None:
        if not len(codes):
            return
        c = np.bincount(codes)
        if len(c) > len(self.counts):
            grown = np.zeros(max(len(c), 2 * len(self.counts)), dtype=np.int64)
            grown[: len(self.counts)] = self.counts
            self.counts = grown
        self.counts[: len(c)] += c
        self.n += len(codes)

    def merge(self, other: CharCounts) -> None:
        if other.n:
            self.add_counts(np.nonzero(other.counts)[0], other.counts[other.counts > 0])

    def add_counts(self, code_points: np.ndarray, counts: np.ndarray) -> None:
        if not len(code_points):
            return
        top = int(code_points.max()) + 1
        if top > len(self.counts):
            grown = np.zeros(max(top, 2 * len(self.counts)), dtype=np.int64)
            grown[: len(self.counts)] = self.counts
            self.counts = grown
        np.add.at(self.counts, code_points.astype(np.int64), counts.astype(np.int64))
        self.n += int(counts.sum())

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        """(code points, counts) of the characters that occur, in code point order."""
        code_points = np.nonzero(self.counts)[0]
        return code_points, self.counts[code_points]


@dataclass(frozen=True)
class Vocab:
    """The sorted distinct characters of a corpus. Symbol id i stands for ``chars[i]``."""

    chars: tuple[str, ...]

    @classmethod
    def from_text(cls, text: str) -> Vocab:
        return cls(tuple(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    @property
    def dtype(self) -> np.dtype:
        """The smallest unsigned integer type that holds every symbol id."""
        for dtype in (np.uint8, np.uint16, np.uint32):
            if len(self.chars) <= np.iinfo(dtype).max + 1:
                return np.dtype(dtype)
        raise DataError("vocabulary too large")

    def unknown(self, text: str) -> list[str]:
        known = set(self.chars)
        return sorted({c for c in text if c not in known})

    def encode(self, text: str) -> np.ndarray:
        codes = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        table = np.frombuffer("".join(self.chars).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        ids = np.searchsorted(table, codes)
        if len(codes) and (ids.max() >= len(table) or not np.array_equal(table[ids], codes)):
            missing = "".join(self.unknown(text))
            raise DataError(f"characters not in the vocabulary: {missing!r}")
        return ids.astype(self.dtype)

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


@dataclass(frozen=True)
class VocabPlan:
    """A vocabulary built from character counts, with the lookup table that encodes code points into ids."""

    vocab: Vocab
    table: np.ndarray  # code point -> id, for every code point up to the largest seen
    mapped_chars: int = 0  # distinct characters mapped to UNKNOWN by the policy
    mapped_count: int = 0  # their occurrences

    @property
    def note(self) -> str | None:
        if not self.mapped_chars:
            return None
        return (f"the text has {len(self.vocab) - 1 + self.mapped_chars:,} distinct characters, more than the "
                f"{MAX_VOCAB:,} a vocabulary holds: the {self.mapped_chars:,} rarest ({self.mapped_count:,} "
                f"occurrences) are mapped to U+FFFD")

    def encode(self, codes: np.ndarray) -> np.ndarray:
        try:
            return self.table[codes]
        except IndexError:
            raise DataError("the text changed while it was being read; run again") from None


def plan_vocab(counts: CharCounts, what: str = "the corpus", max_vocab: int = MAX_VOCAB) -> VocabPlan:
    """The vocabulary of a text from its character counts, applying the policy for more than ``max_vocab``
    distinct characters (see MAX_VOCAB). Refuses an empty or whitespace-only text."""
    code_points, freq = counts.items()
    if not any(not chr(int(cp)).isspace() for cp in code_points):
        raise DataError(f"{what} is empty or only whitespace; give a text with some content")
    mapped_chars = mapped_count = 0
    unknown = ord(UNKNOWN)
    if len(code_points) > max_vocab:
        order = np.lexsort((code_points, -freq))  # most frequent first, then lower code point
        ranked = code_points[order]
        ranked = ranked[ranked != unknown]
        kept = np.sort(np.append(ranked[: max_vocab - 1], unknown))
        dropped = np.setdiff1d(code_points, kept)
        mapped_chars = len(dropped)
        mapped_count = int(counts.counts[dropped].sum())
    else:
        kept = code_points
    vocab = Vocab(tuple(chr(int(cp)) for cp in kept))
    dtype = vocab.dtype
    size = int(code_points.max()) + 1
    if mapped_chars:
        table = np.full(size, np.searchsorted(kept, unknown), dtype=dtype)
    else:
        table = np.zeros(size, dtype=dtype)
    table[kept] = np.arange(len(kept), dtype=dtype)
    return VocabPlan(vocab, table, mapped_chars, mapped_count)


@dataclass(frozen=True)
class Dataset:
    vocab: Vocab
    train: np.ndarray  # 1-D unsigned integers; an np.memmap for texts encoded through the on-disk cache
    val: np.ndarray
    name: str = ""  # what to call the text: a corpus name, a resolved path, "stdin"
    fingerprint: str | None = None  # identifies the exact text (and how it was read); resume checks it
    notes: tuple[str, ...] = ()  # what the user should know: files skipped, characters mapped to U+FFFD


def split_dataset(vocab: Vocab, data: np.ndarray, val_fraction: float = 0.1, **extra) -> Dataset:
    """Contiguous split: the first (1 - val_fraction) of the text trains, the rest validates (nanoGPT's convention)."""
    check_val_fraction(val_fraction)
    n_train = int(len(data) * (1.0 - val_fraction))  # nanoGPT: 1,003,854 / 111,540 on tinyshakespeare
    return Dataset(vocab, data[:n_train], data[n_train:], **extra)


def make_dataset(text: str, val_fraction: float = 0.1, what: str = "the corpus") -> Dataset:
    """A dataset from a text held in memory (the vocabulary policy applies; see MAX_VOCAB)."""
    check_text(text, what)
    check_val_fraction(val_fraction)
    codes = to_codes(text)
    counts = CharCounts()
    counts.add(codes)
    plan = plan_vocab(counts, what)
    notes = (plan.note,) if plan.note else ()
    return split_dataset(plan.vocab, plan.encode(codes), val_fraction, name=what, notes=notes)


class Streams:
    """B parallel streams through ``data``, each a contiguous stretch, read T symbols at a time.

    Batch j of an epoch holds, for stream b, data[b*L + j*T : b*L + j*T + T] and the next symbol of each as the
    target. The hidden state is carried from batch j to j+1 of the same stream; when the streams wrap to the start
    of a new epoch (``reset``), the state starts fresh, as in char-rnn and torch-rnn.
    """

    def __init__(self, data: np.ndarray, batch_size: int, seq_len: int, what: str = "the training split"):
        if batch_size < 1 or seq_len < 1:
            raise DataError("batch size and sequence length must be at least 1")
        self.per_epoch = (len(data) - 1) // (batch_size * seq_len)
        if self.per_epoch < 1:
            raise DataError(
                f"{what} has {len(data)} characters, fewer than one batch needs "
                f"(batch size {batch_size} x sequence length {seq_len} + 1); "
                "lower --batch-size or --seq-len, or use a longer text"
            )
        self.data = data
        self.batch_size, self.seq_len = batch_size, seq_len
        stream_len = self.per_epoch * seq_len
        self._offsets = np.arange(batch_size)[:, None] * stream_len + np.arange(seq_len + 1)[None, :]

    def batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """Batch number ``index`` (counting across epochs) -> (inputs, targets, reset_state)."""
        import torch  # here, not at the top: sampling reads the vocabulary without paying for torch

        j = index % self.per_epoch
        window = torch.from_numpy(self.data[self._offsets + j * self.seq_len].astype(np.int64))
        return window[:, :-1], window[:, 1:], j == 0


def eval_chunks(data: np.ndarray, n_streams: int = 64, seq_len: int = 256):
    """Every symbol of ``data`` (after the first) as a target exactly once: yields (inputs, targets, reset) chunks,
    as n_streams carried streams and then one stream for the remainder. Only the current window is copied out of
    ``data``, so a memory-mapped split is never loaded whole."""
    import torch

    n = len(data) - 1
    if n < 1:
        return
    n_streams = max(1, min(n_streams, n // seq_len or 1))
    stream_len = n // n_streams
    starts = np.arange(n_streams) * stream_len
    for t0 in range(0, stream_len, seq_len):
        t1 = min(t0 + seq_len, stream_len)
        window = torch.from_numpy(data[starts[:, None] + np.arange(t0, t1 + 1)[None, :]].astype(np.int64))
        yield window[:, :-1], window[:, 1:], t0 == 0
    rest = n - n_streams * stream_len
    if rest:
        tail = torch.from_numpy(np.asarray(data[n - rest :]).astype(np.int64))
        yield tail[None, :-1], tail[None, 1:], True
