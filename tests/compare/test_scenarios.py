"""Every recorded pair of captures (captures/path_*: two tcpdumps on a router's two
interfaces, the router changing the traffic) gives the pairs, codes, counts and frames at
both points it was made for (captures/README.md), and tshark agrees on what each frame
shows."""
from __future__ import annotations

import struct
import subprocess

import pytest

from pushscan.analysis import Options
from pushscan.compare import compare

from ..conftest import CAPTURES, require

STRIPPED = [6, 15, 17, 19, 25, 29]
# scenario: (verdict, findings as (code, direction, count, near frames, far frames))
SCENARIOS = {
    "clean": ("clean", []),
    "psh_stripped": ("path_changed", [("PATH_PSH_STRIPPED", "client_to_server", 6, STRIPPED, STRIPPED)]),
    "psh_stripped_waiting": ("psh_stripped", [("PATH_PSH_STRIPPED", "client_to_server", 1, [6], [6])]),
    "psh_added": ("path_changed", [("PATH_PSH_ADDED", "client_to_server", 4, [21, 22, 23, 24],
                                    [21, 22, 23, 24])]),
    "loss": ("path_changed", [("PATH_LOSS", "client_to_server", 2, [21, 23], [])]),
    "injected_reset": ("middlebox_reset", [("PATH_LOSS", "client_to_server", 1, [17], []),
                                           ("PATH_INJECTED_RESET", "server_to_client", 1, [18], [])]),
    "mss_clamped": ("path_changed", [("PATH_MSS_CLAMPED", "client_to_server", 1, [1], [1]),
                                     ("PATH_MSS_CLAMPED", "server_to_client", 1, [2], [2])]),
    "nat": ("clean", []),
    "seq_shift": ("clean", []),
    "nat_seq_shift": ("clean", []),
    "smtp_fixup": ("path_changed", [("PATH_MODIFIED", "client_to_server", 1, [6], [6])]),
}
NAT = {"nat": (("192.0.2.10", 37692), ("198.51.100.1", 47695)),
       "nat_seq_shift": (("192.0.2.10", 36988), ("198.51.100.1", 48420))}
SHIFTED = ("seq_shift", "nat_seq_shift")


def files(name: str) -> tuple[str, str]:
    return str(CAPTURES / f"path_{name}_near.pcap"), str(CAPTURES / f"path_{name}_far.pcap")


@pytest.fixture(scope="module")
def docs() -> dict[str, dict]:
    return {name: compare(*files(name), Options()) for name in SCENARIOS}


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_pairs_codes_counts_frames(docs, name):
    doc = docs[name]
    verdict, want = SCENARIOS[name]
    assert doc["unmatched"] == {"near": [], "far": []}
    (pair,) = doc["pairs"]
    assert pair["near"]["id"] == pair["far"]["id"] == 0
    assert (pair["client_point"], pair["client_point_by"]) == ("near", "ttl")
    got = [(f["code"], f["direction"], f["count"], f["near_frames"], f["far_frames"])
           for f in pair["findings"]]
    assert got == want
    assert pair["verdict"] == verdict
    assert all(f["remedy"] for f in pair["findings"])
    for name_, d in pair["directions"].items():
        assert d["hops"] == 1, name_                     # the router between the points
        assert d["delay_seconds"]["median"] < 0.01
        assert 0 <= d["delay_seconds"]["max"] < 0.05
        assert d["only_at_receiving_point"]["count"] == 0
    assert abs(doc["clock_offset_seconds"]) < 0.001      # one machine's clock


def test_clean_path_pairs_every_segment(docs):
    pair = docs["clean"]["pairs"][0]
    for d in pair["directions"].values():
        assert d["matched"] == d["segments"]["near"] == d["segments"]["far"]
    assert pair["explanation"] == "nothing between the points changed the session"
    assert pair["remedy"] is None


@pytest.mark.parametrize("name", ["nat", "nat_seq_shift"])
def test_nat_still_pairs(docs, name):
    pair = docs[name]["pairs"][0]
    near, far = NAT[name]
    assert (pair["near"]["client"]["ip"], pair["near"]["client"]["port"]) == near
    assert (pair["far"]["client"]["ip"], pair["far"]["client"]["port"]) == far
    assert pair["translated"] == {"client": True, "server": False}


