"""The fast lane's compiled kernel (numba), and the layout of its state.

Module-level functions marked with ``compiled()``: ``compiled.kernels()`` compiles
them (ahead of time, or with numba's JIT), and this module imports no numba. Imported
when the fast lane is attached (``fastlane.py`` documents the contract). Column numbers
are module constants, compiled in.

Compiled without numba's reference counting (``_nrt=False``): with it, every call of a
helper, inlined or not, increments and decrements each array argument's count with
atomic instructions, which cost more than the tracking itself. The kernel therefore
allocates nothing (scratch space comes in as arguments).
"""
import numpy as np

from ..compiled import compiled

# -- the state layout: one int64 row per session (fastlane.py copies sessions in and out) --
# Kept in this module so that a change to it recompiles the kernel (numba's cache
# notices changes to the compiled function's own file only; the ahead-of-time build
# is keyed by this file's content).

WINDOW_KEEP = 64 * 1024    # as tracker.WINDOW_KEEP: each row keeps a ring of this many
#                            bytes per direction
MAX_ROWS = 4096            # past this many rows, further sessions stay with the reference code

# Session columns of the state array.
(CDIR, LAST_FRAME, END, HS_ACK, SYNACK, PROBE, APP, DIRTY,
 TDIR, TSTART, TBYTES, TFTS, TFFRAME, TPUSHED, TLFRAME, TUBYTES, TUTS, TUCOUNT, TNF,
 SK, BADD, BFRAME, BPUSHED, LFRAME, LPUSHED, LTS, TAIL, TAILN, CLEFT,
 ST, NPEND, PHEAD, MAXLINE, SACOUNT, CLOSED) = range(35)
D0 = 35
# Direction columns, at D0 + d * DN.
(STARTED, NXT, LPE, DSEG, PSEG, BYTES, MAXSEG, OVERS, HASACK, MAXACK, FIN, MSS, TURNS,
 WLEN, WPOS, HASISN, ISN, DSTART, WMODE, DHEAD, DCOUNT, DSUM, RETX) = range(23)
DN = 23
# The conflict window (the last WLEN <= WINDOW_KEEP bytes delivered) is kept either as
# descriptors (WMODE 0: offset and length of the delivering segments in a memory-mapped
# capture, which stays readable; no copies) or as bytes in a ring (WMODE 1: other
# inputs, or more small segments than DESCRIPTORS cover).
DESCRIPTORS = 64
NF = D0 + 2 * DN

# APP values: what the kernel does with a session's in-order payload: nothing (no parser,
# or TLS), hand every segment to the reference parser, count body or BDAT bytes and hand
# the rest over, or read SMTP lines itself (ST: the client's state).
APP_NONE, APP_LINE, APP_BODY, APP_CHUNK, APP_SMTP = 0, 1, 2, 3, 4
ST_COMMAND, ST_AWAIT, ST_BODY = 0, 1, 2
PENDING_KEPT = 16          # commands awaiting replies the kernel can follow


def verb_code(verb: str) -> int:
    """A verb of up to 8 letters as the kernel packs it (big-endian ASCII)."""
    return int.from_bytes(verb.encode("ascii"), "big")


VERB_UNKNOWN = verb_code("UNKNOWN")
VERB_DATA = verb_code("DATA")
VERB_BDAT = verb_code("BDAT")
VERB_AUTH = verb_code("AUTH")
VERB_STARTTLS = verb_code("STARTTLS")
VERB_BODY = -1             # the "DATA body" pseudo-command


FIN_, SYN_, RST_, PSH_, ACK_ = 0x01, 0x02, 0x04, 0x08, 0x10
BODY_END = (13, 10, 46, 13, 10)   # CRLF.CRLF
MASK, HALF = (1 << 32) - 1, 1 << 31


@compiled(inline="always")
def unwrap(v, ref):  # pragma: no cover - compiled
    return ref + ((v - ref + HALF) & MASK) - HALF


@compiled(inline="always")
def event(EV, k, kind, s, a, frame, ts, flag):  # pragma: no cover - compiled
    """Write event k: (kind, row, value, frame, ts or direction, flag); no reply yet."""
    EV[k, 0] = kind
    EV[k, 1] = s
    EV[k, 2] = a
    EV[k, 3] = frame
    EV[k, 4] = ts
    EV[k, 5] = flag
    EV[k, 6] = -1


