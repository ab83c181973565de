"""Live capture: a capture program filters in the kernel and writes to a pipe that the
native reader consumes.

``dumpcap`` (any number of interfaces, pcapng with kernel-drop statistics) is preferred;
``tcpdump`` (one interface, pcap) comes next; ``Sniffer`` captures in a Python thread with
scapy, or with pyshark under ``--engine tshark``. The bytes read from the pipe can be
copied to a file as they are read (``--write``), so the file holds exactly what was
analysed.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import threading
from typing import Any, BinaryIO, Optional

from ..errors import PushscanError, UsageError
from .lifeline import GRACE_S, guarded

EXIT_CAPTURE = 4


class CaptureError(PushscanError):
    """The capture could not start: permission, interface, program (exit code 4)."""

    exit_code = EXIT_CAPTURE


PERMISSION = ("no permission to capture on {ifaces}: capturing needs the CAP_NET_RAW and "
              "CAP_NET_ADMIN capabilities (run as root, or: setcap cap_net_raw,cap_net_admin+eip "
              "$(which {prog}))")


def known_failure(text: str, ifaces: list[str], prog: str, bpf: Optional[str] = None) -> Optional[PushscanError]:
    """The capture failures a user can act on, recognised in a program's or library's
    error text: no permission (exit 4, naming the capabilities), unknown interface (2),
    a capture filter the program refused (2, with the program's reason)."""
    if re.search(r"permission|not permitted", text, re.I):
        return CaptureError(PERMISSION.format(ifaces=", ".join(ifaces), prog=prog))
    m = re.search(r'no device named "?([^".\s]+)|device "([^"]+)" \(No such device|'
                  r"(\S+): No such device exists", text)
    if m or re.search(r"No such device|no device", text, re.I):
        name = next((g for g in (m.groups() if m else ()) if g), ", ".join(ifaces))
        return UsageError(f"unknown interface {name} (ip link shows the interfaces)")
    if bpf is not None:
        why = _filter_complaint(text)
        if why is not None:
            return UsageError(f"invalid capture filter '{bpf}': {why} ({prog})")
    return None


def _filter_complaint(text: str) -> Optional[str]:
    """What a capture program said about the capture filter it refused, or None."""
    m = re.search(r"isn't a valid capture filter \((.+?)\)\.?$", text, re.M)   # dumpcap
    if m:
        return m.group(1)
    if "Invalid capture filter" in text:
        return next((x.strip() for x in text.splitlines()[1:] if x.strip()), "refused")
    m = re.search(r"^(?:tcpdump: )?((?:syntax error|parse error|unknown (?:port|host|proto|"
                  r"protocol|network|ether host)|illegal|expression rejects|can't parse filter)"
                  r".*)$", text, re.M)
    return m.group(1).strip() if m else None


def choose_backend(ifaces: list[str], backend: str = "auto", engine: str = "native") -> str:
    """The capture path: ``tshark`` (pyshark) under ``--engine tshark``; otherwise the
    backend asked for, or with ``auto`` dumpcap, else tcpdump (one interface), else
    scapy's sniffer."""
    if engine == "tshark":
        return "tshark"
    if backend == "auto":
        if shutil.which("dumpcap"):
            return "dumpcap"
        if shutil.which("tcpdump") and len(ifaces) == 1:
            return "tcpdump"
        return "scapy"
    if backend == "tcpdump" and len(ifaces) > 1:
        raise UsageError("tcpdump captures one interface at a time; for several -i use dumpcap "
                         "(apt-get install wireshark-common)")
    if backend in ("dumpcap", "tcpdump") and shutil.which(backend) is None:
        raise UsageError(f"{backend} is not installed")
    return backend


class Tee:
    """Reads from ``raw`` and copies every byte read to ``out``."""

    def __init__(self, raw: BinaryIO, out: BinaryIO) -> None:
        self.raw = raw
        self.out = out

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        if data:
            self.out.write(data)
        return data


class CaptureProcess:
    """A running capture program whose standard output is a pcap/pcapng stream. It runs
    under ``lifeline``'s guard, so that it never outlives pushscan; ``close`` (also on
    leaving a ``with`` block) ends it on every way out."""

    def __init__(self, ifaces: list[str], bpf: str, count: Optional[int], prog: str) -> None:
        self.ifaces = ifaces
        self.prog = prog
        self.bpf = bpf
        if self.prog == "dumpcap":
            argv = ["dumpcap", "-q", "-w", "-", "-f", bpf]
            for i in ifaces:
                argv += ["-i", i]
            if count:
                argv += ["-c", str(count)]
        else:
            argv = ["tcpdump", "-i", ifaces[0], "-U", "--immediate-mode", "-s", "0", "-w", "-"]
            if count:
                argv += ["-c", str(count)]
            argv.append(bpf)
        self.argv = argv
        self.stop_asked = False
        self.proc = subprocess.Popen(guarded(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, bufsize=0, start_new_session=True)
        self.stderr_lines: list[str] = []
        self._err_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self._err_thread.start()

    @property
    def stdout(self) -> Any:
        return self.proc.stdout

    @property
    def pid(self) -> int:
        """The guard's process id (the program runs as its child)."""
        return self.proc.pid

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line.decode("utf-8", "replace").rstrip())

    def _signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        """Ask the program to finish (it flushes and, for dumpcap, writes statistics)."""
        self.stop_asked = True
        self._signal(signal.SIGINT)

    def wait(self, timeout: float = 10) -> int:
        """Wait for the program to end; past ``timeout``, end it (SIGTERM, then SIGKILL)."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGTERM)          # the guard ends the program's group
            try:
                return self.proc.wait(timeout=GRACE_S + 2)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                return self.proc.wait()
        finally:
            self._err_thread.join(timeout=2)

    def close(self) -> None:
        """End the program now if it still runs (every way out of ``live``)."""
        if self.proc.poll() is None:
            self.stop()
            self.wait(timeout=2)

    def __enter__(self) -> "CaptureProcess":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def failure(self) -> Optional[PushscanError]:
        """Why the program failed to capture, from what it printed, or None."""
        known = known_failure("\n".join(self.stderr_lines), self.ifaces, self.prog, self.bpf)
        if known is not None:
            return known
        died = self.died()
        return None if died is None else CaptureError(f"{self.prog} failed ({died})")

    def died(self) -> Optional[str]:
        """How the program ended if it was not by pushscan's stop request, nor by
        itself with success (``--count`` reached): ``killed by SIGKILL``, ``exit code
        2: <its last words>``; None if it ended normally or still runs."""
        code = self.proc.returncode
        if code is None or code == 0:
            return None
        if self.stop_asked and code in (128 + signal.SIGINT, 128 + signal.SIGTERM):
            return None              # stopped as asked (or ended after the grace time)
        if code > 128 and code - 128 in signal.valid_signals():
            return f"killed by {signal.Signals(code - 128).name}"
        noise = ("Capturing on", "File:", "Packets", "tcpdump: listening", "listening on")
        lines = [x for x in self.stderr_lines if x.strip() and not x.lstrip().startswith(noise)
                 and "packets" not in x]
        return f"exit code {code}" + (f": {lines[-1]}" if lines else "")

    def kernel_drops(self) -> Optional[int]:
        """Drops tcpdump reported on exit (dumpcap's come in the pcapng statistics)."""
        for line in self.stderr_lines:
            m = re.match(r"(\d+) packets? dropped by kernel", line)
            if m:
                return int(m.group(1))
        return None


class Sniffer:
    """Capture in a Python thread, for hosts without dumpcap and tcpdump (scapy's
    sniffer) or with ``--engine tshark`` (pyshark's LiveCapture over tshark). Produces
    segment batches itself, every ``FLUSH_S`` seconds; kernel drops are not known."""

    FLUSH_S = 0.25

    def __init__(self, kind: str, ifaces: list[str], bpf: str, count: Optional[int],
                 write: Optional[str]) -> None:
        from ..model import DecodeStats
        self.kind = kind
        self.prog = "scapy" if kind == "scapy" else "tshark (pyshark)"
        self.ifaces, self.bpf, self.count, self.write = ifaces, bpf, count, write
        self.stats = DecodeStats()
        self.packets = 0
        self.link_types: dict[int, int] = {}
        self.error: Optional[PushscanError] = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._cap: Any = None
        from .builder import SegmentBuilder
        self._out = SegmentBuilder()
        self._last_ts = 0

    def _add(self, pkt: Any) -> None:
        from .scapy_engine import scapy_segments
        from .tshark_engine import tshark_segments
        with self._lock:
            self.packets += 1
            if self.kind == "scapy":
                scapy_segments(pkt, self.packets, self.stats, self._out)
            else:
                self._last_ts = tshark_segments(pkt, self.packets, self.stats, self._out,
                                                self.link_types, self._last_ts)

    def take(self) -> Any:
        with self._lock:
            if not len(self._out) and not self._out.icmp:
                return None
            return self._out.take()

    def run(self) -> None:
        """Capture until stopped, the count is reached, or the capture fails."""
        try:
            if self.kind == "scapy":
                self._run_scapy()
            else:
                self._run_pyshark()
        except Exception as exc:   # OSError, or the capture library's own exceptions
            if not self._stop.is_set() or isinstance(exc, OSError):
                text = f"{exc}" + (" permission denied" if isinstance(exc, PermissionError) else "") + \
                    (" No such device" if getattr(exc, "errno", None) == 19 else "")
                lines = text.strip().splitlines()
                self.error = known_failure(text, self.ifaces, "python" if self.kind == "scapy" else "tshark") \
                    or CaptureError(f"{self.prog} failed: {lines[-1] if lines else type(exc).__name__}")

    def _run_scapy(self) -> None:
        from scapy.sendrecv import AsyncSniffer
        from scapy.utils import PcapWriter

        from .scapy_engine import load_layers
        load_layers()
        writer = PcapWriter(self.write, sync=True) if self.write else None

        def prn(pkt: Any) -> None:
            if writer is not None:
                writer.write(pkt)
            self._add(pkt)

        sniffer = AsyncSniffer(iface=self.ifaces if len(self.ifaces) > 1 else self.ifaces[0],
                               filter=self.bpf, prn=prn, store=False, count=self.count or 0)
        sniffer.start()
        while not self._stop.wait(0.1):
            if not sniffer.running:
                break
            failed = getattr(sniffer, "exception", None)
            if isinstance(failed, BaseException):
                raise failed
        if sniffer.running:
            sniffer.stop()
        sniffer.join()
        if writer is not None:
            writer.close()

    def _run_pyshark(self) -> None:
        import asyncio

        import pyshark

        from .tshark_engine import PARAMETERS, PREFERENCES, close_quietly
        asyncio.set_event_loop(asyncio.new_event_loop())
        self._cap = pyshark.LiveCapture(
            interface=self.ifaces, bpf_filter=self.bpf, use_json=False, include_raw=False,
            output_file=self.write, custom_parameters=["-l", *PARAMETERS], override_prefs=PREFERENCES)
        try:
            for pkt in self._cap.sniff_continuously(packet_count=self.count or None):
                self._add(pkt)
                if self._stop.is_set():
                    break
        finally:
            close_quietly(self._cap)

    def stop(self) -> None:
        self._stop.set()
        if self._cap is not None:
            for proc in list(getattr(self._cap, "_running_processes", ())):
                try:
                    proc.terminate()
                except ProcessLookupError:
                    pass

    def kernel_drops(self) -> Optional[int]:
        return None
