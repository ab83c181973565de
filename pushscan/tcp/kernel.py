"""The fast lane's compiled kernel (numba): the common packets of a session, applied to
its ``layout.ROW`` record exactly as ``Tracker`` would apply them to its objects.

Functions marked with ``compiled()`` (``pushscan.compiled`` compiles them, ahead of time
or with numba's JIT; this module imports no numba). State is read and written by field
name: ``row = S[s]``, ``row.dirs[d].nxt``; segments are ``model.SEGMENT`` records
(``P[i].seq``). ``lane.py`` documents the contract.

Compiled without numba's reference counting (``_nrt=False``): with it, every call of a
helper, inlined or not, increments and decrements each array argument's count with
atomic instructions, which cost more than the tracking itself. The kernel therefore
allocates nothing (scratch space comes in as arguments).
"""
import numpy as np

from ..compiled.marker import Array, Record, compiled
from ..model import ACK, FIN, PSH, RST, SYN
from ..seq import unwrap
from ..smtp.dialogue import BODY_END
from .layout import (PENDING_KEPT, RETX_CONFLICT, RETX_HEAD, RETX_NEW_HEAD, App, Event, Lex,
                     Window)
from .session import IPID_STEP, WINDOW_KEEP


def verb_code(verb: str) -> int:
    """A verb of up to 8 letters as the kernel packs it (big-endian ASCII)."""
    return int.from_bytes(verb.encode("ascii"), "big")


VERB_UNKNOWN = verb_code("UNKNOWN")
VERB_DATA = verb_code("DATA")
VERB_BDAT = verb_code("BDAT")
VERB_AUTH = verb_code("AUTH")
VERB_STARTTLS = verb_code("STARTTLS")
VERB_BODY = -1             # the "DATA body" pseudo-command
END_PATTERN = tuple(BODY_END)          # CRLF.CRLF, as byte values
END_WORD = int.from_bytes(BODY_END, "big")


@compiled(inline="always")
def event(
        EV: Array, k: int, kind: int, s: int, value: int, frame: int, ts: int, d: int,
        flag: int) -> None:  # pragma: no cover - compiled
    """Write event k (no reply yet)."""
    e = EV[k]
    e.kind = kind
    e.row = s
    e.value = value
    e.frame = frame
    e.ts = ts
    e.dir = d
    e.flag = flag
    e.reply_code = -1
    e.reply_frame = -1


@compiled(inline="always")
def body_skip(
        p: Record, plen: int, ends: int, head: int, tail: int) -> bool:  # pragma: no cover - compiled
    """A body segment with no CRLF.CRLF in it (``ends``: the decoder looked) nor across
    its start: count it (True). Otherwise the reference parser must see it (False,
    nothing changed). ``p``: the row's parser record; ``head``, ``tail``: the segment's
    first and last 4 bytes (from the decoder, so that the payload is not read again)."""
    if plen < 4 or ends:
        return False
    tn = p.tail_len
    v = (p.tail << 32) | head     # the tail, then the segment's first 4 bytes
    for i in range(tn):           # the 5-byte windows that straddle the boundary
        if (v >> (8 * (tn - 1 - i))) & 0xFFFFFFFFFF == END_WORD:
            return False
    p.body_added += plen
    p.tail = tail
    p.tail_len = 4
    return True


@compiled()
def _space(c: int) -> bool:  # pragma: no cover - compiled
    return c == 32 or (9 <= c <= 13)


