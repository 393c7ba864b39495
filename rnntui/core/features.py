"""Text features: one number per character, for finding the units that track them (rnntui.core.inspection).

A feature describes the text as the model has read it up to and including character t: ``depth`` at an opening
bracket already counts it, ``quote`` is 0 at the closing quote, ``column`` is 0 just after a newline. Two look
ahead on purpose, because the paper's line-length cell does: ``newline-soon`` (characters left in the line) and
``url`` (a URL's first letters are marked although ``://`` comes later).

Built-in features come through the same hook as a plugin's, ``register_features(register)``: ``register`` takes a
``Feature``, a name, a one-line description, whether it is binary (0/1: ranked by ROC AUC as well), and a
function from the text to one value per character.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from rnntui import hookimpl
from rnntui.core.data import to_codes

TAB = 8  # columns a tab advances to (the next multiple of), as Python's tokenizer and terminals count


@dataclass(frozen=True)
class Feature:
    name: str
    description: str
    binary: bool
    compute: Callable[[str], np.ndarray]

    def __call__(self, text: str) -> np.ndarray:
        """The feature's values over ``text``, checked: float64, one per character, finite, 0/1 if binary."""
        values = np.asarray(self.compute(text), dtype=np.float64)
        if values.shape != (len(text),):
            raise ValueError(f"feature {self.name!r} returned {values.shape[0] if values.ndim else 'a scalar'} "
                             f"values for a text of {len(text)} characters; it must return one per character")
        if not np.isfinite(values).all():
            raise ValueError(f"feature {self.name!r} returned NaN or infinite values")
        if self.binary and not np.isin(values, (0.0, 1.0)).all():
            raise ValueError(f"feature {self.name!r} is binary but returned values other than 0 and 1")
        return values


# -- the structure of code: strings, comments, brackets ---------------------------------------------------------------

STRING_PREFIXES = {"", "r", "b", "f", "u", "rb", "br", "fr", "rf"}  # 'x', r'x', b'x', f'x', ... open a string
OPENING, CLOSING = "([{", ")]}"


def _opens_single_quote(text: str, t: int) -> bool:
    """A ' opens a string unless it is an apostrophe: a letter or digit before it (don't, dogs') that is not a
    Python string prefix (r'...', b'...')."""
    j = t
    while j > 0 and (text[j - 1].isalnum() or text[j - 1] == "_"):
        j -= 1
    return text[j:t].lower() in STRING_PREFIXES


