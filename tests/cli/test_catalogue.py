"""A catalogue of broken and hostile inputs, each with the exit code and message a user
gets. Never a traceback; whatever could be read is analysed."""
from __future__ import annotations

import gzip
import json
import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from ..conftest import CAPTURES, TESTS, require

OK = (CAPTURES / "smtp_ok.pcap").read_bytes()
NG = (CAPTURES / "smtp_ok_multi_interface.pcapng").read_bytes()


def analyze(path: Path, *args: str, prefix: tuple[str, ...] = ()) -> tuple[int, str, dict | None]:
    r = subprocess.run([*prefix, sys.executable, "-m", "pushscan", "analyze", "--format", "json",
                        *args, str(path)], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(CAPTURES.parent)))
    assert "Traceback" not in r.stderr, r.stderr
    return r.returncode, r.stderr, json.loads(r.stdout) if r.stdout.strip() else None


def records(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each pcap record."""
    out, pos = [], 24
    while pos < len(data):
        n = struct.unpack_from("<I", data, pos + 8)[0]
        out.append((pos, pos + 16 + n))
        pos += 16 + n
    return out


def patch_frame(data: bytes, index: int, offset: int, value: bytes) -> bytes:
    """Overwrite bytes at ``offset`` within frame ``index`` (0-based) of a pcap."""
    start, _ = records(data)[index]
    b = bytearray(data)
    at = start + 16 + offset
    b[at:at + len(value)] = value
    return bytes(b)


SHB_LEN = struct.unpack_from("<I", NG, 4)[0]


def compressed(tool: str) -> Callable[[], bytes]:
    """The capture compressed as ``tool`` does: xz and bzip2 by the libraries they use
    (Python's lzma and bz2), others by the program itself."""
    def make() -> bytes:
        if tool == "xz":
            import lzma
            return lzma.compress(OK)
        if tool == "bzip2":
            import bz2
            return bz2.compress(OK)
        require(tool)
        return subprocess.run([tool, "-c"], input=OK, capture_output=True, check=True).stdout
    return make


def pcapng_with_unknown_blocks() -> bytes:
    shb_len = struct.unpack_from("<I", NG, 4)[0]
    custom = struct.pack("<II", 0x0BAD, 20) + b"junkjunk" + struct.pack("<I", 20)
    return NG[:shb_len] + custom + NG[shb_len:] + custom


# name -> (bytes of the input, exit code, text in stderr, a check of the report or None)
CASES: dict[str, tuple[Callable[[], bytes], int, str, Callable[[dict], bool] | None]] = {
    "empty file": (lambda: b"", 3, "empty file", None),
    "text file": (lambda: b"Received: from mx\r\nSubject: not a capture\r\n", 3,
                  "not a pcap or pcapng capture", None),
    "ELF binary": (lambda: b"\x7fELF\x02\x01\x01\x00" + bytes(200), 3, "not a pcap or pcapng capture", None),
    "PNG image": (lambda: b"\x89PNG\r\n\x1a\n" + bytes(200), 3, "not a pcap or pcapng capture", None),
    "truncated pcap header": (lambda: OK[:13], 3, "truncated pcap file header", None),
    "truncated pcapng header": (lambda: NG[:9], 3, "truncated pcapng section header", None),
    "truncated record": (lambda: OK[:-20], 0, "truncated record",
                         lambda r: r["inputs"][0]["packets"] == 34 and r["sessions"][0]["last_frame"] == 34),
    "record claiming 2 GB": (lambda: OK[:records(OK)[5][0] + 8] + struct.pack("<I", 0x7FFFFFF0)
                             + OK[records(OK)[5][0] + 12:], 0, "impossible length",
                             lambda r: r["inputs"][0]["packets"] == 5),
    "pcapng bad block length": (lambda: NG[:SHB_LEN + 4] + struct.pack("<I", 7) + NG[SHB_LEN + 8:], 0,
                                "bad length", lambda r: r["inputs"][0]["packets"] == 0),
    # the first block is the file's header: a bad length there is an unreadable file
    "pcapng section header with a bad length": (lambda: NG[:4] + struct.pack("<I", 7) + NG[8:], 3,
                                                "pcapng section header has a bad length 7", None),
    "pcapng section header longer than the file": (lambda: NG[:4] + struct.pack("<I", 1 << 30) + NG[8:], 3,
                                                   "pcapng section header has a bad length", None),
    # a 12-byte block of a type whose fields need more: every good packet before it is kept
    "pcapng ending in a 12-byte EPB": (lambda: NG + struct.pack("<III", 6, 12, 12), 0,
                                       "pcapng block at byte 7824 is too short for its type 6",
                                       lambda r: r["inputs"][0]["packets"] == 35
                                       and r["sessions"][0]["verdict"] == "ok"),
    "pcapng ending in a 12-byte IDB": (lambda: NG + struct.pack("<III", 1, 12, 12), 0,
                                       "pcapng block at byte 7824 is too short for its type 1",
                                       lambda r: r["inputs"][0]["packets"] == 35),
    "first pcap record garbage": (lambda: OK[:24] + b"\xff" * 16 + OK[24:], 0,
                                  "record at byte 24 claims an impossible length",
                                  lambda r: r["inputs"][0]["packets"] == 0 and r["sessions"] == []),
    "no packets at all": (lambda: OK[:24], 0, "", lambda r: r["inputs"][0]["packets"] == 0),
    "xz-compressed": (compressed("xz"), 3, "xz-compressed data: pushscan reads plain and gzip-compressed "
                      "captures; decompress it first (xz -dc FILE | pushscan analyze -)", None),
    "bzip2-compressed": (compressed("bzip2"), 3, "bzip2-compressed data: pushscan reads plain and "
                         "gzip-compressed captures", None),
    "zstd-compressed": (compressed("zstd"), 3, "zstd-compressed data", None),
    "gzip inside gzip": (lambda: gzip.compress(gzip.compress(OK, mtime=0), mtime=0), 3,
                         "gzip inside gzip: decompress it once first (gzip -dc FILE | pushscan analyze -)",
                         None),
    "xz inside gzip": (lambda: gzip.compress(compressed("xz")(), mtime=0), 3,
                       "xz-compressed data inside gzip", None),
    "pcapng unknown blocks": (pcapng_with_unknown_blocks, 0, "",
                              lambda r: r["inputs"][0]["errors"] == [] and r["sessions"][0]["verdict"] == "ok"),
    "gzip that is not gzip": (lambda: b"\x1f\x8b\x08\x00" + b"not deflate at all" * 10, 3, "gzip", None),
    "gzip ending early": (lambda: gzip.compress(OK, mtime=0)[:-400], 0, "gzip stream ends early",
                          lambda r: 0 < r["inputs"][0]["packets"] < 35),
    "gzip corrupt in the middle": (lambda: gzip.compress(OK, mtime=0)[:700] + b"\xff" * 50
                                   + gzip.compress(OK, mtime=0)[750:], 0, "gzip data is corrupt",
                                   lambda r: 0 < r["inputs"][0]["packets"] < 35),
    "two gzip members": (lambda: gzip.compress(OK[:5000], mtime=0) + gzip.compress(OK[5000:], mtime=0),
                         0, "", lambda r: r["inputs"][0]["packets"] == 35 and r["inputs"][0]["errors"] == []),
    "unknown link type": (lambda: OK[:20] + struct.pack("<I", 147) + OK[24:], 0, "",
                          lambda r: r["inputs"][0]["decode"]["unsupported_link_type"] == 35
                          and r["inputs"][0]["link_types"] == ["LINKTYPE_147"]),
    "IP header length 60 > packet": (lambda: patch_frame(OK, 0, 14, b"\x4f"), 0, "",
                                     lambda r: r["inputs"][0]["decode"]["malformed"] == 1),
    "IP total length shorter than headers": (lambda: patch_frame(OK, 1, 16, b"\x00\x0a"), 0, "",
                                             lambda r: r["inputs"][0]["decode"]["malformed"] == 1),
    "TCP data offset past the segment": (lambda: patch_frame(OK, 2, 34 + 12, b"\xf0"), 0, "",
                                         lambda r: r["inputs"][0]["decode"]["malformed"] == 1),
    "TCP data offset below 20": (lambda: patch_frame(OK, 2, 34 + 12, b"\x20"), 0, "",
                                 lambda r: r["inputs"][0]["decode"]["malformed"] == 1),
    "TCP options overrunning": (lambda: patch_frame(OK, 0, 34 + 20, b"\x02\xff"), 0, "",
                                lambda r: r["sessions"][0]["directions"]["client_to_server"]["mss"] is None),
}


@pytest.mark.parametrize("name", list(CASES))
def test_catalogue(tmp_path, name):
    make, code, text, check = CASES[name]
    f = tmp_path / "input.pcap"
    f.write_bytes(make())
    before = f.read_bytes()
    rc, err, report = analyze(f)
    assert rc == code, err
    assert text in err
    if code == 3:
        assert err.strip().count("\n") == 0 and err.startswith(f"pushscan: error: {f}: ")
    if check is not None:
        assert report is not None and check(report), report["inputs"] if report else None
    assert f.read_bytes() == before


def test_directory_missing_and_fifo(tmp_path):
    assert analyze(tmp_path)[:2] == (3, f"pushscan: error: {tmp_path}: is a directory, not a capture file\n")
    assert analyze(tmp_path / "nope.pcap")[0] == 3


def test_no_read_permission(tmp_path):
    f = tmp_path / "secret.pcap"
    f.write_bytes(OK)
    f.chmod(0)
    # root reads anything: take away the capabilities that let it
    prefix = ("setpriv", "--bounding-set=-dac_override,-dac_read_search", "--") if os.geteuid() == 0 else ()
    rc, err, _ = analyze(f, prefix=prefix)
    assert rc == 3 and err == f"pushscan: error: {f}: permission denied\n"


def test_zero_length_and_64k_segments(tmp_path):
    sys.path.insert(0, str(CAPTURES))
    import make_scenarios as ms
    cap: list = []
    c = ms.Conv(cap, mss=65495)
    c.handshake()
    c.send(ms.S, ms.GREETING)
    c.send(ms.C, b"")                         # a zero-length "send": only an ACK
    c.send(ms.C, b"X" * 65495, seg=65495)     # one 64 KB segment: IPv4 total length 65535
    c.fin()
    f = tmp_path / "big.pcap"
    ms.write_pcap(f, cap, link="raw")
    rc, _, r = analyze(f)
    d = r["sessions"][0]["directions"]["client_to_server"]
    assert rc == 0 and d["bytes"] == 65495 and d["data_segments"] == 1


@pytest.mark.parametrize("path", sorted((TESTS / "catalogue").glob("*.pcap")),
                         ids=lambda p: p.name)
def test_saved_crashes_stay_fixed(path):
    rc, _, _ = analyze(path)
    assert rc in (0, 3)


def run_raw(*args: str, **kw) -> subprocess.CompletedProcess[bytes]:
    """pushscan with bytes in and out (file names that are not UTF-8)."""
    r = subprocess.run([sys.executable, "-m", "pushscan", *args], capture_output=True, timeout=120, **kw)
    assert b"Traceback" not in r.stderr, r.stderr.decode(errors="replace")
    return r


def test_closed_standard_input_and_output(tmp_path):
    f = tmp_path / "ok.pcap"
    f.write_bytes(OK)
    r = run_raw("analyze", "-", stdin=subprocess.DEVNULL)          # open, and empty
    assert r.returncode == 3 and r.stderr == b"pushscan: error: -: empty file\n"
    closed_in = subprocess.run(f"{sys.executable} -m pushscan analyze - <&-", shell=True,
                               capture_output=True, timeout=60)
    assert closed_in.returncode == 3 and closed_in.stderr == b"pushscan: error: -: standard input is closed\n"
    closed_out = subprocess.run(f"{sys.executable} -m pushscan analyze {f} >&-", shell=True,
                                capture_output=True, timeout=60)
    assert closed_out.returncode == 5
    assert closed_out.stderr == b"pushscan: error: cannot write standard output: it is closed\n"


NAMES = ["gw[eth0].pcap", "[bold]x[red].pcap", "50%.pcap", "a b.pcap"]


@pytest.mark.parametrize("name", NAMES)
def test_file_names_are_printed_literally(tmp_path, name):
    f = tmp_path / name
    f.write_bytes(OK)
    r = run_raw("analyze", "--format", "json", str(f))
    assert r.returncode == 0 and json.loads(r.stdout)["inputs"][0]["path"] == str(f)
    r = run_raw("check", str(f))
    assert r.returncode == 0 and r.stdout.startswith(f"PASS {f} (1 session)".encode())
    r = run_raw("report", str(f), "-o", str(tmp_path / "r.html"))
    assert r.returncode == 0 and str(f).encode() in (tmp_path / "r.html").read_bytes()


@pytest.mark.parametrize("name", NAMES[:2] + ["d[/]x.pcap"])
def test_file_names_are_printed_literally_in_the_text_report(tmp_path, name):
    f = tmp_path / name
    f.parent.mkdir(exist_ok=True)          # "d[/]x.pcap": the directory "d[" holds "]x.pcap"
    f.write_bytes(OK)
    r = subprocess.run([sys.executable, "-m", "pushscan", "analyze", str(f)], capture_output=True, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith(f"{f}: pcap, EN10MB, 35 packets".encode())


def test_a_file_name_that_is_not_utf8(tmp_path):
    name = os.fsdecode(b"bad\xff\xfe.pcap")
    f = tmp_path / name
    f.write_bytes(OK)
    raw = os.fsencode(str(f))
    r = run_raw("analyze", str(f))
    assert r.returncode == 0 and r.stdout.startswith(raw + b": pcap")      # the bytes, literally
    r = run_raw("follow", str(f), "--session", "0")
    assert r.returncode == 0 and r.stdout.startswith(b"session 0: ")
    r = run_raw("report", str(f), "-o", str(tmp_path / "r.html"))
    assert r.returncode == 0 and r.stdout.startswith(os.fsencode(str(tmp_path / "r.html")))
    assert raw in (tmp_path / "r.html").read_bytes()
    r = run_raw("check", str(f), "--junit", str(tmp_path / "j.xml"))
    assert r.returncode == 0 and r.stdout.startswith(b"PASS " + raw)
    r = run_raw("analyze", "--format", "json", str(f))
    assert r.returncode == 0 and json.loads(r.stdout)["inputs"][0]["path"] == str(f)
    bad = f.with_name(os.fsdecode(b"gone\xff.pcap"))
    r = run_raw("analyze", str(bad))
    assert r.returncode == 3 and r.stderr == b"pushscan: error: " + os.fsencode(str(bad)) + b": no such file\n"
