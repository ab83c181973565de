"""Generate the scenario captures in this folder with scapy.

Each scenario is a small, exactly known TCP/SMTP exchange: packets are built with scapy
(IP/IPv6/TCP and the link layers) and written by the small pcap/pcapng writers below,
so that byte orders, timestamp resolutions, several pcapng interfaces and simple packet
blocks are all covered. Deterministic: running it again gives the same bytes.

    python captures/make_scenarios.py [OUTDIR]
"""
from __future__ import annotations

import gzip
import struct
import sys
from pathlib import Path
from typing import Callable

from scapy.layers.inet import ICMP, IP, TCP, IPerror
from scapy.layers.inet6 import IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop
from scapy.layers.l2 import CookedLinux, CookedLinuxV2, Dot1AD, Dot1Q, Ether, Loopback
from scapy.packet import Packet, Raw

C, S = 0, 1
T0 = 1_790_000_000.0          # capture start (epoch seconds)
Pkt = tuple[float, bytes]     # (timestamp, IP packet bytes)


class Conv:
    """One TCP conversation. Appends (time, IP packet) to a shared capture list."""

    def __init__(self, cap: list[Pkt], cip: str = "192.0.2.10", sip: str = "198.51.100.25",
                 cport: int = 40000, sport: int = 25, cisn: int = 1000, sisn: int = 50000,
                 t: float = T0, mss: int = 1460, v6ext: bool = False) -> None:
        self.cap = cap
        self.ip = (cip, sip)
        self.port = (cport, sport)
        self.seq = [cisn, sisn]
        self.t = t
        self.mss = mss
        self.v6 = ":" in cip
        self.v6ext = v6ext

    def pkt(self, side: int, flags: str, data: bytes = b"", seq: int | None = None,
            ack: int | None = None, dt: float = 0.001, options: list | None = None,
            advance: bool = True) -> Packet:
        self.t += dt
        other = side ^ 1
        s = self.seq[side] if seq is None else seq
        a = (self.seq[other] if ack is None else ack) if "A" in flags else 0
        tcp = TCP(sport=self.port[side], dport=self.port[other], flags=flags,
                  seq=s & 0xFFFFFFFF, ack=a & 0xFFFFFFFF, window=64240, options=options or [])
        if self.v6:
            ip: Packet = IPv6(src=self.ip[side], dst=self.ip[other])
            if self.v6ext:
                ip = ip / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt()
        else:
            ip = IP(src=self.ip[side], dst=self.ip[other], id=len(self.cap) & 0xFFFF)
        p = ip / tcp / Raw(data) if data else ip / tcp
        self.cap.append((self.t, bytes(p)))
        if seq is None and advance:
            self.seq[side] += len(data) + ("S" in flags) + ("F" in flags)
        return p

    def handshake(self) -> None:
        self.pkt(C, "S", options=[("MSS", self.mss)])
        self.pkt(S, "SA", options=[("MSS", self.mss)])
        self.pkt(C, "A")

    def send(self, side: int, data: bytes, psh: bool = True, dt: float = 0.001,
             seg: int | None = None, ack: bool = True) -> list[int]:
        """Send ``data`` in MSS-sized segments (PSH on the last one if ``psh``); the peer
        then acknowledges. Returns the start sequence numbers of the segments."""
        seg = seg or self.mss
        starts = []
        for i in range(0, len(data), seg):
            last = i + seg >= len(data)
            starts.append(self.seq[side])
            self.pkt(side, "PA" if (psh and last) else "A", data[i:i + seg], dt=dt)
            dt = 0.0002
        if ack:
            self.pkt(side ^ 1, "A", dt=0.0005)
        return starts

    def fin(self) -> None:
        self.pkt(C, "FA")
        self.pkt(S, "FA")
        self.pkt(C, "A")


GREETING = b"220 mx.example.org ESMTP ready\r\n"
EHLO_REPLY = b"250-mx.example.org\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-STARTTLS\r\n250 8BITMIME\r\n"
BODY = b"Subject: test\r\nFrom: a@example.com\r\n\r\n" + b"".join(
    b"line %03d of a message body that is long enough to span several segments\r\n" % i
    for i in range(60))


