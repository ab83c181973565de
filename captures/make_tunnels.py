"""Generate the tunnel and link-type captures (tun_*.pcap) with scapy.

One small SMTP session, always the same dialogue, is built once and then written once
per encapsulation (MPLS, PPPoE, GRE, ERSPAN, VXLAN, Geneve, GTP-U, IP-in-IP, Teredo,
nestings of these) and per link type (802.11 + radiotap, PPP, Cisco HDLC, NFLOG,
IPoIB, Juniper Ethernet, an IPv6 jumbogram), each into its own classic pcap file with
the right link type in the global header. The ground truth of every file (frames, TCP
streams, data and PSH segments per direction, tunnel parameters) is written next to
them as ``tunnels_truth.json`` and as README table lines in
``make_tunnels.README.part``.

Deterministic: fixed timestamps, fixed addresses and identifiers, no random field;
running it again writes the same bytes.

    python captures/make_tunnels.py [OUTDIR]           # write the files (default: here)
    python captures/make_tunnels.py --check [OUTDIR]   # write them, then compare with tshark

Inner session: client 192.0.2.10:40000, server 198.51.100.25:25 (IPv4), or
2001:db8::10 -> 2001:db8:1::25 port 25 for the cases that carry IPv6 inside.

``--check`` runs tshark on every file (no preferences, no decode-as) and compares its
frames, tcp.stream values, data/PSH counts per direction, innermost addresses and
``-z conv,tcp`` with the truth; checked with tshark 4.0. What tshark needs, and so
what these files do:
- an Ethernet pseudowire after an MPLS label is found by a heuristic that takes the
  control word only if the inner MAC addresses have known vendor OUIs (MAC_HOST);
- LINKTYPE_IPOIB (242) is read as a 40-byte pseudo header before the 4-byte RFC 4391
  header (a file with only the 4-byte header is not dissected past IPoIB);
- NFLOG TLV lengths and types are host-order: written little-endian here.
"""
from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III
from scapy.contrib.geneve import GENEVE, GeneveOptions
from scapy.contrib.gtp import GTP_U_Header, GTPPDUSessionContainer
from scapy.contrib.mpls import MPLS
from scapy.layers.dot11 import (Dot11, Dot11AssoReq, Dot11AssoResp, Dot11Auth, Dot11Beacon,
                                Dot11Elt, Dot11ProbeReq, Dot11ProbeResp, Dot11QoS, RadioTap)
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.inet6 import IPv6, IPv6ExtHdrHopByHop, Jumbo
from scapy.layers.l2 import GRE, LLC, SNAP, Dot1Q, Ether
from scapy.layers.ppp import PPP, PPPoE
from scapy.layers.vxlan import VXLAN
from scapy.packet import Packet, Raw

# --------------------------------------------------------------------------------------
# Fixed parameters
# --------------------------------------------------------------------------------------

C, S = 0, 1                              # sides: client, server
T0_US = 1_790_200_000 * 1_000_000        # capture start, microseconds since the epoch
MSS = 1400                               # announced by both ends, used for the body

INNER4 = ("192.0.2.10", "198.51.100.25")
INNER6 = ("2001:db8::10", "2001:db8:1::25")
PORTS = (40000, 25)

# Outer (tunnel) end points: the client-side end first. Never equal to the inner ones.
OUTER4 = ("10.1.1.1", "10.2.2.2")
OUTER6 = ("2001:db8:a::1", "2001:db8:b::2")
MID4 = ("172.16.0.1", "172.16.0.2")      # the middle layer of a double tunnel

# Link-layer addresses: the inner hosts, and the routers / tunnel ends outside them.
# The inner hosts have vendor OUIs (Intel, VMware): Wireshark's Ethernet-pseudowire
# heuristic after an MPLS label only takes a control word when the bytes after it look
# like two MAC addresses of known manufacturers.
MAC_HOST = ("00:1b:21:3c:4d:0a", "00:0c:29:5e:6f:19")
MAC_OUTER = ("02:00:00:01:01:01", "02:00:00:02:02:02")
# 802.11: the client is a station, the server sits behind the AP's gateway.
WLAN_STA, WLAN_BSSID, WLAN_GW = "02:00:00:00:aa:0a", "02:00:00:00:bb:01", "02:00:00:00:cc:fe"

LINKTYPE = {"ether": 1, "ppp": 9, "ppp_hdlc": 50, "chdlc": 104, "radiotap": 127,
            "juniper_ether": 178, "nflog": 239, "ipoib": 242}


# --------------------------------------------------------------------------------------
# The inner SMTP session
# --------------------------------------------------------------------------------------

@dataclass
class Seg:
    """One inner TCP segment: when, which side sent it, and its full IP packet."""
    t_us: int
    side: int
    ip: bytes
    v6: bool
    tcp_len: int
    psh: bool


def smtp_body(size: int) -> bytes:
    """A message of about ``size`` bytes (headers, numbered lines), ending in CRLF.CRLF."""
    head = (b"From: alice@example.org\r\nTo: bob@example.net\r\n"
            b"Subject: tunnel test\r\nMessage-ID: <tunnel-test@example.org>\r\n\r\n")
    lines = []
    n = 0
    while len(head) + sum(map(len, lines)) < size - 5:
        n += 1
        lines.append(b"line %05d of the tunnelled test message, padded to a fixed width.\r\n" % n)
    body = head + b"".join(lines)
    return body[:size - 5] + b"\r\n.\r\n"


