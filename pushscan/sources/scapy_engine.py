"""The scapy engine: scapy's streaming readers (``PcapReader``, pcap and pcapng, never
``rdpcap``) and scapy's dissection of the link layer, the tunnels it knows (MPLS and
Ethernet pseudowires, PPPoE, GRE, ERSPAN, VXLAN, Geneve, GTP-U, IP in IP), IP/IPv6 and
TCP. What scapy cannot dissect (NFLOG, IPoIB, Juniper, Teredo) it counts as not IP."""
from __future__ import annotations

from typing import Any, Iterator

from ..decode.icmp import NUMBERED_QUOTE
from ..decode.layers import Tunnel
from ..decode.options import Options
from ..errors import CaptureDamaged, InputError
from ..model import OPT_OTHER, DecodeStats, SegmentBatch
from .builder import SegmentBuilder, TunnelNotes, ip_int, ip_text
from .capture import CaptureReader

BATCH = 20_000
MAX_FRAME = 262_144          # the largest snapshot length tcpdump and dumpcap take


def load_layers() -> None:
    """Import the scapy modules whose layers this engine reads (they register their
    link types and bindings)."""
    import scapy.contrib.chdlc  # noqa: F401
    import scapy.contrib.erspan  # noqa: F401
    import scapy.contrib.geneve  # noqa: F401
    import scapy.contrib.gtp  # noqa: F401
    import scapy.contrib.mpls  # noqa: F401
    import scapy.layers.dot11  # noqa: F401
    import scapy.layers.inet  # noqa: F401
    import scapy.layers.inet6  # noqa: F401
    import scapy.layers.l2  # noqa: F401
    import scapy.layers.ppp  # noqa: F401
    import scapy.layers.vxlan  # noqa: F401


class ScapyEngine:
    """scapy's own streaming readers and dissectors."""

    name = "scapy"

    def __init__(self, path: str, reader: CaptureReader) -> None:
        load_layers()            # only when this engine is used
        from scapy.utils import PcapReader

        self.format = reader.format
        self.link_types: dict[int, int] = {}
        self.packets = 0
        self.bytes_read = 0
        try:
            self._reader = PcapReader(path)
        except Exception as exc:  # scapy raises its own Scapy_Exception types
            raise InputError(path, f"scapy cannot read it: {exc}") from None

    def batches(self, frame0: int, stats: DecodeStats) -> Iterator[tuple[SegmentBatch, int]]:
        out = SegmentBuilder()
        frames = 0
        while True:
            try:                  # whole frames: scapy's iterator keeps 65,535 bytes of each
                pkt = self._reader.read_packet(size=MAX_FRAME)
            except EOFError:
                break
            except Exception as exc:  # a damaged record: keep what was read
                if frames:
                    yield out.take(), frames
                raise CaptureDamaged(f"scapy stopped reading: {exc}") from None
            frames += 1
            self.packets += 1
            scapy_segments(pkt, frame0 + frames, stats, out)
            if len(out) >= BATCH:
                yield out.take(), frames
                frame0 += frames
                frames = 0
        if frames:
            yield out.take(), frames
        self._note_link_types()

    def _note_link_types(self) -> None:
        """Link types as the reader declares them: the file's for pcap; for pcapng those
        of the interfaces scapy read (it does not say which packet came from which)."""
        if not self.packets:
            return
        declared = [i[0] for i in getattr(self._reader, "interfaces", [])]
        lt = getattr(self._reader, "linktype", None)
        for t in declared or ([lt] if lt is not None else []):
            self.link_types[t] = self.link_types.get(t, 0) + 1


def _scapy_time_ns(t: Any) -> int:
    """Nanoseconds from a scapy packet time: exact for the decimals its readers give; a
    float (its live sniffer: microsecond socket times) is rounded to the microsecond, as
    a pcap file stores it."""
    if isinstance(t, float):
        sec = int(t)
        return sec * 1_000_000_000 + int(round((t - sec) * 1_000_000)) * 1000
    return int(t * 1_000_000_000)


