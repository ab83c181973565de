"""Which session at one point is which at the other. Sans-I/O.

Addresses and ports may differ (NAT), and so may sequence numbers (ISN randomisation).
Sessions are paired by what survives a middlebox:

1. fingerprints: each segment's length with its IP ID and TCP timestamp, each data
   segment's bytes, and the session's endpoints; a fingerprint held by more than
   ``SHARED`` sessions at the other point tells nothing and is ignored (every session of
   one client starts with the same EHLO);
2. time: the two clocks need not agree, but they differ by one offset for every session.
   It is taken from the sessions the fingerprints pair beyond doubt, else from the
   session starts (the difference most starts agree on). A session's start is its first
   client segment (``Trace.anchor``): one direction's packet, so that the starts of a
   session at both points differ by the offset plus that direction's delay;
3. each candidate (the one the fingerprints are sure of, else the sessions that started
   nearest in time, and the best voted) is scored by matching its segments
   (``segments.match_segments``): more copies paired and fewer left over win, then more
   copies with the same IP ID and timestamp, then the start closest to the clock offset.
   The first candidate that matches every segment ends the search. Pairs are taken best
   first, each session in one pair at most.

Limits: sessions alike in every segment (same lengths, no timestamps, IP IDs that count
alike) that start within the delay's jitter of each other cannot be told apart; a clock
that drifts by more than the gaps between session starts spoils the time-based pairing
(fingerprints still work); a single session at each point, alike in every segment, pairs
whatever its time.
"""
from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from statistics import median
from typing import Hashable, NamedTuple, Optional, Sequence

from .segments import Matching, Trace, match_segments, payload_key, strong_key

SHARED = 4            # a fingerprint held by more sessions than this tells nothing
CONFIDENT = 3         # fingerprint votes that pair two sessions beyond doubt (with a 2x margin)
NEAREST = 6           # sessions nearest in time tried for each session (voted ones: 3)
BIN_NS = 1_000_000    # clock offset from session starts: 1 ms bins


class Pair(NamedTuple):
    near: int            # index into the near traces
    far: int             # index into the far traces
    matching: Matching


class Pairing(NamedTuple):
    """Pairs of sessions (indices into the given lists), the sessions of each point left
    unpaired, and the clock offset the pairing used (far clock - near clock, ns; None if
    there was nothing to pair)."""

    pairs: tuple[Pair, ...]
    near_only: tuple[int, ...]
    far_only: tuple[int, ...]
    offset: Optional[int]


def fingerprints(t: Trace) -> set[Hashable]:
    """What of a session survives a middlebox, as hashable keys."""
    out: set[Hashable] = {("endpoints", t.client, t.server)}
    for s in t.segments:
        k = strong_key(s)
        if k is not None:
            out.add(k)
        p = payload_key(s)
        if p is not None:
            out.add(p)
    return out


def _votes(near: Sequence[Trace], far: Sequence[Trace]) -> list[Counter[int]]:
    index: dict[Hashable, list[int]] = {}
    for fi, t in enumerate(far):
        for k in fingerprints(t):
            index.setdefault(k, []).append(fi)
    out = []
    for t in near:
        c: Counter[int] = Counter()
        for k in fingerprints(t):
            hits = index.get(k)
            if hits is not None and len(hits) <= SHARED:
                c.update(hits)
        out.append(c)
    return out


def _confident(c: Counter[int]) -> Optional[int]:
    top = c.most_common(2)
    if not top or top[0][1] < CONFIDENT:
        return None
    if len(top) > 1 and top[0][1] < 2 * top[1][1]:
        return None
    return top[0][0]


def start_offset(near_starts: Sequence[int], far_starts: Sequence[int],
                 sample: int = 256) -> Optional[int]:
    """The clock offset (far - near, ns) most session starts agree on: the 1 ms bin (with
    its neighbour) holding the most differences between a near start and a far start,
    refined to their median. None if either side has no session."""
    if not near_starts or not far_starts:
        return None
    import numpy as np

    ns = np.asarray(near_starts, dtype=np.int64)
    if len(ns) > sample:
        ns = ns[np.linspace(0, len(ns) - 1, sample).astype(np.int64)]
    fs = np.asarray(far_starts, dtype=np.int64)
    if len(fs) > 64 * sample:
        fs = fs[np.linspace(0, len(fs) - 1, 64 * sample).astype(np.int64)]
    diffs = (fs[None, :] - ns[:, None]).ravel()
    bins = diffs // BIN_NS
    values, counts = np.unique(bins, return_counts=True)
    # a difference near a bin's edge falls either side of it: count each bin with the next
    nxt = np.minimum(np.searchsorted(values, values + 1), len(values) - 1)
    with_next = counts + np.where(values[nxt] == values + 1, counts[nxt], 0)
    best = values[int(np.argmax(with_next))]
    return int(np.median(diffs[(bins == best) | (bins == best + 1)]))


def pair_sessions(near: Sequence[Trace], far: Sequence[Trace],
                  offset: Optional[int] = None) -> Pairing:
    """Pair the sessions seen at both points (see the module's description). ``offset``
    (far clock - near clock, ns) when known; else it is estimated. Every session is in
    at most one pair; the rest are listed as seen at one point only."""
    votes = _votes(near, far)
    sure = {ni: fi for ni, c in enumerate(votes) if (fi := _confident(c)) is not None}
    if offset is None:
        if sure:
            offset = int(median(far[fi].anchor - near[ni].anchor for ni, fi in sure.items()))
        else:
            offset = start_offset([t.anchor for t in near], [t.anchor for t in far])
    order = sorted(range(len(far)), key=lambda i: far[i].anchor)
    starts = [far[i].anchor for i in order]
    edges: list[tuple[tuple[int, int, int, int], int, int, Matching]] = []
    for ni, t in enumerate(near):
        voted = [fi for fi, _ in votes[ni].most_common(3)]
        nearest: list[int] = []
        if offset is not None and starts:
            want = t.anchor + offset
            at = bisect_left(starts, want)
            nearest = order[max(0, at - NEAREST):at + NEAREST]
            nearest.sort(key=lambda i: abs(far[i].anchor - want))
            nearest = nearest[:NEAREST]
        # the one the fingerprints are sure of first, else the nearest in time: when it
        # matches every segment, none can do better
        first = [sure[ni]] if ni in sure else nearest[:1]
        candidates = list(dict.fromkeys(first + voted + nearest))
        for k, fi in enumerate(candidates):
            f = far[fi]
            m = match_segments(t.segments, f.segments, offset)
            matched = len(m.pairs)
            if matched == 0 or 2 * matched < min(len(t.segments), len(f.segments)):
                continue
            left = len(m.near_only) + len(m.far_only)
            same = sum(n.ipid == g.ipid and n.tsval == g.tsval for n, g in m.pairs)
            skew = abs(f.anchor - t.anchor - offset) if offset is not None else 0
            edges.append(((-(2 * matched - left), -same, skew, fi), ni, fi, m))
            if k == 0 and left == 0 and (ni in sure or same == matched or set(voted) <= {fi}):
                break
    edges.sort(key=lambda e: (e[0], e[1]))
    used_n: set[int] = set()
    used_f: set[int] = set()
    pairs = []
    for _, ni, fi, m in edges:
        if ni in used_n or fi in used_f:
            continue
        used_n.add(ni)
        used_f.add(fi)
        pairs.append(Pair(ni, fi, m))
    pairs.sort(key=lambda p: p.near)
    return Pairing(tuple(pairs), tuple(i for i in range(len(near)) if i not in used_n),
                   tuple(i for i in range(len(far)) if i not in used_f), offset)