class Session:
    """Builds the fixed SMTP dialogue as a list of inner IP packets (``Seg``).

    ``big_body`` sends the whole body as one segment: with IPv6 and a body over 65535
    bytes that segment is an IPv6 jumbogram (hop-by-hop Jumbo Payload option, payload
    length 0), as Linux BIG TCP hands it to a capture.
    """

    def __init__(self, v6: bool = False, body_size: int = 3000, big_body: bool = False) -> None:
        self.v6 = v6
        self.addr = INNER6 if v6 else INNER4
        self.seq = [0x1000_0000, 0x5000_0000]
        self.t_us = T0_US
        self.ip_id = [0x100, 0x200]
        self.segs: list[Seg] = []
        self._dialogue(smtp_body(body_size), big_body)

    def _ip(self, side: int) -> Packet:
        src, dst = self.addr[side], self.addr[side ^ 1]
        if self.v6:
            return IPv6(src=src, dst=dst, nh=6, hlim=64, tc=0, fl=0)
        self.ip_id[side] += 1
        return IP(src=src, dst=dst, id=self.ip_id[side], ttl=64, flags="DF", proto=6)

    def pkt(self, side: int, flags: str, data: bytes = b"", dt_us: int = 1000,
            options: list | None = None, jumbo: bool = False) -> None:
        self.t_us += dt_us
        other = side ^ 1
        tcp = TCP(sport=PORTS[side], dport=PORTS[other], flags=flags,
                  seq=self.seq[side], ack=self.seq[other] if "A" in flags else 0,
                  window=64240, options=options or [])
        l4 = tcp / Raw(data) if data else tcp
        if jumbo:
            # Jumbo Payload Length counts everything after the fixed IPv6 header,
            # the hop-by-hop header (8 bytes) included; the IPv6 payload length is 0.
            plen = 8 + len(l4)
            hbh = IPv6ExtHdrHopByHop(nh=6, options=[Jumbo(jumboplen=plen)])
            ip = IPv6(src=self.addr[side], dst=self.addr[other], nh=0, hlim=64, plen=0)
            raw = bytes(ip / hbh / l4)
            assert len(raw) == 40 + plen and raw[4:6] == b"\0\0"
        else:
            raw = bytes(self._ip(side) / l4)
        self.segs.append(Seg(self.t_us, side, raw, self.v6, len(data), "P" in flags))
        self.seq[side] += len(data) + ("S" in flags) + ("F" in flags)

    def _dialogue(self, body: bytes, big_body: bool) -> None:
        mss = [("MSS", MSS)]
        self.pkt(C, "S", options=mss)
        self.pkt(S, "SA", options=mss, dt_us=300)
        self.pkt(C, "A", dt_us=300)
        self.pkt(S, "PA", b"220 mx.example.net ESMTP ready\r\n", dt_us=20_000)
        self.pkt(C, "A", dt_us=200)
        turns = [
            (b"EHLO client.example.org\r\n",
             b"250-mx.example.net\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n"),
            (b"MAIL FROM:<alice@example.org>\r\n", b"250 2.1.0 Ok\r\n"),
            (b"RCPT TO:<bob@example.net>\r\n", b"250 2.1.5 Ok\r\n"),
            (b"DATA\r\n", b"354 End data with <CR><LF>.<CR><LF>\r\n"),
        ]
        for cmd, reply in turns:
            self.pkt(C, "PA", cmd, dt_us=1000)
            self.pkt(S, "PA", reply, dt_us=800)
        if big_body:
            self.pkt(C, "PA", body, dt_us=1000, jumbo=self.v6 and len(body) + 20 > 0xFFFF)
        else:
            # MSS-sized segments, PSH only on the last; the server ACKs every second one.
            chunks = [body[i:i + MSS] for i in range(0, len(body), MSS)]
            for n, chunk in enumerate(chunks, 1):
                last = n == len(chunks)
                self.pkt(C, "PA" if last else "A", chunk, dt_us=1000 if n == 1 else 100)
                if n % 2 == 0 and not last:
                    self.pkt(S, "A", dt_us=150)
        self.pkt(S, "PA", b"250 2.0.0 Ok: queued as 4242\r\n", dt_us=5000)
        self.pkt(C, "PA", b"QUIT\r\n", dt_us=1000)
        self.pkt(S, "PA", b"221 2.0.0 Bye\r\n", dt_us=800)
        self.pkt(S, "FA", dt_us=100)
        self.pkt(C, "FA", dt_us=400)
        self.pkt(S, "A", dt_us=300)

    def counts(self) -> dict:
        """Data / PSH segment counts per direction, as tshark counts them."""
        out = {}
        for side, key in ((C, "c2s"), (S, "s2c")):
            mine = [s for s in self.segs if s.side == side]
            out[key] = {"data": sum(s.tcp_len > 0 for s in mine), "psh": sum(s.psh for s in mine)}
        return out


# --------------------------------------------------------------------------------------
# Encapsulation helpers (each returns bytes)
# --------------------------------------------------------------------------------------

def ether(side: int, etype: int, payload: bytes, macs: tuple[str, str] = MAC_OUTER) -> bytes:
    """An Ethernet II frame from the ``side`` end to the other one (no FCS, no padding)."""
    return bytes(Ether(src=macs[side], dst=macs[side ^ 1], type=etype) / Raw(payload))


def ethertype_of(seg: Seg) -> int:
    return 0x86DD if seg.v6 else 0x0800


def inner_ether(seg: Seg) -> bytes:
    """The inner IP packet in the Ethernet frame of the inner hosts (for L2 tunnels)."""
    return ether(seg.side, ethertype_of(seg), seg.ip, MAC_HOST)


def mpls(labels: list[int], payload: bytes) -> bytes:
    """An MPLS label stack (top label first); the bottom entry gets the S bit."""
    out = b""
    for n, label in enumerate(labels):
        out += bytes(MPLS(label=label, cos=0, s=int(n == len(labels) - 1), ttl=64))
    return out + payload


PW_CONTROL_WORD = b"\0\0\0\0"            # RFC 4448 Ethernet pseudowire control word


class Outer:
    """Outer IPv4/IPv6 headers between the two tunnel ends (client side = index 0).

    ``fixed_direction`` makes every packet go from end 0 to end 1 whatever the inner
    direction (a mirror session such as ERSPAN). The IPv4 identification counts up.
    """

    def __init__(self, addrs: tuple[str, str], fixed_direction: bool = False) -> None:
        self.addrs = addrs
        self.v6 = ":" in addrs[0]
        self.fixed = fixed_direction
        self.ident = 0x4000

    def ip(self, side: int, proto: int, payload: bytes) -> bytes:
        if self.fixed:
            side = C
        src, dst = self.addrs[side], self.addrs[side ^ 1]
        if self.v6:
            return bytes(IPv6(src=src, dst=dst, nh=proto, hlim=64, tc=0, fl=0) / Raw(payload))
        self.ident += 1
        return bytes(IP(src=src, dst=dst, proto=proto, id=self.ident, ttl=64) / Raw(payload))

    def udp(self, side: int, sport: int, dport: int, payload: bytes) -> bytes:
        """UDP over the outer IP (checksum computed, as IPv6 requires)."""
        if self.fixed:
            side = C
        src, dst = self.addrs[side], self.addrs[side ^ 1]
        if self.v6:
            ip: Packet = IPv6(src=src, dst=dst, nh=17, hlim=64, tc=0, fl=0)
        else:
            self.ident += 1
            ip = IP(src=src, dst=dst, proto=17, id=self.ident, ttl=64)
        return bytes(ip / UDP(sport=sport, dport=dport) / Raw(payload))

    def ether_ip(self, side: int, proto: int, payload: bytes) -> bytes:
        etype = 0x86DD if self.v6 else 0x0800
        return ether(C if self.fixed else side, etype, self.ip(side, proto, payload))

    def ether_udp(self, side: int, sport: int, dport: int, payload: bytes) -> bytes:
        etype = 0x86DD if self.v6 else 0x0800
        return ether(C if self.fixed else side, etype, self.udp(side, sport, dport, payload))


