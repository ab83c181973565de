"""What the path between two capture points did to one session: its findings, the facts
of each direction (delay, hops, sequence offset) and the pair's verdict. Sans-I/O: fed a
pair's traces, their matching and what ``analyze`` said of each point's session.

Each direction has a sending side's point (the capture point nearer its sender) and a
receiving side's point. A segment at the sending side's point and not at the other was
lost on the way; a RST at the receiving side's point and not at the sending side's was
never sent by its supposed sender: something between the points made it. Which point is
nearer the client is read from the TTLs (they drop on the way), else from the times (a
segment reaches the far side of its path later, whatever the clocks say: the two
directions' differences far - near differ by the round trip between the points).
"""
from __future__ import annotations

from bisect import bisect_right
from collections import Counter
from statistics import median
from typing import Any, Iterable, NamedTuple, Optional, Sequence

from ..model import ACK, PSH, RST, SYN
from ..seq import MASK, diff
from .codes import REMEDY, SEVERITY, VERDICT_CODE, PathCode, PathVerdict, PRECEDENCE
from .segments import C2S, DIRECTIONS, Matching, Seg, Trace

POINTS = ("near", "far")
WHO = ("client", "server")
NOT_DEAD = ("ok", "incomplete")      # analyze's verdicts of a session that did not die
SAMPLE = 10                          # changes listed in a PATH_MODIFIED finding


class Side(NamedTuple):
    """Which capture point is nearer the client (``"near"`` or ``"far"``), and how that
    was told (``"ttl"``, ``"timing"``, or ``"assumed"``: NEAR is taken to be the client's)."""

    client_point: str
    by: str

    def sender(self, d: int) -> str:
        """The point nearer the sender of direction ``d``."""
        return self.client_point if d == C2S else other(self.client_point)


class PointFacts(NamedTuple):
    """What ``analyze`` said of one point's session (its document's verdict, close,
    outgoing direction and findings), and the time its capture file covers (ns, its own
    clock)."""

    verdict: str = "ok"
    close: str = "open"
    outgoing: str = "client_to_server"
    findings: tuple[dict[str, Any], ...] = ()
    span: tuple[int, int] = (0, (1 << 63) - 1)


def other(point: str) -> str:
    return "far" if point == "near" else "near"


def client_side(m: Matching) -> Side:
    """Which point is nearer the client: by the TTL drop of each direction (the client's
    packets lose hops from near to far when near is its side, the server's the other way
    round), else by time (far - near is larger for the direction going near -> far by the
    round trip between the points), else NEAR by assumption."""
    drop: list[list[int]] = [[], []]
    delta: list[list[int]] = [[], []]
    for n, f in m.pairs:
        drop[n.dir].append(n.ttl - f.ttl)
        delta[n.dir].append(f.ts - n.ts)
    c2s, s2c = (median(x) if x else 0 for x in drop)
    if (c2s >= 0 and s2c <= 0) and (c2s or s2c):
        return Side("near", "ttl")
    if (c2s <= 0 and s2c >= 0) and (c2s or s2c):
        return Side("far", "ttl")
    if delta[0] and delta[1]:
        gap = median(delta[0]) - median(delta[1])
        if gap:
            return Side("near" if gap > 0 else "far", "timing")
    return Side("near", "assumed")


