"""``pushscan live``: watch interfaces and report sessions as they end.

The capture program (``sources/capture_program.py``) writes to a pipe; a reader thread turns it into
segment batches; the main thread feeds the same tracker ``analyze`` uses, and between
packets lets wall-clock time end closed and idle sessions. Ctrl-C or SIGTERM stop the
capture program, which flushes; every session still open is then reported as ``open``.
"""
from __future__ import annotations

import queue
import signal
import threading
import time
from typing import Any, Callable, Optional, TextIO

from ..decode import decode, linktype_name
from ..errors import CaptureDamaged, OutputError, PushscanError
from ..model import DecodeStats
from ..report.output import Output
from ..report.document import SCHEMA, Tally, session_document
from ..smtp import SMTP_PORTS, smtp_of
from ..sources.capture import CaptureReader
from ..sources.capture_program import CaptureError, CaptureProcess, Sniffer, Tee, choose_backend
from ..tcp.session import Session
from ..version import __version__
from .options import Options
from .run import make_tracker

LIVE_LINGER_NS = 2 * 1_000_000_000   # a closed session is reported 2 s after its close
# How far packets may lag behind the wall clock on their way to us: time that has not yet
# reached the capture is not used to end sessions. pyshark hands over a packet only when the
# next one arrives, so with it (None) only the capture's own clock ends sessions.
LATENCY_NS: dict[str, Optional[int]] = {"dumpcap": 500_000_000, "tcpdump": 500_000_000,
                                        "scapy": 1_000_000_000, "tshark": None}


def default_bpf(ports: tuple[int, ...]) -> str:
    """The SMTP ports (and any --smtp-port) as a capture filter."""
    return " or ".join(f"tcp port {p}" for p in sorted(set(SMTP_PORTS) | set(ports)))