def smtp_ok(conv: Conv, body: bytes = BODY, quit_: bool = True) -> None:
    conv.handshake()
    conv.send(S, GREETING)
    conv.send(C, b"EHLO client.example.com\r\n")
    conv.send(S, EHLO_REPLY)
    conv.send(C, b"MAIL FROM:<a@example.com>\r\n")
    conv.send(S, b"250 2.1.0 Ok\r\n")
    conv.send(C, b"RCPT TO:<b@example.org>\r\n")
    conv.send(S, b"250 2.1.5 Ok\r\n")
    conv.send(C, b"DATA\r\n")
    conv.send(S, b"354 End data with <CR><LF>.<CR><LF>\r\n")
    conv.send(C, body + b".\r\n")
    conv.send(S, b"250 2.0.0 Ok: queued as 4AB12\r\n")
    if quit_:
        conv.send(C, b"QUIT\r\n")
        conv.send(S, b"221 2.0.0 Bye\r\n")
        conv.fin()


# -- scenarios: each returns the capture's packets ------------------------------------------
def sc_ok() -> list[Pkt]:
    cap: list[Pkt] = []
    smtp_ok(Conv(cap))
    return cap


def sc_unpushed_reset() -> list[Pkt]:
    """The client's stack does not push RCPT; the server acknowledges it, never answers,
    and resets 300 s later."""
    cap: list[Pkt] = []
    c = Conv(cap)
    c.handshake()
    c.send(S, GREETING)
    c.send(C, b"EHLO client.example.com\r\n")
    c.send(S, EHLO_REPLY)
    c.send(C, b"MAIL FROM:<a@example.com>\r\n")
    c.send(S, b"250 2.1.0 Ok\r\n")
    c.send(C, b"RCPT TO:<b@example.org>\r\n", psh=False)   # acked, never delivered
    c.pkt(S, "RA", dt=300.0)
    return cap


def sc_unpushed_turns() -> list[Pkt]:
    """A client that never sets PSH talking to a server whose stack delivers anyway,
    after a 0.2 s delay: every client turn is unpushed, the session ends well."""
    cap: list[Pkt] = []
    c = Conv(cap)
    c.handshake()
    c.send(S, GREETING)
    for cmd, reply in [(b"EHLO client.example.com\r\n", EHLO_REPLY),
                       (b"MAIL FROM:<a@example.com>\r\n", b"250 Ok\r\n"),
                       (b"QUIT\r\n", b"221 Bye\r\n")]:
        c.send(C, cmd, psh=False)
        c.send(S, reply, dt=0.2)
    c.fin()
    return cap


def sc_peer_reset() -> list[Pkt]:
    """The server resets right after a pushed DATA command (its application died)."""
    cap: list[Pkt] = []
    c = Conv(cap)
    c.handshake()
    c.send(S, GREETING)
    c.send(C, b"EHLO client.example.com\r\n")
    c.send(S, EHLO_REPLY)
    c.send(C, b"MAIL FROM:<a@example.com>\r\n")
    c.send(S, b"250 Ok\r\n")
    c.send(C, b"RCPT TO:<b@example.org>\r\n")
    c.send(S, b"250 Ok\r\n")
    c.send(C, b"DATA\r\n", ack=False)
    c.pkt(S, "RA", dt=0.05)
    return cap


def sc_no_answer() -> list[Pkt]:
    """Three SYNs (1 s, 2 s backoff) get no SYN-ACK; a router sends ICMP host unreachable."""
    cap: list[Pkt] = []
    c = Conv(cap, sip="203.0.113.99")
    syn = c.pkt(C, "S", options=[("MSS", 1460)], advance=False)
    c.pkt(C, "S", seq=c.seq[C], options=[("MSS", 1460)], dt=1.0)
    c.pkt(C, "S", seq=c.seq[C], options=[("MSS", 1460)], dt=2.0)
    icmp = IP(src="192.0.2.1", dst="192.0.2.10") / ICMP(type=3, code=1) / \
        IPerror(bytes(syn[IP])[:20] + bytes(syn[TCP])[:8])
    c.t += 0.01
    cap.append((c.t, bytes(IP(bytes(icmp)))))
    return cap


def sc_refused() -> list[Pkt]:
    """The SYN is answered by a reset: nothing listens on the port."""
    cap: list[Pkt] = []
    c = Conv(cap, sport=587)
    c.pkt(C, "S", options=[("MSS", 1460)])
    c.pkt(S, "RA", seq=0, ack=c.seq[C])
    return cap


