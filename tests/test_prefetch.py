"""Read-ahead: items and the ending exception come out in order; closing early stops
the reading thread."""
from __future__ import annotations

import threading
import time

import pytest

from pushscan.errors import CaptureDamaged
from pushscan.sources.prefetch import prefetch


def produce(n, fail=False, seen=None):
    for i in range(n):
        if seen is not None:
            seen.append(i)
        yield i
    if fail:
        raise CaptureDamaged("truncated record at the end (7 bytes left over)")


def test_items_in_order_then_the_error():
    got = []
    with pytest.raises(CaptureDamaged, match="7 bytes left over"):
        for x in prefetch(produce(500, fail=True)):
            got.append(x)
    assert got == list(range(500))


def test_closing_early_stops_the_thread():
    seen: list[int] = []
    it = prefetch(produce(10_000, seen=seen), depth=2)
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    it.close()
    assert not any(t.name == "pushscan-read" and t.is_alive() for t in threading.enumerate())
    n = len(seen)
    time.sleep(0.05)
    assert len(seen) == n < 10          # read ahead by the queue's depth, then stopped
