"""Compiled decoder (numba): the same decoding as ``decode.decode``, one pass per packet.

``decode.decode`` (numpy, column by column) is the reference; this one gives the same
segments, flows, MSS options, ICMP errors and counters (tests compare the two on every
capture and on mutated ones), without temporary arrays or a padded copy of the buffer.
It is used with the tracker's fast lane, for big inputs. Bytes past the end of the
buffer read as zero, as the reference's padding does. Flows get their index from an
open-addressing hash table of the seven key columns, in order of first appearance.
"""
from __future__ import annotations

import numpy as np

from .compiled import compiled, kernels
from .decode import _icmp_error, linktype_name  # noqa: F401  (linktype_name: re-export)
from .model import DecodeStats, SegmentBatch
from .sources.capture import RawBatch

# stats slots
(S_NOT_IP, S_NOT_TCP, S_FRAG, S_MALFORMED, S_UNSUPPORTED, S_SNAPCUT, S_TCP) = range(7)
SUPPORTED = (0, 1, 12, 14, 101, 108, 113, 228, 229, 276)


@compiled()
def _u8(a, i):  # pragma: no cover - compiled
    return np.int64(a[i]) if 0 <= i < a.shape[0] else np.int64(0)


@compiled()
def _u16(a, i):  # pragma: no cover - compiled
    return (_u8(a, i) << 8) | _u8(a, i + 1)


@compiled()
def _u32(a, i):  # pragma: no cover - compiled
    return (_u16(a, i) << 16) | _u16(a, i + 2)


@compiled()
def _u64(a, i):  # pragma: no cover - compiled
    return (np.uint64(_u32(a, i)) << np.uint64(32)) | np.uint64(_u32(a, i + 4))


@compiled()
def has_end(a, lo, hi):  # pragma: no cover - compiled
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
def _mss(a, p, end):  # pragma: no cover - compiled
    """decode.mss_option"""
    while p < end:
        kind = a[p]
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
        if kind == 2 and ln == 4:
            return (np.int64(a[p + 2]) << 8) | a[p + 3]
        p += ln
    return 0


