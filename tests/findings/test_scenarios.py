"""End to end: every scenario capture gives the sessions, findings and verdicts it was made for."""
from __future__ import annotations

import pytest

import pushscan

from ..conftest import CAPTURES


def only(report, n=1):
    assert len(report["sessions"]) == n, report["sessions"]
    return report["sessions"][0] if n == 1 else report["sessions"]


def codes(session):
    return [f["code"] for f in session["findings"]]


def finding(session, code):
    found = [f for f in session["findings"] if f["code"] == code]
    assert len(found) == 1, session["findings"]
    return found[0]


def verbs(session):
    return [(c["verb"], c["reply_code"]) for c in session["smtp"]["commands"]]


OK_VERBS = [("EHLO", 250), ("MAIL", 250), ("RCPT", 250), ("DATA", 354), ("DATA body", 250), ("QUIT", 221)]


def test_clean_session():
    s = only(pushscan.analyze(str(CAPTURES / "smtp_ok.pcap")))
    assert s["verdict"] == "ok" and s["findings"] == [] and s["remedy"] is None
    assert s["client"] == {"ip": "192.0.2.10", "port": 40000}
    assert s["server"] == {"ip": "198.51.100.25", "port": 25}
    assert (s["handshake"], s["close"], s["protocol"]) == ("complete", "fin", "smtp")
    assert (s["first_frame"], s["last_frame"]) == (1, 35)
    c2s = s["directions"]["client_to_server"]
    assert (c2s["data_segments"], c2s["psh_segments"], c2s["turns"], c2s["turns_unpushed"]) == (9, 6, 6, 0)
    assert c2s["bytes"] == 4510 and c2s["unpushed_bytes_at_end"] == 0
    assert verbs(s) == OK_VERBS
    assert all(c["pushed"] for c in s["smtp"]["commands"])
    assert s["smtp"]["messages"] == 1 and s["smtp"]["tls"] is False


def test_unpushed_before_reset():
    s = only(pushscan.analyze(str(CAPTURES / "smtp_unpushed_reset.pcap")))
    assert s["verdict"] == "push_problem" and s["close"] == "reset_by_server"
    f = finding(s, "UNPUSHED_BEFORE_RESET")
    assert f["severity"] == "error"
    assert f["unpushed_bytes"] == len(b"RCPT TO:<b@example.org>\r\n")
    assert f["acked"] is True
    assert f["dwell_seconds"] == pytest.approx(300.0005, abs=1e-3)
    assert f["reset_frame"] == 16 and f["frames"] == [14, 16]
    assert f["smtp_command"] == "RCPT"
    assert "ForcePushBit=1" in s["remedy"] and "RFC 1122" in s["remedy"]
    # the stuck turn is reported once, as the reset finding, not again as UNPUSHED_TURN
    assert codes(s) == ["UNPUSHED_BEFORE_RESET"]
    c2s = s["directions"]["client_to_server"]
    assert c2s["turns_unpushed"] == 1 and c2s["unpushed_bytes_at_end"] == 25
    assert s["smtp"]["commands"][-1] == {"verb": "RCPT", "frame": 14, "pushed": False,
                                         "reply_code": None, "reply_frame": None}


def test_unpushed_turns_answered_anyway():
    s = only(pushscan.analyze(str(CAPTURES / "smtp_unpushed_turns.pcap")))
    assert s["verdict"] == "ok"
    turns = [f for f in s["findings"] if f["code"] == "UNPUSHED_TURN"]
    assert [t["bytes"] for t in turns] == [25, 27, 6]
    assert [t["frames"] for t in turns] == [[6], [10], [14]]
    assert all(t["wait_seconds"] == pytest.approx(0.2005, abs=1e-4) for t in turns)
    assert all(t["severity"] == "warning" for t in turns)
    assert s["directions"]["client_to_server"]["turns_unpushed"] == 3