def gre(proto: int, payload: bytes, key: int | None = None, seq: int | None = None) -> bytes:
    """A GRE header (RFC 2784/2890): optional key and sequence number."""
    hdr = GRE(proto=proto, key_present=int(key is not None), seqnum_present=int(seq is not None),
              chksum_present=0, routing_present=0, version=0)
    if key is not None:
        hdr.key = key
    if seq is not None:
        hdr.sequence_number = seq
    return bytes(hdr / Raw(payload))


class Counter:
    """Per-direction counters (GRE and GTP-U sequence numbers, 802.11 sequence control)."""

    def __init__(self, start: int = 0) -> None:
        self.n = [start, start]

    def next(self, side: int) -> int:
        self.n[side] += 1
        return self.n[side] - 1


def vxlan(vni: int, payload: bytes) -> bytes:
    return bytes(VXLAN(flags=0x08, vni=vni) / Raw(payload))


def vxlan_sport(side: int) -> int:
    """VXLAN/Geneve source ports are a hash of the inner flow; fixed per direction here."""
    return (52011, 58920)[side]


# --------------------------------------------------------------------------------------
# The cases: one per file
# --------------------------------------------------------------------------------------

Frames = list[tuple[int, bytes]]


@dataclass
class Case:
    file: str
    linktype: str
    how: str                             # README: how it was made
    tunnel: dict                         # kind, outer_src, outer_dst, id (+ extras)
    build: Callable[[Session], Frames]
    v6: bool = False                     # inner IPv6
    big_body: bool = False
    no_session: bool = False             # no TCP at all in the file
    session: Session | None = field(default=None, repr=False)


def per_packet(fn: Callable[[Seg], bytes]) -> Callable[[Session], Frames]:
    """A build function that wraps each inner packet into one frame."""
    def build(sess: Session) -> Frames:
        return [(s.t_us, fn(s)) for s in sess.segs]
    return build


def tunnel(kind: str, outer: tuple[str, str] | None, ident=None, **extra) -> dict:
    d = {"kind": kind, "outer_src": outer[0] if outer else None,
         "outer_dst": outer[1] if outer else None, "id": ident}
    d.update(extra)
    return d


# ---- MPLS ---------------------------------------------------------------------------

def mpls_case(labels: list[int], control_word: bool = False) -> Callable[[Session], Frames]:
    def frame(s: Seg) -> bytes:
        payload = PW_CONTROL_WORD + inner_ether(s) if control_word else s.ip
        return ether(s.side, 0x8847, mpls(labels, payload))
    return per_packet(frame)


# ---- PPPoE --------------------------------------------------------------------------

PPPOE_SESSION = 0x0042


def pppoe_frame(s: Seg) -> bytes:
    ppp = bytes(PPP(proto=0x0057 if s.v6 else 0x0021)) + s.ip
    return ether(s.side, 0x8864, bytes(PPPoE(version=1, type=1, code=0,
                                             sessionid=PPPOE_SESSION) / Raw(ppp)))


# ---- GRE ----------------------------------------------------------------------------

def gre_plain() -> Callable[[Session], Frames]:
    out = Outer(OUTER4)
    return per_packet(lambda s: out.ether_ip(s.side, 47, gre(ethertype_of(s), s.ip)))


GRE_KEY = 0x0000_2A2A


def gre_key_seq() -> Callable[[Session], Frames]:
    out, seqs = Outer(OUTER4), Counter(1)
    return per_packet(lambda s: out.ether_ip(
        s.side, 47, gre(ethertype_of(s), s.ip, key=GRE_KEY, seq=seqs.next(s.side))))


def gre_teb() -> Callable[[Session], Frames]:
    out = Outer(OUTER4)
    return per_packet(lambda s: out.ether_ip(s.side, 47, gre(0x6558, inner_ether(s))))


# ---- ERSPAN (a mirror: every packet goes from the switch to the collector) ----------

ERSPAN_SESSION = 0x17                    # 10-bit session ID


def erspan2() -> Callable[[Session], Frames]:
    out, seqs = Outer(OUTER4, fixed_direction=True), Counter(0)

    def frame(s: Seg) -> bytes:
        hdr = bytes(ERSPAN_II(ver=1, vlan=0, cos=0, en=0, t=0, session_id=ERSPAN_SESSION,
                              reserved=0, index=7))
        return out.ether_ip(s.side, 47, gre(0x88BE, hdr + inner_ether(s), seq=seqs.next(C)))
    return per_packet(frame)