@compiled()
def smtp_lines(
        S: Array, B: Array, EV: Array, C: Array, U: Array, a: Array, s: int, frame: int,
        ts: int, psh: int, lo: int, hi: int, client: bool) -> int:  # pragma: no cover
    """Read the whole SMTP lines in a[lo:hi] for row s, as ``SmtpDialogue`` would:
    commands (verb) and final replies become events from ``C[0].events`` on, the row's
    parser record follows. A reply to a command read in the same round is written into
    that command's event instead. Returns the new event count, or -1 when the segment
    needs the reference parser (a partial or over-long line, a malformed reply, an error
    reply, BDAT, AUTH or STARTTLS replies, a long verb, a full queue): then nothing was
    changed."""
    if a[hi - 1] != 10:
        return -1
    p = S[s].smtp
    buf = B[s]
    lex = p.lex
    npend = p.npend
    head = p.head
    cap = EV.shape[0]
    rnd = C[0].round
    maxline = p.max_line
    k = C[0].events
    pos = lo
    undo = U                        # command events given a reply: undone on failure
    npatch = 0
    fail = False
    while pos < hi:
        nl = pos
        while a[nl] != 10:
            nl += 1
        if nl - pos > maxline or k >= cap:
            fail = True
            break
        e = nl
        while e > pos and a[e - 1] == 13:
            e -= 1
        if client:
            if lex != Lex.COMMAND:
                fail = True
                break
            i = pos
            while i < e and _space(a[i]):
                i += 1
            j = i
            while j < e and not _space(a[j]) and a[j] != 58:
                j += 1
            n = j - i
            code = VERB_UNKNOWN
            if 0 < n <= 12:
                alpha = True
                v = np.int64(0)
                for x in range(i, j):
                    c = a[x]
                    if 97 <= c <= 122:
                        c -= 32
                    if not 65 <= c <= 90:
                        alpha = False
                        break
                    v = (v << 8) | c
                if alpha:
                    if n > 8:
                        fail = True
                        break
                    code = v
            if code == VERB_BDAT or npend >= PENDING_KEPT:
                fail = True
                break
            q = (head + npend) % PENDING_KEPT
            buf.pending_verb[q] = code
            buf.pending_event[q] = rnd * cap + k
            npend += 1
            event(EV, k, Event.COMMAND, s, code, frame, ts, 0, psh)
            k += 1
            if code == VERB_DATA:
                lex = Lex.AWAIT_DATA_GO
        else:
            if e - pos < 3:
                fail = True
                break
            code = 0
            for x in range(pos, pos + 3):
                if not 48 <= a[x] <= 57:
                    fail = True
                    break
                code = code * 10 + (a[x] - 48)
            if fail:
                break
            if e - pos > 3:
                if a[pos + 3] == 45:      # "250-": a continuation line
                    pos = nl + 1
                    continue
                if a[pos + 3] != 32:
                    fail = True
                    break
            if code >= 400:
                fail = True               # an error reply: the reference parser keeps its text
                break
            patched = False
            if npend:
                front = buf.pending_verb[head]
                if front == VERB_AUTH or front == VERB_STARTTLS or npatch >= undo.shape[0]:
                    fail = True
                    break
                fe = buf.pending_event[head]
                head = (head + 1) % PENDING_KEPT
                npend -= 1
                if front == VERB_DATA:
                    if code == 354:
                        if lex == Lex.AWAIT_DATA_GO:
                            lex = Lex.BODY
                    elif lex == Lex.AWAIT_DATA_GO:
                        lex = Lex.COMMAND
                if fe >= 0 and fe // cap == rnd:   # its command is an event of this round
                    x = fe % cap
                    EV[x].reply_code = code
                    EV[x].reply_frame = frame
                    undo[npatch] = x
                    npatch += 1
                    patched = True
            if not patched:
                event(EV, k, Event.REPLY, s, code, frame, ts, 0, 0)
                k += 1
        pos = nl + 1
    if fail:
        for x in range(npatch):
            EV[undo[x]].reply_code = -1
        return -1
    if lex == Lex.BODY and p.lex != Lex.BODY:
        p.tail = 0x0D0A               # a body starts after CRLF
        p.tail_len = 2
    p.lex = lex
    p.npend = npend
    p.head = head
    return k


