"""Turning a text source into a vocabulary and an integer array, once.

Two streaming passes, never holding the whole text: the first counts characters (and, for a corpus that has no
version, hashes its content), the vocabulary follows from the counts (``data.plan_vocab``), the second encodes.
A text shorter than ``CACHE_MIN_CHARS`` keeps its codes from the first pass and stays in memory, as before. A
longer one is written, chunk by chunk, to ``<cache>/text/<fingerprint>/ids.bin`` (uint8 or uint16) with a
``meta.json`` beside it, and memory-mapped; the next run with the same content (same fingerprint) maps it at
once. Entries are written in a temporary directory and renamed into place, so a crash never leaves a partial one.

The cache directory is rnntui.util.paths.cache_dir() (``~/.cache/rnntui`` on Linux, ``$RNNTUI_HOME/cache`` when
RNNTUI_HOME is set).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rnntui.core.config import check_val_fraction
from rnntui.core.data import CharCounts, DataError, Dataset, Vocab, VocabPlan, plan_vocab, split_dataset, to_codes
from rnntui.corpora.corpus import Corpus
from rnntui.corpora.decoding import ProgressFn, SkipDocument, report
from rnntui.corpora.sources import NO_CORPORA, TextSource, open_source
from rnntui.util.files import write_json
from rnntui.util.paths import cache_dir

FORMAT = 1  # bump when the layout of a cache entry or the vocabulary policy changes
CACHE_MIN_CHARS = 1 << 24  # texts of at least this many characters (16 Mi) go through the on-disk cache
PROGRESS_EVERY = 0.1  # seconds between progress reports


def text_cache_dir() -> Path:
    return cache_dir() / "text"


# -- encoded texts -----------------------------------------------------------------------------------------------


@dataclass
class EncodedText:
    """A text as a vocabulary and an integer array (an np.memmap when it comes from the cache)."""

    name: str
    vocab: Vocab
    ids: np.ndarray
    code_points: np.ndarray  # the characters that occur, by code point ...
    counts: np.ndarray  # ... and how often
    fingerprint: str
    notes: tuple[str, ...] = ()
    skipped: tuple[tuple[str, str], ...] = ()  # (file, reason) for the files of a directory left out
    cache_path: Path | None = None  # the cache entry, when the text went through the on-disk cache
    from_cache: bool = False  # found in the cache rather than encoded by this call
    source: dict[str, Any] = field(default_factory=dict)  # how the text was read (kind, path, encoding, ...)

    def __len__(self) -> int:
        return len(self.ids)

    def dataset(self, val_fraction: float = 0.1) -> Dataset:
        return split_dataset(self.vocab, self.ids, val_fraction, name=self.name, fingerprint=self.fingerprint,
                             notes=self.notes)


@dataclass
class _Scan:
    counts: CharCounts
    kept: list[np.ndarray] | None  # the codes of every chunk, while the text is short enough to keep
    skipped: list[tuple[str, str]]
    content_sha256: str | None


def _chunks(source: TextSource, progress: ProgressFn | None, stage: str, skip: frozenset[str] = frozenset(),
            hasher=None) -> Iterator[tuple[str, Any]]:
    """Walk a source's documents: ("codes", array) for each chunk, then ("end", label) or ("skip", (label,
    reason)) for each document. Applies the source's max_chars the same way on every pass."""
    committed = 0
    cap = source.max_chars
    done, last = 0, 0.0
    for doc in source.documents():
        if doc.label in skip:
            continue
        local = 0
        reader = doc.read()
        try:
            for text, used in reader:
                done += used
                if progress and time.monotonic() - last > PROGRESS_EVERY:
                    last = time.monotonic()
                    report(progress, stage, done, source.total, source.unit)
                if cap is not None:
                    text = text[: max(0, cap - committed - local)]
                if text:
                    if hasher is not None:
                        hasher.update(text.encode("utf-8", "surrogatepass"))
                    codes = to_codes(text)
                    local += len(codes)
                    yield "codes", codes
                if cap is not None and committed + local >= cap:
                    break
        except SkipDocument as e:
            yield "skip", (doc.label, e.reason)
            continue
        finally:
            reader.close()
        committed += local
        yield "end", doc.label
        if cap is not None and committed >= cap:
            break
    report(progress, stage, source.total or done, source.total or done, source.unit)


