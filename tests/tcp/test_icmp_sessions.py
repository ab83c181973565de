"""A TCP conversation seen only inside an ICMP error gets a session (and an id) at that
error's frame, as Wireshark gives it a tcp.stream; a quote too short for Wireshark to
number gives none; a late error about a finished session does not change its verdict."""
from __future__ import annotations

import subprocess

import pytest

import pushscan
from pushscan.compiled import available as compiled_available

from ..conftest import require

C, S, ROUTER = "192.0.2.10", "198.51.100.25", "203.0.113.1"


def conversation(sport: int, dst: str) -> list:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    def p(src, to, sp, dp, flags, seq, ack, load=b""):
        return Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / IP(src=src, dst=to) / TCP(sport=sp, dport=dp, flags=flags, seq=seq, ack=ack) / load
    return [p(C, dst, sport, 25, "S", 100, 0), p(dst, C, 25, sport, "SA", 900, 101),
            p(C, dst, sport, 25, "A", 101, 901), p(dst, C, 25, sport, "PA", 901, 101, b"220 hi\r\n"),
            p(C, dst, sport, 25, "FA", 101, 909), p(dst, C, 25, sport, "FA", 909, 102),
            p(C, dst, sport, 25, "A", 102, 910)]


def icmp_about(sport: int, dst: str, quoted_tcp: int):
    from scapy.layers.inet import ICMP, IP, TCP
    from scapy.layers.l2 import Ether
    from scapy.packet import raw

    q = IP(src=C, dst=dst) / TCP(sport=sport, dport=25, flags="S", seq=100)
    return Ether(src="02:00:00:00:00:03", dst="02:00:00:00:00:01") / IP(src=ROUTER, dst=C) / ICMP(type=3, code=1) / raw(q)[:20 + quoted_tcp]


@pytest.fixture(scope="module")
def capture(tmp_path_factory):
    from scapy.utils import wrpcap

    first = conversation(40000, S)
    pkts = first[:4]                                   # session 0 starts (frames 1-4)
    pkts.append(icmp_about(40100, "198.51.100.77", 20))  # frame 5: only in ICMP: session 1
    pkts.append(icmp_about(40101, "198.51.100.78", 8))   # frame 6: 8 bytes: no tcp.stream
    pkts.append(icmp_about(40102, "198.51.100.79", 16))  # frame 7: session 2, then seen (11-17)
    pkts += first[4:]                                  # frames 8-10
    pkts += conversation(40102, "198.51.100.79")
    pkts += conversation(40200, S)                     # session 3 (18-24)
    pkts.append(icmp_about(40000, S, 20))              # frame 25: about session 0, after its end
    for i, pk in enumerate(pkts):
        pk.time = 1_700_000_000 + i / 100
    path = tmp_path_factory.mktemp("icmp") / "icmp_sessions.pcap"
    wrpcap(str(path), pkts)
    return path


def tshark_streams(path) -> dict[int, int]:
    """tcp.stream -> its first frame, over every frame that has one (ICMP errors too)."""
    out = subprocess.run([require("tshark"), "-r", str(path), "-T", "fields", "-e", "frame.number",
                          "-e", "tcp.stream"], capture_output=True, text=True, check=True).stdout
    first: dict[int, int] = {}
    for line in out.splitlines():
        frame, stream = line.split("\t")
        if stream:
            first.setdefault(int(stream), int(frame))
    return first


def analysed(path, engine: str) -> dict:
    if engine == "fast":
        if not compiled_available():
            pytest.skip("the fast lane needs numba or the built kernels")
        return pushscan.analyze(str(path), all_tcp=True, fast=True)
    if engine == "tshark":
        require("tshark")
    return pushscan.analyze(str(path), all_tcp=True, engine=engine, fast=False)


@pytest.mark.parametrize("engine", ["native", "fast", "tshark", "scapy"])
def test_ids_follow_tcp_stream_including_icmp_only_conversations(capture, engine):
    report = analysed(capture, engine)
    ours = {s["id"]: s["first_frame"] for s in report["sessions"]}
    assert ours == tshark_streams(capture) == {0: 1, 1: 5, 2: 7, 3: 18}
    by_id = {s["id"]: s for s in report["sessions"]}
    only = by_id[1]
    assert only["client"] == {"ip": C, "port": 40100}
    assert only["verdict"] == "incomplete" and only["incomplete"] == ["icmp_only"]
    assert only["icmp_errors"][0]["frame"] == 5
    assert any(n.startswith("incomplete: seen only in an ICMP error (frame 5 from 203.0.113.1")
               for n in only["notes"])
    # quoted first, then its packets: one session, complete and fine
    assert by_id[2]["handshake"] == "complete" and by_id[2]["verdict"] == "ok"
    assert [e["frame"] for e in by_id[2]["icmp_errors"]] == [7]
    # an error about session 0 after both FINs: listed, but it did not end anything
    assert by_id[0]["verdict"] == "ok" and [e["frame"] for e in by_id[0]["icmp_errors"]] == [25]
    assert report["inputs"][0]["decode"]["icmp_errors"] == 4
