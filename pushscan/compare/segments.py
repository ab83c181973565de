"""A session as one capture point saw it, and the matching of its segments with their
copies at the other point. Sans-I/O: values in, values out.

Two captures of one path see the same packets, changed by what lies between the points:
NAT rewrites addresses and ports, a firewall may shift sequence numbers (ISN
randomisation), clear or set flags, rewrite payload, clamp options, drop or inject
segments. What survives is what the matching uses: a direction's sequence numbers move by
one constant (found by votes, ``seq_offsets``), so a segment keeps its place in the
byte stream, its length, its IP ID and its TCP timestamp.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from statistics import median
from typing import Iterable, NamedTuple, Optional, Sequence

from ..model import ACK, FIN, RST, SYN
from ..seq import MASK

C2S, S2C = 0, 1                      # directions: client -> server, server -> client
DIRECTIONS = ("client_to_server", "server_to_client")
KIND = SYN | FIN | RST               # the flags a copy keeps (PSH may be changed on the way)


class Endpoint(NamedTuple):
    ip: str
    port: int

    def __str__(self) -> str:
        return f"[{self.ip}]:{self.port}" if ":" in self.ip else f"{self.ip}:{self.port}"


class Seg(NamedTuple):
    """One TCP segment as one point captured it. ``dir`` is C2S or S2C; ``seq``/``ack``
    are the raw 32-bit fields; ``payload`` the captured bytes (shorter than ``plen`` when
    the snap length cut them); ``ipid`` -1 for IPv6; ``mss`` 0 and ``tsval`` -1 when the
    option is absent."""

    frame: int
    ts: int            # ns
    dir: int
    flags: int
    seq: int
    ack: int
    plen: int
    payload: bytes
    ttl: int
    ipid: int
    mss: int
    tsval: int
    win: int
    opts: int


@dataclass(frozen=True, slots=True)
class Trace:
    """One session as one capture point saw it: its id there (``pushscan analyze``'s,
    Wireshark's ``tcp.stream``), its endpoints there, and its segments in capture order."""

    id: int
    client: Endpoint
    server: Endpoint
    segments: tuple[Seg, ...]

    @property
    def start(self) -> int:
        return self.segments[0].ts if self.segments else 0

    @property
    def end(self) -> int:
        return self.segments[-1].ts if self.segments else 0

    @property
    def anchor(self) -> int:
        """The session's time for pairing: its first client segment (the SYN, as a rule),
        else its first segment. One direction's packet, so that two points' anchors
        differ by the clock offset plus one direction's delay, for every session."""
        return next((s.ts for s in self.segments if s.dir == C2S), self.start)


class Matching(NamedTuple):
    """The segments of one session at both points: ``pairs`` of copies (near, far) in the
    near point's order, the segments seen at one point only, and per direction the
    constant the far point's sequence numbers differ by (``far - near`` mod 2**32)."""

    pairs: tuple[tuple[Seg, Seg], ...]
    near_only: tuple[Seg, ...]
    far_only: tuple[Seg, ...]
    seq_offsets: tuple[int, int]


def strong_key(s: Seg) -> Optional[tuple[int, int, int, int]]:
    """What tells one packet from every other of its direction without looking at
    sequence numbers: length, IP ID and TCP timestamp (None when they tell nothing: no
    timestamp and an IP ID of 0 or none)."""
    if s.tsval < 0 and s.ipid <= 0:
        return None
    return (s.dir, s.plen, s.ipid, s.tsval)


def payload_key(s: Seg) -> Optional[tuple[int, int, int]]:
    """A data segment by its bytes (None for short or cut payloads)."""
    if s.plen < 8 or len(s.payload) < min(s.plen, 64):
        return None
    return (s.dir, s.plen, hash(s.payload))


def seq_offsets(near: Sequence[Seg], far: Sequence[Seg]) -> tuple[int, int]:
    """Per direction, the constant ``far.seq - near.seq`` (mod 2**32): the value most
    copies agree on, found by SYNs (their ISNs), by packets told apart by length, IP ID
    and timestamp, and by payload bytes. 0 when nothing pairs (then the points are taken
    to agree)."""
    votes: list[Counter[int]] = [Counter(), Counter()]
    by_strong: dict[tuple[int, int, int, int], Optional[Seg]] = {}
    by_payload: dict[tuple[int, int, int], Optional[Seg]] = {}
    syn_far: list[list[Seg]] = [[], []]
    for f in far:
        if f.flags & SYN:
            syn_far[f.dir].append(f)
        k = strong_key(f)
        if k is not None:
            by_strong[k] = f if k not in by_strong else None     # None: not unique
        p = payload_key(f)
        if p is not None:
            by_payload[p] = f if p not in by_payload else None
    for n in near:
        if n.flags & SYN:
            for f in syn_far[n.dir]:
                votes[n.dir][(f.seq - n.seq) & MASK] += 3
        k = strong_key(n)
        f2 = by_strong.get(k) if k is not None else None
        if f2 is not None:
            votes[n.dir][(f2.seq - n.seq) & MASK] += 2
        p = payload_key(n)
        f3 = by_payload.get(p) if p is not None else None
        if f3 is not None:
            votes[n.dir][(f3.seq - n.seq) & MASK] += 1
    return (votes[0].most_common(1)[0][0] if votes[0] else 0,
            votes[1].most_common(1)[0][0] if votes[1] else 0)


def _copy_key(s: Seg, off: int, ack_off: int) -> tuple[int, int, int, int, int]:
    """What a copy of ``s`` keeps at the far point, in the far point's numbers: direction,
    kind (SYN/FIN/RST), place in the stream, length, acknowledgement."""
    ack = (s.ack + ack_off) & MASK if s.flags & ACK else -1
    return (s.dir, s.flags & KIND, (s.seq + off) & MASK, s.plen, ack)


def _same_packet(n: Seg, f: Seg) -> bool:
    return n.ipid == f.ipid and n.tsval == f.tsval


def match_segments(near: Sequence[Seg], far: Sequence[Seg],
                   expected_delta: Optional[int] = None) -> Matching:
    """Pair each segment with its copy at the other point.

    Copies agree on direction, kind, place in the stream (after ``seq_offsets``), length
    and acknowledgement; among several such (an original and its retransmissions, a
    duplicate ACK) the one with the same IP ID and timestamp is the copy, else the one
    closest in time (``far.ts - near.ts`` nearest to the direction's usual difference,
    from the unambiguous copies, else ``expected_delta``). Segments whose place or length
    changed on the way are paired by IP ID and timestamp when those are unique. Every
    segment is in exactly one pair or in one of the ``*_only`` lists.
    """
    offs = seq_offsets(near, far)
    nkeys: dict[tuple[int, int, int, int, int], list[Seg]] = defaultdict(list)
    fkeys: dict[tuple[int, int, int, int, int], list[Seg]] = defaultdict(list)
    for n in near:
        nkeys[_copy_key(n, offs[n.dir], offs[n.dir ^ 1])].append(n)
    for f in far:
        fkeys[_copy_key(f, 0, 0)].append(f)
    pairs: list[tuple[Seg, Seg]] = []
    ambiguous: list[tuple[list[Seg], list[Seg]]] = []
    for key, ns in nkeys.items():
        fs = fkeys.get(key)
        if not fs:
            continue
        if len(ns) == 1 and len(fs) == 1:
            pairs.append((ns[0], fs[0]))
            continue
        left_f = list(fs)
        left_n = []
        for n in ns:                         # the same packet: same IP ID and timestamp
            hit = next((f for f in left_f if _same_packet(n, f)), None)
            if hit is None:
                left_n.append(n)
            else:
                left_f.remove(hit)
                pairs.append((n, hit))
        if left_n and left_f:
            ambiguous.append((left_n, left_f))
    deltas: list[list[int]] = [[], []]
    for n, f in pairs:
        deltas[n.dir].append(f.ts - n.ts)
    usual = [int(median(d)) if d else expected_delta for d in deltas]
    for ns, fs in ambiguous:
        pairs.extend(_nearest_in_time(ns, fs, usual[ns[0].dir]))
    matched_n = {n.frame for n, _ in pairs}
    matched_f = {f.frame for _, f in pairs}
    pairs.extend(_by_identity([n for n in near if n.frame not in matched_n],
                              [f for f in far if f.frame not in matched_f]))
    matched_n = {n.frame for n, _ in pairs}
    matched_f = {f.frame for _, f in pairs}
    pairs.sort(key=lambda p: (p[0].ts, p[0].frame))
    return Matching(tuple(pairs), tuple(n for n in near if n.frame not in matched_n),
                    tuple(f for f in far if f.frame not in matched_f), offs)


def _nearest_in_time(ns: list[Seg], fs: list[Seg], usual: Optional[int]
                     ) -> Iterable[tuple[Seg, Seg]]:
    """Copies of one kind, place and length told apart by time only: as many as both
    points hold, in order, each far copy with the near one whose time (moved by the
    usual difference) is nearest."""
    if len(ns) == len(fs) or usual is None:
        return zip(ns, fs)
    out = []
    free = list(ns)
    for f in fs:
        if not free:
            break
        n = min(free, key=lambda c: abs(f.ts - c.ts - usual))
        free.remove(n)
        out.append((n, f))
    return out


def _by_identity(ns: list[Seg], fs: list[Seg]) -> list[tuple[Seg, Seg]]:
    """Leftovers paired by direction, IP ID and timestamp alone (a rewrite changed their
    length or place), when both are informative and unique on both sides."""
    def index(segs: list[Seg]) -> dict[tuple[int, int, int], Optional[Seg]]:
        out: dict[tuple[int, int, int], Optional[Seg]] = {}
        for s in segs:
            if s.tsval >= 0 and s.ipid > 0:
                k = (s.dir, s.ipid, s.tsval)
                out[k] = s if k not in out else None
        return out

    def split(n: Seg, f: Seg) -> bool:
        """One is a piece of the other (segmentation offload or coalescing on a capturing
        host): not one packet changed on the way."""
        a, b = (n.payload, f.payload) if n.plen > f.plen else (f.payload, n.payload)
        return n.plen != f.plen and a.startswith(b)

    fi = index(fs)
    return [(n, f) for k, n in index(ns).items()
            if n is not None and (f := fi.get(k)) is not None and not split(n, f)]
