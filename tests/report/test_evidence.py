"""follow, plot and report: the evidence shows the stuck bytes, not just a verdict."""
from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

import pushscan
from pushscan.analysis import Options
from pushscan.report.evidence import one_session
from pushscan.report.html import report_html
from pushscan.report.plot import plot

from ..conftest import CAPTURES, require, run_cli

sys.path.insert(0, str(CAPTURES))
import make_scenarios as ms  # noqa: E402


def events(*args: str) -> list[dict]:
    r = run_cli("follow", "--format", "json", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["events"]


def test_follow_shows_the_stuck_command_and_what_ended_the_wait():
    evs = events(str(CAPTURES / "smtp_unpushed_reset.pcap"), "--session", "0")
    rcpt = next(e for e in evs if e["kind"] == "command" and e["text"] == "RCPT")
    assert (rcpt["dir"], rcpt["frames"], rcpt["pushed"]) == ("C>S", [14], [False])
    wait = next(e for e in evs if e["kind"] == "wait")
    assert wait["bytes"] == 25 and wait["frames"] == [14]
    assert wait["text"] == "25 bytes waited 300 s without PSH; ended by reset by server (frame 16)"
    assert [e["text"] for e in evs if e["kind"] == "control"] == [
        "SYN", "SYN-ACK", "RST (TTL 64; the sender's other packets: 64)"]
    assert [e["t"] for e in evs] == sorted(e["t"] for e in evs)
    text = run_cli("follow", str(CAPTURES / "smtp_unpushed_reset.pcap"), "--session", "0").stdout
    assert "RCPT" in text and "frame 14(no PSH)" in text and "UNPUSHED_BEFORE_RESET" in text


def test_follow_lists_replies_and_summarises_long_bodies(tmp_path):
    cap: list = []
    ms.smtp_ok(ms.Conv(cap), body=ms.BODY * 5)          # 22 KB: 16 MSS-sized segments
    f = tmp_path / "long.pcap"
    ms.write_pcap(f, cap)
    evs = events(str(f), "--session", "0")
    body = next(e for e in evs if e["kind"] == "body")
    assert body["text"] == "DATA body: 22,093 bytes in 16 segment(s), 1 pushed"
    assert len(body["frames"]) == 4 and body["pushed"] == [False, False, False, True]
    assert [e["text"] for e in evs if e["kind"] == "reply"] == [
        "250 (to EHLO)", "250 (to MAIL)", "250 (to RCPT)", "354 (to DATA)", "250 (to DATA body)", "221 (to QUIT)"]


def test_follow_other_tcp_and_unpushed_turn_answered():
    evs = events(str(CAPTURES / "tcp_other.pcap"), "--session", "0", "--all-tcp")
    data = [e for e in evs if e["kind"] == "data"]
    assert [(e["dir"], e["bytes"]) for e in data] == [("C>S", 18), ("S>C", 3019)]
    evs = events(str(CAPTURES / "smtp_unpushed_turns.pcap"), "--session", "0")
    waits = [e for e in evs if e["kind"] == "wait"]
    assert len(waits) == 3 and all("ended by peer's reply" in w["text"] for w in waits)


def test_follow_unknown_session_is_a_usage_error():
    r = run_cli("follow", str(CAPTURES / "smtp_ok.pcap"), "--session", "7")
    assert r.returncode == 2 and "no session 7 in the capture (it has 1 TCP sessions" in r.stderr


def test_plot_draws_each_category(tmp_path):
    s, doc = one_session([str(CAPTURES / "smtp_unpushed_reset.pcap")], Options(), 0)
    drawn = plot(s, doc, str(tmp_path / "g.png"))
    # the server acknowledges in frames 2, 4, 7, 8, 11, 12, 15 and 16
    assert drawn["client_to_server"] == {"pushed": 2, "unpushed": 1, "retransmissions": 0, "acks": 8, "waits": 1,
                                         "zero_windows": 0, "probes": 0, "keepalives": 0, "icmp": 0}
    assert drawn["server_to_client"]["pushed"] == 3 and drawn["server_to_client"]["unpushed"] == 0
    assert drawn["resets"] == 1
    assert (tmp_path / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    s, doc = one_session([str(CAPTURES / "smtp_retrans_loss.pcap")], Options(), 0)
    assert plot(s, doc, str(tmp_path / "r.svg"), "svg")["client_to_server"]["retransmissions"] == 4
    assert "<svg" in (tmp_path / "r.svg").read_text()


def test_plot_cli(tmp_path):
    r = run_cli("plot", str(CAPTURES / "smtp_unpushed_reset.pcap"), "--session", "0", "-o", str(tmp_path / "x.svg"))
    assert r.returncode == 0 and "client>server 2 pushed + 1 unpushed segments" in r.stdout
    assert run_cli("plot", str(CAPTURES / "smtp_ok.pcap"), "--session", "0", "-o", str(tmp_path / "x.gif")).returncode == 2


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    files = [str(CAPTURES / n) for n in ("smtp_ok.pcap", "smtp_unpushed_reset.pcap")]
    html, info = report_html(files, Options(merge=True))
    out = tmp_path_factory.mktemp("report") / "report.html"
    out.write_text(html)
    return out, html, info


def test_report_sections_and_offline(page):
    _, html, info = page
    assert info["graphs"] == 1
    for section in ("id=capture-0", "id=sessions-table-0", "id=findings", "id=session-0-1"):
        assert section in html
    # two files merged into one capture: frames 14 and 16 of the second file are 49 and 51
    assert "UNPUSHED_BEFORE_RESET" in html and "ForcePushBit=1" in html and "frames 49, 51" in html
    assert html.count("<svg") == 1
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)     # nothing fetched from a network


def test_report_renders_in_headless_chromium(page):
    chromium = require("chromium")
    out, _, _ = page
    r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking", "--disable-component-update",
                        "--disable-sync", f"--user-data-dir={out.parent / 'profile'}", "--dump-dom",
                        out.as_uri()], capture_output=True, text=True, timeout=120)
    dom = r.stdout
    assert "sortable: click a column heading" in dom          # the page's script ran
    assert "session 1: 192.0.2.10:40000" in dom and "push_problem" in dom
    assert dom.count("<svg") == 1


