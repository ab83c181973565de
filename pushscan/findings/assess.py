"""Facts to findings to a verdict: pure functions of an ended session.

Each finding may imply a verdict; ``codes.PRECEDENCE`` (data) says which implied verdict
wins. Sessions that imply none are ``incomplete`` (the capture does not hold them whole)
or ``ok``.
"""
from __future__ import annotations

from typing import Any, Optional

from ..tcp.session import Close, Handshake, Session
from .codes import PRECEDENCE, REMEDY, SEVERITY, Code, Verdict

NS = 1_000_000_000
# How long the capture must go on past an event before its absence means something:
# the initial retransmission timeout (RFC 6298). A SYN 50 ms before the capture ends is
# not "no answer"; a turn cut by the end of the capture is not "unpushed".
EVIDENCE_NS = NS


def direction_name(s: Session, d: int) -> str:
    return "client_to_server" if d == s.client_dir else "server_to_client"


def side_name(s: Session, d: int) -> str:
    """Who sends in direction ``d``."""
    return "client" if d == s.client_dir else "server"


def _finding(code: Code, message: str, frames: list[int] | tuple[int, ...],
             **fields: Any) -> dict[str, Any]:
    return {"code": code.value, "severity": SEVERITY[code].value, "message": message,
            "frames": sorted(set(frames)), **fields}


def _secs(ns: int) -> float:
    return round(ns / NS, 6)