def erspan3() -> Callable[[Session], Frames]:
    out, seqs = Outer(OUTER4, fixed_direction=True), Counter(0)

    def frame(s: Seg) -> bytes:
        # Timestamp: 100 µs granularity (gra=1) from the capture start, as a switch would.
        ts = ((s.t_us - T0_US) // 100) & 0xFFFFFFFF
        hdr = bytes(ERSPAN_III(ver=2, vlan=0, cos=0, bso=0, t=0, session_id=ERSPAN_SESSION,
                               timestamp=ts, sgt_other=0, p=0, ft=0, hw=1, d=s.side, gra=1, o=0))
        return out.ether_ip(s.side, 47, gre(0x22EB, hdr + inner_ether(s), seq=seqs.next(C)))
    return per_packet(frame)


def erspan1() -> Callable[[Session], Frames]:
    out = Outer(OUTER4, fixed_direction=True)
    return per_packet(lambda s: out.ether_ip(s.side, 47, gre(0x88BE, inner_ether(s))))


# ---- UDP tunnels --------------------------------------------------------------------

VXLAN_VNI, GENEVE_VNI, GTP_TEID = 4242, 99, 0x1234


def vxlan_case() -> Callable[[Session], Frames]:
    out = Outer(OUTER4)
    return per_packet(lambda s: out.ether_udp(s.side, vxlan_sport(s.side), 4789,
                                              vxlan(VXLAN_VNI, inner_ether(s))))


def geneve_case(with_option: bool) -> Callable[[Session], Frames]:
    out = Outer(OUTER4)

    def frame(s: Seg) -> bytes:
        opts = []
        if with_option:
            # One 8-byte TLV: class 0x0103, type 0x01, 4 bytes of data (length 1 word).
            opts = [GeneveOptions(classid=0x0103, type=0x01, reserved=0, length=1,
                                  data=b"\x00\x00\x2a\x2a")]
        hdr = GENEVE(version=0, optionlen=2 if with_option else 0, oam=0, critical=0,
                     proto=0x6558, vni=GENEVE_VNI, options=opts)
        return out.ether_udp(s.side, vxlan_sport(s.side), 6081, bytes(hdr / Raw(inner_ether(s))))
    return per_packet(frame)


def gtpu_case(extension: bool) -> Callable[[Session], Frames]:
    # Client side = the eNodeB/gNodeB (uplink), server side = the SGW/UPF.
    out, seqs = Outer(OUTER4), Counter(0x100)

    def frame(s: Seg) -> bytes:
        if extension:
            # E and S set: sequence number, N-PDU number (0) and next extension type
            # 0x85 (PDU session container: UL=1 from the client, DL=0, QFI 9).
            hdr = GTP_U_Header(version=1, PT=1, E=1, S=1, PN=0, gtp_type=255, teid=GTP_TEID,
                               seq=seqs.next(s.side), npdu=0, next_ex=0x85)
            cont = GTPPDUSessionContainer(ExtHdrLen=1, type=1 if s.side == C else 0, QFI=9,
                                          NextExtHdr=0)
            pdu = bytes(hdr / cont / Raw(s.ip))
        else:
            pdu = bytes(GTP_U_Header(version=1, PT=1, E=0, S=0, PN=0, gtp_type=255,
                                     teid=GTP_TEID) / Raw(s.ip))
        return out.ether_udp(s.side, 2152, 2152, pdu)
    return per_packet(frame)


# ---- IP in IP, Teredo ---------------------------------------------------------------

def ipip_case(outer: tuple[str, str]) -> Callable[[Session], Frames]:
    out = Outer(outer)
    return per_packet(lambda s: out.ether_ip(s.side, 41 if s.v6 else 4, s.ip))


TEREDO_PORTS = (50123, 3544)             # client's mapped port, relay's Teredo port


def teredo_case() -> Callable[[Session], Frames]:
    out = Outer(OUTER4)
    return per_packet(lambda s: out.ether_udp(s.side, TEREDO_PORTS[s.side],
                                              TEREDO_PORTS[s.side ^ 1], s.ip))


# ---- Nestings -----------------------------------------------------------------------

NEST_VLAN_OUTER, NEST_VLAN_INNER, NEST_LABEL = 100, 200, 1000


def vlan_mpls_vlan() -> Callable[[Session], Frames]:
    """802.1Q 100 / MPLS (label 1000, control word) / Ethernet / 802.1Q 200 / IP."""
    def frame(s: Seg) -> bytes:
        tagged = bytes(Ether(src=MAC_HOST[s.side], dst=MAC_HOST[s.side ^ 1], type=0x8100)
                       / Dot1Q(prio=0, vlan=NEST_VLAN_INNER, type=ethertype_of(s)) / Raw(s.ip))
        labelled = mpls([NEST_LABEL], PW_CONTROL_WORD + tagged)
        return bytes(Ether(src=MAC_OUTER[s.side], dst=MAC_OUTER[s.side ^ 1], type=0x8100)
                     / Dot1Q(prio=0, vlan=NEST_VLAN_OUTER, type=0x8847) / Raw(labelled))
    return per_packet(frame)


def gre_vxlan() -> Callable[[Session], Frames]:
    """GRE (10.1.1.1 <-> 10.2.2.2) carrying IPv4/UDP/VXLAN (172.16.0.1 <-> 172.16.0.2)."""
    gre_end, vtep = Outer(OUTER4), Outer(MID4)

    def frame(s: Seg) -> bytes:
        mid = vtep.udp(s.side, vxlan_sport(s.side), 4789, vxlan(VXLAN_VNI, inner_ether(s)))
        return gre_end.ether_ip(s.side, 47, gre(0x0800, mid))
    return per_packet(frame)


MPLS_GRE_LABEL = 300


def mpls_gre() -> Callable[[Session], Frames]:
    """Ethernet / MPLS 300 / IPv4 (10.1.1.1 <-> 10.2.2.2) / GRE / inner IPv4."""
    out = Outer(OUTER4)
    return per_packet(lambda s: ether(s.side, 0x8847, mpls(
        [MPLS_GRE_LABEL], out.ip(s.side, 47, gre(0x0800, s.ip)))))


# ---- 802.11 with radiotap -----------------------------------------------------------

def radiotap() -> bytes:
    """Radiotap: flags (no FCS), 24 Mb/s, channel 6 (2437 MHz, OFDM), -42 dBm."""
    return bytes(RadioTap(present="Flags+Rate+Channel+dBm_AntSignal", Flags=0, Rate=24,
                          ChannelFrequency=2437, ChannelFlags="2GHz+OFDM", dBm_AntSignal=-42))


def wlan_beacon(ts_us: int, seqno: int) -> bytes:
    return radiotap() + bytes(
        Dot11(type=0, subtype=8, addr1="ff:ff:ff:ff:ff:ff", addr2=WLAN_BSSID, addr3=WLAN_BSSID,
              SC=seqno << 4)
        / Dot11Beacon(timestamp=ts_us - T0_US + 5_000_000, beacon_interval=100, cap="ESS+privacy")
        / Dot11Elt(ID=0, info=b"pushscan-lab")
        / Dot11Elt(ID=1, info=b"\x82\x84\x8b\x96\x0c\x12\x18\x24")
        / Dot11Elt(ID=3, info=b"\x06"))


def wlan_ack(to: str) -> bytes:
    return radiotap() + bytes(Dot11(type=1, subtype=13, addr1=to))


def wlan_data(s: Seg, seqno: int) -> bytes:
    """Client -> AP as QoS data (To DS), AP -> client as plain data (From DS), LLC/SNAP."""
    snap = bytes(LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=ethertype_of(s))) + s.ip
    if s.side == C:
        hdr = (Dot11(type=2, subtype=8, FCfield=0x01, ID=44, addr1=WLAN_BSSID, addr2=WLAN_STA,
                     addr3=WLAN_GW, SC=seqno << 4) / Dot11QoS(TID=0))
    else:
        hdr = Dot11(type=2, subtype=0, FCfield=0x02, ID=44, addr1=WLAN_STA, addr2=WLAN_BSSID,
                    addr3=WLAN_GW, SC=seqno << 4)
    return radiotap() + bytes(hdr / Raw(snap))


