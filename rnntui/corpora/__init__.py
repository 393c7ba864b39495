"""The corpus contract and the built-in corpora.

A plugin registers corpora through the ``register_corpora`` hook; the built-ins below take the same road. A corpus
needs a name, a description, a source/licence line and ``read()``, a generator of text chunks (a corpus never
has to fit in one string). A corpus may declare ``options`` (name -> default): ``read(**options)`` then receives
them, from ``--corpus-option KEY=VALUE`` on the command line. A ``version`` that changes whenever the text does
lets rnntui find a cached encoding without reading the corpus (otherwise its content is hashed on each load).

Built in:
- ``python-docs``: the Python language reference shipped with CPython (pydoc_data.topics); the default.
- ``python-stdlib``: the standard library's source code (option ``max_chars`` caps its size).
- the probes ``hello``, ``brackets``, ``copy``, ``arithmetic`` (rnntui.corpora.synthetic);
- the catalogue's downloadable corpora (corpora/catalogue.toml), usable once fetched or added by hand;
- the files and directories a user registered with ``rnntui corpora add NAME PATH``.
"""

from __future__ import annotations

import sys
import sysconfig
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rnntui import hookimpl


@dataclass(frozen=True)
class Corpus:
    """A named source of text. ``read(**options)`` yields the text in chunks."""

    name: str
    description: str
    source: str  # where the text comes from and under which licence
    read: Callable[..., Iterable[str]]
    size: int | None = None  # characters, when known without reading
    offline: bool = True  # available without a download
    options: Mapping[str, Any] = field(default_factory=dict)  # option -> default value, passed to read()
    version: str | None = None  # changes whenever the text changes (None: rnntui hashes the content)
    # Optional, for built-ins: how to read the text straight from files (a rnntui.corpora.sources.TextSource
    # factory taking the options), whether it is available now, and how to learn its size cheaply.
    text_source: Callable[..., Any] | None = None
    available: Callable[[], bool] | None = None
    measure: Callable[[], int | None] | None = None
    url: str | None = None  # for a downloadable corpus
    licence: str = ""
    # Optional: the corpus's own measures of a model, reported at each evaluation (the eval event's "metrics").
    # metrics(text, chars, logprobs) -> dict of JSON values: text is (the start of) the validation text, chars the
    # vocabulary (column j of logprobs is chars[j]), logprobs[t] the model's log-probabilities for text[t + 1]
    # given text[:t + 1], shape (len(text) - 1, len(chars)). See rnntui.corpora.probe_metrics for the probes'.
    metrics: Callable[..., dict[str, Any]] | None = None

    def is_available(self) -> bool:
        """Whether the text can be read now, without a network."""
        return self.available() if self.available is not None else self.offline

    def size_hint(self) -> int | None:
        """Characters (or, for files, bytes) when known cheaply; None when only reading would tell."""
        if self.size is not None:
            return self.size
        if self.measure is not None:
            try:
                return self.measure()
            except Exception:
                return None
        return None


# -- python-docs -------------------------------------------------------------------------------------------------


def _python_docs() -> Iterable[str]:
    from pydoc_data.topics import topics

    for key in sorted(topics):
        yield topics[key].strip() + "\n\n"


def _python_docs_size() -> int:
    from pydoc_data.topics import topics

    return sum(len(topics[key].strip()) + 2 for key in topics)


PYTHON_DOCS = Corpus(
    name="python-docs",
    description="The Python language reference that ships with CPython (pydoc_data.topics): English prose "
    "with code examples. Always offline; the default corpus.",
    source="CPython documentation, Python Software Foundation License",
    read=_python_docs,
    measure=_python_docs_size,
    licence="Python Software Foundation License",
)

DEFAULT_CORPUS = PYTHON_DOCS.name


# -- python-stdlib -----------------------------------------------------------------------------------------------

STDLIB_EXCLUDE = ("test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__")


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _stdlib_source(max_chars: int = 0):
    from rnntui.corpora.sources import DirectorySource

    return DirectorySource(stdlib_dir(), include=("*.py",), exclude=STDLIB_EXCLUDE, name="python-stdlib",
                           header="# file: {path}\n", max_chars=max_chars or None)


