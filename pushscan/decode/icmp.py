"""ICMP and ICMPv6 errors that quote a TCP segment, for every engine."""
from __future__ import annotations

import ipaddress
from typing import Optional

from ..model import IcmpError, flow_key

_UNREACH = {(4, 0): "network unreachable", (4, 1): "host unreachable", (4, 2): "protocol unreachable",
            (4, 3): "port unreachable", (4, 4): "fragmentation needed", (4, 9): "network prohibited",
            (4, 10): "host prohibited", (4, 13): "communication administratively prohibited",
            (6, 0): "no route to destination", (6, 1): "communication administratively prohibited",
            (6, 3): "address unreachable", (6, 4): "port unreachable"}


def icmp_text(version: int, code: int, kind: int = -1, mtu: int = 0) -> str:
    """How an ICMP(v6) error (destination unreachable, or ICMPv6 packet too big) is named
    in reports."""
    if version == 6 and kind == 2:
        return f"ICMPv6 packet too big (MTU {mtu})"
    what = _UNREACH.get((version, code), f"code {code}")
    if version == 4 and code == 4 and mtu:
        what += f", next-hop MTU {mtu}"
    return f"ICMP{'v6' if version == 6 else ''} destination unreachable ({what})"


FRAG_NEEDED = {(4, 3, 4), (6, 2, 0)}
# Bytes of a quoted TCP header from which Wireshark (4.0) dissects it far enough to give
# its conversation a tcp.stream: the ports, both sequence numbers, offset, flags, window.
NUMBERED_QUOTE = 16   # (IP version, type, code): the path's MTU is smaller


def icmp_origin(data: bytes, l3: int, ver: int) -> str:
    """The source address of the IP header at ``data[l3:]`` (the ICMP message's sender)."""
    if ver == 4:
        return str(ipaddress.IPv4Address(data[l3 + 12:l3 + 16]))
    return str(ipaddress.IPv6Address(data[l3 + 8:l3 + 24]))


def icmp_error(data: bytes, p: int, end: int, ver: int, frame: int, ts: int,
               l3: int = -1) -> Optional[IcmpError]:
    """The destination-unreachable at ``data[p:end]`` (an ICMP message of IP version
    ``ver``, in an IP header at ``l3``) if it quotes a TCP segment, else None."""
    if p + 8 > end:
        return None
    typ, code = data[p], data[p + 1]
    mtu = int.from_bytes(data[p + 6:p + 8], "big") if (ver, typ) == (4, 3) and code == 4 \
        else int.from_bytes(data[p + 4:p + 8], "big") if (ver, typ) == (6, 2) else 0
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
    else:
        if typ not in (1, 2) or q + 40 > end or data[q] >> 4 != 6 or data[q + 6] != 6 or q + 44 > end:
            return None
        src = int.from_bytes(data[q + 8:q + 24], "big")
        dst = int.from_bytes(data[q + 24:q + 40], "big")
        t = q + 40
    sport = int.from_bytes(data[t:t + 2], "big")
    dport = int.from_bytes(data[t + 2:t + 4], "big")
    key, d = flow_key(ver, src, sport, dst, dport)
    return IcmpError(frame, ts, key, d, icmp_text(ver, code, typ, mtu),
                     icmp_origin(data, l3, ver) if l3 >= 0 else "", typ, code, mtu,
                     end - t >= NUMBERED_QUOTE)
