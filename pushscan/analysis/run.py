"""The analyze pipeline: inputs -> decode -> tracker -> findings -> report document.

``Analysis`` is the one place that wires the stages together for files; the CLI, the
Python API (``pushscan.analyze``) and the CI gate all use it (``live.py`` wires the
same stages to a live capture). The report is a plain dict (the JSON contract,
``"schema": 1``); sessions are handed out one by one as the tracker ends them.
"""
from __future__ import annotations

import gc
import heapq
import ipaddress
import os
from typing import Any, Callable, Optional

from ..decode import linktype_name
from ..errors import CaptureDamaged, InputError, UsageError
from ..model import DecodeStats
from ..report.document import SCHEMA, Tally, endpoint, session_document
from ..smtp import IMPLICIT_TLS_PORTS, SmtpDialogue, smtp_of
from ..sources.engines import open_engine, open_input
from ..sources.prefetch import prefetch
from ..sources.streams import rereadable
from ..tcp.session import Session
from ..tcp.tracker import LINGER_NS, Tracker
from ..version import __version__
from .grouping import Group, ring_sets
from .options import Options
from .shard import Shard, select


# -- inputs -----------------------------------------------------------------------------
def first_timestamp(path: str) -> Optional[int]:
    """Timestamp (ns) of the first packet of a readable file, else None."""
    if not rereadable(path):
        return None          # a FIFO or standard input is read once, by the analysis
    try:
        raw, reader = open_input(path)
    except InputError:
        return None
    try:
        for batch in reader.batches():
            if len(batch):
                return int(batch.ts[0])
    except CaptureDamaged:
        return None
    finally:
        raw.close()
    return None


def time_order(paths: list[str]) -> list[str]:
    """Files of one capture (e.g. rotated ring files) in order of their first packet."""
    if len(paths) < 2 or not all(rereadable(p) for p in paths):
        return list(paths)   # streams are read once, in the order given
    firsts = {p: first_timestamp(p) for p in paths}
    return sorted(paths, key=lambda p: (firsts[p] is None, firsts[p] or 0, paths.index(p)))


def _end(s: Session, d: int) -> tuple[str, int]:
    e = endpoint(s, d)
    return e["ip"], e["port"]


def make_tracker(opts: Options, on_end: Callable[[Session], None],
                  trace_ids: frozenset[int] = frozenset(), linger_ns: int = LINGER_NS,
                  trace_frames: frozenset[int] = frozenset()) -> Tracker:
    smtp_ports = opts.smtp_ports
    nets = opts.nets

    def outgoing_of(s: Session) -> int:
        if nets:
            local = [any(ipaddress.ip_address(endpoint(s, d)["ip"]) in n for n in nets)
                     for d in (0, 1)]
            if local[0] != local[1]:
                return 0 if local[0] else 1
        return s.client_dir if opts.outgoing == "client" else s.client_dir ^ 1

    def app_for(s: Session, first_server_bytes: Optional[bytes]) -> Optional[SmtpDialogue]:
        if first_server_bytes is None:
            if not s.smtp_port:
                return None
            server_port = s.key[6] if s.client_dir == 0 else s.key[3]
            return SmtpDialogue(implicit_tls=server_port in IMPLICIT_TLS_PORTS,
                                max_line=opts.max_line)
        if first_server_bytes[:4] in (b"220 ", b"220-"):   # SMTP if the client says EHLO
            return SmtpDialogue(max_line=opts.max_line, by_banner=True)
        return None

    tracker = Tracker(on_end=on_end, is_server_port=smtp_ports.__contains__,
                      outgoing_of=outgoing_of, app_for=app_for,
                      max_sessions=opts.max_sessions, max_buffer=opts.max_buffer,
                      trace_ids=trace_ids, trace_frames=trace_frames, linger_ns=linger_ns)
    if opts.shard is not None:
        tracker.starts = []      # the shard's sessions' first frames: the merge's ids
    return tracker


