"""The compiled decoder's loop (numba; ``fast.decode_fast`` calls it): ``vector.decode``,
one pass per packet.

``vector.decode`` (numpy, column by column) is the reference; this one gives the same
segments (every ``SEGMENT`` field), flows, ICMP errors and counters (tests compare the
two on every capture and on mutated ones), without temporary arrays or a padded copy of
the buffer, and fills the fast lane's SMTP hints (``SegmentBatch.hints``). It is used
with the tracker's fast lane, for big inputs. Bytes past the end of the buffer read as
zero, as the reference's padding does. Flows get their index from an open-addressing
hash table of the seven key columns, in order of first appearance.
"""
from __future__ import annotations

import numpy as np

from ..compiled.marker import Array, Record, compiled
from ..model import OPT_OTHER
from .layers import FLOW_MIX, IPV6_EXT, Skip
from .peel import among, peel, u8 as _u8, u16 as _u16, u32 as _u32, u64 as _u64

# What the kernel counts (the ``DecodeStats`` fields of the same names), and where it
# lists the ICMP packets it leaves to Python.
STATS = np.dtype([(name, np.int64) for name in (
    "not_ip", "not_tcp", "fragments", "malformed", "unsupported_link", "snaplen_cut",
    "tcp_segments", "wlan_control", "wlan_protected", "tunneled")])
ICMP_AT = np.dtype([("index", np.int64), ("l3", np.int64), ("l4", np.int64), ("ipver", np.int64)])


@compiled()
def has_end(a: Array, lo: int, hi: int) -> bool:  # pragma: no cover - compiled
    """CRLF.CRLF in a[lo:hi]? Horspool over the 5-byte pattern."""
    i = lo
    while i + 5 <= hi:
        c = a[i + 4]
        if c == 10 and a[i] == 13 and a[i + 1] == 10 and a[i + 2] == 46 and a[i + 3] == 13:
            return True
        if c == 13:
            i += 1
        elif c == 10:
            i += 3
        elif c == 46:
            i += 2
        else:
            i += 5
    return False


@compiled()
def _options(a: Array, p: Record, end: int, out: Record) -> None:  # pragma: no cover - compiled
    """options.tcp_options, into the segment record ``out``."""
    while p < end:
        kind = np.int64(a[p])
        if kind == 0:
            break
        if kind == 1:
            p += 1
            continue
        if p + 1 >= end:
            break
        ln = np.int64(a[p + 1])
        if ln < 2 or p + ln > end:
            break
        out.opts |= (np.int64(1) << kind) if kind < 31 else OPT_OTHER
        if kind == 2 and ln == 4:
            out.mss = _u16(a, p + 2)
        elif kind == 3 and ln == 3:
            out.wscale = np.int64(a[p + 2])
        elif kind == 8 and ln == 10:
            out.tsval = _u32(a, p + 2)
            out.tsecr = _u32(a, p + 6)
        p += ln