# scapy's names of the TCP option kinds it parses
_SCAPY_KINDS = {"EOL": 0, "NOP": 1, "MSS": 2, "WScale": 3, "SAckOK": 4, "SAck": 5,
                "Timestamp": 8, "AltChkSum": 14, "AltChkSumOpt": 15, "MD5": 19, "Mood": 25,
                "UTO": 28, "AO": 29, "TFO": 34}


def scapy_options(opts: Any) -> Options:
    """``Options`` from scapy's parsed TCP options."""
    mss, wscale, kinds, tsval, tsecr = 0, -1, 0, -1, -1
    for name, value in opts:
        kind = _SCAPY_KINDS.get(name, name) if isinstance(name, str) else name
        if not isinstance(kind, int) or kind in (0, 1):
            continue
        kinds |= (1 << kind) if kind < 31 else OPT_OTHER
        if kind == 2:
            mss = int(value)
        elif kind == 3:
            wscale = int(value)
        elif kind == 8:
            tsval, tsecr = int(value[0]), int(value[1])
    return Options(mss, wscale, kinds, tsval, tsecr)


def scapy_segments(pkt: Any, frame: int, stats: DecodeStats, out: SegmentBuilder) -> None:
    """Dissect one scapy packet (frame number ``frame``) into ``out`` with scapy's layers."""
    from scapy.layers.inet import ICMP, IP, TCP, IPerror
    from scapy.layers.inet6 import (ICMPv6DestUnreach, ICMPv6PacketTooBig, IPerror6, IPv6,
                                    IPv6ExtHdrDestOpt,
                                    IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting)

    ext6 = (IPv6ExtHdrHopByHop, IPv6ExtHdrDestOpt, IPv6ExtHdrRouting)
    stats.packets += 1
    ts = _scapy_time_ns(pkt.time)
    layer, notes = _innermost_ip(pkt, stats)
    if layer is None:
        return
    tunnel = notes.info()
    ip: Any
    if type(layer) is IP:
        ip, version = layer, 4
        if ip.flags.MF or ip.frag:
            stats.fragments += 1
            return
        l4 = ip.payload
        l4len = ip.len - ip.ihl * 4 if ip.len else len(bytes(ip)) - ip.ihl * 4
    elif type(layer) is IPv6:
        ip, version = layer, 6
        l4 = ip.payload
        l4len = ip.plen or _jumbo_length(l4)
        fragment = False
        while isinstance(l4, ext6 + (IPv6ExtHdrFragment,)):
            if isinstance(l4, IPv6ExtHdrFragment):
                fragment = fragment or bool(l4.offset or l4.m)
                l4len -= 8
            else:
                l4len -= (l4.len + 1) * 8
            l4 = l4.payload
        if fragment:
            stats.fragments += 1
            return
    else:
        stats.not_ip += 1
        return
    if type(l4) is TCP:
        hdr = (l4.dataofs or 5) * 4
        plen = l4len - hdr
        if plen < 0:
            stats.malformed += 1
            return
        payload = bytes(l4.payload)[:plen]
        stats.tcp_segments += 1
        if len(payload) < plen:
            stats.snaplen_cut += 1
        out.add(frame, ts, version, ip_int(ip.src), l4.sport, ip_int(ip.dst), l4.dport,
                int(l4.flags), l4.seq, l4.ack, plen, payload, int(l4.window),
                int(ip.ttl if version == 4 else ip.hlim), int(ip.id) if version == 4 else -1,
                scapy_options(l4.options), tunnel)
        if tunnel is not None:
            stats.tunneled += 1
    elif type(l4) is ICMP and l4.type == 3 and IPerror in l4:
        q = l4[IPerror]
        quoted = _quoted_tcp(q, q.proto)
        if quoted is not None:
            stats.icmp_errors += 1
            out.add_icmp(frame, ts, 4, ip_int(q.src), quoted[0], ip_int(q.dst), quoted[1],
                         ip_text(ip.src), 3, int(l4.code), int(l4.nexthopmtu) if l4.code == 4 else 0,
                         quoted[2])
        else:
            stats.not_tcp += 1
    elif type(l4) in (ICMPv6DestUnreach, ICMPv6PacketTooBig) and IPerror6 in l4:
        q = l4[IPerror6]
        quoted = _quoted_tcp(q, q.nh)
        if quoted is not None:
            stats.icmp_errors += 1
            too_big = type(l4) is ICMPv6PacketTooBig
            out.add_icmp(frame, ts, 6, ip_int(q.src), quoted[0], ip_int(q.dst), quoted[1],
                         ip_text(ip.src), 2 if too_big else 1, int(l4.code),
                         int(l4.mtu) if too_big else 0, quoted[2])
        else:
            stats.not_tcp += 1
    else:
        stats.not_tcp += 1


