"""Limits: hitting one is reported, never silent, and memory stays bounded."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import pushscan

from ..conftest import CAPTURES

ROOT = CAPTURES.parent
sys.path.insert(0, str(CAPTURES))
sys.path.insert(0, str(ROOT / "bench"))
import generate  # noqa: E402
import make_scenarios as ms  # noqa: E402


def test_max_sessions_evicts_the_idlest(tmp_path):
    f = tmp_path / "flood.pcap"
    with open(f, "wb") as out:
        generate.tiny_sessions(out, 5000)
    r = pushscan.analyze(str(f), all_tcp=True, max_sessions=100)
    assert [s["id"] for s in r["sessions"]] == list(range(5000))     # each exactly once
    evicted = [s for s in r["sessions"] if any("open-session limit" in n for n in s["notes"])]
    assert len(evicted) == r["summary"]["limits"]["evicted_sessions"] >= 4900
    assert all(s["close"] == "timeout" for s in evicted)
    assert evicted[0]["id"] == 0                                      # the oldest went first
    # each only sent a SYN: an unanswered attempt, not a session that went well
    assert "ok" not in r["summary"]["by_verdict"]
    assert all(s["verdict"] == "no_answer" and s["findings"][0]["code"] == "NO_ANSWER" for s in evicted)
    assert evicted[0]["findings"][0]["message"] == (
        "1 SYN from the client got no SYN-ACK before the open-session limit (--max-sessions) ended the "
        "session: an unanswered attempt (a SYN flood, or a host that is down)")


def test_refused_sessions_evicted_after_their_close_keep_their_verdict(tmp_path):
    f = tmp_path / "refused.pcap"
    with open(f, "wb") as out:
        generate.refused_sessions(out, 3000)
    r = pushscan.analyze(str(f), max_sessions=100)
    assert r["summary"]["by_verdict"] == {"peer_reset": 3000}
    evicted = [s for s in r["sessions"] if s["notes"]]
    assert len(evicted) == r["summary"]["limits"]["evicted_sessions"] > 2800
    assert {s["close"] for s in evicted} == {"reset_by_server"}
    assert {n for s in evicted for n in s["notes"]} == {
        "ended early by the open-session limit (--max-sessions), after its close"}


def test_the_text_table_of_a_flood_of_failures_is_bounded(tmp_path):
    """50,000 refused sessions: the text lists the first 1,000 and counts the others
    (it took minutes to list them all)."""
    f = tmp_path / "refused.pcap"
    with open(f, "wb") as out:
        generate.refused_sessions(out, 50_000)
    r = subprocess.run([sys.executable, "-m", "pushscan", "analyze", str(f)], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[-1] == ("49,000 more session(s) not listed (the first 1,000 that did not end ok are; "
                         "not listed: peer_reset 49,000); --format json or jsonl lists every session")
    assert lines[-3:-1] == ["50,000 session(s): peer_reset 50,000", "findings: PEER_RESET 50,000"]
    assert sum(1 for x in lines if x.startswith("session ")) == 1000


def test_max_buffer_gives_up_a_hole(tmp_path):
    cap: list = []
    c = ms.Conv(cap)
    c.handshake()
    c.send(ms.S, ms.GREETING)
    seq = c.seq[ms.C]
    for k, fill in enumerate((b"A", b"B", b"C")):   # [seq, seq+1000) is never captured
        c.pkt(ms.C, "PA" if k == 2 else "A", fill * 1000, seq=seq + 1000 * (k + 1))
    f = tmp_path / "hole.pcap"
    ms.write_pcap(f, cap)
    r = pushscan.analyze(str(f), max_buffer=1500)
    assert r["summary"]["limits"]["buffer_overflows"] == 1
    s = r["sessions"][0]
    assert any("reassembly limit (--max-buffer)" in n for n in s["notes"])
    unlimited = pushscan.analyze(str(f))
    assert unlimited["summary"]["limits"]["buffer_overflows"] == 0


def test_max_line_truncates_and_counts(tmp_path):
    cap: list = []
    c = ms.Conv(cap)
    c.handshake()
    c.send(ms.S, ms.GREETING)
    c.send(ms.C, b"RCPT TO:<" + b"x" * 10_000 + b"@example.org>\r\n")
    c.send(ms.S, b"501 too long\r\n")
    c.fin()
    f = tmp_path / "long.pcap"
    ms.write_pcap(f, cap)
    r = pushscan.analyze(str(f), max_line=1024)
    s = r["sessions"][0]
    assert s["smtp"]["lines_truncated"] == 1 and r["summary"]["limits"]["lines_truncated"] == 1
    assert [(c["verb"], c["reply_code"]) for c in s["smtp"]["commands"]] == [("RCPT", 501)]


@pytest.fixture(scope="module")
def compiled() -> None:
    """The compiled kernels exist (built at the first big analysis after an install,
    which takes ~10 s once): the memory measured below is the analysis's, not that
    one-time build's."""
    r = subprocess.run([sys.executable, "-m", "pushscan", "analyze", str(CAPTURES / "smtp_ok.pcap")],
                       capture_output=True, cwd=ROOT, env=dict(os.environ, PUSHSCAN_FASTLANE="1"))
    assert r.returncode == 0, r.stderr