def sc_retrans_loss() -> list[Pkt]:
    """The client's body segment is retransmitted with backoff and never acknowledged;
    the client gives up and resets."""
    cap: list[Pkt] = []
    c = Conv(cap)
    c.handshake()
    c.send(S, GREETING)
    c.send(C, b"EHLO client.example.com\r\n")
    c.send(S, EHLO_REPLY)
    c.send(C, b"MAIL FROM:<a@example.com>\r\n")
    c.send(S, b"250 Ok\r\n")
    seq = c.seq[C]
    data = b"RCPT TO:<b@example.org>\r\n"
    c.pkt(C, "PA", data)
    for k in range(4):
        c.pkt(C, "PA", data, seq=seq, dt=0.2 * 2 ** k)
    c.pkt(C, "RA", dt=3.0)
    return cap


def sc_local_reset() -> list[Pkt]:
    """After QUIT and 221 the client resets instead of closing (common and harmless)."""
    cap: list[Pkt] = []
    c = Conv(cap)
    smtp_ok(c, quit_=False)
    c.send(C, b"QUIT\r\n")
    c.send(S, b"221 Bye\r\n", ack=False)
    c.pkt(C, "RA")
    return cap


def _drop(cap: list[Pkt], n_from_end: int) -> None:
    del cap[len(cap) - n_from_end]


