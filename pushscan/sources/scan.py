"""Record scanners for pcap: find each record in a buffer.

Two implementations with one contract: ``scan_pcap(buf, pos, big_endian, limit, most)``
returns ``(count, end_pos, damaged, off, cap, orig, sec, frac)`` for at most ``most``
complete records from ``pos``; ``damaged`` is true when a record claims more than ``limit`` bytes
(scanning stops there). The Python one is the reference; the compiled one (``compiled.py``) is
used for large inputs only, so that small files never pay for loading or building it.
"""
from __future__ import annotations

import struct
from typing import Callable

import numpy as np

Result = tuple[int, int, bool, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def scan_pcap_py(buf: bytes, pos: int, big_endian: bool, limit: int, most: int = 1 << 62) -> Result:
    unpack = struct.Struct((">" if big_endian else "<") + "IIII").unpack_from
    n = len(buf)
    secs: list[int] = []
    fracs: list[int] = []
    offs: list[int] = []
    caps: list[int] = []
    origs: list[int] = []
    damaged = False
    while pos + 16 <= n and len(offs) < most:
        s, f, incl, orig = unpack(buf, pos)
        if incl > limit:
            damaged = True
            break
        end = pos + 16 + incl
        if end > n:
            break
        secs.append(s)
        fracs.append(f)
        offs.append(pos + 16)
        caps.append(incl)
        origs.append(orig)
        pos = end
    i64 = np.int64
    return (len(offs), pos, damaged, np.array(offs, i64), np.array(caps, i64),
            np.array(origs, i64), np.array(secs, i64), np.array(fracs, i64))


def scan_pcap_compiled(buf: bytes, pos: int, big_endian: bool, limit: int, most: int = 1 << 62) -> Result:
    from ..compiled import kernels   # loaded only when a large input needs it
    a = np.frombuffer(buf, dtype=np.uint8)
    most = max(1, min(most, (len(buf) - pos) // 16))
    cols = [np.empty(most, np.int64) for _ in range(5)]
    k, end, damaged = kernels().scan(a, pos, big_endian, limit, *cols)
    return (int(k), int(end), bool(damaged), *(c[:k] for c in cols))  # type: ignore[return-value]


def choose(packets_so_far: int, threshold: int = 200_000, fast: bool = False) -> Callable[..., Result]:
    """The scanner for the next chunk: the compiled one once a file has proven large (or
    is known to be)."""
    if fast or packets_so_far >= threshold:
        from ..compiled import available
        if available():
            return scan_pcap_compiled
    return scan_pcap_py