def _quoted_tcp(q: Any, proto: int) -> tuple[int, int, bool] | None:
    """The ports of the TCP header an ICMP error quotes after the IP header ``q``, and
    whether enough of it is quoted for a tcp.stream; None if it quotes no TCP. From the
    bytes: scapy leaves a quote of 9 to 19 TCP bytes undissected."""
    if proto != 6:
        return None
    tcp = q.payload
    raw = tcp.original if getattr(tcp, "original", None) else bytes(tcp)
    if len(raw) < 4:
        return None
    return int.from_bytes(raw[0:2], "big"), int.from_bytes(raw[2:4], "big"), len(raw) >= NUMBERED_QUOTE


# scapy's tunnel layers: (class name, what it is, the field of its id)
_SCAPY_TUNNELS = {"MPLS": (Tunnel.MPLS, "label"), "EoMCW": (Tunnel.PSEUDOWIRE, None),
                  "PPPoE": (Tunnel.PPPOE, "sessionid"), "ERSPAN_I": (Tunnel.ERSPAN, None),
                  "ERSPAN_II": (Tunnel.ERSPAN, "session_id"),
                  "ERSPAN_III": (Tunnel.ERSPAN, "session_id"), "VXLAN": (Tunnel.VXLAN, "vni"),
                  "GENEVE": (Tunnel.GENEVE, "vni"), "GTP_U_Header": (Tunnel.GTPU, "teid")}
_ETH_OVER_GRE = 0x6558


def _innermost_ip(pkt: Any, stats: DecodeStats) -> tuple[Any, TunnelNotes]:
    """The innermost IP/IPv6 layer of a scapy packet (None, counted, if there is none)
    and the tunnels it came through."""
    from scapy.layers.inet import IP
    from scapy.layers.inet6 import IPv6

    notes = TunnelNotes()
    if type(pkt).__name__ == "Raw":        # a link type scapy does not dissect
        stats.unsupported_link += 1
        return None, notes
    ip = None
    layers_since_ip = 0          # tunnel layers between the last IP header and this one
    layer = pkt
    while layer is not None and layer.__class__.__name__ != "NoPayload":
        cls = type(layer)
        if cls is IP or cls is IPv6:
            if ip is not None:
                notes.carrier(4 if type(ip) is IP else 6, ip.src, ip.dst,
                              ip_in_ip=not layers_since_ip)
            ip, layers_since_ip = layer, 0
        else:
            name = cls.__name__
            if name == "Dot11":
                if layer.type != 2 or layer.subtype & 4:
                    stats.wlan_control += 1
                    return None, notes
                if layer.FCfield & 0x40:
                    stats.wlan_protected += 1
                    return None, notes
            elif name == "GRE":
                layers_since_ip += 1
                notes.layer(Tunnel.GRE, int(layer.key) if layer.key_present else None)
                if layer.proto == _ETH_OVER_GRE:
                    notes.layer(Tunnel.GRE_ETHERNET)
            elif name in _SCAPY_TUNNELS:
                layers_since_ip += 1
                kind, field = _SCAPY_TUNNELS[name]
                notes.layer(kind, int(getattr(layer, field)) if field else None)
        layer = layer.payload
    if ip is None:
        stats.not_ip += 1
    return ip, notes


def _jumbo_length(ext: Any) -> int:
    """An IPv6 jumbogram's payload length (RFC 2675: the hop-by-hop Jumbo option), or 0."""
    from scapy.layers.inet6 import IPv6ExtHdrHopByHop, Jumbo

    if isinstance(ext, IPv6ExtHdrHopByHop):
        for opt in ext.options:
            if isinstance(opt, Jumbo):
                return int(opt.jumboplen)
    return 0