def _stdlib_read(max_chars: int = 0) -> Iterable[str]:
    return _stdlib_source(max_chars).text()


def _stdlib_size() -> int:
    return _stdlib_source().total


PYTHON_STDLIB = Corpus(
    name="python-stdlib",
    description="The Python standard library's own source code (*.py, tests left out), each file introduced by "
    "a '# file: PATH' line: indentation, brackets, strings and comments to learn, like the char-rnn Linux-kernel "
    "demonstration. Option max_chars caps its size (0 = all, about 12 MB on CPython 3.11). Always offline.",
    source=f"CPython {sys.version.split()[0]} standard library, Python Software Foundation License",
    read=_stdlib_read,
    options={"max_chars": 0},
    text_source=_stdlib_source,
    available=lambda: stdlib_dir().is_dir(),
    measure=_stdlib_size,
    licence="Python Software Foundation License",
)


# -- synthetic probes --------------------------------------------------------------------------------------------


def _probe(name: str) -> Corpus:
    import inspect

    from rnntui.corpora import probe_metrics, synthetic

    generate, description = synthetic.PROBES[name]
    defaults = {k: p.default for k, p in inspect.signature(generate).parameters.items()}
    options = ", ".join(f"{k}={v}" for k, v in defaults.items())
    return Corpus(
        name=name,
        description=f"Synthetic probe: {description} Options: {options}.",
        source="generated by rnntui (deterministic for a seed); no licence needed",
        read=generate,
        size=defaults["chars"],
        options=defaults,
        version=f"synthetic-{synthetic.VERSION}",
        licence="none (generated)",
        metrics=probe_metrics.METRICS.get(name),
    )


# -- catalogue and hand-added corpora ----------------------------------------------------------------------------


def _catalogue_corpus(entry) -> Corpus:
    from rnntui.corpora.catalogue import add_command

    def text_source():
        from rnntui.core.data import DataError
        from rnntui.corpora.sources import FileSource

        if not entry.downloaded:
            raise DataError(f"{entry.name} is not downloaded yet: run `rnntui corpora fetch {entry.name}` "
                            f"(downloads {entry.url}), or, offline, get the file by other means and register "
                            f"it with: {add_command(entry.name)}")
        return FileSource(entry.path, entry.encoding, name=entry.name)

    return Corpus(
        name=entry.name,
        description=entry.description,
        source=f"{entry.url} ({entry.licence})",
        read=lambda: text_source().text(),
        size=entry.chars,
        offline=False,
        text_source=text_source,
        available=lambda: entry.downloaded,
        url=entry.url,
        licence=entry.licence,
    )


def _user_corpus(name: str, spec: dict) -> Corpus:
    path = Path(spec["path"])
    encoding = spec.get("encoding", "utf-8")

    def text_source():
        from rnntui.core.data import DataError
        from rnntui.corpora.sources import DirectorySource, FileSource

        if not path.exists():
            raise DataError(f"corpus {name}: {path} no longer exists; add it again with "
                            f"`rnntui corpora add {name} PATH` or forget it with `rnntui corpora remove {name}`")
        if path.is_dir():
            return DirectorySource(path, encoding=encoding, name=name)
        return FileSource(path, encoding, name=name)

    def measure():
        from rnntui.corpora.sources import DirectorySource

        return DirectorySource(path).total if path.is_dir() else path.stat().st_size

    return Corpus(
        name=name,
        description=f"Your text at {path} (added with `rnntui corpora add`).",
        source=str(path),
        read=lambda: text_source().text(),
        text_source=text_source,
        available=path.exists,
        measure=measure,
    )


@hookimpl
def register_corpora(register):
    register(PYTHON_DOCS)
    register(PYTHON_STDLIB)
    from rnntui.corpora import synthetic

    for name in synthetic.PROBES:
        register(_probe(name))
    from rnntui.corpora.catalogue import catalogue, user_corpora

    for entry in catalogue().values():
        register(_catalogue_corpus(entry))
    for name, spec in sorted(user_corpora().items()):
        register(_user_corpus(name, spec))
