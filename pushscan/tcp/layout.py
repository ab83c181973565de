"""The fast lane's state, as numpy structured dtypes read by field name in the compiled
kernel (``row.dirs[d].nxt``) and in Python (``lane.py``).

A session the kernel holds is one ``ROW`` record (its counters and sequence state, its
turn, what its SMTP parser expects, and a nested ``DIRECTION`` record per direction)
plus one ``BUFFERS`` record (the unpushed turn's frames, the commands awaiting replies,
the conflict windows' descriptors). What the kernel reads of the SMTP dialogue comes back
as ``EVENT`` records, of the kinds in ``Event``. Adding a per-direction fact is one field
in ``DIRECTION`` and its logic in the kernel (and in ``Tracker``, the reference).
"""
from __future__ import annotations

from enum import IntEnum
from typing import Any

import numpy as np

from .session import FRAMES_KEPT, WINDOW_KEEP

MAX_ROWS = 4096            # past this many rows, further sessions stay with the reference code
DESCRIPTORS = 64           # segments a conflict window may be made of, kept as descriptors
PENDING_KEPT = 16          # commands awaiting replies the kernel can follow
assert WINDOW_KEEP & (WINDOW_KEEP - 1) == 0, "rings index modulo WINDOW_KEEP"

i8 = np.int64


class Event(IntEnum):
    """What an ``EVENT`` record tells."""
    COMMAND = 1          # value: the verb's code; reply_code/reply_frame: its reply, if read too
    REPLY = 2            # value: the reply code (a reply to a command of an earlier round)
    CLOSED = 3           # both FINs: the session closed
    BODY_END = 4         # value: the body bytes of the segment up to CRLF.CRLF
    RETRANSMISSION = 5   # value: the sequence number retransmitted; flag: RETX_* bits


RETX_CONFLICT = 1        # a RETRANSMISSION's bytes differed from those delivered
RETX_HEAD = 2            # it was the segment at the first unacknowledged byte
RETX_NEW_HEAD = 4        # ... a segment other than the last one retransmitted there


class App(IntEnum):
    """What the kernel does with a session's in-order payload."""
    NONE = 0             # nothing: no parser, or TLS
    LINE = 1             # every segment goes to the reference parser
    BODY = 2             # count body bytes (no CRLF.CRLF in them), hand over the rest
    CHUNK = 3            # count BDAT chunk bytes, hand over the rest
    SMTP = 4             # read SMTP lines itself (``Lex`` says where the client is)


class Lex(IntEnum):
    """Where the client's side of an SMTP dialogue the kernel reads is."""
    COMMAND = 0
    AWAIT_DATA_GO = 1    # DATA sent, its 354 not yet read
    BODY = 2


class Window(IntEnum):
    """How a direction's conflict window (the last delivered bytes) is kept."""
    DESCRIPTORS = 0      # offsets and lengths of the delivering segments in a mapped capture
    RING = 1             # bytes, in the row's ring (other inputs, or too many small segments)


WINDOW = np.dtype([
    ("len", i8),         # bytes in the window (at most WINDOW_KEEP)
    ("pos", i8),         # RING: where the next byte goes in the ring
    ("mode", i8),        # a ``Window``
    ("head", i8),        # DESCRIPTORS: the oldest descriptor, how many, their bytes
    ("count", i8),
    ("sum", i8),
])

# What the sender of a direction showed of itself: plain int attributes of ``Direction``
# of the same names, one contiguous block of DIRECTION (``lane.py`` copies it in one go).
FACTS = ("packets", "acks", "last_ts", "last_frame", "since_peer", "since_ts", "ka_answered",
         "ttl_min", "ttl_max", "ipid_count", "ipid_zero", "ipid_inc", "ipid_last", "opts_all",
         "opts_any", "syn_opts", "wscale", "win", "win_raw", "dup_acks", "dup_run", "dup_max",
         "window_full", "window_full_frame", "burst_frame", "burst_ts", "burst_gap", "burst_end",
         "pending_max", "max_acked_segment", "hol_start", "hol_size", "ack_advance_ts",
         "fin_frame", "fin_ts")

DIRECTION = np.dtype([   # as ``session.Direction`` (names of its attributes where shared)
    ("started", i8),
    ("nxt", i8),
    ("last_push_end", i8),
    ("data_segments", i8),
    ("psh_segments", i8),
    ("bytes", i8),
    ("max_segment", i8),
    ("oversize", i8),
    ("has_max_ack", i8),
    ("max_ack", i8),
    ("fin", i8),
    ("mss", i8),
    ("turns", i8),
    ("has_isn", i8),
    ("isn", i8),
    ("data_start", i8),
    ("retransmitted", i8),
    ("window", WINDOW),
    ("ka_pending", i8),      # (a bool of Direction)
    ("has_last_ack", i8),    # (Direction.last_ack: None, or the value)
    ("last_ack", i8),
    *[(name, i8) for name in FACTS],
])

