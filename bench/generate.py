"""Write a realistic SMTP capture of a chosen size for benchmarks.

About 200 concurrent SMTP sessions over Ethernet/IPv4; each does EHLO, one to three
messages (MAIL, 1-3 RCPT, DATA, a 1-50 KB body in MSS-sized segments with PSH on the last
one, as Linux sends a write), QUIT and a FIN close. About 0.5 % of data segments are
retransmitted; about 1 % of sessions end with the server resetting, half of those while a
client command sat unpushed. Deterministic for a given seed.

    python bench/generate.py OUT.pcap [--packets 2000000] [--seed 1]
    python bench/generate.py - --packets 10000000 | pushscan analyze -
    python bench/generate.py - --tiny 10000000 | pushscan analyze -    # a SYN flood

``--tiny N`` writes N one-packet sessions instead: a SYN each from a distinct client
address and port to port 80, never answered (the worst case for open-session memory).
``--refused N`` writes N refused SMTP sessions: a SYN each to port 25, answered by a RST
(the traffic of a failing peer: every session ends, and every one is reported).
"""
from __future__ import annotations

import argparse
import random
import struct
import sys
from typing import BinaryIO, Iterator

MSS = 1460
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
REC = struct.Struct("<IIII")
HDR = struct.Struct("!6s6sHBBHHHBBH4s4sHHIIBBHHH")   # Ethernet + IPv4 + TCP, no options
MAC_C, MAC_S = b"\x02\x00\x00\x00\x00\x01", b"\x02\x00\x00\x00\x00\x02"
LINE = b"This is a line of an ordinary message body, nothing special in it.\r\n"
BODY_BLOCK = LINE * 800          # 56 KB to slice bodies from
T0 = 1_790_000_000.0

# one step of a session script: (direction 0=client 1=server, flags, payload)
Step = tuple[int, int, bytes]


