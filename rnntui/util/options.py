"""KEY=VALUE options from the command line (``--cell-option``, ``--corpus-option``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from rnntui.errors import UserError


def parse_key_values(items: Iterable[str], option: str) -> dict[str, Any]:
    """['depth=12', 'name=x'] -> {'depth': 12, 'name': 'x'}: a value is read as JSON where it is JSON (numbers,
    true/false, lists), else kept as a string."""
    parsed: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserError(f"{option} {item!r}: write it as KEY=VALUE")
        try:
            parsed[key] = json.loads(value)
        except ValueError:
            parsed[key] = value
    return parsed