@compiled(inline="always")
def body_skip(S, s, plen, ends, head, tail):  # pragma: no cover - compiled
    """A body segment with no CRLF.CRLF in it (``ends``: the decoder looked) nor across
    its start: count it (True). Otherwise the reference parser must see it (False,
    nothing changed). ``head``, ``tail``: its first and last 4 bytes (from the decoder,
    so that the payload is not read again here)."""
    if plen < 4 or ends:
        return False
    tn = S[s, TAILN]
    v = (S[s, TAIL] << 32) | head  # the tail, then the segment's first 4 bytes
    for i in range(tn):           # the 5-byte windows that straddle the boundary
        if (v >> (8 * (tn - 1 - i))) & 0xFFFFFFFFFF == 0x0D0A2E0D0A:
            return False
    S[s, BADD] += plen
    S[s, TAIL] = tail
    S[s, TAILN] = 4
    return True


@compiled()
def _space(c):  # pragma: no cover - compiled
    return c == 32 or (9 <= c <= 13)


@compiled()
def smtp_lines(S, PF, PE, EV, ne, U, a, s, frame, ts, psh, lo, hi, client):  # pragma: no cover
    """Read the whole SMTP lines in a[lo:hi] for row s, as ``SmtpDialogue`` would: commands
    (verb) and final replies become events EV[ne[0]:], the row's state follows. A reply to
    a command read in the same round is written into that command's event (columns 6-7)
    instead. Returns the new event count, or -1 when the segment needs the reference
    parser (a partial or over-long line, a malformed reply, BDAT, AUTH or STARTTLS
    replies, a long verb, a full queue): then nothing was changed."""
    if a[hi - 1] != 10:
        return -1
    st = S[s, ST]
    npend = S[s, NPEND]
    head = S[s, PHEAD]
    q = PF.shape[1]
    cap = EV.shape[0]
    rnd = ne[1]
    maxline = S[s, MAXLINE]
    k = ne[0]
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
            if st != ST_COMMAND:
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
            if code == VERB_BDAT or npend >= q:
                fail = True
                break
            PF[s, (head + npend) % q] = code
            PE[s, (head + npend) % q] = rnd * cap + k
            npend += 1
            event(EV, k, 1, s, code, frame, ts, psh)
            k += 1
            if code == VERB_DATA:
                st = ST_AWAIT
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
            patched = False
            if npend:
                front = PF[s, head]
                if front == VERB_AUTH or front == VERB_STARTTLS or npatch >= undo.shape[0]:
                    fail = True
                    break
                fe = PE[s, head]
                head = (head + 1) % q
                npend -= 1
                if front == VERB_DATA:
                    if code == 354:
                        if st == ST_AWAIT:
                            st = ST_BODY
                    elif st == ST_AWAIT:
                        st = ST_COMMAND
                if fe >= 0 and fe // cap == rnd:   # its command is an event of this round
                    x = fe % cap
                    EV[x, 6] = code
                    EV[x, 7] = frame
                    undo[npatch] = x
                    npatch += 1
                    patched = True
            if not patched:
                event(EV, k, 2, s, code, frame, ts, 0)
                k += 1
        pos = nl + 1
    if fail:
        for x in range(npatch):
            EV[undo[x], 6] = -1
        return -1
    if st == ST_BODY and S[s, ST] != ST_BODY:
        S[s, TAIL] = 0x0D0A               # a body starts after CRLF
        S[s, TAILN] = 2
    S[s, ST] = st
    S[s, NPEND] = npend
    S[s, PHEAD] = head
    return k


