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
IPID_STEP = 1024          # an IP ID at most this far above the sender's previous one: its counter's


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
        # what the sender of this direction showed of itself (issue: why sessions die)
        "packets", "last_ts", "last_frame", "ttl_min", "ttl_max", "ipid_count", "ipid_zero",
        "ipid_inc", "ipid_last", "opts_all", "opts_any", "syn_opts", "wscale", "win", "win_raw",
        "window_full", "window_full_frame", "dup_acks", "dup_run", "dup_max", "last_ack",
        "keepalives", "keepalive_frames", "ka_pending", "ka_answered", "zero_windows",
        "burst_frame", "burst_ts", "burst_gap", "burst_end", "pending_max", "max_acked_segment",
        "hol_start", "hol_size", "hol_frames", "since_peer", "since_ts", "ack_advance_ts",
        "fin_frame", "fin_ts", "zero_window_count", "acks",
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
        # -- the sender's packets: how many, the last, its IP and TCP habits
        self.packets = 0
        self.acks = 0              # of them with ACK set
        self.last_ts = 0
        self.last_frame = 0
        self.ttl_min = -1          # IPv4 TTL or IPv6 hop limit seen (-1: none yet)
        self.ttl_max = -1
        self.ipid_count = 0        # IPv4 packets; of them with IP ID 0; with an IP ID a
        self.ipid_zero = 0         # little above the previous nonzero one (a counter)
        self.ipid_inc = 0
        self.ipid_last = -1
        self.opts_all = -1         # option kinds on every non-SYN, non-RST segment (-1: none yet)
        self.opts_any = 0          # ... on any of them
        self.syn_opts = -1         # option kinds of its SYN (-1: no SYN seen)
        self.wscale = -1           # window scale its SYN announced (-1: none)
        self.win = -1              # the last window it advertised, scaled, in bytes (-1: none)
        self.win_raw = -1          # ... as the 16-bit field
        self.window_full = 0       # its data filled the peer's advertised window
        self.window_full_frame = 0
        self.dup_acks = 0          # duplicate ACKs it sent, the longest run of them
        self.dup_run = 0
        self.dup_max = 0
        self.last_ack: Optional[int] = None   # its last acknowledgement (unwrapped)
        self.keepalives = 0        # keep-alive probes it sent (seq one below its next byte)
        self.keepalive_frames: Any = ()
        self.ka_pending = False    # a probe of it waits for any packet of the peer
        self.ka_answered = 0
        self.zero_windows: Any = ()   # list of ZeroWindow episodes it advertised (the latest last)
        self.zero_window_count = 0
        self.burst_frame = 0       # its last data sent when all its data was acknowledged:
        self.burst_ts = 0          # frame, time, the session's silence before it, its end
        self.burst_gap = 0
        self.burst_end = 0
        self.pending_max = 0       # the largest segment sent since all its data was acknowledged
        self.max_acked_segment = 0   # the largest segment known acknowledged
        self.hol_start = -1        # the segment at the first unacknowledged byte, retransmitted:
        self.hol_size = 0          # where it starts, its size, the frames of its copies
        self.hol_frames: Any = ()
        self.since_peer = 0        # its packets since the peer's last one, from when
        self.since_ts = 0
        self.ack_advance_ts = 0    # when its acknowledgement last advanced
        self.fin_frame = 0         # its first FIN
        self.fin_ts = 0

    def start(self, seq: int) -> None:
        self.started = True
        self.nxt = self.delivered = self.last_push_end = self.data_start = seq


class Turn:
    """New data one side sends until the other side sends data, a FIN/RST, or the end.

    The turn is pushed when a PSH segment covers its highest byte (sequence order, so
    reordering and retransmissions are judged as the receiver's stack sees them)."""

    __slots__ = ("dir", "start", "bytes", "first_ts", "first_frame", "last_pushed", "last_frame",
                 "last_ts", "unpushed_bytes", "unpushed_ts", "unpushed_frames", "unpushed_count")

    def __init__(self, d: int, ts: int, frame: int, start: int) -> None:
        self.dir = d
        self.start = start         # unwrapped sequence number of the turn's first byte
        self.bytes = 0
        self.first_ts = ts
        self.first_frame = frame
        self.last_pushed = False
        self.last_frame = frame
        self.last_ts = ts
        self.unpushed_bytes = 0
        self.unpushed_ts = 0
        self.unpushed_frames: list[int] = []
        self.unpushed_count = 0