def test_report_cli(tmp_path):
    r = run_cli("report", str(CAPTURES / "smtp_peer_reset.pcap"), "-o", str(tmp_path / "r.html"))
    assert r.returncode == 0 and "1 flagged with graphs" in r.stdout
    assert "PEER_RESET" in (tmp_path / "r.html").read_text()


def test_follow_shows_the_new_evidence():
    """Zero windows and their probes, the reset's TTL against its sender's other packets,
    ICMP errors with their router, and what a refusal said."""
    evs = events(str(CAPTURES / "real_zero_window_stall.pcap"), "--session", "0")
    tcp = [(e["text"], e["frames"]) for e in evs if e["kind"] == "tcp"]
    assert ("zero window (window 0 bytes)", [21]) in tcp
    assert ("zero-window probe", [22]) in tcp and ("zero-window probe (2 packets)", [24, 25]) in tcp
    evs = events(str(CAPTURES / "real_injected_reset.pcap"), "--session", "0")
    assert any(e["kind"] == "control" and e["frames"] == [12]
               and e["text"] == "RST (TTL 64; the sender's other packets: 63)" for e in evs)
    evs = events(str(CAPTURES / "real_icmp_unreachable.pcap"), "--session", "0")
    icmp = [e for e in evs if e["kind"] == "icmp"]
    assert len(icmp) == 17 and icmp[0]["frames"] == [11]
    assert icmp[0]["text"] == "ICMP destination unreachable (host unreachable) from 192.0.2.1"
    evs = events(str(CAPTURES / "real_smtp_554_rcpt.pcap"), "--session", "0")
    assert "554 5.7.1 <rcpt@example.org>: Relay access denied (to RCPT)" in [e["text"] for e in evs]


def test_plot_draws_the_new_evidence(tmp_path):
    s, doc = one_session([str(CAPTURES / "real_zero_window_stall.pcap")], Options(), 0)
    drawn = plot(s, doc, str(tmp_path / "z.png"))
    assert drawn["client_to_server"]["zero_windows"] == 1 and drawn["client_to_server"]["probes"] == 4
    s, doc = one_session([str(CAPTURES / "real_icmp_unreachable.pcap")], Options(), 0)
    assert plot(s, doc, str(tmp_path / "i.png"))["client_to_server"]["icmp"] == 17
    s, doc = one_session([str(CAPTURES / "gen_keepalive_answered.pcap")], Options(), 0)
    assert plot(s, doc, str(tmp_path / "k.png"))["client_to_server"]["keepalives"] == 3


def test_report_of_two_captures_keeps_them_apart():
    """Files that are not one capture get a section each, their own ids and no merged
    findings; the page says why they were not joined."""
    files = [str(CAPTURES / n) for n in ("smtp_ok.pcap", "smtp_unpushed_reset.pcap")]
    html, info = report_html(files, Options())
    assert info["captures"] == 2 and info["graphs"] == 1
    assert "files not named alike are separate captures" in html
    assert "each analysed alone; --merge joins them" in html
    assert "id=capture-0" in html and "id=capture-1" in html
    assert "frames 14, 16" in html and "frames 49, 51" not in html     # its own frame numbers
    assert "session 0 of " in html and "id=session-1-0" in html