class Monitor:
    """One live capture. ``on_session(doc)`` gets each session as it ends."""

    def __init__(self, ifaces: list[str], opts: Options, bpf: Optional[str] = None,
                 duration: Optional[float] = None, count: Optional[int] = None,
                 write: Optional[str] = None, idle_timeout: Optional[float] = 300.0,
                 on_session: Optional[Callable[[dict[str, Any]], None]] = None,
                 status: Optional[TextIO] = None, backend: str = "auto",
                 engine: str = "native") -> None:
        self.backend = backend
        self.engine = engine
        self.ifaces = ifaces
        self.opts = opts
        self.bpf = bpf or default_bpf(opts.ports)
        self.duration = duration
        self.count = count
        self.write = write
        self.idle_ns = int(idle_timeout * 1e9) if idle_timeout else None
        self.on_session = on_session
        self.status = status
        self.name = "live:" + ",".join(ifaces)
        self.stats = DecodeStats()
        self.reader: Optional[CaptureReader] = None
        self.errors: list[str] = []
        # what went wrong after the capture started, said after what was seen is reported
        self.error: Optional[PushscanError] = None
        self._stop = threading.Event()
        self.tally = Tally()
        self._tracker: Any = None

    # -- session end --------------------------------------------------------------------
    def _ended(self, s: Session) -> None:
        doc = session_document(s, [self.name]) if smtp_of(s.app) is not None or self.opts.all_tcp else None
        self.tally.ended(s, doc)
        if doc is not None and self.on_session is not None:
            self.on_session(doc)

    # -- the capture --------------------------------------------------------------------
    def _read(self, raw: Any, q: "queue.Queue[Any]") -> None:
        try:
            self.reader = CaptureReader(raw, self.name)
            frame0 = 0
            for rb in self.reader.batches():
                q.put(decode(rb, frame0, self.stats))
                frame0 += len(rb)
        except ValueError as exc:       # nothing or no capture came out of the pipe
            if str(exc) not in ("empty file",):
                self.errors.append(str(exc))
        except CaptureDamaged as exc:
            self.errors.append(str(exc))
        except OutputError as exc:      # --write failed (a full disk): stop capturing
            self.error = exc
            self._stop.set()
        finally:
            q.put(None)

    def request_stop(self, *_: Any) -> None:
        self._stop.set()

    def run(self) -> dict[str, Any]:
        kind = choose_backend(self.ifaces, self.backend, self.engine)
        if kind in ("dumpcap", "tcpdump"):
            return self._run_pipe(kind)
        return self._run_sniffer(kind)

    def _loop(self, tracker: Any, get: Callable[[], Any], stop_capture: Callable[[], None],
              packets: Callable[[], int], latency_ns: Optional[int]) -> None:
        """Feed batches as they come; let wall-clock time end sessions; stop on request."""
        deadline = time.monotonic() + self.duration if self.duration else None
        stopping = False
        last_status = 0.0
        while True:
            batch = get()
            if batch is None:
                break
            if batch is not False:
                tracker.feed(batch)
            if latency_ns is not None:
                tracker.tick(time.time_ns() - latency_ns, self.idle_ns)
            elif batch is not False:
                tracker.tick(tracker.now, self.idle_ns)
            if not stopping and (self._stop.is_set() or (deadline and time.monotonic() >= deadline)):
                stopping = True
                stop_capture()
            if self.status is not None and time.monotonic() - last_status > 0.5:
                last_status = time.monotonic()
                self.status.write(f"\rpackets {packets()}  open sessions {len(tracker.table)}  "
                                  f"reported {self.tally.sessions}  ")
                self.status.flush()
        if self.status is not None:
            self.status.write("\n")

    def _run_pipe(self, prog: str) -> dict[str, Any]:
        # the --write file is created before the capture starts: a missing directory or a
        # read-only file system is said at once, and no capture program is left behind
        out = Output(self.write, binary=True) if self.write else None
        try:
            with CaptureProcess(self.ifaces, self.bpf, self.count, prog) as proc:
                rep = self._pipe(proc, out)
        except BaseException:
            if out is not None:
                out.abort()
            raise
        return rep

    def _pipe(self, proc: CaptureProcess, out: Optional[Output]) -> dict[str, Any]:
        prog = proc.prog
        raw: Any = proc.stdout if out is None else Tee(proc.stdout, out.stream)
        q: "queue.Queue[Any]" = queue.Queue(maxsize=64)
        reader = threading.Thread(target=self._read, args=(raw, q), daemon=True)
        reader.start()
        tracker = self._tracker = make_tracker(self.opts, self._ended, linger_ns=LIVE_LINGER_NS)

        def get() -> Any:
            try:
                return q.get(timeout=0.25)
            except queue.Empty:
                return False

        try:
            self._loop(tracker, get, proc.stop, lambda: self.reader.packets if self.reader else 0,
                       LATENCY_NS[prog])
        finally:
            proc.stop()
            proc.wait()
            reader.join(timeout=5)
            tracker.finish()
        r = self.reader
        packets = r.packets if r else 0
        failure = proc.failure() if not packets else None
        if failure is not None:
            raise failure
        if self.error is not None:      # --write failed: nothing partial is kept
            if out is not None:
                out.abort()
        else:
            died = proc.died()
            if died is not None:
                self.error = CaptureError(f"{prog} stopped unexpectedly ({died}); the {packets} "
                                          "packets it captured were analysed")
                self.errors.append(f"{prog} stopped unexpectedly ({died})")
            if out is not None:
                out.commit()            # what was seen is kept, even after a capture died
        drops = sum(r.drops.values()) if r and r.drops else proc.kernel_drops()
        return self._report(prog, r.format if r else None, r.link_types if r else {},
                            packets, drops, tracker)

    def _run_sniffer(self, kind: str) -> dict[str, Any]:
        out = Output(self.write, binary=True) if self.write else None
        try:
            rep = self._sniff(kind, out.tmp or out.path if out is not None else None)
        except BaseException:
            if out is not None:
                out.abort()
            raise
        if out is not None:
            out.commit()
        return rep

    def _sniff(self, kind: str, write: Optional[str]) -> dict[str, Any]:
        sn = Sniffer(kind, self.ifaces, self.bpf, self.count, write)
        self.stats = sn.stats
        thread = threading.Thread(target=sn.run, daemon=True)
        thread.start()
        tracker = self._tracker = make_tracker(self.opts, self._ended, linger_ns=LIVE_LINGER_NS)

        def get() -> Any:
            if not thread.is_alive():
                return sn.take()     # the rest, then None
            time.sleep(Sniffer.FLUSH_S)
            return sn.take() or False

        try:
            self._loop(tracker, get, sn.stop, lambda: sn.packets, LATENCY_NS[kind])
        finally:
            sn.stop()
            thread.join(timeout=10)
            rest = sn.take()
            if rest is not None:
                tracker.feed(rest)
            tracker.finish()
        if sn.error is not None:
            raise sn.error
        return self._report(sn.prog, "live", sn.link_types, sn.packets, None, tracker)

    def _report(self, prog: str, fmt: Optional[str], link_types: dict[int, int], packets: int,
                drops: Optional[int], tracker: Any) -> dict[str, Any]:
        return {
            "schema": SCHEMA, "pushscan_version": __version__, "engine": self.engine,
            "inputs": [{"path": self.name, "format": fmt,
                        "link_types": [linktype_name(t) for t in sorted(link_types)],
                        "packets": packets, "first_frame": 1, "errors": self.errors,
                        "capture_program": prog, "filter": self.bpf, "kernel_drops": drops}],
            "sessions": [],
            "summary": {**self.tally.summary(tracker), "kernel_drops": drops},
        }


def install_stop_signals(monitor: Monitor) -> None:
    """Ctrl-C, SIGTERM and SIGHUP stop the capture cleanly instead of interrupting
    mid-packet."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, monitor.request_stop)


def session_line(doc: dict[str, Any]) -> str:
    """One human line for a session that just ended, plus its findings."""
    c, s = doc["client"], doc["server"]
    head = (f"{time.strftime('%H:%M:%S')} session {doc['id']} {c['ip']}:{c['port']} -> {s['ip']}:{s['port']} "
            f"{doc['close']}: {doc['verdict']}")
    lines = [head] + [f"    {f['severity']} {f['code']}: {f['message']}" for f in doc["findings"]]
    return "\n".join(lines) + "\n"
