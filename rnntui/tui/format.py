"""Small formatting helpers shared by the panes and screens."""

from __future__ import annotations

import math


def duration(seconds: float | None) -> str:
    if seconds is None or not math.isfinite(seconds):
        return "–"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def si(value: float | None, digits: int = 3) -> str:
    """1234 -> '1.23k', 889127 -> '889k'."""
    if value is None or not math.isfinite(value):
        return "–"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g}{unit}"
    return f"{value:.{digits}g}"


def loss(value: float | None, bits: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    return f"{value / math.log(2) if bits else value:.3f}"