@compiled()
def _kernel(a, off, cap, lt, ts, frame0, cols, keys, table, icmp, stats, kc):  # pragma: no cover
    """Decode packets; returns (segments, flows, icmp packets). ``cols`` gets the
    SegmentBatch columns (14 rows: the twelfth tells whether the payload holds CRLF.CRLF,
    the last two hold its first and last 4 bytes, big-endian: the fast lane counts SMTP
    body segments with them, without reading the payload again), ``keys`` the flows' key columns, ``icmp`` the
    indices of ICMP packets (with their l4 offset and IP version) for Python; ``kc`` is
    scratch space for a flow key (compiled without reference counting, as tcp/kernel.py
    explains, the kernel allocates nothing)."""
    n = off.shape[0]
    mask = table.shape[0] - 1
    table[:] = -1
    nseg = 0
    nflow = 0
    nicmp = 0
    MIX = np.uint64(0x9E3779B97F4A7C15)
    for k in range(n):
        o = off[k]
        end = o + cap[k]
        t = lt[k]
        et = 0
        l3 = o
        supported = False
        for x in range(len(SUPPORTED)):
            if t == SUPPORTED[x]:
                supported = True
        if t == 1:
            et = _u16(a, o + 12) if cap[k] >= 14 else 0
            l3 = o + 14
            for _ in range(3):
                if (et == 0x8100 or et == 0x88A8 or et == 0x9100) and l3 + 4 <= end:
                    et = _u16(a, l3 + 2)
                    l3 += 4
                else:
                    break
        elif t == 113:
            et = _u16(a, o + 14) if cap[k] >= 16 else 0
            l3 = o + 16
        elif t == 276:
            et = _u16(a, o) if cap[k] >= 20 else 0
            l3 = o + 20
        elif t == 0 or t == 108:
            le = _u8(a, o) | (_u8(a, o + 1) << 8) | (_u8(a, o + 2) << 16) | (_u8(a, o + 3) << 24)
            be = _u32(a, o)
            af = be if t == 108 else (le if le < 256 else be)
            if cap[k] < 4:
                et = 0
            elif af == 2:
                et = 0x0800
            elif af == 10 or af == 24 or af == 28 or af == 30:
                et = 0x86DD
            else:
                et = 0
            l3 = o + 4
        elif t == 101 or t == 228 or t == 229 or t == 12 or t == 14:
            ver = _u8(a, o) >> 4
            et = 0 if cap[k] < 1 else (0x0800 if ver == 4 else (0x86DD if ver == 6 else 0))
        if not supported:
            stats[S_UNSUPPORTED] += 1
        v4 = et == 0x0800 and l3 + 20 <= end
        v6 = et == 0x86DD and l3 + 40 <= end
        if not (v4 or v6):
            if supported:
                stats[S_NOT_IP] += 1
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
            rem = plen6
            for _ in range(8):
                ok8 = p + 8 <= end
                ext = (nh == 0 or nh == 43 or nh == 60) and ok8
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
            stats[S_MALFORMED] += 1
            continue
        if frag:
            stats[S_FRAG] += 1
            continue
        if proto != 6:
            if (proto == 1 and ipver == 4) or (proto == 58 and ipver == 6):
                icmp[nicmp, 0] = k
                icmp[nicmp, 1] = l4
                icmp[nicmp, 2] = ipver
                nicmp += 1
            else:
                stats[S_NOT_TCP] += 1
            continue
        if not (l4 + 20 <= end and l4len >= 20):
            stats[S_MALFORMED] += 1
            continue
        doff = (_u8(a, l4 + 12) >> 4) * 4
        if doff < 20 or doff > l4len:
            stats[S_MALFORMED] += 1
            continue
        sp = _u16(a, l4)
        dp = _u16(a, l4 + 2)
        flags = _u8(a, l4 + 13)
        plen = l4len - doff
        pay_off = l4 + doff
        pay_len = min(max(end - pay_off, 0), plen)
        stats[S_TCP] += 1
        if pay_len < plen:
            stats[S_SNAPCUT] += 1
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
        mss = 0
        if flags & 0x02 and doff > 20:
            mss = _mss(a, l4 + 20, min(l4 + doff, end))
        cols[0, nseg] = frame0 + 1 + k
        cols[1, nseg] = ts[k]
        cols[2, nseg] = f
        cols[3, nseg] = 1 if gt else 0
        cols[4, nseg] = flags
        cols[5, nseg] = _u32(a, l4 + 4)
        cols[6, nseg] = _u32(a, l4 + 8)
        cols[7, nseg] = plen
        cols[8, nseg] = pay_off
        cols[9, nseg] = pay_len
        cols[10, nseg] = mss
        cols[11, nseg] = 1 if pay_len >= 5 and has_end(a, pay_off, pay_off + pay_len) else 0
        if pay_len >= 4:   # read here, while the payload is in this core's cache
            cols[12, nseg] = _u32(a, pay_off)
            cols[13, nseg] = _u32(a, pay_off + pay_len - 4)
        else:
            cols[12, nseg] = 0
            cols[13, nseg] = 0
        nseg += 1
    return nseg, nflow, nicmp


def decode_fast(raw: RawBatch, frame0: int, stats: DecodeStats) -> SegmentBatch:
    """``decode.decode``, compiled. Same batch content (flow indices may differ)."""
    n = len(raw)
    stats.packets += n
    a = np.frombuffer(raw.data, dtype=np.uint8)
    cols = np.empty((14, n), dtype=np.int64)
    keys = np.empty((max(n, 1), 7), dtype=np.uint64)
    size = 1 << max(4, (2 * n).bit_length())
    table = np.empty(size, dtype=np.int64)
    icmp = np.empty((max(n, 1), 3), dtype=np.int64)
    st = np.zeros(7, dtype=np.int64)
    nseg, nflow, nicmp = kernels().decode(a, raw.off, raw.caplen, raw.linktype, raw.ts,
                                          frame0, cols, keys, table, icmp, st,
                                          np.empty(7, dtype=np.uint64))
    stats.not_ip += int(st[S_NOT_IP])
    stats.not_tcp += int(st[S_NOT_TCP])
    stats.fragments += int(st[S_FRAG])
    stats.malformed += int(st[S_MALFORMED])
    stats.unsupported_link += int(st[S_UNSUPPORTED])
    stats.snaplen_cut += int(st[S_SNAPCUT])
    stats.tcp_segments += int(st[S_TCP])
    batch = SegmentBatch(data=raw.data)
    for k, l4, ver in icmp[:nicmp].tolist():
        err = _icmp_error(raw.data, l4, int(raw.off[k] + raw.caplen[k]), ver, frame0 + 1 + k,
                          int(raw.ts[k]))
        if err is not None:
            stats.icmp_errors += 1
            batch.icmp.append(err)
    if nseg:
        if nseg < n:   # one array layout for the tracker kernel (one compiled version)
            cols = np.ascontiguousarray(cols[:, :nseg])
        batch.cols = cols
        batch.flows = [tuple(row) for row in keys[:nflow].tolist()]
        for k in np.flatnonzero(cols[10]).tolist():
            batch.mss[k] = int(cols[10, k])
    return batch
