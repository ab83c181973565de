"""One style for durations and sizes, and a clock that steps back never shows a negative
duration: the message says the clock went backwards, the JSON seconds are null."""
from __future__ import annotations

import json
import subprocess
import sys

from pushscan.findings.numbers import BACKWARDS, duration, seconds, size

from ..conftest import CAPTURES

sys.path.insert(0, str(CAPTURES))
import make_scenarios as ms  # noqa: E402


def test_durations_and_sizes_read_one_way():
    ns = (0, 400, 1_000, 1_500, 999_700, 250_000_000, 999_700_000, 7_130_000_000, 12_345_000_000,
          300 * 10**9, 999_600_000_000, 4_000 * 10**9)
    assert [duration(n) for n in ns] == ["0 µs", "0.4 µs", "1 µs", "1.5 µs", "1 ms", "250 ms", "1 s",
                                         "7.13 s", "12.3 s", "300 s", "1,000 s", "4,000 s"]
    assert duration(-1) == BACKWARDS and seconds(-1) is None and seconds(1_500_000) == 0.0015
    assert size(156_258) == "156,258 bytes" and size(1) == "1 byte"


def test_a_clock_that_steps_back_is_said_not_shown_negative(tmp_path):
    cap: list = []
    c = ms.Conv(cap)
    c.handshake()
    c.send(ms.S, ms.GREETING)
    c.send(ms.C, b"EHLO client.example.com\r\n")
    c.send(ms.S, ms.EHLO_REPLY)
    c.send(ms.C, b"RCPT TO:<b@example.org>\r\n", psh=False)
    c.pkt(ms.S, "RA", dt=-55.0)                   # the capturing host's clock stepped back
    f = tmp_path / "stepped.pcap"
    ms.write_pcap(f, cap, as_sent=True)
    r = subprocess.run([sys.executable, "-m", "pushscan", "analyze", "--format", "json", str(f)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    doc = json.loads(r.stdout)
    assert doc["inputs"][0]["clock_went_back"] == {"packets": 1, "largest_seconds": 55.0, "first_frame": 12}
    assert r.stderr == (f"pushscan: warning: {f}: the capture's clock went backwards (1 packet(s) earlier "
                        "than the one before, by up to 55 s, first at frame 12): times across it are unknown\n")
    findings = {x["code"]: x for x in doc["sessions"][0]["findings"]}
    stuck = findings["UNPUSHED_BEFORE_RESET"]
    assert "had waited an unknown time (the capture's clock went backwards) without PSH" in stuck["message"]
    assert stuck["dwell_seconds"] is None
    assert not any("-5" in x["message"] for x in findings.values())
