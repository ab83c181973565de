"""Generate captures of the causes that end (or only seem to end) SMTP/TCP sessions.

Each capture is one SMTP session from a client, 192.0.2.10:40000, to a server,
198.51.100.25:25, recorded on the client's side: packets are built with scapy over
Ethernet/IPv4 and written as a classic pcap (link type 1, microsecond timestamps).

The TCP is meant to hold up when an expert, or tshark's analysis, reads it:

- the SYNs negotiate MSS 1460, SACK, timestamps and window scaling (a shift per case);
  every later segment of either stack carries the timestamps option (NOP NOP TS), and a
  window field that is the window in bytes shifted by the negotiated scale;
- a full-size segment carries 1448 bytes: MSS 1460 less the 12 bytes of the timestamps
  option, so that the IP packet is 1500 bytes, the Ethernet MTU;
- the ACK numbers, SACK blocks and timestamp echoes are not written by hand: they follow
  from what each stack has received by then (the server sees a client packet one RTT
  after it appears in the capture), so that a lost segment really is missing at the
  server;
- IP IDs count up per sender (client from 0x1000, server from 0x5000); TTLs are 64 for
  the client and 57 for the server, 7 hops away; both stacks set DF. Resets sent by a
  stack that has no connection (a rebooted server, or the client after its connection
  is gone) carry no options, IP ID 0 and window 0, as Linux sends them.

Deterministic: a fixed start time, fixed ISNs, IP IDs and timestamp clocks; running the
script again writes the same bytes.

    python make_causes.py [OUTDIR]          (OUTDIR defaults to this script's folder)

The cases are the functions below, one or two files each; CASES at the end names the
files. Besides the captures the script writes causes_truth.json: per file the number of frames, the
frame numbers of the key packets and, in one line, the cause an expert would name.
"""
from __future__ import annotations

import json
import struct
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import checksum

C, S = 0, 1                                   # the two sides: client, server
ADDR = {C: ("192.0.2.10", 40000), S: ("198.51.100.25", 25)}
MAC = {C: "02:00:00:00:0a:0a",                # the client's NIC
       S: "02:00:00:00:fe:01"}                # its gateway: everything else arrives from it
ROUTER = "203.0.113.1"                        # the router that limits the MTU (case 9)
QUOTE = 20 + 8                                # bytes of a dropped packet an ICMP error quotes
T0_US = 1_790_400_000 * 1_000_000             # capture start, microseconds since the epoch

ISN = {C: 1_000_000_000, S: 3_000_000_000}
FIRST_IP_ID = {C: 0x1000, S: 0x5000}
TTL = {C: 64, S: 57}
TTL_2_HOPS = 62                               # a box 2 hops from the client (initial TTL 64)
TS_CLOCK = {C: 734_213_000, S: 2_051_877_000} # TSval at the capture start; 1 tick a ms,
                                              # so packets in the same ms share a TSval
MSS = 1460
SEG = MSS - 12                                # payload of a full-size segment with timestamps
SYN_WINDOW = {C: 64240, S: 29200}             # Linux's SYN and SYN-ACK windows
WINDOW = {C: 64256, S: 29312}                 # receive windows after the handshake, bytes

# timing, microseconds
RTT = 500                                     # client <-> server
THINK = 40                                    # the client's program writes its next command
PROC = 150                                    # the server's program answers a command
WIRE = 12                                     # a full-size frame at 1 Gbit/s
DELACK = 40_000                               # Linux's delayed ACK
PERSIST = 200_000                             # first persist / retransmission timeout (200 ms)

GREETING = b"220 mx.example.org ESMTP\r\n"
EHLO, EHLO_OK = b"EHLO c.example.com\r\n", b"250-mx\r\n250 PIPELINING\r\n"
MAIL, RCPT, OK = b"MAIL FROM:<a@example.com>\r\n", b"RCPT TO:<b@example.org>\r\n", b"250 ok\r\n"
DATA, GO_AHEAD = b"DATA\r\n", b"354 go ahead\r\n"
QUEUED, QUIT, BYE = b"250 queued\r\n", b"QUIT\r\n", b"221 bye\r\n"