@compiled()
def body_end(S, PF, PE, EV, ne, U, a, s, frame, ts, psh, po, plen):  # pragma: no cover - compiled
    """A body segment holding CRLF.CRLF (``SmtpDialogue._body_data``): the message ends
    (event 4: the body bytes it used), then the rest of the segment is read as command
    lines. Returns the new event count, or -1 (nothing changed) if the reference
    parser must read it."""
    tn = S[s, TAILN]
    tail = S[s, TAIL]
    n = tn + plen
    q = PF.shape[1]
    k0 = ne[0]
    if k0 >= EV.shape[0] or S[s, NPEND] >= q:
        return -1
    found = -1
    for i in range(n - 4):
        ok = True
        for j in range(5):
            x = i + j
            c = (tail >> (8 * (tn - 1 - x))) & 255 if x < tn else a[po + x - tn]
            if c != BODY_END[j]:
                ok = False
                break
        if ok:
            found = i
            break
    if found < 0:
        return -1
    used = found + 5 - tn
    saved = (S[s, ST], S[s, NPEND], S[s, TAIL], S[s, TAILN], S[s, BFRAME], S[s, BPUSHED])
    PF[s, (S[s, PHEAD] + S[s, NPEND]) % q] = VERB_BODY
    PE[s, (S[s, PHEAD] + S[s, NPEND]) % q] = -1
    S[s, NPEND] += 1
    S[s, ST] = ST_COMMAND
    S[s, TAIL] = 0
    S[s, TAILN] = 0
    S[s, BFRAME] = frame        # the parser's last body segment
    S[s, BPUSHED] = psh
    event(EV, k0, 4, s, used, frame, ts, psh)
    k = k0 + 1
    if used < plen:
        ne[0] = k
        k = smtp_lines(S, PF, PE, EV, ne, U, a, s, frame, ts, psh, po + used, po + plen, True)
        ne[0] = k0
        if k < 0:
            S[s, ST], S[s, NPEND], S[s, TAIL], S[s, TAILN], S[s, BFRAME], S[s, BPUSHED] = saved
            return -1
    return k


@compiled()
def window_bytes(S, W, DS, a, s, d, src):  # pragma: no cover - compiled
    """Descriptors to bytes: the window's WLEN bytes go into the ring (WMODE 1)."""
    cap = DS.shape[2]
    pos = S[s, src + WLEN]
    h = S[s, src + DHEAD]
    j = S[s, src + DCOUNT] - 1
    while pos > 0 and j >= 0:
        q = (h + j) % cap
        o = DS[s, d, q, 0]
        ln = DS[s, d, q, 1]
        take = min(ln, pos)
        for x in range(take):       # (loops: a slice assignment would need numba's runtime)
            W[s, d, pos - take + x] = a[o + ln - take + x]
        pos -= take
        j -= 1
    S[s, src + WPOS] = S[s, src + WLEN] % WINDOW_KEEP
    S[s, src + WMODE] = 1
    S[s, src + DHEAD] = 0
    S[s, src + DCOUNT] = 0
    S[s, src + DSUM] = 0


@compiled(inline="always")
def window_add(S, W, DS, a, s, d, src, po, plen, mapped):  # pragma: no cover - compiled
    """Delivered bytes a[po:po+plen] join the conflict window (tracker._deliver)."""
    K = WINDOW_KEEP
    if S[s, src + WMODE] == 0 and mapped:
        cap = DS.shape[2]
        h = S[s, src + DHEAD]
        c = S[s, src + DCOUNT]
        sm = S[s, src + DSUM] + plen
        while c > 0 and sm - DS[s, d, h, 1] >= K:    # no longer within the last K bytes
            sm -= DS[s, d, h, 1]
            h = (h + 1) % cap
            c -= 1
        if c < cap:
            q = (h + c) % cap
            DS[s, d, q, 0] = po
            DS[s, d, q, 1] = plen
            S[s, src + DHEAD] = h
            S[s, src + DCOUNT] = c + 1
            S[s, src + DSUM] = sm
            S[s, src + WLEN] = min(S[s, src + WLEN] + plen, K)
            return
        window_bytes(S, W, DS, a, s, d, src)        # too many small segments
    n = plen
    off = po
    if n > K:
        off += n - K
        n = K
    wp = S[s, src + WPOS]
    first = min(n, K - wp)
    for x in range(first):
        W[s, d, wp + x] = a[off + x]
    for x in range(n - first):
        W[s, d, x] = a[off + first + x]
    S[s, src + WPOS] = (wp + n) % K
    S[s, src + WLEN] = min(S[s, src + WLEN] + plen, K)
    S[s, src + WMODE] = 1