def sc_capture_gap() -> list[Pkt]:
    """One body segment was not captured, but the server acknowledged it."""
    cap: list[Pkt] = []
    c = Conv(cap)
    c.handshake()
    c.send(S, GREETING)
    c.send(C, b"EHLO client.example.com\r\n")
    c.send(S, EHLO_REPLY)
    c.send(C, b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
    c.send(S, b"250 Ok\r\n250 Ok\r\n354 Go ahead\r\n")
    c.send(C, BODY + b".\r\n", seg=1000)        # 5 segments and an ack
    _drop(cap, 4)                               # lose the third segment from the capture
    c.send(S, b"250 Ok queued\r\n")
    c.send(C, b"QUIT\r\n")
    c.send(S, b"221 Bye\r\n")
    c.fin()
    return cap


def sc_out_of_order() -> list[Pkt]:
    """Two body segments arrive swapped; reassembly must still find the end of DATA."""
    cap: list[Pkt] = []
    c = Conv(cap)
    c.handshake()
    c.send(S, GREETING)
    c.send(C, b"EHLO client.example.com\r\n")
    c.send(S, EHLO_REPLY)
    c.send(C, b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
    c.send(S, b"250 Ok\r\n250 Ok\r\n354 Go ahead\r\n")
    c.send(C, BODY + b".\r\n", seg=1000, ack=False)
    i = len(cap) - 3
    (t1, p1), (t2, p2) = cap[i], cap[i + 1]
    cap[i], cap[i + 1] = (t1, p2), (t2, p1)
    c.pkt(S, "A")
    c.send(S, b"250 Ok queued\r\n")
    c.send(C, b"QUIT\r\n")
    c.send(S, b"221 Bye\r\n")
    c.fin()
    return cap


def sc_conflict() -> list[Pkt]:
    """A retransmitted segment carries different bytes than the first copy."""
    cap: list[Pkt] = []
    c = Conv(cap)
    c.handshake()
    c.send(S, GREETING)
    seq = c.seq[C]
    c.pkt(C, "PA", b"EHLO client.example.com\r\n")
    c.pkt(C, "PA", b"EHLO CLIENT.EXAMPLE.NET\r\n", seq=seq, dt=0.3)
    c.pkt(S, "A")
    c.send(S, EHLO_REPLY)
    c.send(C, b"QUIT\r\n")
    c.send(S, b"221 Bye\r\n")
    c.fin()
    return cap


def sc_wraparound() -> list[Pkt]:
    """Both initial sequence numbers sit just below 2**32: the body wraps the field."""
    cap: list[Pkt] = []
    smtp_ok(Conv(cap, cisn=2**32 - 3000, sisn=2**32 - 100))
    return cap


def sc_port_reuse() -> list[Pkt]:
    """Two sessions on the same 4-tuple: the second SYN follows the first one's close."""
    cap: list[Pkt] = []
    smtp_ok(Conv(cap))
    smtp_ok(Conv(cap, cisn=900000, sisn=7000000, t=T0 + 10))
    return cap


def sc_midstream() -> list[Pkt]:
    """The capture starts after the handshake, in the middle of the dialogue."""
    cap: list[Pkt] = []
    smtp_ok(Conv(cap))
    del cap[:7]      # handshake, greeting, EHLO (and their acks) are gone
    return cap


def sc_tso() -> list[Pkt]:
    """Captured on a sender with segmentation offload: the body leaves in one 4 KB
    'segment' although the peer's MSS is 1460."""
    cap: list[Pkt] = []
    c = Conv(cap)
    c.handshake()
    c.send(S, GREETING)
    c.send(C, b"EHLO client.example.com\r\n")
    c.send(S, EHLO_REPLY)
    c.send(C, b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n")
    c.send(S, b"250 Ok\r\n250 Ok\r\n354 Go ahead\r\n")
    c.send(C, BODY + b".\r\n", seg=4096)
    c.send(S, b"250 Ok queued\r\n")
    c.send(C, b"QUIT\r\n")
    c.send(S, b"221 Bye\r\n")
    c.fin()
    return cap


def sc_ipv6() -> list[Pkt]:
    """IPv6 with hop-by-hop and destination-options extension headers."""
    cap: list[Pkt] = []
    smtp_ok(Conv(cap, cip="2001:db8::10", sip="2001:db8:1::25", v6ext=True))
    return cap


# A TLS 1.2 handshake as records (the bytes inside are placeholders: nothing reads them):
# ClientHello; ServerHello (its legacy version field: TLS 1.2); the client's
# ChangeCipherSpec and Finished; the server's; then application data both ways.
CLIENT_HELLO = b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(159)   # 165-byte record
SERVER_HELLO = b"\x16\x03\x03\x00\x7a\x02\x00\x00\x76\x03\x03" + bytes(116)   # 122-byte record
CCS_FINISHED = b"\x14\x03\x03\x00\x01\x01" + b"\x16\x03\x03\x00\x28" + bytes(40)
APP_DATA = b"\x17\x03\x03\x00\x30" + bytes(48)


def tls_handshake(c: Conv) -> None:
    c.send(C, CLIENT_HELLO)
    c.send(S, SERVER_HELLO)
    c.send(C, CCS_FINISHED)
    c.send(S, CCS_FINISHED)
    c.send(C, APP_DATA)
    c.send(S, APP_DATA)


def sc_starttls() -> list[Pkt]:
    """STARTTLS: after its 220 the rest is TLS (records read until the handshake
    completes, nothing parsed as SMTP); plus an implicit-TLS session on port 465."""
    cap: list[Pkt] = []
    c = Conv(cap)
    c.handshake()
    c.send(S, GREETING)
    c.send(C, b"EHLO client.example.com\r\n")
    c.send(S, EHLO_REPLY)
    c.send(C, b"STARTTLS\r\n")
    c.send(S, b"220 2.0.0 Ready to start TLS\r\n")
    tls_handshake(c)
    c.fin()
    d = Conv(cap, cport=40001, sport=465, t=T0 + 5)
    d.handshake()
    tls_handshake(d)
    d.fin()
    return cap


def sc_bdat_auth() -> list[Pkt]:
    """AUTH LOGIN (334 challenges), PIPELINING, BDAT chunks ending with LAST, then a
    refused DATA (554) followed by QUIT."""
    cap: list[Pkt] = []
    c = Conv(cap, sport=587)
    c.handshake()
    c.send(S, GREETING)
    c.send(C, b"EHLO client.example.com\r\n")
    c.send(S, EHLO_REPLY)
    c.send(C, b"AUTH LOGIN\r\n")
    c.send(S, b"334 VXNlcm5hbWU6\r\n")
    c.send(C, b"dXNlcg==\r\n")
    c.send(S, b"334 UGFzc3dvcmQ6\r\n")
    c.send(C, b"cGFzcw==\r\n")
    c.send(S, b"235 2.7.0 Authentication successful\r\n")
    c.send(C, b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nBDAT 100\r\n"
           + BODY[:100])
    c.send(S, b"250 Ok\r\n250 Ok\r\n250 100 bytes\r\n")
    c.send(C, b"BDAT 50 LAST\r\n" + BODY[100:150])
    c.send(S, b"250 Ok queued\r\n")
    c.send(C, b"MAIL FROM:<a@example.com>\r\nRCPT TO:<nobody@example.org>\r\nDATA\r\n")
    c.send(S, b"250 Ok\r\n550 No such user\r\n554 No valid recipients\r\n")
    c.send(C, b"QUIT\r\n")
    c.send(S, b"221 Bye\r\n")
    c.fin()
    return cap


def sc_other_tcp() -> list[Pkt]:
    """A web-like session on 8080 (shown only with --all-tcp) and an SMTP server on a
    non-standard port 10025, recognised by its 220 greeting."""
    cap: list[Pkt] = []
    w = Conv(cap, sport=8080, cport=50000)
    w.handshake()
    w.send(C, b"GET / HTTP/1.0\r\n\r\n")
    w.send(S, b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 3000, psh=False)
    w.fin()
    smtp_ok(Conv(cap, sport=10025, cport=40002, t=T0 + 2))
    return cap


# -- link layers and writers ----------------------------------------------------------------
def _is_v6(ipb: bytes) -> bool:
    return ipb[0] >> 4 == 6


def eth(ipb: bytes) -> bytes:
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02",
                       type=0x86DD if _is_v6(ipb) else 0x0800)) + ipb


def vlan(ipb: bytes) -> bytes:
    et = 0x86DD if _is_v6(ipb) else 0x0800
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
                 Dot1Q(vlan=42, type=et)) + ipb


