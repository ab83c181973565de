"""The three engines give the same report on every capture (only the engine name differs).
Tunnels and the link types scapy does not dissect are in tests/decode/test_tunnels.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import pushscan

from ..conftest import ALL_CAPTURES, CAPTURES, require
from ..decode.test_tunnels import SCAPY_CANNOT

def comparable(report: dict) -> dict:
    r = json.loads(json.dumps(report))
    r.pop("engine")
    for i in r["inputs"]:
        i.pop("engine")
    return r


@pytest.mark.parametrize("engine", ["scapy", "tshark"])
@pytest.mark.parametrize("path", ALL_CAPTURES, ids=lambda p: p.name)
def test_engines_agree_with_native(engine, path):
    if engine == "tshark":
        require("tshark")
    native = pushscan.analyze(str(path), all_tcp=True)
    other = pushscan.analyze(str(path), all_tcp=True, engine=engine)
    assert other["engine"] == engine and other["inputs"][0]["engine"] == engine
    if engine == "scapy" and path.name in SCAPY_CANNOT:
        pytest.skip("scapy does not dissect it: tests/decode/test_tunnels.py asserts what it does")
    if engine == "tshark" and path.name == "tun_ppp_hdlc.pcap":
        # tshark reads link types 9 and 50 alike (WTAP_ENCAP_PPP) and does not say which
        assert other["inputs"][0]["link_types"] == ["PPP"]
        other["inputs"][0]["link_types"] = native["inputs"][0]["link_types"]
    assert comparable(other) == comparable(native)


def test_missing_tshark_is_a_usage_error(tmp_path):
    env = dict(os.environ, PATH=str(tmp_path))     # no tshark anywhere on PATH
    r = subprocess.run([sys.executable, "-m", "pushscan", "analyze", "--engine", "tshark",
                        str(CAPTURES / "smtp_ok.pcap")], capture_output=True, text=True, env=env)
    assert r.returncode == 2
    assert "the tshark engine needs tshark: apt-get install tshark" in r.stderr


def test_other_formats_fall_back_to_tshark(tmp_path):
    editcap = require("editcap")
    require("tshark")
    snoop = tmp_path / "smtp_ok.snoop"
    subprocess.run([editcap, "-F", "snoop", str(CAPTURES / "smtp_ok.pcap"), str(snoop)], check=True)
    r = pushscan.analyze(str(snoop))
    assert r["inputs"][0]["engine"] == "tshark"
    plain = pushscan.analyze(str(CAPTURES / "smtp_ok.pcap"))
    assert r["sessions"][0]["directions"] == plain["sessions"][0]["directions"]
    assert r["sessions"][0]["smtp"] == plain["sessions"][0]["smtp"]


def test_other_formats_without_tshark_say_what_to_install(tmp_path):
    editcap = require("editcap")
    snoop = tmp_path / "x.snoop"
    subprocess.run([editcap, "-F", "snoop", str(CAPTURES / "smtp_ok.pcap"), str(snoop)], check=True)
    env = dict(os.environ, PATH=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "pushscan", "analyze", str(snoop)],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 3 and "install tshark and use --engine tshark" in r.stderr


@pytest.mark.parametrize("engine", ["scapy", "tshark"])
def test_engines_need_a_file(engine):
    if engine == "tshark":
        require("tshark")
    r = subprocess.run([sys.executable, "-m", "pushscan", "analyze", "--engine", engine, "-"],
                       input=(CAPTURES / "smtp_ok.pcap").read_bytes(), capture_output=True)
    assert r.returncode == 2 and b"reads files, not standard input" in r.stderr


def test_native_path_does_not_import_heavy_libraries():
    code = ("import sys, pushscan; pushscan.analyze(%r); "
            "print(sorted(m for m in ('scapy', 'pyshark', 'matplotlib', 'numba') if m in sys.modules))"
            % str(CAPTURES / "smtp_ok.pcap"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def far_future_pcapng(path, seconds: bool) -> None:
    """smtp_ok's packets in a pcapng stamped past what 64-bit nanoseconds hold: in whole
    seconds (if_tsresol 0) near 2**62, or in microseconds near 2**64 (past even a
    signed 64-bit raw value)."""
    import struct

    sys.path.insert(0, str(CAPTURES))
    import make_scenarios as ms

    def block(btype: int, body: bytes) -> bytes:
        return struct.pack("<II", btype, 12 + len(body)) + body + struct.pack("<I", 12 + len(body))

    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)),
           block(1, struct.pack("<HHI", 1, 0, 262144)
                 + (struct.pack("<HH", 9, 1) + b"\0\0\0\0" if seconds else b"")
                 + struct.pack("<HH", 0, 0))]
    for i, (_t, ipb) in enumerate(sorted(ms.sc_ok(), key=lambda p: p[0])):
        frame = ms.eth(ipb)
        ts = (1 << 62) + i if seconds else (1 << 64) - 100 + i
        out.append(block(6, struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(frame),
                                        len(frame)) + frame + bytes(-len(frame) % 4)))
    path.write_bytes(b"".join(out))


@pytest.mark.parametrize("seconds", [True, False], ids=["seconds", "raw"])
@pytest.mark.parametrize("engine", ["native", "scapy", "tshark"])
def test_timestamps_past_64_bits_are_no_crash(engine, seconds, tmp_path):
    if engine == "tshark":
        require("tshark")
    f = tmp_path / "future.pcapng"
    far_future_pcapng(f, seconds)
    r = subprocess.run([sys.executable, "-m", "pushscan", "analyze", "--format", "json",
                        "--engine", engine, str(f)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    s = json.loads(r.stdout)["sessions"]
    assert len(s) == 1 and [c["verb"] for c in s[0]["smtp"]["commands"]][:2] == ["EHLO", "MAIL"]
