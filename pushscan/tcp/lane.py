"""The tracker's compiled fast lane: the common packets of big captures, in numba.

The Python ``Tracker`` is the reference; it defines every result. ``FastLane`` wraps a
tracker and is fed as it is (``feed``, ``finish``). It takes open sessions out of the
tracker (``Tracker.take_out``) into records of one array (``layout.ROW``) and runs the
kernel (``kernel.py``) over each batch, in rounds. The kernel applies the packets whose
effect it can compute exactly: acknowledgements, in-order data, SYN-ACKs, FINs,
retransmissions of bytes already delivered (compared with the conflict window), and the
SMTP side of the payload: it reads command and reply lines, counts message bodies up to
CRLF.CRLF and BDAT chunks. What it reads comes back as events (``layout.Event``),
replayed in order into the session's ``SmtpDialogue`` (its line-level input) and tracker
state. Every other packet of a flow (a SYN that may start a session, RST, a hole,
reordering, a snap-length cut, a turn ending unpushed, an odd SMTP line, ...) goes to
the reference code (``Tracker.step``), in packet order for that flow, with the session's
objects brought up to date before and its record loaded again after; payload the kernel
cannot read goes to the reference parser as a record (at most one per session per round,
so the kernel only ever acts on the parser's true state, which it learns from
``SmtpDialogue.export_state``). Sessions are independent, so only session numbering and
the order of endings are global; the tracker's ``batch_scope`` settles both at the end
of each batch exactly as the reference would (ids by first frame).

The result is the same report, bit for bit: ``tests/tcp/test_lane.py`` runs both on
every bundled capture, on generated traffic and on mutated captures.
"""
from __future__ import annotations

import mmap
from operator import attrgetter
from typing import Any, Optional

import numpy as np

from ..compiled import kernels
from ..model import ACK, PSH, FlowKey, Segment, SegmentBatch, TunnelInfo
from ..seq import unwrap
from ..smtp.dialogue import ClientState, SmtpDialogue
from .kernel import VERB_BODY
from .layout import (BUFFERS, CONTROL, DESCRIPTORS, EVENT, FACTS, IX, MAX_ROWS, PENDING_KEPT,
                     RETX_CONFLICT, RETX_HEAD, RETX_NEW_HEAD, ROW, ROW_WORDS, WINDOW, App, Event,
                     Lex, Window)
from .session import FRAMES_KEPT, WINDOW_KEEP, Session, Turn
from .tracker import Tracker

ROUND = 2048               # packets added to each kernel round
EVENTS = 1 << 16           # SMTP commands and replies the kernel may read per round
LEX = {ClientState.COMMAND: Lex.COMMAND, ClientState.AWAIT_DATA_GO: Lex.AWAIT_DATA_GO,
       ClientState.BODY: Lex.BODY}
WINDOW_FIELDS = WINDOW.names or ()
facts_of = attrgetter(*FACTS)        # a Direction's FACTS, as a tuple


