"""Synthetic sessions for the compare tests: one session as the near point sees it, and
what a middlebox between the points makes of it at the far point (NAT, sequence shifts,
a clock offset, delays that reorder the two directions, flag and payload changes)."""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from pushscan.compare.segments import C2S, S2C, Endpoint, Seg, Trace
from pushscan.model import ACK, FIN, PSH, SYN

MASK = 0xFFFFFFFF


@dataclass
class Shape:
    """A session: turns of (direction, segment lengths); identity fields on or off."""

    turns: list[tuple[int, list[int]]]
    timestamps: bool = True
    ipids: bool = True
    gap_ns: int = 200_000             # between a session's packets at the near point


@dataclass
class Path:
    """What lies between the points."""

    nat: bool = False
    shift: tuple[int, int] = (0, 0)   # added to each direction's sequence numbers at far
    offset_ns: int = 0                # far clock - near clock
    delay_ns: tuple[int, int] = (50_000, 50_000)   # one-way delay per direction
    jitter_ns: int = 0
    clear_psh: set[int] = field(default_factory=set)     # indices of segments (near order)
    rewrite: dict[int, bytes] = field(default_factory=dict)


def near_session(shape: Shape, start_ns: int, rng: random.Random, port: int) -> list[Seg]:
    """The session's segments at the near point (the client's side): frames 0 for now."""
    isn = [rng.getrandbits(32), rng.getrandbits(32)]
    nxt = [isn[0], isn[1]]
    ipid = [rng.randrange(1, 60000), rng.randrange(1, 60000)] if shape.ipids else None
    tsb = [rng.getrandbits(31), rng.getrandbits(31)]
    out: list[Seg] = []
    t = start_ns

    def seg(d: int, flags: int, payload: bytes = b"", mss: int = 0) -> None:
        nonlocal t
        t += shape.gap_ns
        if ipid is not None:
            ipid[d] = (ipid[d] + 1) & 0xFFFF or 1
        ack = nxt[d ^ 1] if flags & ACK else 0
        out.append(Seg(0, t, d, flags, nxt[d], ack, len(payload), payload,
                       64 if d == C2S else 63, ipid[d] if ipid else -1, mss,
                       (tsb[d] + t // 1_000_000) & 0x7FFFFFFF if shape.timestamps else -1,
                       65000, 0))
        nxt[d] = (nxt[d] + len(payload) + (1 if flags & (SYN | FIN) else 0)) & MASK

    seg(C2S, SYN, mss=1460)
    seg(S2C, SYN | ACK, mss=1460)
    seg(C2S, ACK)
    for d, lengths in shape.turns:
        for i, n in enumerate(lengths):
            body = bytes(rng.randrange(32, 127) for _ in range(n))
            seg(d, ACK | (PSH if i == len(lengths) - 1 else 0), body)
        seg(d ^ 1, ACK)
    seg(C2S, FIN | ACK)
    seg(S2C, FIN | ACK)
    seg(C2S, ACK)
    return out


def far_copy(near: list[Seg], path: Path, rng: random.Random) -> list[Seg]:
    """The far point's copies of a near session (client at near), in far time order."""
    out = []
    for i, s in enumerate(near):
        d = s.dir
        delay = path.delay_ns[d] + (rng.randrange(path.jitter_ns + 1) if path.jitter_ns else 0)
        # a client segment passes near, then far; a server segment far, then near
        ts = s.ts + path.offset_ns + (delay if d == C2S else -delay)
        seq = (s.seq + path.shift[d]) & MASK
        ack = (s.ack + path.shift[d ^ 1]) & MASK if s.flags & ACK else s.ack
        flags = s.flags & ~PSH if i in path.clear_psh else s.flags
        payload = path.rewrite.get(i, s.payload)
        out.append(Seg(0, ts, d, flags, seq, ack, s.plen, payload,
                       s.ttl - 1 if d == C2S else s.ttl + 1, s.ipid, s.mss, s.tsval, s.win, s.opts))
    return sorted(out, key=lambda s: s.ts)


def number(sessions: list[list[Seg]]) -> list[list[Seg]]:
    """Frame numbers as one capture file of all these sessions gives them (time order)."""
    allsegs = sorted(((s.ts, k, j) for k, ss in enumerate(sessions) for j, s in enumerate(ss)))
    frames = {(k, j): f for f, (_, k, j) in enumerate(allsegs, 1)}
    out = []
    for k, ss in enumerate(sessions):
        renum = [Seg(frames[(k, j)], *s[1:]) for j, s in enumerate(ss)]
        out.append(sorted(renum, key=lambda s: s.frame))
    return out


def traces(sessions: list[list[Seg]], endpoints: list[tuple[Endpoint, Endpoint]]) -> list[Trace]:
    """Traces with ids in order of first packet (as analyze numbers them)."""
    order = sorted(range(len(sessions)), key=lambda k: sessions[k][0].ts)
    return [Trace(i, *endpoints[k], tuple(sessions[k])) for i, k in enumerate(order)]


def scene(shapes: list[Shape], path: Path, seed: int, spacing_ns: int = 20_000_000):
    """Near and far traces of several sessions through one path; and, for each near trace
    (by index), the index of its far trace."""
    rng = random.Random(seed)
    near, far, ep_n, ep_f = [], [], [], []
    for k, shape in enumerate(shapes):
        start = 1_700_000_000_000_000_000 + k * spacing_ns + rng.randrange(spacing_ns // 4)
        port = 30000 + k
        n = near_session(shape, start, rng, port)
        near.append(n)
        far.append(far_copy(n, path, rng))
        client = Endpoint("192.0.2.10", port)
        server = Endpoint("198.51.100.25", 25)
        ep_n.append((client, server))
        ep_f.append((Endpoint("198.51.100.1", 40000 + k) if path.nat else client, server))
    nt = traces(number(near), ep_n)
    ft = traces(number(far), ep_f)
    # which far trace is the copy of which near trace: same client port (or NAT port)
    by_port = {t.client.port - (40000 if path.nat else 0): i for i, t in enumerate(ft)}
    want = {i: by_port[t.client.port - (30000 if path.nat else 0)] if path.nat else by_port[t.client.port]
            for i, t in enumerate(nt)}
    return nt, ft, want
