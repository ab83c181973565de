"""``pushscan follow``: one session in time order, as events (JSON) or lines (text)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError
from ..findings import NS
from ..findings.numbers import duration, size
from ..model import FIN, PSH, RST, SYN
from ..smtp import smtp_of
from ..tcp.session import Session
from .evidence import waits

BODY_LISTED = 6               # bodies of more segments are summarised


@dataclass
class Item:
    """An SMTP command or reply, completed by the segment ``frame`` of direction ``dir``."""

    dir: int
    frame: int
    kind: str
    text: str
    segments: list[tuple[int, bool, int]] = field(default_factory=list)  # (frame, pushed, bytes)


def _smtp_items(s: Session) -> dict[int, list[Item]]:
    by_frame: dict[int, list[Item]] = {}
    app = smtp_of(s.app)
    if app is None:
        return by_frame
    c, sv = s.client_dir, s.client_dir ^ 1

    def add(item: Item) -> None:
        by_frame.setdefault(item.frame, []).append(item)

    said = {(e.frame, e.code): e.text for e in app.error_replies}   # what a refusal said

    def reply(code: int, frame: int) -> str:
        text = said.get((frame, code))
        return f"{code} {text}" if text else str(code)

    if app.greeting is not None:
        add(Item(sv, app.greeting.frame, "greeting",
                 f"{reply(app.greeting.code, app.greeting.frame)} greeting"))
    for cmd in app.commands:
        kind = "body" if cmd.verb == "DATA body" else "command"
        add(Item(c, cmd.frame, kind, cmd.verb))
        if cmd.reply_frame is not None and cmd.reply_code is not None:
            add(Item(sv, cmd.reply_frame, "reply",
                     f"{reply(cmd.reply_code, cmd.reply_frame)} (to {cmd.verb})"))
    for r in app.unsolicited:
        add(Item(sv, r.frame, "reply", f"{reply(r.code, r.frame)} (no command waiting)"))
    return by_frame


def _tcp_events(s: Session, t0: int, arrow: dict[int, str]) -> list[dict[str, Any]]:
    """What the tracker made of single packets (zero windows and their probes, a window
    reopened or full, keep-alives, duplicate ACKs; runs of the same in one line), the
    reset with its TTL against its sender's, and the ICMP errors quoting the session."""
    events: list[dict[str, Any]] = []
    run: dict[str, Any] = {}
    for e in s.trace or ():
        if e.what and run and run["what"] == e.what and run["dir"] == arrow[e.dir]:
            run["frames"].append(e.frame)
            continue
        if e.what:
            run = {"t": round((e.ts - t0) / NS, 6), "dir": arrow[e.dir], "kind": "tcp",
                   "what": e.what, "frames": [e.frame], "pushed": None, "bytes": e.length,
                   "window": e.win if e.win >= 0 else None}
            events.append(run)
        else:
            run = {}
    for ev in events:
        n = len(ev["frames"])
        ev["text"] = (f"{ev['what']} ({n} packets)" if n > 1 else ev["what"]) + \
            (f" (window {ev['window']:,} bytes)" if ev["window"] is not None
             and ev["what"] in ("zero window", "window reopened") else "")
        del ev["what"]
    for err in s.icmp:
        events.append({"t": round((err.ts - t0) / NS, 6), "dir": "ICMP", "kind": "icmp",
                       "text": err.text + (f" from {err.origin}" if err.origin else ""),
                       "frames": [err.frame], "pushed": None, "bytes": 0})
    return events