def make_body(size: int) -> bytes:
    """A message of exactly ``size`` bytes: headers, numbered lines, the final ".\r\n"."""
    out = bytearray(b"From: <a@example.com>\r\nTo: <b@example.org>\r\nSubject: causes\r\n\r\n")
    n = 0
    while True:
        line = b"line %05d of a generated message, long enough to fill segments\r\n" % n
        if len(out) + len(line) + 4 + 3 > size:      # keep room for a filler line and ".\r\n"
            break
        out += line
        n += 1
    out += b"~" * (size - 3 - len(out) - 2) + b"\r\n.\r\n"
    assert len(out) == size
    return bytes(out)


# -- packets and the session that makes them -----------------------------------------------
@dataclass
class Pkt:
    """One captured packet. Fields left None are filled in by Session.finish()."""
    t: int                          # capture time, us after the capture start
    side: int                       # whose addresses it carries (C or S), or who it goes to (ICMP)
    flags: str = ""
    seq: int = 0
    ack: int | None = None          # None: what the sender has received by then
    win: int = 0                    # the raw window field
    data: bytes = b""
    stack: bool = True              # from that side's connection: options, its IP IDs, timestamps
    syn_opts: bool = False
    ttl: int = 64
    ip_id: int | None = None        # None: the sender's next IP ID
    df: bool = True
    delivered: bool = True          # reaches the other side's stack
    tag: str | None = None          # keys (space-separated) under which causes_truth.json
                                    # lists its frame
    icmp_mtu: int | None = None     # an ICMP "fragmentation needed" (then quote is set)
    quote: Pkt | None = None
    # filled in by finish()
    tsval: int = 0
    tsecr: int = 0
    sack: list[tuple[int, int]] = field(default_factory=list)
    frame: int = 0
    ip: bytes = b""


class Receiver:
    """What one side's stack has received: next expected byte, out-of-order blocks (most
    recently changed first, as SACK reports them) and the latest timestamp to echo."""

    def __init__(self) -> None:
        self.nxt: int | None = None
        self.blocks: list[list[int]] = []
        self.ts_recent = 0

    def take(self, p: Pkt, tsval: int) -> None:
        length = len(p.data) + ("S" in p.flags) + ("F" in p.flags)
        if "S" in p.flags:
            self.nxt = p.seq + length
        elif self.nxt is not None and length:
            start, end = p.seq, p.seq + length
            if start <= self.nxt < end:               # in order: advance, absorb blocks
                self.nxt = end
                for b in sorted(self.blocks):
                    if b[0] <= self.nxt:
                        self.nxt = max(self.nxt, b[1])
                        self.blocks.remove(b)
            elif start > self.nxt:                    # out of order: a SACK block
                merged = [start, end]
                for b in list(self.blocks):
                    if b[0] <= merged[1] and merged[0] <= b[1]:
                        merged = [min(b[0], merged[0]), max(b[1], merged[1])]
                        self.blocks.remove(b)
                self.blocks.insert(0, merged)
        self.ts_recent = tsval


