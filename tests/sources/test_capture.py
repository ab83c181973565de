"""The reader streams: results do not depend on read chunk sizes, and a file cut at any
byte yields the packets before the cut plus a recorded error, never an exception."""
from __future__ import annotations

import io

import pytest

import pushscan
from pushscan.errors import CaptureDamaged
from pushscan.sources import capture
from pushscan.sources.capture import CaptureReader

from ..conftest import CAPTURES


def read_all(data: bytes) -> tuple[int, list[int], str | None]:
    try:
        r = CaptureReader(io.BytesIO(data), "mem")
    except ValueError as exc:      # the file header itself is cut or wrong: unreadable
        return 0, [], str(exc)
    ts: list[int] = []
    err = None
    try:
        for b in r.batches():
            ts.extend(b.ts.tolist())
    except CaptureDamaged as exc:
        err = str(exc)
    return r.packets, ts, err


@pytest.mark.parametrize("name", ["smtp_ok.pcap", "smtp_ok_multi_interface.pcapng",
                                  "smtp_ok_nanosecond_bigendian.pcap", "smtp_ok.pcap.gz"])
@pytest.mark.parametrize("chunk", [1, 7, 100, 4096])
def test_chunk_size_does_not_matter(monkeypatch, name, chunk):
    data = (CAPTURES / name).read_bytes()
    whole = read_all(data)
    monkeypatch.setattr(capture, "CHUNK", chunk)
    assert read_all(data) == whole
    assert whole[0] == 35 and whole[2] is None


def boundaries(data: bytes) -> set[int]:
    """Offsets at which a record or block ends (a cut there leaves a valid file)."""
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        pos, out = 0, set()
        while pos < len(data):
            pos += int.from_bytes(data[pos + 4:pos + 8], "little")
            out.add(pos)
        return out
    pos, out = 24, {24}
    while pos < len(data):
        pos += 16 + int.from_bytes(data[pos + 8:pos + 12], "little")
        out.add(pos)
    return out


@pytest.mark.parametrize("name", ["smtp_unpushed_reset.pcap", "smtp_ok_multi_interface.pcapng"])
def test_cut_at_every_byte(name):
    data = (CAPTURES / name).read_bytes()
    full, full_ts, _ = read_all(data)
    ends = boundaries(data)
    last = -1
    for cut in range(4, len(data)):
        n, ts, err = read_all(data[:cut])
        assert ts == full_ts[:n]
        assert n >= last          # more bytes never give fewer packets
        last = n
        assert (err is None) == (cut in ends), cut
    assert last < full