def _scan(source: TextSource, progress: ProgressFn | None, keep_limit: int, hash_content: bool) -> _Scan:
    total, local = CharCounts(), CharCounts()
    kept: list[np.ndarray] | None = []
    local_kept: list[np.ndarray] = []
    skipped: list[tuple[str, str]] = []
    hasher = hashlib.sha256() if hash_content else None
    for kind, value in _chunks(source, progress, "count", hasher=hasher):
        if kind == "codes":
            local.add(value)
            if kept is not None:
                local_kept.append(value)
                if total.n + local.n > keep_limit:
                    kept, local_kept = None, []
        elif kind == "end":
            total.merge(local)
            if kept is not None:
                kept.extend(local_kept)
            local, local_kept = CharCounts(), []
        else:
            skipped.append(value)
            local, local_kept = CharCounts(), []
    return _Scan(total, kept, skipped, hasher.hexdigest() if hasher else None)


def _skip_notes(what: str, skipped: Sequence[tuple[str, str]]) -> list[str]:
    if not skipped:
        return []
    shown = ", ".join(f"{label} ({reason})" for label, reason in skipped[:10])
    more = f" and {len(skipped) - 10} more" if len(skipped) > 10 else ""
    return [f"{what}: skipped {len(skipped)} file{'s' if len(skipped) != 1 else ''} that "
            f"{'are' if len(skipped) != 1 else 'is'} not text: {shown}{more}"]


def _lookup(fingerprint: str, name: str) -> EncodedText | None:
    entry = text_cache_dir() / fingerprint
    try:
        meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            return None
        dtype, n = np.dtype(meta["dtype"]), int(meta["n"])
        if n < 1 or (entry / "ids.bin").stat().st_size != n * dtype.itemsize:
            return None
        ids = np.memmap(entry / "ids.bin", dtype=dtype, mode="r", shape=(n,))
        vocab = Vocab(tuple(meta["vocab"]))
        code_points = np.asarray(meta["code_points"], dtype=np.int64)
        counts = np.asarray(meta["counts"], dtype=np.int64)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    with contextlib.suppress(OSError):
        os.utime(entry)  # last used, for whoever trims the cache
    return EncodedText(name, vocab, ids, code_points, counts, fingerprint, tuple(meta.get("notes", ())),
                       tuple(tuple(s) for s in meta.get("skipped", ())), entry, True, meta.get("source", {}))


def _write_entry(fingerprint: str, source: TextSource, scan: _Scan, plan: VocabPlan, notes: list[str],
                 progress: ProgressFn | None) -> Path:
    root = text_cache_dir()
    root.mkdir(parents=True, exist_ok=True)
    _clean_stale(root)
    final = root / fingerprint
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-", dir=root))
    try:
        n = 0
        skip = frozenset(label for label, _ in scan.skipped)
        with open(tmp / "ids.bin", "wb") as f:
            for kind, value in _chunks(source, progress, "encode", skip):
                if kind == "codes":
                    ids = plan.encode(value)
                    f.write(ids.tobytes())
                    n += len(ids)
                elif kind == "skip":
                    raise DataError(f"{source.name}: {value[0]} changed while it was being read; run again")
            f.flush()
            os.fsync(f.fileno())
        if n != scan.counts.n:
            raise DataError(f"{source.name} changed while it was being read; run again")
        code_points, counts = scan.counts.items()
        write_json(tmp / "meta.json", {
            "format": FORMAT, "name": source.name, "fingerprint": fingerprint, "n": n,
            "dtype": plan.vocab.dtype.name, "vocab": list(plan.vocab.chars), "code_points": code_points.tolist(),
            "counts": counts.tolist(), "notes": notes, "skipped": scan.skipped, "source": source.summary(),
            "created": time.strftime("%Y-%m-%d %H:%M:%S"),
        })
        if final.exists() and _lookup(fingerprint, source.name) is None:  # unreadable or outdated: replace it
            shutil.rmtree(final, ignore_errors=True)
        try:
            os.rename(tmp, final)
        except OSError:  # another process finished the same entry first: use theirs
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _clean_stale(root: Path) -> None:
    """Remove temporary entries left by processes that no longer run."""
    for tmp in root.glob(".tmp-*"):
        try:
            pid = int(tmp.name.split("-")[1])
            os.kill(pid, 0)
        except (ValueError, IndexError):
            continue
        except ProcessLookupError:
            shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            continue