def smtp_session(rng: random.Random) -> Iterator[Step]:
    """The packets of one SMTP session, as (direction, flags, payload)."""
    yield 0, SYN, b""
    yield 1, SYN | ACK, b""
    yield 0, ACK, b""

    def say(d: int, data: bytes, push: bool = True) -> Iterator[Step]:
        for i in range(0, len(data), MSS):
            last = i + MSS >= len(data)
            yield d, ACK | (PSH if (push and last) else 0), data[i:i + MSS]
            if not last and (i // MSS) % 2 == 1:
                yield d ^ 1, ACK, b""          # delayed ACK every second segment
        yield d ^ 1, ACK, b""

    yield from say(1, b"220 mx.example.org ESMTP\r\n")
    yield from say(0, b"EHLO client.example.com\r\n")
    yield from say(1, b"250-mx.example.org\r\n250-PIPELINING\r\n250-SIZE 52428800\r\n250 8BITMIME\r\n")
    reset = rng.random() < 0.01
    for m in range(rng.randint(1, 3)):
        if reset and m == 0:
            unpushed = rng.random() < 0.5
            yield from say(0, b"MAIL FROM:<sender@example.com>\r\n", push=not unpushed)
            yield 1, RST | ACK, b""
            return
        yield from say(0, b"MAIL FROM:<sender@example.com>\r\n")
        yield from say(1, b"250 2.1.0 Ok\r\n")
        for r in range(rng.randint(1, 3)):
            yield from say(0, b"RCPT TO:<user%d@example.org>\r\n" % r)
            yield from say(1, b"250 2.1.5 Ok\r\n")
        yield from say(0, b"DATA\r\n")
        yield from say(1, b"354 End data with <CR><LF>.<CR><LF>\r\n")
        size = rng.randint(1024, 50 * 1024)
        yield from say(0, BODY_BLOCK[:size - size % len(LINE)] + b".\r\n")   # whole lines, CRLF.CRLF
        yield from say(1, b"250 2.0.0 Ok: queued\r\n")
    yield from say(0, b"QUIT\r\n")
    yield from say(1, b"221 2.0.0 Bye\r\n")
    yield 0, FIN | ACK, b""
    yield 1, FIN | ACK, b""
    yield 0, ACK, b""


class Live:
    """A session being written: its script and its sequence state."""

    __slots__ = ("steps", "ips", "ports", "seq", "ipid")

    def __init__(self, n: int, rng: random.Random) -> None:
        self.steps = smtp_session(rng)
        cl = 0x0A000000 | ((n * 7919) % 0xFFFFFF)              # 10.x.y.z clients
        self.ips = (struct.pack("!I", cl), struct.pack("!I", 0xC6336419))  # server 198.51.100.25
        self.ports = (1024 + n % 60000, 25)
        self.seq = [rng.getrandbits(32), rng.getrandbits(32)]
        self.ipid = [0, 0]


def generate(out: BinaryIO, packets: int, seed: int = 1, concurrency: int = 200) -> int:
    rng = random.Random(seed)
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
    live: list[Live] = []
    n_sessions = 0
    written = 0
    t = T0
    buf: list[bytes] = []
    pack, rec = HDR.pack, REC.pack
    macs = ((MAC_C, MAC_S), (MAC_S, MAC_C))
    while written < packets:
        while len(live) < concurrency:
            live.append(Live(n_sessions, rng))
            n_sessions += 1
        k = rng.randrange(len(live))
        s = live[k]
        step = next(s.steps, None)
        if step is None:
            live[k] = live[-1]
            live.pop()
            continue
        d, flags, payload = step
        o = d ^ 1
        seq = s.seq[d]
        ack = s.seq[o] if flags & ACK else 0
        copies = 2 if payload and rng.random() < 0.005 else 1   # ~0.5 % retransmitted
        for _ in range(copies):
            t += rng.expovariate(20000.0)                        # ~50 µs apart on average
            s.ipid[d] = (s.ipid[d] + 1) & 0xFFFF
            src, dst = macs[d]
            hdr = pack(dst, src, 0x0800, 0x45, 0, 40 + len(payload), s.ipid[d], 0x4000, 64, 6, 0,
                       s.ips[d], s.ips[o], s.ports[d], s.ports[o], seq & 0xFFFFFFFF,
                       ack & 0xFFFFFFFF, 0x50, flags, 64240, 0, 0)
            sec = int(t)
            frame_len = 54 + len(payload)
            buf.append(rec(sec, int((t - sec) * 1e6), frame_len, frame_len))
            buf.append(hdr)
            if payload:
                buf.append(payload)
            written += 1
        s.seq[d] = seq + len(payload) + (1 if flags & (SYN | FIN) else 0)
        if len(buf) > 30000:
            out.write(b"".join(buf))
            buf.clear()
    out.write(b"".join(buf))
    return written


def tiny_sessions(out: BinaryIO, n: int) -> int:
    """N sessions of one unanswered SYN each, 1 µs apart."""
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
    pack, rec = HDR.pack, REC.pack
    server = struct.pack("!I", 0xC6336450)            # 198.51.100.80
    buf: list[bytes] = []
    for i in range(n):
        t_us = i
        client = struct.pack("!I", 0x0A000000 | (i >> 14))
        buf.append(rec(1_790_000_000 + t_us // 1_000_000, t_us % 1_000_000, 54, 54))
        buf.append(pack(MAC_S, MAC_C, 0x0800, 0x45, 0, 40, i & 0xFFFF, 0x4000, 64, 6, 0, client,
                        server, 1024 + (i & 0x3FFF), 80, i, 0, 0x50, SYN, 64240, 0, 0))
        if len(buf) > 60000:
            out.write(b"".join(buf))
            buf.clear()
    out.write(b"".join(buf))
    return n


def refused_sessions(out: BinaryIO, n: int) -> int:
    """N SMTP sessions refused: a SYN to port 25 each, answered by RST-ACK, 1 µs apart."""
    out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
    pack, rec = HDR.pack, REC.pack
    server = struct.pack("!I", 0xC6336419)            # 198.51.100.25
    buf: list[bytes] = []
    for i in range(n):
        client = struct.pack("!I", 0x0A000000 | (i >> 14))
        port = 1024 + (i & 0x3FFF)
        for k, (src, dst, sport, dport, flags, seq, ack) in enumerate((
                (client, server, port, 25, SYN, i, 0),
                (server, client, 25, port, RST | ACK, 0, i + 1))):
            t_us = 2 * i + k
            buf.append(rec(1_790_000_000 + t_us // 1_000_000, t_us % 1_000_000, 54, 54))
            buf.append(pack(*((MAC_S, MAC_C) if k == 0 else (MAC_C, MAC_S)), 0x0800, 0x45, 0, 40,
                            i & 0xFFFF, 0x4000, 64, 6, 0, src, dst, sport, dport, seq, ack, 0x50,
                            flags, 64240 if k == 0 else 0, 0, 0))
        if len(buf) > 60000:
            out.write(b"".join(buf))
            buf.clear()
    out.write(b"".join(buf))
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="output pcap file, or - for standard output")
    ap.add_argument("--packets", type=int, default=2_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=200)
    ap.add_argument("--tiny", type=int, default=0, metavar="N", help="N one-SYN sessions instead")
    ap.add_argument("--refused", type=int, default=0, metavar="N",
                    help="N SMTP sessions refused (SYN, RST) instead")
    a = ap.parse_args()
    out = sys.stdout.buffer if a.out == "-" else open(a.out, "wb")
    try:
        if a.tiny:
            tiny_sessions(out, a.tiny)
        elif a.refused:
            refused_sessions(out, a.refused)
        else:
            generate(out, a.packets, a.seed, a.concurrency)
    except BrokenPipeError:
        pass   # the reader stopped early
    finally:
        if out is not sys.stdout.buffer:
            out.close()


if __name__ == "__main__":
    main()
