"""One style for the numbers people read (messages, follow, text): durations as ``7.13 s``,
``300 s``, ``250 ms``, ``1 µs``; sizes as ``156,258 bytes``. A negative duration is never
shown: a capture whose clock stepped back says so, and its JSON seconds are null."""
from __future__ import annotations

from typing import Optional

NS = 1_000_000_000

BACKWARDS = "an unknown time (the capture's clock went backwards)"


def seconds(ns: int) -> Optional[float]:
    """``ns`` in seconds for JSON (µs precision), or None when negative (a clock step)."""
    return None if ns < 0 else round(ns / NS, 6)


def duration(ns: int) -> str:
    """``ns`` for people: three significant digits in the unit that suits it, the unit
    chosen after rounding (999.7 ms is ``1 s``); from 1,000 s on, whole seconds."""
    if ns < 0:
        return BACKWARDS
    if ns == 0:
        return "0 µs"
    for unit, scale in (("µs", 1e3), ("ms", 1e6), ("s", 1e9)):
        v = float(f"{ns / scale:.3g}")
        if v < 1000:
            return f"{v:g} {unit}"
    return f"{ns / 1e9:,.0f} s"


def size(n: int, unit: str = "byte") -> str:
    """``156,258 bytes``, ``1 byte``."""
    return f"{n:,} {unit}{'' if n == 1 else 's'}"


__all__ = ["BACKWARDS", "duration", "seconds", "size"]
