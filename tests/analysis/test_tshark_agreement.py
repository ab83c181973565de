"""For every capture, each session's per-direction data and PSH segment counts equal
tshark's own (by tcp.stream, which pushscan's session ids follow, also for conversations
seen only in the TCP header an ICMP error quotes)."""
from __future__ import annotations

import collections
import subprocess

import pytest

import pushscan

from ..conftest import ALL_CAPTURES, require


def innermost(ip4: str, ip6: str, protocols: str) -> str:
    """The inner source address of a tunnelled packet: the last of its IP layers."""
    layers = protocols.split(":")
    last4 = max((i for i, p in enumerate(layers) if p == "ip"), default=-1)
    last6 = max((i for i, p in enumerate(layers) if p == "ipv6"), default=-1)
    return (ip4 if last4 > last6 else ip6).split(",")[-1]


def tshark_counts(path: str) -> tuple[dict[tuple[int, str, int], list[int]], set[int]]:
    out = subprocess.run(
        [require("tshark"), "-r", path, "-Y", "tcp", "-T", "fields", "-e", "icmp.type", "-e", "icmpv6.type",
         "-e", "tcp.stream", "-e", "ip.src", "-e", "ipv6.src", "-e", "tcp.srcport", "-e", "tcp.len",
         "-e", "tcp.flags.push", "-e", "frame.protocols"],
        capture_output=True, text=True, check=True, timeout=120).stdout
    counts: dict[tuple[int, str, int], list[int]] = collections.defaultdict(lambda: [0, 0])
    streams = set()
    for line in out.splitlines():
        icmp4, icmp6, stream, ip4, ip6, port, length, push, protocols = line.split("\t")
        if stream:            # (an ICMP error that quotes too little of a TCP header has none)
            streams.add(int(stream))
        if not icmp4 and not icmp6 and int(length) > 0:
            c = counts[(int(stream), innermost(ip4, ip6, protocols), int(port))]
            c[0] += 1
            c[1] += push in ("1", "True")
    return dict(counts), streams


@pytest.mark.parametrize("path", ALL_CAPTURES, ids=lambda p: p.name)
def test_segment_and_psh_counts_equal_tshark(path):
    report = pushscan.analyze(str(path), all_tcp=True)
    ours = {}
    for s in report["sessions"]:
        for key, ep in (("client_to_server", s["client"]), ("server_to_client", s["server"])):
            d = s["directions"][key]
            if d["data_segments"]:
                ours[(s["id"], ep["ip"], ep["port"])] = [d["data_segments"], d["psh_segments"]]
    theirs, streams = tshark_counts(str(path))
    assert ours == theirs
    assert streams == set(range(report["summary"]["tcp_sessions"]))