def test_report_details_the_worst_sessions_first(monkeypatch):
    """Past MAX_GRAPHS flagged sessions, the worst are detailed (a failed verdict before
    an ok one with a warning), and the page says how many were left out."""
    import pushscan.report.html as h

    monkeypatch.setattr(h, "MAX_GRAPHS", 1)
    files = [str(CAPTURES / "smtp_unpushed_turns.pcap")]
    page, info = report_html(files, Options())
    docs = info["reports"][0]
    assert info["graphs"] == 1
    w = h.Worst(2, only_flagged=True)
    ok = {"id": 0, "verdict": "ok", "findings": [{"severity": "warning"}]}
    bad = {"id": 5, "verdict": "peer_reset", "findings": [{"severity": "error"}]}
    worse = {"id": 9, "verdict": "peer_reset", "findings": [{"severity": "error"}] * 2}
    fine = {"id": 1, "verdict": "ok", "findings": []}
    for i, d in enumerate((ok, bad, fine, worse)):
        w.add(d, 0)
    assert [d["id"] for d in w.docs()] == [9, 5] and w.offered == 3
    assert docs["summary"]["sessions"] >= 1


def test_frame_ranges_are_true_for_a_big_stuck_body(tmp_path):
    """200 unpushed body segments (frames 22-221) then a reset: follow's wait names frames
    22..221 and how many, the finding says it concerns 201 frames though it lists 64."""
    from ..dialogue_builder import Dialogue

    d = Dialogue()
    d.handshake()
    for side, line in (("s", b"220 mx ESMTP\r\n"), ("c", b"EHLO c\r\n"), ("s", b"250 ok\r\n"),
                       ("c", b"MAIL FROM:<a@b>\r\n"), ("s", b"250 ok\r\n"), ("c", b"RCPT TO:<c@d>\r\n"),
                       ("s", b"250 ok\r\n"), ("c", b"DATA\r\n"), ("s", b"354 go\r\n")):
        d.say(side, line)
    for _ in range(200):
        d.send("c", "A", b"x" * 1000)
    d.send("s", "A")
    d.send("s", "RA")
    path = d.write(tmp_path / "stuck.pcap")
    r = run_cli("follow", str(path), "--session", "0")
    assert r.returncode == 0
    assert "200,000 bytes waited 2.01 s without PSH; ended by reset by server (frame 223) frames 22..221 (200 frames)" in r.stdout
    assert "frames 22(no PSH), 23(no PSH), 24(no PSH), ... (194 more), 219(no PSH)" in r.stdout
    (s,) = pushscan.analyze(str(path))["sessions"]
    (f,) = s["findings"]
    assert f["code"] == "UNPUSHED_BEFORE_RESET" and f["frame_count"] == 201 and len(f["frames"]) == 65
    text = run_cli("analyze", str(path)).stdout
    assert "(frames 22,23,24,25,26,27,28,29,30,31,32,33,... (201 frames))" in text


def test_sessions_recorded_by_first_frame_beside_the_fast_lane(tmp_path):
    """follow, plot and report record their sessions by first frame so that the compiled
    fast lane takes every other session of a big capture: what is recorded is exactly
    what the reference tracker alone records by id."""
    from pushscan.analysis import Analysis
    from pushscan.report.follow import follow_document

    from ..conftest import bench_capture
    big = str(bench_capture(tmp_path / "big.pcap", 60_000))
    report = pushscan.analyze(big)
    flagged = [s for s in report["sessions"] if s["verdict"] != "ok"][:6] + report["sessions"][:2]
    ids = {s["id"] for s in flagged}
    by_id = Analysis([big], Options(fast=False), trace_ids=frozenset(ids))
    by_id.run()
    by_frame = Analysis([big], Options(fast=True), trace_frames=frozenset(s["first_frame"] for s in flagged))
    by_frame.run()
    assert by_frame.lane is not None                       # the fast lane ran beside them
    assert sorted(by_frame.traced) == sorted(by_id.traced) == sorted(ids)
    for sid in ids:
        assert follow_document(*by_frame.traced[sid]) == follow_document(*by_id.traced[sid])
    s, doc = one_session([big], Options(), flagged[0]["id"])   # the two passes: find, then record
    assert follow_document(s, doc) == follow_document(*by_id.traced[flagged[0]["id"]])


def test_the_same_capture_gives_the_same_report_and_graph(tmp_path):
    """No creation date, no random element ids: a report can be compared with the last one."""
    cap = str(CAPTURES / "smtp_unpushed_reset.pcap")
    pages = [report_html([cap], Options())[0] for _ in range(2)]
    assert pages[0] == pages[1] and "<svg" in pages[0]
    for fmt in ("svg", "png"):
        outs = [tmp_path / f"{k}.{fmt}" for k in (1, 2)]
        for o in outs:
            assert run_cli("plot", cap, "--session", "0", "-o", str(o)).returncode == 0
        assert outs[0].read_bytes() == outs[1].read_bytes()
