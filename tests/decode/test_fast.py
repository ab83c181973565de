"""The compiled decoder gives what the numpy decoder gives: every segment's every field
(flows compared by key, as their numbering may differ), ICMP errors and every counter;
and its hints (CRLF.CRLF in the payload, the payload's first and last 4 bytes) are true."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

from pushscan.decode import decode
from pushscan.errors import CaptureDamaged, InputError
from pushscan.model import SEGMENT_FIELDS, DecodeStats
from pushscan.sources.engines import open_input

from ..conftest import ALL_CAPTURES
from ..cli.test_fuzz import mutated

pytest.importorskip("numba")
from pushscan.decode.fast import decode_fast  # noqa: E402


HINTS = ("body_end", "head", "tail")
COMPARED = [f for f in SEGMENT_FIELDS if f not in HINTS]


def rows(batch):
    """Each segment's fields by name, its flow as the flow's key."""
    seg = batch.seg
    cols = {name: seg[name].tolist() for name in COMPARED}
    cols["flow"] = [batch.flows[f] for f in cols["flow"]]
    return [dict(zip(cols, values)) for values in zip(*cols.values())]


def compare(path: str) -> int:
    """Decode every batch both ways; returns the segments compared."""
    raw, reader = open_input(path)
    frame0 = segments = 0
    try:
        for rb in reader.batches():
            ref_stats, fast_stats = DecodeStats(), DecodeStats()
            ref, fast = decode(rb, frame0, ref_stats), decode_fast(rb, frame0, fast_stats)
            assert rows(fast) == rows(ref)
            assert fast.hints and not ref.hints
            if len(fast):   # the hints: CRLF.CRLF in the captured payload, its ends
                spans = list(zip(fast.seg["pay_off"].tolist(), fast.seg["pay_len"].tolist()))
                ends = [int(b"\r\n.\r\n" in fast.data[o:o + n]) for o, n in spans]
                assert fast.seg["body_end"].tolist() == ends
                heads = [int.from_bytes(fast.data[o:o + 4], "big") if n >= 4 else 0 for o, n in spans]
                tails = [int.from_bytes(fast.data[o + n - 4:o + n], "big") if n >= 4 else 0
                         for o, n in spans]
                assert fast.seg["head"].tolist() == heads
                assert fast.seg["tail"].tolist() == tails
            assert fast.icmp == ref.icmp
            assert fast.tunnels == ref.tunnels
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
    segments = compare(str(path))
    assert segments > 0 or path.name == "tun_80211_mgmt_only.pcap"   # no TCP in that one


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
