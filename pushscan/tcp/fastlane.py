"""The tracker's compiled fast lane: the common packets of big captures, in numba.

The Python ``Tracker`` is the reference; it defines every result. ``FastLane`` holds
open sessions as rows of one int64 array (its layout is in ``kernel.py``) and runs the
numba kernel (``kernel.py``) over each batch, in rounds. The kernel applies the packets whose effect
it can compute exactly: acknowledgements, in-order data, SYN-ACKs, FINs, retransmissions
of bytes already delivered (compared with the conflict window), and the SMTP side of the
payload: it reads command and reply lines, counts message bodies up to CRLF.CRLF and
BDAT chunks. What it reads comes back as events (a command with or without its reply, a
reply, a body's end, a retransmission attempt, a close), replayed into the session's
``SmtpDialogue`` and tracker state in order. Every other packet of a flow (a SYN that may
start a session, RST, a hole, reordering, a snap-length cut, a turn ending unpushed, an
odd SMTP line, ...) goes to the reference code, in packet order for that flow, with the
session's state copied out before and back after; payload the kernel cannot read goes to
the reference parser as a record (at most one per session per round, so the kernel only
ever acts on the parser's true state). Sessions are independent, so only session
numbering and the order of endings are global; both are settled at the end of each batch
exactly as the reference would (ids by first frame).

The result is the same report, bit for bit: ``tests/tcp/test_fastlane.py`` runs both on
every bundled capture, on generated traffic and on mutated captures.
"""
from __future__ import annotations

import mmap
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from ..compiled import kernels
from ..model import ACK, PSH, SYN, SegmentBatch
from ..seq import unwrap
from ..smtp import ClientState, SmtpDialogue
from .kernel import (
    APP,
    APP_BODY,
    APP_CHUNK,
    APP_LINE,
    APP_NONE,
    APP_SMTP,
    BADD,
    BFRAME,
    BYTES,
    CLEFT,
    CLOSED,
    D0,
    DCOUNT,
    DESCRIPTORS,
    DHEAD,
    DIRTY,
    DN,
    DSEG,
    DSTART,
    DSUM,
    END,
    FIN,
    HASACK,
    HASISN,
    HS_ACK,
    ISN,
    LAST_FRAME,
    LPE,
    MAX_ROWS,
    MAXACK,
    MAXLINE,
    MAXSEG,
    MSS,
    NF,
    NPEND,
    NXT,
    OVERS,
    PENDING_KEPT,
    PHEAD,
    PROBE,
    PSEG,
    RETX,
    SACOUNT,
    SK,
    ST,
    ST_AWAIT,
    ST_BODY,
    ST_COMMAND,
    STARTED,
    SYNACK,
    TAIL,
    TAILN,
    TBYTES,
    TDIR,
    TFFRAME,
    TFTS,
    TLFRAME,
    TNF,
    TPUSHED,
    TSTART,
    TUBYTES,
    TUCOUNT,
    TURNS,
    TUTS,
    VERB_BODY,
    WINDOW_KEEP,
    WLEN,
    WMODE,
    WPOS,
)
from .session import FRAMES_KEPT, Session, Turn

if TYPE_CHECKING:
    from .tracker import Tracker

ROUND = 2048               # packets added to each kernel round
EVENTS = 1 << 16           # SMTP commands and replies the kernel may read per round


