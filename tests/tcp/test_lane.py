"""The compiled fast lane gives the reference tracker's report, bit for bit.

Every comparison runs the same input twice, ``fast=False`` (the Python tracker alone) and
``fast=True`` (kernel plus reference code for the odd packets), at several batch sizes:
small batches put sessions' packets in many batches, so rows are loaded, synced, closed,
freed and reused many times. Each test also checks that the kernel did take packets, so
that equality is not the trivial kind.
"""
from __future__ import annotations

import io
import struct
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pushscan.analysis import Analysis, Options
from pushscan.sources import capture

from pushscan.errors import PushscanError

from ..conftest import ALL_CAPTURES, ROOT
from ..cli.test_catalogue import CASES
from ..cli.test_fuzz import mutated

pytest.importorskip("numba")
sys.path.insert(0, str(ROOT / "bench"))
import generate  # noqa: E402


def both(path: str, monkeypatch, batch: int, **opts) -> tuple[dict, dict, int]:
    """(reference report, fast report, packets the kernel applied)."""
    monkeypatch.setattr(capture, "BATCH", batch)
    ref = Analysis([path], Options(fast=False, **opts)).run()
    a = Analysis([path], Options(fast=True, **opts))
    fast = a.run()
    return ref, fast, a.lane.packets if a.lane is not None else 0


@pytest.mark.parametrize("batch", [3, 16384])
@pytest.mark.parametrize("path", ALL_CAPTURES, ids=lambda p: p.name)
def test_every_capture_gives_the_same_report(path, batch, monkeypatch):
    ref, fast, _ = both(str(path), monkeypatch, batch, all_tcp=True)
    assert fast == ref


def test_the_kernel_takes_most_packets_of_ordinary_captures(monkeypatch):
    ok = [p for p in ALL_CAPTURES if p.name == "smtp_ok.pcap"][0]
    ref, fast, taken = both(str(ok), monkeypatch, 16384)
    assert fast == ref
    segments = ref["inputs"][0]["decode"]["tcp_segments"]
    assert taken == segments - 1      # all but the first SYN


@pytest.fixture(scope="module")
def traffic(tmp_path_factory) -> dict[int, Path]:
    """Bench traffic (concurrent SMTP sessions, retransmissions, resets, unpushed
    commands) at two seeds."""
    out = {}
    for seed in (3, 5):
        f = tmp_path_factory.mktemp("traffic") / f"t{seed}.pcap"
        with open(f, "wb") as w:
            generate.generate(w, 30_000, seed=seed, concurrency=60)
        out[seed] = f
    return out


@pytest.mark.parametrize("batch,rows", [(500, 512), (4096, 512), (4096, 2)])
@pytest.mark.parametrize("seed", [3, 5])
def test_busy_traffic_gives_the_same_report(traffic, seed, batch, rows, monkeypatch):
    """(rows=2: the state arrays start tiny and grow while sessions hold rows.)"""
    from pushscan.tcp import lane as fastlane
    monkeypatch.setattr(fastlane.FastLane, "ROWS", rows)
    ref, fast, taken = both(str(traffic[seed]), monkeypatch, batch)
    assert fast == ref
    codes = ref["summary"]["by_code"]
    assert codes.get("UNPUSHED_BEFORE_RESET") and codes.get("RETRANSMISSIONS") and codes.get("PEER_RESET")
    assert taken > 0.9 * 30_000


def test_sessions_open_at_the_end_leave_without_their_windows(traffic, monkeypatch):
    """At the end of the capture the sessions the kernel still holds end as they are:
    their conflict windows (up to 64 KB a direction, read back from the capture) are not
    copied out for nothing (1,000 open sessions cost 65 MB more at the end that way)."""
    from pushscan.tcp import lane as fastlane, tracker
    seen: dict[str, int] = {"held": 0, "reads": 0}
    finishing = []
    window, finish = fastlane.FastLane._window, tracker.Tracker.finish

    def counted_window(self, r, d):
        seen["reads"] += bool(finishing)
        return window(self, r, d)

    lane_finish = fastlane.FastLane.finish

    def watched_lane_finish(self):
        seen["held"] += sum(s is not None for s in self.owner)
        lane_finish(self)

    def watched_finish(self):
        finishing.append(True)
        finish(self)
        finishing.clear()
    monkeypatch.setattr(fastlane.FastLane, "_window", counted_window)
    monkeypatch.setattr(fastlane.FastLane, "finish", watched_lane_finish)
    monkeypatch.setattr(tracker.Tracker, "finish", watched_finish)
    ref, fast, _ = both(str(traffic[5]), monkeypatch, 4096)
    assert fast == ref
    assert seen["held"] > 20          # open sessions in rows at the end...
    assert seen["reads"] == 0         # ...whose windows were never read back


