"""From a captured frame to its innermost IP header: link layers and encapsulations.

``peel`` walks one frame: the link layer (Ethernet with any VLAN tags, Linux cooked
SLL/SLL2, BSD loopback, raw IP, 802.11 with radiotap, PPP, Cisco HDLC, NFLOG, IP over
InfiniBand, Juniper Ethernet), then encapsulations in any order and depth: MPLS label
stacks (IPv4/IPv6 after the bottom label, or Ethernet with or without a pseudowire
control word), PPPoE sessions, GRE (with checksum, key, sequence; IP, Ethernet, MPLS or
ERSPAN I/II/III inside), IP in IP (4in4, 6in4, 4in6, 6in6), and UDP tunnels (VXLAN,
Geneve, GTP-U, Teredo). It stops at the first IP header that carries no tunnel and
returns where it is, its version, and what was peeled (``TUNNELED``): the layers' bits,
the innermost tunnel id (VNI, key, label, TEID, session), the outermost tunnel's IP
addresses, and, for frames with no IP at all, why (``layers.Skip``).

One function for both decoders: compiled (numba) in the fast one, plain Python in the
numpy reference, which calls it only for frames that are not plain Ethernet/IP. Reads
are bounded by the buffer (bytes past it read as zero); ``end`` bounds every header.
"""
from __future__ import annotations

import numpy as np

from ..compiled.marker import Array, Record, compiled
from ..model import TunnelInfo, endpoint_ip
from .layers import (BSD_AF_INET6, ET_ERSPAN_I_II, ET_ERSPAN_III, ET_IPV4, ET_IPV6, ET_MPLS,
                     ET_MPLS_MULTICAST, ET_PPPOE_SESSION, ET_TEB, IP_GRE, IP_IN_IP, IP_UDP,
                     IPV6_EXT, IPV6_IN_IP, LT_CHDLC, LT_ETHERNET, LT_IPOIB, LT_JUNIPER_ETHER,
                     LT_LOOP, LT_NFLOG, LT_NULL, LT_PPP, LT_PPP_HDLC, LT_RADIOTAP, LT_SLL,
                     LT_SLL2, MAX_LAYERS, PPP_IPV4, PPP_IPV6, RAW_IP, SUPPORTED, UDP_GENEVE,
                     UDP_GTPU, UDP_TEREDO, UDP_VXLAN, VLAN_TPIDS, Skip, Tunnel)

# What ``peel`` found besides the innermost IP header.
TUNNELED = np.dtype([("kinds", np.int64), ("id", np.int64), ("outer_version", np.int64),
                     ("src_hi", np.uint64), ("src_lo", np.uint64), ("dst_hi", np.uint64),
                     ("dst_lo", np.uint64), ("skip", np.int64), ("end", np.int64)])

# the states of the walk
_ETHER, _ETYPE, _IP4, _IP6, _MPLS, _NIBBLE, _DONE = 0, 1, 2, 3, 4, 5, 6


@compiled()
def u8(a: Array, i: int) -> int:  # pragma: no cover - compiled
    return np.int64(a[i]) if 0 <= i < a.shape[0] else np.int64(0)


@compiled()
def u16(a: Array, i: int) -> int:  # pragma: no cover - compiled
    return (u8(a, i) << 8) | u8(a, i + 1)


@compiled()
def u32(a: Array, i: int) -> int:  # pragma: no cover - compiled
    return (u16(a, i) << 16) | u16(a, i + 2)


@compiled()
def u64(a: Array, i: int) -> int:  # pragma: no cover - compiled
    return (np.uint64(u32(a, i)) << np.uint64(32)) | np.uint64(u32(a, i + 4))


@compiled()
def le16(a: Array, i: int) -> int:  # pragma: no cover - compiled
    return u8(a, i) | (u8(a, i + 1) << 8)


@compiled(inline="always")
def among(v: int, values: tuple[int, ...]) -> bool:  # pragma: no cover - compiled
    for x in values:
        if v == x:
            return True
    return False


