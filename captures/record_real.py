"""Record real SMTP sessions over loopback: aiosmtpd (server) and swaks / smtplib
(clients), captured by tcpdump. Writes captures/real_*.pcap. Needs root (tcpdump).

    python captures/record_real.py [OUTDIR]
"""
from __future__ import annotations

import smtplib
import subprocess
import sys
import time
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Sink


def _capture(path: Path, iface: str, bpf: str) -> subprocess.Popen[bytes]:
    p = subprocess.Popen(["tcpdump", "-i", iface, "--immediate-mode", "-U", "-s", "0",
                          "-w", str(path), bpf],
                         stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    # wait until tcpdump says it is listening
    assert p.stderr is not None
    line = p.stderr.readline().decode()
    if "listening" not in line:
        raise RuntimeError(f"tcpdump did not start: {line}")
    time.sleep(1.0)  # "listening" comes before the socket is attached
    return p


def _stop(p: subprocess.Popen[bytes]) -> None:
    time.sleep(1.0)  # let the last packets through before stopping
    p.terminate()
    p.wait(timeout=10)


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
        _stop(cap)
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
        _stop(cap)
        made.append(f)
    finally:
        ctl.stop()
    return made


if __name__ == "__main__":
    outdir = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent)
    for p in record(outdir):
        print(p)