def wlan_case(sess: Session) -> Frames:
    """Data frames each acknowledged by an 802.11 ACK; a beacon before and in between."""
    seqs, beacons = Counter(10), Counter(300)
    frames: Frames = [(T0_US - 50_000, wlan_beacon(T0_US - 50_000, beacons.next(C)))]
    for n, s in enumerate(sess.segs):
        frames.append((s.t_us, wlan_data(s, seqs.next(s.side))))
        frames.append((s.t_us + 44, wlan_ack(WLAN_STA if s.side == C else WLAN_BSSID)))
        if n == 8:
            t = s.t_us + 200
            frames.append((t, wlan_beacon(t, beacons.next(C))))
    return frames


def wlan_mgmt_only(sess: Session) -> Frames:
    """Only management and control frames: beacons, probe, auth, association, RTS/CTS,
    ACKs. No data frame, so no IP and no TCP."""
    t = T0_US
    seq = Counter(500)
    elts = Dot11Elt(ID=0, info=b"pushscan-lab") / Dot11Elt(ID=1, info=b"\x82\x84\x8b\x96")
    sta, ap, bc = WLAN_STA, WLAN_BSSID, "ff:ff:ff:ff:ff:ff"

    def mgmt(subtype: int, a1: str, a2: str, body: Packet, side: int) -> bytes:
        return radiotap() + bytes(Dot11(type=0, subtype=subtype, addr1=a1, addr2=a2, addr3=ap,
                                        SC=seq.next(side) << 4) / body)
    # The exchange, 1 ms apart; then two more beacons a beacon interval (102.4 ms) apart.
    steps: list[bytes] = [
        wlan_beacon(t, 1),
        mgmt(4, bc, sta, Dot11ProbeReq() / elts, C),
        mgmt(5, sta, ap, Dot11ProbeResp(timestamp=5_000_500, beacon_interval=100, cap="ESS")
             / elts, S),
        wlan_ack(ap),
        mgmt(11, ap, sta, Dot11Auth(algo=0, seqnum=1, status=0), C),
        wlan_ack(sta),
        mgmt(11, sta, ap, Dot11Auth(algo=0, seqnum=2, status=0), S),
        wlan_ack(ap),
        mgmt(0, ap, sta, Dot11AssoReq(cap="ESS", listen_interval=10) / elts, C),
        wlan_ack(sta),
        mgmt(1, sta, ap, Dot11AssoResp(cap="ESS", status=0, AID=1) / elts, S),
        wlan_ack(ap),
        radiotap() + bytes(Dot11(type=1, subtype=11, ID=100, addr1=ap, addr2=sta)),   # RTS
        radiotap() + bytes(Dot11(type=1, subtype=12, ID=80, addr1=sta)),              # CTS
    ]
    frames = [(t + 1000 * n, b) for n, b in enumerate(steps)]
    frames += [(t + 102_400 * n, wlan_beacon(t + 102_400 * n, 1 + n)) for n in (1, 2)]
    return frames


# ---- Other link types ---------------------------------------------------------------

def ppp_frame(s: Seg) -> bytes:
    """PPP with address/control FF 03 and the 2-byte protocol field (RFC 1662 framing)."""
    return b"\xff\x03" + struct.pack("!H", 0x0057 if s.v6 else 0x0021) + s.ip


def chdlc_frame(s: Seg) -> bytes:
    """Cisco HDLC: address 0x0F (unicast), control 0, then an Ethernet type."""
    return struct.pack("!BBH", 0x0F, 0x00, ethertype_of(s)) + s.ip


def nflog_frame(s: Seg) -> bytes:
    """Linux NFLOG (libpcap LINKTYPE_NFLOG): a 4-byte header (family, version 0, group
    number big-endian), then TLVs whose length and type are in host byte order, written
    here as little-endian (the x86 case). Each TLV is padded to 4 bytes; its length
    excludes the padding. TLVs: packet header (type 1), prefix (10), payload (9)."""
    def tlv(kind: int, value: bytes) -> bytes:
        raw = struct.pack("<HH", 4 + len(value), kind) + value
        return raw + b"\0" * (-len(raw) % 4)
    family = 10 if s.v6 else 2                       # AF_INET6 / AF_INET
    hook = 1 if s.side == C else 3                   # NF_INET_LOCAL_IN / FORWARD, for show
    packet_hdr = struct.pack("!HBB", ethertype_of(s), hook, 0)
    return (struct.pack("!BBH", family, 0, NFLOG_GROUP) + tlv(1, packet_hdr)
            + tlv(10, b"pushscan-smtp\0") + tlv(9, s.ip))


NFLOG_GROUP = 5


def ipoib_frame(s: Seg) -> bytes:
    """IP over InfiniBand as Wireshark reads LINKTYPE_IPOIB: a 40-byte pseudo header
    (first 2 bytes 0 = unicast, no valid GRH; bytes 20..39 the destination address: a
    reserved byte, the 24-bit destination QP number, the 16-byte destination GID), then
    the RFC 4391 4-byte encapsulation header (ethertype, 2 reserved bytes)."""
    gid = bytes.fromhex("fe800000000000000002c90300001f0" + ("a" if s.side == S else "b"))
    pseudo = b"\0" * 20 + b"\0" + (0x000048).to_bytes(3, "big") + gid
    assert len(pseudo) == 40
    return pseudo + struct.pack("!HH", ethertype_of(s), 0) + s.ip