@compiled()
def body_end(
        S: Array, B: Array, EV: Array, C: Array, U: Array, a: Array, s: int, frame: int,
        ts: int, psh: int, po: int, plen: int) -> int:  # pragma: no cover - compiled
    """A body segment holding CRLF.CRLF (``SmtpDialogue._body_data``): the message ends
    (a BODY_END event: the body bytes it used), then the rest of the segment is read as
    command lines. Returns the new event count, or -1 (nothing changed) if the
    reference parser must read it."""
    p = S[s].smtp
    buf = B[s]
    tn = p.tail_len
    tail = p.tail
    n = tn + plen
    k0 = C[0].events
    if k0 >= EV.shape[0] or p.npend >= PENDING_KEPT:
        return -1
    found = -1
    for i in range(n - 4):
        ok = True
        for j in range(5):
            x = i + j
            c = (tail >> (8 * (tn - 1 - x))) & 255 if x < tn else a[po + x - tn]
            if c != END_PATTERN[j]:
                ok = False
                break
        if ok:
            found = i
            break
    if found < 0:
        return -1
    used = found + 5 - tn
    saved_lex, saved_npend, saved_tail, saved_tn = p.lex, p.npend, p.tail, p.tail_len
    saved_bframe, saved_bpushed = p.body_frame, p.body_pushed
    q = (p.head + p.npend) % PENDING_KEPT
    buf.pending_verb[q] = VERB_BODY
    buf.pending_event[q] = -1
    p.npend += 1
    p.lex = Lex.COMMAND
    p.tail = 0
    p.tail_len = 0
    p.body_frame = frame        # the parser's last body segment
    p.body_pushed = psh
    event(EV, k0, Event.BODY_END, s, used, frame, ts, 0, psh)
    k = k0 + 1
    if used < plen:
        C[0].events = k
        k = smtp_lines(S, B, EV, C, U, a, s, frame, ts, psh, po + used, po + plen, True)
        C[0].events = k0
        if k < 0:
            p.lex, p.npend, p.tail, p.tail_len = saved_lex, saved_npend, saved_tail, saved_tn
            p.body_frame, p.body_pushed = saved_bframe, saved_bpushed
            return -1
    return k


@compiled()
def window_bytes(
        B: Array, W: Array, a: Array, s: int, d: int, w: Record) -> None:  # pragma: no cover - compiled
    """Descriptors to bytes: window ``w``'s bytes go into the ring (Window.RING)."""
    desc = B[s].descriptors
    pos = w.len
    h = w.head
    j = w.count - 1
    while pos > 0 and j >= 0:
        q = (h + j) % desc.shape[1]
        o = desc[d, q, 0]
        ln = desc[d, q, 1]
        take = min(ln, pos)
        for x in range(take):       # (loops: a slice assignment would need numba's runtime)
            W[s, d, pos - take + x] = a[o + ln - take + x]
        pos -= take
        j -= 1
    w.pos = w.len % WINDOW_KEEP
    w.mode = Window.RING
    w.head = 0
    w.count = 0
    w.sum = 0


@compiled(inline="always")
def window_add(
        B: Array, W: Array, a: Array, s: int, d: int, w: Record, po: int, plen: int,
        mapped: bool) -> None:  # pragma: no cover - compiled
    """Delivered bytes a[po:po+plen] join window ``w`` (tracker._deliver)."""
    K = WINDOW_KEEP
    if w.mode == Window.DESCRIPTORS and mapped:
        desc = B[s].descriptors
        cap = desc.shape[1]
        h = w.head
        c = w.count
        sm = w.sum + plen
        while c > 0 and sm - desc[d, h, 1] >= K:    # no longer within the last K bytes
            sm -= desc[d, h, 1]
            h = (h + 1) % cap
            c -= 1
        if c < cap:
            q = (h + c) % cap
            desc[d, q, 0] = po
            desc[d, q, 1] = plen
            w.head = h
            w.count = c + 1
            w.sum = sm
            w.len = min(w.len + plen, K)
            return
        window_bytes(B, W, a, s, d, w)        # too many small segments
    n = plen
    off = po
    if n > K:
        off += n - K
        n = K
    wp = w.pos
    first = min(n, K - wp)
    for x in range(first):
        W[s, d, wp + x] = a[off + x]
    for x in range(n - first):
        W[s, d, x] = a[off + first + x]
    w.pos = (wp + n) % K
    w.len = min(w.len + plen, K)
    w.mode = Window.RING


