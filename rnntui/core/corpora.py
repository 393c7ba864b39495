"""The corpus contract and the built-in corpora."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rnntui import hookimpl


@dataclass(frozen=True)
class Corpus:
    """A named source of text. ``read()`` yields the text in chunks, so a corpus never has to fit in one string."""

    name: str
    description: str
    source: str  # where the text comes from and under which licence
    read: Callable[[], Iterable[str]]
    size: int | None = None  # characters, when known without reading
    offline: bool = True  # available without a download


def _python_docs() -> Iterable[str]:
    from pydoc_data.topics import topics

    for key in sorted(topics):
        yield topics[key].strip() + "\n\n"


PYTHON_DOCS = Corpus(
    name="python-docs",
    description="The Python language reference that ships with CPython (pydoc_data.topics): English prose "
    "with code examples. Always offline; the default corpus.",
    source="CPython documentation, Python Software Foundation License",
    read=_python_docs,
)

DEFAULT_CORPUS = PYTHON_DOCS.name


@hookimpl
def register_corpora(register):
    register(PYTHON_DOCS)