def juniper_ether_frame(s: Seg) -> bytes:
    """Juniper Ethernet (LINKTYPE_JUNIPER_ETHER): magic "MGC", flags (0x80 extensions
    present, bit 0 direction: 1 = in), the extensions' total length (big-endian), TLVs
    (type, length, value little-endian for types < 128: interface index 1, logical
    interface index 4), then the Ethernet frame."""
    ext = struct.pack("<BBI", 1, 4, 517) + struct.pack("<BBI", 4, 4, 73)
    flags = 0x80 | (1 if s.side == C else 0)
    return b"MGC" + bytes([flags]) + struct.pack("!H", len(ext)) + ext + ether(
        s.side, ethertype_of(s), s.ip)


# ---- The table ----------------------------------------------------------------------

def ether_ip(s: Seg) -> bytes:
    return ether(s.side, ethertype_of(s), s.ip)


def cases() -> list[Case]:
    mac = MAC_OUTER
    return [
        # MPLS over Ethernet
        Case("tun_mpls.pcap", "ether", "Ethernet / MPLS label 100 (S=1) / IPv4",
             tunnel("mpls", mac, 100, labels=[100]), mpls_case([100])),
        Case("tun_mpls_stack3.pcap", "ether", "Ethernet / MPLS labels 100, 200, 300 / IPv4",
             tunnel("mpls", mac, [100, 200, 300], labels=[100, 200, 300]),
             mpls_case([100, 200, 300])),
        Case("tun_eompls_cw.pcap", "ether",
             "Ethernet / MPLS label 16 / 4-byte zero PW control word / Ethernet / IPv4 (EoMPLS)",
             tunnel("mpls-pw-ether", mac, 16, labels=[16], control_word=True),
             mpls_case([16], control_word=True)),
        Case("tun_mpls_ipv6.pcap", "ether", "Ethernet / MPLS label 2000 / IPv6",
             tunnel("mpls", mac, 2000, labels=[2000]), mpls_case([2000]), v6=True),
        # PPPoE
        Case("tun_pppoe.pcap", "ether", "Ethernet 0x8864 / PPPoE session 0x0042 / PPP 0x0021 / IPv4",
             tunnel("pppoe", mac, PPPOE_SESSION), per_packet(pppoe_frame)),
        Case("tun_pppoe_ipv6.pcap", "ether",
             "Ethernet 0x8864 / PPPoE session 0x0042 / PPP 0x0057 / IPv6",
             tunnel("pppoe", mac, PPPOE_SESSION), per_packet(pppoe_frame), v6=True),
        # GRE
        Case("tun_gre.pcap", "ether", "Ethernet / IPv4 10.1.1.1<->10.2.2.2 / GRE 0x0800 / IPv4",
             tunnel("gre", OUTER4, None), gre_plain()),
        Case("tun_gre_key_seq.pcap", "ether",
             "Ethernet / IPv4 / GRE with key 0x2a2a and sequence numbers (from 1 per direction) / IPv4",
             tunnel("gre", OUTER4, GRE_KEY, key=GRE_KEY, seq=True), gre_key_seq()),
        Case("tun_gre_teb.pcap", "ether",
             "Ethernet / IPv4 / GRE 0x6558 (transparent Ethernet bridging) / Ethernet / IPv4",
             tunnel("gre-teb", OUTER4, None), gre_teb()),
        # ERSPAN
        Case("tun_erspan2.pcap", "ether",
             "Ethernet / IPv4 10.1.1.1->10.2.2.2 (both directions mirrored one way) / GRE 0x88BE "
             "with sequence number / ERSPAN II session 23 / Ethernet / IPv4",
             tunnel("erspan2", OUTER4, ERSPAN_SESSION, mirror=True), erspan2()),
        Case("tun_erspan3.pcap", "ether",
             "Ethernet / IPv4 10.1.1.1->10.2.2.2 / GRE 0x22EB with sequence number / ERSPAN III "
             "session 23 (timestamps, direction bit) / Ethernet / IPv4",
             tunnel("erspan3", OUTER4, ERSPAN_SESSION, mirror=True), erspan3()),
        Case("tun_erspan1.pcap", "ether",
             "Ethernet / IPv4 10.1.1.1->10.2.2.2 / GRE 0x88BE, no sequence number, no ERSPAN "
             "header (type I) / Ethernet / IPv4",
             tunnel("erspan1", OUTER4, None, mirror=True), erspan1()),
        # UDP tunnels
        Case("tun_vxlan.pcap", "ether", "Ethernet / IPv4 / UDP 4789 / VXLAN VNI 4242 / Ethernet / IPv4",
             tunnel("vxlan", OUTER4, VXLAN_VNI), vxlan_case()),
        Case("tun_geneve.pcap", "ether",
             "Ethernet / IPv4 / UDP 6081 / Geneve VNI 99, no option, 0x6558 / Ethernet / IPv4",
             tunnel("geneve", OUTER4, GENEVE_VNI, options=0), geneve_case(False)),
        Case("tun_geneve_opt.pcap", "ether",
             "Ethernet / IPv4 / UDP 6081 / Geneve VNI 99 with one 8-byte option (class 0x0103) "
             "/ Ethernet / IPv4",
             tunnel("geneve", OUTER4, GENEVE_VNI, options=1), geneve_case(True)),
        Case("tun_gtpu.pcap", "ether", "Ethernet / IPv4 / UDP 2152 / GTP-U G-PDU TEID 0x1234 / IPv4",
             tunnel("gtpu", OUTER4, GTP_TEID), gtpu_case(False)),
        Case("tun_gtpu_ext.pcap", "ether",
             "Ethernet / IPv4 / UDP 2152 / GTP-U TEID 0x1234 with E and S flags: sequence "
             "number, PDU session container extension (QFI 9) / IPv4",
             tunnel("gtpu", OUTER4, GTP_TEID, seq=True, ext=0x85), gtpu_case(True)),
        # IP in IP
        Case("tun_4in4.pcap", "ether", "Ethernet / IPv4 10.1.1.1<->10.2.2.2 proto 4 / IPv4",
             tunnel("ipip", OUTER4, None), ipip_case(OUTER4)),
        Case("tun_6in4.pcap", "ether", "Ethernet / IPv4 10.1.1.1<->10.2.2.2 proto 41 / IPv6",
             tunnel("6in4", OUTER4, None), ipip_case(OUTER4), v6=True),
        Case("tun_4in6.pcap", "ether",
             "Ethernet / IPv6 2001:db8:a::1<->2001:db8:b::2 next header 4 / IPv4",
             tunnel("4in6", OUTER6, None), ipip_case(OUTER6)),
        Case("tun_6in6.pcap", "ether",
             "Ethernet / IPv6 2001:db8:a::1<->2001:db8:b::2 next header 41 / IPv6",
             tunnel("6in6", OUTER6, None), ipip_case(OUTER6), v6=True),
        Case("tun_teredo.pcap", "ether",
             "Ethernet / IPv4 10.1.1.1:50123<->10.2.2.2:3544 / UDP (Teredo) / IPv6",
             tunnel("teredo", OUTER4, None, ports=list(TEREDO_PORTS)), teredo_case(), v6=True),
        # Nestings
        Case("tun_vlan_mpls_vlan.pcap", "ether",
             "Ethernet / 802.1Q 100 / MPLS label 1000 / PW control word / Ethernet / 802.1Q 200 / IPv4",
             tunnel("vlan-mpls-pw-vlan", mac, NEST_LABEL, vlans=[NEST_VLAN_OUTER, NEST_VLAN_INNER],
                    labels=[NEST_LABEL]), vlan_mpls_vlan()),
        Case("tun_gre_vxlan.pcap", "ether",
             "Ethernet / IPv4 10.1.1.1<->10.2.2.2 / GRE / IPv4 172.16.0.1<->172.16.0.2 / UDP 4789 "
             "/ VXLAN VNI 4242 / Ethernet / IPv4",
             tunnel("gre+vxlan", OUTER4, VXLAN_VNI, middle=list(MID4)), gre_vxlan()),
        Case("tun_mpls_gre.pcap", "ether",
             "Ethernet / MPLS label 300 / IPv4 10.1.1.1<->10.2.2.2 / GRE 0x0800 / IPv4",
             tunnel("mpls+gre", OUTER4, MPLS_GRE_LABEL, labels=[MPLS_GRE_LABEL]), mpls_gre()),
        # Link types
        Case("tun_80211_radiotap.pcap", "radiotap",
             "radiotap / 802.11: client->AP QoS data (To DS), AP->client data (From DS), LLC/SNAP "
             "/ IPv4; an 802.11 ACK after every data frame; 2 beacons",
             tunnel("802.11", (WLAN_STA, WLAN_GW), None, bssid=WLAN_BSSID), wlan_case),
        Case("tun_80211_mgmt_only.pcap", "radiotap",
             "radiotap / 802.11 management and control frames only (beacons, probe, auth, "
             "association, RTS/CTS, ACKs): no data frame, no IP, no TCP",
             tunnel("802.11", None, None, bssid=WLAN_BSSID), wlan_mgmt_only, no_session=True),
        Case("tun_ppp.pcap", "ppp", "linktype 9 (PPP): FF 03, protocol 0x0021 / IPv4",
             tunnel("ppp", None, None), per_packet(ppp_frame)),
        Case("tun_ppp_hdlc.pcap", "ppp_hdlc", "linktype 50 (PPP in HDLC-like framing): FF 03, "
             "protocol 0x0021 / IPv4", tunnel("ppp", None, None), per_packet(ppp_frame)),
        Case("tun_chdlc.pcap", "chdlc", "linktype 104 (Cisco HDLC): 0F 00 0800 / IPv4",
             tunnel("chdlc", None, None), per_packet(chdlc_frame)),
        Case("tun_nflog.pcap", "nflog",
             "linktype 239 (NFLOG): AF_INET, group 5, TLVs packet header (1), prefix (10), "
             "payload (9) little-endian / IPv4",
             tunnel("nflog", None, NFLOG_GROUP), per_packet(nflog_frame)),
        Case("tun_ipoib.pcap", "ipoib",
             "linktype 242 (IPoIB): 40-byte pseudo header (unicast, destination QPN/GID) + "
             "4-byte header 0x0800 / IPv4",
             tunnel("ipoib", None, None), per_packet(ipoib_frame)),
        Case("tun_juniper_ether.pcap", "juniper_ether",
             "linktype 178 (Juniper Ethernet): MGC, flags 0x80/0x81, 12 bytes of extension TLVs "
             "/ Ethernet / IPv4",
             tunnel("juniper-ether", MAC_OUTER, None), per_packet(juniper_ether_frame)),
        Case("tun_ipv6_jumbo.pcap", "ether",
             "Ethernet / IPv6; the body as ONE 70,000-byte segment: payload length 0, hop-by-hop "
             "Jumbo Payload option (BIG TCP)",
             tunnel("ipv6-jumbogram", MAC_OUTER, None, jumbo_tcp_len=70000), per_packet(ether_ip),
             v6=True, big_body=True),
    ]


