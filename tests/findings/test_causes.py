"""Every cause an expert would name, on real failures recorded between Linux stacks
(captures/record_causes.py): the verdict, the finding that explains it, its frames (the
packets that prove it, as Wireshark numbers them) and its fields; and what must *not* be
said (a stalled receiver is not a PSH problem, a reset the peer never sent is not the
peer's reset, a zero window that reopens or answered keep-alives are fine)."""
from __future__ import annotations

import pytest

import pushscan

from ..conftest import CAPTURES


def session(name: str, engine: str = "native") -> dict:
    report = pushscan.analyze(str(CAPTURES / name), all_tcp=True, engine=engine)
    (s,) = report["sessions"]
    return s


def finding(s: dict, code: str) -> dict:
    (f,) = [f for f in s["findings"] if f["code"] == code]
    return f


def codes(s: dict) -> list[str]:
    return [f["code"] for f in s["findings"]]


# (capture, verdict, the finding that explains it, frames it names, fields it holds)
CAUSES = [
    ("real_zero_window_stall.pcap", "receiver_stalled", "ZERO_WINDOW_STALL", [21, 22, 24, 25, 27, 29],
     {"side": "server", "start_frame": 21, "probes": 4, "answered": 3, "ended_by": "reset"}),
    ("real_injected_reset.pcap", "middlebox_reset", "INJECTED_RESET", [12, 13],
     {"reset_frame": 12, "reset_ttl": 64, "sender_ttl": [63, 63], "smtp_command": "RCPT"}),
    ("real_idle_timeout.pcap", "path_dropped_state", "IDLE_TIMEOUT", [12, 13, 14, 15, 16, 17],
     {"first_frame": 12}),
    ("real_idle_timeout_reset.pcap", "path_dropped_state", "IDLE_TIMEOUT", [12, 13],
     {"first_frame": 12}),
    ("real_pmtu_blackhole.pcap", "path_mtu", "PMTU_BLACKHOLE", [32, 33, 34, 35],
     {"segment_bytes": 1448, "largest_acknowledged": 43, "transmissions": 5, "icmp_frag_needed": 0}),
    ("real_icmp_unreachable.pcap", "unreachable", "ICMP_UNREACHABLE", list(range(11, 44, 2)),
     {"count": 17, "origins": ["192.0.2.1"], "icmp": "ICMP destination unreachable (host unreachable)"}),
    ("real_peer_vanished.pcap", "peer_vanished", "PEER_VANISHED", [8, 11, 12, 13, 14, 15],
     {"last_answer_frame": 8, "unanswered": 7}),
    ("real_peer_vanished_keepalive.pcap", "peer_vanished", "PEER_VANISHED", [8, 10, 11, 12],
     {"last_answer_frame": 8, "unanswered": 5}),
    ("real_peer_restarted.pcap", "peer_restarted", "PEER_RESTARTED", [10, 11],
     {"reset_frame": 11, "smtp_command": "MAIL"}),
    ("real_smtp_421.pcap", "smtp_refused", "SMTP_REFUSED", [4],
     {"reply_code": 421, "reply_text": "4.3.2 Service not available, closing transmission channel",
      "smtp_command": None}),
    ("real_smtp_554_rcpt.pcap", "smtp_refused", "SMTP_REFUSED", [12],
     {"reply_code": 554, "reply_text": "5.7.1 <rcpt@example.org>: Relay access denied",
      "smtp_command": "RCPT"}),
    ("real_starttls_failed.pcap", "tls_failed", "TLS_FAILED", [11, 12],
     {"alert": "protocol_version", "alert_from": "server"}),
    ("real_implicit_tls_failed.pcap", "tls_failed", "TLS_FAILED", [4, 6],
     {"alert": "handshake_failure", "alert_from": "server"}),
    ("real_local_gave_up.pcap", "local_timeout", "LOCAL_GAVE_UP", [18, 20],
     {"smtp_command": "DATA body", "rfc_timeout_seconds": 600, "late_reply_frame": 20}),
    ("real_one_sided.pcap", "incomplete", "ONE_SIDED", [13], {"missing": "server_to_client"}),
    ("real_closed_before_greeting.pcap", "no_greeting", "NO_GREETING", [4], {"closed_by": "server"}),
    ("real_greeting_never_came.pcap", "no_greeting", "NO_GREETING", [6], {"closed_by": "client"}),
]


@pytest.mark.parametrize("name,verdict,code,frames,fields", CAUSES, ids=[c[0] for c in CAUSES])
def test_each_cause_is_named_with_its_frames(name, verdict, code, frames, fields):
    s = session(name)
    assert s["verdict"] == verdict, codes(s)
    f = finding(s, code)
    assert f["frames"] == frames
    assert {k: f[k] for k in fields} == fields
    assert f["severity"] in ("error", "warning")
    assert s["remedy"]