@compiled()
def window_differs(
        B: Array, W: Array, a: Array, s: int, d: int, w: Record, j: int, p: int, n: int) -> bool:  # pragma: no cover - compiled
    """Do bytes j..j+n of window ``w`` (0 = oldest) differ from a[p:p+n]?"""
    if w.mode == Window.RING:
        base = w.pos - w.len + j
        for x in range(n):
            if W[s, d, (base + x) % WINDOW_KEEP] != a[p + x]:
                return True
        return False
    desc = B[s].descriptors
    cap = desc.shape[1]
    x = w.sum - w.len + j     # offset in the descriptors' bytes
    h = w.head
    k = 0
    while n > 0 and k < w.count:
        q = (h + k) % cap
        ln = desc[d, q, 1]
        if x < ln:
            take = min(ln - x, n)
            o = desc[d, q, 0] + x
            for y in range(take):
                if a[o + y] != a[p + y]:
                    return True
            p += take
            n -= take
            x = 0
        else:
            x -= ln
        k += 1
    return False


@compiled(inline="always")
def window_clear(w: Record) -> None:  # pragma: no cover - compiled
    w.len = 0
    w.pos = 0
    w.mode = Window.DESCRIPTORS
    w.head = 0
    w.count = 0
    w.sum = 0


@compiled(inline="always")
def packet_facts(row: Record, d: int, src: Record, dst: Record, seg: Record) -> None:
    """What any packet shows of its sender (tracker._habits, for packets that are not
    RSTs nor keep-alives), and the silence before it (tracker._step)."""
    ts = seg.ts
    row.last_gap = ts - row.end
    row.last_frame = seg.frame
    row.end = ts
    row.dirty = 1
    fl = seg.flags
    src.packets += 1
    if fl & ACK:
        src.acks += 1
    src.last_ts = ts
    src.last_frame = seg.frame
    if src.since_peer == 0:
        src.since_ts = ts
    src.since_peer += 1
    dst.since_peer = 0
    if dst.ka_pending:
        dst.ka_pending = 0
        dst.ka_answered += 1
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
            if src.ipid_last >= 0 and 0 < ((ipid - src.ipid_last) & 0xFFFF) < IPID_STEP:
                src.ipid_inc += 1
            src.ipid_last = ipid
    if not fl & SYN:
        src.opts_all = seg.opts if src.opts_all < 0 else src.opts_all & seg.opts
        src.opts_any |= seg.opts


@compiled(inline="always")
def apply_ack(row: Record, d: int, src: Record, dst: Record, fl: int, newack: bool, a_: int,
              ts: int) -> None:
    """The acknowledgement part of a packet (tracker._step)."""
    if fl & ACK and dst.started:
        if newack:
            src.has_max_ack = 1
            src.max_ack = a_
            src.ack_advance_ts = ts
        if a_ >= dst.nxt and dst.pending_max:   # all of the peer's data acknowledged
            if dst.pending_max > dst.max_acked_segment:
                dst.max_acked_segment = dst.pending_max
            dst.pending_max = 0
        if row.hs_ack == 0 and d == row.client_dir and row.synack_seen:
            row.hs_ack = 1
            row.hs_ack_ts = ts


@compiled(inline="always")
def scaled_window(src: Record, dst: Record, seg: Record) -> int:
    """The window a packet advertises, in bytes (tracker._window)."""
    if not seg.flags & SYN and src.wscale >= 0 and dst.wscale >= 0:
        return seg.win << src.wscale
    return seg.win


