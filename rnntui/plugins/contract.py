"""What a registered cell or corpus must be, in the terms rnntui reads it: names, options, descriptions, and the
corpus contract (any object with a name and ``read()`` becomes an ``rnntui.corpora.Corpus``). The cell check,
which runs torch, is in ``cell_check``. The guide for plugin authors: README.md, "Write a cell plugin".

Nothing here imports torch: the app and the command-line parser use these without it.
"""

from __future__ import annotations

import inspect
import os
import re
import sys
import traceback
from collections.abc import Mapping
from typing import Any

from rnntui.corpora.corpus import Corpus

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
# The Corpus fields a plugin's own corpus object may have besides name, description, source and read.
CORPUS_OPTIONAL_FIELDS = ("size", "offline", "options", "version", "licence", "url", "metrics")
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class CellValidationError(Exception):
    """A registered cell failed its check; ``traceback`` holds the cell's own traceback when it raised."""

    def __init__(self, message: str, tb: str = ""):
        super().__init__(message)
        self.traceback = tb


class CorpusValidationError(ValueError):
    """A registered corpus does not follow the contract."""


def plugin_traceback() -> str:
    """The traceback of the exception being handled, without the plugin manager's own frames in front of the
    plugin's (and importlib's), so it starts where the plugin's code does."""
    etype, value, tb = sys.exc_info()
    if etype is None:
        return ""
    start = tb
    while start is not None and (os.path.dirname(start.tb_frame.f_code.co_filename) == _PACKAGE_DIR
                                 or start.tb_frame.f_code.co_filename.startswith("<frozen importlib")):
        start = start.tb_next
    if start is None and issubclass(etype, SyntaxError):  # the file and line are in the error itself
        return "".join(traceback.format_exception(etype, value, None))
    return "".join(traceback.format_exception(etype, value, start if start is not None else tb))


# -- cells ------------------------------------------------------------------------------------------------------


def hyperparameters_of(cls: type) -> dict[str, Any]:
    """A cell's options and their defaults: its ``hyperparameters``, else the keyword arguments of ``__init__``
    after input_size and hidden_size."""
    declared = getattr(cls, "hyperparameters", None)
    if isinstance(declared, dict) and declared:
        return dict(declared)
    try:
        params = list(inspect.signature(cls.__init__).parameters.values())[3:]
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in params
            if p.default is not inspect.Parameter.empty and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def description_of(cls: type) -> str:
    """A cell's docstring, with the lines of each prose paragraph joined (indented blocks, such as equations,
    keep their lines)."""
    if not cls.__doc__:
        return ""
    paragraphs = []
    for block in re.split(r"\n\s*\n", inspect.cleandoc(cls.__doc__)):
        lines = block.splitlines()
        paragraphs.append(block if any(line.startswith((" ", "\t")) for line in lines) else " ".join(lines))
    return "\n\n".join(paragraphs)


# -- corpora ----------------------------------------------------------------------------------------------------


def as_corpus(obj: Any) -> Corpus:
    """A registered corpus as rnntui uses it. An ``rnntui.corpora.Corpus`` is used as it is; any other object with
    ``name``, ``description``, ``source`` and ``read(**options)`` becomes the Corpus with those fields (and with
    ``size``, ``offline``, ``options``, ``version``, ``licence`` and ``url`` where it has them). Raises
    CorpusValidationError saying what is wrong."""
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise CorpusValidationError(f"a corpus needs a `name`, a word such as 'my-corpus', got {name!r}")
    if not callable(getattr(obj, "read", None)):
        raise CorpusValidationError(f"corpus {name!r} needs a read() that yields its text in chunks")
    if isinstance(obj, Corpus):
        return obj
    fields = {key: getattr(obj, key) for key in CORPUS_OPTIONAL_FIELDS if getattr(obj, key, None) is not None}
    if not isinstance(fields.get("options", {}), Mapping):
        raise CorpusValidationError(f"corpus {name!r}: `options` must map each option's name to its default value, "
                                    f"got {type(fields['options']).__name__}")
    if "size" in fields and (not isinstance(fields["size"], int) or isinstance(fields["size"], bool)):
        raise CorpusValidationError(f"corpus {name!r}: `size` must be a number of characters, got {fields['size']!r}")
    return Corpus(name=name, description=str(getattr(obj, "description", "") or ""),
                  source=str(getattr(obj, "source", "") or ""), read=obj.read, **fields)
