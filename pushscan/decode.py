"""Native decoder: link layer, IPv4/IPv6 and TCP headers, on whole columns at once.

``decode`` turns one ``RawBatch`` into a ``SegmentBatch`` with numpy gathers: no
per-packet Python except for the rare packets that need it (SYN options, ICMP errors).
Every read is bounds-checked against the captured length; a header that does not fit
makes the packet ``malformed``, never an exception.
"""
from __future__ import annotations

import numpy as np

from .model import SYN, DecodeStats, IcmpError, SegmentBatch, flow_key
from .sources.capture import RawBatch

# LINKTYPE_* values we decode.
LT_NULL, LT_ETHERNET, LT_RAW, LT_LOOP = 0, 1, 101, 108
LT_SLL, LT_IPV4, LT_IPV6, LT_SLL2 = 113, 228, 229, 276
LT_RAW_ALIASES = (12, 14)  # DLT_RAW on some BSDs
LINKTYPE_NAMES = {0: "NULL", 1: "EN10MB", 12: "RAW", 14: "RAW", 101: "RAW", 108: "LOOP",
                  113: "LINUX_SLL", 228: "IPV4", 229: "IPV6", 276: "LINUX_SLL2"}
SUPPORTED = set(LINKTYPE_NAMES)

ET_IPV4, ET_IPV6 = 0x0800, 0x86DD
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)
IPV6_EXT = (0, 43, 60)     # hop-by-hop, routing, destination options
PAD = bytes(64)

_MIX = np.uint64(0x9E3779B97F4A7C15)


def _factorize(cols: tuple[np.ndarray, ...]) -> tuple[list, np.ndarray]:
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
        return [tuple(int(c[i]) for c in cols) for i in first.tolist()], inv
    keys = np.empty(len(h), dtype=np.dtype([(f"f{i}", np.uint64) for i in range(len(cols))]))
    for name, c in zip(keys.dtype.names, cols):
        keys[name] = c
    uniq, inv = np.unique(keys, return_inverse=True)
    return [tuple(int(x) for x in row) for row in uniq.tolist()], inv.ravel()


def linktype_name(lt: int) -> str:
    return LINKTYPE_NAMES.get(lt, f"LINKTYPE_{lt}")


class _Buf:
    """Bounds-safe big-endian gathers from one padded buffer."""

    def __init__(self, data: bytes) -> None:
        self.a = np.frombuffer(data + PAD, dtype=np.uint8)
        self.limit = len(data)

    def _idx(self, idx: np.ndarray) -> np.ndarray:
        return np.clip(idx, 0, self.limit)

    def u8(self, idx: np.ndarray) -> np.ndarray:
        return self.a[self._idx(idx)].astype(np.int64)

    def u16(self, idx: np.ndarray) -> np.ndarray:
        i = self._idx(idx)
        return (self.a[i].astype(np.int64) << 8) | self.a[i + 1]

    def u32(self, idx: np.ndarray) -> np.ndarray:
        i = self._idx(idx)
        return np.ascontiguousarray(self.a[i[:, None] + np.arange(4)]).view(">u4").ravel().astype(np.int64)

    def u64(self, idx: np.ndarray) -> np.ndarray:
        i = self._idx(idx)
        return np.ascontiguousarray(self.a[i[:, None] + np.arange(8)]).view(">u8").ravel()


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
                         np.where(np.isin(af, (10, 24, 28, 30)), ET_IPV6, 0)))
        l3[m] = off[m] + 4
    m = np.isin(lt, (LT_RAW, LT_IPV4, LT_IPV6) + LT_RAW_ALIASES)
    if m.any():
        ver = b.u8(off[m]) >> 4
        et[m] = np.where(cap[m] < 1, 0, np.where(ver == 4, ET_IPV4, np.where(ver == 6, ET_IPV6, 0)))
    unsupported = ~np.isin(lt, list(SUPPORTED))
    stats.unsupported_link += int(unsupported.sum())

    v4 = (et == ET_IPV4) & (l3 + 20 <= end)
    v6 = (et == ET_IPV6) & (l3 + 40 <= end)
    stats.not_ip += int((~(v4 | v6) & ~unsupported).sum())
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
            err = _icmp_error(raw.data, int(l4[k]), int(end[k]), int(ipver[k]),
                              frame0 + 1 + k, int(raw.ts[k]))
            if err is not None:
                stats.icmp_errors += 1
                batch.icmp.append(err)
    if len(sel) == 0:
        return batch

    t4 = l4[sel]
    sp = b.u16(t4)
    dp = b.u16(t4 + 2)
    seq = b.u32(t4 + 4)
    ack = b.u32(t4 + 8)
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

    cols = np.zeros((11, len(sel)), dtype=np.int64)
    cols[0] = sel + (frame0 + 1)
    cols[1] = raw.ts[sel]
    cols[2] = inv.ravel()
    cols[3] = gt
    cols[4] = flags
    cols[5] = seq
    cols[6] = ack
    cols[7] = plen
    cols[8] = pay_off
    cols[9] = pay_len
    batch.cols = cols
    batch.flows = rows
    syn_opts = np.flatnonzero(((flags & SYN) != 0) & (do > 20))
    for k in syn_opts.tolist():
        mss = mss_option(raw.data, int(t4[k]) + 20, min(int(t4[k] + do[k]), int(end[sel][k])))
        if mss:
            batch.mss[k] = mss
            cols[10, k] = mss
    return batch