@compiled(inline="always")
def apply_window(src: Record, dst: Record, seg: Record, has_a: bool, a_: int, win: int) -> None:
    """Duplicate ACKs and the window a packet with ACK advertises (tracker._window; a zero
    window goes to the reference code)."""
    fl = seg.flags
    if seg.plen == 0 and not fl & (SYN | FIN) and has_a:
        if src.has_last_ack and a_ == src.last_ack and seg.win == src.win_raw and win \
                and dst.nxt > a_:
            src.dup_acks += 1
            src.dup_run += 1
            if src.dup_run > src.dup_max:
                src.dup_max = src.dup_run
        else:
            src.dup_run = 0
    elif seg.plen:
        src.dup_run = 0
    if has_a:
        src.has_last_ack = 1
        src.last_ack = a_
    src.win = win
    src.win_raw = seg.win


@compiled(inline="always")
def count_segment(src: Record, dst: Record, frame: int, plen: int, end: int, psh: bool) -> None:
    """A data segment's counters (tracker._step)."""
    src.data_segments += 1
    if psh:
        src.psh_segments += 1
    if plen > src.max_segment:
        src.max_segment = plen
    if plen > src.pending_max:
        src.pending_max = plen
    if dst.mss and plen > dst.mss:
        src.oversize += 1
    if dst.win > 0 and dst.has_last_ack and end == dst.last_ack + dst.win:
        src.window_full += 1
        if src.window_full_frame == 0:
            src.window_full_frame = frame


@compiled()
def retransmission(
        S: Array, B: Array, W: Array, EV: Array, C: Array, a: Array, s: int, seg: Record, d: int,
        start: int, newack: bool, a_: int, has_a: bool, win: int) -> int:  # pragma: no cover
    """A segment whose bytes were all delivered before (tracker._overlap with nothing
    new): counted, compared with the window, its PSH noted; the attempt and any conflict
    go to the tracker as a RETRANSMISSION event. Returns 0."""
    row = S[s]
    src = row.dirs[d]
    dst = row.dirs[1 - d]
    fl = seg.flags
    plen = seg.plen
    packet_facts(row, d, src, dst, seg)
    apply_ack(row, d, src, dst, fl, newack, a_, seg.ts)
    if fl & ACK:
        apply_window(src, dst, seg, has_a, a_, win)
    psh = (fl & PSH) != 0
    end = start + plen
    count_segment(src, dst, seg.frame, plen, end, psh)
    src.retransmitted += 1
    delivered = src.nxt
    w = src.window
    wstart = delivered - w.len
    lo = max(start, wstart)
    hi = min(end, delivered)
    flag = 0
    if lo < hi and window_differs(B, W, a, s, d, w, lo - wstart, seg.pay_off + lo - start, hi - lo):
        flag = RETX_CONFLICT
    first_unacked = dst.max_ack if dst.has_max_ack else src.data_start
    if start == first_unacked:                    # tracker._head_of_line
        flag |= RETX_HEAD
        if start != src.hol_start or plen != src.hol_size:
            src.hol_start = start
            src.hol_size = plen
            flag |= RETX_NEW_HEAD
    k = C[0].events
    event(EV, k, Event.RETRANSMISSION, s, start, seg.frame, seg.ts, d, flag)
    C[0].events = k + 1
    if psh and end > src.last_push_end:
        src.last_push_end = end
    t = row.turn
    if psh and t.dir == d and src.last_push_end >= delivered:
        t.last_pushed = 1          # a retransmission pushed the waiting bytes
        t.unpushed_bytes = 0
    return 0