def test_outgoing_server_judges_the_other_side():
    s = only(pushscan.analyze(str(CAPTURES / "smtp_unpushed_reset.pcap"), outgoing="server"))
    assert s["outgoing"] == "server_to_client"
    # the server's own reset is now a local reset; its data was all pushed
    assert codes(s) == ["LOCAL_RESET"] and s["verdict"] == "ok"


@pytest.mark.parametrize("cidr,expect", [("192.0.2.0/24", "client_to_server"),
                                         ("198.51.100.25/32", "server_to_client")])
def test_local_sets_outgoing(cidr, expect):
    s = only(pushscan.analyze(str(CAPTURES / "smtp_unpushed_reset.pcap"), local=(cidr,)))
    assert s["outgoing"] == expect


def test_peer_reset_with_pushed_data_unanswered():
    s = only(pushscan.analyze(str(CAPTURES / "smtp_peer_reset.pcap")))
    assert s["verdict"] == "peer_reset"
    f = finding(s, "PEER_RESET")
    assert f["pushed_data_unanswered"] is True and f["smtp_command"] == "DATA"
    assert f["reset_frame"] == 19 and f["refused"] is False


def test_refused_connection():
    s = only(pushscan.analyze(str(CAPTURES / "smtp_refused.pcap")))
    f = finding(s, "PEER_RESET")
    assert f["refused"] is True and "port 587" in f["message"]
    assert s["verdict"] == "peer_reset" and s["handshake"] == "partial"


def test_no_answer_counts_syns_and_icmp():
    s = only(pushscan.analyze(str(CAPTURES / "smtp_no_answer.pcap")))
    assert s["verdict"] == "no_answer"
    f = finding(s, "NO_ANSWER")
    assert f["syns"] == 3 and f["frames"] == [1, 2, 3, 4]
    assert f["icmp_errors"] == ["ICMP destination unreachable (host unreachable)"]
    assert "host unreachable" in f["message"]


def test_retransmissions_then_death():
    """RCPT sent 5 times, nothing at all came back, the client reset: the server answered
    before, then went silent (a peer that vanished, or a path that broke for good)."""
    s = only(pushscan.analyze(str(CAPTURES / "smtp_retrans_loss.pcap")))
    assert s["verdict"] == "peer_vanished"
    assert finding(s, "PEER_VANISHED")["last_answer_frame"] == 12
    f = finding(s, "RETRANSMISSIONS")
    assert (f["count"], f["max_attempts"], f["died"]) == (4, 5, True)
    assert "LOCAL_RESET" in codes(s)
    assert s["directions"]["client_to_server"]["retransmitted_segments"] == 4


def test_local_reset_after_quit_is_fine():
    s = only(pushscan.analyze(str(CAPTURES / "smtp_local_reset.pcap")))
    assert s["verdict"] == "ok" and s["close"] == "reset_by_client"
    assert codes(s) == ["LOCAL_RESET"] and finding(s, "LOCAL_RESET")["severity"] == "info"


def test_capture_gap_is_reported_not_filled():
    s = only(pushscan.analyze(str(CAPTURES / "smtp_capture_gap.pcap")))
    f = finding(s, "CAPTURE_GAP")
    assert f["bytes"] == 1000 and f["direction"] == "client_to_server"
    c2s = s["directions"]["client_to_server"]
    assert c2s["capture_gap_bytes"] == 1000 and c2s["bytes"] == 3510
    # the dialogue continues after the gap
    assert verbs(s) == OK_VERBS


def test_out_of_order_is_not_a_retransmission():
    s = only(pushscan.analyze(str(CAPTURES / "smtp_out_of_order.pcap")))
    c2s = s["directions"]["client_to_server"]
    assert c2s["out_of_order_segments"] == 1 and c2s["retransmitted_segments"] == 0
    assert c2s["bytes"] == 4510 and verbs(s) == OK_VERBS and s["verdict"] == "ok"


def test_conflicting_overlap():
    s = only(pushscan.analyze(str(CAPTURES / "smtp_conflict.pcap")))
    f = finding(s, "OVERLAP_CONFLICT")
    assert f["frames"] == [7] and f["count"] == 1


