"""The segment model every engine produces and every later stage consumes.

An engine (native reader, scapy, tshark) turns captured frames into ``SegmentBatch``
values; nothing downstream knows which engine made them. Columns are plain lists so
the tracker can iterate them without per-packet object creation.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple, Optional

# TCP flag bits, named once.
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20

# Timestamps are nanoseconds since the epoch in 64 bits (arrays, packed commands): years
# 1677 to 2262. Capture times outside (a broken or hostile file) are kept at the limits.
TS_MIN, TS_MAX = -(1 << 63), (1 << 63) - 1

# A flow key: (ip_version, a_hi, a_lo, a_port, b_hi, b_lo, b_port) with endpoint a the
# smaller of the two. Direction 0 is a -> b. IPv4 addresses have hi == 0.
FlowKey = tuple[int, int, int, int, int, int, int]


def endpoint_ip(version: int, hi: int, lo: int) -> str:
    """Text form of an address stored as two 64-bit halves."""
    if version == 4:   # what ipaddress.IPv4Address gives, at a quarter of the cost
        return f"{lo >> 24}.{lo >> 16 & 255}.{lo >> 8 & 255}.{lo & 255}"
    return _ipv6_text(hi, lo)


@lru_cache(maxsize=4096)
def _ipv6_text(hi: int, lo: int) -> str:   # a few cached: servers recur
    return str(ipaddress.IPv6Address((hi << 64) | lo))


def flow_key(version: int, src: int, sport: int, dst: int, dport: int) -> tuple[FlowKey, int]:
    """Canonical key and direction for a segment from ``src:sport`` to ``dst:dport``.

    Addresses are integers (IPv4 32-bit, IPv6 128-bit). Used by engines that see one
    packet at a time; the native decoder computes the same thing on whole columns.
    """
    s = (src >> 64, src & 0xFFFFFFFFFFFFFFFF, sport)
    d = (dst >> 64, dst & 0xFFFFFFFFFFFFFFFF, dport)
    if s > d:
        return (version, *d, *s), 1
    return (version, *s, *d), 0


class IcmpError(NamedTuple):
    """An ICMP/ICMPv6 error quoting a TCP segment of ``flow`` (sent in direction ``dir``)."""

    frame: int
    ts: int
    flow: FlowKey
    dir: int
    text: str


@dataclass(slots=True)
class SegmentBatch:
    """TCP segments in capture order.

    Per segment: ``frame`` (1-based, Wireshark numbering), ``ts`` (ns since epoch),
    ``flow`` (index into ``flows``), ``dir`` (0: a->b), ``flags``, raw 32-bit ``seq``
    and ``ack``, ``plen`` (payload length from the IP header, even if the frame was cut
    by a snap length), and the captured payload as ``data[pay_off:pay_off+pay_len]``.
    ``mss`` maps a segment index to the MSS option it carried (SYNs only).

    The native decoder fills ``cols`` instead of the lists: one int64 array with a row
    per column in the order of ``COLUMNS`` and an eleventh row holding each segment's
    MSS option or 0 (no per-packet Python objects); the compiled decoder adds three: 1
    if the payload holds CRLF.CRLF, and the payload's first and last 4 bytes (big-endian,
    payloads of 4 bytes or more). ``columns()`` gives the lists either way.
    """

    COLUMNS = ("frame", "ts", "flow", "dir", "flags", "seq", "ack", "plen", "pay_off", "pay_len")

    frame: list[int] = field(default_factory=list)
    ts: list[int] = field(default_factory=list)
    flow: list[int] = field(default_factory=list)
    dir: list[int] = field(default_factory=list)
    flags: list[int] = field(default_factory=list)
    seq: list[int] = field(default_factory=list)
    ack: list[int] = field(default_factory=list)
    plen: list[int] = field(default_factory=list)
    pay_off: list[int] = field(default_factory=list)
    pay_len: list[int] = field(default_factory=list)
    data: bytes = b""
    flows: list[FlowKey] = field(default_factory=list)
    mss: dict[int, int] = field(default_factory=dict)
    icmp: list[IcmpError] = field(default_factory=list)
    cols: Optional[Any] = None     # int64 array (11 or 14, n): COLUMNS, MSS, [CRLF.CRLF, head, tail]

    def __len__(self) -> int:
        return len(self.frame) if self.cols is None else int(self.cols.shape[1])

    def columns(self) -> list[list[int]]:
        """The ten columns as lists of Python ints, in the order of ``COLUMNS``."""
        if self.cols is not None:
            return self.cols[:10].tolist()
        return [self.frame, self.ts, self.flow, self.dir, self.flags, self.seq, self.ack,
                self.plen, self.pay_off, self.pay_len]

    def last_ts(self) -> int:
        return int(self.cols[1, -1]) if self.cols is not None else self.ts[-1]


@dataclass(slots=True)
class DecodeStats:
    """What a decoder saw besides TCP segments, per input."""

    packets: int = 0
    tcp_segments: int = 0
    not_ip: int = 0
    not_tcp: int = 0
    fragments: int = 0
    malformed: int = 0
    unsupported_link: int = 0
    snaplen_cut: int = 0
    icmp_errors: int = 0