def mss_option(data: bytes, p: int, end: int) -> int:
    """The MSS option's value in TCP options ``data[p:end]``, or 0."""
    while p < end:
        kind = data[p]
        if kind == 0:
            break
        if kind == 1:
            p += 1
            continue
        if p + 1 >= end:
            break
        ln = data[p + 1]
        if ln < 2 or p + ln > end:
            break
        if kind == 2 and ln == 4:
            return int.from_bytes(data[p + 2:p + 4], "big")
        p += ln
    return 0


_UNREACH4 = {0: "network unreachable", 1: "host unreachable", 2: "protocol unreachable",
             3: "port unreachable", 4: "fragmentation needed", 9: "network prohibited",
             10: "host prohibited", 13: "communication administratively prohibited"}
_UNREACH6 = {0: "no route to destination", 1: "communication administratively prohibited",
             3: "address unreachable", 4: "port unreachable"}


def _icmp_error(data: bytes, p: int, end: int, ver: int, frame: int, ts: int) -> IcmpError | None:
    """Decode an ICMP destination-unreachable that quotes a TCP segment, else None."""
    if p + 8 > end:
        return None
    typ, code = data[p], data[p + 1]
    q = p + 8
    if ver == 4:
        if typ != 3 or q + 20 > end or data[q] >> 4 != 4:
            return None
        ihl = (data[q] & 15) * 4
        if data[q + 9] != 6 or q + ihl + 4 > end:
            return None
        src = int.from_bytes(data[q + 12:q + 16], "big")
        dst = int.from_bytes(data[q + 16:q + 20], "big")
        t = q + ihl
        text = f"ICMP destination unreachable ({_UNREACH4.get(code, f'code {code}')})"
    else:
        if typ != 1 or q + 40 > end or data[q] >> 4 != 6 or data[q + 6] != 6 or q + 44 > end:
            return None
        src = int.from_bytes(data[q + 8:q + 24], "big")
        dst = int.from_bytes(data[q + 24:q + 40], "big")
        t = q + 40
        text = f"ICMPv6 destination unreachable ({_UNREACH6.get(code, f'code {code}')})"
    sport = int.from_bytes(data[t:t + 2], "big")
    dport = int.from_bytes(data[t + 2:t + 4], "big")
    key, d = flow_key(ver, src, sport, dst, dport)
    return IcmpError(frame, ts, key, d, text)