@compiled()
def window_differs(S, W, DS, a, s, d, src, j, p, n):  # pragma: no cover - compiled
    """Do window bytes j..j+n (0 = oldest) differ from a[p:p+n]?"""
    wlen = S[s, src + WLEN]
    if S[s, src + WMODE] == 1:
        base = S[s, src + WPOS] - wlen + j
        for x in range(n):
            if W[s, d, (base + x) % WINDOW_KEEP] != a[p + x]:
                return True
        return False
    cap = DS.shape[2]
    x = S[s, src + DSUM] - wlen + j     # offset in the descriptors' bytes
    h = S[s, src + DHEAD]
    k = 0
    while n > 0 and k < S[s, src + DCOUNT]:
        q = (h + k) % cap
        ln = DS[s, d, q, 1]
        if x < ln:
            take = min(ln - x, n)
            o = DS[s, d, q, 0] + x
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
def apply_ack(S, s, d, src, dst, fl, newack, a_):  # pragma: no cover - compiled
    """The acknowledgement part of a packet (tracker._step)."""
    if fl & ACK_ and S[s, dst + STARTED]:
        if newack:
            S[s, src + HASACK] = 1
            S[s, src + MAXACK] = a_
        if S[s, HS_ACK] == 0 and d == S[s, CDIR] and S[s, SYNACK]:
            S[s, HS_ACK] = 1


@compiled(inline="always")
def count_segment(S, s, src, dst, plen, psh):  # pragma: no cover - compiled
    """A data segment's counters (tracker._step)."""
    S[s, src + DSEG] += 1
    if psh:
        S[s, src + PSEG] += 1
    if plen > S[s, src + MAXSEG]:
        S[s, src + MAXSEG] = plen
    mss = S[s, dst + MSS]
    if mss and plen > mss:
        S[s, src + OVERS] += 1


@compiled()
def retransmission(S, W, DS, EV, ne, P, a, s, i, d, src, start, newack, a_):  # pragma: no cover
    """A segment whose bytes were all delivered before (tracker._overlap with nothing
    new): counted, compared with the window, its PSH noted; the attempt and any conflict
    go to the tracker as event 5. Returns 0."""
    frame = P[0, i]
    fl = P[4, i]
    plen = P[7, i]
    po = P[8, i]
    dst = D0 + (1 - d) * DN
    S[s, LAST_FRAME] = frame
    S[s, END] = P[1, i]
    S[s, DIRTY] = 1
    apply_ack(S, s, d, src, dst, fl, newack, a_)
    psh = (fl & PSH_) != 0
    count_segment(S, s, src, dst, plen, psh)
    end = start + plen
    S[s, src + RETX] += 1
    delivered = S[s, src + NXT]
    wstart = delivered - S[s, src + WLEN]
    lo = max(start, wstart)
    hi = min(end, delivered)
    conflict = 0
    if lo < hi and window_differs(S, W, DS, a, s, d, src, lo - wstart, po + lo - start, hi - lo):
        conflict = 1
    k = ne[0]
    event(EV, k, 5, s, start, frame, d, conflict)
    ne[0] = k + 1
    if psh and end > S[s, src + LPE]:
        S[s, src + LPE] = end
    if psh and S[s, TDIR] == d and S[s, src + LPE] >= delivered:
        S[s, TPUSHED] = 1          # a retransmission pushed the waiting bytes
        S[s, TUBYTES] = 0
    return 0


