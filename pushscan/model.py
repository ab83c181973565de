"""The values every stage shares: raw packet batches, the segment model, flow keys.

A source yields ``RawBatch`` values (packets located in one buffer); a decoder or an
engine turns them into ``SegmentBatch`` values: one numpy record per TCP segment, of
dtype ``SEGMENT``, read by field name everywhere (Python and the compiled kernels
alike). Nothing downstream knows which engine made a batch.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np

# TCP flag bits, named once.
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20

# TCP option kinds a segment carried, as bits of ``Segment.opts`` (bit = 1 << kind for
# the kinds below 31; OPT_OTHER for any other kind).
OPT_MSS = 1 << 2
OPT_WSCALE = 1 << 3
OPT_SACK_PERM = 1 << 4
OPT_SACK = 1 << 5
OPT_TIMESTAMP = 1 << 8
OPT_OTHER = 1 << 31

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
    packet at a time; the native decoders compute the same thing on whole batches.
    """
    s = (src >> 64, src & 0xFFFFFFFFFFFFFFFF, sport)
    d = (dst >> 64, dst & 0xFFFFFFFFFFFFFFFF, dport)
    if s > d:
        return (version, *d, *s), 1
    return (version, *s, *d), 0


@dataclass(slots=True)
class RawBatch:
    """Packets located in one buffer, as a source read them. Columns are numpy int64
    arrays of equal length: ``off``/``caplen`` locate each packet's captured bytes in
    ``data``; ``origlen`` is its length on the wire; ``ts`` nanoseconds since the epoch;
    ``linktype`` each packet's LINKTYPE_* value."""

    data: Any          # bytes, or a read-only memory map of the capture
    off: np.ndarray
    caplen: np.ndarray
    origlen: np.ndarray
    ts: np.ndarray
    linktype: np.ndarray

    def __len__(self) -> int:
        return len(self.off)


# One TCP segment: the fields of ``SEGMENT``, in its order, all int64.
SEGMENT_FIELDS = (
    "frame",      # frame number, 1-based (Wireshark's numbering)
    "ts",         # capture time, ns since the epoch
    "flow",       # index into the batch's ``flows``
    "dir",        # 0: from the key's endpoint a to b
    "flags",      # TCP flags
    "seq", "ack",  # raw 32-bit sequence and acknowledgement numbers
    "plen",       # payload length from the IP header (even if the frame was cut)
    "pay_off", "pay_len",   # the captured payload: data[pay_off:pay_off + pay_len]
    "mss",        # MSS option (0: none)
    "wscale",     # window scale option's shift (-1: none)
    "win",        # the raw 16-bit window field
    "ttl",        # IPv4 TTL or IPv6 hop limit
    "ipid",       # IPv4 identification (-1: IPv6)
    "opts",       # TCP option kinds present (OPT_* bits)
    "tsval", "tsecr",   # TCP timestamps option (-1: none)
    "tunnel",     # index into the batch's ``tunnels`` (-1: not tunnelled)
    # filled by the compiled decoder only (``SegmentBatch.hints``), for the fast lane's
    # SMTP body counting without reading payloads again: 1 if the payload holds
    # CRLF.CRLF, and its first and last 4 bytes (big-endian, payloads of 4 bytes or more)
    "body_end", "head", "tail",
)
SEGMENT = np.dtype([(name, np.int64) for name in SEGMENT_FIELDS])
# What a segment's optional fields hold when nothing was decoded for them.
SEGMENT_DEFAULTS = {"wscale": -1, "ipid": -1, "tsval": -1, "tsecr": -1, "tunnel": -1}


class Segment(NamedTuple):
    """One ``SEGMENT`` record as Python ints (``Segment(*row)`` for a row of ``batch.rows()``)."""

    frame: int
    ts: int
    flow: int
    dir: int
    flags: int
    seq: int
    ack: int
    plen: int
    pay_off: int
    pay_len: int
    mss: int
    wscale: int
    win: int
    ttl: int
    ipid: int
    opts: int
    tsval: int
    tsecr: int
    tunnel: int
    body_end: int
    head: int
    tail: int


assert tuple(Segment.__annotations__) == SEGMENT_FIELDS, "Segment and SEGMENT list the same fields"


def segments(n: int) -> np.ndarray:
    """``n`` segment records holding the defaults (zero, or ``SEGMENT_DEFAULTS``)."""
    seg = np.zeros(n, dtype=SEGMENT)
    for name, value in SEGMENT_DEFAULTS.items():
        seg[name] = value
    return seg


class IcmpError(NamedTuple):
    """An ICMP/ICMPv6 error quoting a TCP segment of ``flow`` (sent in direction ``dir``):
    who sent it (``origin``, an address as text), its type and code, and how reports name
    it (``text``)."""

    frame: int
    ts: int
    flow: FlowKey
    dir: int
    text: str
    origin: str = ""
    type: int = 0
    code: int = 0
    mtu: int = 0        # the next hop's MTU, for "fragmentation needed" / "packet too big"
    numbered: bool = False   # quotes enough of the TCP header (16 bytes) for Wireshark to
    #                          give its conversation a tcp.stream, as pushscan a session


class TunnelInfo(NamedTuple):
    """What a segment came through: the layers (``decode.layers.Tunnel`` bits), the
    innermost tunnel's id (VNI, key, label, TEID, session; -1 none), the outermost
    tunnel's IP version and addresses as text (empty for tunnels of the link layer only)."""

    kinds: int
    id: int
    outer_version: int
    outer_src: str
    outer_dst: str


@dataclass(slots=True)
class SegmentBatch:
    """TCP segments in capture order: ``seg`` (``SEGMENT`` records), the bytes their
    payloads point into (``data``), the flows they belong to, and the ICMP errors seen
    among them, and the tunnels they came through (``Segment.tunnel``). ``hints``: the
    compiled decoder filled ``body_end``, ``head``, ``tail``."""

    seg: np.ndarray = field(default_factory=lambda: segments(0))
    data: Any = b""
    flows: list[FlowKey] = field(default_factory=list)
    icmp: list[IcmpError] = field(default_factory=list)
    hints: bool = False
    tunnels: list[TunnelInfo] = field(default_factory=list)
    until: int = -1     # capture time at the batch's end when segments were taken out of it

    def __len__(self) -> int:
        return len(self.seg)

    def rows(self) -> "zip[tuple[int, ...]]":
        """Each segment as a tuple of Python ints in ``SEGMENT_FIELDS`` order (for
        ``Segment(*row)``)."""
        seg = self.seg
        return zip(*(seg[name].tolist() for name in SEGMENT_FIELDS))

    def last_ts(self) -> int:
        """Capture time at the batch's end (its last segment's, or ``until``)."""
        return self.until if self.until >= 0 else int(self.seg["ts"][-1])


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
    wlan_control: int = 0        # 802.11 management, control and null-data frames
    wlan_protected: int = 0      # 802.11 data frames encrypted
    tunneled: int = 0            # TCP segments that came through a tunnel