@compiled()
def _kernel(
        a: Array, off: Array, cap: Array, lt: Array, ts: Array, frame0: int, seg: Array,
        keys: Array, table: Array, icmp: Array, st: Array, kc: Array, tn: Array,
        tseg: Array) -> tuple[int, int, int]:  # pragma: no cover
    """Decode packets; returns (segments, flows, icmp packets). ``seg`` gets the
    segments (``SEGMENT`` records, hints included), ``keys`` the flows' key columns,
    ``icmp`` where the ICMP packets are (for Python), ``st`` the counts (``STATS``);
    ``kc`` is scratch space for a flow key and ``tn`` for what ``peel`` finds (compiled
    without reference counting, as tcp/kernel.py explains, the kernel allocates
    nothing); ``tseg`` gets each segment's ``TUNNELED`` record."""
    n = off.shape[0]
    mask = table.shape[0] - 1
    table[:] = -1
    nseg = 0
    nflow = 0
    nicmp = 0
    MIX = np.uint64(FLOW_MIX)
    for k in range(n):
        o = off[k]
        end = o + cap[k]
        t = tn[0]
        t.kinds = 0
        t.id = -1
        t.outer_version = 0
        t.skip = 0
        t.end = end
        ver, l3 = peel(a, o, end, lt[k], t)
        end = t.end
        if t.skip == Skip.UNSUPPORTED_LINK:
            st[0].unsupported_link += 1
            continue
        if t.skip == Skip.WLAN_CONTROL:
            st[0].wlan_control += 1
            continue
        if t.skip == Skip.WLAN_PROTECTED:
            st[0].wlan_protected += 1
            continue
        v4 = ver == 4 and l3 + 20 <= end
        v6 = ver == 6 and l3 + 40 <= end
        if not (v4 or v6):
            st[0].not_ip += 1
            continue
        if v4 and (_u8(a, l3) >> 4) != 4:
            continue
        if v6 and (_u8(a, l3) >> 4) != 6:
            continue
        bad = False
        frag = False
        proto = -1
        l4 = 0
        l4len = 0
        s_hi = np.uint64(0)
        s_lo = np.uint64(0)
        d_hi = np.uint64(0)
        d_lo = np.uint64(0)
        ipver = 4
        if v4:
            ihl = (_u8(a, l3) & 15) * 4
            tot = _u16(a, l3 + 2)
            if tot == 0:
                tot = end - l3
            bad = ihl < 20 or tot < ihl
            frag = (_u16(a, l3 + 6) & 0x3FFF) != 0
            proto = _u8(a, l3 + 9)
            s_lo = np.uint64(_u32(a, l3 + 12))
            d_lo = np.uint64(_u32(a, l3 + 16))
            l4 = l3 + ihl
            l4len = tot - ihl
        else:
            ipver = 6
            s_hi = _u64(a, l3 + 8)
            s_lo = _u64(a, l3 + 16)
            d_hi = _u64(a, l3 + 24)
            d_lo = _u64(a, l3 + 32)
            plen6 = _u16(a, l3 + 4)
            nh = _u8(a, l3 + 6)
            p = l3 + 40
            if plen6 == 0 and nh == 0 and _u8(a, p + 2) == 0xC2 and _u8(a, p + 3) == 4:
                plen6 = _u32(a, p + 4)       # a jumbogram (RFC 2675)
            rem = plen6
            for _ in range(8):
                ok8 = p + 8 <= end
                ext = among(nh, IPV6_EXT) and ok8
                f44 = nh == 44 and ok8
                ah = nh == 51 and ok8
                if not (ext or f44 or ah):
                    break
                if ext:
                    hl = (_u8(a, p + 1) + 1) * 8
                elif f44:
                    hl = 8
                    if (_u16(a, p + 2) & 0xFFF9) != 0:
                        frag = True
                else:
                    hl = (_u8(a, p + 1) + 2) * 4
                nh = _u8(a, p)
                p += hl
                rem -= hl
            bad = rem < 0 or plen6 == 0
            proto = nh
            l4 = p
            l4len = rem
        if bad:
            st[0].malformed += 1
            continue
        if frag:
            st[0].fragments += 1
            continue
        if proto != 6:
            if (proto == 1 and ipver == 4) or (proto == 58 and ipver == 6):
                icmp[nicmp].index = k
                icmp[nicmp].l3 = l3
                icmp[nicmp].l4 = l4
                icmp[nicmp].ipver = ipver
                nicmp += 1
            else:
                st[0].not_tcp += 1
            continue
        if not (l4 + 20 <= end and l4len >= 20):
            st[0].malformed += 1
            continue
        doff = (_u8(a, l4 + 12) >> 4) * 4
        if doff < 20 or doff > l4len:
            st[0].malformed += 1
            continue
        sp = _u16(a, l4)
        dp = _u16(a, l4 + 2)
        flags = _u8(a, l4 + 13)
        plen = l4len - doff
        pay_off = l4 + doff
        pay_len = min(max(end - pay_off, 0), plen)
        st[0].tcp_segments += 1
        if pay_len < plen:
            st[0].snaplen_cut += 1
        gt = s_hi > d_hi or (s_hi == d_hi and (s_lo > d_lo or (s_lo == d_lo and sp > dp)))
        kc[0] = np.uint64(ipver)   # the smaller endpoint first, as flow keys are
        lo_hi, lo_lo, lo_p, hi_hi, hi_lo, hi_p = (d_hi, d_lo, dp, s_hi, s_lo, sp) if gt else \
            (s_hi, s_lo, sp, d_hi, d_lo, dp)
        kc[1] = lo_hi
        kc[2] = lo_lo
        kc[3] = np.uint64(lo_p)
        kc[4] = hi_hi
        kc[5] = hi_lo
        kc[6] = np.uint64(hi_p)
        h = np.uint64(0)
        for x in range(7):
            h = (h ^ kc[x]) * MIX
            h ^= h >> np.uint64(29)
        slot = np.int64(h & np.uint64(mask))
        while True:
            f = table[slot]
            if f < 0:
                f = nflow
                table[slot] = f
                for x in range(7):
                    keys[f, x] = kc[x]
                nflow += 1
                break
            same = True
            for x in range(7):
                if keys[f, x] != kc[x]:
                    same = False
                    break
            if same:
                break
            slot = (slot + 1) & mask
        out = seg[nseg]
        out.frame = frame0 + 1 + k
        out.ts = ts[k]
        out.flow = f
        out.dir = 1 if gt else 0
        out.flags = flags
        out.seq = _u32(a, l4 + 4)
        out.ack = _u32(a, l4 + 8)
        out.plen = plen
        out.pay_off = pay_off
        out.pay_len = pay_len
        out.win = _u16(a, l4 + 14)
        out.ttl = _u8(a, l3 + 8) if ipver == 4 else _u8(a, l3 + 7)
        out.ipid = _u16(a, l3 + 4) if ipver == 4 else -1
        out.mss = 0
        out.wscale = -1
        out.opts = 0
        out.tsval = -1
        out.tsecr = -1
        if doff > 20:
            _options(a, l4 + 20, min(l4 + doff, end), out)
        out.body_end = 1 if pay_len >= 5 and has_end(a, pay_off, pay_off + pay_len) else 0
        if pay_len >= 4:   # read here, while the payload is in this core's cache
            out.head = _u32(a, pay_off)
            out.tail = _u32(a, pay_off + pay_len - 4)
        else:
            out.head = 0
            out.tail = 0
        out.tunnel = -1              # (indices are given by Python, from tseg)
        u = tseg[nseg]
        u.kinds = t.kinds
        if t.kinds:
            st[0].tunneled += 1
            u.id = t.id
            u.outer_version = t.outer_version
            u.src_hi = t.src_hi
            u.src_lo = t.src_lo
            u.dst_hi = t.dst_hi
            u.dst_lo = t.dst_lo
        nseg += 1
    return nseg, nflow, nicmp
