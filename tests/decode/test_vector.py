"""The decoder's flow factorization is exact, even when its fast hash collides."""
from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pushscan.decode import vector as decode


def reference(cols):
    rows = list(zip(*[c.tolist() for c in cols]))
    seen: dict = {}
    return rows, [seen.setdefault(r, len(seen)) for r in rows]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 2)), min_size=1, max_size=60))
def test_factorize_matches_reference(rows):
    cols = tuple(np.array(c, dtype=np.uint64) for c in zip(*rows))
    flows, inv = decode._factorize(cols)
    ref_rows, _ = reference(cols)
    assert [flows[i] for i in inv.tolist()] == ref_rows
    assert len(flows) == len(set(ref_rows))


def test_factorize_survives_total_hash_collision(monkeypatch):
    monkeypatch.setattr(decode, "_MIX", np.uint64(0))   # every row hashes to 0
    cols = (np.array([1, 2, 1, 3], dtype=np.uint64), np.array([5, 5, 5, 6], dtype=np.uint64))
    flows, inv = decode._factorize(cols)
    assert [flows[i] for i in inv.tolist()] == [(1, 5), (2, 5), (1, 5), (3, 6)]


@settings(max_examples=300, deadline=None)
@given(st.integers(0, (1 << 32) - 1), st.integers(0, (1 << 128) - 1))
def test_endpoint_text_is_what_ipaddress_writes(v4, v6):
    import ipaddress

    from pushscan.model import endpoint_ip
    assert endpoint_ip(4, 0, v4) == str(ipaddress.IPv4Address(v4))
    assert endpoint_ip(6, v6 >> 64, v6 & ((1 << 64) - 1)) == str(ipaddress.IPv6Address(v6))
