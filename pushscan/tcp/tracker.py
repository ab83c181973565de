"""TCP tracker and reassembler: segments in, ended sessions out. No I/O.

Guarantees:
- every session the tracker creates ends exactly once, through ``on_end``: after its
  close (both FINs, or a RST) once ``linger`` of capture time has passed, when a new SYN
  reuses its 4-tuple, when evicted as idle (``expire``), or at ``finish``;
- session ids are numbered 0, 1, ... in order of first packet over all TCP sessions (or
  of the ICMP error that quoted a conversation first), as Wireshark numbers ``tcp.stream``;
- bytes reach the application parser in sequence order, exactly once; bytes that were
  acknowledged but never captured (or cut by the snap length) reach it as a ``gap``,
  never as invented bytes.
"""
from __future__ import annotations

import heapq
from contextlib import contextmanager
from itertools import starmap
from typing import Callable, Iterator, Optional, Protocol

from ..model import ACK, FIN, PSH, RST, SYN, FlowKey, Segment, SegmentBatch, TunnelInfo
from ..seq import unwrap
from .session import (FRAMES_KEPT, IPID_STEP, WINDOW_KEEP, Direction, GiveUp, ResetFact, Session, TraceEntry,
                      Turn, UnpushedTurn, ZeroWindow)

LINGER_NS = 60 * 1_000_000_000
UNPUSHED_TURNS_KEPT = 1000
ZERO_WINDOWS_KEPT = 64        # zero-window episodes kept per direction (all are counted)


class Holder(Protocol):
    """Something that took sessions out of the tracker (``Tracker.take_out``) and holds
    their truth meanwhile (the fast lane's rows)."""

    def give_back(self, s: Session, ending: bool) -> None:
        """Bring ``s``'s objects up to date and let go of it (``Tracker.put_back``).
        ``ending``: the session is about to end (its conflict windows are not needed)."""