def compressed_run(pcap, tmp_path) -> tuple[dict, dict, object]:
    """(reference report, fast report, the fast lane) of the capture gzip-compressed:
    a compressed input cannot be mapped, so the lane keeps windows as ring bytes."""
    import gzip
    gz = tmp_path / "t.pcap.gz"
    gz.write_bytes(gzip.compress(pcap.read_bytes(), 1))
    ref = Analysis([str(gz)], Options(fast=False)).run()
    a = Analysis([str(gz)], Options(fast=True))
    fast = a.run()
    return ref, fast, a.lane


def test_freed_rows_give_their_ring_pages_back(traffic, tmp_path, monkeypatch):
    """A compressed capture cannot be mapped: windows are ring bytes in the rows. The
    rings of free rows deep in the free stack are given back to the system, so resident
    ring memory follows the sessions open at once, not every row ever used."""
    from pushscan.tcp import lane as fastlane
    released = []
    orig = fastlane._Rings.release

    def counted(self, r):
        if self.dirty[r] and self.W[r].any():
            released.append(r)
        orig(self, r)
    monkeypatch.setattr(fastlane._Rings, "release", counted)
    monkeypatch.setattr(fastlane.FastLane, "HOT", 8)
    ref, fast, lane = compressed_run(traffic[3], tmp_path)
    assert fast == ref
    assert len(set(released)) > 20                   # rings that held bytes were given back
    assert lane.rings.dirty.sum() <= fastlane.FastLane.HOT + 1   # all but the hot rows'
    cold = [r for r in set(released) if not lane.rings.dirty[r]]
    assert cold and not lane.W[cold].any()          # their pages read as fresh zeros


def test_rings_without_address_space_for_every_row(traffic, tmp_path, monkeypatch):
    """Where the system refuses 512 MB of address space up front, the rings are sized to
    the rows and copied as they grow: the same report."""
    from pushscan.tcp import lane as fastlane
    real = fastlane._Rings.map
    sizes = []

    def stingy(size):
        sizes.append(size)
        if size > 64 * fastlane._Rings.ROW:
            raise OSError(12, "Cannot allocate memory")
        return real(size)
    monkeypatch.setattr(fastlane._Rings, "map", staticmethod(stingy))
    monkeypatch.setattr(fastlane.FastLane, "ROWS", 2)
    ref, fast, lane = compressed_run(traffic[5], tmp_path)
    assert fast == ref
    assert len(lane.owner) > 64 and len(lane.W) == len(lane.owner)   # grown past the mapping's limit
    assert sizes[0] == fastlane.MAX_ROWS * fastlane._Rings.ROW


def test_limits_mix_kernel_and_reference_batches(traffic, monkeypatch):
    """Near --max-sessions the tracker runs the reference code (evictions depend on
    every session's last packet); switching back and forth keeps the results."""
    ref, fast, taken = both(str(traffic[3]), monkeypatch, 40, max_sessions=150)
    assert ref["summary"]["limits"]["evicted_sessions"] > 0
    assert fast == ref
    assert taken > 0


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=mutated(), batch=st.sampled_from([2, 5, 64]))
def test_mutated_captures_give_the_same_report(tmp_path_factory, monkeypatch, data, batch):
    from pushscan.tcp import lane as fastlane
    monkeypatch.setattr(fastlane.FastLane, "ROWS", 1)   # rows grow under way too
    f = tmp_path_factory.mktemp("fl") / "m.pcap"
    f.write_bytes(data)
    try:
        ref, fast, _ = both(str(f), monkeypatch, batch, all_tcp=True)
    except Exception as exc:     # unreadable input: both ways alike
        assert isinstance(exc, PushscanError)
        return
    assert fast == ref


def test_generator_writes_whole_lines(tmp_path):
    """The bench capture's bodies end in CRLF.CRLF, so messages are counted."""
    buf = io.BytesIO()
    generate.generate(buf, 3000, seed=2, concurrency=5)
    f = tmp_path / "g.pcap"
    f.write_bytes(buf.getvalue())
    report = Analysis([str(f)], Options()).run()
    assert sum(s["smtp"]["messages"] for s in report["sessions"]) > 0
    assert not any(s["smtp"]["unsolicited_replies"] for s in report["sessions"])


