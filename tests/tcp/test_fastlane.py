"""The compiled fast lane gives the reference tracker's report, bit for bit.

Every comparison runs the same input twice, ``fast=False`` (the Python tracker alone) and
``fast=True`` (kernel plus reference code for the odd packets), at several batch sizes:
small batches put sessions' packets in many batches, so rows are loaded, synced, closed,
freed and reused many times. Each test also checks that the kernel did take packets, so
that equality is not the trivial kind.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pushscan.analysis import Analysis, Options
from pushscan.sources import capture

from pushscan.errors import PushscanError

from ..conftest import ALL_CAPTURES
from ..test_catalogue import CASES
from ..test_fuzz import mutated

pytest.importorskip("numba")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import generate  # noqa: E402


def both(path: str, monkeypatch, batch: int, **opts) -> tuple[dict, dict, int]:
    """(reference report, fast report, packets the kernel applied)."""
    monkeypatch.setattr(capture, "BATCH", batch)
    ref = Analysis([path], Options(fast=False, **opts)).run()
    a = Analysis([path], Options(fast=True, **opts))
    lanes = []
    orig = a._fast_lane

    def spy(tracker, engine, path):
        on = orig(tracker, engine, path)
        lanes.append(tracker.lane)
        return on
    a._fast_lane = spy
    fast = a.run()
    return ref, fast, sum(lane.packets for lane in set(lanes) if lane is not None)


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


@pytest.mark.parametrize("batch", [500, 4096])
@pytest.mark.parametrize("seed", [3, 5])
def test_busy_traffic_gives_the_same_report(traffic, seed, batch, monkeypatch):
    ref, fast, taken = both(str(traffic[seed]), monkeypatch, batch)
    assert fast == ref
    codes = ref["summary"]["by_code"]
    assert codes.get("UNPUSHED_BEFORE_RESET") and codes.get("RETRANSMISSIONS") and codes.get("PEER_RESET")
    assert taken > 0.9 * 30_000


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
