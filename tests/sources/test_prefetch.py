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


@pytest.mark.slow
def test_a_pipe_proven_big_is_read_ahead(tmp_path):
    """Standard input's size is unknown: once it has proven big (and the fast lane
    starts), the rest is read and decoded in the read-ahead thread too; the report is
    the file's."""
    import json
    import subprocess
    import sys

    from ..conftest import CAPTURES, bench_capture

    root = CAPTURES.parent
    # 40,000 packets: past the 20,000 after which a pipe is big
    f = bench_capture(tmp_path / "pipe.pcap", 40_000)
    code = ("import json, sys, threading\n"
            "from pushscan.compiled import build as compiled\n"
            "assert compiled.load() is not None\n"
            "names = []\n"
            "start = threading.Thread.start\n"
            "def noted(self):\n"
            "    names.append(self.name)\n"
            "    start(self)\n"
            "threading.Thread.start = noted\n"
            "from pushscan.analysis import Analysis, Options\n"
            "r = Analysis(['-'], Options()).run()\n"
            "print(json.dumps({'read_ahead': 'pushscan-read' in names,\n"
            "                  'built': compiled.ready(), 'sessions': r['sessions']}))\n")
    with open(f, "rb") as stdin:
        out = subprocess.run([sys.executable, "-c", code], stdin=stdin, capture_output=True,
                             text=True, cwd=root, check=True).stdout
    got = json.loads(out)
    want = json.loads(subprocess.run([sys.executable, "-m", "pushscan", "analyze", "--format",
                                      "json", str(f)], capture_output=True, text=True,
                                     cwd=root, check=False).stdout)   # 1: findings
    assert got["read_ahead"] is got["built"] is True
    assert len(got["sessions"]) == len(want["sessions"]) > 300
    strip = [{k: v for k, v in s.items() if k != "file"} for s in want["sessions"]]
    assert [{k: v for k, v in s.items() if k != "file"} for s in got["sessions"]] == strip