@pytest.mark.parametrize("name", list(CASES))
def test_broken_inputs_read_alike(tmp_path, monkeypatch, name):
    """The memory-mapped pcap reader (fast) and the streaming reader agree on damaged
    and hostile inputs: the same packets analysed, the same errors."""
    f = tmp_path / "in.pcap"
    f.write_bytes(CASES[name][0]())
    try:
        ref, fast, _ = both(str(f), monkeypatch, 16384, all_tcp=True)
    except PushscanError as exc:
        with pytest.raises(type(exc)):
            Analysis([str(f)], Options(fast=True)).run_or_raise()
        return
    assert fast == ref


def test_rotated_files_as_one_capture(monkeypatch):
    """Two files read as one capture: windows kept as descriptors into the first file's
    mapping become bytes when the second file's mapping takes over."""
    files = [str(p) for p in ALL_CAPTURES if p.name.startswith("rotated_")]
    monkeypatch.setattr(capture, "BATCH", 7)
    ref = Analysis(files, Options(fast=False)).run()
    fast = Analysis(files, Options(fast=True)).run()
    assert fast == ref and ref["sessions"]


def tiny_segments_capture(path: Path, conflict: bool, count: int, late: bool = False) -> None:
    """A session whose client sends ``count`` one-byte segments (300: more than the
    window descriptors hold, so the window turns to bytes), then retransmits 20 of them,
    changed or not."""
    pack, rec = generate.HDR.pack, generate.REC.pack
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)]
    ips = (bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
    t = [0]

    def seg(d, flags, seq, ack, payload=b""):
        t[0] += 1
        out.append(rec(1_790_000_000, t[0], 54 + len(payload), 54 + len(payload)))
        out.append(pack(generate.MAC_S, generate.MAC_C, 0x0800, 0x45, 0, 40 + len(payload), t[0] & 0xFFFF,
                        0x4000, 64, 6, 0, ips[d], ips[d ^ 1], (40000, 25)[d], (25, 40000)[d],
                        seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50, flags, 64240, 0, 0) + payload)

    A, P, S, F = generate.ACK, generate.PSH, generate.SYN, generate.FIN
    seg(0, S, 1000, 0)
    seg(1, S | A, 5000, 1001)
    seg(0, A, 1001, 5001)
    seg(1, A | P, 5001, 1001, b"220 hi\r\n")
    text = bytes(range(65, 91)) * 12
    for k in range(count):
        seg(0, A | (P if k == count - 1 else 0), 1001 + k, 5009, text[k:k + 1])
    seg(0, A | P, 1001 + 3, 5009, b"y" * 20 if conflict else text[3:23])   # retransmission
    seg(1, A, 5009, 1001 + count)
    seg(0, F | A, 1001 + count, 5009)
    seg(1, F | A, 5009, 1002 + count)
    if late:   # data after both FINs, then the same bytes changed: the window still counts
        seg(0, A | P, 1001 + count, 5009, b"late data\r\n")
        seg(0, A | P, 1001 + count, 5009, b"LATE DATA\r\n")
    path.write_bytes(b"".join(out))


@pytest.mark.parametrize("count", [30, 300])
@pytest.mark.parametrize("conflict", [True, False])
def test_small_segments_then_a_retransmission(tmp_path, monkeypatch, conflict, count):
    f = tmp_path / "tiny.pcap"
    tiny_segments_capture(f, conflict, count)
    for batch in (16384, 50):
        ref, fast, taken = both(str(f), monkeypatch, batch, all_tcp=True)
        assert fast == ref and taken > count - 10
        notes = " ".join(ref["sessions"][0]["notes"] + [x["code"] for x in ref["sessions"][0]["findings"]])
        assert ("onflict" in notes or "CONFLICT" in notes) == conflict, notes


def test_data_after_the_close_keeps_its_window(tmp_path, monkeypatch):
    f = tmp_path / "late.pcap"
    tiny_segments_capture(f, False, 40, late=True)
    for batch in (16384, 48, 49):   # frame 48 closes, 49 is late data, 50 changes it
        ref, fast, _ = both(str(f), monkeypatch, batch, all_tcp=True)
        assert fast == ref
        assert "OVERLAP_CONFLICT" in [x["code"] for x in ref["sessions"][0]["findings"]]
