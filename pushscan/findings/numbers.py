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
    """``ns`` for people: three significant digits in the unit that suits it."""
    if ns < 0:
        return BACKWARDS
    if ns < 1_000_000:                  # under a millisecond
        return f"{max(1, round(ns / 1000)):,} µs" if ns >= 500 or ns == 0 else "1 µs"
    if ns < NS:
        return f"{ns / 1e6:.3g} ms"
    s = ns / NS
    return f"{s:.3g} s" if s < 1000 else f"{s:,.0f} s"


def size(n: int, unit: str = "byte") -> str:
    """``156,258 bytes``, ``1 byte``."""
    return f"{n:,} {unit}{'' if n == 1 else 's'}"


__all__ = ["BACKWARDS", "duration", "seconds", "size"]
