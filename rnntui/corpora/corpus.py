"""A corpus as rnntui uses it: every registered corpus is one (the plugin manager's ``as_corpus`` makes one of a
plugin's own object). Its own module, importing nothing of rnntui, so the readers of text can name it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Corpus:
    """A named source of text. ``read(**options)`` yields the text in chunks."""

    name: str
    description: str
    source: str  # where the text comes from and under which licence
    read: Callable[..., Iterable[str]]
    size: int | None = None  # characters, when known without reading
    offline: bool = True  # available without a download
    options: Mapping[str, Any] = field(default_factory=dict)  # option -> default; read(**options), --corpus-option
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