class Analysis:
    """One analysis over one capture (a list of files read as one, in time order).

    ``on_session(doc)`` is called for every reported session: in order of ending, or,
    with ``ordered``, in id order through a reorder buffer of at most ``REORDER_MAX``
    sessions (past that, the lowest ids go out first, so memory stays bounded by open
    sessions, not by the file). ``keep_sessions`` collects them in the report as well.
    ``progress(bytes)`` is called after every batch.
    """

    REORDER_MAX = 10_000

    def __init__(self, paths: list[str], opts: Options,
                 on_session: Optional[Callable[[dict[str, Any]], None]] = None,
                 progress: Optional[Callable[[int], None]] = None,
                 keep_sessions: bool = True, ordered: bool = True,
                 trace_ids: frozenset[int] = frozenset(), readahead: bool = True,
                 trace_frames: frozenset[int] = frozenset()) -> None:
        self.paths = paths
        # big inputs: read and decode on a second core (PUSHSCAN_READAHEAD=0: not)
        self.readahead = readahead and os.environ.get("PUSHSCAN_READAHEAD", "1") != "0"
        self.trace_ids = trace_ids           # sessions recorded packet by packet: by id, or
        self.trace_frames = trace_frames     # by first frame (the fast lane takes the others)
        self.traced: dict[int, tuple[Session, dict[str, Any]]] = {}   # id -> (session, doc)
        self.opts = opts
        self.on_session = on_session
        self.progress = progress
        self.keep_sessions = keep_sessions
        self.ordered = ordered
        self.sessions: list[dict[str, Any]] = []
        self.inputs: list[dict[str, Any]] = []
        self.unreadable: list[InputError] = []
        self.starts: Optional[list[int]] = None   # with a shard: its sessions' first frames
        self.tally = Tally()
        self.unselected = 0                  # sessions the selection (--host, ...) left out
        self._heap: list[tuple[int, Optional[dict[str, Any]]]] = []
        self._next_id = 0
        self._built: Optional[bool] = None   # the fast lane's kernels are built (compiled.ready)
        self.lane: Any = None                # the fast lane (tcp.lane.FastLane), once attached

    def _ended(self, s: Session) -> None:
        doc = None
        if smtp_of(s.app) is not None or self.opts.all_tcp:
            sel = self.opts.select
            if not sel:
                doc = session_document(s, self.paths)
            else:
                self.unselected += 1
                if sel.before_findings(s.id, (_end(s, s.client_dir), _end(s, s.client_dir ^ 1))):
                    doc = session_document(s, self.paths)
                    if not sel.matches(doc):
                        doc = None
                if doc is not None:
                    self.unselected -= 1
        self.tally.ended(s, doc)
        if s.trace is not None:
            self.traced[s.id] = (s, doc or session_document(s, self.paths))
        if not self.ordered:
            if doc is not None:
                self._emit(doc)
            return
        heapq.heappush(self._heap, (s.id, doc))
        self._release(force=False)

    def _release(self, force: bool) -> None:
        heap = self._heap
        while heap and (force or heap[0][0] <= self._next_id or len(heap) > self.REORDER_MAX):
            sid, doc = heapq.heappop(heap)
            self._next_id = max(self._next_id, sid + 1)
            if doc is not None:
                self._emit(doc)

    def _emit(self, doc: dict[str, Any]) -> None:
        if self.keep_sessions:
            self.sessions.append(doc)
        if self.on_session is not None:
            self.on_session(doc)

    def run(self) -> dict[str, Any]:
        """Read every input, in order, and return the report (sessions only if kept).

        The cyclic garbage collector is paused meanwhile: pushscan's objects form no
        reference cycles, and with a million sessions open its scans cost more than the
        analysis itself (3x on a SYN flood)."""
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._run()
        finally:
            if collecting:
                gc.enable()

    # Inputs that take the fast lane: once this many packets were read, or files this
    # big from the start. With the kernels built ahead of time it costs nothing to start
    # and is faster from a few thousand packets on (10k packets: 0.12 s against 0.15 s;
    # 100k: 0.20 s against 0.60 s); otherwise starting it means building them (10 s,
    # once) or numba's JIT (0.3 s and 110 MB on each run), worth it for big inputs only.
    FAST_AFTER, FAST_BYTES = 200_000, 64 << 20
    FAST_AFTER_BUILT, FAST_BYTES_BUILT = 20_000, 4 << 20

    def _fast_lane(self, tracker: Tracker, engine: Any, path: str, opening: bool) -> bool:
        """Attach the compiled fast lane (tracker kernel and decoder) once the input
        proves big (its file size, looked at on ``opening``; or its packet count), or if
        asked; True if the native engine runs compiled now."""
        if engine.name != "native" or self.trace_ids:
            return False
        if self.lane is not None:
            engine.fast = True
            return True
        fast = self.opts.fast
        if fast is None:
            env = os.environ.get("PUSHSCAN_FASTLANE")
            fast = None if env is None else env not in ("0", "", "no")
        if fast is None:
            if self._built is None:
                from ..compiled import ready
                self._built = ready()
            after, size = (self.FAST_AFTER_BUILT, self.FAST_BYTES_BUILT) if self._built \
                else (self.FAST_AFTER, self.FAST_BYTES)
            big = engine.packets >= after
            if not big and opening and path != "-":
                try:
                    big = os.path.getsize(path) >= size
                except OSError:
                    big = False
            fast = big or None
        if not fast:
            return False
        from ..compiled import available
        if not available():
            return False
        from ..tcp.lane import FastLane   # loaded only when a big input needs it
        self.lane = FastLane(tracker)
        engine.fast = True
        return True

    def _run(self) -> dict[str, Any]:
        tracker = make_tracker(self.opts, self._ended, self.trace_ids, trace_frames=self.trace_frames)
        shard = Shard(*self.opts.shard) if self.opts.shard is not None else None
        frame0 = 0
        for index, path in enumerate(self.paths):
            info: dict[str, Any] = {"path": path, "format": None, "link_types": [],
                                    "packets": 0, "first_frame": frame0 + 1, "errors": []}
            self.inputs.append(info)
            try:
                engine, closer = open_engine(path, self.opts.engine)
            except InputError as exc:
                info["errors"].append(exc.problem)
                self.unreadable.append(exc)
                continue
            info["format"] = engine.format
            info["engine"] = engine.name
            stats = DecodeStats()
            done = 0
            batches: Any = None
            try:
                fast = self._fast_lane(tracker, engine, path, opening=True)
                batches = engine.batches(frame0, stats)
                if fast and self.readahead:   # read and decode ahead on another core
                    batches = prefetch(batches)
                while (item := next(batches, None)) is not None:
                    batch, frames = item
                    frame0 += frames
                    if not fast:
                        fast = self._fast_lane(tracker, engine, path, opening=False)
                        if fast and self.readahead:   # proven big while read (a pipe)
                            batches = prefetch(batches)
                    if shard is not None:
                        batch = select(batch, shard)
                    (self.lane or tracker).feed(batch, index)
                    if self.progress is not None:
                        self.progress(engine.bytes_read - done)
                        done = engine.bytes_read
            except CaptureDamaged as exc:
                info["errors"].append(str(exc))
            except MemoryError:
                info["errors"].append("out of memory while reading; the rest was skipped")
            finally:
                if hasattr(batches, "close"):
                    batches.close()   # a read-ahead thread stops before its file closes
                closer()
            info["packets"] = engine.packets
            back, largest, first = getattr(engine, "clock_back", (0, 0, 0))
            if back:     # a clock step: durations across it are unknown (and never negative)
                info["clock_went_back"] = {"packets": back, "largest_seconds": round(largest / 1e9, 6),
                                           "first_frame": info["first_frame"] + first - 1}
            info["link_types"] = [linktype_name(lt) for lt in sorted(engine.link_types)]
            info["decode"] = {"tcp_segments": stats.tcp_segments, "not_ip": stats.not_ip,
                              "not_tcp": stats.not_tcp, "fragments": stats.fragments,
                              "malformed": stats.malformed,
                              "unsupported_link_type": stats.unsupported_link,
                              "snaplen_cut": stats.snaplen_cut, "icmp_errors": stats.icmp_errors,
                              "wlan_control": stats.wlan_control,
                              "wlan_protected": stats.wlan_protected, "tunneled": stats.tunneled}
        (self.lane or tracker).finish()
        self.starts = tracker.starts
        self._release(force=True)
        return {
            "schema": SCHEMA,
            "pushscan_version": __version__,
            "engine": self.opts.engine,
            "inputs": self.inputs,
            "sessions": self.sessions,
            "summary": self.tally.summary(tracker, self.opts.select, self.unselected),
        }

    def run_or_raise(self) -> dict[str, Any]:
        """``run``, but raise the first ``InputError`` when no input could be read."""
        report = self.run()
        if self.unreadable and len(self.unreadable) == len(self.paths):
            raise self.unreadable[0]
        return report