class Tracker:
    """Feed ``SegmentBatch`` values in capture order; receive ended sessions via ``on_end``.

    ``is_server_port(port)`` guides client/server roles of sessions seen mid-stream;
    ``outgoing_of(session)`` returns the direction (0/1) that is "outgoing";
    ``app_for(session, first_server_bytes)`` returns an application parser or None (it
    is asked once at creation with ``None`` and once at the server's first data).

    A client that runs some packets itself (the fast lane, ``lane.py``) uses the public
    interface below: ``step`` (one packet through the reference code), ``take_out`` /
    ``put_back`` (the client holds a session's truth meanwhile; the tracker asks for it
    back, through ``Holder.give_back``, before it reads or ends the session),
    ``mark_closed`` and ``batch_scope`` (flows stepped out of capture order).
    """

    def __init__(self, *, on_end: Callable[[Session], None],
                 is_server_port: Callable[[int], bool],
                 outgoing_of: Callable[[Session], int],
                 app_for: Callable[[Session, Optional[bytes]], object],
                 linger_ns: int = LINGER_NS, max_sessions: int = 50_000,
                 max_buffer: int = 8 << 20, trace_ids: frozenset[int] = frozenset(),
                 trace_frames: frozenset[int] = frozenset()) -> None:
        self.on_end = on_end
        self.is_server_port = is_server_port
        self.outgoing_of = outgoing_of
        self.app_for = app_for
        self.linger_ns = linger_ns
        self.table: dict[FlowKey, Session] = {}
        self.closing: list[tuple[int, int, Session]] = []   # heap of (close ts, frame, session)
        self.next_id = 0
        self.starts: Optional[list[int]] = None  # if a list: every session's first frame (a shard's
        #                                          share of the capture's ids: analysis.shard)
        self.now = 0
        self.max_sessions = max_sessions   # open sessions kept; past it the idlest are evicted
        self.max_buffer = max_buffer       # out-of-order bytes held per direction
        self.evicted = 0                   # limit hits, for the report
        self.trace_ids = trace_ids         # sessions whose every packet is recorded, by id
        #                                    (final when made: the fast lane stays off) ...
        self.trace_frames = trace_frames   # ... or by first frame (the fast lane runs the rest)
        self.buffer_overflows = 0
        self._out: dict[Session, Holder] = {}     # sessions taken out, and who holds them
        self._created: Optional[list[Session]] = None   # in a batch scope: sessions made
        self._ended: Optional[list[Session]] = None     # in a batch scope: endings held back

    # -- the hot path ------------------------------------------------------------------
    def feed(self, batch: SegmentBatch, file_index: int = 0) -> None:
        """Process one batch of segments, in order."""
        if self._out:
            self._give_back_all(ending=False)
        flows = batch.flows
        current = [self.table.get(k) for k in flows]
        data = batch.data
        step = self._step
        tunnels = batch.tunnels

        def steps() -> None:
            for seg in starmap(Segment, batch.rows()):
                fi = seg.flow
                current[fi] = step(current[fi], flows[fi], seg,
                                   data[seg.pay_off:seg.pay_off + seg.pay_len] if seg.plen else b"",
                                   file_index, tunnels[seg.tunnel] if seg.tunnel >= 0 else None)

        if any(e.numbered for e in batch.icmp):
            with self.batch_scope():          # the ICMP errors' sessions get ids in frame order
                for fi, s in self.icmp_sessions(batch, file_index):
                    if fi >= 0:
                        current[fi] = s
                steps()
        else:
            steps()
        self.after_batch(batch)

    def icmp_sessions(self, batch: SegmentBatch, file_index: int = 0) -> list[tuple[int, Session]]:
        """Sessions for the conversations this batch's ICMP errors quote and no packet
        showed before them (Wireshark numbers those too: ``tcp.stream``); each with the
        batch's index of its flow (-1: no segment of it in the batch). Call within a
        ``batch_scope``, before the batch's segments, so that ids follow frames."""
        made: list[tuple[int, Session]] = []
        index: Optional[dict[FlowKey, int]] = None
        for err in batch.icmp:
            if not err.numbered or err.flow in self.table:
                continue
            if index is None:
                index = {key: fi for fi, key in enumerate(batch.flows)}
            fi = index.get(err.flow, -1)
            if fi >= 0:
                seg = batch.seg
                if int(seg["frame"][seg["flow"] == fi][0]) < err.frame:
                    continue                  # a segment before it makes the session
            s = self._new(err.flow, err.dir, 0, err.frame, err.ts, file_index)
            made.append((fi, s))
        return made

    def after_batch(self, batch: SegmentBatch) -> None:
        """Batch-end work: capture time advances, ICMP errors attach, lingering closed
        sessions end."""
        table = self.table
        if len(batch) or batch.until >= 0:
            self.now = batch.last_ts()
        for err in batch.icmp:
            s = table.get(err.flow)
            if s is not None:
                if not s.icmp:
                    s.icmp = []
                s.icmp.append(err)
        if self.closing:
            self._sweep()

    def step(self, key: FlowKey, seg: Segment, payload: bytes, file_index: int = 0,
             tunnel: Optional[TunnelInfo] = None) -> Session:
        """One packet of flow ``key`` (that came through ``tunnel``, if any) through the
        reference code; the session it belongs to now (a new one if it started one). The
        session, if taken out, must have been brought up to date by its holder first."""
        return self._step(self.table.get(key), key, seg, payload, file_index, tunnel)

    def _step(self, s: Optional[Session], key: FlowKey, seg: Segment, payload: bytes,
              file_index: int, tunnel: Optional[TunnelInfo] = None) -> Session:
        """One segment; ``s``: its flow's session as last known (or None)."""
        frame, ts, d, fl = seg.frame, seg.ts, seg.dir, seg.flags
        if s is None or s.ended or (fl & SYN and self._starts_new(s, d, fl, seg.seq)):
            if s is not None and not s.ended:
                self._end(s)
            s = self._new(key, d, fl, frame, ts, file_index)
            s.tunnel = tunnel
        prev_frame, prev_gap = s.last_frame, s.last_gap
        gap = s.last_gap = ts - s.end
        s.last_frame = frame
        s.end = ts
        src = s.dirs[d]
        dst = s.dirs[d ^ 1]
        new = 0
        plen = seg.plen
        what = self._habits(s, src, dst, seg)
        if fl & SYN:
            self._syn(s, src, seg, ts)
        a = None
        if fl & ACK and dst.started:
            a = unwrap(seg.ack, dst.nxt)
            if src.max_ack is None or a > src.max_ack:
                src.max_ack = a
                src.ack_advance_ts = ts
                if dst.holes or a > dst.nxt + dst.fin:
                    self._acked_unseen(s, dst, d ^ 1, a, frame)
            if a >= dst.nxt and dst.pending_max:   # all of the peer's data acknowledged
                if dst.pending_max > dst.max_acked_segment:
                    dst.max_acked_segment = dst.pending_max
                dst.pending_max = 0
            if not s.hs_ack and d == s.client_dir and s.synack_seen:
                s.hs_ack = True
                s.hs_ack_ts = ts
        if not fl & RST and fl & ACK:
            what = self._window(s, src, dst, seg, a, what)
        if plen:
            psh = fl & PSH != 0
            src.data_segments += 1
            if psh:
                src.psh_segments += 1
            if not src.started:
                src.start(seg.seq)
            start = unwrap(seg.seq, src.nxt)
            end = start + plen
            if plen > src.max_segment:
                src.max_segment = plen
            if plen > src.pending_max:
                src.pending_max = plen
            if dst.mss and plen > dst.mss:
                src.oversize += 1
            if dst.win > 0 and dst.last_ack is not None and end == dst.last_ack + dst.win:
                src.window_full += 1
                if not src.window_full_frame:
                    src.window_full_frame = frame
                what = what or "window full"
            if start >= src.nxt and (dst.max_ack is None or dst.max_ack >= src.nxt):
                src.burst_frame, src.burst_ts, src.burst_gap, src.burst_end = frame, ts, gap, end
            gave_up = s.gave_up
            if gave_up is not None and d != gave_up.dir and not s.late_frame:
                s.late_frame = frame          # the answer came after the other side gave up
            if start >= src.nxt:
                if start > src.nxt:
                    if not src.holes:
                        src.holes = []
                    src.holes.append([src.nxt, start])
                src.nxt = end
                new = plen
                if start == src.delivered:
                    self._deliver(s, src, d, payload, plen, frame, psh, ts)
                    if src.pending:
                        self._drain(s, src, d, ts)
                else:
                    self._hold(s, src, d, start, payload, plen, psh, frame, ts)
            else:
                new = self._overlap(s, src, d, start, end, payload, plen, frame, psh, ts,
                                    what == "keep-alive")
            if psh and end > src.last_push_end:
                src.last_push_end = end
            if new:
                src.bytes += new
                t = s.turn
                if t is None or t.dir != d:
                    if t is not None:
                        self._end_turn(s, t, "data", ts)
                    t = s.turn = Turn(d, ts, frame, start)
                    src.turns += 1
                t.bytes += new
                t.last_frame = frame
                t.last_ts = ts
                if src.last_push_end >= src.nxt:
                    t.last_pushed = True
                    t.unpushed_bytes = 0
                else:
                    # bytes after the last pushed byte, in sequence order
                    if not t.unpushed_bytes:
                        t.unpushed_ts = ts
                        t.unpushed_frames = []
                        t.unpushed_count = 0
                    t.last_pushed = False
                    t.unpushed_bytes = src.nxt - max(src.last_push_end, t.start)
                    t.unpushed_count += 1
                    if len(t.unpushed_frames) < FRAMES_KEPT:
                        t.unpushed_frames.append(frame)
            elif psh:
                t = s.turn
                if t is not None and t.dir == d and src.last_push_end >= src.nxt:
                    t.last_pushed = True   # a retransmission pushed the waiting bytes
                    t.unpushed_bytes = 0
        if fl & (FIN | RST):
            self._fin_rst(s, src, d, seg, prev_frame, prev_gap)
        if s.trace is not None:
            s.trace.append(TraceEntry(
                frame, ts, d, fl,
                unwrap(seg.seq, src.nxt) - src.data_start if src.started else None, plen, new,
                unwrap(seg.ack, dst.nxt) - dst.data_start if fl & ACK and dst.started else None,
                src.win if fl & ACK else -1, seg.ttl, what))
        return s

    def _habits(self, s: Session, src: Direction, dst: Direction, seg: Segment) -> str:
        """What a packet shows of its sender (counts, last packet, TTL, IP ID, options;
        keep-alives and zero-window probes), before the tracker applies it. Returns what
        the packet is, for the trace: "keep-alive", "zero-window probe" or ""."""
        fl, ts = seg.flags, seg.ts
        src.packets += 1
        if fl & ACK:
            src.acks += 1
        src.last_ts = ts
        src.last_frame = seg.frame
        if not src.since_peer:
            src.since_ts = ts
        src.since_peer += 1
        dst.since_peer = 0
        if dst.ka_pending:                # the peer's keep-alive got an answer
            dst.ka_pending = False
            dst.ka_answered += 1
        r = s.reset
        if r is not None and r.dir == seg.dir and not fl & RST:
            s.after_reset += 1            # the reset's sender is still talking
            if not s.after_reset_frame:
                s.after_reset_frame = seg.frame
        if fl & RST:
            return ""                     # a RST is judged against the sender's habits
        ttl = seg.ttl
        if src.ttl_min < 0 or ttl < src.ttl_min:
            src.ttl_min = ttl
        if ttl > src.ttl_max:
            src.ttl_max = ttl
        ipid = seg.ipid
        if ipid >= 0:
            src.ipid_count += 1
            if ipid == 0:
                src.ipid_zero += 1
            else:
                if src.ipid_last >= 0 and 0 < (ipid - src.ipid_last) & 0xFFFF < IPID_STEP:
                    src.ipid_inc += 1
                src.ipid_last = ipid
        if not fl & SYN:
            src.opts_all = seg.opts if src.opts_all < 0 else src.opts_all & seg.opts
            src.opts_any |= seg.opts
        if seg.plen <= 1 and not fl & (SYN | FIN) and src.started \
                and unwrap(seg.seq, src.nxt) == src.nxt - 1 \
                and (not seg.plen or dst.max_ack is not None and dst.max_ack >= src.nxt):
            # one below the next byte, with no data or a byte the peer already has: a
            # probe (a retransmission of an unacknowledged last byte is not one)
            ep = dst.zero_windows[-1] if dst.zero_windows else None
            if ep is not None and ep.ended_by is None:
                ep.probes += 1
                if len(ep.probe_frames) < FRAMES_KEPT:
                    ep.probe_frames.append(seg.frame)
                return "zero-window probe"
            src.keepalives += 1
            src.ka_pending = True
            if not src.keepalive_frames:
                src.keepalive_frames = []
            if len(src.keepalive_frames) < FRAMES_KEPT:
                src.keepalive_frames.append(seg.frame)
            return "keep-alive"
        return ""

    def _window(self, s: Session, src: Direction, dst: Direction, seg: Segment,
                a: Optional[int], what: str) -> str:
        """The window a packet with ACK advertises (scaled once both SYNs agreed on it),
        zero-window episodes, duplicate ACKs."""
        fl = seg.flags
        scaled = not fl & SYN and src.wscale >= 0 and dst.wscale >= 0
        win = seg.win << src.wscale if scaled else seg.win
        if not seg.plen and not fl & (SYN | FIN) and a is not None:
            if a == src.last_ack and seg.win == src.win_raw and win and dst.nxt > a:
                src.dup_acks += 1
                src.dup_run += 1
                if src.dup_run > src.dup_max:
                    src.dup_max = src.dup_run
                what = what or "duplicate ACK"
            else:
                src.dup_run = 0
        elif seg.plen:
            src.dup_run = 0
        if a is not None:
            src.last_ack = a
        if not fl & SYN:
            ep = src.zero_windows[-1] if src.zero_windows else None
            if win == 0:
                if ep is None or ep.ended_by is not None:
                    if not src.zero_windows:
                        src.zero_windows = []
                    src.zero_window_count += 1
                    if len(src.zero_windows) < ZERO_WINDOWS_KEPT:
                        src.zero_windows.append(ZeroWindow(seg.frame, seg.ts))
                    else:                 # the latest is always kept
                        src.zero_windows[-1] = ZeroWindow(seg.frame, seg.ts)
                else:
                    ep.answered += 1
                what = what or "zero window"
            elif ep is not None and ep.ended_by is None:
                ep.ended_by = "reopened"
                ep.end_frame, ep.end_ts = seg.frame, seg.ts
                what = what or "window reopened"
        src.win = win
        src.win_raw = seg.win
        return what

    # -- for clients that hold sessions ------------------------------------------------
    def take_out(self, s: Session, holder: Holder) -> None:
        """``holder`` holds ``s``'s truth from now on (its objects may be stale)."""
        self._out[s] = holder

    def put_back(self, s: Session) -> None:
        """``s``'s objects are its truth again."""
        self._out.pop(s, None)

    def _give_back_all(self, ending: bool) -> None:
        for s, holder in list(self._out.items()):
            holder.give_back(s, ending)

    def mark_closed(self, s: Session, ts: int, frame: int) -> None:
        """``s`` closed (both FINs, or a RST) at ``ts``: it lingers, then ends."""
        if not s.closed:
            s.closed = True
            s.close_ts = ts
            closing = self.closing
            if len(closing) > len(self.table) + len(self.table) // 4 + 1024:
                # sessions ended before their linger was over (evicted, a port reused)
                # wait here for nothing: drop them, so that a flood of short sessions
                # (SYN, RST) keeps no more than the open-session limit
                closing[:] = [e for e in closing if not e[2].ended]
                heapq.heapify(closing)
            heapq.heappush(closing, (ts, frame, s))
            for dd in s.dirs:   # a closed session lingers without its conflict windows
                dd.window = bytearray()

    @contextmanager
    def batch_scope(self) -> Iterator[None]:
        """Within it, packets of different flows may be stepped out of capture order
        (each flow's in order). On leaving it, the sessions made meanwhile get their ids
        in order of first frame (as if stepped in capture order), and only then do the
        sessions that ended meanwhile reach ``on_end``."""
        first_id = self.next_id
        self._created, self._ended = [], []
        try:
            yield
        finally:
            created, ended = self._created, self._ended
            self._created = self._ended = None
            for k, s in enumerate(sorted(created, key=lambda x: x.first_frame)):
                s.id = first_id + k
            for s in ended:
                self.on_end(s)

    # -- slower paths ------------------------------------------------------------------
    def _starts_new(self, s: Session, d: int, fl: int, seq: int) -> bool:
        """A SYN on a known 4-tuple: does it start a new session (port reuse)?"""
        if fl & ACK:
            return s.closed and s.synack_seen
        if s.syn_isn is not None:
            return seq != s.syn_isn or s.closed
        return s.closed or s.dirs[d].started

    def _evict(self) -> None:
        """Past ``max_sessions`` open sessions, end the least recently active tenth
        (close: timeout), so that memory stays bounded whatever the capture holds."""
        if self._out:
            self._give_back_all(ending=False)
        idle = sorted(self.table.values(), key=lambda x: x.end)[: max(1, self.max_sessions // 10)]
        for s in idle:
            self.evicted += 1
            s.evicted = True
            if not s.closed:
                s.timeout = True
            self._end(s)

    def _new(self, key: FlowKey, d: int, fl: int, frame: int, ts: int, file_index: int) -> Session:
        if len(self.table) >= self.max_sessions:
            self._evict()
        if fl & SYN:
            client_dir = d if not fl & ACK else d ^ 1
        else:
            a_srv = self.is_server_port(key[3])
            b_srv = self.is_server_port(key[6])
            if a_srv != b_srv:
                client_dir = 1 if a_srv else 0
            else:
                client_dir = d
        s = Session(self.next_id, key, client_dir, client_dir, frame, ts, file_index)
        self.next_id += 1
        if self.starts is not None:
            self.starts.append(frame)
        if self._created is not None:
            self._created.append(s)
        server_port = key[6] if client_dir == 0 else key[3]
        s.smtp_port = self.is_server_port(server_port)
        s.out_dir = self.outgoing_of(s)
        s.app = self.app_for(s, None)  # type: ignore[assignment]
        if s.id in self.trace_ids or frame in self.trace_frames:
            s.trace = []
        self.table[key] = s
        return s

    def _syn(self, s: Session, src: Direction, seg: Segment, ts: int) -> None:
        fl, seq, frame = seg.flags, seg.seq, seg.frame
        if seg.mss:
            src.mss = seg.mss
        src.syn_opts = seg.opts
        src.wscale = seg.wscale
        if fl & ACK:
            s.synack_seen = True
            s.synack_count += 1
            if s.synack_ts < 0:
                s.synack_ts = ts
        else:
            if s.syn_ts < 0:
                s.syn_ts = ts
            s.syn_seen = True
            s.syn_count += 1
            s.syn_isn = seq
            if len(s.syn_frames) < FRAMES_KEPT:
                s.syn_frames.append(frame)
        if src.isn is None:
            src.isn = seq
            if not src.started:
                src.start(seq + 1)

    def _deliver(self, s: Session, src: Direction, d: int, payload: bytes, plen: int,
                 frame: int, psh: bool, ts: int) -> None:
        """Hand in-order bytes at ``src.delivered`` to the app (callers drain pending)."""
        app = s.app
        if app is None and not s.app_probed and d != s.client_dir \
                and not s.dirs[s.client_dir].bytes:
            s.app_probed = True
            app = s.app = self.app_for(s, payload)  # type: ignore[assignment]
        w = src.window
        if payload:
            w += payload
            if len(w) > 2 * WINDOW_KEEP:
                del w[:-WINDOW_KEEP]
            if app is not None:
                app.data(d == s.client_dir, payload, frame, psh, ts)
        if len(payload) < plen:
            src.truncated += 1
            w.clear()
            if app is not None:
                app.gap(d == s.client_dir, plen - len(payload))
        src.delivered += plen

    def _drain(self, s: Session, src: Direction, d: int, ts: int, upto: int = 0) -> None:
        """Deliver pending segments that now follow ``delivered``; with ``upto``, declare
        everything missing below it a gap."""
        pending = src.pending
        while True:
            ready = [k for k in pending if k <= src.delivered]
            if ready:
                k = min(ready)
                payload, plen, psh, frame = pending.pop(k)
                src.pending_bytes -= len(payload)
                skip = src.delivered - k
                if skip < plen:
                    self._deliver(s, src, d, payload[skip:], plen - skip, frame, psh, ts)
                continue
            if src.delivered < upto:
                stop = min([k for k in pending] + [upto])
                src.window.clear()
                if s.app is not None:
                    s.app.gap(d == s.client_dir, stop - src.delivered)
                src.delivered = stop
                continue
            return

    def _overlap(self, s: Session, src: Direction, d: int, start: int, end: int,
                 payload: bytes, plen: int, frame: int, psh: bool, ts: int,
                 keepalive: bool = False) -> int:
        """A segment starting below the highest sequence seen. Returns its new bytes. (A
        keep-alive's byte is not a retransmission.)"""
        new = 0
        if src.holes:
            kept: list[list[int]] = []
            for hs, he in src.holes:
                lo, hi = max(hs, start), min(he, end)
                if lo < hi:
                    new += hi - lo
                    if hs < lo:
                        kept.append([hs, lo])
                    if hi < he:
                        kept.append([hi, he])
                else:
                    kept.append([hs, he])
            src.holes = kept
        if end > src.nxt:
            new += end - src.nxt
            src.nxt = end
        if new < plen and not keepalive:
            src.retransmitted += 1
            if not src.attempts:
                src.attempts = {}
            src.attempts[start] = src.attempts.get(start, 1) + 1
            peer_ack = s.dirs[d ^ 1].max_ack
            if start == (src.data_start if peer_ack is None else peer_ack):
                self._head_of_line(src, start, plen, frame)
            # compare what overlaps the last WINDOW_KEEP delivered bytes (the buffer may
            # hold up to twice that between trims; only the last WINDOW_KEEP count)
            w = src.window
            wl = min(len(w), WINDOW_KEEP)
            wstart = src.delivered - wl
            base = len(w) - wl
            lo, hi = max(start, wstart), min(end, src.delivered, start + len(payload))
            if lo < hi and w[base + lo - wstart:base + hi - wstart] != payload[lo - start:hi - start]:
                if not src.conflicts:
                    src.conflicts = []
                src.conflicts.append(frame)
        else:
            src.out_of_order += 1
        if start <= src.delivered < end:
            skip = src.delivered - start
            self._deliver(s, src, d, payload[skip:], plen - skip, frame, psh, ts)
            if src.pending:
                self._drain(s, src, d, ts)
        elif start > src.delivered:
            self._hold(s, src, d, start, payload, plen, psh, frame, ts)
        return new

    def _hold(self, s: Session, src: Direction, d: int, start: int, payload: bytes, plen: int,
              psh: bool, frame: int, ts: int) -> None:
        """Keep out-of-order data until the hole before it fills; past ``max_buffer``
        bytes held, the hole is given up as a gap and the held data delivered."""
        if not src.pending:
            src.pending = {}
        src.pending[start] = (payload, plen, psh, frame)
        src.pending_bytes += len(payload)
        if src.pending_bytes > self.max_buffer:
            self.buffer_overflows += 1
            src.overflows += 1
            self._drain(s, src, d, ts, upto=max(k + v[1] for k, v in src.pending.items()))

    @staticmethod
    def _head_of_line(src: Direction, start: int, plen: int, frame: int) -> None:
        """A retransmission of the segment at the first unacknowledged byte: kept with
        its size and frames while the same segment is sent again."""
        if start != src.hol_start or plen != src.hol_size:
            src.hol_start, src.hol_size, src.hol_frames = start, plen, []
        if len(src.hol_frames) < FRAMES_KEPT:
            src.hol_frames.append(frame)

    def _acked_unseen(self, s: Session, dst: Direction, d: int, a: int, frame: int) -> None:
        """The peer acknowledged up to ``a``: bytes of ``dst`` below it that were never
        captured are a capture gap."""
        missing = 0
        kept = []
        for hs, he in dst.holes:
            if hs < a:
                missing += min(he, a) - hs
                if he > a:
                    kept.append([a, he])
            else:
                kept.append([hs, he])
        dst.holes = kept
        top = a - 1 if dst.fin else a
        if top > dst.nxt:
            missing += top - dst.nxt
            dst.nxt = top
        if missing:
            dst.gap_bytes += missing
            if not dst.gap_frames:
                dst.gap_frames = []
            if len(dst.gap_frames) < FRAMES_KEPT:
                dst.gap_frames.append(frame)
            self._drain(s, dst, d, s.end, upto=min(top, dst.nxt))

    def _end_turn(self, s: Session, t: Turn, how: str, ts: int) -> None:
        src = s.dirs[t.dir]
        s.turn = None
        if t.last_pushed:
            return
        src.turns_unpushed += 1
        if not s.unpushed_turns:
            s.unpushed_turns = []
        if len(s.unpushed_turns) < UNPUSHED_TURNS_KEPT:
            s.unpushed_turns.append(UnpushedTurn(
                t.dir, t.unpushed_bytes, t.unpushed_ts, tuple(t.unpushed_frames),
                t.unpushed_count, ts if how == "data" else None, how))

    def _fin_rst(self, s: Session, src: Direction, d: int, seg: Segment, prev_frame: int,
                 prev_gap: int) -> None:
        """A FIN or RST from direction ``d``; ``prev_frame``/``prev_gap``: the packet before
        it and the silence that preceded that packet."""
        fl, frame, ts = seg.flags, seg.frame, seg.ts
        t = s.turn
        command = s.app.command_in_progress() if s.app is not None else None
        if t is not None and t.dir == d and d == s.out_dir and s.gave_up is None:
            # the outgoing side closes while its own data waits for an answer
            s.gave_up = GiveUp(d, frame, ts, "reset" if fl & RST else "fin", ts - t.last_ts, command)
        if fl & RST:
            s.rst_count += 1
            if s.reset is None and self._unacceptable_reset(s, d, seg):
                s.ignored_resets += 1
                if not s.ignored_reset_frame:
                    s.ignored_reset_frame = frame
                return
            if s.reset is None:
                peer = s.dirs[d ^ 1]
                acked = peer.started and src.max_ack is not None and src.max_ack >= peer.nxt
                expected = src.started and peer.max_ack is not None \
                    and unwrap(seg.seq, src.nxt) == peer.max_ack
                s.reset = ResetFact(
                    d, frame, ts,
                    t.dir if t else None, t.bytes if t else 0,
                    t.unpushed_bytes if t else 0, t.unpushed_ts if t else 0,
                    tuple(t.unpushed_frames) if t else (),
                    bool(acked), command,
                    s.syn_seen and not s.synack_seen and d != s.client_dir,
                    flags=fl, seq_expected=expected, ttl=seg.ttl, ipid=seg.ipid, opts=seg.opts,
                    trigger_frame=prev_frame, trigger_gap=prev_gap, before_peer=src.packets == 1,
                    turn_last_ts=t.last_ts if t else 0,
                    unpushed_count=t.unpushed_count if t and t.unpushed_bytes else 0)
                if t is not None:
                    self._end_turn(s, t, "reset", ts)
                self.mark_closed(s, ts, frame)
            return
        if not src.fin:
            src.fin = True
            src.fin_frame, src.fin_ts = frame, ts
            if t is not None:
                self._end_turn(s, t, "fin" if t.dir == d else "peer_fin", ts)
            if s.dirs[d ^ 1].fin:
                self.mark_closed(s, ts, frame)

    @staticmethod
    def _unacceptable_reset(s: Session, d: int, seg: Segment) -> bool:
        """A reset sent to a client that is waiting for its SYN-ACK (SYN-SENT) that does
        not acknowledge the SYN: its stack ignores it (RFC 793 3.4), so it neither refuses
        nor closes the session (a stray or forged packet; the SYN-ACK may still come)."""
        if d == s.client_dir or not s.syn_seen or s.synack_seen or s.syn_isn is None:
            return False
        return not (seg.flags & ACK and seg.ack == (s.syn_isn + 1) & 0xFFFFFFFF)

    def _sweep(self) -> None:
        """End closed sessions whose linger is over, in order of closing."""
        limit = self.now - self.linger_ns
        closing = self.closing
        while closing and closing[0][0] <= limit:
            s = heapq.heappop(closing)[2]
            if not s.ended:
                self._end(s)

    def _end(self, s: Session) -> None:
        if s.ended:
            return
        holder = self._out.get(s)
        if holder is not None:
            holder.give_back(s, ending=True)
        s.seen_until = max(self.now, s.end)
        if s.turn is not None:
            self._end_turn(s, s.turn, "end", s.end)
        for dd in s.dirs:            # a zero window still closed: what ended the session
            ep = dd.zero_windows[-1] if dd.zero_windows else None
            if ep is not None and ep.ended_by is None:
                r = s.reset
                ep.ended_by = "reset" if r is not None else "fin" if s.dirs[0].fin or s.dirs[1].fin \
                    else "end"
                ep.end_frame, ep.end_ts = (r.frame, r.ts) if r is not None else (s.last_frame, s.end)
        s.ended = True
        if self.table.get(s.key) is s:
            del self.table[s.key]
        if self._ended is not None:
            self._ended.append(s)
        else:
            self.on_end(s)

    # -- outside events ----------------------------------------------------------------
    def expire(self, now: int, idle_ns: int) -> None:
        """End sessions with no packet for ``idle_ns`` before ``now`` (close: timeout)."""
        if self._out:
            self._give_back_all(ending=False)
        for s in [s for s in self.table.values() if s.end + idle_ns < now]:
            if not s.closed:
                s.timeout = True
            self._end(s)

    def tick(self, now: int, idle_ns: Optional[int] = None) -> None:
        """Time passes without packets (live capture): end closed sessions whose linger
        is over and, with ``idle_ns``, sessions idle that long (close: timeout)."""
        self.now = max(self.now, now)
        if self.closing:
            self._sweep()
        if idle_ns is not None:
            self.expire(self.now, idle_ns)

    def finish(self) -> None:
        """End of capture: every session still known ends now."""
        for s in sorted(self.table.values(), key=lambda x: x.id):
            self._end(s)     # (sessions taken out are given back first, without windows)
        self.closing = []
