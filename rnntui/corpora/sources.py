"""Where text comes from: a file, a directory, stdin or a registered corpus, always read in chunks.

Every source yields *documents* (a file is one, a directory one per file, a corpus one), and each document yields
decoded text chunks. Decoding is streaming: the encoding's incremental decoder, a byte-order mark stripped at the
start, CRLF and lone CR turned into LF (unless ``normalize_newlines`` is off) even when a pair straddles two chunks.
An invalid byte is reported with its offset in the file. In a directory, files that are binary or not in the
encoding are skipped and reported; given on its own, such a file is an error.

A source also has a *fingerprint*: a sha256 that identifies its exact text and the way it is read. The on-disk
encoding cache (``textcache``) is keyed by it, and resuming a run checks it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from types import MappingProxyType
from typing import Any

from rnntui.corpora.corpus import Corpus
from rnntui.corpora.decoding import (
    CHUNK_BYTES, Newlines, ProgressFn, SkipDocument, canonical_encoding, decode_chunks, read_bytes, report,
)
from rnntui.corpora.hashes import file_sha256
from rnntui.errors import DataError, UserError
from rnntui.util.paths import cache_dir

HIDDEN_NOTE = "hidden files and directories (names starting with '.') are skipped"
NO_CORPORA: Mapping[str, Corpus] = MappingProxyType({})  # resolve paths and "-" only


@dataclass(frozen=True)
class Document:
    label: str  # a file's path relative to its directory, or the source's name
    read: Callable[[], Iterator[tuple[str, int]]]  # decoded text chunks with the units (bytes/chars) each consumed


def _digest(parts: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=True).encode()).hexdigest()


class TextSource:
    """A text to read: ``documents()`` yields its parts, ``fingerprint()`` identifies it (None: only its content
    can, and the first pass computes it through ``content_fingerprint``)."""

    name: str = ""
    kind: str = ""
    total: int | None = None  # for progress: bytes (unit "B") or characters (unit "chars")
    unit: str = "B"
    max_chars: int | None = None  # read at most this many characters (a corpus's size cap)
    encoding: str = "utf-8"
    normalize_newlines: bool = True
    notes: tuple[str, ...] = ()

    def documents(self) -> Iterator[Document]:
        raise NotImplementedError

    def fingerprint(self, progress: ProgressFn | None = None) -> str | None:
        return None

    def content_fingerprint(self, content_sha256: str) -> str:
        return self._fingerprint({"kind": "text", "sha256": content_sha256})

    def _fingerprint(self, parts: dict[str, Any]) -> str:
        return _digest({**parts, "normalize_newlines": self.normalize_newlines, "max_chars": self.max_chars})

    def text(self) -> Iterator[str]:
        """The whole text as chunks (files a directory skips are left out)."""
        n = 0
        for doc in self.documents():
            try:
                for chunk, _ in doc.read():
                    if self.max_chars is not None:
                        chunk = chunk[: self.max_chars - n]
                    n += len(chunk)
                    if chunk:
                        yield chunk
                    if self.max_chars is not None and n >= self.max_chars:
                        return
            except SkipDocument:
                continue

    def summary(self) -> dict[str, Any]:
        """How the text is read (kind, encoding, newline rule, size cap, and each kind's own details), for the
        cache's metadata and a run's record."""
        return {"kind": self.kind, "encoding": self.encoding, "normalize_newlines": self.normalize_newlines,
                "max_chars": self.max_chars}

    def close(self) -> None:
        pass


class FileSource(TextSource):
    kind = "file"

    def __init__(self, path: str | Path, encoding: str = "utf-8", normalize_newlines: bool = True,
                 name: str | None = None):
        self.path = Path(path).expanduser()
        if not self.path.exists():
            raise DataError(f"{path}: no such file; give a path to a text file or the name of a corpus "
                            "(rnntui corpora)")
        if self.path.is_dir():
            raise DataError(f"{path} is a directory; give a text file")
        canonical_encoding(encoding)  # an unknown codec is a DataError now, not halfway through
        self.encoding = encoding
        self.normalize_newlines = normalize_newlines
        self.name = name or str(self.path.resolve())
        self.what = name or str(path)
        self.total = self.path.stat().st_size

    def documents(self) -> Iterator[Document]:
        yield Document(self.what, lambda: decode_chunks(read_bytes(self.path), self.encoding,
                                                        self.normalize_newlines, self.what))

    def fingerprint(self, progress: ProgressFn | None = None) -> str:
        return self._fingerprint({"kind": "file", "sha256": file_sha256(self.path, progress),
                                  "encoding": canonical_encoding(self.encoding)})

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "path": str(self.path.resolve()), "bytes": self.total}


def _matches(rel: PurePosixPath, patterns: Sequence[str]) -> bool:
    posix = rel.as_posix()
    return any(fnmatchcase(posix, p) or fnmatchcase(rel.name, p) for p in patterns)


def _excluded(rel: PurePosixPath, patterns: Sequence[str]) -> bool:
    return any(fnmatchcase(rel.as_posix(), p) or any(fnmatchcase(part, p) for part in rel.parts)
               for p in patterns)


class DirectorySource(TextSource):
    """Every file under a directory, recursively, in sorted path order. ``include`` globs keep only matching
    files (matched against the relative path or the file name); ``exclude`` globs drop files and whole
    directories (matched against the relative path or any component). Hidden entries are skipped. Each file's
    text ends with a newline; ``header`` (a format string with {path}) may introduce each file."""

    kind = "directory"

    def __init__(self, root: str | Path, include: Sequence[str] = (), exclude: Sequence[str] = (),
                 encoding: str = "utf-8", normalize_newlines: bool = True, name: str | None = None,
                 header: str | None = None, max_chars: int | None = None):
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DataError(f"{root}: no such directory")
        self.include, self.exclude = tuple(include), tuple(exclude)
        canonical_encoding(encoding)  # an unknown codec is a DataError now, not halfway through
        self.encoding = encoding
        self.normalize_newlines = normalize_newlines
        self.name = name or str(self.root.resolve())
        self.header = header
        self.max_chars = max_chars
        self.files = self._walk()
        if not self.files:
            rules = "".join([f"; include {', '.join(self.include)}" if self.include else "",
                             f"; exclude {', '.join(self.exclude)}" if self.exclude else ""])
            raise DataError(f"{root}: no files to read{rules} ({HIDDEN_NOTE})")
        self.total = sum(size for _, _, size in self.files)

    def _walk(self) -> list[tuple[Path, PurePosixPath, int]]:
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel_dir = PurePosixPath(Path(dirpath).relative_to(self.root).as_posix())
            dirnames[:] = [d for d in dirnames if not d.startswith(".") and not _excluded(rel_dir / d, self.exclude)]
            for name in filenames:
                rel = rel_dir / name
                if name.startswith(".") or _excluded(rel, self.exclude):
                    continue
                if self.include and not _matches(rel, self.include):
                    continue
                path = Path(dirpath) / name
                try:
                    if path.is_file():
                        found.append((path, rel, path.stat().st_size))
                except OSError:
                    continue
        return sorted(found, key=lambda item: item[1].as_posix())

    def documents(self) -> Iterator[Document]:
        for path, rel, _ in self.files:
            yield Document(rel.as_posix(), lambda path=path, rel=rel: self._read(path, rel))

    def _read(self, path: Path, rel: PurePosixPath) -> Iterator[tuple[str, int]]:
        if self.header:
            yield self.header.format(path=rel.as_posix()), 0
        last = ""
        try:
            blocks = read_bytes(path)
        except OSError as e:
            raise SkipDocument(f"unreadable: {e.strerror}") from None
        for chunk, used in decode_chunks(blocks, self.encoding, self.normalize_newlines, str(rel), skip=True):
            if chunk:
                last = chunk[-1]
            yield chunk, used
        if last and last != "\n":
            yield "\n", 0

    def fingerprint(self, progress: ProgressFn | None = None) -> str:
        done, hashes = 0, []
        for path, rel, size in self.files:
            hashes.append([rel.as_posix(), file_sha256(path)])
            done += size
            report(progress, "hash", done, self.total)
        return self._fingerprint({"kind": "directory", "files": hashes, "header": self.header,
                                  "encoding": canonical_encoding(self.encoding)})

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "path": str(self.root.resolve()), "files": len(self.files),
                "bytes": self.total, "include": list(self.include), "exclude": list(self.exclude)}


class IterSource(TextSource):
    """A registered corpus read through its ``read(**options)`` generator of text chunks."""

    kind = "corpus"
    unit = "chars"

    def __init__(self, corpus: Corpus, options: Mapping[str, Any] | None = None, normalize_newlines: bool = True):
        self.corpus = corpus
        self.options = dict(options or {})
        self.name = corpus.name
        self.normalize_newlines = normalize_newlines
        self.total = corpus.size_hint()

    def documents(self) -> Iterator[Document]:
        yield Document(self.name, self._read)

    def _read(self) -> Iterator[tuple[str, int]]:
        newlines = Newlines(self.normalize_newlines)
        try:
            for chunk in self.corpus.read(**self.options):
                if not isinstance(chunk, str):
                    raise DataError(f"corpus {self.name} yielded {type(chunk).__name__} instead of text "
                                    "(a bug in the plugin that registers it)")
                yield newlines.feed(chunk), len(chunk)
        except UserError:
            raise
        except Exception as e:
            raise DataError(f"corpus {self.name} failed while being read: {e.__class__.__name__}: {e}") from e
        if tail := newlines.feed("", final=True):
            yield tail, 0

    def fingerprint(self, progress: ProgressFn | None = None) -> str | None:
        if self.corpus.version is None:
            return None
        return self._fingerprint({"kind": "corpus", "name": self.name, "version": self.corpus.version,
                                  "options": self.options})

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "encoding": None, "options": self.options}


class StdinSource(FileSource):
    """Standard input, spooled to a temporary file in the cache directory (so it can be read twice)."""

    def __init__(self, encoding: str = "utf-8", normalize_newlines: bool = True, stream=None):
        spool = cache_dir() / "spool"
        spool.mkdir(parents=True, exist_ok=True)
        if stream is None:
            if sys.stdin is None or not hasattr(sys.stdin, "buffer"):
                raise DataError("no standard input to read; pipe a text into `rnntui train -`")
            stream = sys.stdin.buffer
        fd, tmp = tempfile.mkstemp(prefix="stdin-", suffix=".txt", dir=spool)
        try:
            with os.fdopen(fd, "wb") as f:
                while block := stream.read(CHUNK_BYTES):
                    f.write(block)
        except OSError as e:
            os.unlink(tmp)
            raise DataError(f"could not keep standard input in {spool}: {e.strerror or e}") from None
        except BaseException:
            os.unlink(tmp)
            raise
        self._spooled = Path(tmp)
        super().__init__(tmp, encoding, normalize_newlines, name="stdin")
        self.kind = "stdin"

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "path": "standard input"}

    def close(self) -> None:
        self._spooled.unlink(missing_ok=True)


def _coerce(name: str, key: str, default: Any, value: Any) -> Any:
    """A corpus option's value, converted to the type of its default."""
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
            return bool(value)
        if isinstance(default, int):
            number = float(value) if isinstance(value, str) else value
            if number != int(number):
                raise ValueError(value)
            return int(number)
        if isinstance(default, float):
            return float(value)
        return value if default is None else type(default)(value)
    except (TypeError, ValueError):
        kind = type(default).__name__
        raise DataError(f"corpus {name}: option {key}={value!r} is not a valid {kind}") from None


def corpus_options(corpus: Corpus, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check ``given`` against the options a corpus declares, and fill in the defaults."""
    declared = dict(corpus.options)
    given = dict(given or {})
    unknown = sorted(set(given) - set(declared))
    if unknown:
        which = (f"its options are: {', '.join(f'{k} (default {v!r})' for k, v in declared.items())}" if declared
                 else "it takes no options")
        raise DataError(f"corpus {corpus.name} has no option {unknown[0]!r}; {which}")
    return {key: _coerce(corpus.name, key, default, given[key]) if key in given else default
            for key, default in declared.items()}


def corpus_source(corpus: Corpus, options: Mapping[str, Any] | None = None, normalize_newlines: bool = True,
                  include: Sequence[str] = (), exclude: Sequence[str] = ()) -> TextSource:
    """The source that reads a registered corpus: its own (files, for built-ins) or its ``read()`` generator."""
    values = corpus_options(corpus, options)
    if corpus.text_source is not None:
        source = corpus.text_source(**values)
        source.normalize_newlines = normalize_newlines
        if include or exclude:
            if not isinstance(source, DirectorySource):
                raise DataError(f"--include/--exclude apply to directories; corpus {corpus.name} is not one")
            source = DirectorySource(source.root, tuple(source.include) + tuple(include),
                                     tuple(source.exclude) + tuple(exclude), source.encoding, normalize_newlines,
                                     source.name, source.header, source.max_chars)
        source.name = corpus.name
        return source
    if include or exclude:
        raise DataError(f"--include/--exclude apply to directories; corpus {corpus.name} is not one")
    return IterSource(corpus, values, normalize_newlines)


def open_source(spec: str, encoding: str = "utf-8", normalize_newlines: bool = True,
                include: Sequence[str] = (), exclude: Sequence[str] = (),
                options: Mapping[str, Any] | None = None, stdin=None, *,
                corpora: Mapping[str, Corpus] = NO_CORPORA) -> TextSource:
    """A corpus name, a path to a file or directory, or "-" (standard input) -> its TextSource.

    ``corpora`` are the corpora a name may refer to (the plugin registry's, as the caller has it); a name among
    them wins unless a file or directory of that name exists."""
    if options and spec in ("-",):
        raise DataError("--corpus-option applies to a registered corpus, not to standard input")
    if spec == "-":
        if include or exclude:
            raise DataError("--include/--exclude apply to directories, not to standard input")
        return StdinSource(encoding, normalize_newlines, stdin)
    path = Path(spec).expanduser()
    if spec in corpora and not path.exists():
        return corpus_source(corpora[spec], options, normalize_newlines, include, exclude)
    if path.exists():
        if options:
            raise DataError(f"--corpus-option applies to a registered corpus; {spec} is a path")
        if path.is_dir():
            return DirectorySource(path, include, exclude, encoding, normalize_newlines)
        if include or exclude:
            raise DataError(f"--include/--exclude apply to directories; {spec} is a file")
        return FileSource(path, encoding, normalize_newlines)
    if os.sep in spec or "." in spec or (os.altsep and os.altsep in spec):
        raise DataError(f"{spec}: no such file; give a path to a text file or the name of a corpus "
                        "(rnntui corpora)")
    what = f"choose one of: {', '.join(sorted(corpora))}" if corpora else "give a path to a text file or a directory"
    raise DataError(f"no corpus named {spec!r} and no such file; {what}")


def read_text_file(path: str | Path, encoding: str = "utf-8", normalize_newlines: bool = True) -> str:
    """A whole (small) text file as one string: BOM stripped, CRLF / CR turned into LF unless told otherwise.
    Raises DataError naming the problem: missing, a directory, binary, or the byte offset of an invalid byte."""
    return "".join(FileSource(path, encoding, normalize_newlines).text())
