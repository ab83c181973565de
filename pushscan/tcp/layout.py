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
 SK, BADD, BFRAME, BPUSHED, BTS, LFRAME, LPUSHED, LTS, TAIL, TAILN, CLEFT) = range(31)
D0 = 31
# Direction columns, at D0 + d * DN.
(STARTED, NXT, LPE, DSEG, PSEG, BYTES, MAXSEG, OVERS, HASACK, MAXACK, FIN, MSS, TURNS,
 WLEN, WPOS, _SPARE) = range(16)
DN = 16
NF = D0 + 2 * DN

# APP values: what the kernel does with a session's in-order payload.
APP_NONE, APP_LINE, APP_BODY, APP_CHUNK = 0, 1, 2, 3