# Runs a command and writes its peak resident memory (KB) to the file named first. A child
# inherits its parent's high-water mark on Linux (through fork and exec), so a command
# started straight from this test process, which is big by now, would report the test
# process's peak; started from this small process, it reports its own.
PEAK = ("import os, subprocess, sys\n"
        "p = subprocess.Popen(sys.argv[2:])\n"
        "_, status, usage = os.wait4(p.pid, 0)\n"
        "open(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n"
        "sys.exit(os.waitstatus_to_exitcode(status))\n")


def stream(generator_args: list[str], analyze_args: list[str]) -> tuple[dict, float]:
    """Generate a capture into a pipe, analyse it from standard input; the summary line
    and pushscan's peak resident memory (MB)."""
    gen = subprocess.Popen([sys.executable, str(ROOT / "bench" / "generate.py"), "-", *generator_args],
                           stdout=subprocess.PIPE)
    peak = ROOT / f".peak-{os.getpid()}.tmp"
    ana = subprocess.Popen([sys.executable, "-c", PEAK, str(peak), sys.executable, "-m", "pushscan",
                            "analyze", "--format", "jsonl", *analyze_args, "-"],
                           stdin=gen.stdout, stdout=subprocess.PIPE, cwd=ROOT)
    gen.stdout.close()
    last = b""
    for line in ana.stdout:
        last = line
    status = ana.wait()
    gen.wait()
    assert status == 0
    kb = int(peak.read_text())
    peak.unlink()
    return json.loads(last), kb / 1024


BIG_GB = float(os.environ.get("PUSHSCAN_STREAM_GB", "10"))
TINY = int(os.environ.get("PUSHSCAN_TINY_SESSIONS", "10000000"))
REFUSED = int(os.environ.get("PUSHSCAN_REFUSED_SESSIONS", "300000"))


@pytest.mark.slow
def test_ten_gigabytes_through_a_pipe_in_bounded_memory(compiled):
    packets = int(BIG_GB * 1e9 / 561)          # the generator's frames average 561 bytes
    last, rss = stream(["--packets", str(packets)], [])
    assert last["inputs"][0]["packets"] == packets
    assert last["summary"]["sessions"] > packets / 150
    assert rss < 400, f"peak RSS {rss:.0f} MB"


@pytest.mark.slow
def test_ten_million_tiny_sessions_in_bounded_memory(compiled):
    last, rss = stream(["--tiny", str(TINY)], [])
    assert last["summary"]["tcp_sessions"] == TINY
    assert last["summary"]["limits"]["evicted_sessions"] >= TINY - 50_000
    assert rss < 400, f"peak RSS {rss:.0f} MB"


@pytest.mark.slow
def test_a_flood_of_refused_sessions_in_bounded_memory(compiled):
    """SYN answered by RST, session after session (a failing peer): every one ends and is
    reported, and the ended ones do not pile up (they did: 2.4 GB per million)."""
    last, rss = stream(["--refused", str(REFUSED)], [])
    assert last["summary"]["sessions"] == REFUSED
    assert last["summary"]["by_verdict"] == {"peer_reset": REFUSED}
    assert rss < 400, f"peak RSS {rss:.0f} MB"