def test_analyze_keeps_sessions_of_a_cut_file(tmp_path):
    data = (CAPTURES / "smtp_port_reuse.pcap").read_bytes()
    f = tmp_path / "cut.pcap"
    f.write_bytes(data[: len(data) // 2 + 7])
    r = pushscan.analyze(str(f))
    assert r["inputs"][0]["errors"]
    assert len(r["sessions"]) >= 1 and r["sessions"][0]["verdict"] == "ok"


def test_huge_record_length_is_damage_not_allocation():
    data = bytearray((CAPTURES / "smtp_ok.pcap").read_bytes()[:24 + 16 + 74])
    data[24 + 8:24 + 12] = (0x7FFFFFF0).to_bytes(4, "little")   # incl_len of record 1
    n, _, err = read_all(bytes(data))
    assert n == 0 and "impossible length" in err


def test_pcapng_bad_block_length():
    data = bytearray((CAPTURES / "smtp_ok_multi_interface.pcapng").read_bytes())
    # the first block after the section header: corrupt its length
    shb_len = int.from_bytes(data[4:8], "little")
    data[shb_len + 4:shb_len + 8] = (13).to_bytes(4, "little")
    n, _, err = read_all(bytes(data))
    assert n == 0 and "bad length" in err


@pytest.mark.parametrize("name", ["smtp_ok.pcap", "smtp_ok_nanosecond_bigendian.pcap", "real_smtplib_pipelining.pcap"])
@pytest.mark.parametrize("cut", [0, 1, 17, 100])
def test_numba_scanner_equals_python_scanner(name, cut):
    from pushscan.sources import scan
    data = (CAPTURES / name).read_bytes()
    data = data[:len(data) - cut]
    big = data[:4] in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d")
    py = scan.scan_pcap_py(data, 24, big, 1 << 20)
    nb = scan.scan_pcap_compiled(data, 24, big, 1 << 20)
    assert py[:3] == nb[:3]
    for a, b in zip(py[3:], nb[3:]):
        assert a.tolist() == b.tolist()
    bad = bytearray(data)
    bad[24 + 8:24 + 12] = (2 << 20).to_bytes(4, "big" if big else "little")
    assert scan.scan_pcap_py(bytes(bad), 24, big, 1 << 20)[:3] == scan.scan_pcap_compiled(bytes(bad), 24, big, 1 << 20)[:3] == (0, 24, True)


# -- a file truncated or reused while it is read (a capture ring) -----------------------
def _big_capture(path, packets: int = 600_000):
    from ..conftest import bench_capture
    return bench_capture(path, packets)


def _mapped_by(pid: int, path) -> bool:
    try:
        with open(f"/proc/{pid}/maps") as f:
            return str(path) in f.read()
    except FileNotFoundError:
        return False


def _reading(pid: int, path, past: int = 8 << 20) -> bool:
    """``pid`` has ``path`` open and has read ``past`` bytes of it."""
    import os
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                    return int(f.readline().split()[1]) > past
        except (FileNotFoundError, ValueError):
            continue
    return False


@pytest.mark.slow
def test_a_mapped_file_reused_by_a_capture_program_is_a_damaged_tail(tmp_path):
    """The file pushscan maps is rewritten by tcpdump (as a -C/-W ring reuses its oldest
    file): no SIGBUS; a warning, the part read is analysed, exit 0, and tcpdump gets the
    file once pushscan lets go of it."""
    import json
    import os
    import subprocess
    import sys
    import time
    from ..conftest import require
    require("tcpdump")
    victim = _big_capture(tmp_path / "ring0.pcap")
    total = 600_000
    p = subprocess.Popen([sys.executable, "-m", "pushscan", "analyze", "--format", "json", str(victim)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, PUSHSCAN_FASTLANE="1"))
    deadline = time.monotonic() + 60
    while not _mapped_by(p.pid, victim):
        assert p.poll() is None and time.monotonic() < deadline, p.communicate()
        time.sleep(0.02)
    time.sleep(0.2)
    writer = subprocess.run(["tcpdump", "-r", str(CAPTURES / "smtp_ok.pcap"), "-w", str(victim)],
                            capture_output=True, timeout=120)    # waits until pushscan lets go
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert err == (f"pushscan: warning: {victim}: another program opened the file for writing or truncated it "
                   "while it was read (a capture ring reusing it?) (the part before it was analysed)\n")
    doc = json.loads(out)
    assert 0 < doc["inputs"][0]["packets"] < total and doc["summary"]["sessions"] > 0
    assert writer.returncode == 0 and victim.read_bytes() == (CAPTURES / "smtp_ok.pcap").read_bytes()


@pytest.mark.slow
def test_a_file_truncated_while_read_without_a_mapping_is_a_damaged_tail(tmp_path):
    """A file someone holds open for writing is read, not mapped; truncated meanwhile,
    the reading stops there with a warning."""
    import json
    import os
    import subprocess
    import sys
    import time
    victim = _big_capture(tmp_path / "growing.pcap")
    holder = open(victim, "r+b")        # a writer that keeps it open: no lease can be had
    try:
        p = subprocess.Popen([sys.executable, "-m", "pushscan", "analyze", "--format", "json", str(victim)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=dict(os.environ, PUSHSCAN_FASTLANE="1", PUSHSCAN_READAHEAD="0"))
        deadline = time.monotonic() + 60
        while not _reading(p.pid, victim):
            assert p.poll() is None and time.monotonic() < deadline, p.communicate()
            time.sleep(0.01)
        os.ftruncate(holder.fileno(), 4096)
        out, err = p.communicate(timeout=120)
    finally:
        holder.close()
    assert not _mapped_by(p.pid, victim)
    assert p.returncode == 0, err
    assert "the file shrank while it was read (truncated by another program?)" in err
    assert 0 < json.loads(out)["inputs"][0]["packets"] < 600_000


def test_the_clock_going_backwards_is_noted():
    import struct
    data = bytearray((CAPTURES / "smtp_unpushed_reset.pcap").read_bytes())
    starts = []
    pos = 24
    while pos < len(data):
        starts.append(pos)
        pos += 16 + struct.unpack_from("<I", data, pos + 8)[0]
    sec, usec = struct.unpack_from("<II", data, starts[13])
    struct.pack_into("<II", data, starts[15], sec - 55, usec)     # frame 16: 55 s before frame 14
    r = CaptureReader(io.BytesIO(bytes(data)), "mem")
    for _ in r.batches():
        pass
    assert (r.clock_back, r.clock_back_packet) == (1, 16) and r.clock_back_ns // 10**9 == 55