def test_a_stalled_receiver_is_not_a_push_problem():
    """The incident's false diagnosis: window 0, probes answered with window 0, then a
    reset while the client's data waited: not PSH."""
    s = session("real_zero_window_stall.pcap")
    assert "UNPUSHED_BEFORE_RESET" not in codes(s)
    assert "push" not in s["verdict"]
    server = s["directions"]["server_to_client"]
    assert server["zero_window_count"] == 1 and server["zero_windows"][0]["probes"] == 4
    assert s["directions"]["client_to_server"]["window_full"] >= 1


def test_durations_and_silences_are_what_the_frames_show():
    assert finding(session("real_zero_window_stall.pcap"), "ZERO_WINDOW_STALL")["duration_seconds"] == \
        pytest.approx(5.93, abs=0.05)
    assert 5.5 < finding(session("real_idle_timeout.pcap"), "IDLE_TIMEOUT")["idle_seconds"] < 6.5
    assert 3.5 < finding(session("real_peer_restarted.pcap"), "PEER_RESTARTED")["idle_seconds"] < 4.5
    assert 2.5 < finding(session("real_local_gave_up.pcap"), "LOCAL_GAVE_UP")["waited_seconds"] < 3.5


def test_an_injected_reset_gives_its_clues_and_blames_no_peer():
    s = session("real_injected_reset.pcap")
    f = finding(s, "INJECTED_RESET")
    assert "its TTL is 64 where the server's own packets arrive with 63" in f["clues"]
    assert any("went on sending after it" in c for c in f["clues"])
    assert "PEER_RESET" not in codes(s) and "UNPUSHED_BEFORE_RESET" not in codes(s)


def test_the_restarted_peer_and_the_firewall_tell_apart_by_ttl():
    """Both resets answer the first segment after an idle time, without ACK, at the
    expected sequence number; the peer's own has its TTL, the firewall's does not."""
    assert session("real_peer_restarted.pcap")["verdict"] == "peer_restarted"
    fw = session("real_idle_timeout_reset.pcap")
    assert fw["verdict"] == "path_dropped_state" and "INJECTED_RESET" in codes(fw)


@pytest.mark.parametrize("name", ["real_zero_window_recovers.pcap", "real_keepalive_answered.pcap"])
def test_pauses_that_end_well_are_not_failures(name):
    s = session(name)
    assert s["verdict"] == "ok"
    assert not set(codes(s)) & {"ZERO_WINDOW_STALL", "PEER_VANISHED", "IDLE_TIMEOUT"}


def test_a_zero_window_that_reopens_is_reported_as_a_pause():
    s = session("real_zero_window_recovers.pcap")
    f = finding(s, "ZERO_WINDOW")
    assert f["severity"] == "info" and f["ended_by"] == "reopened" and f["frames"][0] == 21
    assert 27 in f["frames"]


def test_answered_keepalives_are_counted_as_answered():
    c2s = session("real_keepalive_answered.pcap")["directions"]["client_to_server"]
    assert c2s["keepalives"] == 3 and c2s["keepalives_answered"] == 3


def test_the_tracker_keeps_the_facts_per_sender():
    s = session("real_injected_reset.pcap")
    c2s, s2c = s["directions"]["client_to_server"], s["directions"]["server_to_client"]
    assert c2s["ttl"] == [64, 64] and s2c["ttl"] == [63, 63]
    assert c2s["ip_id"] == "counter" and s2c["ip_id"] == "counter"
    assert c2s["options_syn"] == ["mss", "wscale", "sack_perm", "timestamps"]
    assert c2s["options_always"] == ["timestamps"]
    assert s["rtt_seconds"] is not None and s["rtt_seconds"] < 0.01


def test_icmp_errors_name_their_router():
    s = session("real_icmp_unreachable.pcap")
    assert len(s["icmp_errors"]) == 17
    assert {e["from"] for e in s["icmp_errors"]} == {"192.0.2.1"}
    assert {(e["type"], e["code"]) for e in s["icmp_errors"]} == {(3, 1)}


@pytest.mark.parametrize("name,verdict,code,frames,fields", CAUSES, ids=[c[0] for c in CAUSES])
def test_the_fast_lane_names_the_same_causes(name, verdict, code, frames, fields, monkeypatch):
    """The compiled fast lane keeps every new fact exactly (or sends the packets that
    matter to the reference code)."""
    pytest.importorskip("numba")
    from pushscan.analysis import Analysis, Options
    path = str(CAPTURES / name)
    ref = Analysis([path], Options(fast=False, all_tcp=True)).run()
    fast = Analysis([path], Options(fast=True, all_tcp=True)).run()
    assert fast["sessions"] == ref["sessions"]


