"""Units and how numbers are shown: nats and bits, durations, SI prefixes, byte sizes."""

from __future__ import annotations

import math

LN2 = math.log(2.0)


def bits(nats: float) -> float:
    """Nats per character to bits per character."""
    return nats / LN2


def duration(seconds: float | None) -> str:
    """4.2 -> '0:04', 3725 -> '1:02:05'; '–' when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "–"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def si(value: float | None, digits: int = 3, unit: str = "") -> str:
    """1234 -> '1.23k', 889127 -> '889k'; with ``unit``: si(2.5e9, unit='B') -> '2.5GB'."""
    if value is None or not math.isfinite(value):
        return "–"
    for prefix, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.{digits}g}{prefix}{unit}"
    return f"{value:.{digits}g}{unit}"


def loss(value: float | None, in_bits: bool = False) -> str:
    """A loss in nats per character, shown in nats or bits with three decimals."""
    if value is None or not math.isfinite(value):
        return "–"
    return f"{bits(value) if in_bits else value:.3f}"