@pytest.mark.parametrize("name", SHIFTED)
def test_sequence_shift_still_matches(docs, name):
    pair = docs[name]["pairs"][0]
    c2s, s2c = pair["directions"]["client_to_server"], pair["directions"]["server_to_client"]
    assert c2s["sequence_offset"] == 1_000_000_000 and s2c["sequence_offset"] == 0
    assert c2s["matched"] == c2s["segments"]["near"] and s2c["matched"] == s2c["segments"]["near"]


def test_loss_names_the_retransmissions_that_recovered(docs):
    (f,) = docs["loss"]["pairs"][0]["findings"]
    assert (f["data_segments"], f["bytes"], f["recovered"], f["not_captured"]) == (2, 2896, 2, 0)
    assert f["retransmissions"] == {"near_frames": [29, 31], "far_frames": [27, 29]}


def test_injected_reset_is_told_from_the_clients_own_later_reset(docs):
    pair = docs["injected_reset"]["pairs"][0]
    reset = next(f for f in pair["findings"] if f["code"] == "PATH_INJECTED_RESET")
    assert (reset["ttl"], reset["sender_ttl"]) == (64, 63)
    assert "TTL 64 where the server's own packets reach near with 63" in reset["message"]
    # the client's own RST (near 20 = far 18) is at both points: not injected, not lost
    assert pair["directions"]["client_to_server"]["matched"] == 8
    assert pair["near"]["verdict"] == "middlebox_reset" and pair["far"]["verdict"] == "ok"
    assert "something between the points reset the session" in pair["explanation"]


def test_mss_clamp_names_both_values(docs):
    syn, synack = docs["mss_clamped"]["pairs"][0]["findings"]
    assert (syn["before"], syn["after"]) == (1460, 536)
    assert syn["message"] == "the client's SYN announced MSS 1460 at near (frame 1) and 536 at far (frame 1)"
    assert (synack["before"], synack["after"]) == (1460, 536)
    assert "SYN-ACK announced MSS 1460 at far (frame 2) and 536 at near (frame 2)" in synack["message"]


def test_smtp_fixup_shows_before_and_after(docs):
    (f,) = docs["smtp_fixup"]["pairs"][0]["findings"]
    assert "`ehlo` -> `XXXX`" in f["message"]
    assert f["changes"] == [{"near_frame": 6, "far_frame": 6, "offset": 0, "before": "ehlo", "after": "XXXX"}]


def test_psh_stripped_in_front_of_a_peer_that_answers_anyway(docs):
    pair = docs["psh_stripped"]["pairs"][0]
    assert "answered anyway: its stack does not wait for PSH" in pair["explanation"]
    assert pair["far"]["verdict"] == "ok"


def test_psh_stripped_in_front_of_a_peer_that_waits_is_the_incident_proven(docs):
    pair = docs["psh_stripped_waiting"]["pairs"][0]
    # near: the client pushed EHLO and the server reset; far: EHLO came without PSH
    assert pair["near"]["verdict"] == "peer_reset" and pair["far"]["verdict"] == "push_problem"
    assert pair["explanation"].startswith(
        "the client pushed its data at near, the path cleared PSH, and at far the server waited "
        "for PSH until the session was reset (the server reset the session after 25 bytes")
    assert pair["explanation"].endswith("during EHLO. The peer acknowledged all of them: received, "
                                        "but by all signs never delivered to its application): "
                                        "the PSH incident, proven")
    assert pair["remedy"].startswith("A firewall or IPS between the points clears PSH")


def test_unrelated_captures_do_not_pair():
    near, _ = files("nat_seq_shift")
    _, far = files("smtp_fixup")
    doc = compare(near, far, Options())
    assert doc["pairs"] == [] and doc["unmatched"] == {"near": [0], "far": [0]}
    assert doc["clock_offset_seconds"] is None


def merged(out, *paths: str) -> str:
    """One pcap of several (same link type), records in time order, as mergecap writes."""
    head, records = b"", []
    for p in paths:
        data = open(p, "rb").read()
        head, at = data[:24], 24
        while at < len(data):
            sec, usec, incl, _ = struct.unpack_from("<IIII", data, at)
            records.append(((sec, usec), data[at:at + 16 + incl]))
            at += 16 + incl
    records.sort(key=lambda r: r[0])
    out.write_bytes(head + b"".join(r for _, r in records))
    return str(out)


