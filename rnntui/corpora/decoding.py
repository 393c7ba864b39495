"""Reading bytes as text: decoding in any Python codec as a stream (an invalid byte is reported with its offset),
a leading byte-order mark dropped, CRLF and lone CR turned into LF even across chunk boundaries, binary data
recognised; and the progress reports that long text work sends to whoever shows them."""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rnntui.errors import DataError
from rnntui.util.files import CHUNK_BYTES

SNIFF_BYTES = 1 << 20  # a NUL byte in the first MiB marks a file as binary


@dataclass(frozen=True)
class TextProgress:
    """Progress of long text work, for a callback to show (the core never draws anything itself).

    stage: "hash" (fingerprinting files), "count" (first pass: characters), "encode" (second pass: writing the
    cached integer array), "download", or "note" (a one-line ``message`` for the user, e.g. skipped files)."""

    stage: str
    done: int = 0
    total: int | None = None
    unit: str = "B"  # "B" (bytes) or "chars"
    message: str = ""


ProgressFn = Callable[[TextProgress], None]


def report(progress: ProgressFn | None, stage: str, done: int = 0, total: int | None = None, unit: str = "B",
           message: str = "") -> None:
    if progress is not None:
        progress(TextProgress(stage, done, total, unit, message))


class SkipDocument(Exception):
    """A file of a directory that is not text in the encoding; it is skipped and reported, not fatal."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def canonical_encoding(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        raise DataError(f"unknown encoding {encoding!r}; use a Python codec name such as utf-8 or latin-1") from None


def _nul_means_binary(encoding: str) -> bool:
    """NUL bytes are normal in UTF-16/32 text and a sure sign of binary data in any byte-oriented encoding."""
    return not canonical_encoding(encoding).startswith(("utf-16", "utf-32"))


class Newlines:
    """Strips a leading byte-order mark and turns CRLF and lone CR into LF, across chunk boundaries."""

    def __init__(self, normalize: bool = True):
        self.normalize = normalize
        self.started = False
        self.pending_cr = False

    def feed(self, text: str, final: bool = False) -> str:
        if not self.started and text:
            self.started = True
            text = text.removeprefix("\ufeff")
        if not self.normalize:
            return text
        if self.pending_cr:
            text, self.pending_cr = "\r" + text, False
        if not final and text.endswith("\r"):
            text, self.pending_cr = text[:-1], True
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        return text


def read_bytes(path: Path, chunk: int = CHUNK_BYTES) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while block := f.read(chunk):
            yield block


def decode_chunks(blocks: Iterable[bytes], encoding: str, normalize: bool, what: str,
                  skip: bool = False) -> Iterator[tuple[str, int]]:
    """Decode byte blocks into text chunks, yielding (text, bytes consumed).

    Binary data (a NUL byte in the first MiB, for byte-oriented encodings) and invalid bytes raise DataError naming
    ``what`` and the byte offset, or SkipDocument when ``skip`` (a file inside a directory)."""
    decoder = codecs.getincrementaldecoder(canonical_encoding(encoding))(errors="strict")
    newlines = Newlines(normalize)
    sniff = _nul_means_binary(encoding)
    offset = 0  # bytes fed to the decoder before the current block
    seen = 0
    for block in blocks:
        if sniff and seen < SNIFF_BYTES and b"\x00" in block[: SNIFF_BYTES - seen]:
            if skip:
                raise SkipDocument("binary")
            raise DataError(f"{what} looks binary (it contains NUL bytes); give a plain text file")
        seen += len(block)
        buffered = decoder.getstate()[0]
        try:
            text = decoder.decode(block)
        except UnicodeDecodeError as e:
            _bad_bytes(e, offset - len(buffered), encoding, what, skip)
        offset += len(block)
        if out := newlines.feed(text):
            yield out, len(block)
        elif len(block):
            yield "", len(block)
    buffered = decoder.getstate()[0]
    try:
        text = decoder.decode(b"", final=True)
    except UnicodeDecodeError as e:
        _bad_bytes(e, offset - len(buffered), encoding, what, skip)
    if out := newlines.feed(text, final=True):
        yield out, 0


def _bad_bytes(e: UnicodeDecodeError, base: int, encoding: str, what: str, skip: bool):
    position = base + e.start
    byte = e.object[e.start] if e.start < len(e.object) else None
    if skip:
        raise SkipDocument(f"not valid {encoding} at byte {position}")
    shown = f"byte 0x{byte:02x}" if byte is not None else "a byte"
    if "end of data" in (e.reason or ""):
        shown = f"an incomplete character at the end ({shown})"
    raise DataError(f"{what} is not valid {encoding}: {shown} at offset {position}; "
                    "re-run with --encoding latin-1 (or the file's real encoding)") from None