@compiled()
def _outer(a: Array, p: int, ver: int, out: Record) -> None:  # pragma: no cover - compiled
    """Note the IP header at ``p`` as the tunnel's outer addresses (the first one only)."""
    if out.outer_version:
        return
    out.outer_version = ver
    if ver == 4:
        out.src_hi = np.uint64(0)
        out.src_lo = np.uint64(u32(a, p + 12))
        out.dst_hi = np.uint64(0)
        out.dst_lo = np.uint64(u32(a, p + 16))
    else:
        out.src_hi = u64(a, p + 8)
        out.src_lo = u64(a, p + 16)
        out.dst_hi = u64(a, p + 24)
        out.dst_lo = u64(a, p + 32)


@compiled()
def _radiotap(a: Array, o: int, end: int, out: Record) -> int:  # pragma: no cover - compiled
    """802.11 behind a radiotap header: the offset of the LLC/SNAP ethertype of a data
    frame, or -1 (``out.skip`` says why)."""
    rlen = le16(a, o + 2)
    present = u8(a, o + 4) | (u8(a, o + 5) << 8) | (u8(a, o + 6) << 16) | (u8(a, o + 7) << 24)
    q = o + 8
    while present & 0x80000000 and q + 4 <= end:   # extended present bitmaps
        present = u8(a, q) | (u8(a, q + 1) << 8) | (u8(a, q + 2) << 16) | (u8(a, q + 3) << 24)
        q += 4
    flags = 0
    f = q
    if u8(a, o + 4) & 1:                 # TSFT, 8 bytes aligned to 8
        f = o + ((f - o + 7) & ~7) + 8
    if u8(a, o + 4) & 2:
        flags = u8(a, f)
    if flags & 0x10:                     # the frame ends with its FCS
        end -= 4
        out.end = end
    h = o + rlen
    if rlen < 8 or h + 2 > end:
        out.skip = Skip.NOT_IP
        return -1
    fc0, fc1 = u8(a, h), u8(a, h + 1)
    ftype, subtype = (fc0 >> 2) & 3, fc0 >> 4
    if ftype != 2 or subtype & 4:        # not data, or a null-data frame
        out.skip = Skip.WLAN_CONTROL
        return -1
    if h + 24 > end:
        out.skip = Skip.NOT_IP
        return -1
    if fc1 & 0x40:
        out.skip = Skip.WLAN_PROTECTED
        return -1
    hl = 30 if (fc1 & 3) == 3 else 24    # four addresses when both To DS and From DS
    if subtype & 8:                      # QoS data: a QoS control field
        hl += 2
        if fc1 & 0x80:                   # +HT control
            hl += 4
    s = h + hl
    if s + 8 > end or u8(a, s) != 0xAA or u8(a, s + 1) != 0xAA or u8(a, s + 2) != 3:
        out.skip = Skip.NOT_IP
        return -1
    return s + 6


@compiled()
def _gre(a: Array, p: int, end: int, out: Record) -> tuple[int, int, int]:  # pragma: no cover
    """A GRE header at ``p``: (next state, its offset, the ethertype for _ETYPE)."""
    flags = u16(a, p)
    if flags & 7 or p + 4 > end:          # GRE version 1 (PPTP) or cut: not followed
        return _DONE, p, 0
    proto = u16(a, p + 2)
    q = p + 4
    if flags & 0x8000:                    # checksum and reserved
        q += 4
    if flags & 0x2000:                    # key
        out.id = u32(a, q)
        q += 4
    seq = flags & 0x1000 != 0
    if seq:
        q += 4
    out.kinds |= Tunnel.GRE
    if proto == ET_ERSPAN_I_II:
        out.kinds |= Tunnel.ERSPAN
        if seq:                           # type II: an 8-byte header, then Ethernet
            out.id = u16(a, q + 2) & 0x3FF
            q += 8
        return _ETHER, q, 0
    if proto == ET_ERSPAN_III:
        out.kinds |= Tunnel.ERSPAN
        out.id = u16(a, q + 2) & 0x3FF
        sub = u16(a, q + 10) & 1          # a platform-specific subheader follows
        return _ETHER, q + 12 + 8 * sub, 0
    if proto == ET_TEB:
        out.kinds |= Tunnel.GRE_ETHERNET
        return _ETHER, q, 0
    return _ETYPE, q, proto