def captures(paths: list[str], opts: Options) -> tuple[list[Group], list[str]]:
    """The captures among ``paths`` (``grouping``): each file alone with ``separate``, all
    in time order with ``merge``, else the ring sets they form; and why files named
    together were not joined."""
    if opts.separate:
        return [Group((p,), "file") for p in paths], []
    if opts.merge or len(paths) < 2:
        ordered = tuple(time_order(list(paths)))
        return [Group(ordered, "merged" if len(ordered) > 1 else "file")], []
    return ring_sets(list(paths))


def one_capture(paths: list[str], opts: Options, merge_hint: str = "use --merge") -> list[str]:
    """``paths`` in time order, when they are one capture (or ``opts.merge``); else
    ``UsageError`` saying why not (for commands that follow one capture's sessions)."""
    if len(paths) > 1 and not opts.merge:
        found, why = captures(paths, opts)
        placed = [g for g in found if g.how != "unplaced"]
        if len(placed) > 1:
            raise UsageError(f"these files are {len(placed)} captures, not one ({'; '.join(why)}): "
                             f"name one capture's files, or {merge_hint} to read them as one")
    return time_order(list(paths))


def groups(paths: list[str], opts: Options) -> list[list[str]]:
    """The analyses to run: the files of each capture (``captures``)."""
    return [list(g.paths) for g in captures(paths, opts)[0]]