def test_wraparound_equals_plain_session():
    plain = only(pushscan.analyze(str(CAPTURES / "smtp_ok.pcap")))
    wrapped = only(pushscan.analyze(str(CAPTURES / "smtp_wraparound.pcap")))
    assert wrapped["directions"] == plain["directions"] and wrapped["smtp"] == plain["smtp"]


def test_port_reuse_makes_two_sessions():
    a, b = only(pushscan.analyze(str(CAPTURES / "smtp_port_reuse.pcap")), 2)
    assert (a["id"], b["id"]) == (0, 1)
    assert (a["first_frame"], a["last_frame"], b["first_frame"]) == (1, 35, 36)
    assert a["verdict"] == b["verdict"] == "ok"


def test_midstream_start():
    s = only(pushscan.analyze(str(CAPTURES / "smtp_midstream.pcap")))
    assert s["handshake"] == "none" and s["verdict"] == "incomplete"
    assert s["client"]["port"] == 40000 and s["server"]["port"] == 25
    assert [v for v, _ in verbs(s)] == ["MAIL", "RCPT", "DATA", "DATA body", "QUIT"]


def test_segmentation_offload_noted():
    s = only(pushscan.analyze(str(CAPTURES / "smtp_tso.pcap")))
    assert s["directions"]["client_to_server"]["oversize_segments"] == 1
    assert any("exceed the MSS of 1460" in n for n in s["notes"])
    assert verbs(s) == OK_VERBS


def test_snaplen_cut_still_analysed():
    plain = only(pushscan.analyze(str(CAPTURES / "smtp_ok.pcap")))
    s = only(pushscan.analyze(str(CAPTURES / "smtp_snaplen64.pcap")))
    for k in ("client_to_server", "server_to_client"):
        a, b = dict(plain["directions"][k]), dict(s["directions"][k])
        assert b.pop("truncated_segments") == 7 and a.pop("truncated_segments") == 0
        assert a == b
    assert verbs(s) == OK_VERBS
    assert any("snap length" in n for n in s["notes"])
    assert s["verdict"] == "ok"


def test_starttls_and_implicit_tls():
    a, b = only(pushscan.analyze(str(CAPTURES / "smtp_starttls.pcap")), 2)
    assert verbs(a) == [("EHLO", 250), ("STARTTLS", 220)] and a["smtp"]["tls"] is True
    assert b["server"]["port"] == 465 and b["smtp"]["tls"] is True and verbs(b) == []


def test_auth_bdat_pipelining_refused_data():
    s = only(pushscan.analyze(str(CAPTURES / "smtp_bdat_auth.pcap")))
    assert verbs(s) == [("EHLO", 250), ("AUTH", 235), ("MAIL", 250), ("RCPT", 250), ("BDAT", 250),
                        ("BDAT", 250), ("MAIL", 250), ("RCPT", 550), ("DATA", 554), ("QUIT", 221)]
    assert s["smtp"]["messages"] == 1 and s["smtp"]["body_bytes"] == 150
    # the second transaction was refused (no valid recipients): the session then ended
    f = finding(s, "SMTP_REFUSED")
    assert (f["reply_code"], f["smtp_command"], f["accepted_before"]) == (554, "DATA", True)
    assert s["verdict"] == "smtp_refused"
    assert [(e["verb"], e["code"]) for e in s["smtp"]["error_replies"]] == [("RCPT", 550), ("DATA", 554)]


def test_other_tcp_and_greeting_detection():
    r = pushscan.analyze(str(CAPTURES / "tcp_other.pcap"))
    s = only(r)
    assert s["id"] == 1 and s["server"]["port"] == 10025 and s["protocol"] == "smtp"
    assert r["summary"]["tcp_sessions"] == 2
    a, b = only(pushscan.analyze(str(CAPTURES / "tcp_other.pcap"), all_tcp=True), 2)
    assert a["protocol"] == "tcp" and a["smtp"] is None
    # the PSH analysis does not depend on SMTP: the web server's reply ended unpushed
    assert a["directions"]["server_to_client"]["turns_unpushed"] == 1


