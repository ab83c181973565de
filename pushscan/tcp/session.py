"""Values the tracker records about one TCP session: facts, not judgements.

``findings.py`` turns these facts into findings and a verdict. Direction objects are
mutable and slotted because the tracker updates them for every segment.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple, Optional, Protocol

FRAMES_KEPT = 64  # frame numbers kept per unpushed turn (the count is always exact)
WINDOW_KEEP = 64 * 1024   # delivered bytes kept per direction, compared with overlapping retransmissions


class Close(str, Enum):
    FIN = "fin"
    RESET_BY_CLIENT = "reset_by_client"
    RESET_BY_SERVER = "reset_by_server"
    OPEN = "open"
    TIMEOUT = "timeout"


class Handshake(str, Enum):
    COMPLETE = "complete"
    PARTIAL = "partial"
    NONE = "none"


class App(Protocol):
    """An application-layer parser fed the reassembled streams (see ``smtp.py``)."""

    def data(self, from_client: bool, data: bytes, frame: int, pushed: bool, ts: int) -> None: ...
    def gap(self, from_client: bool, length: int) -> None: ...
    def command_in_progress(self) -> Optional[str]: ...


class Direction:
    """State and counters of one direction of a session."""

    __slots__ = (
        "started", "nxt", "delivered", "holes", "pending", "window",
        "data_segments", "psh_segments", "bytes", "retransmitted", "out_of_order",
        "attempts", "truncated", "oversize", "conflicts", "gap_bytes", "gap_frames",
        "max_ack", "fin", "isn", "turns", "turns_unpushed", "last_push_end", "data_start",
        "mss", "max_segment", "pending_bytes", "overflows",
    )

    def __init__(self) -> None:
        # Containers that most directions never need start as an empty tuple (shared, no
        # allocation) and become a list or dict when first written: with a million sessions
        # open, that halves the memory per session.
        self.started = False       # nxt is meaningful
        self.nxt = 0               # unwrapped sequence number after the highest byte seen
        self.delivered = 0         # stream offset (unwrapped seq) handed to the app so far
        self.holes: Any = ()       # list of [start, end) below nxt never seen
        self.pending: Any = ()     # dict: start -> out-of-order (payload, plen, psh, frame)
        self.window = bytearray()  # the last bytes before `delivered`, for conflict checks
        self.data_segments = 0
        self.psh_segments = 0
        self.bytes = 0             # unique payload bytes
        self.retransmitted = 0
        self.out_of_order = 0
        self.attempts: Any = ()    # dict: seq -> times sent, for retransmitted seqs only
        self.truncated = 0         # segments cut by the snap length
        self.oversize = 0          # segments larger than the MSS
        self.conflicts: Any = ()   # list: frames that overlapped with different bytes
        self.gap_bytes = 0         # bytes acknowledged by the peer but never captured
        self.gap_frames: Any = ()  # list: frames of the acknowledgements that showed gaps
        self.max_ack: Optional[int] = None  # highest ack this side sent (in peer's space)
        self.fin = False
        self.isn: Optional[int] = None
        self.turns = 0
        self.turns_unpushed = 0
        self.last_push_end = 0     # unwrapped seq after the last pushed byte
        self.data_start = 0        # unwrapped seq of the first data byte
        self.mss = 0
        self.max_segment = 0
        self.pending_bytes = 0     # payload bytes held in `pending`
        self.overflows = 0         # times `pending` outgrew the tracker's max_buffer

    def start(self, seq: int) -> None:
        self.started = True
        self.nxt = self.delivered = self.last_push_end = self.data_start = seq


class Turn:
    """New data one side sends until the other side sends data, a FIN/RST, or the end.

    The turn is pushed when a PSH segment covers its highest byte (sequence order, so
    reordering and retransmissions are judged as the receiver's stack sees them)."""

    __slots__ = ("dir", "start", "bytes", "first_ts", "first_frame", "last_pushed", "last_frame",
                 "unpushed_bytes", "unpushed_ts", "unpushed_frames", "unpushed_count")

    def __init__(self, d: int, ts: int, frame: int, start: int) -> None:
        self.dir = d
        self.start = start         # unwrapped sequence number of the turn's first byte
        self.bytes = 0
        self.first_ts = ts
        self.first_frame = frame
        self.last_pushed = False
        self.last_frame = frame
        self.unpushed_bytes = 0
        self.unpushed_ts = 0
        self.unpushed_frames: list[int] = []
        self.unpushed_count = 0


class TraceEntry(NamedTuple):
    """One packet of a traced session (``follow``, ``plot``): sequence numbers are
    relative to each direction's first data byte; ``ack`` to the peer's (None if no ACK
    or the peer sent nothing yet); ``new`` counts bytes never seen before."""

    frame: int
    ts: int
    dir: int
    flags: int
    seq: Optional[int]
    length: int
    new: int
    ack: Optional[int]


@dataclass(frozen=True, slots=True)
class UnpushedTurn:
    """An outgoing-or-not turn whose last new-data segment had no PSH."""

    dir: int
    bytes: int
    first_ts: int
    frames: tuple[int, ...]
    segments: int
    answered_ts: Optional[int]   # when the other side sent data, else None
    ended_by: str                # data | fin | reset | end


@dataclass(frozen=True, slots=True)
class ResetFact:
    """The first RST of a session and what was waiting at that moment."""

    dir: int                     # direction the RST travelled in (sender's side)
    frame: int
    ts: int
    turn_dir: Optional[int]      # who held the turn
    turn_bytes: int
    unpushed_bytes: int
    unpushed_ts: int
    unpushed_frames: tuple[int, ...]
    acked: bool                  # the RST's receiver-side data was all acknowledged
    app_command: Optional[str]
    refused: bool                # RST answered a SYN: nothing listened


class Session:
    """One TCP session. Created and updated by the tracker; ended exactly once."""

    __slots__ = ("id", "key", "client_dir", "out_dir", "dirs", "first_frame", "last_frame",
                 "start", "end", "syn_seen", "synack_seen", "hs_ack", "syn_isn", "syn_count",
                 "synack_count", "reset", "rst_count", "closed", "close_ts", "turn",
                 "unpushed_turns", "app", "app_probed", "icmp", "ended", "timeout",
                 "file_index", "smtp_port", "syn_frames", "seen_until", "evicted", "trace")

    def __init__(self, sid: int, key: Any, client_dir: int, out_dir: int, frame: int, ts: int,
                 file_index: int) -> None:
        self.id = sid
        self.key = key
        self.client_dir = client_dir
        self.out_dir = out_dir
        self.dirs = (Direction(), Direction())
        self.first_frame = frame
        self.last_frame = frame
        self.start = ts
        self.end = ts
        self.syn_seen = False
        self.synack_seen = False
        self.hs_ack = False
        self.syn_isn: Optional[int] = None
        self.syn_count = 0
        self.synack_count = 0
        self.reset: Optional[ResetFact] = None
        self.rst_count = 0
        self.closed = False
        self.close_ts = 0
        self.turn: Optional[Turn] = None
        self.unpushed_turns: Any = ()   # list of UnpushedTurn, created when first needed
        self.app: Optional[App] = None
        self.app_probed = False
        self.icmp: Any = ()             # list of IcmpError, created when first needed
        self.ended = False
        self.timeout = False
        self.file_index = file_index
        self.smtp_port = False
        self.syn_frames: list[int] = []     # frames of the client's SYNs (kept up to FRAMES_KEPT)
        self.seen_until = ts       # capture time known when the session ended (>= end)
        self.evicted = False       # ended early: too many sessions were open
        self.trace: Optional[list[TraceEntry]] = None   # every packet, if asked for

    @property
    def handshake(self) -> Handshake:
        if self.syn_seen and self.synack_seen and self.hs_ack:
            return Handshake.COMPLETE
        if self.syn_seen or self.synack_seen:
            return Handshake.PARTIAL
        return Handshake.NONE

    @property
    def close(self) -> Close:
        if self.reset is not None:
            return Close.RESET_BY_CLIENT if self.reset.dir == self.client_dir else Close.RESET_BY_SERVER
        if self.timeout:
            return Close.TIMEOUT
        if self.dirs[0].fin or self.dirs[1].fin:
            return Close.FIN
        return Close.OPEN
