"""Live capture: a capture program filters in the kernel and writes to a pipe that the
native reader consumes.

``dumpcap`` (any number of interfaces, pcapng with kernel-drop statistics) is preferred;
``tcpdump`` (one interface, pcap) is the fallback. The bytes read from the pipe can be
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

EXIT_CAPTURE = 4


class CaptureError(PushscanError):
    """The capture could not start: permission, interface, program (exit code 4)."""

    exit_code = EXIT_CAPTURE


PERMISSION = ("no permission to capture on {ifaces}: capturing needs the CAP_NET_RAW and "
              "CAP_NET_ADMIN capabilities (run as root, or: setcap cap_net_raw,cap_net_admin+eip "
              "$(which {prog}))")


def backend_program(ifaces: list[str]) -> str:
    """The capture program to use, or a UsageError saying what to install."""
    if shutil.which("dumpcap"):
        return "dumpcap"
    if shutil.which("tcpdump"):
        if len(ifaces) > 1:
            raise UsageError("tcpdump captures one interface at a time; for several -i install "
                             "dumpcap: apt-get install wireshark-common")
        return "tcpdump"
    raise UsageError("live capture needs dumpcap or tcpdump: apt-get install tcpdump "
                     "(or wireshark-common for dumpcap)")


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
    """A running capture program whose standard output is a pcap/pcapng stream."""

    def __init__(self, ifaces: list[str], bpf: str, count: Optional[int] = None) -> None:
        self.ifaces = ifaces
        self.prog = backend_program(ifaces)
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
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL, bufsize=0, start_new_session=True)
        self.stderr_lines: list[str] = []
        self._err_thread = threading.Thread(target=self._drain_stderr, daemon=True)
        self._err_thread.start()

    @property
    def stdout(self) -> Any:
        return self.proc.stdout

    def _drain_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line.decode("utf-8", "replace").rstrip())

    def stop(self) -> None:
        """Ask the program to finish (it flushes and, for dumpcap, writes statistics)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
            except ProcessLookupError:
                pass

    def wait(self, timeout: float = 10) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self._err_thread.join(timeout=2)

    def failure(self) -> Optional[PushscanError]:
        """Why the program failed to capture, from what it printed, or None."""
        text = "\n".join(self.stderr_lines)
        ifaces = ", ".join(self.ifaces)
        if re.search(r"permission|Operation not permitted|not permitted", text, re.I):
            return CaptureError(PERMISSION.format(ifaces=ifaces, prog=self.prog))
        m = re.search(r'no device named "?([^".\s]+)|device "([^"]+)" \(No such device|'
                      r"(\S+): No such device exists|SIOCGIFHWADDR: No such device", text)
        if m or "No such device" in text:
            name = next((g for g in (m.groups() if m else ()) if g), ifaces)
            return UsageError(f"unknown interface {name} (ip link shows the interfaces)")
        if self.proc.returncode in (0, None, -signal.SIGINT, 128 + signal.SIGINT):
            return None   # stopped as asked, or still running
        noise = ("Capturing on", "File:", "Packets", "tcpdump: listening", "listening on")
        lines = [x for x in self.stderr_lines if x.strip() and not x.lstrip().startswith(noise)
                 and "packets" not in x]
        return CaptureError(f"{self.prog} failed (exit code {self.proc.returncode})"
                            + (f": {lines[-1]}" if lines else ""))

    def kernel_drops(self) -> Optional[int]:
        """Drops tcpdump reported on exit (dumpcap's come in the pcapng statistics)."""
        for line in self.stderr_lines:
            m = re.match(r"(\d+) packets? dropped by kernel", line)
            if m:
                return int(m.group(1))
        return None
