"""Segments one packet at a time, for the engines that dissect with another library
(scapy, tshark): ``SegmentBuilder`` collects them into the batches every engine yields,
``TunnelNotes`` gathers what a packet came through while an engine walks its layers."""
from __future__ import annotations

import ipaddress
from typing import Optional

import numpy as np

from ..decode.icmp import icmp_text
from ..decode.layers import Tunnel
from ..decode.options import NO_OPTIONS, Options
from ..model import (SEGMENT, TS_MAX, TS_MIN, FlowKey, IcmpError, Segment, SegmentBatch,
                     TunnelInfo, flow_key)


def ip_int(text: str) -> int:
    return int(ipaddress.ip_address(text))


def ip_text(text: str) -> str:
    """An address as the native decoder writes it (``ipaddress``'s canonical text)."""
    return str(ipaddress.ip_address(text))


class TunnelNotes:
    """What one packet came through, layer by layer outermost first, as the native
    decoder notes it (``decode.peel``): the encapsulations seen, the innermost id, the
    first IP header that carried a tunnel."""

    __slots__ = ("kinds", "id", "outer")

    def __init__(self) -> None:
        self.kinds = 0
        self.id = -1
        self.outer: Optional[tuple[int, str, str]] = None

    def layer(self, kind: Tunnel, ident: Optional[int] = None) -> None:
        self.kinds |= kind
        if ident is not None:
            self.id = ident

    def carrier(self, version: int, src: str, dst: str, ip_in_ip: bool) -> None:
        """An IP header that carries the packet further in (not the innermost)."""
        if self.outer is None:
            self.outer = (version, ip_text(src), ip_text(dst))
        if ip_in_ip:
            self.kinds |= Tunnel.IP_IN_IP

    def info(self) -> Optional[TunnelInfo]:
        if not self.kinds:
            return None
        v, src, dst = self.outer or (0, "", "")
        return TunnelInfo(self.kinds, self.id, v, src, dst)


def hex_or_int(text: Optional[str]) -> Optional[int]:
    """A field as dissectors print it: ``0x2a2a`` or ``4242``; None if absent or odd."""
    if not text:
        return None
    try:
        return int(text, 0)
    except ValueError:
        try:
            return int(text, 16)
        except ValueError:
            return None


class SegmentBuilder:
    """Collects segments one at a time (for engines that see one packet at a time)."""

    def __init__(self) -> None:
        self.rows: list[Segment] = []
        self.icmp: list[IcmpError] = []
        self.data = bytearray()
        self.flows: list[FlowKey] = []
        self.flow_index: dict[FlowKey, int] = {}
        self.tunnels: list[TunnelInfo] = []
        self.tunnel_index: dict[TunnelInfo, int] = {}

    def __len__(self) -> int:
        return len(self.rows)

    def add(self, frame: int, ts: int, version: int, src: int, sport: int, dst: int, dport: int,
            flags: int, seq: int, ack: int, plen: int, payload: bytes, win: int, ttl: int,
            ipid: int, options: Options = NO_OPTIONS, tunnel: Optional[TunnelInfo] = None) -> None:
        if not TS_MIN <= ts <= TS_MAX:   # a broken or hostile capture's clock: times are
            ts = TS_MIN if ts < 0 else TS_MAX   # 64-bit nanoseconds downstream (packed)
        key, d = flow_key(version, src, sport, dst, dport)
        fi = self.flow_index.get(key)
        if fi is None:
            fi = self.flow_index[key] = len(self.flows)
            self.flows.append(key)
        ti = -1
        if tunnel is not None:
            ti = self.tunnel_index.setdefault(tunnel, len(self.tunnels))
            if ti == len(self.tunnels):
                self.tunnels.append(tunnel)
        self.rows.append(Segment(
            frame=frame, ts=ts, flow=fi, dir=d, flags=flags, seq=seq, ack=ack, plen=plen,
            pay_off=len(self.data), pay_len=len(payload), mss=options.mss,
            wscale=options.wscale, win=win, ttl=ttl, ipid=ipid, opts=options.kinds,
            tsval=options.tsval, tsecr=options.tsecr, tunnel=ti, body_end=0, head=0, tail=0))
        self.data += payload

    def add_icmp(self, frame: int, ts: int, version: int, src: int, sport: int, dst: int,
                 dport: int, origin: str, kind: int, code: int, mtu: int = 0,
                 numbered: bool = False) -> None:
        """An ICMP error from ``origin`` quoting the segment ``src:sport -> dst:dport``
        (``numbered``: enough of its TCP header for a tcp.stream, ``IcmpError``)."""
        key, d = flow_key(version, src, sport, dst, dport)
        self.icmp.append(IcmpError(frame, ts, key, d, icmp_text(version, code, kind, mtu),
                                   origin, kind, code, mtu, numbered))

    def take(self) -> SegmentBatch:
        """The segments collected so far, as a batch; the builder starts afresh."""
        b = SegmentBatch(seg=np.array(self.rows, dtype=SEGMENT), data=bytes(self.data),
                         flows=self.flows, icmp=self.icmp, tunnels=self.tunnels)
        self.__init__()  # type: ignore[misc]
        return b