def clock_offset(observations: Iterable[tuple[Matching, Side]]) -> Optional[int]:
    """The far clock minus the near clock (ns), from every matched copy: the copies going
    near -> far show offset + delay, the others offset - delay; taking the fastest of each
    as equally fast (as NTP does) puts the offset half way between. None when no direction
    of each kind was matched (the offset cannot be told from the delay then)."""
    ahead: list[int] = []      # sent at the near point: offset + delay
    behind: list[int] = []     # sent at the far point: offset - delay
    for m, side in observations:
        for n, f in m.pairs:
            (ahead if side.sender(n.dir) == "near" else behind).append(f.ts - n.ts)
    if not ahead or not behind:
        return None
    ahead.sort()
    behind.sort()
    low = ahead[len(ahead) // 20] if len(ahead) >= 20 else ahead[0]       # robust minimum
    high = behind[-1 - len(behind) // 20] if len(behind) >= 20 else behind[-1]
    return (low + high) // 2


def _frames(segs: Iterable[Seg]) -> list[int]:
    return [s.frame for s in segs]


def _text(data: bytes) -> str:
    out = []
    for b in data:
        ch = chr(b)
        out.append(ch if 32 <= b < 127 and ch != "\\" else {10: "\\n", 13: "\\r", 9: "\\t",
                                                             92: "\\\\"}.get(b, f"\\x{b:02x}"))
    return "".join(out)


def change_sample(before: bytes, after: bytes, limit: int = 24) -> tuple[int, str, str]:
    """Where two payloads first differ, and a short view of each there: the changed
    bytes widened to the word they are in (``ehlo`` and ``XXXX``), at most ``limit``
    bytes."""
    common = min(len(before), len(after))
    changed = [k for k in range(common) if before[k] != after[k]]
    i = changed[0] if changed else common
    j = changed[-1] + 1 if changed and len(before) == len(after) else max(len(before), len(after))
    start, end = i, min(j, i + limit)
    while start > 0 and i - start < 8 and before[start - 1:start].isalnum():
        start -= 1
    while end < common and end - j < 8 and before[end:end + 1].isalnum():
        end += 1
    end = min(end, start + limit)

    def view(data: bytes) -> str:
        return _text(data[start:end]) + ("..." if end < len(data) and end - start >= limit else "")

    return i, view(before), view(after)


class _Assess:
    """One pair's findings and facts; one method per code."""

    def __init__(self, near: Trace, far: Trace, m: Matching, side: Side, offset: Optional[int],
                 expected: int, points: tuple[PointFacts, PointFacts]) -> None:
        self.traces = {"near": near, "far": far}
        self.m = m
        self.side = side
        self.offset = offset          # far clock - near clock, when it could be told
        self.expected = expected      # the best guess of it otherwise (from session starts)
        self.points = dict(zip(POINTS, points))
        self.findings: list[dict[str, Any]] = []
        senders = [side.sender(d) == "near" for d in (0, 1)]
        self.by_dir: tuple[list[tuple[Seg, Seg]], list[tuple[Seg, Seg]]] = ([], [])
        for n, f in m.pairs:
            self.by_dir[n.dir].append((n, f) if senders[n.dir] else (f, n))

    # -- helpers --------------------------------------------------------------------------
    def copies(self, d: int) -> list[tuple[Seg, Seg]]:
        """The matched copies of direction ``d`` as (at the sender's point, at the
        receiver's point)."""
        return self.by_dir[d]

    def add(self, code: PathCode, d: int, count: int, frames: dict[str, list[int]],
            message: str, **fields: Any) -> None:
        self.findings.append({
            "code": code.value, "severity": SEVERITY[code].value, "direction": DIRECTIONS[d],
            "count": count, "near_frames": frames.get("near", []),
            "far_frames": frames.get("far", []), "message": message, **fields,
            "remedy": REMEDY[code]})

    def covered(self, point: str, t: int, slack: int) -> bool:
        """Whether the capture at ``point`` was running when a packet seen at the other
        point at time ``t`` (that point's clock) would have passed it (``slack``: the
        longest delay seen)."""
        lo, hi = self.points[point].span
        shift = self.offset if self.offset is not None else self.expected
        at = t + shift if point == "far" else t - shift
        return lo - slack <= at and at + slack <= hi

    def slack(self, d: int) -> int:
        shift = self.offset if self.offset is not None else self.expected
        deltas = [abs(f.ts - n.ts - shift) for n, f in self.m.pairs if n.dir == d]
        return max(deltas, default=0) + 1_000_000

    def pair_frames(self, sender: str, pairs: Sequence[tuple[Seg, Seg]]) -> dict[str, list[int]]:
        return {sender: _frames(a for a, _ in pairs), other(sender): _frames(b for _, b in pairs)}

    # -- findings -------------------------------------------------------------------------
    def run(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        directions = {}
        for d in (0, 1):
            self.mss(d)
            self.psh(d)
            self.modified(d)
            only_receiver = self.unmatched(d)
            directions[DIRECTIONS[d]] = self.facts(d, only_receiver)
        return self.findings, directions

    def unmatched(self, d: int) -> dict[str, Any]:
        sender = self.side.sender(d)
        receiver = other(sender)
        only = {"near": [s for s in self.m.near_only if s.dir == d],
                "far": [s for s in self.m.far_only if s.dir == d]}
        slack = self.slack(d)
        lost = [s for s in only[sender] if self.covered(receiver, s.ts, slack)]
        outside = len(only[sender]) - len(lost)
        appeared = [s for s in only[receiver] if self.covered(sender, s.ts, slack)]
        lost, appeared, cut, joined = self.resegmented(d, sender, lost, appeared)
        self.loss(d, sender, lost)
        resets = [s for s in appeared if s.flags & RST]
        if resets:
            self.injected(d, sender, resets)
        rest = [s for s in appeared if not s.flags & RST]
        return {"outside_other_capture": outside + len(only[receiver]) - len(appeared) - len(joined),
                "resegmented": {f"{sender}_frames": _frames(cut), f"{receiver}_frames": _frames(joined)},
                "only_at_receiving_point": {"count": len(rest), "frames": _frames(rest)}}

    def resegmented(self, d: int, sender: str, lost: list[Seg], appeared: list[Seg]
                    ) -> tuple[list[Seg], list[Seg], list[Seg], list[Seg]]:
        """Data seen in other segments at the two points (segmentation offload or receive
        coalescing on a capturing host, a proxy re-segmenting): a sender-point segment whose
        bytes all came in receiver-point segments the sender's point does not show is not
        lost, and those segments were not made up. Returns what is left of
        ``lost`` and ``appeared``, and the segments so explained at each point."""
        data = [s for s in appeared if s.plen and not s.flags & RST]
        if not data or not any(s.plen for s in lost):
            return lost, appeared, [], []
        to_receiver = self.m.seq_offsets[d] if other(sender) == "far" else -self.m.seq_offsets[d]
        base = data[0].seq
        spans = _merged((diff(s.seq, base), diff(s.seq, base) + s.plen) for s in data)
        cut = []
        for s in lost:
            if s.plen:
                a = diff((s.seq + to_receiver) & MASK, base)
                i = bisect_right(spans, (a, 1 << 62)) - 1
                if i >= 0 and spans[i][0] <= a and spans[i][1] >= a + s.plen:
                    cut.append(s)
        if not cut:
            return lost, appeared, [], []
        mine = _merged((diff((s.seq + to_receiver) & MASK, base),
                        diff((s.seq + to_receiver) & MASK, base) + s.plen) for s in cut)
        joined = []
        for s in data:
            a = diff(s.seq, base)
            i = bisect_right(mine, (a, 1 << 62)) - 1
            if i >= 0 and mine[i][0] <= a < mine[i][1]:
                joined.append(s)
        gone = {id(s) for s in cut} | {id(s) for s in joined}
        return ([s for s in lost if id(s) not in gone], [s for s in appeared if id(s) not in gone],
                cut, joined)

    def loss(self, d: int, sender: str, lost: list[Seg]) -> None:
        if not lost:
            return
        receiver = other(sender)
        at_receiver = self.traces[receiver].segments
        # the lost segment's place in the receiving point's numbers
        to_receiver = self.m.seq_offsets[d] if receiver == "far" else -self.m.seq_offsets[d]
        starts, ends = _coverage(at_receiver, d)
        acked = _max_ack(at_receiver, d ^ 1)
        real, missed, recovered = [], [], []
        for s in lost:
            if s.plen == 0:
                real.append(s)
                continue
            first = (s.seq + to_receiver) & MASK
            last = (first + s.plen) & MASK
            if _contains(starts, ends, first):
                real.append(s)
                recovered.append(s)
            elif acked is not None and diff(acked, last) >= 0:
                missed.append(s)          # the receiver had it: that capture missed it
            else:
                real.append(s)
        if not real:
            return
        who = WHO[d]
        data = [s for s in real if s.plen]
        again = self.retransmissions(d, recovered)
        msg = (f"{len(real)} {who} segment(s) seen at {sender} never reached {receiver}"
               f" (frames {_list(_frames(real))})")
        if data:
            msg += f"; {len(data)} carried data ({sum(s.plen for s in data)} bytes)"
            if recovered:
                msg += (f", {len(recovered)} of them arrived later as retransmissions "
                        f"({sender} {_list(again[sender])} = {receiver} {_list(again[receiver])})")
            if len(recovered) < len(data):
                msg += f"; {len(data) - len(recovered)} never arrived"
        if missed:
            msg += (f"; {len(missed)} more the {WHO[d ^ 1]} acknowledged at {receiver}, "
                    "so that capture missed them (not counted)")
        self.add(PathCode.PATH_LOSS, d, len(real), {sender: _frames(real)}, msg,
                 data_segments=len(data), bytes=sum(s.plen for s in data),
                 recovered=len(recovered), not_captured=len(missed),
                 retransmissions={"near_frames": again["near"], "far_frames": again["far"]})

    def retransmissions(self, d: int, recovered: list[Seg]) -> dict[str, list[int]]:
        """The first later copy that carried each recovered segment's first byte, at both
        points."""
        out: dict[str, list[int]] = {"near": [], "far": []}
        sender = self.side.sender(d)
        for s in recovered:
            for a, b in self.copies(d):
                if a.ts > s.ts and a.plen and diff(s.seq, a.seq) >= 0 and diff(s.seq, a.seq) < a.plen:
                    out[sender].append(a.frame)
                    out[other(sender)].append(b.frame)
                    break
        return out

    def injected(self, d: int, sender: str, resets: list[Seg]) -> None:
        receiver = other(sender)
        who = WHO[d]
        ttls = Counter(b.ttl for _, b in self.copies(d))
        usual = ttls.most_common(1)[0][0] if ttls else None
        first = resets[0]
        msg = (f"{len(resets)} reset(s) in the {who}'s name seen at {receiver} (frames "
               f"{_list(_frames(resets))}) that the {who} never sent: not in the {sender} "
               f"capture, next to the {who}")
        if usual is not None and first.ttl != usual:
            msg += f"; TTL {first.ttl} where the {who}'s own packets reach {receiver} with {usual}"
        self.add(PathCode.PATH_INJECTED_RESET, d, len(resets), {receiver: _frames(resets)}, msg,
                 ttl=first.ttl, sender_ttl=usual)

    def psh(self, d: int) -> None:
        stripped: list[tuple[Seg, Seg]] = []
        added: list[tuple[Seg, Seg]] = []
        for a, b in self.copies(d):
            if a.plen and (a.flags ^ b.flags) & PSH:
                (stripped if a.flags & PSH else added).append((a, b))
        sender = self.side.sender(d)
        receiver = other(sender)
        who = WHO[d]
        if stripped:
            self.add(PathCode.PATH_PSH_STRIPPED, d, len(stripped), self.pair_frames(sender, stripped),
                     f"{len(stripped)} {who} data segment(s) carried PSH at {sender} and arrived "
                     f"at {receiver} without it ({_sides(sender, stripped)})")
        if added:
            self.add(PathCode.PATH_PSH_ADDED, d, len(added), self.pair_frames(sender, added),
                     f"{len(added)} {who} data segment(s) without PSH at {sender} arrived at "
                     f"{receiver} with PSH ({_sides(sender, added)})")

    def modified(self, d: int) -> None:
        changed = []
        for a, b in self.copies(d):
            if not (a.plen or b.plen):
                continue
            common = min(len(a.payload), len(b.payload))
            if a.plen != b.plen or a.payload[:common] != b.payload[:common]:
                changed.append((a, b))
        if not changed:
            return
        sender = self.side.sender(d)
        receiver = other(sender)
        samples = []
        for a, b in changed[:SAMPLE]:
            at, before, after = change_sample(a.payload, b.payload)
            samples.append({f"{sender}_frame": a.frame, f"{receiver}_frame": b.frame,
                            "offset": at, "before": before, "after": after})
        first = samples[0]
        a0, b0 = changed[0]
        length = f" (length {a0.plen} -> {b0.plen})" if a0.plen != b0.plen else ""
        self.add(PathCode.PATH_MODIFIED, d, len(changed), self.pair_frames(sender, changed),
                 f"{len(changed)} {WHO[d]} segment(s) changed bytes between {sender} and "
                 f"{receiver}: `{first['before']}` -> `{first['after']}`{length} ({sender} frame "
                 f"{a0.frame} -> {receiver} frame {b0.frame})", changes=samples)

    def mss(self, d: int) -> None:
        changed = [(a, b) for a, b in self.copies(d) if a.flags & SYN and a.mss != b.mss]
        if not changed:
            return
        sender = self.side.sender(d)
        receiver = other(sender)
        a, b = changed[0]
        what = "SYN-ACK" if a.flags & ACK else "SYN"

        def name(v: int) -> str:
            return str(v) if v else "no MSS option"

        self.add(PathCode.PATH_MSS_CLAMPED, d, len(changed), self.pair_frames(sender, changed),
                 f"the {WHO[d]}'s {what} announced MSS {name(a.mss)} at {sender} (frame {a.frame}) "
                 f"and {name(b.mss)} at {receiver} (frame {b.frame})", before=a.mss, after=b.mss)

    # -- facts ----------------------------------------------------------------------------
    def facts(self, d: int, unmatched: dict[str, Any]) -> dict[str, Any]:
        copies = self.copies(d)
        sender = self.side.sender(d)
        delay = None
        if self.offset is not None and copies:
            off = self.offset
            sign = 1 if sender == "near" else -1
            values = sorted(sign * (f.ts - n.ts - off) for n, f in self.m.pairs if n.dir == d)
            delay = {"median": _secs(int(median(values))), "max": _secs(values[-1])}
        drops = Counter(a.ttl - b.ttl for a, b in copies)
        ttl = {p: _range(s.ttl for s in self.traces[p].segments if s.dir == d) for p in POINTS}
        return {
            "sender_point": sender,
            "segments": {p: sum(s.dir == d for s in self.traces[p].segments) for p in POINTS},
            "matched": len(copies),
            "sequence_offset": self.m.seq_offsets[d],
            "delay_seconds": delay,
            "hops": drops.most_common(1)[0][0] if drops else None,
            "ttl": ttl,
            **unmatched,
        }


def _coverage(segs: Sequence[Seg], d: int) -> tuple[list[int], list[int]]:
    """The data of direction ``d`` at one point as intervals sorted by start, relative to
    its first segment, with the running maximum of their ends (for ``_contains``)."""
    data = [s for s in segs if s.dir == d and s.plen]
    if not data:
        return [], []
    base = data[0].seq
    spans = sorted((diff(s.seq, base), diff(s.seq, base) + s.plen) for s in data)
    ends, top = [], -(1 << 62)
    for _, e in spans:
        top = max(top, e)
        ends.append(top)
    return [base] + [s for s, _ in spans], ends


def _merged(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Intervals merged where they touch or overlap, sorted."""
    out: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _contains(starts: list[int], ends: list[int], seq32: int) -> bool:
    if not ends:
        return False
    base, spans = starts[0], starts[1:]
    x = diff(seq32, base)
    i = bisect_right(spans, x) - 1
    return i >= 0 and ends[i] > x


def _max_ack(segs: Sequence[Seg], d: int) -> Optional[int]:
    """The highest acknowledgement direction ``d`` sent at one point (raw 32-bit)."""
    best = None
    for s in segs:
        if s.dir == d and s.flags & ACK and not s.flags & RST:
            if best is None or diff(s.ack, best) > 0:
                best = s.ack
    return best


def _secs(ns: int) -> float:
    return round(ns / 1e9, 6)


def _range(values: Iterable[int]) -> Optional[list[int]]:
    v = list(values)
    return [min(v), max(v)] if v else None


def _list(frames: Sequence[int], limit: int = 12) -> str:
    text = ",".join(map(str, frames[:limit]))
    return text + (",..." if len(frames) > limit else "")


def _sides(sender: str, pairs: Sequence[tuple[Seg, Seg]], limit: int = 6) -> str:
    shown = ", ".join(f"{sender} {a.frame} -> {other(sender)} {b.frame}" for a, b in pairs[:limit])
    return shown + (", ..." if len(pairs) > limit else "")


# -- the verdict ---------------------------------------------------------------------------
def _has(findings: Iterable[dict[str, Any]], code: str) -> list[dict[str, Any]]:
    return [f for f in findings if f["code"] == code]


def verdict(findings: list[dict[str, Any]], side: Side,
            points: tuple[PointFacts, PointFacts]) -> tuple[PathVerdict, str]:
    """The pair's verdict and why: which middlebox behaviour explains the session's
    death, when one does (``PRECEDENCE``)."""
    at = dict(zip(POINTS, points))
    died = {p: at[p].verdict for p in POINTS if at[p].verdict not in NOT_DEAD}
    why: dict[PathVerdict, str] = {}
    for f in _has(findings, PathCode.PATH_INJECTED_RESET.value):
        why.setdefault(PathVerdict.MIDDLEBOX_RESET,
                       f"something between the points reset the session: {f['message']}")
    for f in _has(findings, PathCode.PATH_PSH_STRIPPED.value):
        d = DIRECTIONS.index(f["direction"])
        sender = side.sender(d)
        receiver = other(sender)
        waited = [g for g in at[receiver].findings if g["code"] == "UNPUSHED_BEFORE_RESET"]
        pushed = not [g for g in at[sender].findings if g["code"] == "UNPUSHED_BEFORE_RESET"]
        if waited and pushed and at[receiver].outgoing == f["direction"]:
            why[PathVerdict.PSH_STRIPPED] = (
                f"the {WHO[d]} pushed its data at {sender}, the path cleared PSH, and at "
                f"{receiver} the {WHO[d ^ 1]} waited for PSH until the session was reset "
                f"({waited[0]['message'].rstrip('.')}): the PSH incident, proven")
        elif not died:
            why.setdefault(PathVerdict.PATH_CHANGED,
                           f"the path cleared PSH on {f['count']} {WHO[d]} segment(s), but the "
                           f"{WHO[d ^ 1]} answered anyway: its stack does not wait for PSH "
                           "(one that does would have stalled)")
    if died:
        ended = ", ".join(f"{v} at {p}" for p, v in died.items())
        for f in _has(findings, PathCode.PATH_MODIFIED.value):
            why.setdefault(PathVerdict.PAYLOAD_MODIFIED,
                           f"the path rewrote payload ({f['message']}) and the session died ({ended})")
        for f in _has(findings, PathCode.PATH_LOSS.value):
            if f["data_segments"] > f["recovered"] or f["data_segments"] == 0:
                why.setdefault(PathVerdict.PATH_LOSS,
                               f"segments were lost between the points ({f['message']}) and the "
                               f"session died ({ended})")
    if findings:
        codes = ", ".join(sorted({f["code"] for f in findings}))
        ended = ", ".join(f"{v} at {p}" for p, v in died.items())
        why.setdefault(PathVerdict.PATH_CHANGED,
                       f"the path changed the session ({codes}), but that does not explain its "
                       f"end ({ended})" if died else
                       f"the path changed the session ({codes}), which survived it")
    elif died:
        why[PathVerdict.CLEAN] = ("nothing between the points changed the session; it ended "
                                  + ", ".join(f"{v} at {p}" for p, v in died.items())
                                  + ": look at the ends, not at this path")
    else:
        why[PathVerdict.CLEAN] = "nothing between the points changed the session"
    best = next(v for v in PRECEDENCE if v in why)
    return best, why[best]


def verdict_remedy(v: PathVerdict) -> Optional[str]:
    code = VERDICT_CODE.get(v)
    return REMEDY[code] if code is not None else None


def assess_pair(near: Trace, far: Trace, m: Matching, side: Side, offset: Optional[int],
                expected: int, points: tuple[PointFacts, PointFacts]
                ) -> tuple[list[dict[str, Any]], dict[str, Any], PathVerdict, str]:
    """The findings of one pair (each with its remedy), the facts of each direction, the
    verdict and its explanation. ``offset``: far clock - near clock when it could be told
    (delays are given only then); ``expected``: the best guess of it otherwise."""
    findings, directions = _Assess(near, far, m, side, offset, expected, points).run()
    v, why = verdict(findings, side, points)
    return findings, directions, v, why
