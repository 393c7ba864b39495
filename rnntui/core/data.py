"""Text -> vocabulary of Unicode code points -> compact integer array -> train/validation streams for truncated BPTT."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from rnntui.core.errors import UserError


class DataError(UserError):
    """A problem with the user's text; the message is one line that says what to do."""


def read_text_file(path: str | Path, encoding: str = "utf-8") -> str:
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file; give a path to a text file or the name of a corpus (rnntui corpora)")
    if path.is_dir():
        raise DataError(f"{path} is a directory; give a text file")
    raw = path.read_bytes()
    if b"\x00" in raw[:1 << 20] and encoding.replace("-", "").lower().startswith("utf8"):
        raise DataError(f"{path} looks binary (it contains NUL bytes); give a plain text file")
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as e:
        raise DataError(
            f"{path} is not valid {encoding}: byte 0x{raw[e.start]:02x} at offset {e.start}; "
            "re-run with --encoding latin-1 (or the file's real encoding)"
        ) from None
    return text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def check_text(text: str, what: str) -> None:
    if not text.strip():
        raise DataError(f"{what} is empty or only whitespace; give a text with some content")


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
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        table = np.frombuffer("".join(self.chars).encode("utf-32-le"), dtype=np.uint32)
        ids = np.searchsorted(table, codes)
        if len(codes) and (ids.max() >= len(table) or not np.array_equal(table[ids], codes)):
            missing = "".join(self.unknown(text))
            raise DataError(f"characters not in the vocabulary: {missing!r}")
        return ids.astype(self.dtype)

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


@dataclass(frozen=True)
class Dataset:
    vocab: Vocab
    train: np.ndarray
    val: np.ndarray


def make_dataset(text: str, val_fraction: float = 0.1, what: str = "the corpus") -> Dataset:
    """Contiguous split: the first (1 - val_fraction) of the text trains, the rest validates (nanoGPT's convention)."""
    check_text(text, what)
    if not 0.0 <= val_fraction < 1.0:
        raise DataError(f"validation fraction must be in [0, 1), got {val_fraction}")
    vocab = Vocab.from_text(text)
    data = vocab.encode(text)
    n_train = int(len(data) * (1.0 - val_fraction))  # nanoGPT: 1,003,854 / 111,540 on tinyshakespeare
    return Dataset(vocab, data[:n_train], data[n_train:])


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
        j = index % self.per_epoch
        window = torch.from_numpy(self.data[self._offsets + j * self.seq_len].astype(np.int64))
        return window[:, :-1], window[:, 1:], j == 0


def eval_chunks(data: np.ndarray, n_streams: int = 64, seq_len: int = 256):
    """Every symbol of ``data`` (after the first) as a target exactly once: yields (inputs, targets, reset) chunks,
    as n_streams carried streams and then one stream for the remainder."""
    n = len(data) - 1
    if n < 1:
        return
    n_streams = max(1, min(n_streams, n // seq_len or 1))
    stream_len = n // n_streams
    main = torch.from_numpy(data[: n_streams * stream_len + 1].astype(np.int64))
    starts = torch.arange(n_streams) * stream_len
    for t0 in range(0, stream_len, seq_len):
        t1 = min(t0 + seq_len, stream_len)
        idx = starts[:, None] + torch.arange(t0, t1 + 1)[None, :]
        window = main[idx]
        yield window[:, :-1], window[:, 1:], t0 == 0
    rest = n - n_streams * stream_len
    if rest:
        tail = torch.from_numpy(data[n - rest :].astype(np.int64))
        yield tail[None, :-1], tail[None, 1:], True
