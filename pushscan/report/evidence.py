"""Evidence for people: one traced analysis, read by ``follow``, ``plot`` and ``html``.

The tracker records every packet of the sessions asked for (``Session.trace``); the
evidence modules only read it. ``waits`` finds the stretches of unpushed data that
follow and plot both show.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional

from ..analysis import Analysis, Options, one_capture
from ..analysis.select import Selection
from ..errors import UsageError
from ..model import FIN, PSH, RST
from ..sources.streams import rereadable
from ..tcp.session import Session
from .text import endpoint_text

WAIT_SHOWN_NS = 200_000_000   # a wait inside a turn shorter than this is normal, not shown


def traced(paths: list[str], opts: Options, ids: set[int], frames: Optional[set[int]] = None
           ) -> tuple[dict[str, Any], dict[int, tuple[Session, dict[str, Any]]]]:
    """Analyse ``paths`` recording every packet of sessions ``ids`` (whose first frames
    are ``frames``, when known). Sessions are recorded by first frame, which lets the
    compiled fast lane take every other session (a big capture: seconds, not a minute);
    the first frames are found by a first, fast pass when not given. Inputs that can be
    read only once are recorded by id in one pass (without the fast lane)."""
    files = one_capture(list(paths), opts)
    if frames is None and all(rereadable(p) for p in files):
        found: set[int] = set()
        find = replace(opts, all_tcp=True, select=Selection(sessions=tuple(sorted(ids))))
        Analysis(files, find, keep_sessions=False,
                 on_session=lambda doc: found.add(doc["first_frame"])).run_or_raise()
        frames = found
    if frames is None:
        a = Analysis(files, opts, trace_ids=frozenset(ids))
    else:
        a = Analysis(files, opts, trace_frames=frozenset(frames))
    return a.run_or_raise(), a.traced


def one_session(paths: list[str], opts: Options, sid: int) -> tuple[Session, dict[str, Any]]:
    report, found = traced(paths, opts, {sid})
    if sid not in found:
        raise UsageError(f"no session {sid} in the capture (it has {report['summary']['tcp_sessions']} "
                         f"TCP sessions, ids 0 to {report['summary']['tcp_sessions'] - 1})")
    return found[sid]


def pick_session(paths: list[str], opts: Options, shown: int = 10) -> int:
    """The id of the one session that ``opts.select`` (``--host``, ``--port``,
    ``--verdict``) leaves; else ``UsageError`` listing the candidates."""
    if not opts.select:
        raise UsageError("which session? give --session ID (analyze lists the ids), or --host, "
                         "--port or --verdict that leave one session")
    streams = [p for p in paths if not rereadable(p)]
    if streams:
        raise UsageError(f"{'standard input' if streams[0] == '-' else streams[0]} can be read only once: "
                         "give --session ID (picking by --host, --port or --verdict reads it twice)")
    found: list[str] = []
    count = 0

    def seen(doc: dict[str, Any]) -> None:
        nonlocal count
        count += 1
        if len(found) <= shown:
            found.append(f"{doc['id']} ({endpoint_text(doc['client'])} -> "
                         f"{endpoint_text(doc['server'])}, {doc['verdict']})")
            ids.append(doc["id"])

    ids: list[int] = []
    Analysis(one_capture(list(paths), opts), opts, keep_sessions=False, on_session=seen).run_or_raise()
    if count == 1:
        return ids[0]
    if not count:
        raise UsageError("no session matches " + ", ".join(
            f"--{k.rstrip('s')} {' '.join(map(str, v))}" for k, v in opts.select.describe().items())
            + ("" if opts.all_tcp else " among the SMTP sessions (--all-tcp: among every TCP session)"))
    raise UsageError(f"{count:,} sessions match: {'; '.join(found[:shown])}"
                     f"{'; ...' if count > shown else ''}; pick one with --session ID")


@dataclass
class Wait:
    """Data that sat without PSH: from ``start`` until what ended it."""

    dir: int
    start: int
    end: Optional[int]
    bytes: int
    frames: list[int]
    ended_by: str            # peer's reply | later PSH | reset by client/server | FIN | capture end
    end_frame: Optional[int]


def waits(s: Session) -> list[Wait]:
    """Every stretch of unpushed data worth showing: each one that ended a turn, and those
    inside a turn that lasted at least WAIT_SHOWN_NS before a later PSH."""
    open_: dict[int, Wait] = {}
    out: list[Wait] = []
    side = {s.client_dir: "client", s.client_dir ^ 1: "server"}

    def close(d: int, ts: int, how: str, frame: Optional[int], always: bool) -> None:
        w = open_.pop(d, None)
        if w is not None and (always or ts - w.start >= WAIT_SHOWN_NS):
            w.end, w.ended_by, w.end_frame = ts, how, frame
            out.append(w)

    for e in s.trace or ():
        if e.new:
            close(e.dir ^ 1, e.ts, "peer's reply", e.frame, True)
            if e.flags & PSH:
                close(e.dir, e.ts, "later PSH", e.frame, False)
            else:
                w = open_.get(e.dir)
                if w is None:
                    open_[e.dir] = Wait(e.dir, e.ts, None, e.new, [e.frame], "", None)
                else:
                    w.bytes += e.new
                    w.frames.append(e.frame)
        elif e.length and e.flags & PSH:
            close(e.dir, e.ts, "PSH on a retransmission", e.frame, False)
        if e.flags & RST:
            for d in list(open_):
                close(d, e.ts, f"reset by {side[e.dir]}", e.frame, True)
        elif e.flags & FIN:
            close(e.dir, e.ts, "FIN", e.frame, False)
            close(e.dir ^ 1, e.ts, f"{side[e.dir]} closed", e.frame, True)
    for d in list(open_):
        w = open_.pop(d)
        w.ended_by = "capture end"
        out.append(w)
    return sorted(out, key=lambda w: w.start)


