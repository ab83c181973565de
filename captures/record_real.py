"""Record real SMTP sessions over loopback: aiosmtpd (server) and swaks / smtplib
(clients), captured by tcpdump. Writes captures/real_*.pcap. Needs root (tcpdump).
Marker UDP datagrams (port 9) bracket each session, so that no packet is missed on a
slow machine; the analysis counts them as not TCP.

    python captures/record_real.py [OUTDIR]
"""
from __future__ import annotations

import re
import smtplib
import socket
import subprocess
import sys
import time
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink


MARK_PORT = 9          # UDP "discard": marker datagrams, in the capture filter too
PCAP_HEADER = 24


def _marked(path: Path, timeout: float = 60.0) -> None:
    """Send marker datagrams until one is in the capture file (tcpdump -U writes each
    packet as it comes): then tcpdump is capturing, and everything sent before the
    marker was written. No sleeping on luck, however slow the machine."""
    start = path.stat().st_size if path.exists() else 0
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
        while time.monotonic() < deadline:
            u.sendto(b"pushscan-mark", ("127.0.0.1", MARK_PORT))
            time.sleep(0.05)
            if path.exists() and path.stat().st_size > max(start, PCAP_HEADER):
                return
    raise RuntimeError(f"tcpdump wrote no packet to {path} in {timeout:g} s")


def _capture(path: Path, iface: str, bpf: str) -> subprocess.Popen[bytes]:
    p = subprocess.Popen(["tcpdump", "-i", iface, "--immediate-mode", "-U", "-s", "0", "-B", "32768",
                          "-w", str(path), f"({bpf}) or (udp port {MARK_PORT})"],
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    # wait until tcpdump says it is listening, then until it really captures
    assert p.stderr is not None
    line = p.stderr.readline().decode()
    if "listening" not in line:
        raise RuntimeError(f"tcpdump did not start: {line}")
    _marked(path)
    return p


def _stop(p: subprocess.Popen[bytes], path: Path) -> int:
    """Stop tcpdump once the session's last packets are written (they come before the
    marker); returns the packets the kernel dropped, as tcpdump counts them."""
    _marked(path)
    p.terminate()
    _, err = p.communicate(timeout=10)
    m = re.search(rb"(\d+) packets? dropped by kernel", err or b"")
    return int(m.group(1)) if m else 0


DROPPED: dict[Path, int] = {}   # packets tcpdump's kernel buffer dropped, per recording


def record(out: Path, port: int = 2525) -> list[Path]:
    ctl = Controller(Sink(), hostname="127.0.0.1", port=port)
    ctl.start()
    made = []
    try:
        # 1. swaks: a plain session with one message
        f = out / "real_swaks.pcap"
        cap = _capture(f, "lo", f"tcp port {port}")
        subprocess.run(["swaks", "--server", f"127.0.0.1:{port}", "--to", "rcpt@example.org",
                        "--from", "sender@example.com", "--body", "hello from swaks\n" * 20,
                        "--hide-all"], check=True, timeout=60)
        DROPPED[f] = _stop(cap, f)
        made.append(f)
        # 2. smtplib: two messages in one session, PIPELINING and a larger body
        f = out / "real_smtplib_pipelining.pcap"
        cap = _capture(f, "lo", f"tcp port {port}")
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as c:
            c.ehlo("client.example.com")
            body = ("Subject: test\r\n\r\n" + "x" * 70 + "\r\n") * 300
            c.sendmail("a@example.com", ["b@example.org", "c@example.org"], body)
            c.sendmail("a@example.com", ["d@example.org"], "Subject: two\r\n\r\nshort\r\n")
            c.rset()
        DROPPED[f] = _stop(cap, f)
        made.append(f)
    finally:
        ctl.stop()
    return made


if __name__ == "__main__":
    outdir = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent)
    for p in record(outdir):
        print(p)