def tsval(side: int, t: int) -> int:
    return (TS_CLOCK[side] + t // 1000) & 0xFFFFFFFF


class Session:
    """One TCP connection. ``send`` appends packets; ``t`` is the time of the latest one,
    from which the next is placed (``dt``) unless it is given a time of its own (``at``)."""

    def __init__(self, wscale: tuple[int, int] = (7, 7), rtt: int = RTT) -> None:
        self.wscale = wscale
        self.rtt = rtt
        self.pkts: list[Pkt] = []
        self.nxt = [ISN[C], ISN[S]]                   # each side's next sequence number
        self.win = [WINDOW[C] >> wscale[C], WINDOW[S] >> wscale[S]]
        self.t = 0
        self._last = [-1, -1]

    def send(self, side: int, flags: str, data: bytes = b"", *, dt: int = 0,
             at: int | None = None, seq: int | None = None, win: int | None = None,
             **kw) -> Pkt:
        """A packet from ``side``'s stack. Without ``seq`` it takes the next sequence
        number (and advances it); with ``seq`` it is a retransmission or a probe."""
        t = self.t + dt if at is None else at
        assert t >= self._last[side], "a side's packets must be made in time order"
        self._last[side] = t
        if seq is None:
            seq = self.nxt[side]
            self.nxt[side] += len(data) + ("S" in flags) + ("F" in flags)
        if win is None:
            win = SYN_WINDOW[side] if "S" in flags else self.win[side]
        p = Pkt(t=t, side=side, flags=flags, seq=seq, win=win, data=data, ttl=TTL[side],
                syn_opts="S" in flags, **kw)
        self.pkts.append(p)
        self.t = max(self.t, t)
        return p

    def bare_rst(self, side: int, flags: str, seq: int, ack: int = 0, *, ttl: int,
                 dt: int = 0, at: int | None = None, df: bool = True,
                 tag: str | None = None) -> Pkt:
        """A reset not sent by the connection's own stack (a stack without the connection,
        or a forger): no options, IP ID 0, window 0."""
        t = self.t + dt if at is None else at
        p = Pkt(t=t, side=side, flags=flags, seq=seq, ack=ack, win=0, stack=False, ttl=ttl,
                ip_id=0, df=df, delivered=False, tag=tag)
        self.pkts.append(p)
        self.t = max(self.t, t)
        return p

    def icmp_frag_needed(self, quote: Pkt, mtu: int, *, at: int, ip_id: int, tag: str) -> Pkt:
        p = Pkt(t=at, side=C, stack=False, ttl=TTL_2_HOPS, ip_id=ip_id, df=False,
                delivered=False, tag=tag, icmp_mtu=mtu, quote=quote)
        self.pkts.append(p)
        self.t = max(self.t, at)
        return p

    # -- the finished capture ---------------------------------------------------------
    def finish(self) -> list[tuple[int, bytes]]:
        """Fill in ACKs, SACK blocks, timestamps and IP IDs in time order, number the
        frames and return (time, Ethernet frame) pairs."""
        rx = [Receiver(), Receiver()]
        next_id = dict(FIRST_IP_ID)
        events = []
        for i, p in enumerate(self.pkts):
            events.append((p.t, 1, i))
            if p.stack and p.delivered:
                # the server's packets reach the client when captured; the client's reach
                # the server half an RTT later, and the server's answer needs another half
                # to appear here: in capture time, one RTT later
                events.append((p.t + (self.rtt if p.side == C else 0), 0, i))
        ordered = []
        for _t, kind, i in sorted(events):
            p = self.pkts[i]
            if kind == 0:
                rx[1 - p.side].take(p, tsval(p.side, p.t))
                continue
            ordered.append(p)
            if p.stack:
                r = rx[p.side]
                if p.ip_id is None:
                    p.ip_id = next_id[p.side]
                    next_id[p.side] += 1
                p.tsval, p.tsecr = tsval(p.side, p.t), r.ts_recent
                if p.ack is None:
                    p.ack = r.nxt if "A" in p.flags else 0
                if "A" in p.flags and "S" not in p.flags:
                    p.sack = [tuple(b) for b in r.blocks[:3]]
            elif p.ack is None:
                p.ack = 0
        frames = []
        for n, p in enumerate(ordered, 1):
            p.frame = n
            frames.append((p.t, self._frame(p)))
        return frames

    def _frame(self, p: Pkt) -> bytes:
        if p.icmp_mtu is not None:
            # The quote: the dropped packet's IP header and first 8 bytes (RFC 792; enough
            # for the ports and sequence number). A longer quote (RFC 1812: up to 576
            # bytes) makes tshark check the quoted TCP checksum over a truncated segment
            # and call it bad. The router checks the MTU before it decrements the TTL: the
            # quote shows the TTL as the first hop left it (63), header checksum redone.
            q = IP(p.quote.ip)
            q.ttl -= 1
            del q.chksum
            quoted = bytes(q)[:QUOTE]
            icmp = struct.pack("!BBHHH", 3, 4, 0, 0, p.icmp_mtu) + quoted
            icmp = icmp[:2] + struct.pack("!H", checksum(icmp)) + icmp[4:]
            ip = IP(src=ROUTER, dst=ADDR[C][0], ttl=p.ttl, id=p.ip_id, proto=1) / Raw(icmp)
            p.ip = bytes(ip)
            return bytes(Ether(src=MAC[S], dst=MAC[C], type=0x0800)) + p.ip
        src, sport = ADDR[p.side]
        dst, dport = ADDR[1 - p.side]
        opts: list = []
        if p.stack and p.syn_opts:
            opts = [("MSS", MSS), ("SAckOK", b""), ("Timestamp", (p.tsval, p.tsecr)),
                    ("NOP", None), ("WScale", self.wscale[p.side])]
        elif p.stack:
            opts = [("NOP", None), ("NOP", None), ("Timestamp", (p.tsval, p.tsecr))]
            if p.sack:
                opts += [("NOP", None), ("NOP", None),
                         ("SAck", tuple(x & 0xFFFFFFFF for b in p.sack for x in b))]
        tcp = TCP(sport=sport, dport=dport, seq=p.seq & 0xFFFFFFFF, ack=p.ack & 0xFFFFFFFF,
                  flags=p.flags, window=p.win, options=opts)
        ip = IP(src=src, dst=dst, ttl=p.ttl, id=p.ip_id, flags="DF" if p.df else 0) / tcp
        if p.data:
            ip = ip / Raw(p.data)
        p.ip = bytes(ip)
        return bytes(Ether(src=MAC[p.side], dst=MAC[1 - p.side], type=0x0800)) + p.ip


# -- the SMTP dialogue ------------------------------------------------------------------
def command(s: Session, text: bytes, think: int = THINK, **kw) -> Pkt:
    return s.send(C, "PA", text, dt=think, **kw)


def reply(s: Session, text: bytes, proc: int = PROC, **kw) -> Pkt:
    """The server's answer to the client packet just made: one RTT plus its program's time."""
    return s.send(S, "PA", text, dt=s.rtt + proc, **kw)


def turn(s: Session, cmd: bytes, answer: bytes) -> Pkt:
    command(s, cmd)
    return reply(s, answer)


def opening(s: Session) -> None:
    """Handshake, greeting, EHLO."""
    s.send(C, "S", at=0)
    s.send(S, "SA", dt=s.rtt + 20)
    s.send(C, "A", dt=30)
    reply(s, GREETING, proc=300)
    turn(s, EHLO, EHLO_OK)


def closing(s: Session) -> None:
    """QUIT, 221, FIN/ACK both ways."""
    turn(s, QUIT, BYE)
    s.send(C, "FA", dt=THINK)
    s.send(S, "FA", dt=s.rtt + 30)
    s.send(C, "A", dt=20)


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def small_body(s: Session) -> None:
    """RCPT, DATA, a one-segment body, 250 queued, QUIT ... FIN."""
    turn(s, RCPT, OK)
    turn(s, DATA, GO_AHEAD)
    command(s, make_body(620))
    reply(s, QUEUED)
    closing(s)


# -- 1 and 2: the server's window closes ------------------------------------------------
ZW_BODY = make_body(20 * SEG + 384 + 128 + 3 * SEG + 700)


def fill_window(s: Session, body: bytes, right_edge: int) -> tuple[int, Pkt]:
    """The body leaves in full-size segments as fast as the congestion window (10
    segments, slow start) and the server's window allow; the server ACKs every second
    segment. Its program reads nothing, so the right edge of its window stays put: each
    ACK offers what is left, rounded up to the scale's unit (a receiver never moves the
    right edge back). Stops when a full segment no longer fits; returns the number of
    bytes sent and the last ACK."""
    unit = 1 << s.wscale[S]
    cwnd, in_flight, sent, count = 10, deque(), 0, 0
    edge = right_edge                         # the right edge as the client knows it
    acks: deque[tuple[int, int]] = deque()    # (capture time, ack) of ACKs on their way
    t_nic = s.t + 15
    last = None
    while True:
        seq = s.nxt[C]
        can_send = (sent + SEG <= len(body) and len(in_flight) < cwnd
                    and seq + SEG <= edge)
        if can_send and (not acks or t_nic < acks[0][0]):
            s.send(C, "A", body[sent:sent + SEG], at=t_nic)
            sent += SEG
            count += 1
            in_flight.append(seq + SEG)
            if count % 2 == 0:
                acks.append((t_nic + s.rtt, seq + SEG))
            t_nic += WIRE
        elif acks:
            t, ack = acks.popleft()
            raw = max(0, -(-(right_edge - ack) // unit))
            last = s.send(S, "A", at=t, win=raw)
            while in_flight and in_flight[0] <= ack:
                in_flight.popleft()
                cwnd += 1                     # slow start: one segment per segment ACKed
            edge = ack + raw * unit
            t_nic = max(t_nic, t + 8)
        else:
            break
    assert not in_flight and last is not None
    return sent, last


def zero_window(reopens: bool) -> Session:
    s = Session(wscale=(7, 7))
    opening(s)
    turn(s, MAIL, OK)
    turn(s, RCPT, OK)
    turn(s, DATA, GO_AHEAD)
    right_edge = s.nxt[C] + s.win[S] * (1 << s.wscale[S])
    sent, last = fill_window(s, ZW_BODY, right_edge)
    assert last.win == 3                      # 384 bytes: less than a segment
    last.tag = "small_windows"
    # Nothing in flight and a window too small for a segment: the persist timer sends
    # what fits (Linux would set PSH on it; left off, so that PSH only ends the body).
    # The server's program reads a little: one unit (128 bytes) reopens, then none.
    s.send(C, "A", ZW_BODY[sent:sent + 384], dt=PERSIST, tag="window_full")
    sent += 384
    s.send(S, "A", dt=s.rtt + 10, win=1, tag="small_windows")
    s.send(C, "A", ZW_BODY[sent:sent + 128], dt=PERSIST, tag="window_full")
    sent += 128
    zero = s.send(S, "A", dt=s.rtt + 10, win=0, tag="zero_window")
    # Linux's zero-window probes: no data, seq = snd_una - 1, the persist timer doubling
    # from 200 ms; the server's stack answers each at once, its window still closed.
    t = zero.t
    for k in range(2 if reopens else 4):
        t += PERSIST << k
        s.send(C, "A", at=t, seq=s.nxt[C] - 1, tag="probes")
        s.send(S, "A", dt=s.rtt + 10, win=0, tag="probe_answers zero_window")
    if not reopens:
        s.send(S, "RA", at=zero.t + 4_000_000, win=0, tag="reset")
        return s
    # the server's program reads again: a window update; the rest of the body follows
    s.send(S, "A", at=zero.t + 900_000, tag="reopen")
    rest = chunks(ZW_BODY[sent:], SEG)
    segs = [s.send(C, "PA" if i == len(rest) - 1 else "A", c, dt=15 if i == 0 else WIRE)
            for i, c in enumerate(rest)]
    s.send(S, "A", at=segs[1].t + s.rtt)
    s.t = segs[-1].t
    reply(s, QUEUED, proc=1000)
    closing(s)
    return s


# -- 3 and 4: keep-alives -----------------------------------------------------------------
KEEPIDLE, KEEPINTVL, KEEPCNT = 10_000_000, 1_000_000, 9     # the client's socket options


def keepalive(answered: bool) -> Session:
    """After MAIL/250 the client's program is idle; its stack sends keep-alives (no data,
    seq = snd_nxt - 1) KEEPIDLE after the last packet it received, and, while they go
    unanswered, every KEEPINTVL; after KEEPCNT unanswered ones it resets."""
    s = Session(wscale=(7, 9))
    opening(s)
    mail_ok = turn(s, MAIL, OK)
    last_rx = mail_ok.t
    s.send(C, "A", dt=DELACK)                 # the delayed ACK of 250
    if answered:
        for _ in range(3):
            s.send(C, "A", at=last_rx + KEEPIDLE, seq=s.nxt[C] - 1, tag="keepalives")
            last_rx = s.send(S, "A", dt=s.rtt + 10, tag="keepalive_answers").t
        s.t = last_rx + 5_000_000             # the program carries on
        small_body(s)
        return s
    mail_ok.tag = "last_peer_packet"
    t = last_rx + KEEPIDLE
    for _ in range(KEEPCNT):
        s.send(C, "A", at=t, seq=s.nxt[C] - 1, tag="keepalives")
        t += KEEPINTVL
    s.send(C, "RA", at=t, win=0, tag="reset")
    return s


# -- 5, 6, 7: resets -----------------------------------------------------------------------
def peer_rebooted() -> Session:
    s = Session(wscale=(7, 8))
    opening(s)
    turn(s, MAIL, OK)
    s.send(C, "A", dt=DELACK)
    command(s, RCPT, think=120_000_000, tag="trigger")
    # The server came back without the connection: its stack answers the segment with a
    # plain RST, seq = the segment's ACK number, as for any segment of an unknown connection.
    s.bare_rst(S, "R", seq=s.nxt[S], ttl=TTL[S], dt=s.rtt + 10, tag="reset")
    return s


def injected_reset() -> Session:
    s = Session(wscale=(7, 8))
    opening(s)
    ok = turn(s, MAIL, OK)
    # A firewall 2 hops away drops RCPT and answers it in the server's name.
    rcpt = command(s, RCPT, think=1000, delivered=False, tag="trigger")
    s.bare_rst(S, "RA", seq=s.nxt[S], ack=s.nxt[C], ttl=TTL_2_HOPS, dt=250, df=False,
               tag="reset")
    # The server never got RCPT, which carried the ACK of its 250: after its retransmission
    # timeout it sends the reply again. The client's connection is gone; its stack answers
    # with a plain RST, seq = that segment's ACK number (the RCPT's sequence number).
    s.send(S, "PA", OK, at=ok.t + PERSIST + 1000, seq=ok.seq, tag="retransmissions")
    s.bare_rst(C, "R", seq=rcpt.seq, ttl=TTL[C], dt=20, tag="local_reset")
    return s


def injected_reset_before_peer() -> Session:
    # the server is 5.4 ms away, the forger close to the client
    s = Session(wscale=(7, 7), rtt=5400)
    syn = s.send(C, "S", at=0)
    s.bare_rst(S, "RA", seq=0, ack=syn.seq + 1, ttl=TTL_2_HOPS, at=400, df=False, tag="reset")
    s.send(S, "SA", at=5400, tag="synack")
    s.bare_rst(C, "R", seq=syn.seq + 1, ttl=TTL[C], dt=15, tag="local_reset")
    return s


# -- 8: a lost segment, duplicate ACKs, fast retransmission ------------------------------
def dup_acks() -> Session:
    s = Session(wscale=(7, 7))
    opening(s)
    turn(s, MAIL, OK)
    turn(s, RCPT, OK)
    turn(s, DATA, GO_AHEAD)
    parts = chunks(make_body(5 * SEG + 800), SEG)
    t0 = s.t + 15
    segs = [s.send(C, "PA" if i == 5 else "A", c, at=t0 + i * WIRE, delivered=(i != 1),
                   tag="lost" if i == 1 else None) for i, c in enumerate(parts)]
    # The server ACKs the first segment, then each later one with a duplicate ACK and a
    # SACK block. Three are enough for the client: it retransmits the lost segment before
    # the fourth arrives.
    s.send(S, "A", at=segs[0].t + s.rtt)
    for i in range(2, 6):
        s.send(S, "A", at=segs[i].t + s.rtt, tag="dup_acks")
        if i == 4:
            fr = s.send(C, "A", parts[1], at=s.t + 8, seq=segs[1].seq,
                        tag="fast_retransmission retransmissions")
    s.send(S, "A", at=fr.t + s.rtt, tag="recovered")
    reply(s, QUEUED, proc=2000)
    closing(s)
    return s


# -- 9 and 10: path MTU -------------------------------------------------------------------
PMTU_BODY = make_body(3 * SEG)
NEXT_HOP_MTU = 1400


def icmp_frag_needed() -> Session:
    s = Session(wscale=(9, 7))
    opening(s)
    turn(s, MAIL, OK)
    turn(s, RCPT, OK)
    turn(s, DATA, GO_AHEAD)
    t0 = s.t + 15
    big = [s.send(C, "PA" if i == 2 else "A", c, at=t0 + i * WIRE, delivered=False,
                  tag="too_big") for i, c in enumerate(chunks(PMTU_BODY, SEG))]
    # The router answers each 1500-byte packet from its slow path, about 1.2 ms later.
    # The first ICMP is enough: the client re-sends everything in flight in segments that
    # fit 1400 bytes (1400 - 20 - 20 - 12 = 1348).
    small = chunks(PMTU_BODY, NEXT_HOP_MTU - 52)
    resent = []
    for i, b in enumerate(big):
        s.icmp_frag_needed(b, NEXT_HOP_MTU, at=b.t + 1200, ip_id=0x3E01 + i, tag="icmp")
        if i == 0:
            seq = b.seq
            for k, c in enumerate(small):
                resent.append(s.send(C, "PA" if k == len(small) - 1 else "A", c,
                                     at=b.t + 1210 + k * WIRE, seq=seq, tag="retransmissions"))
                seq += len(c)
    s.send(S, "A", at=resent[1].t + s.rtt)
    s.t = resent[-1].t
    reply(s, QUEUED)
    closing(s)
    return s


def pmtu_blackhole() -> Session:
    s = Session(wscale=(8, 7))
    opening(s)
    turn(s, MAIL, OK)
    turn(s, RCPT, OK)
    turn(s, DATA, GO_AHEAD)
    t0 = s.t + 15
    big = [s.send(C, "PA" if i == 2 else "A", c, at=t0 + i * WIRE, delivered=False,
                  tag="unacked") for i, c in enumerate(chunks(PMTU_BODY, SEG))]
    # No ICMP comes back and nothing is ACKed: the retransmission timer resends the first
    # segment, unchanged, backing off from 200 ms; the client's program gives up at 20 s.
    t = big[0].t
    for k in range(6):
        t += PERSIST << k
        s.send(C, "A", big[0].data, at=t, seq=big[0].seq, delivered=False,
               tag="retransmissions")
    s.send(C, "RA", at=big[0].t + 20_000_000, win=0, tag="reset")
    return s


# -- the files ----------------------------------------------------------------------------
SINGLE = ("reopen", "reset", "local_reset", "trigger", "synack", "fast_retransmission",
          "recovered", "last_peer_packet")

CASES: dict[str, tuple[Callable[[], Session], dict, str]] = {
    "gen_zero_window_scaled.pcap": (
        lambda: zero_window(reopens=False), {"reopen": None},
        ("zero window: the server's receive window (scale 128) closed, 384, 128, 0 bytes, "
         "and stayed shut through 4 zero-window probes; the server reset after 4 s: the "
         "receiving program stopped reading")),
    "gen_zero_window_reopens.pcap": (
        lambda: zero_window(reopens=True), {"reset": None},
        ("no failure: flow control; the server's window was shut for 0.9 s, reopened "
         "(window update) and the message was queued; normal close")),
    "gen_keepalive_answered.pcap": (
        lambda: keepalive(answered=True), {"reset": None},
        ("no failure: the client idled 35 s; its 3 keep-alives were each answered at once; "
         "the session then completed normally")),
    "gen_keepalive_unanswered.pcap": (
        lambda: keepalive(answered=False), {"keepalive_answers": []},
        ("vanished peer: the server, which answered every command within 1 ms, went silent; "
         "9 keep-alives went unanswered and the client's stack reset (keep-alive timeout)")),
    "gen_peer_rebooted.pcap": (
        peer_rebooted, {},
        ("restarted peer: after 120 s idle the server's stack answered RCPT with a bare RST "
         "(no ACK, IP ID 0, no options, TTL 57 as before): it no longer knew the connection")),
    "gen_injected_reset.pcap": (
        injected_reset, {},
        ("injected reset: a RST in the server's name from 2 hops away (TTL 62, not 57; IP ID "
         "0; no timestamps); the real server went on and retransmitted its 250")),
    "gen_injected_reset_before_peer.pcap": (
        injected_reset_before_peer, {},
        ("injected reset: a forged RST|ACK (TTL 62, no options) refused the SYN 5 ms before "
         "the real SYN-ACK (TTL 57) arrived")),
    "gen_dup_acks.pcap": (
        dup_acks, {"reset": None},
        ("loss recovered: one body segment lost, 4 duplicate ACKs with SACK, one fast "
         "retransmission; normal completion")),
    "gen_icmp_frag_needed.pcap": (
        icmp_frag_needed, {"reset": None},
        ("path MTU discovery working: ICMP fragmentation needed (MTU 1400) from 203.0.113.1, "
         "the body re-sent in 1348-byte segments; normal completion, no black hole")),
    "gen_pmtu_blackhole.pcap": (
        pmtu_blackhole, {"icmp": []},
        ("PMTU black hole: small segments pass, the 1500-byte DF segments vanish without any "
         "ICMP; the first one retransmitted 6 times, never ACKed; the client reset")),
}


def write_pcap(path: Path, frames: list[tuple[int, bytes]]) -> None:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)]
    for t, frame in frames:
        ts = T0_US + t
        out.append(struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, len(frame), len(frame)))
        out.append(frame)
    path.write_bytes(b"".join(out))


def main(outdir: Path) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    truth = {}
    for name, (make, extra, expected) in CASES.items():
        s = make()
        frames = s.finish()
        write_pcap(outdir / name, frames)
        keys: dict = {}
        for p in sorted(s.pkts, key=lambda p: p.frame):
            for key in (p.tag or "").split():
                if key in SINGLE:
                    keys[key] = p.frame
                else:
                    keys.setdefault(key, []).append(p.frame)
        keys.update({k: v for k, v in extra.items() if k not in keys})
        truth[name] = {"frames": len(frames), "key_frames": keys, "expected": expected}
    (outdir / "causes_truth.json").write_text(json.dumps(truth, indent=2) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent))