def qinq(ipb: bytes) -> bytes:
    et = 0x86DD if _is_v6(ipb) else 0x0800
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02", type=0x88A8) /
                 Dot1AD(vlan=100) / Dot1Q(vlan=42, type=et)) + ipb


def sll(ipb: bytes) -> bytes:
    return bytes(CookedLinux(pkttype=4, lladdrtype=1, lladdrlen=6, src=b"\x02\0\0\0\0\x01\0\0",
                             proto=0x86DD if _is_v6(ipb) else 0x0800)) + ipb


def sll2(ipb: bytes) -> bytes:
    return bytes(CookedLinuxV2(proto=0x86DD if _is_v6(ipb) else 0x0800, ifindex=2,
                               pkttype=4, lladdrtype=1, lladdrlen=6,
                               src=b"\x02\0\0\0\0\x01\0\0")) + ipb


def null(ipb: bytes) -> bytes:
    return bytes(Loopback(type=30 if _is_v6(ipb) else 2)) + ipb


def raw(ipb: bytes) -> bytes:
    return ipb


LINKS: dict[str, tuple[int, Callable[[bytes], bytes]]] = {
    "eth": (1, eth), "vlan": (1, vlan), "qinq": (1, qinq), "sll": (113, sll),
    "sll2": (276, sll2), "null": (0, null), "raw": (101, raw),
}


def write_pcap(path: Path, pkts: list[Pkt], link: str = "eth", nano: bool = False,
               endian: str = "<", snaplen: int = 262144, as_sent: bool = False) -> None:
    """``pkts`` in time order (``as_sent``: in the order made, as a host whose clock
    stepped writes them)."""
    lt, wrap = LINKS[link]
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = [struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, lt)]
    for t, ipb in (pkts if as_sent else sorted(pkts, key=lambda p: p[0])):
        frame = wrap(ipb)
        sec = int(t)
        frac = round((t - sec) * (1e9 if nano else 1e6))
        cut = frame[:snaplen]
        out.append(struct.pack(endian + "IIII", sec, frac, len(cut), len(frame)) + cut)
    data = b"".join(out)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data, mtime=0))
    else:
        path.write_bytes(data)


