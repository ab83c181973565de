"""The reference decoder: link layer, IPv4/IPv6 and TCP headers, on whole columns at once.

``decode`` turns one ``RawBatch`` into a ``SegmentBatch`` with numpy gathers: no
per-packet Python except for the rare packets that need it (TCP options other than the
usual timestamps, ICMP errors). Every read is bounds-checked against the captured
length; a header that does not fit makes the packet ``malformed``, never an exception.
The compiled decoder (``kernel.py``) gives the same batches.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..model import OPT_TIMESTAMP, DecodeStats, FlowKey, RawBatch, SegmentBatch, segments
from .peel import TUNNELED, peel, tunnel_index
from .icmp import icmp_error
from .layers import (BSD_AF_INET6, ET_IPV4, ET_IPV6, FLOW_MIX, IP_GRE, IP_IN_IP, IP_UDP, IPV6_EXT,
                     IPV6_IN_IP, LT_ETHERNET, LT_LOOP, LT_NULL, LT_SLL, LT_SLL2, RAW_IP, UDP_GENEVE,
                     UDP_GTPU, UDP_TEREDO, UDP_VXLAN, VLAN_TPIDS, ET_MPLS, ET_MPLS_MULTICAST,
                     ET_PPPOE_SESSION, ET_TEB, Skip)
from .options import tcp_options

PAD = bytes(64)
# The option layout Linux puts on nearly every segment (NOP, NOP, timestamps): read on
# whole columns; any other layout option by option in Python.
NOP_NOP_TS = 0x0101080A

_MIX = np.uint64(FLOW_MIX)


def _factorize(cols: tuple[np.ndarray, ...]) -> tuple[list[FlowKey], np.ndarray]:
    """Distinct rows of equal-length uint64 columns and each row's index among them.

    Fast path: a 64-bit mix of the columns, factorized as integers, then verified
    exactly; on any hash collision, an exact (slower) structured sort.
    """
    h = np.zeros(len(cols[0]), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for c in cols:
            h = (h ^ c) * _MIX
            h ^= h >> np.uint64(29)
    uniq_h, first, inv = np.unique(h, return_index=True, return_inverse=True)
    inv = inv.ravel()
    rep = first[inv]
    if all(np.array_equal(c, c[rep]) for c in cols):
        return [tuple(int(c[i]) for c in cols) for i in first.tolist()], inv  # type: ignore[misc]
    keys = np.empty(len(h), dtype=np.dtype([(f"f{i}", np.uint64) for i in range(len(cols))]))
    for name, c in zip(keys.dtype.names or (), cols):
        keys[name] = c
    uniq, inv = np.unique(keys, return_inverse=True)
    return [tuple(int(x) for x in row) for row in uniq.tolist()], inv.ravel()  # type: ignore[misc]


class _Buf:
    """Bounds-safe big-endian gathers from one padded buffer."""

    def __init__(self, data: bytes) -> None:
        self.a = np.frombuffer(data + PAD, dtype=np.uint8)
        self.limit = len(data)

    def _idx(self, idx: np.ndarray) -> np.ndarray:
        return np.asarray(np.clip(idx, 0, self.limit))

    def u8(self, idx: np.ndarray) -> np.ndarray:
        return np.asarray(self.a[self._idx(idx)].astype(np.int64))

    def u16(self, idx: np.ndarray) -> np.ndarray:
        i = self._idx(idx)
        return np.asarray((self.a[i].astype(np.int64) << 8) | self.a[i + 1])

    def u32(self, idx: np.ndarray) -> np.ndarray:
        i = self._idx(idx)
        return np.ascontiguousarray(self.a[i[:, None] + np.arange(4)]).view(">u4").ravel().astype(np.int64)

    def u64(self, idx: np.ndarray) -> np.ndarray:
        i = self._idx(idx)
        return np.ascontiguousarray(self.a[i[:, None] + np.arange(8)]).view(">u8").ravel()


PLAIN_LINKS = (LT_ETHERNET, LT_SLL, LT_SLL2, LT_NULL, LT_LOOP) + RAW_IP
PEELED_ETHERTYPES = VLAN_TPIDS + (ET_MPLS, ET_MPLS_MULTICAST, ET_PPPOE_SESSION, ET_TEB)
TUNNEL_PROTOS = (IP_IN_IP, IPV6_IN_IP, IP_GRE)
UDP_TUNNEL_PORTS = (UDP_VXLAN, UDP_GENEVE, UDP_GTPU, UDP_TEREDO)


def _peel_the_rest(raw: RawBatch, b: "_Buf", et: np.ndarray, l3: np.ndarray, end: np.ndarray,
                   skip: np.ndarray) -> Optional[np.ndarray]:
    """Peel the frames the column code above does not take (their ``et``, ``l3`` and
    ``end`` are set in place, ``skip`` says why a frame has no IP); their ``TUNNELED``
    records, or None when no frame needed peeling."""
    lt = raw.linktype
    ip4 = (et == ET_IPV4) & (l3 + 20 <= end)
    ip6 = (et == ET_IPV6) & (l3 + 40 <= end)
    proto = np.where(ip4, b.u8(l3 + 9), np.where(ip6, b.u8(l3 + 6), -1))
    l4 = np.where(ip4, l3 + (b.u8(l3) & 15) * 4, l3 + 40)
    udp = (proto == IP_UDP) & (np.isin(b.u16(l4 + 2), UDP_TUNNEL_PORTS) | (b.u16(l4) == UDP_TEREDO)
                               | (b.u16(l4) == UDP_GTPU))
    odd = ~np.isin(lt, PLAIN_LINKS) | np.isin(et, PEELED_ETHERTYPES) | np.isin(proto, TUNNEL_PROTOS) \
        | udp | (ip6 & np.isin(proto, IPV6_EXT))
    todo = np.flatnonzero(odd)
    if not len(todo):
        return None
    tunneled = np.zeros(len(et), dtype=TUNNELED)
    tunneled["id"] = -1
    records = tunneled.view(np.recarray)     # (records with attributes, as numba's)
    a = b.a
    for k in todo.tolist():
        rec = records[k]
        rec.end = end[k]
        ver, at = peel(a, int(raw.off[k]), int(end[k]), int(lt[k]), rec)
        et[k] = ET_IPV4 if ver == 4 else ET_IPV6 if ver == 6 else 0
        l3[k] = at
        end[k] = rec.end
        skip[k] = rec.skip
    return tunneled


def decode(raw: RawBatch, frame0: int, stats: DecodeStats) -> SegmentBatch:
    """Decode a batch. Frame numbers are ``frame0 + 1 + index`` (1-based)."""
    n = len(raw)
    stats.packets += n
    b = _Buf(raw.data)
    off, cap, lt = raw.off, raw.caplen, raw.linktype
    end = off + cap
    et = np.zeros(n, dtype=np.int64)
    l3 = off.copy()

    eth = lt == LT_ETHERNET
    if eth.any():
        et[eth] = np.where(cap[eth] >= 14, b.u16(off[eth] + 12), 0)
        l3[eth] = off[eth] + 14
        for _ in range(3):  # 802.1Q, QinQ, and one more
            vl = eth & np.isin(et, VLAN_TPIDS) & (l3 + 4 <= end)
            if not vl.any():
                break
            et[vl] = b.u16(l3[vl] + 2)
            l3[vl] += 4
    m = lt == LT_SLL
    if m.any():
        et[m] = np.where(cap[m] >= 16, b.u16(off[m] + 14), 0)
        l3[m] = off[m] + 16
    m = lt == LT_SLL2
    if m.any():
        et[m] = np.where(cap[m] >= 20, b.u16(off[m]), 0)
        l3[m] = off[m] + 20
    m = (lt == LT_NULL) | (lt == LT_LOOP)
    if m.any():
        le = b.u8(off[m]) | (b.u8(off[m] + 1) << 8) | (b.u8(off[m] + 2) << 16) | (b.u8(off[m] + 3) << 24)
        be = b.u32(off[m])
        af = np.where(lt[m] == LT_LOOP, be, np.where(le < 256, le, be))
        et[m] = np.where(cap[m] < 4, 0, np.where(af == 2, ET_IPV4,
                         np.where(np.isin(af, BSD_AF_INET6), ET_IPV6, 0)))
        l3[m] = off[m] + 4
    m = np.isin(lt, RAW_IP)
    if m.any():
        ver = b.u8(off[m]) >> 4
        et[m] = np.where(cap[m] < 1, 0, np.where(ver == 4, ET_IPV4, np.where(ver == 6, ET_IPV6, 0)))
    # Frames that are not plain IP over these link layers (other link types, MPLS, PPPoE,
    # more VLAN tags, IP that carries a tunnel) are peeled one by one (``peel.peel``).
    skip = np.zeros(n, dtype=np.int64)
    tunneled = _peel_the_rest(raw, b, et, l3, end, skip)
    unsupported = skip == Skip.UNSUPPORTED_LINK
    stats.unsupported_link += int(unsupported.sum())
    stats.wlan_control += int((skip == Skip.WLAN_CONTROL).sum())
    stats.wlan_protected += int((skip == Skip.WLAN_PROTECTED).sum())

    v4 = (et == ET_IPV4) & (l3 + 20 <= end)
    v6 = (et == ET_IPV6) & (l3 + 40 <= end)
    stats.not_ip += int((~(v4 | v6) & (skip <= Skip.NOT_IP)).sum())
    v4 &= (b.u8(l3) >> 4) == 4
    v6 &= (b.u8(l3) >> 4) == 6

    proto = np.full(n, -1, dtype=np.int64)
    l4 = np.zeros(n, dtype=np.int64)
    l4len = np.zeros(n, dtype=np.int64)
    s_hi = np.zeros(n, dtype=np.uint64)
    s_lo = np.zeros(n, dtype=np.uint64)
    d_hi = np.zeros(n, dtype=np.uint64)
    d_lo = np.zeros(n, dtype=np.uint64)
    ipver = np.zeros(n, dtype=np.int64)
    bad = np.zeros(n, dtype=bool)
    frag = np.zeros(n, dtype=bool)

    if v4.any():
        i = l3[v4]
        ihl = (b.u8(i) & 15) * 4
        tot = b.u16(i + 2)
        # TSO captures may carry total length 0: use the captured length then
        tot = np.where(tot == 0, end[v4] - i, tot)
        bad[v4] = (ihl < 20) | (tot < ihl)
        frag[v4] = (b.u16(i + 6) & 0x3FFF) != 0
        proto[v4] = b.u8(i + 9)
        s_lo[v4] = b.u32(i + 12).astype(np.uint64)
        d_lo[v4] = b.u32(i + 16).astype(np.uint64)
        l4[v4] = i + ihl
        l4len[v4] = tot - ihl
        ipver[v4] = 4
    if v6.any():
        i = l3[v6]
        s_hi[v6] = b.u64(i + 8)
        s_lo[v6] = b.u64(i + 16)
        d_hi[v6] = b.u64(i + 24)
        d_lo[v6] = b.u64(i + 32)
        plen6 = b.u16(i + 4)
        nh = b.u8(i + 6)
        p = i + 40
        # a jumbogram (RFC 2675, "BIG TCP"): payload length 0, the real one in the
        # hop-by-hop header's Jumbo Payload option
        jumbo = (plen6 == 0) & (nh == 0) & (b.u8(p + 2) == 0xC2) & (b.u8(p + 3) == 4)
        plen6 = np.where(jumbo, b.u32(p + 4), plen6)
        rem = plen6.copy()
        fr = np.zeros(len(i), dtype=bool)
        e6 = end[v6]
        for _ in range(8):  # extension header chain
            ext = np.isin(nh, IPV6_EXT) & (p + 8 <= e6)
            f44 = (nh == 44) & (p + 8 <= e6)
            ah = (nh == 51) & (p + 8 <= e6)
            if not (ext.any() or f44.any() or ah.any()):
                break
            hl = np.where(ext, (b.u8(p + 1) + 1) * 8, np.where(f44, 8, np.where(ah, (b.u8(p + 1) + 2) * 4, 0)))
            fr |= f44 & ((b.u16(p + 2) & 0xFFF9) != 0)
            nxt = np.where(ext | f44 | ah, b.u8(p), nh)
            p = p + hl
            rem = rem - hl
            nh = nxt
        bad[v6] = (rem < 0) | (plen6 == 0)
        frag[v6] = fr
        proto[v6] = nh
        l4[v6] = p
        l4len[v6] = rem
        ipver[v6] = 6

    ip = (v4 | v6) & ~bad
    stats.malformed += int(((v4 | v6) & bad).sum())
    stats.fragments += int((ip & frag).sum())
    ip &= ~frag
    is_tcp = ip & (proto == 6)
    icmp = ip & (((proto == 1) & (ipver == 4)) | ((proto == 58) & (ipver == 6)))
    stats.not_tcp += int((ip & ~is_tcp & ~icmp).sum())

    # TCP header: at least 20 bytes captured, data offset sane.
    hdr_ok = is_tcp & (l4 + 20 <= end) & (l4len >= 20)
    doff = np.where(hdr_ok, (b.u8(l4 + 12) >> 4) * 4, 0)
    hdr_ok &= (doff >= 20) & (doff <= l4len)
    stats.malformed += int((is_tcp & ~hdr_ok).sum())
    sel = np.flatnonzero(hdr_ok)

    batch = SegmentBatch(data=raw.data)
    if icmp.any():
        for k in np.flatnonzero(icmp).tolist():
            err = icmp_error(raw.data, int(l4[k]), int(end[k]), int(ipver[k]),
                             frame0 + 1 + k, int(raw.ts[k]), int(l3[k]))
            if err is not None:
                stats.icmp_errors += 1
                batch.icmp.append(err)
            else:                           # an echo, an error about UDP, ...
                stats.not_tcp += 1
    if len(sel) == 0:
        return batch

    t4 = l4[sel]
    sp = b.u16(t4)
    dp = b.u16(t4 + 2)
    flags = b.u8(t4 + 13)
    do = doff[sel]
    plen = l4len[sel] - do
    pay_off = t4 + do
    pay_len = np.clip(end[sel] - pay_off, 0, plen)
    stats.tcp_segments += len(sel)
    stats.snaplen_cut += int((pay_len < plen).sum())

    sh, sl, dh, dl, ver = s_hi[sel], s_lo[sel], d_hi[sel], d_lo[sel], ipver[sel]
    gt = (sh > dh) | ((sh == dh) & ((sl > dl) | ((sl == dl) & (sp > dp))))
    keycols = (ver.astype(np.uint64), np.where(gt, dh, sh), np.where(gt, dl, sl),
               np.where(gt, dp, sp).astype(np.uint64), np.where(gt, sh, dh), np.where(gt, sl, dl),
               np.where(gt, sp, dp).astype(np.uint64))
    rows, inv = _factorize(keycols)

    i3 = l3[sel]
    v4sel = ver == 4
    seg = segments(len(sel))
    if tunneled is not None:
        seg["tunnel"], batch.tunnels = tunnel_index(tunneled[sel])
        stats.tunneled += int((seg["tunnel"] >= 0).sum())
    seg["frame"] = sel + (frame0 + 1)
    seg["ts"] = raw.ts[sel]
    seg["flow"] = inv
    seg["dir"] = gt
    seg["flags"] = flags
    seg["seq"] = b.u32(t4 + 4)
    seg["ack"] = b.u32(t4 + 8)
    seg["plen"] = plen
    seg["pay_off"] = pay_off
    seg["pay_len"] = pay_len
    seg["win"] = b.u16(t4 + 14)
    seg["ttl"] = np.where(v4sel, b.u8(i3 + 8), b.u8(i3 + 7))
    seg["ipid"] = np.where(v4sel, b.u16(i3 + 4), -1)
    # options: the usual NOP, NOP, timestamps layout on columns; any other one by one
    opt_end = np.minimum(t4 + do, end[sel])
    usual = (do == 32) & (opt_end - t4 >= 32) & (b.u32(t4 + 20) == NOP_NOP_TS)
    seg["opts"] = np.where(usual, OPT_TIMESTAMP, 0)
    seg["tsval"] = np.where(usual, b.u32(t4 + 24), -1)
    seg["tsecr"] = np.where(usual, b.u32(t4 + 28), -1)
    for k in np.flatnonzero((do > 20) & ~usual).tolist():
        o = tcp_options(raw.data, int(t4[k]) + 20, int(opt_end[k]))
        for name, value in (("mss", o.mss), ("wscale", o.wscale), ("opts", o.kinds),
                            ("tsval", o.tsval), ("tsecr", o.tsecr)):
            seg[name][k] = value
    batch.seg = seg
    batch.flows = rows
    return batch