def encode_source(source: TextSource, progress: ProgressFn | None = None,
                  cache_min_chars: int | None = None) -> EncodedText:
    """Encode a source, through the on-disk cache when it is long (see the module's docstring)."""
    limit = CACHE_MIN_CHARS if cache_min_chars is None else cache_min_chars
    fingerprint = source.fingerprint(progress)
    if fingerprint is not None and (hit := _lookup(fingerprint, source.name)):
        return _announce(hit, progress)
    scan = _scan(source, progress, limit, hash_content=fingerprint is None)
    if fingerprint is None:
        fingerprint = source.content_fingerprint(scan.content_sha256)
        if hit := _lookup(fingerprint, source.name):
            return _announce(hit, progress)
    if scan.counts.n == 0 and scan.skipped:
        raise DataError(f"{source.name}: none of its {len(scan.skipped)} files is text in {source.encoding} "
                        f"(e.g. {scan.skipped[0][0]}: {scan.skipped[0][1]})")
    plan = plan_vocab(scan.counts, source.name)
    notes = [*source.notes, *_skip_notes(source.name, scan.skipped), *([plan.note] if plan.note else [])]
    for message in notes:
        report(progress, "note", message=message)
    code_points, counts = scan.counts.items()
    common = dict(code_points=code_points, counts=counts, fingerprint=fingerprint, notes=tuple(notes),
                  skipped=tuple(scan.skipped), source=source.summary())
    if scan.kept is not None and scan.counts.n < limit:
        ids = np.concatenate([plan.encode(codes) for codes in scan.kept]) if scan.kept else np.zeros(0, np.uint8)
        return EncodedText(source.name, plan.vocab, ids.astype(plan.vocab.dtype, copy=False), **common)
    scan.kept = None
    try:
        entry = _write_entry(fingerprint, source, scan, plan, notes, progress)
    except OSError as e:
        raise DataError(f"could not write the encoded text to {text_cache_dir()}: {e.strerror or e}; free some "
                        "space there, or set RNNTUI_HOME to a directory with room") from None
    encoded = _lookup(fingerprint, source.name)
    if encoded is None:
        raise DataError(f"could not read back the encoded text in {entry}; remove it and run again")
    encoded.from_cache = False
    return encoded


def _announce(hit: EncodedText, progress: ProgressFn | None) -> EncodedText:
    for message in hit.notes:
        report(progress, "note", message=message)
    return hit


def load_encoded(spec: str, encoding: str = "utf-8", normalize_newlines: bool = True,
                 include: Sequence[str] = (), exclude: Sequence[str] = (),
                 options: Mapping[str, Any] | None = None, progress: ProgressFn | None = None,
                 cache_min_chars: int | None = None, stdin=None, *,
                 corpora: Mapping[str, Corpus] = NO_CORPORA) -> EncodedText:
    """A corpus name, a path (file or directory) or "-" (stdin) -> its EncodedText. ``corpora``: the corpora a
    name may refer to (see ``open_source``)."""
    source = open_source(spec, encoding, normalize_newlines, include, exclude, options, stdin, corpora=corpora)
    try:
        return encode_source(source, progress, cache_min_chars)
    finally:
        source.close()


def load_dataset(spec: str, val_fraction: float = 0.1, **kwargs: Any) -> Dataset:
    """A corpus name or path -> train/validation Dataset (keyword arguments as for ``load_encoded``, including
    ``corpora``)."""
    check_val_fraction(val_fraction)  # before any reading
    return load_encoded(spec, **kwargs).dataset(val_fraction)


def cache_entries() -> list[dict[str, Any]]:
    """What the text cache holds: one dict per entry (name, characters, bytes on disk, last used, path)."""
    found = []
    root = text_cache_dir()
    if not root.is_dir():
        return found
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        try:
            meta = json.loads((entry / "meta.json").read_text(encoding="utf-8"))
            size = sum(p.stat().st_size for p in entry.iterdir())
            found.append({"name": meta.get("name", "?"), "chars": meta.get("n"), "bytes": size,
                          "vocab_size": len(meta.get("vocab", ())), "last_used": entry.stat().st_mtime,
                          "path": str(entry)})
        except (OSError, ValueError):
            continue
    return found


def clear_cache() -> int:
    """Remove every encoded text and remembered file hash; returns the bytes freed. Downloads are kept."""
    freed = 0
    for sub in (text_cache_dir(), cache_dir() / "hashes", cache_dir() / "spool"):
        if not sub.is_dir():
            continue
        for path in sub.rglob("*"):
            with contextlib.suppress(OSError):
                if path.is_file():
                    freed += path.stat().st_size
        shutil.rmtree(sub, ignore_errors=True)
    return freed