class FastLane:
    """``FastLane(tracker)``, then ``feed`` and ``finish`` it as the tracker itself.

    While a session has a row, the row is the truth about it (``sync`` brings its
    objects up to date); its conflict windows live in the row (as descriptors into a
    memory-mapped capture, or ring bytes), and become bytearrays again only when the
    reference code needs them. The lane is the tracker's ``Holder`` of those sessions."""

    ROWS = 512                       # rows at first (they double as needed, to MAX_ROWS)
    HOT = 64                         # free rows that keep their ring pages (reused first)
    SLOW_PER_FLOW = 8    # slow packets of one flow in one batch before the flow stays slow

    def __init__(self, tracker: Tracker, capacity: int = 0) -> None:
        capacity = capacity or self.ROWS
        self.kernel = kernels().track
        self.t = tracker
        self._rows(capacity)
        self.rings = _Rings(capacity)
        self.W = self.rings.W
        self.mapped: Any = None        # the memory-mapped capture descriptors point into
        self.EV = np.zeros(EVENTS, dtype=EVENT)
        self.C = np.zeros(1, dtype=CONTROL)
        self.U = np.empty(16, dtype=np.int64)      # the kernel's scratch (it allocates nothing)
        self._codes: dict[str, int] = {"DATA body": VERB_BODY}
        self._verbs: dict[int, str] = {VERB_BODY: "DATA body"}
        self.owner: list[Optional[Session]] = [None] * capacity
        self.row_of: dict[Session, int] = {}
        self.free = list(range(capacity - 1, -1, -1))
        self.slows = np.zeros(0, dtype=np.int64)       # per flow of the batch: slow packets
        self.packets = 0               # packets it applied itself (the rest: reference code)

    def _rows(self, capacity: int) -> None:
        """State for ``capacity`` rows, keeping the rows there are (sessions' records and
        buffers); ``F`` sees the rows as int64 words (``layout.IX`` names the places)."""
        S = np.zeros(capacity, dtype=ROW)
        B = np.zeros(capacity, dtype=BUFFERS)
        old: Optional[np.ndarray] = getattr(self, "S", None)
        if old is not None:
            S[:len(old)] = old
            B[:len(old)] = self.B
        self.S: np.ndarray = S
        self.B: np.ndarray = B
        self.F: np.ndarray = S.view(np.int64).reshape(capacity, ROW_WORDS)

    # -- rows <-> sessions -------------------------------------------------------------
    def _grow(self) -> bool:
        """Double the rows (up to MAX_ROWS). The rings are reserved for every row from
        the start (untouched pages until written), or else copied for rows in use."""
        cap = len(self.owner)
        if cap >= MAX_ROWS:
            return False
        self._rows(2 * cap)
        if len(self.W) < 2 * cap:     # rings not reserved for every row at first
            F = self.F
            ring = [(F[:cap, IX.dirs[d].window.mode] == Window.RING) for d in (0, 1)]
            used = np.flatnonzero(ring[0] | ring[1])
            self.rings = self.rings.grown(2 * cap, used)   # only windows kept as bytes matter
            self.W = self.rings.W
        self.owner += [None] * cap
        self.free = list(range(2 * cap - 1, cap - 1, -1)) + self.free
        return True

    @staticmethod
    def _eligible(s: Session) -> bool:
        """Sessions the kernel may hold: open, untraced, no holes or held data, and an
        SMTP parser or none. (A closed session lingers without a row: rows are few.)"""
        if s.ended or s.closed or s.trace is not None or not (s.app is None or isinstance(s.app, SmtpDialogue)):
            return False
        for dd in s.dirs:
            if dd.holes or dd.pending or (dd.started and dd.delivered != dd.nxt):
                return False
            if dd.zero_windows and dd.zero_windows[-1].ended_by is None:
                return False         # a zero window lasts: the reference code follows it
        return True

    def _window(self, r: int, d: int) -> bytes:
        """The bytes of a row's conflict window, from descriptors or from the ring."""
        w = IX.dirs[d].window
        row = self.F[r]
        n = int(row[w.len])
        if not n:
            return b""
        p, mode, h, c = int(row[w.pos]), int(row[w.mode]), int(row[w.head]), int(row[w.count])
        if mode == Window.DESCRIPTORS:
            mm: Any = self.mapped
            desc = self.B["descriptors"][r, d]
            parts = [mm[o:o + ln] for o, ln in desc[[(h + j) % DESCRIPTORS for j in range(c)]].tolist()]
            return b"".join(parts)[-n:]
        ring = self.W[r, d]
        if p >= n:
            return bytes(ring[p - n:p])
        return bytes(ring[WINDOW_KEEP - (n - p):]) + bytes(ring[:p])

    def _ring_out(self, s: Session, which: tuple[bool, bool] = (True, True)) -> None:
        """The row's windows (``which`` directions) become the session's bytearrays."""
        r = self.row_of[s]
        for d, dd in enumerate(s.dirs):
            if which[d]:
                dd.window = bytearray(self._window(r, d))

    def _unmap(self) -> None:
        """The mapped capture changes: windows kept as descriptors become ring bytes."""
        F = self.F
        for d in (0, 1):
            w = IX.dirs[d].window
            for r in np.flatnonzero((F[:, w.mode] == Window.DESCRIPTORS) & (F[:, w.count] > 0)).tolist():
                data = self._window(r, d)
                n = len(data)
                self.W[r, d, :n] = np.frombuffer(data, dtype=np.uint8)
                self.rings.used(r)
                F[r, w.pos] = n % WINDOW_KEEP
                F[r, w.mode] = Window.RING
                F[r, w.head] = F[r, w.count] = F[r, w.sum] = 0

    def load(self, s: Session, ring_current: tuple[bool, bool] = (False, False)) -> int:
        """Copy a session into its row (taking one if needed); its row, or -1 if the
        kernel cannot hold it now (-2: no row left). ``ring_current``: per direction,
        the row already holds that window (the session's bytearray may be a stale mark)."""
        r = self.row_of.get(s)
        if not self._eligible(s):
            if r is not None:
                self.release(s, keep_windows=ring_current)
            return -1
        if r is None:
            if not self.free and not self._grow():
                return -2            # the reference code keeps the flow
            r = self.free.pop()
            self.owner[r] = s
            self.row_of[s] = r
            self.t.take_out(s, self)
            ring_current = (False, False)
            if self.mapped is None:      # the kernel keeps its windows as ring bytes
                self.rings.used(r)
        F = self.F
        old = F[r].tolist() if ring_current[0] or ring_current[1] else None
        row = [0] * ROW_WORDS
        row[IX.client_dir] = s.client_dir
        row[IX.out_dir] = s.out_dir
        row[IX.last_frame] = s.last_frame
        row[IX.end] = s.end
        row[IX.last_gap] = s.last_gap
        row[IX.synack_ts] = s.synack_ts
        row[IX.hs_ack_ts] = s.hs_ack_ts
        row[IX.hs_ack] = int(s.hs_ack)
        row[IX.synack_seen] = int(s.synack_seen)
        row[IX.synack_count] = s.synack_count
        t, T = s.turn, IX.turn
        if t is None:
            row[T.dir] = -1
        else:
            nf = len(t.unpushed_frames)
            row[T.dir] = t.dir
            row[T.start] = t.start
            row[T.bytes] = t.bytes
            row[T.first_ts] = t.first_ts
            row[T.first_frame] = t.first_frame
            row[T.last_pushed] = int(t.last_pushed)
            row[T.last_frame] = t.last_frame
            row[T.unpushed_bytes] = t.unpushed_bytes
            row[T.unpushed_ts] = t.unpushed_ts
            row[T.unpushed_count] = t.unpushed_count
            row[T.frames_kept] = nf
            row[T.last_ts] = t.last_ts
            if nf:
                self.B["unpushed_frames"][r, :nf] = t.unpushed_frames
        for d, dd in enumerate(s.dirs):
            X = IX.dirs[d]
            w = X.window
            if old is not None and ring_current[d]:   # the row's window stays
                for name in WINDOW_FIELDS:
                    at = getattr(w, name)
                    row[at] = old[at]
            else:     # the session's window goes into the row (as ring bytes; empty: descriptors)
                wlen = min(len(dd.window), WINDOW_KEEP)
                if wlen:
                    self.W[r, d, :wlen] = np.frombuffer(bytes(dd.window[-wlen:]), dtype=np.uint8)
                    self.rings.used(r)
                row[w.len] = wlen
                row[w.pos] = wlen % WINDOW_KEEP
                row[w.mode] = Window.RING if wlen else Window.DESCRIPTORS
            row[X.started] = int(dd.started)
            row[X.nxt] = dd.nxt
            row[X.last_push_end] = dd.last_push_end
            row[X.data_segments] = dd.data_segments
            row[X.psh_segments] = dd.psh_segments
            row[X.bytes] = dd.bytes
            row[X.max_segment] = dd.max_segment
            row[X.oversize] = dd.oversize
            row[X.has_max_ack] = int(dd.max_ack is not None)
            row[X.max_ack] = dd.max_ack or 0
            row[X.fin] = int(dd.fin)
            row[X.mss] = dd.mss
            row[X.turns] = dd.turns
            row[X.has_isn] = int(dd.isn is not None)
            row[X.isn] = dd.isn or 0
            row[X.data_start] = dd.data_start
            row[X.retransmitted] = dd.retransmitted
            at = X.packets                       # the FACTS block, in one go
            row[at:at + len(FACTS)] = facts_of(dd)
            row[X.ka_pending] = int(dd.ka_pending)
            row[X.has_last_ack] = int(dd.last_ack is not None)
            row[X.last_ack] = dd.last_ack or 0
        self._app_state(s, r, row)
        F[r] = row
        return r

    def _app_state(self, s: Session, r: int, row: list[int]) -> None:
        """Tell the kernel what the session's parser expects (after it changed), in
        ``row``: the row's words as a list (the caller writes it to the row)."""
        P = IX.smtp
        app: Any = s.app
        row[P.probe] = int(app is None and not s.app_probed)
        if app is None or app.tls_settled:
            row[P.app] = App.NONE
            return
        if app.tls:                      # the TLS handshake: read by the reference parser
            row[P.app] = App.LINE
            return
        st = app.export_state()
        row[P.body_frame] = -1           # no body segment counted yet
        row[P.tail] = int.from_bytes(st.tail, "big")
        row[P.tail_len] = len(st.tail)
        if st.state is ClientState.CHUNK:
            row[P.app] = App.CHUNK
            row[P.chunk_left] = st.chunk_left
            return
        fallback = App.BODY if st.state is ClientState.BODY else App.LINE
        pending = st.pending
        if (st.command_line or st.reply_line or st.auth_continue or st.body_gap
                or len(pending) > PENDING_KEPT):
            row[P.app] = fallback
            return
        if pending:
            codes = self._codes
            verb_of, event_of = self.B["pending_verb"], self.B["pending_event"]
            verbs = app.verbs
            for k, c in enumerate(pending):
                code = codes.get(verbs[c])
                if code is None:
                    row[P.app] = fallback
                    return
                verb_of[r, k] = code
                event_of[r, k] = -1       # not read by the kernel in this round
        row[P.app] = App.SMTP
        row[P.lex] = LEX[st.state]
        row[P.npend] = len(pending)
        row[P.head] = 0
        row[P.max_line] = app.max_line

    def _verb(self, code: int) -> str:
        verb = self._verbs.get(code)
        if verb is None:
            verb = self._verbs[code] = code.to_bytes(8, "big").lstrip(b"\0").decode("ascii")
            self._codes[verb] = code
        return verb

    def _replay(self, ne: int) -> None:
        """Hand the parsers and sessions what the kernel read and did, in order."""
        owner = self.owner
        verbs = self._verbs
        ev = self.EV[:ne]
        for kind, r, value, frame, ts, d, flag, rcode, rframe in zip(
                ev["kind"].tolist(), ev["row"].tolist(), ev["value"].tolist(),
                ev["frame"].tolist(), ev["ts"].tolist(), ev["dir"].tolist(),
                ev["flag"].tolist(), ev["reply_code"].tolist(), ev["reply_frame"].tolist()):
            s: Any = owner[r]
            if kind == Event.COMMAND:
                s.app.command(verbs.get(value) or self._verb(value), frame, flag == 1, rcode, rframe)
            elif kind == Event.REPLY:
                s.app.reply(value, frame, ts)
            elif kind == Event.BODY_END:
                s.app.body_end(frame, bool(flag), value)
            elif kind == Event.RETRANSMISSION:
                dd = s.dirs[d]
                if not dd.attempts:
                    dd.attempts = {}
                dd.attempts[value] = dd.attempts.get(value, 1) + 1
                if flag & RETX_CONFLICT:   # it carried other bytes than those delivered
                    if not dd.conflicts:
                        dd.conflicts = []
                    dd.conflicts.append(frame)
                if flag & RETX_NEW_HEAD:   # (tracker._head_of_line)
                    dd.hol_frames = [frame]
                elif flag & RETX_HEAD and len(dd.hol_frames) < FRAMES_KEPT:
                    dd.hol_frames.append(frame)
            else:
                self.t.mark_closed(s, ts, frame)

    def _skips(self, s: Session, r: int, row: list[int]) -> None:
        """Give the parser what the kernel did for it: body bytes it counted, its last
        segment (``row``: the row's words), through the parser's state value."""
        P = IX.smtp
        if not row[P.skipped]:
            return
        app: Any = s.app
        st = app.export_state()
        tail_len = row[P.tail_len]
        changes: dict[str, Any] = {
            "body_bytes": st.body_bytes + row[P.body_added],
            "last_frame": row[P.last_frame], "last_pushed": bool(row[P.last_pushed]),
            "last_ts": row[P.last_ts],
            "tail": row[P.tail].to_bytes(tail_len, "big") if tail_len else b""}   # the latest
        if row[P.body_frame] >= 0:   # the latest body segment (skipped or ending a body)
            changes["body_frame"] = row[P.body_frame]
            changes["body_pushed"] = bool(row[P.body_pushed])
        if st.state is ClientState.CHUNK:
            changes["chunk_left"] = row[P.chunk_left]
        app.import_state(st.but(**changes))
        F = self.F
        F[r, P.skipped] = 0
        F[r, P.body_added] = 0
        F[r, P.body_frame] = -1

    def sync(self, s: Session) -> None:
        """Copy what the kernel changed back into the session's objects."""
        r = self.row_of[s]
        F = self.F
        if not F[r, IX.dirty]:
            return
        row = F[r].tolist()
        s.last_frame = row[IX.last_frame]
        s.end = row[IX.end]
        s.last_gap = row[IX.last_gap]
        s.synack_ts = row[IX.synack_ts]
        s.hs_ack_ts = row[IX.hs_ack_ts]
        s.hs_ack = bool(row[IX.hs_ack])
        s.synack_seen = bool(row[IX.synack_seen])
        s.synack_count = row[IX.synack_count]
        T = IX.turn
        if row[T.dir] < 0:
            s.turn = None
        else:
            t = s.turn = Turn(row[T.dir], row[T.first_ts], row[T.first_frame], row[T.start])
            t.bytes = row[T.bytes]
            t.last_pushed = bool(row[T.last_pushed])
            t.last_frame = row[T.last_frame]
            t.unpushed_bytes = row[T.unpushed_bytes]
            t.unpushed_ts = row[T.unpushed_ts]
            t.unpushed_count = row[T.unpushed_count]
            t.last_ts = row[T.last_ts]
            t.unpushed_frames = self.B["unpushed_frames"][r, :row[T.frames_kept]].tolist()
        for d, dd in enumerate(s.dirs):
            X = IX.dirs[d]
            dd.nxt = dd.delivered = row[X.nxt]
            dd.last_push_end = row[X.last_push_end]
            dd.data_segments = row[X.data_segments]
            dd.psh_segments = row[X.psh_segments]
            dd.bytes = row[X.bytes]
            dd.max_segment = row[X.max_segment]
            dd.oversize = row[X.oversize]
            if row[X.has_max_ack]:
                dd.max_ack = row[X.max_ack]
            dd.fin = bool(row[X.fin])
            dd.turns = row[X.turns]
            dd.mss = row[X.mss]
            dd.retransmitted = row[X.retransmitted]
            dd.started = bool(row[X.started])
            dd.data_start = row[X.data_start]
            if row[X.has_isn]:
                dd.isn = row[X.isn]
            at = X.packets
            for name, value in zip(FACTS, row[at:at + len(FACTS)]):
                setattr(dd, name, value)
            dd.ka_pending = bool(row[X.ka_pending])
            if row[X.has_last_ack]:
                dd.last_ack = row[X.last_ack]
        if s.app is not None:
            self._skips(s, r, row)
        F[r, IX.dirty] = 0

    def _free(self, s: Session) -> None:
        r = self.row_of.pop(s)
        self.F[r, IX.closed] = 0
        self.owner[r] = None
        free = self.free
        free.append(r)
        self.t.put_back(s)
        if len(free) > self.HOT:       # rows this deep in the free stack are taken only
            self.rings.release(free[-self.HOT - 1])   # when more sessions are open at once

    def release(self, s: Session, keep_windows: tuple[bool, bool] = (True, True)) -> None:
        """The session leaves the kernel: it ends (its windows are no longer needed), or
        the reference code takes it over (``keep_windows``: the directions whose window
        the row holds, copied out)."""
        self.sync(s)
        if keep_windows[0] or keep_windows[1]:
            self._ring_out(s, keep_windows)
        self._free(s)

    def give_back(self, s: Session, ending: bool) -> None:
        """``Holder.give_back``: the tracker needs ``s`` (an ending session leaves
        without its windows: copying them out would read up to 128 KB per session back
        from the capture for nothing)."""
        self.release(s, keep_windows=(not ending, not ending))

    # -- batches -----------------------------------------------------------------------
    def takes(self, batch: SegmentBatch) -> bool:
        """Batches from the compiled decoder (its hints), with no session traced and no
        eviction possible (evictions depend on the order of every session's last packet)."""
        t = self.t
        if not batch.hints or t.trace_ids:
            return False
        # new sessions: at most one per flow not yet known plus one per SYN
        syns = int(np.count_nonzero(batch.seg["flags"] & 0x02))
        return len(t.table) + syns + len(batch.flows) < t.max_sessions

    def feed(self, batch: SegmentBatch, file_index: int = 0) -> None:
        """``Tracker.feed``, with the common packets compiled."""
        t = self.t
        if not self.takes(batch):
            t.feed(batch, file_index)     # the reference code (sessions given back first)
            return
        P = batch.seg
        n = len(P)
        flows = batch.flows
        data = batch.data
        a = np.frombuffer(data, dtype=np.uint8)
        mapped = data if isinstance(data, mmap.mmap) else None
        if mapped is not self.mapped:
            self._unmap()
            self.mapped = mapped
        fslot = np.full(len(flows), -1, dtype=np.int64)
        current: list[Optional[Session]] = [t.table.get(k) for k in flows]
        for fi, s in enumerate(current):
            if s is not None:
                r = self.row_of.get(s)
                fslot[fi] = r if r is not None else self.load(s)
        blk = np.zeros(len(flows), dtype=np.int64)
        out = np.empty(n, dtype=np.int64)
        slow = np.empty(n, dtype=np.int64)
        rec = np.empty(n, dtype=np.int64)
        self.slows = np.zeros(len(flows), dtype=np.int64)
        C = self.C[0]
        with t.batch_scope():               # ids by first frame; endings after
            for fi, s in t.icmp_sessions(batch, file_index):
                if fi >= 0:
                    current[fi] = s
                    fslot[fi] = self.load(s)
            left = np.empty(0, dtype=np.int64)
            pos = 0
            while pos < n or len(left):
                hi = min(n, pos + ROUND)
                todo = np.concatenate([left, np.arange(pos, hi, dtype=np.int64)]) if len(left) \
                    else np.arange(pos, hi, dtype=np.int64)
                pos = hi
                C["events"] = 0
                C["round"] += 1
                no, ns, nr = self.kernel(self.S, self.B, self.W, self.EV, self.C, self.U, P, a,
                                         mapped is not None, fslot, todo, len(todo), out, slow,
                                         rec, blk)
                if C["events"]:
                    self._replay(int(C["events"]))
                for i in rec[:nr].tolist():
                    self._record(P, i, fslot, data)
                for i in slow[:ns].tolist():
                    self._slow(flows, P, i, fslot, current, data, file_index, batch.tunnels)
                self.packets += len(todo) - no - ns
                left = out[:no].copy()
            for r in np.flatnonzero(self.F[:, IX.closed]).tolist():   # closed: rows are few
                self.release(self.owner[r])  # type: ignore[arg-type, unused-ignore]
        t.after_batch(batch)

    def finish(self) -> None:
        """``Tracker.finish``: every session ends (those in rows leave without windows)."""
        self.t.finish()

    def _record(self, P: np.ndarray, i: int, fslot: np.ndarray, data: Any) -> None:
        seg = Segment(*P[i].item())
        r = int(fslot[seg.flow])
        s: Any = self.owner[r]
        self._skips(s, r, self.F[r].tolist())
        s.app.data(seg.dir == s.client_dir, data[seg.pay_off:seg.pay_off + seg.plen], seg.frame,
                   bool(seg.flags & PSH), seg.ts)
        F = self.F
        row = F[r].tolist()
        self._app_state(s, r, row)
        F[r] = row

    @staticmethod
    def _touches_windows(s: Session, seg: Segment) -> tuple[bool, bool]:
        """Per direction: will the reference code read or extend its window for this
        packet? The sender's for payload; the peer's for an acknowledgement of bytes
        never seen (as in ``Tracker._step``)."""
        d = seg.dir
        need = [False, False]
        need[d] = bool(seg.plen)
        src, dst = s.dirs[d], s.dirs[d ^ 1]
        if seg.flags & ACK and dst.started:
            a = unwrap(seg.ack, dst.nxt)
            need[d ^ 1] = (src.max_ack is None or a > src.max_ack) and bool(dst.holes or a > dst.nxt + dst.fin)
        return need[0], need[1]

    def _slow(self, flows: list[FlowKey], P: np.ndarray, i: int, fslot: np.ndarray,
              current: list[Optional[Session]], data: Any, file_index: int,
              tunnels: list[TunnelInfo]) -> None:
        """Packet i through the reference code. A flow that keeps needing it stays with
        it for the rest of the batch, so that one odd session cannot multiply the
        kernel's rounds."""
        seg = Segment(*P[i].item())
        fi = seg.flow
        s = current[fi]
        keep = (False, False)
        held = s is not None and s in self.row_of
        before: list[tuple[bytearray, int]] = []
        if held:
            assert s is not None
            r = self.row_of[s]
            self.sync(s)
            need = self._touches_windows(s, seg)
            for x, dd in enumerate(s.dirs):
                # a window the step needs becomes bytes; the others get an empty mark,
                # and the row stays their truth unless the step replaces them (a close)
                dd.window = bytearray(self._window(r, x)) if need[x] else bytearray()
                before.append((dd.window, len(dd.window)))
        s2 = current[fi] = self.t.step(
            flows[fi], seg, data[seg.pay_off:seg.pay_off + seg.pay_len] if seg.plen else b"",
            file_index, tunnels[seg.tunnel] if seg.tunnel >= 0 else None)
        if held and s in self.row_of:
            assert s is not None
            keep = (s.dirs[0].window is before[0][0] and len(s.dirs[0].window) == before[0][1],
                    s.dirs[1].window is before[1][0] and len(s.dirs[1].window) == before[1][1])
        self.slows[fi] += 1
        if s2.ended:
            fslot[fi] = -1
        elif s2 is not s:
            fslot[fi] = self.load(s2)
        elif self.slows[fi] > self.SLOW_PER_FLOW:
            if s2 in self.row_of:
                self.release(s2, keep_windows=keep)
            fslot[fi] = -2
        else:
            fslot[fi] = self.load(s2, keep)