class FastLane:
    """Attach with ``FastLane(tracker)``; the tracker then sends it every batch it can
    take (``takes``) and calls ``release`` when a session it holds ends.

    While a session has a row, the row is the truth about it (its objects are brought up
    to date by ``sync``); its conflict windows live in the row (as descriptors into a
    memory-mapped capture, or ring bytes), and become bytearrays again only when the
    reference code needs them."""

    ROWS = 512                       # rows at first (they double as needed, to MAX_ROWS)
    HOT = 64                         # free rows that keep their ring pages (reused first)

    def __init__(self, tracker: "Tracker", capacity: int = 0) -> None:
        capacity = capacity or self.ROWS
        self.kernel = kernels().track
        self.t = tracker
        self.S = np.zeros((capacity, NF), dtype=np.int64)
        self.UF = np.zeros((capacity, FRAMES_KEPT), dtype=np.int64)
        self.rings = _Rings(capacity)
        self.W = self.rings.W
        self.DS = np.zeros((capacity, 2, DESCRIPTORS, 2), dtype=np.int64)
        self.mapped: Any = None        # the memory-mapped capture descriptors point into
        self.PF = np.zeros((capacity, PENDING_KEPT), dtype=np.int64)   # commands awaiting replies
        # (kind, row, verb/code, frame, ts, psh, reply code (-1: none), reply frame)
        self.EV = np.zeros((EVENTS, 8), dtype=np.int64)
        self.PE = np.full((capacity, PENDING_KEPT), -1, dtype=np.int64)   # their events, if this round's
        self.ne = np.zeros(2, dtype=np.int64)      # events so far, round number
        self.U = np.empty(16, dtype=np.int64)      # the kernel's scratch (it allocates nothing)
        self._codes: dict[str, int] = {"DATA body": VERB_BODY}
        self._verbs: dict[int, str] = {VERB_BODY: "DATA body"}
        self.owner: list[Optional[Session]] = [None] * capacity
        self.free = list(range(capacity - 1, -1, -1))
        self.created: Optional[list[Session]] = None   # sessions made in the current batch
        self.slows = np.zeros(0, dtype=np.int64)       # per flow of the batch: slow packets
        self.packets = 0               # packets it applied itself (the rest: reference code)
        tracker.lane = self

    # -- rows <-> sessions -------------------------------------------------------------
    def _grow(self) -> bool:
        """Double the rows (up to MAX_ROWS). The rings are reserved for every row from
        the start (untouched pages until written), or else copied for rows in use."""
        cap = len(self.owner)
        if cap >= MAX_ROWS:
            return False
        self.S = np.concatenate([self.S, np.zeros((cap, NF), dtype=np.int64)])
        self.UF = np.concatenate([self.UF, np.zeros((cap, FRAMES_KEPT), dtype=np.int64)])
        self.PF = np.concatenate([self.PF, np.zeros((cap, PENDING_KEPT), dtype=np.int64)])
        self.PE = np.concatenate([self.PE, np.full((cap, PENDING_KEPT), -1, dtype=np.int64)])
        self.DS = np.concatenate([self.DS, np.zeros((cap, 2, DESCRIPTORS, 2), dtype=np.int64)])
        if len(self.W) < 2 * cap:     # rings not reserved for every row at first
            S = self.S
            used = np.flatnonzero((S[:cap, D0 + WMODE] == 1) | (S[:cap, D0 + DN + WMODE] == 1))
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
        return True

    def _window(self, r: int, d: int) -> bytes:
        """The bytes of a row's conflict window, from descriptors or from the ring."""
        b = D0 + d * DN
        n = int(self.S[r, b + WLEN])
        if not n:
            return b""
        p, mode, h, c = self.S[r, [b + WPOS, b + WMODE, b + DHEAD, b + DCOUNT]].tolist()
        if mode == 0:
            mm: Any = self.mapped
            parts = [mm[o:o + ln] for o, ln in self.DS[r, d, [(h + j) % DESCRIPTORS for j in range(c)]].tolist()]
            return b"".join(parts)[-n:]
        ring = self.W[r, d]
        if p >= n:
            return ring[p - n:p].tobytes()
        return ring[WINDOW_KEEP - (n - p):].tobytes() + ring[:p].tobytes()

    def _ring_out(self, s: Session, which: tuple[bool, bool] = (True, True)) -> None:
        """The row's windows (``which`` directions) become the session's bytearrays."""
        for d, dd in enumerate(s.dirs):
            if which[d]:
                dd.window = bytearray(self._window(s.slot, d))

    def _unmap(self) -> None:
        """The mapped capture changes: windows kept as descriptors become ring bytes."""
        S = self.S
        for d in (0, 1):
            b = D0 + d * DN
            for r in np.flatnonzero((S[:, b + WMODE] == 0) & (S[:, b + DCOUNT] > 0)).tolist():
                data = self._window(r, d)
                n = len(data)
                self.W[r, d, :n] = np.frombuffer(data, dtype=np.uint8)
                self.rings.used(r)
                S[r, b + WPOS] = n % WINDOW_KEEP
                S[r, b + WMODE] = 1
                S[r, b + DHEAD] = S[r, b + DCOUNT] = S[r, b + DSUM] = 0

    def load(self, s: Session, ring_current: tuple[bool, bool] = (False, False)) -> int:
        """Copy a session into its row (taking one if needed); its row, or -1 if the
        kernel cannot hold it now. ``ring_current``: per direction, the row already holds
        that window (the session's bytearray may be a stale mark)."""
        if not self._eligible(s):
            if s.slot >= 0:
                self.release(s, keep_windows=ring_current)
            return -1
        if s.slot < 0:
            if not self.free and not self._grow():
                return -2            # no row left: the reference code keeps the flow
            s.slot = self.free.pop()
            self.owner[s.slot] = s
            ring_current = (False, False)
            if self.mapped is None:      # the kernel keeps its windows as ring bytes
                self.rings.used(s.slot)
        r = s.slot
        t = s.turn
        row = [s.client_dir, s.last_frame, s.end, int(s.hs_ack), int(s.synack_seen), 0, 0, 0]
        if t is None:
            row += [-1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        else:
            nf = len(t.unpushed_frames)
            row += [t.dir, t.start, t.bytes, t.first_ts, t.first_frame, int(t.last_pushed),
                    t.last_frame, t.unpushed_bytes, t.unpushed_ts, t.unpushed_count, nf]
            if nf:
                self.UF[r, :nf] = t.unpushed_frames
        row += [0] * (D0 - len(row))     # parser fields: set by _app_state
        row[SACOUNT] = s.synack_count
        S = self.S
        old = S[r].tolist() if ring_current[0] or ring_current[1] else None
        for d, dd in enumerate(s.dirs):
            b = D0 + d * DN
            if old is not None and ring_current[d]:   # the row's window stays
                wlen, wpos, wmode, dhead, dcount, dsum = (
                    old[b + WLEN], old[b + WPOS], old[b + WMODE], old[b + DHEAD],
                    old[b + DCOUNT], old[b + DSUM])
            else:     # the session's window goes into the row (as ring bytes; empty: descriptors)
                wlen = min(len(dd.window), WINDOW_KEEP)
                if wlen:
                    self.W[r, d, :wlen] = np.frombuffer(bytes(dd.window[-wlen:]), dtype=np.uint8)
                    self.rings.used(r)
                wpos, wmode, dhead, dcount, dsum = wlen % WINDOW_KEEP, int(wlen > 0), 0, 0, 0
            row += [int(dd.started), dd.nxt, dd.last_push_end, dd.data_segments, dd.psh_segments,
                    dd.bytes, dd.max_segment, dd.oversize, int(dd.max_ack is not None),
                    dd.max_ack or 0, int(dd.fin), dd.mss, dd.turns,
                    wlen, wpos, int(dd.isn is not None), dd.isn or 0,
                    dd.data_start, wmode, dhead, dcount, dsum, dd.retransmitted]
        self._app_state(s, r, row)
        S[r] = row
        return r

    _ST = {id(ClientState.COMMAND): ST_COMMAND, id(ClientState.AWAIT_DATA_GO): ST_AWAIT,
           id(ClientState.BODY): ST_BODY}   # by id: an Enum hashes in Python code

    def _app_state(self, s: Session, r: int, row: list[int]) -> None:
        """Tell the kernel what the session's parser expects (after it changed), in
        ``row``: the row's values as a list (the caller writes it to the row)."""
        app: Any = s.app
        row[PROBE] = int(app is None and not s.app_probed)
        if app is None or app.tls:
            row[APP] = APP_NONE
            return
        st = app.state
        row[BFRAME] = -1                 # no body segment counted yet
        row[TAIL] = int.from_bytes(app._tail, "big")
        row[TAILN] = len(app._tail)
        if st is ClientState.CHUNK:
            row[APP] = APP_CHUNK
            row[CLEFT] = app._chunk_left
            return
        pending = app._pending
        if (app._cbuf or app._sbuf or app._auth_continue or app._body_gap
                or len(pending) > PENDING_KEPT):
            row[APP] = APP_BODY if st is ClientState.BODY else APP_LINE
            return
        if pending:
            codes = self._codes
            PF, PE = self.PF, self.PE
            verbs = app.verbs
            for k, c in enumerate(pending):
                code = codes.get(verbs[c])
                if code is None:
                    row[APP] = APP_BODY if st is ClientState.BODY else APP_LINE
                    return
                PF[r, k] = code
                PE[r, k] = -1       # not read by the kernel in this round
        row[APP] = APP_SMTP
        row[ST] = self._ST[id(st)]
        row[NPEND] = len(pending)
        row[PHEAD] = 0
        row[MAXLINE] = app.max_line

    def _verb(self, code: int) -> str:
        verb = self._verbs.get(code)
        if verb is None:
            verb = self._verbs[code] = code.to_bytes(8, "big").lstrip(b"\0").decode("ascii")
            self._codes[verb] = code
        return verb

    def _replay(self, ne: int) -> None:
        """Hand the parsers the commands and replies the kernel read, in order."""
        owner = self.owner
        verbs = self._verbs
        for kind, r, code, frame, ts, psh, rcode, rframe in self.EV[:ne].tolist():
            app: Any = owner[r].app   # type: ignore[union-attr]  (kinds 3, 5: TCP events)
            if kind == 1:
                verb = verbs.get(code) or self._verb(code)
                if rcode < 0:
                    app.add_command(verb, frame, psh == 1)
                else:                    # answered in the same round
                    app.answered_command(verb, frame, psh == 1, rcode, rframe)
            elif kind == 2:
                app._reply(code, frame, ts)
            elif kind == 4:              # a body ended after ``code`` more bytes
                app.body_bytes += code
                app._end_body(frame, bool(psh))
            elif kind == 5:              # a retransmission at ``code`` (direction ``ts``)
                dd = owner[r].dirs[ts]   # type: ignore[union-attr]
                if not dd.attempts:
                    dd.attempts = {}
                dd.attempts[code] = dd.attempts.get(code, 1) + 1
                if psh:                  # it carried other bytes than those delivered
                    if not dd.conflicts:
                        dd.conflicts = []
                    dd.conflicts.append(frame)
            else:
                self.t._closing(owner[r], ts, frame)   # type: ignore[arg-type]

    def _skips(self, s: Session, r: int, row: list[int]) -> None:
        """Give the parser what the kernel did for it: body bytes it counted, its last
        segment (``row``: the row's values)."""
        if not row[SK]:
            return
        S = self.S
        app: Any = s.app
        _sk, badd, bframe, bpushed, lframe, lpushed, lts, tail, tailn, cleft = row[SK:CLEFT + 1]
        app.body_bytes += badd
        app._last_frame, app._last_pushed, app._last_ts = lframe, bool(lpushed), lts
        if bframe >= 0:   # the latest body segment (skipped or ending a body)
            app._body_frame, app._body_pushed = bframe, bool(bpushed)
        app._tail = tail.to_bytes(tailn, "big") if tailn else b""   # always the latest
        if app.state is ClientState.CHUNK:
            app._chunk_left = cleft
        S[r, SK] = 0
        S[r, BADD] = 0
        S[r, BFRAME] = -1

    def sync(self, s: Session) -> None:
        """Copy what the kernel changed back into the session's objects."""
        r = s.slot
        S = self.S
        if not S[r, DIRTY]:
            return
        row = S[r].tolist()
        s.last_frame = row[LAST_FRAME]
        s.end = row[END]
        s.hs_ack = bool(row[HS_ACK])
        s.synack_seen = bool(row[SYNACK])
        s.synack_count = row[SACOUNT]
        if row[TDIR] < 0:
            s.turn = None
        else:
            t = s.turn = Turn(row[TDIR], row[TFTS], row[TFFRAME], row[TSTART])
            t.bytes = row[TBYTES]
            t.last_pushed = bool(row[TPUSHED])
            t.last_frame = row[TLFRAME]
            t.unpushed_bytes = row[TUBYTES]
            t.unpushed_ts = row[TUTS]
            t.unpushed_count = row[TUCOUNT]
            t.unpushed_frames = self.UF[r, :row[TNF]].tolist()
        for d, dd in enumerate(s.dirs):
            b = D0 + d * DN
            dd.nxt = dd.delivered = row[b + NXT]
            dd.last_push_end = row[b + LPE]
            dd.data_segments = row[b + DSEG]
            dd.psh_segments = row[b + PSEG]
            dd.bytes = row[b + BYTES]
            dd.max_segment = row[b + MAXSEG]
            dd.oversize = row[b + OVERS]
            if row[b + HASACK]:
                dd.max_ack = row[b + MAXACK]
            dd.fin = bool(row[b + FIN])
            dd.turns = row[b + TURNS]
            dd.mss = row[b + MSS]
            dd.retransmitted = row[b + RETX]
            dd.started = bool(row[b + STARTED])
            dd.data_start = row[b + DSTART]
            if row[b + HASISN]:
                dd.isn = row[b + ISN]
        if s.app is not None:
            self._skips(s, r, row)
        S[r, DIRTY] = 0

    def _free(self, s: Session) -> None:
        r = s.slot
        S = self.S
        S[r, CLOSED] = 0
        self.owner[r] = None
        free = self.free
        free.append(r)
        s.slot = -1
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

    def release_all(self) -> None:
        """Every session leaves the kernel (the reference code takes the next batch)."""
        for s in self.owner:
            if s is not None:
                self.release(s)

    def sync_all(self) -> None:
        """Every session's objects up to date; the rows stay theirs. (Sessions that end
        then leave without their windows: copying them out would read up to 128 KB per
        session back from the capture for nothing.)"""
        for s in self.owner:
            if s is not None:
                self.sync(s)

    # -- batches -----------------------------------------------------------------------
    def takes(self, batch: SegmentBatch) -> bool:
        """Batches from the native decoder, with no session traced and no eviction
        possible (evictions depend on the order of every session's last packet)."""
        t = self.t
        P = batch.cols
        if P is None or P.shape[0] < 14 or t.trace_ids:
            return False   # the kernel needs the compiled decoder's extra columns
        # new sessions: at most one per flow not yet known plus one per SYN
        syns = int(np.count_nonzero(P[4] & 0x02))
        return len(t.table) + syns + len(batch.flows) < t.max_sessions

    def feed(self, batch: SegmentBatch, file_index: int) -> None:
        t = self.t
        P = batch.cols
        n = P.shape[1]   # type: ignore[union-attr]
        flows = batch.flows
        data = batch.data
        a = np.frombuffer(data, dtype=np.uint8)
        mapped = data if isinstance(data, mmap.mmap) else None
        if mapped is not self.mapped:
            self._unmap()
            self.mapped = mapped
        fslot = np.full(len(flows), -1, dtype=np.int64)
        current: list[Optional[Session]] = [t.table.get(k) for k in flows]
        load = self.load
        for fi, s in enumerate(current):
            if s is not None:
                fslot[fi] = s.slot if s.slot >= 0 else load(s)
        blk = np.zeros(len(flows), dtype=np.int64)
        out = np.empty(n, dtype=np.int64)
        slow = np.empty(n, dtype=np.int64)
        rec = np.empty(n, dtype=np.int64)
        first_id = t.next_id
        self.created = []
        self.slows = np.zeros(len(flows), dtype=np.int64)
        on_end = t.on_end
        ended: list[Session] = []
        t.on_end = ended.append           # endings wait until ids are settled
        try:
            left = np.empty(0, dtype=np.int64)
            pos = 0
            while pos < n or len(left):
                hi = min(n, pos + ROUND)
                todo = np.concatenate([left, np.arange(pos, hi, dtype=np.int64)]) if len(left) \
                    else np.arange(pos, hi, dtype=np.int64)
                pos = hi
                self.ne[0] = 0
                self.ne[1] += 1
                no, ns, nr = self.kernel(self.S, self.UF, self.W, self.DS, self.PF, self.PE,
                                         self.EV, self.ne, self.U, P, a, mapped is not None, fslot, todo,
                                         len(todo), out, slow, rec, blk)
                if self.ne[0]:
                    self._replay(int(self.ne[0]))
                for i in rec[:nr].tolist():
                    self._record(P, i, fslot, data)
                for i in slow[:ns].tolist():
                    self._slow(batch, P, i, fslot, current, file_index)
                self.packets += len(todo) - no - ns
                left = out[:no].copy()
            for r in np.flatnonzero(self.S[:, CLOSED]).tolist():   # closed: rows are few
                self.release(self.owner[r])   # type: ignore[arg-type]
        finally:
            t.on_end = on_end
            created, self.created = self.created, None
        for k, s in enumerate(sorted(created, key=lambda x: x.first_frame)):
            s.id = first_id + k
        for s in ended:
            on_end(s)

    def _record(self, P: np.ndarray, i: int, fslot: np.ndarray, data: bytes) -> None:
        frame, ts, fi, d, fl, _seq, _ack, plen, po, _pl = P[:10, i].tolist()
        r = int(fslot[fi])
        s = self.owner[r]
        app: Any = s.app  # type: ignore[union-attr]
        self._skips(s, r, self.S[r].tolist())  # type: ignore[arg-type]
        app.data(d == s.client_dir, data[po:po + plen], frame, bool(fl & PSH), ts)  # type: ignore[union-attr]
        row = self.S[r].tolist()
        self._app_state(s, r, row)  # type: ignore[arg-type]
        self.S[r] = row

    SLOW_PER_FLOW = 8    # slow packets of one flow in one batch before the flow stays slow

    @staticmethod
    def _touches_windows(s: Session, d: int, fl: int, ack: int, plen: int) -> tuple[bool, bool]:
        """Per direction: will the reference code read or extend its window for this
        packet? The sender's for payload; the peer's for an acknowledgement of bytes
        never seen (as in ``Tracker._step``)."""
        need = [False, False]
        need[d] = bool(plen)
        src, dst = s.dirs[d], s.dirs[d ^ 1]
        if fl & ACK and dst.started:
            a = unwrap(ack, dst.nxt)
            need[d ^ 1] = (src.max_ack is None or a > src.max_ack) and bool(dst.holes or a > dst.nxt + dst.fin)
        return need[0], need[1]

    def _slow(self, batch: SegmentBatch, P: np.ndarray, i: int, fslot: np.ndarray,
              current: list, file_index: int) -> None:
        """Packet i through the reference code. A flow that keeps needing it stays with
        it for the rest of the batch, so that one odd session cannot multiply the
        kernel's rounds."""
        t = self.t
        frame, ts, fi, d, fl, seq, ack, plen, po, pl = P[:10, i].tolist()
        s = current[fi]
        keep = (False, False)
        if s is not None and s.slot >= 0:
            self.sync(s)
            need = self._touches_windows(s, d, fl, ack, plen)
            before = []
            for x, dd in enumerate(s.dirs):
                # a window the step needs becomes bytes; the others get an empty mark,
                # and the row stays their truth unless the step replaces them (a close)
                dd.window = bytearray(self._window(s.slot, x)) if need[x] else bytearray()
                before.append((dd.window, len(dd.window)))
        t._step(current, batch.flows, fi, frame, ts, d, fl, seq, ack, plen,
                batch.data[po:po + pl] if plen else b"", batch.mss.get(i, 0) if fl & SYN else 0,
                file_index)
        if s is not None and s.slot >= 0:
            keep = (s.dirs[0].window is before[0][0] and len(s.dirs[0].window) == before[0][1],
                    s.dirs[1].window is before[1][0] and len(s.dirs[1].window) == before[1][1])
        s2 = current[fi]
        self.slows[fi] += 1
        if s2 is None or s2.ended:
            fslot[fi] = -1
        elif s2 is not s:
            fslot[fi] = self.load(s2)
        elif self.slows[fi] > self.SLOW_PER_FLOW:
            if s2.slot >= 0:
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

