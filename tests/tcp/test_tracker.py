"""Reassembly properties: the stream the application sees, the byte counts and the
segment counts do not depend on segmentation, reordering, duplicates or wraparound."""
from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from pushscan.model import ACK, FIN, PSH, RST, SYN, SegmentBatch, segments
from pushscan.tcp.tracker import Tracker

KEY = (4, 0, 0xC000020A, 40000, 0, 0xC6336419, 25)   # 192.0.2.10:40000 -> 198.51.100.25:25


class Recorder:
    """An application parser that records what it is handed."""

    def __init__(self) -> None:
        self.streams = {True: bytearray(), False: bytearray()}
        self.gaps = {True: 0, False: 0}

    def data(self, from_client, data, frame, pushed, ts):
        self.streams[from_client] += data

    def gap(self, from_client, length):
        self.gaps[from_client] += length
        self.streams[from_client] += b"?" * length

    def command_in_progress(self):
        return None


class Builder:
    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.data = bytearray()

    def seg(self, d, flags, seq, ack=0, payload=b"", plen=None, ts=None):
        off = len(self.data)
        self.data += payload
        n = len(self.rows)
        self.rows.append({"frame": n + 1, "ts": ts if ts is not None else n * 1000, "flow": 0,
                          "dir": d, "flags": flags, "seq": seq & 0xFFFFFFFF,
                          "ack": ack & 0xFFFFFFFF, "plen": len(payload) if plen is None else plen,
                          "pay_off": off, "pay_len": len(payload)})

    def batches(self, size):
        for i in range(0, len(self.rows), size):
            part = self.rows[i:i + size]
            seg = segments(len(part))
            for k, row in enumerate(part):
                for name, value in row.items():
                    seg[name][k] = value
            yield SegmentBatch(seg, data=bytes(self.data), flows=[KEY])


def run(builder, batch_size=10_000):
    ended = []
    rec = Recorder()
    tr = Tracker(on_end=ended.append, is_server_port=lambda p: p == 25,
                 outgoing_of=lambda s: s.client_dir, app_for=lambda s, first: rec if first is None else None)
    for b in builder.batches(batch_size):
        tr.feed(b)
    tr.finish()
    return ended, rec


def session_with(stream: bytes, cuts: list[int], isn: int, shuffle_seed: int | None = None,
                 dup: list[int] = ()):
    """Client sends ``stream`` cut at ``cuts``; optionally reordered and with duplicates."""
    b = Builder()
    b.seg(0, SYN, isn)
    b.seg(1, SYN | ACK, 9000, isn + 1)
    b.seg(0, ACK, isn + 1, 9001)
    points = sorted(set(c for c in cuts if 0 < c < len(stream)))
    bounds = list(zip([0] + points, points + [len(stream)]))
    segs = [(isn + 1 + a, stream[a:z]) for a, z in bounds]
    order = list(range(len(segs)))
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(order)
    order += [i for i in dup if i < len(segs)]
    for k in order:
        seq, payload = segs[k]
        last = k == len(segs) - 1
        b.seg(0, ACK | (PSH if last else 0), seq, 9001, payload)
    b.seg(1, ACK, 9001, isn + 1 + len(stream))
    b.seg(0, FIN | ACK, isn + 1 + len(stream), 9001)
    b.seg(1, FIN | ACK, 9001, isn + 2 + len(stream))
    return b, len(segs), len(order)


STREAM = b"".join(b"line %d of some client data\r\n" % i for i in range(40))


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.integers(1, len(STREAM) - 1), max_size=30),
       isn=st.integers(0, 0xFFFFFFFF), seed=st.none() | st.integers(0, 1000),
       dup=st.lists(st.integers(0, 30), max_size=4), batch=st.integers(1, 50))
def test_reassembly_is_independent_of_segmentation(cuts, isn, seed, dup, batch):
    b, nsegs, sent = session_with(STREAM, cuts, isn, seed, dup)
    (s,), rec = run(b, batch)
    c2s = s.dirs[s.client_dir]
    assert bytes(rec.streams[True]) == STREAM
    assert rec.gaps[True] == 0
    assert c2s.bytes == len(STREAM)
    assert c2s.data_segments == sent
    assert c2s.retransmitted == len([i for i in dup if i < nsegs])
    # the segment carrying the last byte has PSH: pushed, whatever the arrival order
    assert c2s.turns == 1 and c2s.turns_unpushed == 0
    assert s.close.value == "fin" and s.handshake.value == "complete"


def test_capture_gap_is_a_gap_not_zeros():
    b = Builder()
    isn = 0xFFFFFF00   # wraps inside the stream
    b.seg(0, SYN, isn)
    b.seg(1, SYN | ACK, 500, isn + 1)
    b.seg(0, ACK, isn + 1, 501)
    b.seg(0, ACK, isn + 1, 501, b"A" * 200)
    # 300 bytes at isn+201 are never captured
    b.seg(0, ACK | PSH, isn + 501, 501, b"C" * 100)
    b.seg(1, ACK, 501, isn + 601)          # the server acknowledges everything
    (s,), rec = run(b)
    c2s = s.dirs[s.client_dir]
    assert c2s.gap_bytes == 300 and c2s.bytes == 300
    assert bytes(rec.streams[True]) == b"A" * 200 + b"?" * 300 + b"C" * 100


def test_snaplen_cut_payload_reaches_app_as_gap():
    b = Builder()
    b.seg(0, ACK | PSH, 1000, 1, b"EHLO", plen=20)
    b.seg(0, ACK | PSH, 1020, 1, b"MAIL FROM:<a>\r\n")
    (s,), rec = run(b)
    c2s = s.dirs[s.client_dir]
    assert c2s.truncated == 1 and c2s.bytes == 35
    assert bytes(rec.streams[True]) == b"EHLO" + b"?" * 16 + b"MAIL FROM:<a>\r\n"


def test_every_session_ends_exactly_once_with_port_reuse():
    b = Builder()
    for isn in (100, 5000, 90000):
        b.seg(0, SYN, isn)
        b.seg(1, SYN | ACK, 7, isn + 1)
        b.seg(0, ACK, isn + 1, 8)
        b.seg(0, RST | ACK, isn + 1, 8)
    ended, _ = run(b, batch_size=3)
    assert [s.id for s in ended] == [0, 1, 2]
    assert [s.first_frame for s in ended] == [1, 5, 9]
    assert all(s.close.value == "reset_by_client" for s in ended)


def test_retransmitted_syn_is_not_a_new_session():
    b = Builder()
    b.seg(0, SYN, 100)
    b.seg(0, SYN, 100, ts=1_000_000_000)
    b.seg(0, SYN, 100, ts=3_000_000_000)
    (s,), _ = run(b)
    assert s.syn_count == 3 and not s.synack_seen and s.syn_frames == [1, 2, 3]


def test_idle_sessions_expire_as_timeout_exactly_once():
    ended = []
    tr = Tracker(on_end=ended.append, is_server_port=lambda p: p == 25,
                 outgoing_of=lambda s: s.client_dir, app_for=lambda s, first: None)
    b = Builder()
    b.seg(0, SYN, 100, ts=0)
    b.seg(1, SYN | ACK, 7, 101, ts=1_000)
    for batch in b.batches(10):
        tr.feed(batch)
    tr.expire(now=30 * 10**9, idle_ns=60 * 10**9)     # not idle long enough
    assert ended == []
    tr.expire(now=61 * 10**9, idle_ns=60 * 10**9)
    tr.finish()
    assert len(ended) == 1 and ended[0].close.value == "timeout"