def assess(s: Session) -> tuple[list[dict[str, Any]], Verdict, list[str]]:
    """Findings, verdict and notes for an ended session."""
    out = s.out_dir
    peer = out ^ 1
    o, p = s.dirs[out], s.dirs[peer]
    findings: list[dict[str, Any]] = []
    implied_verdicts: list[Optional[Verdict]] = []
    notes: list[str] = []

    def add(code: Code, message: str, frames: list[int] | tuple[int, ...],
            implies: Optional[Verdict] = None, **fields: Any) -> None:
        """A finding, and the verdict it implies if it explains the session's end."""
        findings.append(_finding(code, message, frames, **fields))
        implied_verdicts.append(implies)

    smtp = s.app is not None
    r = s.reset
    close = s.close
    reset_turn_reported = False

    if s.syn_seen and not s.synack_seen and not (r is not None and r.refused) \
            and not s.dirs[s.client_dir ^ 1].data_segments \
            and (s.syn_count > 1 or s.seen_until - s.start >= EVIDENCE_NS):
        msg = (f"{s.syn_count} SYN{'s' if s.syn_count != 1 else ''} from the client got no "
               f"SYN-ACK in {_secs(s.end - s.start):g}s: the server host is down or unreachable, or a "
               "firewall drops the connection")
        icmp = list(s.icmp)
        if icmp:
            msg += f"; {len(icmp)} ICMP error(s) came back: {icmp[0].text}"
        add(Code.NO_ANSWER, msg, s.syn_frames + [e.frame for e in icmp], Verdict.NO_ANSWER,
            syns=s.syn_count, icmp_errors=[e.text for e in icmp])

    if r is not None:
        cmd = r.app_command if smtp else None
        during = f" during {cmd}" if cmd else ""
        if r.dir == peer and r.refused:
            port = s.key[6] if s.client_dir == 0 else s.key[3]
            add(
                Code.PEER_RESET, f"the server refused the connection: it answered the SYN "
                f"with a reset (nothing listens on port {port})", s.syn_frames + [r.frame],
                Verdict.PEER_RESET, reset_frame=r.frame, refused=True,
                pushed_data_unanswered=False, smtp_command=None)
        elif r.dir == peer and r.turn_dir == out and r.unpushed_bytes > 0:
            dwell = r.ts - r.unpushed_ts
            acked = (" The peer acknowledged all of them: received, but by all signs never "
                     "delivered to its application." if r.acked else "")
            add(
                Code.UNPUSHED_BEFORE_RESET,
                f"the {side_name(s, peer)} reset the session after {r.unpushed_bytes} bytes "
                f"from the {side_name(s, out)} had waited {_secs(dwell):g}s without PSH"
                f"{during}.{acked}",
                list(r.unpushed_frames) + [r.frame], Verdict.PUSH_PROBLEM,
                unpushed_bytes=r.unpushed_bytes, acked=r.acked, dwell_seconds=_secs(dwell),
                reset_frame=r.frame, smtp_command=cmd)
            reset_turn_reported = True
        elif r.dir == peer:
            pushed_left = r.turn_dir == out and r.turn_bytes > 0
            tail = (f"; {r.turn_bytes} pushed bytes from the {side_name(s, out)} were left "
                    "unanswered" if pushed_left else "; no data was waiting for an answer")
            add(
                Code.PEER_RESET, f"the {side_name(s, peer)} reset the session{during}{tail}",
                [r.frame], Verdict.PEER_RESET, reset_frame=r.frame, refused=False,
                pushed_data_unanswered=pushed_left, smtp_command=cmd)
        else:
            extra = ""
            if r.turn_dir == out and r.unpushed_bytes:
                extra = (f" while {r.unpushed_bytes} unpushed bytes of its own had waited "
                         f"{_secs(r.ts - r.unpushed_ts):g}s unanswered")
            add(
                Code.LOCAL_RESET, f"the {side_name(s, out)} (outgoing side) reset the "
                f"session{during}{extra}", [r.frame], reset_frame=r.frame, smtp_command=cmd)

    for t in s.unpushed_turns:
        if t.dir != out or t.ended_by == "fin":
            continue  # a turn its own FIN ends is delivered with the FIN
        if t.ended_by == "reset" and reset_turn_reported:
            continue
        if t.ended_by == "end" and s.seen_until - t.first_ts < EVIDENCE_NS:
            continue  # cut by the end of the capture, not known to be stuck
        wait = None if t.answered_ts is None else _secs(t.answered_ts - t.first_ts)
        how = {"data": f"the peer answered after {wait}s", "reset": "a reset ended it",
               "peer_fin": "the peer closed",
               "end": f"nothing answered in the {_secs(s.seen_until - t.first_ts):g}s "
                      "the capture went on"}[t.ended_by]
        add(
            Code.UNPUSHED_TURN,
            f"{t.bytes} bytes from the {side_name(s, out)} ended a turn without PSH; {how}",
            t.frames, bytes=t.bytes, wait_seconds=wait, segments=t.segments)

    # died: True, False, or None when the capture ended before it could be known
    died: Optional[bool] = close in (Close.RESET_BY_CLIENT, Close.RESET_BY_SERVER, Close.TIMEOUT)
    if close is Close.OPEN and o.started and (p.max_ack is None or p.max_ack < o.nxt):
        died = True if s.seen_until - s.end >= EVIDENCE_NS else None
    if o.retransmitted:
        most = max(o.attempts.values()) if o.attempts else 2
        fate = {True: "then died", False: "recovered",
                None: "was still waiting for acknowledgements when the capture ended"}[died]
        add(
            Code.RETRANSMISSIONS,
            f"{o.retransmitted} outgoing segment(s) retransmitted, up to {most} transmissions "
            f"of one segment; the session {fate}",
            [], Verdict.NETWORK_LOSS if died is True else None,
            count=o.retransmitted, max_attempts=most, died=died)

    for d in (0, 1):
        dd = s.dirs[d]
        if dd.conflicts:
            add(
                Code.OVERLAP_CONFLICT,
                f"{len(dd.conflicts)} retransmitted segment(s) {direction_name(s, d)} carried "
                "bytes different from the first copy", dd.conflicts,
                direction=direction_name(s, d), count=len(dd.conflicts))
        if dd.gap_bytes:
            add(
                Code.CAPTURE_GAP,
                f"{dd.gap_bytes} bytes {direction_name(s, d)} were acknowledged but never "
                "captured (the capture dropped them)", dd.gap_frames,
                direction=direction_name(s, d), bytes=dd.gap_bytes)
        if dd.truncated:
            notes.append(f"{dd.truncated} segment(s) {direction_name(s, d)} were cut by the snap "
                         "length; payload lengths come from the IP header")
        if dd.oversize:
            peer_mss = s.dirs[d ^ 1].mss
            notes.append(f"{dd.oversize} segment(s) {direction_name(s, d)} exceed the MSS of "
                         f"{peer_mss} (segmentation offload on the capturing host)")
    if s.evicted:
        notes.append("ended early by the open-session limit (--max-sessions): its close is "
                     "reported as timeout")
    for d in (0, 1):
        if s.dirs[d].overflows:
            notes.append(f"out-of-order data {direction_name(s, d)} outgrew the reassembly limit "
                         f"(--max-buffer) {s.dirs[d].overflows} time(s); the missing bytes were "
                         "given up as a capture gap")
    if s.icmp and Verdict.NO_ANSWER not in implied_verdicts:
        notes.append(f"{len(s.icmp)} ICMP error(s) quoted this session: {s.icmp[0].text}")

    implied = {v for v in implied_verdicts if v is not None}
    verdict = next((v for v in PRECEDENCE if v in implied), None)
    if verdict is None:
        verdict = Verdict.INCOMPLETE if close is Close.OPEN or s.handshake is Handshake.NONE \
            else Verdict.OK
    return findings, verdict, notes


def remedy(verdict: Verdict) -> Optional[str]:
    return REMEDY.get(verdict)