@lru_cache(maxsize=4)  # quote, comment, depth and if all read the same scan of the same text
def scan_code(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One pass over the text -> (in a string, in a comment, bracket depth, in the parentheses after an if), each
    after reading character t.

    Strings: "...", '...' and their triple-quoted forms; a backslash escapes the next character. A "..." string
    may span lines (prose dialogue is hard-wrapped); a '...' string ends at the newline (an unmatched ' in prose);
    a ' after a letter is an apostrophe. Comments run from # to the end of the line. Brackets and ifs inside
    strings and comments do not count; the depth never goes below 0."""
    n = len(text)
    in_string = np.zeros(n, dtype=bool)
    in_comment = np.zeros(n, dtype=bool)
    depth = np.zeros(n, dtype=np.int64)
    in_if = np.zeros(n, dtype=bool)
    quote = ""  # the open string's delimiter (a quote or three of them); "" in code
    comment = escaped = closing = False
    skip = 0  # characters left of a triple quote being read
    level = 0
    if_levels: list[int] = []  # the depth each open if-parenthesis reached
    for t, c in enumerate(text):
        if skip:
            skip -= 1
            if not skip and closing:  # the last quote of a closing triple: outside from here
                quote, closing = "", False
        elif comment:
            comment = c != "\n"
        elif quote:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif len(quote) == 3:
                if text.startswith(quote, t):
                    skip, closing = 2, True
            elif c == quote or (c == "\n" and quote == "'"):
                quote = ""
        elif c == "#":
            comment = True
        elif c in "\"'":
            if text.startswith(c * 3, t):
                quote, skip = c * 3, 2
            elif c == '"' or _opens_single_quote(text, t):
                quote = c
        elif c in OPENING:
            level += 1
            if c == "(" and _after_if(text, t):
                if_levels.append(level)
        elif c in CLOSING and level > 0:
            level -= 1
            while if_levels and if_levels[-1] > level:
                if_levels.pop()
        in_string[t] = bool(quote)
        in_comment[t] = comment
        depth[t] = level
        in_if[t] = bool(if_levels)
    return in_string, in_comment, depth, in_if


def _after_if(text: str, t: int) -> bool:
    """Whether the parenthesis at t follows the keyword ``if`` or ``elif`` (spaces and tabs between allowed)."""
    j = t
    while j > 0 and text[j - 1] in " \t":
        j -= 1
    k = j
    while k > 0 and (text[k - 1].isalnum() or text[k - 1] == "_"):
        k -= 1
    return text[k:j] in ("if", "elif")


# -- the features ------------------------------------------------------------------------------------------------------


def quote(text: str) -> np.ndarray:
    return scan_code(text)[0]


def comment(text: str) -> np.ndarray:
    return scan_code(text)[1]


def depth(text: str) -> np.ndarray:
    return scan_code(text)[2]


def inside_if(text: str) -> np.ndarray:
    return scan_code(text)[3]


def column(text: str) -> np.ndarray:
    """Characters since the line began: 0 at (just after) a newline, 1 at a line's first character."""
    t = np.arange(len(text))
    newlines = to_codes(text) == ord("\n")
    last_newline = np.maximum.accumulate(np.where(newlines, t, -1)) if len(text) else t
    return t - last_newline


def indent(text: str) -> np.ndarray:
    """The indentation of the current line in columns (a tab advances to the next multiple of 8), as far as it
    has been read: it grows over the leading whitespace, then holds to the end of the line; 0 at a newline."""
    values = np.zeros(len(text), dtype=np.int64)
    width, leading = 0, True
    for t, c in enumerate(text):
        if c == "\n":
            width, leading = 0, True
        elif leading and c == " ":
            width += 1
        elif leading and c == "\t":
            width = (width // TAB + 1) * TAB
        else:
            leading = False
        values[t] = width
    return values


def word(text: str) -> np.ndarray:
    """Position inside the current word (letters, digits, _): 1 at its first character, 0 outside words."""
    values = np.zeros(len(text), dtype=np.int64)
    run = 0
    for t, c in enumerate(text):
        run = run + 1 if c.isalnum() or c == "_" else 0
        values[t] = run
    return values


def newline_soon(text: str) -> np.ndarray:
    """Characters left before the line ends: 0 just before a newline (or the end of the text)."""
    n = len(text)
    t = np.arange(n)
    newlines = to_codes(text) == ord("\n")
    next_newline = np.minimum.accumulate(np.where(newlines, t, n)[::-1])[::-1] if n else t
    # at t the line ends at the first newline after t; at a newline itself that is the next one
    after = np.append(next_newline[1:], n)
    return after - t - 1


def digit(text: str) -> np.ndarray:
    return np.array([c.isdigit() for c in text], dtype=bool)


def upper(text: str) -> np.ndarray:
    return np.array([c.isupper() for c in text], dtype=bool)


URL = re.compile(r"(?:(?:https?|ftp)://|(?<![\w.])www\.)[^\s<>\"'`]+")
PAIRS = {")": "(", "]": "[", "}": "{"}


def url(text: str) -> np.ndarray:
    """Inside a URL. Punctuation that ends a sentence after it is not part of it, nor is a closing bracket it
    did not open (a URL in parentheses)."""
    values = np.zeros(len(text), dtype=bool)
    for match in URL.finditer(text):
        start, end = match.span()
        while end > start:
            last = text[end - 1]
            unopened = last in PAIRS and text.count(PAIRS[last], start, end) < text.count(last, start, end)
            if last not in ".,;:!?" and not unopened:
                break
            end -= 1
        values[start:end] = True
    return values


BUILTIN_FEATURES = (
    Feature("quote", "inside a \"...\" or '...' string (escapes respected; not in comments)", True, quote),
    Feature("depth", "bracket nesting depth over ()[]{} (outside strings and comments)", False, depth),
    Feature("indent", "indentation of the current line, in columns", False, indent),
    Feature("column", "position in the line: characters since the last newline", False, column),
    Feature("comment", "inside a # comment (not inside a string)", True, comment),
    Feature("word", "position inside the current word (0 between words)", False, word),
    Feature("newline-soon", "characters left before the line ends", False, newline_soon),
    Feature("digit", "the character is a digit", True, digit),
    Feature("upper", "the character is an upper-case letter", True, upper),
    Feature("url", "inside a URL (http://, https://, ftp://, www.)", True, url),
    Feature("if", "inside the parentheses after an `if` (or `elif`)", True, inside_if),
)


@hookimpl
def register_features(register):
    for feature in BUILTIN_FEATURES:
        register(feature)


def builtin_features() -> dict[str, Feature]:
    """The built-in features by name (the registry, in phase 2, adds the plugins' features to these)."""
    return {feature.name: feature for feature in BUILTIN_FEATURES}