def follow_events(s: Session) -> list[dict[str, Any]]:
    """The session in time order: SMTP commands and replies (or, for other TCP and
    after STARTTLS, the data of each turn), control packets, and the waits."""
    if s.trace is None:
        raise UsageError("the session was not traced")
    t0 = s.start
    arrow = {s.client_dir: "C>S", s.client_dir ^ 1: "S>C"}
    items = _smtp_items(s)
    pending: dict[int, list[tuple[int, bool, int, int]]] = {0: [], 1: []}
    events: list[dict[str, Any]] = []

    def segs_event(ts: int, d: int, kind: str, text: str, segs: list[tuple[int, bool, int]]) -> None:
        events.append({"t": round((ts - t0) / NS, 6), "dir": arrow[d], "kind": kind, "text": text,
                       "frames": [f for f, _, _ in segs], "pushed": [p for _, p, _ in segs],
                       "bytes": sum(b for _, _, b in segs)})

    def flush(d: int) -> None:
        if pending[d]:
            segs = [(f, p, b) for f, p, b, _ in pending[d]]
            segs_event(pending[d][0][3], d, "data", size(sum(b for _, _, b in segs)), segs)
            pending[d] = []

    for e in s.trace:
        if e.flags & (SYN | FIN | RST):
            names = [n for bit, n in ((SYN, "SYN"), (FIN, "FIN"), (RST, "RST")) if e.flags & bit]
            if e.flags & 0x10 and e.flags & SYN:
                names = ["SYN-ACK"]
            text = "+".join(names)
            if e.flags & RST and e.ttl >= 0:      # its TTL against its sender's other packets
                sender = s.dirs[e.dir]
                own = ("none" if sender.ttl_min < 0 else str(sender.ttl_min)
                       if sender.ttl_min == sender.ttl_max else f"{sender.ttl_min}-{sender.ttl_max}")
                text += f" (TTL {e.ttl}; the sender's other packets: {own})"
            events.append({"t": round((e.ts - t0) / NS, 6), "dir": arrow[e.dir], "kind": "control",
                           "text": text, "frames": [e.frame], "pushed": None, "bytes": e.length})
        if not e.length:
            continue
        if e.new:
            flush(e.dir ^ 1)
        pending[e.dir].append((e.frame, bool(e.flags & PSH), e.length, e.ts))
        for item in items.get(e.frame, ()):
            if item.dir != e.dir:
                continue
            segs = [(f, p, b) for f, p, b, _ in pending[e.dir]] or [(e.frame, bool(e.flags & PSH), e.length)]
            pending[e.dir] = []
            text = item.text
            if item.kind == "body":
                n, pushed = len(segs), sum(p for _, p, _ in segs)
                text = f"DATA body: {size(sum(b for _, _, b in segs))} in {n:,} segment(s), {pushed:,} pushed"
                if n > BODY_LISTED:
                    segs = segs[:2] + segs[-2:]   # summarised: first and last segments
            segs_event(e.ts, e.dir, item.kind, text, segs)
            if item.kind == "body" and n > BODY_LISTED:
                events[-1]["frame_count"] = n
    for d in (0, 1):
        flush(d)
    events += _tcp_events(s, t0, arrow)
    for w in waits(s):
        events.append({"t": round((w.start - t0) / NS, 6), "dir": arrow[w.dir], "kind": "wait",
                       "text": (f"{size(w.bytes)} waited {duration((w.end or s.seen_until) - w.start)} "
                                f"without PSH; ended by {w.ended_by}"
                                + (f" (frame {w.end_frame})" if w.end_frame else "")),
                       "frames": w.frames[:20], "pushed": None, "bytes": w.bytes,
                       "frame_count": len(w.frames), "last_frame": w.frames[-1]})
    kind_order = {"control": 0, "tcp": 1, "icmp": 1, "wait": 3}
    events.sort(key=lambda ev: (ev["t"], ev["frames"][0] if ev["frames"] else 0, kind_order.get(ev["kind"], 1)))
    return events


def follow_document(s: Session, doc: dict[str, Any]) -> dict[str, Any]:
    return {"session": {k: doc[k] for k in ("id", "client", "server", "protocol", "verdict", "close",
                                             "first_frame", "last_frame", "start")},
            "findings": [{k: f[k] for k in ("code", "severity", "message", "frames")} for f in doc["findings"]],
            "events": follow_events(s)}


def _frames_text(ev: dict[str, Any]) -> str:
    """The frames of an event, never a range they do not span: a long list is shown as
    its first and last frame and how many (``frame_count``, ``last_frame`` when the event
    lists only some of them)."""
    frames, pushed = ev["frames"], ev["pushed"]
    if not frames:
        return ""
    count = ev.get("frame_count", len(frames))
    if pushed is None:
        last = ev.get("last_frame", frames[-1])
        return "frame " + ",".join(map(str, frames)) if count == 1 else \
            f"frames {frames[0]}..{last} ({count} frames)" if count > 3 else "frames " + ",".join(map(str, frames))
    marks = [f"{f}{'' if p else '(no PSH)'}" for f, p in zip(frames, pushed)]
    if len(marks) > 8:               # a long run: its first and last three
        count, marks = max(count, len(marks)), marks[:3] + marks[-3:]
    if count > len(marks):           # summarised: the first and last ones
        half = len(marks) // 2
        return f"frames {', '.join(marks[:half])}, ... ({count - len(marks)} more), {', '.join(marks[half:])}"
    return ("frame " if len(marks) == 1 else "frames ") + ", ".join(marks)


def follow_text(fdoc: dict[str, Any]) -> str:
    s = fdoc["session"]
    lines = [f"session {s['id']}: {s['client']['ip']}:{s['client']['port']} -> {s['server']['ip']}:"
             f"{s['server']['port']} ({s['protocol']}), frames {s['first_frame']}-{s['last_frame']}, "
             f"close {s['close']}, verdict {s['verdict']}",
             "frames marked (no PSH) were sent without PSH; the others carried it", ""]
    for ev in fdoc["events"]:
        mark = "  ..." if ev["kind"] == "wait" else ""
        lines.append(f"{ev['t']:+10.3f}s  {ev['dir']}  {mark}{ev['text']:<44} {_frames_text(ev)}".rstrip())
    if fdoc["findings"]:
        lines.append("")
        lines += [f"{f['severity']}: {f['code']}: {f['message']}" for f in fdoc["findings"]]
    return "\n".join(lines) + "\n"


