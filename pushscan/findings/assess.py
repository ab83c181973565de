"""Facts to findings to a verdict: pure functions of an ended session.

Each finding names frames the user can open in Wireshark and may *imply* a verdict (it
explains the session's end); ``codes.PRECEDENCE`` (data) says which implied verdict
wins. A session that implies none is ``incomplete`` (the capture does not hold it whole)
or ``ok``. Where the evidence is thin the message says so, and implies nothing.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

from ..decode.icmp import FRAG_NEEDED
from ..model import ACK, OPT_TIMESTAMP
from ..smtp import smtp_of
from ..tcp.session import IPID_STEP, Close, Handshake, ResetFact, Session
from .numbers import duration, seconds, size
from .codes import (PRECEDENCE, REMEDY, RFC5321_DEFAULT_TIMEOUT_S, RFC5321_TIMEOUT_S, SEVERITY,
                    Code, Verdict)

NS = 1_000_000_000
# How long the capture must go on past an event before its absence means something:
# the initial retransmission timeout (RFC 6298). A SYN 50 ms before the capture ends is
# not "no answer"; a turn cut by the end of the capture is not "unpushed".
EVIDENCE_NS = NS
# An idle time long enough for a firewall or a peer to have forgotten the session: at
# least this, and at least IDLE_RTTS round trips of the session.
IDLE_NS = 2 * NS
IDLE_RTTS = 20
ASSUMED_RTT_NS = 50_000_000     # when the handshake was not captured
SMALL_SEGMENT = 512             # segments this small cross any path (IPv4's minimum MTU is 576)


def direction_name(s: Session, d: int) -> str:
    return "client_to_server" if d == s.client_dir else "server_to_client"


def side_name(s: Session, d: int) -> str:
    """Who sends in direction ``d``."""
    return "client" if d == s.client_dir else "server"


def _finding(code: Code, message: str, frames: list[int] | tuple[int, ...], frame_count: int = 0,
             **fields: Any) -> dict[str, Any]:
    """A finding; ``frame_count``: how many frames it concerns when ``frames`` holds only
    the first ones the tracker kept (``FRAMES_KEPT``), so that no report shows a range as
    if it were all."""
    listed = sorted(set(frames))
    doc: dict[str, Any] = {"code": code.value, "severity": SEVERITY[code].value, "message": message,
                           "frames": listed}
    if frame_count > len(listed):
        doc["frame_count"] = frame_count
    doc.update(fields)
    return doc


def rtt_ns(s: Session) -> Optional[int]:
    """The round trip the handshake shows (SYN to the handshake's last ACK), if captured."""
    if s.syn_ts >= 0 and s.hs_ack_ts >= s.syn_ts:
        return s.hs_ack_ts - s.syn_ts
    return None


def idle_threshold(s: Session) -> int:
    return max(IDLE_NS, IDLE_RTTS * (rtt_ns(s) or ASSUMED_RTT_NS))


def reset_clues(s: Session, r: ResetFact) -> tuple[list[str], list[str]]:
    """Why a RST may not come from the host whose name it carries: (strong clues, weak
    clues), each in plain words. Strong: its TTL is outside the range of that host's own
    packets (which kept one TTL); that host went on sending after it. Weak: an IP ID off
    that host's counter; no timestamps where that host always sends them."""
    src = s.dirs[r.dir]
    who = side_name(s, r.dir)
    strong: list[str] = []
    weak: list[str] = []
    if src.ttl_min >= 0 and r.ttl >= 0 and src.ttl_max - src.ttl_min <= 1 \
            and not src.ttl_min <= r.ttl <= src.ttl_max:
        seen = str(src.ttl_min) if src.ttl_min == src.ttl_max else f"{src.ttl_min}-{src.ttl_max}"
        strong.append(f"its TTL is {r.ttl} where the {who}'s own packets arrive with {seen}")
    if s.after_reset:
        strong.append(f"the {who} went on sending after it ({s.after_reset} packet(s) from frame "
                      f"{s.after_reset_frame})")
    if r.ipid > 0 and src.ipid_count >= 3 and src.ipid_inc >= 0.8 * (src.ipid_count - 1) \
            and src.ipid_last >= 0 and not 0 < (r.ipid - src.ipid_last) & 0xFFFF < IPID_STEP:
        weak.append(f"its IP ID {r.ipid} is off the {who}'s counter (last {src.ipid_last})")
    if src.opts_all >= 0 and src.opts_all & OPT_TIMESTAMP and not r.opts & OPT_TIMESTAMP:
        weak.append(f"it carries no TCP timestamps, which the {who} sends on every segment")
    if strong and r.before_peer:
        weak.append(f"it came before any packet of the {who}")
    return strong, weak


class _Assessment:
    """The findings of one ended session, built cause by cause."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self.out = s.out_dir
        self.peer = s.out_dir ^ 1
        self.o, self.p = s.dirs[self.out], s.dirs[self.peer]
        self.findings: list[dict[str, Any]] = []
        self.implied: list[Optional[Verdict]] = []
        self.notes: list[str] = []
        self.incomplete: list[str] = []     # why the verdict is incomplete (codes)
        self.smtp: Any = smtp_of(s.app)
        self.codes: set[Code] = set()

    def add(self, code: Code, message: str, frames: list[int] | tuple[int, ...],
            implies: Optional[Verdict] = None, frame_count: int = 0, **fields: Any) -> None:
        """A finding, and the verdict it implies if it explains the session's end."""
        self.findings.append(_finding(code, message, frames, frame_count, **fields))
        self.implied.append(implies)
        self.codes.add(code)

    def run(self) -> tuple[list[dict[str, Any]], Verdict, list[str]]:
        s = self.s
        self.one_sided()
        self.no_answer()
        self.refused()
        self.no_greeting()
        self.tls_failed()
        stalled = self.zero_windows()
        self.resets(stalled)
        self.unpushed_turns()
        self.unreachable()
        self.pmtu()
        self.vanished()
        self.gave_up()
        self.retransmissions()
        self.per_direction()
        implied = {v for v in self.implied if v is not None}
        verdict = next((v for v in PRECEDENCE if v in implied), None)
        if verdict is None:
            verdict = Verdict.INCOMPLETE if s.close is Close.OPEN or s.handshake is Handshake.NONE \
                else Verdict.OK
        if verdict is Verdict.INCOMPLETE:
            self.why_incomplete()
        return self.findings, verdict, self.notes

    def why_incomplete(self) -> None:
        """Say why the capture does not hold the session whole (a note per reason, and
        ``incomplete`` in the session's JSON)."""
        s = self.s
        why = self.incomplete
        if not s.dirs[0].packets and not s.dirs[1].packets:
            e = s.icmp[0] if s.icmp else None
            why.append("icmp_only")
            self.notes.append(
                "incomplete: seen only in an ICMP error" + (
                    f" (frame {e.frame}{' from ' + e.origin if e.origin else ''}: {e.text})" if e else "")
                + "; none of its own packets are in the capture (another path, or a capture filter)")
            return
        if Code.ONE_SIDED in self.codes:
            why.append("one_sided")
        if s.handshake is Handshake.NONE:
            why.append("started_before_capture")
            self.notes.append(f"incomplete: no handshake in the capture: the session began before "
                              f"it (first packet frame {s.first_frame})")
        elif s.handshake is Handshake.PARTIAL and not s.syn_seen:
            why.append("started_before_capture")
            self.notes.append(f"incomplete: the client's SYN is not in the capture (first packet "
                              f"frame {s.first_frame})")
        if s.close is Close.OPEN:
            why.append("open_at_capture_end")
            after = s.seen_until - s.end
            self.notes.append(f"incomplete: still open when the capture ended (last packet frame "
                              f"{s.last_frame}" + (f", {duration(after)} before the capture's end"
                                                   if after >= NS else "") + ")")

    # -- the capture's view ------------------------------------------------------------
    def one_sided(self) -> None:
        s = self.s
        for d in (0, 1):
            seen, missing = s.dirs[d], s.dirs[d ^ 1]
            if missing.packets == 0 and seen.acks and seen.packets >= 2:
                self.add(Code.ONE_SIDED,
                         f"only the {side_name(s, d)}'s packets are in the capture ({seen.packets}, "
                         f"acknowledging data the capture never saw): asymmetric routing or a "
                         f"capture filter; nothing here can blame the {side_name(s, d ^ 1)}",
                         [seen.last_frame], Verdict.INCOMPLETE, missing=direction_name(s, d ^ 1))

    def no_answer(self) -> None:
        s, r = self.s, self.s.reset
        if s.syn_seen and not s.synack_seen and not (r is not None and r.refused) \
                and not s.dirs[s.client_dir ^ 1].data_segments \
                and (s.syn_count > 1 or s.seen_until - s.start >= EVIDENCE_NS or s.evicted) \
                and Code.ONE_SIDED not in self.codes:
            msg = (f"{s.syn_count} SYN{'s' if s.syn_count != 1 else ''} from the client got no "
                   f"SYN-ACK in {duration(s.end - s.start)}: the server host is down or unreachable, "
                   "or a firewall drops the connection")
            if s.evicted and s.syn_count == 1 and s.seen_until - s.start < EVIDENCE_NS:
                # ended early by the open-session limit: an unanswered attempt all the same
                msg = ("1 SYN from the client got no SYN-ACK before the open-session limit "
                       "(--max-sessions) ended the session: an unanswered attempt (a SYN flood, "
                       "or a host that is down)")
            icmp = list(s.icmp)
            if icmp:
                msg += f"; {len(icmp)} ICMP error(s) came back: {icmp[0].text}"
            self.add(Code.NO_ANSWER, msg, s.syn_frames + [e.frame for e in icmp], Verdict.NO_ANSWER,
                     frame_count=s.syn_count + len(icmp), syns=s.syn_count, icmp_errors=[e.text for e in icmp])

    # -- what the server said ----------------------------------------------------------
    def refused(self) -> None:
        app, s = self.smtp, self.s
        if app is None or not app.error_replies or s.close is Close.OPEN:
            return
        accepted = [c.reply_frame for c in app.commands
                    if c.verb in ("DATA body", "BDAT") and c.reply_code is not None
                    and 200 <= c.reply_code < 300 and c.reply_frame is not None]
        greeted = [c.reply_frame for c in app.commands if c.verb in ("EHLO", "HELO", "LHLO")
                   and c.reply_code is not None and 200 <= c.reply_code < 300]
        for e in reversed(app.error_replies):
            if e.verb in ("EHLO", "HELO", "LHLO") and any(f and f > e.frame for f in greeted):
                continue                    # a fallback (EHLO refused, HELO accepted)
            if any(f > e.frame for f in accepted):
                continue                    # a message was accepted after it
            what = "its greeting" if e.verb is None and e.frame == (app.greeting.frame if app.greeting else -1) \
                else f"{e.verb}" if e.verb else "a reply no command waited for"
            before = any(f < e.frame for f in accepted)
            self.add(Code.SMTP_REFUSED,
                     f"the server refused with {e.code} \"{e.text}\" ({what}); the session "
                     "then ended" + (" (a message was accepted before it)" if before else "")
                     + ": not a network fault", [e.frame], Verdict.SMTP_REFUSED,
                     reply_code=e.code, reply_text=e.text, smtp_command=e.verb,
                     accepted_before=before)
            return

    def no_greeting(self) -> None:
        s, app = self.s, self.smtp
        if app is None or _implicit_tls(app):
            return
        server = s.dirs[s.client_dir ^ 1]
        client = s.dirs[s.client_dir]
        if not s.synack_seen or server.data_segments or app.greeting is not None:
            return
        if s.reset is not None and reset_clues(s, s.reset)[0]:
            return                          # the reset the server did not send explains it
        start = s.hs_ack_ts if s.hs_ack_ts >= 0 else s.synack_ts
        frames = [f for f in (server.fin_frame, s.reset.frame if s.reset else 0) if f]
        if s.reset is not None and s.reset.dir == s.client_dir ^ 1 or server.fin:
            how = "reset" if s.reset is not None and s.reset.dir == s.client_dir ^ 1 else "closed"
            self.add(Code.NO_GREETING,
                     f"the server {how} the connection {duration((server.fin_ts or s.end) - start)} "
                     "after accepting it, before its greeting", frames, Verdict.NO_GREETING,
                     closed_by="server", waited_seconds=seconds((server.fin_ts or s.end) - start))
        elif client.fin or s.reset is not None:
            waited = (client.fin_ts or s.end) - start
            frames += [f for f in (client.fin_frame,) if f]
            self.add(Code.NO_GREETING,
                     f"no greeting came from the server in the {duration(waited)} the client "
                     "waited; then the client closed", frames, Verdict.NO_GREETING,
                     closed_by="client", waited_seconds=seconds(waited))
        elif s.seen_until - start >= EVIDENCE_NS:
            self.add(Code.NO_GREETING,
                     f"no greeting came from the server in the {duration(s.seen_until - start)} "
                     "the capture went on (still open: it may yet come)", [s.first_frame],
                     closed_by=None, waited_seconds=seconds(s.seen_until - start))

    def tls_failed(self) -> None:
        app, s = self.smtp, self.s
        if app is None or not app.tls or app.tls_watch is None:
            return
        w = app.tls_watch
        if w.completed:
            return
        fatal = [a for a in w.alerts if a.level == 2 or a.level is None]
        if not fatal and s.close is Close.OPEN:
            return                          # still in the handshake when the capture ended
        frames = [f for f in (w.client_hello, w.server_hello) if f]
        if fatal:
            a = fatal[0]
            said = f"a {'fatal' if a.level == 2 else 'encrypted'} alert" + \
                (f" {a.description}" if a.description else "")
            msg = (f"the TLS handshake failed: the {'client' if a.from_client else 'server'} sent "
                   f"{said} (frame {a.frame})")
            frames.append(a.frame)
            fields = {"alert": a.description, "alert_from": "client" if a.from_client else "server"}
        else:
            end = s.reset.frame if s.reset is not None else s.last_frame
            msg = (f"the TLS handshake did not complete: the session "
                   f"{'was reset' if s.reset is not None else 'ended'} before application data "
                   f"(frame {end})")
            frames.append(end)
            fields = {"alert": None, "alert_from": None}
        if w.client_hello is None:
            msg += "; no ClientHello was seen"
        elif w.server_hello is None:
            msg += "; the server sent no ServerHello"
        self.add(Code.TLS_FAILED, msg, frames, Verdict.TLS_FAILED, tls_version=w.version, **fields)

    # -- the receiver, the path, the peer ----------------------------------------------
    def zero_windows(self) -> Optional[int]:
        """ZERO_WINDOW_STALL for a side whose zero window never reopened (returns that
        side's direction), ZERO_WINDOW for pauses that ended."""
        s = self.s
        stalled = None
        for d in (0, 1):
            dd = s.dirs[d]
            for ep in dd.zero_windows:
                end_ts = ep.end_ts if ep.end_ts is not None else s.seen_until
                lasted = end_ts - ep.start_ts
                frames = [ep.start_frame] + ep.probe_frames + ([ep.end_frame] if ep.end_frame else [])
                probes = (f"; {ep.probes} window probe(s) from the {side_name(s, d ^ 1)}, "
                          f"{ep.answered} answered with window 0" if ep.probes else "")
                fields = dict(side=side_name(s, d), start_frame=ep.start_frame,
                              duration_seconds=seconds(lasted), probes=ep.probes,
                              answered=ep.answered, ended_by=ep.ended_by)
                if ep is dd.zero_windows[-1] and ep.ended_by in ("reset", "fin", "end") \
                        and (ep.ended_by != "end" or lasted >= EVIDENCE_NS):
                    how = {"reset": f"then the session was reset (frame {ep.end_frame})",
                           "fin": "then the session was closed",
                           "end": "and the capture ended"}[ep.ended_by or "end"]
                    self.add(Code.ZERO_WINDOW_STALL,
                             f"the {side_name(s, d)} advertised a zero window from frame "
                             f"{ep.start_frame} and never reopened it in {duration(lasted)}{probes}, "
                             f"{how}: its application stopped reading",
                             frames, Verdict.RECEIVER_STALLED, **fields)
                    stalled = d
                elif ep.ended_by == "reopened":
                    self.add(Code.ZERO_WINDOW,
                             f"the {side_name(s, d)} advertised a zero window from frame "
                             f"{ep.start_frame} for {duration(lasted)}{probes}, then reopened it "
                             f"(frame {ep.end_frame}): its application paused reading", frames,
                             **fields)
        return stalled

    def resets(self, stalled: Optional[int]) -> None:
        s, r = self.s, self.s.reset
        self.reset_turn_reported = False
        if r is None:
            return
        out, peer = self.out, self.peer
        cmd = r.app_command if self.smtp is not None else None
        during = f" during {cmd}" if cmd else ""
        strong, weak = reset_clues(s, r)
        idle = self.idle_before_end()
        if strong:
            self.add(Code.INJECTED_RESET,
                     f"a reset in the {side_name(s, r.dir)}'s name (frame {r.frame}) that the "
                     f"{side_name(s, r.dir)} did not send: " + "; ".join(strong)
                     + ("; less telling: " + "; ".join(weak) if weak else ""),
                     [r.frame] + ([s.after_reset_frame] if s.after_reset_frame else []),
                     None if idle is not None else Verdict.MIDDLEBOX_RESET,
                     reset_frame=r.frame, reset_ttl=r.ttl, sender_ttl=[s.dirs[r.dir].ttl_min,
                                                                       s.dirs[r.dir].ttl_max],
                     clues=strong + weak, smtp_command=cmd)
            if idle is not None:
                self.idle_timeout(idle, r)
            return
        if r.dir == peer and r.refused:
            port = s.key[6] if s.client_dir == 0 else s.key[3]
            self.add(Code.PEER_RESET, f"the server refused the connection: it answered the SYN "
                     f"with a reset (nothing listens on port {port})", s.syn_frames + [r.frame],
                     Verdict.PEER_RESET, reset_frame=r.frame, refused=True,
                     pushed_data_unanswered=False, smtp_command=None)
            return
        if r.dir == peer and not r.flags & ACK and r.seq_expected and r.trigger_gap >= idle_threshold(s):
            self.add(Code.PEER_RESTARTED,
                     f"after {duration(r.trigger_gap)} of silence the {side_name(s, out)}'s next "
                     f"segment (frame {r.trigger_frame}) was answered by the {side_name(s, peer)} "
                     f"itself (same TTL {r.ttl}) with a reset without ACK at the expected sequence "
                     f"number (frame {r.frame}): the {side_name(s, peer)}'s stack no longer knew "
                     "the session (a reboot or a restarted service)",
                     [r.trigger_frame, r.frame], Verdict.PEER_RESTARTED, reset_frame=r.frame,
                     idle_seconds=seconds(r.trigger_gap), smtp_command=cmd)
            return
        if r.dir == peer and r.turn_dir == out and r.unpushed_bytes > 0:
            if stalled == peer:
                self.notes.append(f"{size(r.unpushed_bytes)} from the {side_name(s, out)} waited "
                                  "without PSH behind the zero window: not a PSH problem")
                self.reset_turn_reported = True
            else:
                dwell = r.ts - r.unpushed_ts
                acked = (" The peer acknowledged all of them: received, but by all signs never "
                         "delivered to its application." if r.acked else "")
                self.add(Code.UNPUSHED_BEFORE_RESET,
                         f"the {side_name(s, peer)} reset the session after {size(r.unpushed_bytes)} "
                         f"from the {side_name(s, out)} had waited {duration(dwell)} without PSH"
                         f"{during}.{acked}",
                         list(r.unpushed_frames) + [r.frame], Verdict.PUSH_PROBLEM,
                         frame_count=r.unpushed_count + 1, unpushed_bytes=r.unpushed_bytes, acked=r.acked, dwell_seconds=seconds(dwell),
                         reset_frame=r.frame, smtp_command=cmd)
                self.reset_turn_reported = True
                return
        if r.dir == peer:
            pushed_left = r.turn_dir == out and r.turn_bytes > 0
            tail = (f"; {size(r.turn_bytes, 'pushed byte')} from the {side_name(s, out)} were left "
                    "unanswered" if pushed_left else "; no data was waiting for an answer")
            self.add(Code.PEER_RESET, f"the {side_name(s, peer)} reset the session{during}{tail}",
                     [r.frame], None if stalled == peer else Verdict.PEER_RESET, reset_frame=r.frame,
                     refused=False, pushed_data_unanswered=pushed_left, smtp_command=cmd)
            return
        extra = ""
        if r.turn_dir == out and r.unpushed_bytes:
            extra = (f" while {size(r.unpushed_bytes, 'unpushed byte')} of its own had waited "
                     f"{duration(r.ts - r.unpushed_ts)} unanswered")
        self.add(Code.LOCAL_RESET, f"the {side_name(s, out)} (outgoing side) reset the "
                 f"session{during}{extra}", [r.frame], reset_frame=r.frame, smtp_command=cmd)

    def idle_before_end(self) -> Optional[int]:
        """The outgoing side's last burst came after an idle time and was never answered
        by the peer itself: the idle time (ns), else None."""
        s, o, p = self.s, self.o, self.p
        if not o.burst_frame or o.burst_gap < idle_threshold(s) or not p.packets:
            return None
        if p.max_ack is not None and p.max_ack >= o.burst_end:
            return None                     # it was answered
        r = s.reset
        own = [f for f in (p.last_ts,) if f > o.burst_ts]
        if own and not (r is not None and r.dir == self.peer and p.last_ts == r.ts and reset_clues(s, r)[0]):
            return None                     # the peer itself sent something after it
        return o.burst_gap

    def idle_timeout(self, idle: int, r: Optional[ResetFact]) -> None:
        s, o = self.s, self.o
        frames = [o.burst_frame] + list(o.hol_frames)
        how = (f"answered only by a reset from elsewhere (frame {r.frame})" if r is not None
               else f"never answered ({len(o.hol_frames)} retransmission(s))")
        self.add(Code.IDLE_TIMEOUT,
                 f"after {duration(idle)} of silence the {side_name(s, self.out)}'s next segment "
                 f"(frame {o.burst_frame}) was {how}, though the {side_name(s, self.peer)} had "
                 "answered at once before: a stateful firewall or NAT on the path dropped the "
                 "idle session", frames + ([r.frame] if r is not None else []),
                 Verdict.PATH_DROPPED_STATE, idle_seconds=seconds(idle), first_frame=o.burst_frame)

    def unpushed_turns(self) -> None:
        s, out = self.s, self.out
        for t in s.unpushed_turns:
            if t.dir != out or t.ended_by == "fin":
                continue  # a turn its own FIN ends is delivered with the FIN
            if t.ended_by == "reset" and self.reset_turn_reported:
                continue
            if t.ended_by == "end" and s.seen_until - t.first_ts < EVIDENCE_NS:
                continue  # cut by the end of the capture, not known to be stuck
            answered = None if t.answered_ts is None else t.answered_ts - t.first_ts
            wait = None if answered is None else seconds(answered)
            how = {"data": f"the peer answered after {duration(answered or 0)}", "reset": "a reset ended it",
                   "peer_fin": "the peer closed",
                   "end": f"nothing answered in the {duration(s.seen_until - t.first_ts)} "
                          "the capture went on"}[t.ended_by]
            self.add(Code.UNPUSHED_TURN,
                     f"{size(t.bytes)} from the {side_name(s, out)} ended a turn without PSH; {how}",
                     t.frames, frame_count=t.segments, bytes=t.bytes, wait_seconds=wait,
                     segments=t.segments)

    def unreachable(self) -> None:
        s = self.s
        if Code.NO_ANSWER in self.codes or not s.icmp:
            return
        # after the SYN-ACK (before it, no answer is what the SYN's findings say) and before
        # the session closed (a late error about a finished session harms nothing)
        during = [e for e in s.icmp if s.synack_ts >= 0 and e.ts >= s.synack_ts
                  and (not s.closed or e.ts <= s.close_ts)
                  and (e.flow[0], e.type, e.code) not in FRAG_NEEDED]
        if not during:
            return
        answered_after = self.p.ack_advance_ts > during[-1].ts
        origins = sorted({e.origin for e in during if e.origin})
        self.add(Code.ICMP_UNREACHABLE,
                 f"{len(during)} ICMP error(s) quoting the session came back during it"
                 + (f" from {', '.join(origins)}" if origins else "") + f": {during[0].text}"
                 + ("; the session recovered" if answered_after else ""),
                 [e.frame for e in during], None if answered_after else Verdict.UNREACHABLE,
                 count=len(during), origins=origins, icmp=during[0].text)

    def pmtu(self) -> None:
        s, o, p = self.s, self.o, self.p
        if len(o.hol_frames) < 2 or not o.max_acked_segment:
            return
        seg = o.hol_size
        full = 0.75 * (p.mss or o.max_segment)      # "full-size": near the peer's MSS
        if seg <= max(o.max_acked_segment, SMALL_SEGMENT) or seg < full \
                or (p.max_ack is not None and p.max_ack > o.hol_start):
            return
        icmp = [e for e in s.icmp if (e.flow[0], e.type, e.code) in FRAG_NEEDED]
        said = (f"; {len(icmp)} ICMP '{icmp[0].text}' came back, yet the sender kept the size"
                if icmp else "; no ICMP 'fragmentation needed' or 'packet too big' came back")
        self.add(Code.PMTU_BLACKHOLE,
                 f"a full-size {seg:,}-byte segment from the {side_name(s, self.out)} was sent "
                 f"{len(o.hol_frames) + 1} times and never acknowledged, while segments of up to "
                 f"{size(o.max_acked_segment)} were{said}: a path MTU black hole",
                 list(o.hol_frames) + [e.frame for e in icmp], Verdict.PATH_MTU,
                 segment_bytes=seg, largest_acknowledged=o.max_acked_segment,
                 transmissions=len(o.hol_frames) + 1, icmp_frag_needed=len(icmp))

    def vanished(self) -> None:
        s, o, p = self.s, self.o, self.p
        if not p.packets or o.since_peer < 2 or self.codes & {
                Code.ONE_SIDED, Code.ICMP_UNREACHABLE, Code.PMTU_BLACKHOLE, Code.IDLE_TIMEOUT}:
            return
        if o.last_ts - o.since_ts < EVIDENCE_NS or not (o.retransmitted or o.keepalives):
            return
        if self.idle_before_end() is not None:    # silence after an idle time: the path
            self.idle_timeout(o.burst_gap, None)
            return
        ended = {Close.RESET_BY_CLIENT: "the {} reset it", Close.RESET_BY_SERVER: "the {} reset it",
                 Close.TIMEOUT: "the session timed out", Close.FIN: "the {} closed it",
                 Close.OPEN: "the capture ended"}[s.close]
        if s.reset is not None and s.reset.dir != self.out:
            return                          # the peer's reset speaks for itself
        what = []
        if o.retransmitted:
            what.append("retransmissions")
        if o.keepalives and o.ka_answered < o.keepalives:
            what.append(f"{o.keepalives - o.ka_answered} keep-alive(s)")
        still = " (it was still trying: the capture may have ended too soon)" \
            if s.close is Close.OPEN and s.seen_until - o.last_ts < EVIDENCE_NS else ""
        silent = max(o.last_ts, s.seen_until) - p.last_ts
        self.add(Code.PEER_VANISHED,
                 f"the {side_name(s, self.peer)} answered until frame {p.last_frame}, then sent "
                 f"nothing at all for {duration(silent)}: "
                 f"{o.since_peer} packet(s) from the {side_name(s, self.out)} "
                 f"({', '.join(what)}) went unanswered until "
                 + ended.format(side_name(s, self.out)) + still,
                 [p.last_frame] + list(o.hol_frames) + list(o.keepalive_frames),
                 Verdict.PEER_VANISHED, last_answer_frame=p.last_frame,
                 unanswered=o.since_peer, silent_seconds=seconds(silent))

    def gave_up(self) -> None:
        s, g = self.s, self.s.gave_up
        if g is None or g.dir != self.out or self.smtp is None or not g.command \
                or self.codes & {Code.NO_GREETING, Code.ONE_SIDED}:
            return
        if self.p.max_ack is None or self.p.max_ack < self.o.nxt:
            return                          # its data was not all received: not a reply it waited for
        limit = RFC5321_TIMEOUT_S.get(g.command, RFC5321_DEFAULT_TIMEOUT_S)
        if g.waited >= limit * NS:
            return
        late = (f"; the reply came {duration(self.s.dirs[self.peer].last_ts - g.ts)} later "
                f"(frame {s.late_frame}): the server was only slow" if s.late_frame else "")
        self.add(Code.LOCAL_GAVE_UP,
                 f"the {side_name(s, self.out)} {'reset' if g.how == 'reset' else 'closed'} the "
                 f"session (frame {g.frame}) after waiting {duration(g.waited)} for the reply to "
                 f"{g.command}; RFC 5321 gives the server {limit // 60} minutes{late}",
                 [g.frame] + ([s.late_frame] if s.late_frame else []), Verdict.LOCAL_TIMEOUT,
                 smtp_command=g.command, waited_seconds=seconds(g.waited), rfc_timeout_seconds=limit,
                 late_reply_frame=s.late_frame or None)

    def retransmissions(self) -> None:
        s, o, p = self.s, self.o, self.p
        close = s.close
        # died: True, False, or None when the capture ended before it could be known
        died: Optional[bool] = close in (Close.RESET_BY_CLIENT, Close.RESET_BY_SERVER, Close.TIMEOUT)
        if close is Close.OPEN and o.started and (p.max_ack is None or p.max_ack < o.nxt):
            died = True if s.seen_until - s.end >= EVIDENCE_NS else None
        if o.retransmitted:
            most = max(o.attempts.values()) if o.attempts else 2
            fate = {True: "then died", False: "recovered",
                    None: "was still waiting for acknowledgements when the capture ended"}[died]
            self.add(Code.RETRANSMISSIONS,
                     f"{o.retransmitted} outgoing segment(s) retransmitted, up to {most} "
                     f"transmissions of one segment; the session {fate}",
                     [], Verdict.NETWORK_LOSS if died is True else None,
                     count=o.retransmitted, max_attempts=most, died=died)

    def per_direction(self) -> None:
        s = self.s
        for d in (0, 1):
            dd = s.dirs[d]
            if dd.conflicts:
                self.add(Code.OVERLAP_CONFLICT,
                         f"{len(dd.conflicts)} retransmitted segment(s) {direction_name(s, d)} carried "
                         "bytes different from the first copy", dd.conflicts,
                         direction=direction_name(s, d), count=len(dd.conflicts))
            if dd.gap_bytes:
                self.add(Code.CAPTURE_GAP,
                         f"{size(dd.gap_bytes)} {direction_name(s, d)} were acknowledged but never "
                         "captured (the capture dropped them)", dd.gap_frames,
                         direction=direction_name(s, d), bytes=dd.gap_bytes)
            if dd.truncated:
                self.notes.append(f"{dd.truncated} segment(s) {direction_name(s, d)} were cut by the "
                                  "snap length; payload lengths come from the IP header")
            if dd.oversize:
                peer_mss = s.dirs[d ^ 1].mss
                self.notes.append(f"{dd.oversize} segment(s) {direction_name(s, d)} exceed the MSS of "
                                  f"{peer_mss} (segmentation offload on the capturing host)")
        if s.evicted:
            self.notes.append("ended early by the open-session limit (--max-sessions): its close is "
                              "reported as timeout" if s.timeout else
                              "ended early by the open-session limit (--max-sessions), after its close")
        for d in (0, 1):
            if s.dirs[d].overflows:
                self.notes.append(f"out-of-order data {direction_name(s, d)} outgrew the reassembly "
                                  f"limit (--max-buffer) {s.dirs[d].overflows} time(s); the missing "
                                  "bytes were given up as a capture gap")
        if s.ignored_resets:
            self.notes.append(
                f"{s.ignored_resets} reset(s) in the {side_name(s, s.client_dir ^ 1)}'s name "
                f"(first: frame {s.ignored_reset_frame}) came before its SYN-ACK without "
                "acknowledging the SYN: the client's stack ignores such a reset (RFC 793), so it "
                "refused nothing (a stray or forged packet)")
        if s.icmp and Verdict.NO_ANSWER not in self.implied and Code.ICMP_UNREACHABLE not in self.codes \
                and (s.dirs[0].packets or s.dirs[1].packets):    # (else why_incomplete says it)
            self.notes.append(f"{len(s.icmp)} ICMP error(s) quoted this session: {s.icmp[0].text}")


def _implicit_tls(app: Any) -> bool:
    """The dialogue began in TLS (port 465): no greeting in the clear is expected."""
    return bool(app.tls) and not app.verbs and app.greeting is None


class Assessed(NamedTuple):
    findings: list[dict[str, Any]]
    verdict: Verdict
    notes: list[str]
    incomplete: list[str]      # for an incomplete verdict, why (codes: see README)


def assess(s: Session) -> Assessed:
    """Findings, verdict, notes (and why incomplete) for an ended session."""
    a = _Assessment(s)
    findings, verdict, notes = a.run()
    return Assessed(findings, verdict, notes, a.incomplete)


def remedy(verdict: Verdict) -> Optional[str]:
    return REMEDY.get(verdict)


__all__ = ["EVIDENCE_NS", "NS", "Assessed", "assess", "direction_name", "remedy", "rtt_ns", "side_name"]
