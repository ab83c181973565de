"""pcapng read fast: the compiled scanner takes runs of enhanced packet blocks, a plain
file is memory-mapped, and every other block (and any block it does not take) goes
through the reference code. The reports must be the reference's, whatever the blocks."""
from __future__ import annotations

import functools
import gzip
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pushscan.analysis import Analysis, Options
from pushscan.sources import capture

from ..conftest import bench_capture, require


def _block(e: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def _shb(e: str) -> bytes:
    return _block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def _idb(e: str, linktype: int, tsresol: int | None = None) -> bytes:
    opts = b""
    if tsresol is not None:
        opts = struct.pack(e + "HH", 9, 1) + bytes([tsresol, 0, 0, 0]) + struct.pack(e + "HH", 0, 0)
    return _block(e, 1, struct.pack(e + "HHI", linktype, 0, 262144) + opts)


def _epb(e: str, iface: int, ts: int, data: bytes, orig: int | None = None) -> bytes:
    return _block(e, 6, struct.pack(e + "IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data),
                                    len(data) if orig is None else orig) + data)


def pcap_records(pcap: bytes) -> list[tuple[int, int, bytes, int]]:
    """(seconds, microseconds, data, original length) of a little-endian pcap file."""
    out, pos = [], 24
    while pos + 16 <= len(pcap):
        s, us, incl, orig = struct.unpack_from("<IIII", pcap, pos)
        out.append((s, us, pcap[pos + 16:pos + 16 + incl], orig))
        pos += 16 + incl
    return out


def mixed_pcapng(pcap: bytes) -> bytes:
    """The pcap's packets as pcapng with every kind of block among them: two interfaces
    with different time units, statistics, unknown and simple packet blocks, a second
    section in the other byte order, an obsolete packet block, a time past 64 bits."""
    recs = pcap_records(pcap)
    out = [_shb("<"), _idb("<", 1), _idb("<", 1, tsresol=9)]
    e, half = "<", len(recs) // 2
    for i, (s, us, data, orig) in enumerate(recs):
        if i == half:           # a new section, big-endian, interfaces numbered anew
            e = ">"
            out += [_shb(e), _idb(e, 1, tsresol=9)]
        ns = (s * 1_000_000 + us) * 1000
        if e == "<" and i % 3 == 1:
            out.append(_epb(e, 1, ns, data, orig))           # nanosecond interface
        elif e == "<":
            out.append(_epb(e, 0, ns // 1000, data, orig))   # microsecond interface
        elif i % 997 == 5:
            out.append(_block(e, 3, struct.pack(e + "I", orig) + data))   # simple: no time
        elif i % 1009 == 7:
            out.append(_block(e, 2, struct.pack(e + "HHIIII", 0, 0, ns >> 32, ns & 0xFFFFFFFF,
                                                len(data), orig) + data))   # obsolete
        else:
            out.append(_epb(e, 0, ns, data, orig))
        if i % 500 == 250:
            out.append(_block(e, 5, struct.pack(e + "III", 0, 0, 0) + struct.pack(e + "HHQ", 5, 8, i)
                              + struct.pack(e + "HH", 0, 0)))   # statistics: drops
            out.append(_block(e, 0xBAD, b"custom"))          # a block type nobody knows
    s, us, data, orig = recs[-1]
    out.append(_epb(e, 0, (1 << 64) - 1, data, orig))        # a time past 64-bit nanoseconds
    return b"".join(out)


def reports(path: str, **opts) -> tuple[dict, dict]:
    """(reference, fast) reports of one input."""
    ref = Analysis([path], Options(fast=False, **opts)).run()
    fast = Analysis([path], Options(fast=True, **opts)).run()
    return ref, fast


@functools.lru_cache(maxsize=1)
def _mixed() -> tuple[bytes, bytes]:
    with tempfile.TemporaryDirectory() as d:
        pcap = bench_capture(Path(d) / "b.pcap", 20_000, seed=4).read_bytes()
    return pcap, mixed_pcapng(pcap)


@pytest.fixture
def mixed() -> tuple[bytes, bytes]:
    """A bench capture (pcap) and its packets as pcapng with every kind of block."""
    return _mixed()


@pytest.mark.parametrize("batch", [7, 16384])
def test_every_block_kind_read_fast_as_the_reference(mixed, tmp_path, monkeypatch, batch):
    """A mapped file and a compressed stream (not mapped), batch limits falling inside
    runs of packet blocks or not: the reference's report, sessions and counts alike."""
    monkeypatch.setattr(capture, "BATCH", batch)
    f = tmp_path / "m.pcapng"
    f.write_bytes(mixed[1])
    gz = tmp_path / "m.pcapng.gz"
    gz.write_bytes(gzip.compress(mixed[1], 1))
    for path in (f, gz):
        ref, fast = reports(str(path))
        assert fast == ref
        assert fast["inputs"][0]["decode"]["tcp_segments"] == len(pcap_records(mixed[0])) + 1
        assert len(fast["sessions"]) > 50


def test_the_compiled_scanner_takes_the_packet_blocks(mixed, tmp_path, monkeypatch):
    """Not a test of speed: that the fast path is the one taken (all but the blocks the
    reference must read), and that a mapped file is read from the mapping."""
    from pushscan.sources import scan
    taken = []
    orig = scan.scan_epb_compiled

    def counted(buf, *args):
        r = orig(buf, *args)
        taken.append((r[0], type(buf).__name__))
        return r
    monkeypatch.setattr(scan, "scan_epb_compiled", counted)
    f = tmp_path / "m.pcapng"
    f.write_bytes(mixed[1])
    Analysis([str(f)], Options(fast=True)).run()
    packets = len(pcap_records(mixed[0]))
    assert sum(k for k, _ in taken) > packets - 100
    assert {t for _, t in taken} == {"mmap"}


def test_pcapng_from_editcap_reports_as_the_pcap(tmp_path):
    """Wireshark's own conversion (editcap): the same sessions and findings as the pcap."""
    editcap = require("editcap")
    pcap = bench_capture(tmp_path / "b.pcap", 30_000, seed=6)
    ng = tmp_path / "b.pcapng"
    subprocess.run([editcap, "-F", "pcapng", str(pcap), str(ng)], check=True)
    a = Analysis([str(pcap)], Options(fast=True)).run()
    b = Analysis([str(ng)], Options(fast=True)).run()
    for s in a["sessions"] + b["sessions"]:
        s.pop("file")
    assert a["sessions"] == b["sessions"] and a["summary"] == b["summary"]
    assert b["inputs"][0]["format"] == "pcapng"


def block_starts(ng: bytes) -> list[tuple[int, str]]:
    """(offset, byte order) of each block of a well-formed pcapng file."""
    out, pos, e = [], 0, "<"
    while pos + 12 <= len(ng):
        if ng[pos:pos + 4] == b"\x0a\x0d\x0d\x0a":
            e = "<" if ng[pos + 8:pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
        out.append((pos, e))
        pos += struct.unpack_from(e + "I", ng, pos + 4)[0]
    return out


FIELDS = {   # field of a block -> offset in it, values worth trying
    "type": (0, [1, 2, 3, 5, 6, 0xBAD, 0x0A0D0D0A]),
    "length": (4, [0, 12, 13, 28, 32, 36, 1 << 20, 1 << 30, 0xFFFFFFFF]),
    "interface": (8, [0, 1, 2, 7, 0xFFFFFFFF]),
    "time_high": (12, [0, 1 << 31, 0xFFFFFFFF]),
    "captured": (20, [0, 1, 40, 1500, 1 << 16, 0xFFFFFFFF]),
}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_damaged_pcapng_reads_fast_as_the_reference(tmp_path_factory, data):
    """Hostile blocks anywhere (a field of any block set to a telling value, the file
    cut anywhere): the fast reader stops where the reference does, with the same error
    and the same sessions before it, or reads on exactly as it does."""
    ng = _mixed()[1][:400_000]
    blocks = [b for b in block_starts(ng) if b[0] + 32 <= len(ng)]
    buf = bytearray(ng)
    for _ in range(data.draw(st.integers(1, 3))):
        pos, e = data.draw(st.sampled_from(blocks))
        at, values = FIELDS[data.draw(st.sampled_from(sorted(FIELDS)))]
        buf[pos + at:pos + at + 4] = struct.pack(e + "I", data.draw(st.sampled_from(values)))
    if data.draw(st.booleans()):
        del buf[data.draw(st.integers(1, len(buf))):]
    f = tmp_path_factory.mktemp("ng") / "d.pcapng"
    f.write_bytes(bytes(buf))
    ref, fast = reports(str(f))
    assert fast == ref
