"""The compiled decoder gives what the numpy decoder gives: every segment (flows compared
by key, as their numbering may differ), MSS options, ICMP errors and every counter."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from pushscan.decode import decode
from pushscan.errors import CaptureDamaged, InputError
from pushscan.model import DecodeStats
from pushscan.sources.engines import open_input

from .conftest import ALL_CAPTURES
from .test_fuzz import mutated

pytest.importorskip("numba")
from pushscan.fastdecode import decode_fast  # noqa: E402


def rows(batch):
    if not len(batch):
        return []
    return [tuple(r[:2]) + (batch.flows[r[2]],) + tuple(r[3:11]) for r in batch.cols.T.tolist()]


def compare(path: str) -> int:
    """Decode every batch both ways; returns the segments compared."""
    raw, reader = open_input(path)
    frame0 = segments = 0
    try:
        for rb in reader.batches():
            ref_stats, fast_stats = DecodeStats(), DecodeStats()
            ref, fast = decode(rb, frame0, ref_stats), decode_fast(rb, frame0, fast_stats)
            assert rows(fast) == rows(ref)
            if len(fast):   # the extra columns: CRLF.CRLF in the captured payload, its ends
                spans = fast.cols[8:10].T.tolist()
                ends = [int(b"\r\n.\r\n" in fast.data[o:o + n]) for o, n in spans]
                assert fast.cols[11].tolist() == ends
                heads = [int.from_bytes(fast.data[o:o + 4], "big") if n >= 4 else 0 for o, n in spans]
                tails = [int.from_bytes(fast.data[o + n - 4:o + n], "big") if n >= 4 else 0
                         for o, n in spans]
                assert fast.cols[12].tolist() == heads
                assert fast.cols[13].tolist() == tails
            assert fast.mss == ref.mss
            assert fast.icmp == ref.icmp
            assert fast_stats == ref_stats
            frame0 += len(rb)
            segments += len(ref)
    except CaptureDamaged:
        pass
    finally:
        raw.close()
    return segments


@pytest.mark.parametrize("path", ALL_CAPTURES, ids=lambda p: p.name)
def test_every_capture_decodes_alike(path):
    assert compare(str(path)) > 0


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=mutated())
def test_mutated_captures_decode_alike(tmp_path_factory, data):
    f = tmp_path_factory.mktemp("dec") / "m.pcap"
    f.write_bytes(data)
    try:
        compare(str(f))
    except InputError:
        pass
