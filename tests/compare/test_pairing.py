"""Pairing sessions and matching segments (sans-I/O): a session through random NAT,
sequence shifts, clock offsets and delays that reorder the directions pairs and matches
fully; changes made on the way are found, segment by segment."""
from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings, strategies as st

from pushscan.compare.findings import PointFacts, Side, assess_pair, change_sample, client_side, clock_offset
from pushscan.compare.pairing import pair_sessions, start_offset
from pushscan.compare.segments import C2S, S2C, Endpoint, Seg, Trace, match_segments, seq_offsets
from pushscan.model import PSH

from .synth import Path, Shape, far_copy, near_session, scene

turns = st.lists(st.tuples(st.sampled_from([C2S, S2C]),
                           st.lists(st.integers(1, 1448), min_size=1, max_size=4)),
                 min_size=1, max_size=6)
shapes = st.builds(Shape, turns=turns, timestamps=st.booleans(), ipids=st.booleans())
paths = st.builds(Path, nat=st.booleans(),
                  shift=st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
                  offset_ns=st.integers(-3600 * 10**9, 3600 * 10**9),
                  delay_ns=st.tuples(st.integers(1_000, 2_000_000), st.integers(1_000, 2_000_000)),
                  jitter_ns=st.integers(0, 300_000))


def assess(nt, ft, m, offset=None):
    side = client_side(m)
    return assess_pair(nt, ft, m, side, offset, offset or 0, (PointFacts(), PointFacts()))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(shapes, min_size=1, max_size=5), paths, st.integers(0, 2**32))
def test_a_path_that_only_translates_pairs_and_matches_everything(shapes_, path, seed):
    nt, ft, want = scene(shapes_, path, seed)
    pairing = pair_sessions(nt, ft)
    assert {p.near: p.far for p in pairing.pairs} == want
    assert pairing.near_only == pairing.far_only == ()
    sides = []
    for p in pairing.pairs:
        m = p.matching
        assert len(m.pairs) == len(nt[p.near].segments) == len(ft[p.far].segments)
        assert m.near_only == m.far_only == ()
        assert m.seq_offsets == path.shift
        for n, f in m.pairs:                      # each segment with its own copy
            assert (n.dir, n.plen, n.payload, n.tsval, n.ipid) == (f.dir, f.plen, f.payload, f.tsval, f.ipid)
            assert (f.seq - n.seq) & 0xFFFFFFFF == path.shift[n.dir]
        side = client_side(m)
        assert side == Side("near", "ttl")
        sides.append((m, side))
        findings, directions, verdict, _ = assess(nt[p.near], ft[p.far], m)
        assert findings == [] and verdict.value == "clean"
        assert directions["client_to_server"]["hops"] == 1
    # the clock offset lies between the fastest copies of each direction
    off = clock_offset(sides)
    slowest = max(path.delay_ns) + path.jitter_ns
    assert abs(off - path.offset_ns) <= slowest


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 8), st.integers(0, 2**32), st.integers(-10**12, 10**12))
def test_sessions_alike_in_every_segment_pair_by_time(n, seed, offset):
    """No timestamps, no IP IDs, the same lengths and bytes' lengths: only time tells."""
    shape = Shape(turns=[(S2C, [26]), (C2S, [25]), (S2C, [60])], timestamps=False, ipids=False)
    path = Path(nat=True, shift=(12345, 999), offset_ns=offset, delay_ns=(300_000, 200_000))
    nt, ft, want = scene([shape] * n, path, seed)
    pairing = pair_sessions(nt, ft)
    assert {p.near: p.far for p in pairing.pairs} == want


def test_sessions_at_one_point_only_are_left_unpaired():
    shape = Shape(turns=[(S2C, [26]), (C2S, [25, 1448, 300])])
    nt, ft, _ = scene([shape] * 3, Path(nat=True, shift=(7, 9), offset_ns=5 * 10**9), seed=1)
    extra_near, _, _ = scene([Shape(turns=[(C2S, [99, 98])])], Path(), seed=2)
    pairing = pair_sessions(nt + extra_near, ft[1:])
    assert len(pairing.pairs) == 2
    assert pairing.far_only == ()
    assert sorted(pairing.near_only) == [0, 3]     # the one the far capture lacks, the stranger