class _Rings:
    """The rows' conflict-window rings (row, direction, WINDOW_KEEP bytes), in an
    anonymous mapping: pages are zero and not resident until written, and the pages of a
    freed row can be given back. Reserved for every row the lane may ever hold
    (``MAX_ROWS``, 512 MB of address space, nothing resident), so that growing copies
    nothing; where the system refuses that much address space, sized to the rows and
    copied when they grow. Only inputs that cannot be mapped (pipes, compressed files)
    keep windows as ring bytes."""

    ROW = 2 * WINDOW_KEEP            # bytes per row: a multiple of the page size

    def __init__(self, rows: int, reserve: bool = True) -> None:
        self.mm: Any = None
        for n in ((MAX_ROWS, rows) if reserve else (rows,)):
            try:
                self.mm = self.map(n * self.ROW)
                break
            except (OSError, OverflowError, ValueError, AttributeError):   # (no MAP_PRIVATE: Windows)
                continue
        if self.mm is None:
            self.W = np.zeros((rows, 2, WINDOW_KEEP), dtype=np.uint8)
        else:
            self.W = np.frombuffer(self.mm, dtype=np.uint8).reshape(-1, 2, WINDOW_KEEP)
        self.dirty = np.zeros(len(self.W), dtype=np.bool_)

    @staticmethod
    def map(size: int) -> mmap.mmap:
        # private: given-back pages of a shared mapping would keep their bytes and memory
        return mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE)

    def grown(self, rows: int, used: np.ndarray) -> "_Rings":
        """Rings for ``rows`` rows holding the ``used`` rows' bytes."""
        new = _Rings(rows, reserve=False)
        new.W[used] = self.W[used]
        new.dirty[used] = True
        return new

    def used(self, r: int) -> None:
        """Row r's ring is (or may be) written."""
        self.dirty[r] = True

    def release(self, r: int) -> None:
        """Give back the pages of a free row's ring (it reads as zeros afterwards)."""
        if self.dirty[r] and self.mm is not None and hasattr(self.mm, "madvise"):
            self.mm.madvise(mmap.MADV_DONTNEED, r * self.ROW, self.ROW)
            self.dirty[r] = False


assert FRAMES_KEPT == BUFFERS["unpushed_frames"].shape[0]
assert [IX.dirs[0].packets + k for k in range(len(FACTS))] == [getattr(IX.dirs[0], n) for n in FACTS], \
    "FACTS are one block of DIRECTION, in their order"
