"""Record scanners for pcap (and pcapng packet blocks): find each record in a buffer.

Two implementations with one contract: ``scan_pcap(buf, pos, big_endian, limit, most)``
returns ``(count, end_pos, damaged, off, cap, orig, sec, frac)`` for at most ``most``
complete records from ``pos``; ``damaged`` is true when a record claims more than ``limit`` bytes
(scanning stops there). The Python one is the reference; the compiled one (``scan_kernel.py``) is
used for large inputs only, so that small files never pay for loading or building it.

For pcapng, ``scan_epb_compiled`` takes runs of enhanced packet blocks (nearly every
block of a capture); the reader's Python block loop (``capture.CaptureReader._pcapng``)
is the reference and takes every other block.
"""
from __future__ import annotations

import struct
from typing import Any, Callable

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


EpbResult = tuple[int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def scan_epb_compiled(buf: Any, pos: int, big_endian: bool, interfaces: int, max_block: int,
                      most: int) -> EpbResult:
    """A run of pcapng enhanced packet blocks from ``pos``: ``(count, end_pos, off, cap,
    orig, raw_ts, iface)`` for at most ``most`` of them. It stops before the first block
    that is not a whole, well-formed enhanced packet block (``end_pos``), for the reader's
    Python code, the reference, to take: a timestamp past 64-bit is kept at the limit, as
    there."""
    from ..compiled import kernels
    a = np.frombuffer(buf, dtype=np.uint8)
    most = max(1, min(most, (len(buf) - pos) // 32))
    cols = [np.empty(most, np.int64) for _ in range(5)]
    k, end = kernels().scan_epb(a, pos, big_endian, interfaces, max_block, *cols)
    return (int(k), int(end), *(c[:k] for c in cols))  # type: ignore[return-value]


def compiled_ready(packets_so_far: int, threshold: int = 200_000, fast: bool = False) -> bool:
    """Whether the compiled scanners serve the next chunk: once a file has proven large
    (or is known to be)."""
    if fast or packets_so_far >= threshold:
        from ..compiled import available
        return available()
    return False


def choose(packets_so_far: int, threshold: int = 200_000, fast: bool = False) -> Callable[..., Result]:
    """The scanner for the next chunk: the compiled one once a file has proven large (or
    is known to be)."""
    return scan_pcap_compiled if compiled_ready(packets_so_far, threshold, fast) else scan_pcap_py