# Generated edge cases (captures/make_causes.py, scapy): the lines between causes.
GENERATED = [
    ("gen_zero_window_scaled.pcap", "receiver_stalled", "ZERO_WINDOW_STALL", [46, 47, 49, 51, 53, 55],
     {"side": "server", "probes": 4, "answered": 4, "ended_by": "reset"}),
    ("gen_zero_window_reopens.pcap", "ok", "ZERO_WINDOW", [46, 47, 49, 51],
     {"side": "server", "probes": 2, "ended_by": "reopened"}),
    ("gen_keepalive_unanswered.pcap", "peer_vanished", "PEER_VANISHED", [8] + list(range(10, 19)),
     {"last_answer_frame": 8, "unanswered": 11}),
    ("gen_peer_rebooted.pcap", "peer_restarted", "PEER_RESTARTED", [10, 11],
     {"reset_frame": 11, "idle_seconds": 120.0, "smtp_command": "RCPT"}),
    ("gen_injected_reset.pcap", "middlebox_reset", "INJECTED_RESET", [10, 11],
     {"reset_frame": 10, "reset_ttl": 62, "sender_ttl": [57, 57]}),
    ("gen_injected_reset_before_peer.pcap", "middlebox_reset", "INJECTED_RESET", [2, 3],
     {"reset_frame": 2, "reset_ttl": 62}),
    ("gen_pmtu_blackhole.pcap", "path_mtu", "PMTU_BLACKHOLE", [16, 17, 18, 19, 20, 21],
     {"segment_bytes": 1448, "transmissions": 7, "icmp_frag_needed": 0}),
]


@pytest.mark.parametrize("name,verdict,code,frames,fields", GENERATED, ids=[c[0] for c in GENERATED])
def test_generated_edge_cases(name, verdict, code, frames, fields):
    s = session(name)
    assert s["verdict"] == verdict, codes(s)
    f = finding(s, code)
    assert f["frames"] == frames
    assert {k: f[k] for k in fields} == fields


def test_windows_are_scaled_before_they_are_judged():
    """Raw windows 3 and 1 with a scale of 7 are 384 and 128 bytes, not a closed window;
    the client filled them (window full); only raw 0 is zero."""
    s = session("gen_zero_window_scaled.pcap")
    server = s["directions"]["server_to_client"]
    assert server["window_scale"] == 7 and server["zero_window_count"] == 1
    assert server["zero_windows"][0]["start_frame"] == 46
    assert s["directions"]["client_to_server"]["window_full"] == 2
    assert "UNPUSHED_TURN" not in codes(s) and "UNPUSHED_BEFORE_RESET" not in codes(s)


@pytest.mark.parametrize("name", ["gen_keepalive_answered.pcap", "gen_dup_acks.pcap",
                                  "gen_icmp_frag_needed.pcap"])
def test_what_recovered_is_ok(name):
    s = session(name)
    assert s["verdict"] == "ok", codes(s)


def test_duplicate_acks_and_usable_icmp_are_facts():
    assert session("gen_dup_acks.pcap")["directions"]["server_to_client"]["duplicate_acks"] == 4
    s = session("gen_icmp_frag_needed.pcap")
    assert [e["frame"] for e in s["icmp_errors"]] == [16, 18, 20]
    assert s["icmp_errors"][0]["text"] == "ICMP destination unreachable (fragmentation needed, next-hop MTU 1400)"
    assert "PMTU_BLACKHOLE" not in codes(s) and "ICMP_UNREACHABLE" not in codes(s)


def test_a_sender_still_sending_its_body_did_not_give_up_waiting_for_a_reply():
    assert "LOCAL_GAVE_UP" not in codes(session("gen_pmtu_blackhole.pcap"))


@pytest.mark.parametrize("engine", ["scapy", "tshark"])
@pytest.mark.parametrize("name", ["real_injected_reset.pcap", "real_icmp_unreachable.pcap",
                                  "gen_zero_window_scaled.pcap", "gen_icmp_frag_needed.pcap",
                                  "real_starttls_failed.pcap"])
def test_every_engine_sees_the_same_facts(name, engine):
    """TTL, IP ID, options, windows and ICMP origins from scapy's and tshark's dissection
    give the native engine's report."""
    if engine == "tshark":
        from ..conftest import require
        require("tshark")
    assert session(name, engine) == session(name)