@pytest.mark.parametrize("name", [
    "smtp_ok.pcap.gz", "smtp_ok_nanosecond_bigendian.pcap", "smtp_ok_multi_interface.pcapng",
    "smtp_vlan.pcap", "smtp_qinq.pcap", "smtp_sll.pcap", "smtp_sll2.pcap", "smtp_null.pcap",
    "smtp_raw.pcap"])
def test_formats_and_link_types_agree(name):
    plain = only(pushscan.analyze(str(CAPTURES / "smtp_ok.pcap")))
    s = only(pushscan.analyze(str(CAPTURES / name)))
    for k in ("directions", "smtp", "findings", "verdict", "client", "server", "start", "end",
              "first_frame", "last_frame"):
        assert s[k] == plain[k], k


def test_link_type_names():
    r = pushscan.analyze(str(CAPTURES / "smtp_ok_multi_interface.pcapng"))
    assert r["inputs"][0]["link_types"] == ["EN10MB", "RAW", "LINUX_SLL2"]
    assert r["inputs"][0]["format"] == "pcapng"


def test_ipv6_with_extension_headers():
    s = only(pushscan.analyze(str(CAPTURES / "smtp_ipv6_exthdr.pcap")))
    assert s["client"]["ip"] == "2001:db8::10" and verbs(s) == OK_VERBS and s["verdict"] == "ok"


def test_rotated_files_are_one_capture_in_time_order():
    files = [str(CAPTURES / "rotated_00002.pcap"), str(CAPTURES / "rotated_00001.pcap")]
    r = pushscan.analyze(files)
    a, b = only(r, 2)
    assert [i["path"] for i in r["inputs"]] == files[::-1]
    assert r["inputs"][1]["first_frame"] == 31
    assert a["file"] == files[1] and (a["first_frame"], a["last_frame"]) == (1, 35)
    assert a["verdict"] == b["verdict"] == "ok" and verbs(a) == OK_VERBS


def test_real_swaks_recording():
    s = only(pushscan.analyze(str(CAPTURES / "real_swaks.pcap")))
    assert [v for v, _ in verbs(s)] == ["EHLO", "MAIL", "RCPT", "DATA", "DATA body", "QUIT"]
    assert s["verdict"] == "ok" and all(c["pushed"] for c in s["smtp"]["commands"])


def test_real_smtplib_pipelining_recording():
    s = only(pushscan.analyze(str(CAPTURES / "real_smtplib_pipelining.pcap")))
    assert s["smtp"]["messages"] == 2
    assert [v for v, _ in verbs(s)].count("RCPT") == 3


def test_capture_end_is_not_evidence(tmp_path):
    """A SYN just before the capture ends is not NO_ANSWER, and a turn cut by the end of
    the capture is not an UNPUSHED_TURN; with a second of silence after them, they are."""
    import sys
    sys.path.insert(0, str(CAPTURES))
    import make_scenarios as ms

    cap = []
    c = ms.Conv(cap)
    c.handshake()
    c.send(ms.S, ms.GREETING)
    c.send(ms.C, ms.BODY[:3000], psh=False)      # unpushed, cut by the end of the capture
    d = ms.Conv(cap, cport=40001, t=c.t)
    d.pkt(ms.C, "S")                              # a SYN in the capture's last millisecond
    f = tmp_path / "cut.pcap"
    ms.write_pcap(f, cap)
    a, b = pushscan.analyze(str(f))["sessions"]
    assert codes(a) == [] and a["verdict"] == "incomplete"
    assert codes(b) == [] and b["verdict"] == "incomplete"

    e = ms.Conv(cap, cport=40002, t=d.t)          # the capture goes on for 2 more seconds
    e.pkt(ms.C, "S", dt=2.0)
    ms.write_pcap(f, cap)
    a, b, _ = pushscan.analyze(str(f))["sessions"]
    assert codes(a) == ["UNPUSHED_TURN"] and "nothing answered" in a["findings"][0]["message"]
    assert codes(b) == ["NO_ANSWER"] and b["verdict"] == "no_answer"