# --------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------

SNAPLEN = 262144                         # fits the jumbogram frame


def write_pcap(path: Path, linktype: int, frames: Frames) -> None:
    """A classic little-endian microsecond pcap."""
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, linktype)]
    last = 0
    for t_us, data in frames:
        assert t_us >= last, "timestamps must not go back"
        last = t_us
        out.append(struct.pack("<IIII", t_us // 1_000_000, t_us % 1_000_000, len(data), len(data)))
        out.append(data)
    path.write_bytes(b"".join(out))


def truth_of(case: Case, frames: Frames) -> dict:
    sess = case.session
    addr = INNER6 if case.v6 else INNER4
    fmt = "[{}]:{}" if case.v6 else "{}:{}"
    counts = ({"c2s": {"data": 0, "psh": 0}, "s2c": {"data": 0, "psh": 0}}
              if case.no_session else sess.counts())
    return {
        "frames": len(frames),
        "streams": 0 if case.no_session else 1,
        "inner": None if case.no_session else {
            "client": fmt.format(addr[C], PORTS[C]), "server": fmt.format(addr[S], PORTS[S])},
        **counts,
        "tunnel": case.tunnel,
        "linktype": LINKTYPE[case.linktype],
    }


# How the README names a tunnel's identifier, by kind (decimal unless a hex format).
ID_NAMES = {"mpls": ("label", "{}"), "mpls-pw-ether": ("label", "{}"), "pppoe": ("session", "0x{:04x}"),
            "gre": ("key", "0x{:x}"), "erspan2": ("session", "{}"), "erspan3": ("session", "{}"),
            "vxlan": ("VNI", "{}"), "geneve": ("VNI", "{}"), "gtpu": ("TEID", "0x{:x}"),
            "vlan-mpls-pw-vlan": ("label", "{}"), "gre+vxlan": ("VNI", "{}"),
            "mpls+gre": ("label", "{}"), "nflog": ("group", "{}")}


def readme_line(case: Case, t: dict) -> str:
    tun = t["tunnel"]
    params = [tun["kind"]]
    if tun["outer_src"]:
        arrow = "->" if tun.get("mirror") else "<->"
        params.append(f"outer {tun['outer_src']} {arrow} {tun['outer_dst']}")
    if tun["id"] is not None:
        name, fmt = ID_NAMES[tun["kind"]]
        ids = tun["id"] if isinstance(tun["id"], list) else [tun["id"]]
        params.append(f"{name} {', '.join(fmt.format(i) for i in ids)}")
    for extra in ("vlans", "middle", "bssid"):
        if extra in tun:
            value = tun[extra]
            params.append(f"{extra} {', '.join(map(str, value)) if isinstance(value, list) else value}")
    if t["streams"]:
        ts = (f"tshark: {t['frames']} frames, {t['streams']} stream, "
              f"c->s {t['c2s']['data']}/{t['c2s']['psh']}, s->c {t['s2c']['data']}/{t['s2c']['psh']}")
    else:
        ts = f"tshark: {t['frames']} frames, 0 streams (no TCP)"
    return f"| `{case.file}` | make_tunnels: {case.how} | {ts}; {'; '.join(params)} |"


def generate(outdir: Path) -> dict[str, dict]:
    outdir.mkdir(parents=True, exist_ok=True)
    sessions: dict[tuple[bool, bool], Session] = {}
    truth, lines = {}, []
    for case in cases():
        key = (case.v6, case.big_body)
        if key not in sessions:
            sessions[key] = Session(v6=case.v6, body_size=70000 if case.big_body else 3000,
                                    big_body=case.big_body)
        case.session = sessions[key]
        frames = case.build(case.session)
        path = outdir / case.file
        write_pcap(path, LINKTYPE[case.linktype], frames)
        assert path.stat().st_size < 100_000, f"{case.file} is too big"
        truth[case.file] = truth_of(case, frames)
        lines.append(readme_line(case, truth[case.file]))
    (outdir / "tunnels_truth.json").write_text(json.dumps(truth, indent=1) + "\n")
    (outdir / "make_tunnels.README.part").write_text("\n".join(lines) + "\n")
    return truth


# --------------------------------------------------------------------------------------
# Checking against tshark
# --------------------------------------------------------------------------------------

def tshark_view(path: Path) -> dict:
    """What tshark sees: frames, tcp.stream values, data/PSH per direction (by the inner
    TCP ports), the innermost source address of each TCP segment, TCP conversations."""
    fields = ["frame.number", "tcp.stream", "ip.src", "ipv6.src", "tcp.srcport", "tcp.len",
              "tcp.flags.push", "frame.protocols"]
    cmd = ["tshark", "-n", "-r", str(path), "-T", "fields", "-E", "separator=\t",
           "-E", "occurrence=a", "-E", "aggregator=,"]
    for f in fields:
        cmd += ["-e", f]
    rows = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()
    view = {"frames": len(rows), "streams": set(), "c2s": {"data": 0, "psh": 0},
            "s2c": {"data": 0, "psh": 0}, "srcs": set(), "protocols": set()}
    for row in rows:
        num, stream, ip4, ip6, sport, tlen, push, protos = (row.split("\t") + [""] * 8)[:8]
        view["protocols"].add(protos)
        if not stream:
            continue
        view["streams"].add(stream)
        key = "c2s" if sport == str(PORTS[C]) else "s2c"
        if int(tlen or 0) > 0:
            view[key]["data"] += 1
        if push in ("1", "True"):
            view[key]["psh"] += 1
        # The innermost network layer decides: the last "ip"/"ipv6" before "tcp" in
        # frame.protocols, and the last address tshark lists for that field.
        layers = protos.split(":")
        inner = [p for p in layers[:layers.index("tcp")] if p in ("ip", "ipv6")][-1]
        addr = (ip6 if inner == "ipv6" else ip4).split(",")[-1]
        view["srcs"].add((addr, sport))
    conv = subprocess.run(["tshark", "-n", "-r", str(path), "-q", "-z", "conv,tcp"],
                          capture_output=True, text=True, check=True).stdout
    view["conv"] = [ln.split()[0] + " " + ln.split()[2] for ln in conv.splitlines() if "<->" in ln]
    return view


def check(outdir: Path, truth: dict[str, dict]) -> bool:
    if not shutil.which("tshark"):
        print("tshark not found: nothing checked")
        return False
    ok = True
    for name, t in truth.items():
        v = tshark_view(outdir / name)
        problems = []
        if v["frames"] != t["frames"]:
            problems.append(f"frames {v['frames']} != {t['frames']}")
        if len(v["streams"]) != t["streams"]:
            problems.append(f"streams {sorted(v['streams'])} != {t['streams']}")
        for key in ("c2s", "s2c"):
            if v[key] != t[key]:
                problems.append(f"{key} {v[key]} != {t[key]}")
        if t["inner"]:
            c_ip, c_port = t["inner"]["client"].rsplit(":", 1)
            s_ip, s_port = t["inner"]["server"].rsplit(":", 1)
            want = {(c_ip.strip("[]"), c_port), (s_ip.strip("[]"), s_port)}
            if v["srcs"] != want:
                problems.append(f"inner sources {sorted(v['srcs'])} != {sorted(want)}")
            c_ip, s_ip = c_ip.strip("[]"), s_ip.strip("[]")
            convs = [f"{c_ip}:{c_port} {s_ip}:{s_port}", f"{s_ip}:{s_port} {c_ip}:{c_port}"]
            if len(v["conv"]) != 1 or v["conv"][0] not in convs:
                problems.append(f"conv,tcp {v['conv']}")
        elif v["conv"]:
            problems.append(f"conv,tcp {v['conv']}")
        status = "ok " if not problems else "BAD"
        ok &= not problems
        print(f"{status} {name:28} {sorted(v['protocols'])[-1] if v['protocols'] else ''}")
        for p in problems:
            print("      ", p)
    return ok


def main(argv: list[str]) -> int:
    args = [a for a in argv if a != "--check"]
    outdir = Path(args[0]) if args else Path(__file__).resolve().parent
    truth = generate(outdir)
    print(f"wrote {len(truth)} captures to {outdir}")
    if "--check" in argv:
        return 0 if check(outdir, truth) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