@compiled()
def _udp_tunnel(a: Array, p: int, end: int, out: Record) -> tuple[int, int, int]:  # pragma: no cover
    """A UDP header at ``p`` that may carry a tunnel: (next state, offset, the ethertype
    for _ETYPE), or _DONE."""
    sport, dport = u16(a, p), u16(a, p + 2)
    q = p + 8
    if dport == UDP_VXLAN and q + 8 <= end and u8(a, q) & 0x08:
        out.kinds |= Tunnel.VXLAN
        out.id = u32(a, q + 4) >> 8
        return _ETHER, q + 8, 0
    if dport == UDP_GENEVE and q + 8 <= end and u8(a, q) >> 6 == 0:
        out.kinds |= Tunnel.GENEVE
        out.id = u32(a, q + 4) >> 8
        proto = u16(a, q + 2)
        r = q + 8 + (u8(a, q) & 0x3F) * 4
        if proto == ET_TEB:
            return _ETHER, r, 0
        return _ETYPE, r, proto
    if (dport == UDP_GTPU or sport == UDP_GTPU) and q + 8 <= end:
        flags = u8(a, q)
        if flags >> 5 != 1 or not flags & 0x10 or u8(a, q + 1) != 0xFF:
            return _DONE, p, 0            # not GTP-U version 1 carrying a G-PDU
        out.kinds |= Tunnel.GTPU
        out.id = u32(a, q + 4)
        r = q + 8
        if flags & 7:                     # sequence number, N-PDU, next extension type
            nxt = u8(a, r + 3)
            r += 4
            for _ in range(MAX_LAYERS):
                if not nxt or r >= end:
                    break
                ln = u8(a, r) * 4
                if ln == 0:
                    return _DONE, p, 0
                nxt = u8(a, r + ln - 1)
                r += ln
        return _NIBBLE, r, 0
    if (dport == UDP_TEREDO or sport == UDP_TEREDO) and q + 40 <= end:
        r = q
        for _ in range(2):               # authentication and origin indications
            if u8(a, r) == 0 and u8(a, r + 1) == 1:
                r += 13 + u8(a, r + 2) + u8(a, r + 3)
            elif u8(a, r) == 0 and u8(a, r + 1) == 0:
                r += 8
        if u8(a, r) >> 4 == 6:
            out.kinds |= Tunnel.TEREDO
            return _IP6, r, 0
    return _DONE, p, 0


@compiled()
def _carried(a: Array, p: int, q: int, end: int, ver: int, proto: int, et: int,
             out: Record) -> tuple[int, int, int]:  # pragma: no cover - compiled
    """What the IPv``ver`` header at ``p`` (its payload at ``q``, protocol ``proto``)
    carries: (state, offset, ethertype) of the tunnelled layer, with its outer addresses
    noted; state ``_DONE`` when it is no tunnel (this IP header is the innermost)."""
    if proto == IP_IN_IP or proto == IPV6_IN_IP:
        _outer(a, p, ver, out)
        out.kinds |= Tunnel.IP_IN_IP
        return (_IP4 if proto == IP_IN_IP else _IP6), q, et
    if proto == IP_GRE:
        nxt, r, e = _gre(a, q, end, out)
    elif proto == IP_UDP:
        nxt, r, e = _udp_tunnel(a, q, end, out)
    else:
        return _DONE, p, et
    if nxt == _DONE:
        return _DONE, p, et
    _outer(a, p, ver, out)
    return nxt, r, e