@compiled(inline="always")
def step(S, UF, W, DS, PF, PE, EV, ne, U, P, a, mapped, s, i):  # pragma: no cover - compiled
    """Apply packet i to session row s. Returns 0 done, 1 done and its payload is a
    record for the parser, 2 not taken (the reference code must do it; nothing was
    changed)."""
    frame = P[0, i]
    ts = P[1, i]
    d = P[3, i]
    fl = P[4, i]
    plen = P[7, i]
    po = P[8, i]
    if fl & RST_:
        return 2
    if fl & SYN_ and (not fl & ACK_ or fl & FIN_ or plen or S[s, CLOSED]):
        return 2                   # a SYN may start a new session: the reference decides
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
                return 2           # acknowledges bytes never seen: a capture gap
    cd = S[s, CDIR]
    start = 0
    if plen:
        if P[9, i] != plen or S[s, src + STARTED] == 0 or fl & FIN_:
            return 2
        start = unwrap(P[5, i], S[s, src + NXT])
        if start != S[s, src + NXT]:
            if start > S[s, src + NXT] or start + plen > S[s, src + NXT] or ne[0] >= EV.shape[0]:
                return 2           # a hole, reordering, or new bytes in a retransmission
            return retransmission(S, W, DS, EV, ne, P, a, s, i, d, src, start, newack, a_)
        if S[s, PROBE] and d != cd and S[s, D0 + cd * DN + BYTES] == 0:
            return 2               # the server's first bytes decide the parser
        if S[s, TDIR] >= 0 and S[s, TDIR] != d and S[s, TPUSHED] == 0:
            return 2               # an unpushed turn ends: the reference records it
    elif fl & FIN_ and S[s, src + FIN] == 0:
        if S[s, TDIR] >= 0 and S[s, TPUSHED] == 0:
            return 2
        if S[s, dst + FIN] and ne[0] >= EV.shape[0]:
            return 2
    # -- apply ---------------------------------------------------------------------
    S[s, LAST_FRAME] = frame
    S[s, END] = ts
    S[s, DIRTY] = 1
    if fl & SYN_:                  # the SYN-ACK (tracker._syn)
        if P[10, i]:
            S[s, src + MSS] = P[10, i]
        S[s, SYNACK] = 1
        S[s, SACOUNT] += 1
        if S[s, src + HASISN] == 0:
            S[s, src + HASISN] = 1
            S[s, src + ISN] = P[5, i]
            if S[s, src + STARTED] == 0:
                S[s, src + STARTED] = 1
                S[s, src + NXT] = P[5, i] + 1
                S[s, src + LPE] = P[5, i] + 1
                S[s, src + DSTART] = P[5, i] + 1
    apply_ack(S, s, d, src, dst, fl, newack, a_)
    status = 0
    if plen:
        psh = (fl & PSH_) != 0
        count_segment(S, s, src, dst, plen, psh)
        end = start + plen
        S[s, src + NXT] = end
        # delivery: the conflict window, then the parser
        window_add(S, W, DS, a, s, d, src, po, plen, mapped)
        app = S[s, APP]
        if app == APP_LINE:
            status = 1
        elif app == APP_SMTP and d == cd and S[s, ST] == ST_BODY:
            if not body_skip(S, s, plen, P[11, i], P[12, i], P[13, i]):
                k = body_end(S, PF, PE, EV, ne, U, a, s, frame, ts, psh, po, plen)
                if k < 0:
                    status = 1
                else:
                    ne[0] = k
        elif app == APP_BODY:
            if not (d == cd and body_skip(S, s, plen, P[11, i], P[12, i], P[13, i])):
                status = 1
        elif app == APP_SMTP:
            k = smtp_lines(S, PF, PE, EV, ne, U, a, s, frame, ts, psh, po, po + plen, d == cd)
            if k < 0:
                status = 1
            else:
                ne[0] = k
        elif app == APP_CHUNK:
            if d == cd and plen < S[s, CLEFT]:
                S[s, CLEFT] -= plen
                S[s, BADD] += plen
            else:
                status = 1
        if app != APP_NONE and app != APP_LINE and status == 0:
            S[s, SK] = 1                  # the parser's "last segment", given at sync
            S[s, LFRAME] = frame
            S[s, LPUSHED] = psh
            S[s, LTS] = ts
            if S[s, APP] == APP_BODY or (app == APP_SMTP and S[s, ST] == ST_BODY and d == cd):
                S[s, BFRAME] = frame
                S[s, BPUSHED] = psh
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
        if S[s, dst + FIN]:           # both FINs: closed (tracker._closing, at replay)
            S[s, CLOSED] = 1
            for x in range(2):
                S[s, D0 + x * DN + WLEN] = 0
                S[s, D0 + x * DN + WPOS] = 0
                S[s, D0 + x * DN + WMODE] = 0
                S[s, D0 + x * DN + DHEAD] = 0
                S[s, D0 + x * DN + DCOUNT] = 0
                S[s, D0 + x * DN + DSUM] = 0
            k = ne[0]
            event(EV, k, 3, s, 0, frame, ts, 0)
            ne[0] = k + 1
    return status


@compiled()
def kernel(S, UF, W, DS, PF, PE, EV, ne, U, P, a, mapped, fslot, todo, nt, out, slow, rec, blk):  # pragma: no cover
    """One round over ``todo``: returns (left over, slow, records) counts."""
    blk[:] = 0
    no = 0
    ns = 0
    nr = 0
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
        st = step(S, UF, W, DS, PF, PE, EV, ne, U, P, a, mapped, s, i)
        if st == 2:
            blk[f] = 1
            slow[ns] = i
            ns += 1
        elif st == 1:
            blk[f] = 1
            rec[nr] = i
            nr += 1
    return no, ns, nr
