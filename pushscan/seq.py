"""32-bit TCP sequence arithmetic. Every comparison of sequence numbers goes through here
(the compiled tracker kernel included: these functions are marked for it).

Sequence numbers are kept *unwrapped*: a 64-bit integer that grows past 2**32 when the
32-bit field wraps. ``unwrap`` places a raw 32-bit value next to a reference.
"""
from __future__ import annotations

from .compiled.marker import compiled

MOD = 1 << 32
MASK = MOD - 1
HALF = 1 << 31


@compiled(inline="always")
def unwrap(seq32: int, ref: int) -> int:
    """Return the 64-bit value congruent to ``seq32`` mod 2**32 that is closest to ``ref``.

    Guarantees ``abs(result - ref) <= 2**31`` and ``result & MASK == seq32``.
    """
    return ref + ((seq32 - ref + HALF) & MASK) - HALF


def diff(a32: int, b32: int) -> int:
    """Signed distance ``a - b`` between two raw 32-bit sequence numbers (RFC 1982 style)."""
    return ((a32 - b32 + HALF) & MASK) - HALF