def test_retransmission_told_from_original_by_ip_id():
    rng = random.Random(3)
    near = near_session(Shape(turns=[(C2S, [1000, 1000])]), 10**18, rng, 30000)
    # the client's first data segment (index 3) is lost on the way and sent again
    lost = near[3]
    retrans = Seg(lost.frame, near[-1].ts + 1_000_000, lost.dir, lost.flags, lost.seq, lost.ack,
                  lost.plen, lost.payload, lost.ttl, lost.ipid + 50, lost.mss, lost.tsval + 200,
                  lost.win, lost.opts)
    near = near + [retrans]
    near = [Seg(i + 1, *s[1:]) for i, s in enumerate(near)]
    far = far_copy(near, Path(), rng)
    far = [s for s in far if not (s.ipid == near[3].ipid and s.dir == C2S)]   # the original lost
    far = [Seg(i + 1, *s[1:]) for i, s in enumerate(far)]
    m = match_segments(near, far)
    assert [s.frame for s in m.near_only] == [4] and m.far_only == ()
    assert any(n.frame == len(near) for n, _ in m.pairs)    # the retransmission is matched


def test_psh_cleared_and_payload_rewritten_are_found_segment_by_segment():
    rng = random.Random(5)
    line = b"EHLO client.example.com\r\n"
    near = near_session(Shape(turns=[(S2C, [26]), (C2S, [len(line)]), (S2C, [40]), (C2S, [500, 30])]),
                        10**18, rng, 30000)
    ehlo = next(i for i, s in enumerate(near) if s.dir == C2S and s.plen == len(line))
    near = [Seg(i + 1, *s[1:7], line if i == ehlo else s.payload, *s[8:]) for i, s in enumerate(near)]
    data_c2s = [i for i, s in enumerate(near) if s.dir == C2S and s.plen and s.flags & PSH]
    path = Path(shift=(2**31, 17), clear_psh=set(data_c2s), rewrite={ehlo: b"XXXX" + line[4:]})
    far = far_copy(near, path, rng)
    far = [Seg(i + 1, *s[1:]) for i, s in enumerate(far)]
    m = match_segments(near, far)
    assert m.near_only == m.far_only == () and m.seq_offsets == (2**31, 17)
    findings, _, verdict, why = assess(_trace(near), _trace(far), m)
    by = {f["code"]: f for f in findings}
    assert set(by) == {"PATH_PSH_STRIPPED", "PATH_MODIFIED"}
    assert by["PATH_PSH_STRIPPED"]["count"] == len(data_c2s)
    assert by["PATH_PSH_STRIPPED"]["near_frames"] == [near[i].frame for i in data_c2s]
    assert by["PATH_MODIFIED"]["near_frames"] == [near[ehlo].frame]
    change = by["PATH_MODIFIED"]["changes"][0]
    assert (change["before"], change["after"], change["offset"]) == ("EHLO", "XXXX", 0)
    assert "`EHLO` -> `XXXX`" in by["PATH_MODIFIED"]["message"]
    assert verdict.value == "path_changed"


def _trace(segs):
    return Trace(0, Endpoint("192.0.2.10", 1), Endpoint("198.51.100.25", 25), tuple(segs))


def test_change_sample_shows_the_changed_word():
    assert change_sample(b"ehlo client.example.com\r\n", b"XXXX client.example.com\r\n") == (0, "ehlo", "XXXX")
    assert change_sample(b"MAIL FROM:<a@b>", b"MAIL FROM:<x@b>")[1:] == ("a", "x")
    assert change_sample(b"STARTTLS\r\n", b"XXXXXXXX\r\n")[1:] == ("STARTTLS", "XXXXXXXX")
    at, before, after = change_sample(b"250-PIPELINING\r\n", b"250-XXXXXXXAAA\r\n")
    assert (at, before, after) == (4, "PIPELINING", "XXXXXXXAAA")