TURN = np.dtype([        # as ``session.Turn``; dir -1: no turn
    ("dir", i8),
    ("start", i8),
    ("bytes", i8),
    ("first_ts", i8),
    ("first_frame", i8),
    ("last_pushed", i8),
    ("last_frame", i8),
    ("unpushed_bytes", i8),
    ("unpushed_ts", i8),
    ("unpushed_count", i8),
    ("frames_kept", i8),  # unpushed frames in ``BUFFERS.unpushed_frames``
    ("last_ts", i8),
])

PARSER = np.dtype([      # what the session's SMTP parser expects, and what the kernel did
    ("app", i8),         # an ``App``
    ("probe", i8),       # the server's first bytes will decide the parser (reference code)
    ("lex", i8),         # a ``Lex``
    ("npend", i8),       # commands awaiting replies, from ``head`` in BUFFERS.pending_verb
    ("head", i8),
    ("max_line", i8),
    ("tail", i8),        # the body's last bytes (up to 4, big-endian), for CRLF.CRLF
    ("tail_len", i8),
    ("chunk_left", i8),  # BDAT bytes still to come
    ("skipped", i8),     # the kernel fed segments since the parser last saw one:
    ("body_added", i8),  # body bytes it counted,
    ("body_frame", i8),  # the last body segment (-1: none) and its PSH,
    ("body_pushed", i8),
    ("last_frame", i8),  # the last segment fed, its PSH and time
    ("last_pushed", i8),
    ("last_ts", i8),
])

ROW = np.dtype([
    ("client_dir", i8),
    ("out_dir", i8),
    ("last_frame", i8),
    ("end", i8),
    ("last_gap", i8),    # the silence before the latest packet
    ("synack_ts", i8),   # -1: none yet
    ("hs_ack_ts", i8),
    ("hs_ack", i8),
    ("synack_seen", i8),
    ("synack_count", i8),
    ("dirty", i8),       # changed since its objects were last brought up to date
    ("closed", i8),      # closed in the kernel (both FINs); the lane lets it go
    ("turn", TURN),
    ("smtp", PARSER),
    ("dirs", DIRECTION, (2,)),
])

BUFFERS = np.dtype([
    ("unpushed_frames", i8, (FRAMES_KEPT,)),
    ("pending_verb", i8, (PENDING_KEPT,)),    # codes of the commands awaiting replies
    ("pending_event", i8, (PENDING_KEPT,)),   # their events, if read this round (round * EVENTS + k)
    ("descriptors", i8, (2, DESCRIPTORS, 2)),  # per direction: (offset, length) in the capture
])

EVENT = np.dtype([
    ("kind", i8),        # an ``Event``
    ("row", i8),
    ("value", i8),
    ("frame", i8),
    ("ts", i8),
    ("dir", i8),
    ("flag", i8),
    ("reply_code", i8),  # COMMAND: the reply read in the same round (-1: none)
    ("reply_frame", i8),
])

CONTROL = np.dtype([("events", i8), ("round", i8)])   # events written this round; rounds so far


class Offsets:
    """Where each field of a structured dtype lies in a record seen as int64 words
    (``record.view(np.int64)``), by the field's name: ``IX.turn.bytes``, ``IX.dirs[1].nxt``.
    Lets Python read a whole row with one ``tolist()`` and still address it by name."""

    def __init__(self, dtype: np.dtype, base: int = 0) -> None:
        assert dtype.fields is not None
        for name, (ftype, offset, *_title) in dtype.fields.items():
            at = base + offset // 8
            if ftype.fields is not None:
                value: Any = Offsets(ftype, at)
            elif ftype.subdtype is not None and ftype.subdtype[0].fields is not None:
                sub = ftype.subdtype[0]
                value = [Offsets(sub, at + k * sub.itemsize // 8) for k in range(ftype.shape[0])]
            else:
                value = at
            setattr(self, name, value)

    def __getattr__(self, name: str) -> Any:   # (for type checkers: fields are set above)
        raise AttributeError(name)


IX = Offsets(ROW)
ROW_WORDS = ROW.itemsize // 8


def _words_only(dtype: np.dtype) -> bool:
    """Every leaf field is int64 (``Offsets`` counts in words)."""
    if dtype.fields is not None:
        return all(_words_only(t) for t, *_ in dtype.fields.values())
    if dtype.subdtype is not None:
        return _words_only(dtype.subdtype[0])
    return dtype == np.dtype(i8)


assert _words_only(ROW) and _words_only(BUFFERS)