@compiled()
def peel(a: Array, o: int, end: int, lt: int, out: Record) -> tuple[int, int]:  # pragma: no cover
    """The innermost IP header of the frame at a[o:end] of link type ``lt``: (its IP
    version 4 or 6, or 0 for none; its offset). ``out`` (a ``TUNNELED`` record, zeroed
    by the caller but ``end``, the frame's end, and ``id``, -1) gets what was peeled,
    and ``out.skip`` why there is no IP."""
    state = _DONE
    p = o
    et = 0
    if not among(lt, SUPPORTED):
        out.skip = Skip.UNSUPPORTED_LINK
        return 0, o
    if lt == LT_ETHERNET:
        state = _ETHER
    elif lt == LT_SLL:
        if end - o < 16:
            out.skip = Skip.NOT_IP
            return 0, o
        et, p, state = u16(a, o + 14), o + 16, _ETYPE
    elif lt == LT_SLL2:
        if end - o < 20:
            out.skip = Skip.NOT_IP
            return 0, o
        et, p, state = u16(a, o), o + 20, _ETYPE
    elif lt == LT_NULL or lt == LT_LOOP:
        le = u8(a, o) | (u8(a, o + 1) << 8) | (u8(a, o + 2) << 16) | (u8(a, o + 3) << 24)
        be = u32(a, o)
        af = be if lt == LT_LOOP else (le if le < 256 else be)
        p = o + 4
        if end - o < 4:
            state = _DONE
        elif af == 2:
            state = _IP4
        elif among(af, BSD_AF_INET6):
            state = _IP6
    elif among(lt, RAW_IP):
        state = _NIBBLE if end - o >= 1 else _DONE
    elif lt == LT_RADIOTAP:
        s = _radiotap(a, o, end, out)
        if s < 0:
            return 0, o
        end = out.end
        et, p, state = u16(a, s), s + 2, _ETYPE
    elif lt == LT_PPP or lt == LT_PPP_HDLC:
        p = o + 2 if u8(a, o) == 0xFF and u8(a, o + 1) == 0x03 else o
        proto = u8(a, p) if u8(a, p) & 1 else u16(a, p)
        p += 1 if u8(a, p) & 1 else 2
        state = _IP4 if proto == PPP_IPV4 else _IP6 if proto == PPP_IPV6 else _DONE
    elif lt == LT_CHDLC:
        et, p, state = u16(a, o + 2), o + 4, _ETYPE
    elif lt == LT_NFLOG:
        family = u8(a, o)
        q = o + 4
        state = _DONE
        while q + 4 <= end:              # TLVs, lengths and types in the host's order
            ln, kind = le16(a, q), le16(a, q + 2)
            if ln < 4:
                break
            if kind == 9:                # the packet
                p, end = q + 4, min(end, q + ln)
                out.end = end
                state = _IP4 if family == 2 else _IP6 if family == 10 else _DONE
                break
            q += (ln + 3) & ~3
    elif lt == LT_IPOIB:
        et, p, state = u16(a, o + 40), o + 44, _ETYPE
    elif lt == LT_JUNIPER_ETHER:
        if u8(a, o) != 0x4D or u8(a, o + 1) != 0x47 or u8(a, o + 2) != 0x43:
            out.skip = Skip.NOT_IP
            return 0, o
        flags = u8(a, o + 3)
        p = o + 4
        if flags & 0x80:                 # extensions
            p += 2 + u16(a, p)
        state = _NIBBLE if flags & 0x02 else _ETHER
    for _ in range(MAX_LAYERS):
        if state == _ETHER:
            if p + 14 > end:
                break
            et, p, state = u16(a, p + 12), p + 14, _ETYPE
        elif state == _ETYPE:
            if among(et, VLAN_TPIDS):
                if p + 4 > end:
                    break
                et, p = u16(a, p + 2), p + 4
            elif et == ET_IPV4:
                state = _IP4
            elif et == ET_IPV6:
                state = _IP6
            elif et == ET_MPLS or et == ET_MPLS_MULTICAST:
                state = _MPLS
            elif et == ET_PPPOE_SESSION:
                if p + 8 > end:
                    break
                out.kinds |= Tunnel.PPPOE
                out.id = u16(a, p + 2)
                proto = u16(a, p + 6)
                p += 8
                if proto == PPP_IPV4:
                    state = _IP4
                elif proto == PPP_IPV6:
                    state = _IP6
                else:
                    break
            elif et == ET_TEB:
                state = _ETHER
            else:
                break
        elif state == _MPLS:
            out.kinds |= Tunnel.MPLS
            bottom = False
            for _ in range(MAX_LAYERS):
                if p + 4 > end:
                    break
                entry = u32(a, p)
                p += 4
                if entry & 0x100:
                    out.id = entry >> 12
                    bottom = True
                    break
            if not bottom or p >= end:
                break
            nib = u8(a, p) >> 4
            if nib == 4:
                state = _IP4
            elif nib == 6:
                state = _IP6
            else:                        # Ethernet, after a control word (first nibble 0)
                out.kinds |= Tunnel.PSEUDOWIRE
                if nib == 0:
                    p += 4
                state = _ETHER
        elif state == _NIBBLE:
            nib = u8(a, p) >> 4
            state = _IP4 if nib == 4 else _IP6 if nib == 6 else _DONE
            if state == _DONE:
                break
        elif state == _IP4:
            if p + 20 > end or u8(a, p) >> 4 != 4:
                return 4, p
            ihl = (u8(a, p) & 15) * 4
            if u16(a, p + 6) & 0x3FFF or ihl < 20:
                return 4, p              # a fragment (or damage): the IP header is the end
            proto = u8(a, p + 9)
            q = p + ihl
            nxt, r, et = _carried(a, p, q, end, 4, proto, et, out)
            if nxt == _DONE:
                return 4, p
            state, p = nxt, r
        elif state == _IP6:
            if p + 40 > end or u8(a, p) >> 4 != 6:
                return 6, p
            nh = u8(a, p + 6)
            q = p + 40
            for _ in range(8):           # extension headers (a fragment ends the walk)
                if among(nh, IPV6_EXT) and q + 8 <= end:
                    nh, q = u8(a, q), q + (u8(a, q + 1) + 1) * 8
                elif nh == 51 and q + 8 <= end:
                    nh, q = u8(a, q), q + (u8(a, q + 1) + 2) * 4
                else:
                    break
            nxt, r, et = _carried(a, p, q, end, 6, nh, et, out)
            if nxt == _DONE:
                return 6, p
            state, p = nxt, r
        else:
            break
    out.skip = Skip.NOT_IP
    return 0, p


def tunnel_index(tunneled: np.ndarray) -> tuple[np.ndarray, list[TunnelInfo]]:
    """For ``TUNNELED`` records (one per segment): each segment's index into the list of
    distinct tunnels (-1: none), and that list, in order of first appearance."""
    index = np.full(len(tunneled), -1, dtype=np.int64)
    found: dict[tuple[int, ...], int] = {}
    tunnels: list[TunnelInfo] = []
    for k in np.flatnonzero(tunneled["kinds"]).tolist():
        t = tunneled[k]
        key = (int(t["kinds"]), int(t["id"]), int(t["outer_version"]), int(t["src_hi"]),
               int(t["src_lo"]), int(t["dst_hi"]), int(t["dst_lo"]))
        at = found.get(key)
        if at is None:
            v = key[2]
            at = found[key] = len(tunnels)
            tunnels.append(TunnelInfo(key[0], key[1], v,
                                      endpoint_ip(v, key[3], key[4]) if v else "",
                                      endpoint_ip(v, key[5], key[6]) if v else ""))
        index[k] = at
    return index, tunnels