@compiled(inline="always")
def step(
        S: Array, B: Array, W: Array, EV: Array, C: Array, U: Array, P: Array, a: Array,
        mapped: bool, s: int, i: int) -> int:  # pragma: no cover - compiled
    """Apply packet i to session row s. Returns 0 done, 1 done and its payload is a
    record for the parser, 2 not taken (the reference code must do it; nothing was
    changed)."""
    seg = P[i]
    frame = seg.frame
    ts = seg.ts
    d = seg.dir
    fl = seg.flags
    plen = seg.plen
    po = seg.pay_off
    row = S[s]
    if fl & RST:
        return 2
    if fl & SYN and (not fl & ACK or fl & FIN or plen or row.closed):
        return 2                   # a SYN may start a new session: the reference decides
    src = row.dirs[d]
    dst = row.dirs[1 - d]
    t = row.turn
    p = row.smtp
    out = row.out_dir
    # -- checks: is this packet simple for this session? ---------------------------
    newack = False
    has_a = False
    a_ = 0
    if fl & ACK and dst.started:
        has_a = True
        a_ = unwrap(seg.ack, dst.nxt)
        if src.has_max_ack == 0 or a_ > src.max_ack:
            newack = True
            if a_ > dst.nxt + dst.fin:
                return 2           # acknowledges bytes never seen: a capture gap
    win = scaled_window(src, dst, seg)
    if fl & ACK and win == 0 and not fl & SYN:
        return 2                   # a zero window: the reference records the episode
    if plen <= 1 and not fl & (SYN | FIN) and src.started and unwrap(seg.seq, src.nxt) == src.nxt - 1:
        return 2                   # a keep-alive or a zero-window probe
    cd = row.client_dir
    start = 0
    if plen:
        if seg.pay_len != plen or src.started == 0 or fl & FIN:
            return 2
        if d != out and row.dirs[out].fin:
            return 2               # an answer after the outgoing side closed: late?
        start = unwrap(seg.seq, src.nxt)
        if start != src.nxt:
            if start > src.nxt or start + plen > src.nxt or C[0].events >= EV.shape[0]:
                return 2           # a hole, reordering, or new bytes in a retransmission
            return retransmission(S, B, W, EV, C, a, s, seg, d, start, newack, a_, has_a, win)
        if p.probe and d != cd and row.dirs[cd].bytes == 0:
            return 2               # the server's first bytes decide the parser
        if t.dir >= 0 and t.dir != d and t.last_pushed == 0:
            return 2               # an unpushed turn ends: the reference records it
    elif fl & FIN and src.fin == 0:
        if t.dir >= 0 and t.last_pushed == 0:
            return 2
        if dst.fin and C[0].events >= EV.shape[0]:
            return 2
    if fl & FIN and d == out and t.dir == d:
        return 2                   # the outgoing side closes while waiting for an answer
    # -- apply ---------------------------------------------------------------------
    packet_facts(row, d, src, dst, seg)
    if fl & SYN:                   # the SYN-ACK (tracker._syn)
        if seg.mss:
            src.mss = seg.mss
        src.syn_opts = seg.opts
        src.wscale = seg.wscale
        row.synack_seen = 1
        row.synack_count += 1
        if row.synack_ts < 0:
            row.synack_ts = ts
        if src.has_isn == 0:
            src.has_isn = 1
            src.isn = seg.seq
            if src.started == 0:
                src.started = 1
                src.nxt = seg.seq + 1
                src.last_push_end = seg.seq + 1
                src.data_start = seg.seq + 1
    apply_ack(row, d, src, dst, fl, newack, a_, ts)
    if fl & ACK:
        apply_window(src, dst, seg, has_a, a_, win)
    status = 0
    if plen:
        psh = (fl & PSH) != 0
        end = start + plen
        count_segment(src, dst, frame, plen, end, psh)
        if dst.has_max_ack == 0 or dst.max_ack >= src.nxt:   # all of it acknowledged before
            src.burst_frame = frame
            src.burst_ts = ts
            src.burst_gap = row.last_gap
            src.burst_end = end
        src.nxt = end
        # delivery: the conflict window, then the parser
        window_add(B, W, a, s, d, src.window, po, plen, mapped)
        app = p.app
        if app == App.LINE:
            status = 1
        elif app == App.SMTP and d == cd and p.lex == Lex.BODY:
            if not body_skip(p, plen, seg.body_end, seg.head, seg.tail):
                k = body_end(S, B, EV, C, U, a, s, frame, ts, psh, po, plen)
                if k < 0:
                    status = 1
                else:
                    C[0].events = k
        elif app == App.BODY:
            if not (d == cd and body_skip(p, plen, seg.body_end, seg.head, seg.tail)):
                status = 1
        elif app == App.SMTP:
            k = smtp_lines(S, B, EV, C, U, a, s, frame, ts, psh, po, po + plen, d == cd)
            if k < 0:
                status = 1
            else:
                C[0].events = k
        elif app == App.CHUNK:
            if d == cd and plen < p.chunk_left:
                p.chunk_left -= plen
                p.body_added += plen
            else:
                status = 1
        if app != App.NONE and app != App.LINE and status == 0:
            p.skipped = 1                 # the parser's "last segment", given at sync
            p.last_frame = frame
            p.last_pushed = psh
            p.last_ts = ts
            if p.app == App.BODY or (app == App.SMTP and p.lex == Lex.BODY and d == cd):
                p.body_frame = frame
                p.body_pushed = psh
        if psh and end > src.last_push_end:
            src.last_push_end = end
        src.bytes += plen
        # turns
        if t.dir != d:
            t.dir = d
            t.start = start
            t.bytes = 0
            t.first_ts = ts
            t.first_frame = frame
            t.last_pushed = 0
            t.unpushed_bytes = 0
            t.unpushed_ts = 0
            t.unpushed_count = 0
            t.frames_kept = 0
            src.turns += 1
        t.bytes += plen
        t.last_frame = frame
        t.last_ts = ts
        if src.last_push_end >= end:
            t.last_pushed = 1
            t.unpushed_bytes = 0
        else:
            if t.unpushed_bytes == 0:
                t.unpushed_ts = ts
                t.frames_kept = 0
                t.unpushed_count = 0
            t.last_pushed = 0
            t.unpushed_bytes = end - max(src.last_push_end, t.start)
            t.unpushed_count += 1
            frames = B[s].unpushed_frames
            if t.frames_kept < frames.shape[0]:
                frames[t.frames_kept] = frame
                t.frames_kept += 1
    if fl & FIN and src.fin == 0:
        src.fin = 1
        src.fin_frame = frame
        src.fin_ts = ts
        t.dir = -1                    # a pushed turn ends quietly
        if dst.fin:                   # both FINs: closed (tracker.mark_closed, at replay)
            row.closed = 1
            window_clear(row.dirs[0].window)
            window_clear(row.dirs[1].window)
            k = C[0].events
            event(EV, k, Event.CLOSED, s, 0, frame, ts, d, 0)
            C[0].events = k + 1
    return status


@compiled()
def kernel(
        S: Array, B: Array, W: Array, EV: Array, C: Array, U: Array, P: Array, a: Array,
        mapped: bool, fslot: Array, todo: Array, nt: int, out: Array, slow: Array, rec: Array,
        blk: Array) -> tuple[int, int, int]:  # pragma: no cover
    """One round over the packets ``todo[:nt]``: returns (left over, slow, records)
    counts, their packets in ``out``, ``slow`` and ``rec``."""
    blk[:] = 0
    no = 0
    ns = 0
    nr = 0
    for t in range(nt):
        i = todo[t]
        f = P[i].flow
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
        st = step(S, B, W, EV, C, U, P, a, mapped, s, i)
        if st == 2:
            blk[f] = 1
            slow[ns] = i
            ns += 1
        elif st == 1:
            blk[f] = 1
            rec[nr] = i
            nr += 1
    return no, ns, nr
