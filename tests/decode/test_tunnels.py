"""Tunnels and other link types (captures/tun_*.pcap, made by captures/make_tunnels.py):
every engine and the fast lane find the inner session of each file, with the data and
PSH counts of its ground truth (captures/tunnels_truth.json, checked against tshark),
and say what it came through."""
from __future__ import annotations

import json

import pytest

import pushscan
from pushscan.compiled import available as compiled_available

from ..conftest import CAPTURES, require

TRUTH = json.loads((CAPTURES / "tunnels_truth.json").read_text())

# The truth's names (make_tunnels' own) against pushscan's ``tunnel.kind``; None: a link
# layer, not a tunnel (the session has no ``tunnel``).
KIND = {"mpls": "mpls", "mpls-pw-ether": "mpls+pseudowire", "vlan-mpls-pw-vlan": "mpls+pseudowire",
        "pppoe": "pppoe", "gre": "gre", "gre-teb": "gre-ethernet", "erspan1": "erspan",
        "erspan2": "erspan", "erspan3": "erspan", "vxlan": "vxlan", "geneve": "geneve",
        "gtpu": "gtp-u", "ipip": "ipip", "6in4": "6in4", "4in6": "4in6", "6in6": "6in6",
        "teredo": "teredo", "gre+vxlan": "gre+vxlan", "mpls+gre": "mpls+gre",
        "802.11": None, "ppp": None, "chdlc": None, "nflog": None, "ipoib": None,
        "juniper-ether": None, "ipv6-jumbogram": None}
# What scapy does not dissect: its engine finds no session there (said in README).
SCAPY_CANNOT = {"tun_nflog.pcap", "tun_ipoib.pcap", "tun_juniper_ether.pcap", "tun_teredo.pcap"}
ENGINES = ["native", "fast", "tshark", "scapy"]


def endpoint(e: dict) -> str:
    return f"[{e['ip']}]:{e['port']}" if ":" in e["ip"] else f"{e['ip']}:{e['port']}"


def run(name: str, engine: str) -> dict:
    path = str(CAPTURES / name)
    if engine == "fast":
        if not compiled_available():
            pytest.skip("the fast lane needs numba or the built kernels")
        return pushscan.analyze(path, all_tcp=True, fast=True)
    if engine == "tshark":
        require("tshark")
    return pushscan.analyze(path, all_tcp=True, engine=engine)


def test_every_tunnel_capture_has_a_truth():
    files = sorted(p.name for p in CAPTURES.glob("tun_*.pcap"))
    assert files == sorted(TRUTH) and len(files) == 34
    assert {t["tunnel"]["kind"] for t in TRUTH.values()} <= set(KIND)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("name", sorted(TRUTH))
def test_inner_session_and_its_tunnel(name, engine):
    truth = TRUTH[name]
    report = run(name, engine)
    sessions = report["sessions"]
    decode = report["inputs"][0]["decode"]
    assert report["inputs"][0]["packets"] == truth["frames"]
    if engine == "scapy" and name in SCAPY_CANNOT:
        assert sessions == []
        assert decode["unsupported_link_type"] + decode["not_ip"] + decode["not_tcp"] == truth["frames"]
        return
    assert len(sessions) == truth["streams"]
    if not truth["streams"]:
        return
    (s,) = sessions
    assert (endpoint(s["client"]), endpoint(s["server"])) == (truth["inner"]["client"], truth["inner"]["server"])
    for key, d in (("c2s", "client_to_server"), ("s2c", "server_to_client")):
        assert (s["directions"][d]["data_segments"], s["directions"][d]["psh_segments"]) == \
            (truth[key]["data"], truth[key]["psh"]), d
    assert s["verdict"] == "ok"
    kind = KIND[truth["tunnel"]["kind"]]
    if kind is None:
        assert s["tunnel"] is None and decode["tunneled"] == 0
        return
    t = truth["tunnel"]
    ident = t["id"][-1] if isinstance(t["id"], list) else t["id"]     # the innermost label
    outer = {"src": t["outer_src"], "dst": t["outer_dst"]} if "." in t["outer_src"] or \
        (":" in t["outer_src"] and t["outer_src"].count(":") != 5) else None   # not a MAC
    assert s["tunnel"] == {"kind": kind, "outer": outer, "id": ident}
    assert decode["tunneled"] == decode["tcp_segments"] > 0


@pytest.mark.parametrize("engine", ENGINES)
def test_80211_frames_that_carry_no_data(engine):
    """Radiotap 802.11: ACKs and beacons are counted as 802.11 control (not "not IP");
    a file of management frames only has no session and says why."""
    with_data = run("tun_80211_radiotap.pcap", engine)["inputs"][0]["decode"]
    assert with_data["wlan_control"] == 48 - 23 and with_data["tcp_segments"] == 23
    mgmt = run("tun_80211_mgmt_only.pcap", engine)
    assert mgmt["sessions"] == []
    assert mgmt["inputs"][0]["decode"]["wlan_control"] == 16
    assert mgmt["inputs"][0]["decode"]["not_ip"] == 0


def test_jumbogram_is_one_segment_of_70000_bytes():
    report = run("tun_ipv6_jumbo.pcap", "native")
    c2s = report["sessions"][0]["directions"]["client_to_server"]
    assert c2s["bytes"] == 70095 and c2s["oversize_segments"] >= 1
