"""The tracker's compiled fast lane: the common packets of big captures, in numba.

The Python ``Tracker`` is the reference; it defines every result. ``FastLane`` holds
open sessions as rows of one int64 array and runs a numba kernel over each batch. The
kernel applies the packets whose effect is simple (acknowledgements, in-order data, a
first FIN, SMTP body and BDAT bytes, which it scans for CRLF.CRLF itself) and hands
every other packet of a flow (SYN, RST, retransmission, gap, snap-length cut, a turn
ending unpushed, ...) to the reference code, in packet order for that flow, with the
session's state copied out before and back after. Bytes for the SMTP parser come back
as records, at most one per session per round, so that the kernel only ever acts on
the parser's true state. Sessions are independent, so only session numbering and the
order of endings are global; both are settled at the end of each batch exactly as the
reference would (ids by first frame).

The result is the same report, bit for bit: tests run both on every bundled capture
and on generated segment streams.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from ..model import SegmentBatch
from ..smtp import ClientState, SmtpDialogue
from .session import FRAMES_KEPT, Session, Turn

if TYPE_CHECKING:
    from .tracker import Tracker

WINDOW_KEEP = 64 * 1024    # as tracker.WINDOW_KEEP (the kernel mirrors its trimming)
ROUND = 2048               # packets added to each kernel round

# Session columns of the state array.
(MODE, CDIR, LAST_FRAME, END, HS_ACK, SYNACK, PROBE, APP, DIRTY,
 TDIR, TSTART, TBYTES, TFTS, TFFRAME, TPUSHED, TLFRAME, TUBYTES, TUTS, TUCOUNT, TNF,
 SK, BADD, BFRAME, BPUSHED, BTS, LFRAME, LPUSHED, LTS, TAIL, TAILN, CLEFT) = range(31)
D0 = 31
# Direction columns, at D0 + d * DN.
(STARTED, NXT, LPE, DSEG, PSEG, BYTES, MAXSEG, OVERS, HASACK, MAXACK, FIN, MSS, TURNS,
 WLEN, NEWB, LASTCH) = range(16)
DN = 16
NF = D0 + 2 * DN

# APP values: what the kernel does with a session's in-order payload.
APP_NONE, APP_LINE, APP_BODY, APP_CHUNK = 0, 1, 2, 3

_kernel: Any = None


def _compile() -> Any:
    from numba import njit  # imported only when a large input needs it

    FIN_, SYN_, RST_, PSH_, ACK_ = 0x01, 0x02, 0x04, 0x08, 0x10
    MASK, HALF = (1 << 32) - 1, 1 << 31

    @njit(cache=True, nogil=True)
    def unwrap(v, ref):  # pragma: no cover - compiled
        return ref + ((v - ref + HALF) & MASK) - HALF

    @njit(cache=True, nogil=True)
    def has_end(a, lo, hi):  # pragma: no cover - compiled
        """CRLF.CRLF in a[lo:hi]? Horspool over the 5-byte pattern."""
        i = lo
        while i + 5 <= hi:
            c = a[i + 4]
            if c == 10 and a[i] == 13 and a[i + 1] == 10 and a[i + 2] == 46 and a[i + 3] == 13:
                return True
            if c == 13:
                i += 1
            elif c == 10:
                i += 3
            elif c == 46:
                i += 2
            else:
                i += 5
        return False

    @njit(cache=True, nogil=True)
    def step(S, UF, P, a, s, i, chp, cho, c):  # pragma: no cover - compiled
        """Apply packet i to session row s. Returns (status, chunks used): 0 done,
        1 done and its payload is a record for the parser, 2 not taken (the reference
        code must do it; nothing was changed)."""
        frame = P[0, i]
        ts = P[1, i]
        d = P[3, i]
        fl = P[4, i]
        plen = P[7, i]
        po = P[8, i]
        if fl & (SYN_ | RST_):
            return 2, c
        src = D0 + d * DN
        dst = D0 + (1 - d) * DN
        # -- checks: is this packet simple for this session? ---------------------------
        newack = False
        a_ = 0
        if fl & ACK_ and S[s, dst + STARTED]:
            a_ = unwrap(P[6, i], S[s, dst + NXT])
            if S[s, src + HASACK] == 0 or a_ > S[s, src + MAXACK]:
                newack = True
                if a_ > S[s, dst + NXT] + S[s, dst + FIN]:
                    return 2, c           # acknowledges bytes never seen: a capture gap
        cd = S[s, CDIR]
        start = 0
        if plen:
            if P[9, i] != plen or S[s, src + STARTED] == 0 or fl & FIN_:
                return 2, c
            start = unwrap(P[5, i], S[s, src + NXT])
            if start != S[s, src + NXT]:
                return 2, c               # a hole, a retransmission or reordering
            if S[s, PROBE] and d != cd and S[s, D0 + cd * DN + BYTES] == 0:
                return 2, c               # the server's first bytes decide the parser
            if S[s, TDIR] >= 0 and S[s, TDIR] != d and S[s, TPUSHED] == 0:
                return 2, c               # an unpushed turn ends: the reference records it
        elif fl & FIN_ and S[s, src + FIN] == 0:
            if S[s, dst + FIN]:
                return 2, c               # the session closes
            if S[s, TDIR] >= 0 and S[s, TPUSHED] == 0:
                return 2, c
        # -- apply ---------------------------------------------------------------------
        S[s, LAST_FRAME] = frame
        S[s, END] = ts
        S[s, DIRTY] = 1
        if fl & ACK_ and S[s, dst + STARTED]:
            if newack:
                S[s, src + HASACK] = 1
                S[s, src + MAXACK] = a_
            if S[s, HS_ACK] == 0 and d == cd and S[s, SYNACK]:
                S[s, HS_ACK] = 1
        status = 0
        if plen:
            psh = (fl & PSH_) != 0
            S[s, src + DSEG] += 1
            if psh:
                S[s, src + PSEG] += 1
            end = start + plen
            if plen > S[s, src + MAXSEG]:
                S[s, src + MAXSEG] = plen
            mss = S[s, dst + MSS]
            if mss and plen > mss:
                S[s, src + OVERS] += 1
            S[s, src + NXT] = end
            # delivery: the conflict window, then the parser
            chp[c] = S[s, src + LASTCH]
            cho[c] = i
            S[s, src + LASTCH] = c
            c += 1
            S[s, src + NEWB] += plen
            w = S[s, src + WLEN] + plen
            if w > 2 * WINDOW_KEEP:
                w = WINDOW_KEEP
            S[s, src + WLEN] = w
            app = S[s, APP]
            if app == APP_LINE:
                status = 1
            elif app == APP_BODY:
                skip = False
                if d == cd and plen >= 4 and not has_end(a, po, po + plen):
                    # CRLF.CRLF across the boundary: the tail before, 4 bytes after
                    tb = np.empty(8, np.uint8)
                    tn = S[s, TAILN]
                    tail = S[s, TAIL]
                    for k in range(tn):
                        tb[k] = (tail >> (8 * (tn - 1 - k))) & 255
                    for k in range(4):
                        tb[tn + k] = a[po + k]
                    skip = not has_end(tb, 0, tn + 4)
                if skip:
                    S[s, BADD] += plen
                    S[s, BFRAME] = frame
                    S[s, BPUSHED] = psh
                    S[s, BTS] = ts
                    S[s, TAIL] = (np.int64(a[po + plen - 4]) << 24) | (np.int64(a[po + plen - 3]) << 16) | \
                        (np.int64(a[po + plen - 2]) << 8) | np.int64(a[po + plen - 1])
                    S[s, TAILN] = 4
                    S[s, SK] = 1
                    S[s, LFRAME] = frame
                    S[s, LPUSHED] = psh
                    S[s, LTS] = ts
                else:
                    status = 1
            elif app == APP_CHUNK:
                if d == cd and plen < S[s, CLEFT]:
                    S[s, CLEFT] -= plen
                    S[s, BADD] += plen
                    S[s, SK] = 1
                    S[s, LFRAME] = frame
                    S[s, LPUSHED] = psh
                    S[s, LTS] = ts
                else:
                    status = 1
            if psh and end > S[s, src + LPE]:
                S[s, src + LPE] = end
            S[s, src + BYTES] += plen
            # turns
            if S[s, TDIR] != d:
                S[s, TDIR] = d
                S[s, TSTART] = start
                S[s, TBYTES] = 0
                S[s, TFTS] = ts
                S[s, TFFRAME] = frame
                S[s, TPUSHED] = 0
                S[s, TUBYTES] = 0
                S[s, TUTS] = 0
                S[s, TUCOUNT] = 0
                S[s, TNF] = 0
                S[s, src + TURNS] += 1
            S[s, TBYTES] += plen
            S[s, TLFRAME] = frame
            if S[s, src + LPE] >= end:
                S[s, TPUSHED] = 1
                S[s, TUBYTES] = 0
            else:
                if S[s, TUBYTES] == 0:
                    S[s, TUTS] = ts
                    S[s, TNF] = 0
                    S[s, TUCOUNT] = 0
                S[s, TPUSHED] = 0
                S[s, TUBYTES] = end - max(S[s, src + LPE], S[s, TSTART])
                S[s, TUCOUNT] += 1
                if S[s, TNF] < UF.shape[1]:
                    UF[s, S[s, TNF]] = frame
                    S[s, TNF] += 1
        if fl & FIN_ and S[s, src + FIN] == 0:
            S[s, src + FIN] = 1
            S[s, TDIR] = -1               # a pushed turn ends quietly
        return status, c

    @njit(cache=True, nogil=True)
    def kernel(S, UF, P, a, fslot, todo, nt, out, slow, rec, blk, chp, cho, cnt):  # pragma: no cover
        """One round over ``todo``: returns (left over, slow, records) counts."""
        blk[:] = 0
        no = 0
        ns = 0
        nr = 0
        c = cnt[0]
        for t in range(nt):
            i = todo[t]
            f = P[2, i]
            if blk[f]:
                out[no] = i
                no += 1
                continue
            s = fslot[f]
            if s < 0:                     # no row: the reference code takes the packet
                if s == -1:               # (-2: and the flow's other packets this batch)
                    blk[f] = 1
                slow[ns] = i
                ns += 1
                continue
            st, c = step(S, UF, P, a, s, i, chp, cho, c)
            if st == 2:
                blk[f] = 1
                slow[ns] = i
                ns += 1
            elif st == 1:
                blk[f] = 1
                rec[nr] = i
                nr += 1
        cnt[0] = c
        return no, ns, nr

    @njit(cache=True, nogil=True)
    def gather(S, P, a, slots, chp, cho, out_meta):  # pragma: no cover - compiled
        """For each row in ``slots`` and direction with new deliveries: the bytes the
        conflict window gains (its last WLEN bytes that are new). Returns the bytes;
        ``out_meta[k] = (offset, length)`` per (slot, direction) in order."""
        total = 0
        for k in range(slots.shape[0]):
            s = slots[k]
            for d in range(2):
                col = D0 + d * DN
                if S[s, col + LASTCH] >= 0:
                    total += min(S[s, col + WLEN], S[s, col + NEWB])
        buf = np.empty(total, np.uint8)
        pos = total
        for k in range(slots.shape[0]):
            s = slots[k]
            for d in range(2):
                col = D0 + d * DN
                c = S[s, col + LASTCH]
                take = min(S[s, col + WLEN], S[s, col + NEWB]) if c >= 0 else 0
                out_meta[k, d, 0] = pos - take
                out_meta[k, d, 1] = take
                # fill backwards from pos: the newest chunk last
                need = take
                while need > 0 and c >= 0:
                    i = cho[c]
                    po = P[8, i]
                    ln = P[7, i]
                    n = min(ln, need)
                    pos -= n
                    buf[pos:pos + n] = a[po + ln - n:po + ln]
                    need -= n
                    c = chp[c]
                S[s, col + LASTCH] = -1
                S[s, col + NEWB] = 0
        return buf

    return kernel, gather


def available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def _pack_tail(t: bytes) -> int:
    return int.from_bytes(t, "big") if t else 0


class FastLane:
    """Attach with ``FastLane(tracker)``; the tracker then sends it every batch it can
    take (``takes``) and calls ``release`` when a session it holds ends."""

    def __init__(self, tracker: "Tracker", capacity: int = 1024) -> None:
        global _kernel
        if _kernel is None:
            _kernel = _compile()
        self.kernel, self.gather = _kernel
        self.t = tracker
        self.S = np.zeros((capacity, NF), dtype=np.int64)
        self.UF = np.zeros((capacity, FRAMES_KEPT), dtype=np.int64)
        self.owner: list[Optional[Session]] = [None] * capacity
        self.free = list(range(capacity - 1, -1, -1))
        self.created: Optional[list[Session]] = None   # sessions made in the current batch
        self.batches = 0               # batches the kernel took
        tracker.lane = self

    # -- rows <-> sessions -------------------------------------------------------------
    def _grow(self) -> None:
        cap = len(self.owner)
        self.S = np.concatenate([self.S, np.zeros((cap, NF), dtype=np.int64)])
        self.UF = np.concatenate([self.UF, np.zeros((cap, FRAMES_KEPT), dtype=np.int64)])
        self.owner += [None] * cap
        self.free = list(range(2 * cap - 1, cap - 1, -1)) + self.free

    @staticmethod
    def _eligible(s: Session) -> bool:
        if s.ended or s.trace is not None or not (s.app is None or isinstance(s.app, SmtpDialogue)):
            return False
        for dd in s.dirs:
            if dd.holes or dd.pending or (dd.started and dd.delivered != dd.nxt):
                return False
        return True

    def load(self, s: Session) -> int:
        """Copy a session into its row (taking one if needed); its row, or -1 if the
        kernel cannot hold it now."""
        if not self._eligible(s):
            if s.slot >= 0:
                self._free(s)
            return -1
        if s.slot < 0:
            if not self.free:
                self._grow()
            s.slot = self.free.pop()
            self.owner[s.slot] = s
        r = s.slot
        t = s.turn
        row = [1, s.client_dir, s.last_frame, s.end, int(s.hs_ack), int(s.synack_seen), 0, 0, 0]
        if t is None:
            row += [-1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        else:
            nf = len(t.unpushed_frames)
            row += [t.dir, t.start, t.bytes, t.first_ts, t.first_frame, int(t.last_pushed),
                    t.last_frame, t.unpushed_bytes, t.unpushed_ts, t.unpushed_count, nf]
            if nf:
                self.UF[r, :nf] = t.unpushed_frames
        row += [0] * 11
        for dd in s.dirs:
            row += [int(dd.started), dd.nxt, dd.last_push_end, dd.data_segments, dd.psh_segments,
                    dd.bytes, dd.max_segment, dd.oversize, int(dd.max_ack is not None),
                    dd.max_ack or 0, int(dd.fin), dd.mss, dd.turns, len(dd.window), 0, -1]
        self.S[r] = row
        self._app_state(s, r)
        return r

    def _app_state(self, s: Session, r: int) -> None:
        S = self.S
        app = s.app
        S[r, PROBE] = int(app is None and not s.app_probed)
        if app is None or app.tls:   # type: ignore[attr-defined]
            S[r, APP] = APP_NONE
            return
        st = app.state               # type: ignore[attr-defined]
        if st is ClientState.BODY:
            S[r, APP] = APP_BODY
            S[r, TAIL] = _pack_tail(app._tail)   # type: ignore[attr-defined]
            S[r, TAILN] = len(app._tail)         # type: ignore[attr-defined]
        elif st is ClientState.CHUNK:
            S[r, APP] = APP_CHUNK
            S[r, CLEFT] = app._chunk_left        # type: ignore[attr-defined]
        else:
            S[r, APP] = APP_LINE

    def _skips(self, s: Session, r: int) -> None:
        """Give the parser what the kernel did for it: body bytes it counted."""
        S = self.S
        if not S[r, SK]:
            return
        app: Any = s.app
        vals = S[r, SK:CLEFT + 1].tolist()
        _sk, badd, bframe, bpushed, bts, lframe, lpushed, lts, tail, tailn, cleft = vals
        app.body_bytes += badd
        app._last_frame, app._last_pushed, app._last_ts = lframe, bool(lpushed), lts
        if app.state is ClientState.BODY:
            app._body_frame, app._body_pushed, app._body_ts = bframe, bool(bpushed), bts
            app._tail = tail.to_bytes(tailn, "big") if tailn else b""
        else:
            app._chunk_left = cleft
        S[r, SK] = 0
        S[r, BADD] = 0

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
        if s.app is not None:
            self._skips(s, r)
        S[r, DIRTY] = 0

    def _windows(self, slots: list[int], P: np.ndarray, a: np.ndarray) -> None:
        """Bring the conflict windows of these rows up to date with their deliveries."""
        if not slots:
            return
        arr = np.array(slots, dtype=np.int64)
        meta = np.zeros((len(slots), 2, 2), dtype=np.int64)
        buf = self.gather(self.S, P, a, arr, self.chp, self.cho, meta)
        raw = buf.tobytes()
        S = self.S
        for k, (r, m) in enumerate(zip(slots, meta.tolist())):
            s = self.owner[r]
            for d in (0, 1):
                off, take = m[d]
                if not take:
                    continue
                dd = s.dirs[d]  # type: ignore[union-attr]
                keep = int(S[r, D0 + d * DN + WLEN]) - take
                w = dd.window
                dd.window = (w[len(w) - keep:] if keep else bytearray()) + raw[off:off + take]

    def _free(self, s: Session) -> None:
        self.S[s.slot, D0 + LASTCH] = self.S[s.slot, D0 + DN + LASTCH] = -1
        self.owner[s.slot] = None
        self.free.append(s.slot)
        s.slot = -1

    def release(self, s: Session) -> None:
        """The session leaves the kernel (it ends, or the reference code takes over)."""
        self.sync(s)
        self._free(s)

    def release_all(self) -> None:
        for s in self.owner:
            if s is not None:
                self.release(s)

    # -- batches -----------------------------------------------------------------------
    def takes(self, batch: SegmentBatch) -> bool:
        """Batches from the native decoder, with no session traced and no eviction
        possible (evictions depend on the order of every session's last packet)."""
        t = self.t
        P = batch.cols
        if P is None or t.trace_ids:
            return False
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
        fslot = np.full(len(flows), -1, dtype=np.int64)
        current: list[Optional[Session]] = [t.table.get(k) for k in flows]
        load = self.load
        for fi, s in enumerate(current):
            if s is not None:
                fslot[fi] = s.slot if s.slot >= 0 else load(s)
        self.chp = np.empty(n, dtype=np.int64)
        self.cho = np.empty(n, dtype=np.int64)
        cnt = np.zeros(1, dtype=np.int64)
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
        S = self.S
        try:
            left = np.empty(0, dtype=np.int64)
            pos = 0
            while pos < n or len(left):
                hi = min(n, pos + ROUND)
                todo = np.concatenate([left, np.arange(pos, hi, dtype=np.int64)]) if len(left) \
                    else np.arange(pos, hi, dtype=np.int64)
                pos = hi
                no, ns, nr = self.kernel(S, self.UF, P, a, fslot, todo, len(todo), out, slow, rec,
                                         blk, self.chp, self.cho, cnt)
                S = self.S
                for i in rec[:nr].tolist():
                    self._record(P, i, fslot, data)
                for i in slow[:ns].tolist():
                    S = self._slow(batch, P, i, fslot, current, a, file_index)
                left = out[:no].copy()
            rows = np.flatnonzero((S[:, D0 + LASTCH] >= 0) | (S[:, D0 + DN + LASTCH] >= 0))
            self._windows(rows.tolist(), P, a)
        finally:
            t.on_end = on_end
            created, self.created = self.created, None
        for k, s in enumerate(sorted(created, key=lambda x: x.first_frame)):
            s.id = first_id + k
        for s in ended:
            on_end(s)
        self.batches += 1

    def _record(self, P: np.ndarray, i: int, fslot: np.ndarray, data: bytes) -> None:
        frame, ts, fi, d, fl, _seq, _ack, plen, po, _pl = P[:, i].tolist()
        r = int(fslot[fi])
        s = self.owner[r]
        app: Any = s.app  # type: ignore[union-attr]
        self._skips(s, r)  # type: ignore[arg-type]
        app.data(d == s.client_dir, data[po:po + plen], frame, bool(fl & 0x08), ts)  # type: ignore[union-attr]
        self._app_state(s, r)  # type: ignore[arg-type]

    SLOW_PER_FLOW = 8    # slow packets of one flow in one batch before the flow stays slow

    def _slow(self, batch: SegmentBatch, P: np.ndarray, i: int, fslot: np.ndarray,
              current: list, a: np.ndarray, file_index: int) -> np.ndarray:
        """Packet i through the reference code; returns the (possibly regrown) state.
        A flow that keeps needing the reference code stays with it for the rest of the
        batch, so that one odd session cannot multiply the kernel's rounds."""
        t = self.t
        frame, ts, fi, d, fl, seq, ack, plen, po, pl = P[:, i].tolist()
        s = current[fi]
        if s is not None and s.slot >= 0:
            self._windows([s.slot], P, a)
            self.sync(s)
        t._step(current, batch.flows, fi, frame, ts, d, fl, seq, ack, plen,
                batch.data[po:po + pl] if plen else b"", batch.mss.get(i, 0) if fl & 0x02 else 0,
                file_index)
        s = current[fi]
        self.slows[fi] += 1
        if s is None or s.ended:
            fslot[fi] = -1
        elif self.slows[fi] > self.SLOW_PER_FLOW:
            if s.slot >= 0:
                self._free(s)
            fslot[fi] = -2
        else:
            fslot[fi] = self.load(s)
        return self.S