def _opt(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + bytes(-len(value) % 4)


def _block(btype: int, body: bytes) -> bytes:
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def write_pcapng(path: Path, pkts: list[Pkt]) -> None:
    """Three interfaces: 0 Ethernet (microseconds; its 2nd and 3rd packets as simple
    packet blocks, which carry no timestamp), 1 SLL2 (nanoseconds), 2 raw IP (2**-20 s units). Packets
    alternate between them."""
    ifaces = [(1, eth, None), (276, sll2, 9), (101, raw, 0x80 | 20)]
    out = [_block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
                  + _opt(4, b"pushscan make_scenarios") + _opt(0, b""))]
    for lt, _w, res in ifaces:
        opts = (_opt(9, bytes([res])) if res is not None else b"") + _opt(0, b"")
        out.append(_block(1, struct.pack("<HHI", lt, 0, 262144) + opts))
    for i, (t, ipb) in enumerate(sorted(pkts, key=lambda p: p[0])):
        k = i % 3
        lt, wrap, res = ifaces[k]
        frame = wrap(ipb)
        pad = bytes(-len(frame) % 4)
        if k == 0 and 0 < i < 9:
            out.append(_block(3, struct.pack("<I", len(frame)) + frame + pad))
            continue
        units = 1e6 if res is None else (1e9 if res == 9 else float(1 << 20))
        ts = round(t * units)
        out.append(_block(6, struct.pack("<IIIII", k, ts >> 32, ts & 0xFFFFFFFF, len(frame),
                                         len(frame)) + frame + pad))
    path.write_bytes(b"".join(out))


def main(outdir: Path) -> None:
    ok = sc_ok()
    files: dict[str, Callable[[Path], None]] = {
        "smtp_ok.pcap": lambda p: write_pcap(p, ok),
        "smtp_ok_nanosecond_bigendian.pcap": lambda p: write_pcap(p, ok, nano=True, endian=">"),
        "smtp_ok.pcap.gz": lambda p: write_pcap(p, ok),
        "smtp_ok_multi_interface.pcapng": lambda p: write_pcapng(p, ok),
        "smtp_vlan.pcap": lambda p: write_pcap(p, ok, link="vlan"),
        "smtp_qinq.pcap": lambda p: write_pcap(p, ok, link="qinq"),
        "smtp_sll.pcap": lambda p: write_pcap(p, ok, link="sll"),
        "smtp_sll2.pcap": lambda p: write_pcap(p, ok, link="sll2"),
        "smtp_null.pcap": lambda p: write_pcap(p, ok, link="null"),
        "smtp_raw.pcap": lambda p: write_pcap(p, ok, link="raw"),
        "smtp_snaplen64.pcap": lambda p: write_pcap(p, ok, snaplen=64),
        "smtp_ipv6_exthdr.pcap": lambda p: write_pcap(p, sc_ipv6()),
        "smtp_unpushed_reset.pcap": lambda p: write_pcap(p, sc_unpushed_reset()),
        "smtp_unpushed_turns.pcap": lambda p: write_pcap(p, sc_unpushed_turns()),
        "smtp_peer_reset.pcap": lambda p: write_pcap(p, sc_peer_reset()),
        "smtp_no_answer.pcap": lambda p: write_pcap(p, sc_no_answer()),
        "smtp_refused.pcap": lambda p: write_pcap(p, sc_refused()),
        "smtp_retrans_loss.pcap": lambda p: write_pcap(p, sc_retrans_loss()),
        "smtp_local_reset.pcap": lambda p: write_pcap(p, sc_local_reset()),
        "smtp_capture_gap.pcap": lambda p: write_pcap(p, sc_capture_gap()),
        "smtp_out_of_order.pcap": lambda p: write_pcap(p, sc_out_of_order()),
        "smtp_conflict.pcap": lambda p: write_pcap(p, sc_conflict()),
        "smtp_wraparound.pcap": lambda p: write_pcap(p, sc_wraparound()),
        "smtp_port_reuse.pcap": lambda p: write_pcap(p, sc_port_reuse()),
        "smtp_midstream.pcap": lambda p: write_pcap(p, sc_midstream()),
        "smtp_tso.pcap": lambda p: write_pcap(p, sc_tso()),
        "smtp_starttls.pcap": lambda p: write_pcap(p, sc_starttls()),
        "smtp_bdat_auth.pcap": lambda p: write_pcap(p, sc_bdat_auth()),
        "tcp_other.pcap": lambda p: write_pcap(p, sc_other_tcp()),
    }
    for name, make in files.items():
        make(outdir / name)
    # rotated ring files: one session split across two files
    pr = sorted(sc_port_reuse(), key=lambda p: p[0])
    half = len(pr) // 2 - 5
    write_pcap(outdir / "rotated_00001.pcap", pr[:half])
    write_pcap(outdir / "rotated_00002.pcap", pr[half:])


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent))
