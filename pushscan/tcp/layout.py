"""Layout of the fast lane's state: one int64 row per session (see ``fastlane.py``).

Shared by the compiled kernel (``kernel.py``, where these are compile-time constants) and
the Python side that copies sessions in and out of rows.
"""

WINDOW_KEEP = 64 * 1024    # as tracker.WINDOW_KEEP: each row keeps a ring of this many
#                            bytes per direction
MAX_ROWS = 4096            # past this many rows, further sessions stay with the reference code

# Session columns of the state array.
(MODE, CDIR, LAST_FRAME, END, HS_ACK, SYNACK, PROBE, APP, DIRTY,
 TDIR, TSTART, TBYTES, TFTS, TFFRAME, TPUSHED, TLFRAME, TUBYTES, TUTS, TUCOUNT, TNF,
 SK, BADD, BFRAME, BPUSHED, BTS, LFRAME, LPUSHED, LTS, TAIL, TAILN, CLEFT,
 ST, NPEND, PHEAD, MAXLINE, SACOUNT, CLOSED) = range(37)
D0 = 37
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