class ZeroWindow:
    """A stretch during which one side advertised a zero window: its application was not
    reading. ``probes``: the peer's probes meanwhile; ``answered``: this side's ACKs to
    them; ``ended_by``: reopened | reset | fin | end (None while it lasts)."""

    __slots__ = ("start_frame", "start_ts", "end_frame", "end_ts", "probes", "probe_frames",
                 "answered", "ended_by")

    def __init__(self, frame: int, ts: int) -> None:
        self.start_frame = frame
        self.start_ts = ts
        self.end_frame: Optional[int] = None
        self.end_ts: Optional[int] = None
        self.probes = 0
        self.probe_frames: list[int] = []
        self.answered = 0
        self.ended_by: Optional[str] = None


@dataclass(frozen=True, slots=True)
class GiveUp:
    """A side closed (FIN or RST) while it held the turn: it had sent data and no answer
    came. ``waited``: since its last data; ``command``: the SMTP command that waited."""

    dir: int
    frame: int
    ts: int
    how: str                     # fin | reset
    waited: int
    command: Optional[str]


class TraceEntry(NamedTuple):
    """One packet of a traced session (``follow``, ``plot``): sequence numbers are
    relative to each direction's first data byte; ``ack`` to the peer's (None if no ACK
    or the peer sent nothing yet); ``new`` counts bytes never seen before; ``win`` the
    window it advertised (scaled bytes), ``ttl`` its IP TTL or hop limit, ``what`` what
    the tracker made of it (keep-alive, zero-window probe, duplicate ACK, window full)."""

    frame: int
    ts: int
    dir: int
    flags: int
    seq: Optional[int]
    length: int
    new: int
    ack: Optional[int]
    win: int = -1
    ttl: int = -1
    what: str = ""


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
    flags: int = 0               # its TCP flags (an ACK with it, or none)
    seq_expected: bool = False   # its sequence number is the one its receiver acknowledged last
    ttl: int = -1                # its IP TTL / hop limit, IP ID and TCP option kinds
    ipid: int = -1
    opts: int = 0
    trigger_frame: int = 0       # the packet before it, and the silence before that packet
    trigger_gap: int = 0
    before_peer: bool = False    # its sender had sent nothing before it
    turn_last_ts: int = 0        # when the turn's holder last sent data
    unpushed_count: int = 0      # segments of the unpushed bytes (their first FRAMES_KEPT frames kept)


class Session:
    """One TCP session. Created and updated by the tracker; ended exactly once."""

    __slots__ = ("id", "key", "client_dir", "out_dir", "dirs", "first_frame", "last_frame",
                 "start", "end", "syn_seen", "synack_seen", "hs_ack", "syn_isn", "syn_count",
                 "synack_count", "reset", "rst_count", "closed", "close_ts", "turn",
                 "unpushed_turns", "app", "app_probed", "icmp", "ended", "timeout",
                 "file_index", "smtp_port", "syn_frames", "seen_until", "evicted", "trace",
                 "syn_ts", "synack_ts", "hs_ack_ts", "last_gap", "after_reset",
                 "after_reset_frame", "gave_up", "late_frame", "tunnel", "ignored_resets",
                 "ignored_reset_frame")

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
        self.syn_ts = -1           # the first SYN, SYN-ACK, and the ACK that completed the handshake
        self.synack_ts = -1
        self.hs_ack_ts = -1
        self.last_gap = 0          # the silence before the latest packet
        self.after_reset = 0       # packets the reset's sender sent after it (not RSTs)
        self.after_reset_frame = 0
        self.gave_up: Optional[GiveUp] = None   # the outgoing side closed while waiting
        self.late_frame = 0        # the peer's data after that, if any came
        self.tunnel: Any = None    # the TunnelInfo its first packet came through, if any
        self.ignored_resets = 0    # resets the receiver's stack cannot accept (RFC 793, 5961)
        self.ignored_reset_frame = 0

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