def test_sessions_seen_at_one_point_only_are_listed(tmp_path):
    clean_near, clean_far = files("clean")
    fixup_near, fixup_far = files("smtp_fixup")
    doc = compare(merged(tmp_path / "near.pcap", clean_near, fixup_near), clean_far, Options())
    (pair,) = doc["pairs"]
    lonely = 1 - pair["near"]["id"]
    assert doc["unmatched"] == {"near": [lonely], "far": []}
    assert doc["unmatched_sessions"]["near"][0]["client"]["port"] == 37000
    doc = compare(clean_near, merged(tmp_path / "far.pcap", fixup_far, clean_far), Options())
    assert len(doc["pairs"]) == 1 and len(doc["unmatched"]["far"]) == 1 and not doc["unmatched"]["near"]
    # both sessions at both points: two pairs, each with its own
    doc = compare(str(tmp_path / "near.pcap"), str(tmp_path / "far.pcap"), Options())
    assert [(p["near"]["client"]["port"], p["far"]["client"]["port"]) for p in doc["pairs"]] == \
        [(p["near"]["client"]["port"],) * 2 for p in doc["pairs"]]
    assert sorted(p["verdict"] for p in doc["pairs"]) == ["clean", "path_changed"]
    assert doc["unmatched"] == {"near": [], "far": []}


# -- tshark's view of the frames the findings name ------------------------------------------
FIELDS = ["frame.number", "ip.src", "ip.id", "ip.ttl", "tcp.flags.push", "tcp.flags.reset",
          "tcp.len", "tcp.options.timestamp.tsval", "tcp.options.mss_val", "tcp.payload"]


def tshark(path: str) -> dict[int, dict[str, str]]:
    out = subprocess.run([require("tshark"), "-r", path, "-T", "fields", "-E", "occurrence=f",
                          *[a for f in FIELDS for a in ("-e", f)]],
                         capture_output=True, text=True, check=True, timeout=60).stdout
    rows = [dict(zip(FIELDS, line.split("\t"))) for line in out.splitlines()]
    return {int(r["frame.number"]): r for r in rows}


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n, (_, want) in SCENARIOS.items() if want])
def test_tshark_sees_what_the_findings_say(docs, name):
    near_path, far_path = files(name)
    near, far = tshark(near_path), tshark(far_path)
    far_ids = {(r["ip.src"] if r["ip.src"] != "198.51.100.1" else "192.0.2.10", r["ip.id"],
                r["tcp.options.timestamp.tsval"]) for r in far.values()}
    for f in docs[name]["pairs"][0]["findings"]:
        pairs = list(zip(f["near_frames"], f["far_frames"]))
        if f["code"] == "PATH_PSH_STRIPPED":
            assert all(near[a]["tcp.flags.push"] == "1" and far[b]["tcp.flags.push"] == "0" for a, b in pairs)
        elif f["code"] == "PATH_PSH_ADDED":
            assert all(near[a]["tcp.flags.push"] == "0" and far[b]["tcp.flags.push"] == "1" for a, b in pairs)
        elif f["code"] == "PATH_MODIFIED":
            assert all(near[a]["tcp.payload"] != far[b]["tcp.payload"] and
                       near[a]["tcp.len"] == far[b]["tcp.len"] for a, b in pairs)
            assert all(bytes.fromhex(far[b]["tcp.payload"].replace(":", ""))[:4] == b"XXXX" for _, b in pairs)
        elif f["code"] == "PATH_MSS_CLAMPED":
            (a, b), = pairs
            mss = {near[a]["tcp.options.mss_val"], far[b]["tcp.options.mss_val"]}
            assert mss == {"1460", "536"}
        elif f["code"] == "PATH_LOSS":
            for a in f["near_frames"]:            # no packet at far is the same one
                r = near[a]
                assert (r["ip.src"], r["ip.id"], r["tcp.options.timestamp.tsval"]) not in far_ids
        elif f["code"] == "PATH_INJECTED_RESET":
            (a,) = f["near_frames"]
            assert near[a]["tcp.flags.reset"] == "1" and near[a]["ip.src"] == "198.51.100.25"
            assert not any(r["tcp.flags.reset"] == "1" and r["ip.src"] == "198.51.100.25"
                           for r in far.values())
        # paired frames are the same packet: IP ID and TCP timestamp survive the router
        for a, b in pairs:
            assert (near[a]["ip.id"], near[a]["tcp.options.timestamp.tsval"]) == \
                (far[b]["ip.id"], far[b]["tcp.options.timestamp.tsval"])