def test_seq_offsets_vote_and_start_offset():
    rng = random.Random(9)
    near = near_session(Shape(turns=[(C2S, [100])]), 10**18, rng, 1)
    far = far_copy(near, Path(shift=(5, 2**32 - 5)), rng)
    assert seq_offsets(near, far) == (5, 2**32 - 5)
    assert seq_offsets([], far) == (0, 0)
    starts = [k * 10**8 for k in range(50)]
    assert abs(start_offset(starts, [s + 7 * 10**9 + 100 for s in starts]) - (7 * 10**9 + 100)) < 10**6
    assert start_offset([], starts) is None


def _resegment(segs, merge):
    """Two data segments of the client made one (``merge``: receive coalescing at that
    point) or one made two (segmentation offload)."""
    out = []
    for s in segs:
        if merge and s.dir == C2S and s.plen == 1448 and out and out[-1].dir == C2S and out[-1].plen == 1448:
            a = out.pop()
            out.append(Seg(a.frame, a.ts, a.dir, a.flags | s.flags, a.seq, s.ack, a.plen + s.plen,
                           a.payload + s.payload, *a[8:]))
            continue
        out.append(s)
    return [Seg(i + 1, *s[1:]) for i, s in enumerate(out)]


def test_offload_or_coalescing_at_one_point_is_not_loss_nor_a_rewrite():
    rng = random.Random(11)
    near = near_session(Shape(turns=[(S2C, [26]), (C2S, [1448, 1448, 1448, 1448, 100])]), 10**18, rng, 1)
    near = [Seg(i + 1, *s[1:]) for i, s in enumerate(near)]
    far = far_copy(near, Path(shift=(99, 0)), rng)
    far = [Seg(i + 1, *s[1:]) for i, s in enumerate(far)]
    for n_segs, f_segs in ((_resegment(near, True), far), (near, _resegment(far, True))):
        m = match_segments(n_segs, f_segs)
        findings, directions, verdict, _ = assess(_trace(n_segs), _trace(f_segs), m)
        assert findings == [] and verdict.value == "clean"
        r = directions["client_to_server"]["resegmented"]
        assert len(r["near_frames"]) + len(r["far_frames"]) == 6      # 2 merged = 4 pieces
        assert directions["client_to_server"]["only_at_receiving_point"]["count"] == 0


def test_verdicts_and_their_precedence():
    from pushscan.compare.findings import verdict

    side = Side("near", "ttl")
    ok, dead = PointFacts(), PointFacts(verdict="peer_reset")
    waited = PointFacts(verdict="push_problem", findings=({"code": "UNPUSHED_BEFORE_RESET",
                                                           "message": "the server reset."},))
    strip = {"code": "PATH_PSH_STRIPPED", "direction": "client_to_server", "count": 1, "message": "m"}
    mod = {"code": "PATH_MODIFIED", "direction": "client_to_server", "count": 1, "message": "m"}
    loss = {"code": "PATH_LOSS", "direction": "client_to_server", "count": 1, "message": "m",
            "data_segments": 1, "recovered": 0}
    healed = dict(loss, recovered=1)
    reset = {"code": "PATH_INJECTED_RESET", "direction": "server_to_client", "count": 1, "message": "m"}
    cases = [
        ([], (ok, ok), "clean"),
        ([], (dead, dead), "clean"),
        ([strip], (ok, ok), "path_changed"),
        ([strip], (dead, waited), "psh_stripped"),
        ([strip], (waited, waited), "path_changed"),     # the sender did not push either
        ([strip, reset], (dead, waited), "middlebox_reset"),
        ([mod], (ok, ok), "path_changed"),
        ([mod], (ok, dead), "payload_modified"),
        ([loss], (dead, ok), "path_loss"),
        ([healed], (dead, ok), "path_changed"),
        ([mod, loss], (dead, ok), "payload_modified"),
    ]
    for findings, points, want in cases:
        assert verdict(findings, side, points)[0].value == want, (findings, points)
    assert verdict([], side, (dead, dead))[1].endswith("look at the ends, not at this path")
    assert "does not explain its end (peer_reset at near)" in verdict([healed], side, (dead, ok))[1]
    # far is the client's side: the receiver of client data is then near
    assert verdict([strip], Side("far", "ttl"), (waited, dead))[0].value == "psh_stripped"
