"""Reading one capture point: its sessions as ``pushscan analyze`` reports them (ids,
endpoints, frame ranges, verdicts), and each session's segments from the decoded
batches. The only part of ``compare`` that touches files.

A session's segments are those of its 4-tuple within its frame range: the tracker gives
a reused 4-tuple's sessions disjoint ranges, so the range tells them apart.
"""
from __future__ import annotations

import ipaddress
from bisect import bisect_right
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

from ..analysis import Analysis, Options
from ..errors import CaptureDamaged
from ..model import DecodeStats, FlowKey, flow_key
from ..sources.engines import NativeEngine, open_engine
from .segments import C2S, S2C, Endpoint, Seg, Trace


@dataclass
class Point:
    """One capture point: its file's report (``analyze``'s document: inputs, sessions),
    its sessions' traces (in the report's order), and the time its TCP segments span."""

    path: str
    report: dict[str, Any]
    traces: list[Trace] = field(default_factory=list)
    span: tuple[int, int] = (0, 0)

    @property
    def sessions(self) -> list[dict[str, Any]]:
        return list(self.report["sessions"])


def _endpoint(e: dict[str, Any]) -> Endpoint:
    return Endpoint(str(e["ip"]), int(e["port"]))


def _session_key(doc: dict[str, Any]) -> tuple[FlowKey, int]:
    """The flow key of a session document and the key's direction of client -> server."""
    c = ipaddress.ip_address(doc["client"]["ip"])
    s = ipaddress.ip_address(doc["server"]["ip"])
    return flow_key(c.version, int(c), int(doc["client"]["port"]), int(s), int(doc["server"]["port"]))


class _Ranges:
    """The sessions of one 4-tuple by frame range: (first frames, last frames, index,
    the key's direction of client -> server)."""

    def __init__(self) -> None:
        self.firsts: list[int] = []
        self.entries: list[tuple[int, int, int]] = []   # (last frame, trace index, c2s dir)

    def add(self, first: int, last: int, index: int, c2s: int) -> None:
        at = bisect_right(self.firsts, first)
        self.firsts.insert(at, first)
        self.entries.insert(at, (last, index, c2s))

    def find(self, frame: int) -> Optional[tuple[int, int, int]]:
        at = bisect_right(self.firsts, frame) - 1
        if at < 0 or self.entries[at][0] < frame:
            return None
        return self.entries[at]


def read_point(path: str, opts: Options) -> Point:
    """Analyse ``path`` alone and collect its sessions' segments. Raises the file's
    ``InputError`` when it cannot be read at all."""
    a = Analysis([path], opts)
    report = a.run()
    if a.unreadable:
        raise a.unreadable[0]
    point = Point(path, report)
    ranges: dict[FlowKey, _Ranges] = {}
    segs: list[list[Seg]] = []
    for i, doc in enumerate(report["sessions"]):
        key, c2s = _session_key(doc)
        ranges.setdefault(key, _Ranges()).add(int(doc["first_frame"]), int(doc["last_frame"]), i, c2s)
        segs.append([])
    lo, hi = _collect(path, opts.engine, ranges, segs)
    point.span = (lo, hi)
    point.traces = [Trace(int(doc["id"]), _endpoint(doc["client"]), _endpoint(doc["server"]),
                          tuple(s)) for doc, s in zip(report["sessions"], segs)]
    return point


def _collect(path: str, engine_name: str, ranges: dict[FlowKey, _Ranges],
             out: list[list[Seg]]) -> tuple[int, int]:
    """Read the file again and append each session's segments to ``out``; return the
    first and last time of any TCP segment in it."""
    engine, close = open_engine(path, engine_name)
    if isinstance(engine, NativeEngine):
        from ..compiled import ready
        engine.fast = ready()        # the compiled scanner and decoder when built (no cost)
    lo, hi = (1 << 63) - 1, -(1 << 63)
    try:
        for batch, _ in engine.batches(0, DecodeStats()):
            seg = batch.seg
            if len(seg):
                lo, hi = min(lo, int(seg["ts"].min())), max(hi, int(seg["ts"].max()))
                _assign(batch.seg, batch.data, [ranges.get(k) for k in batch.flows], out)
    except CaptureDamaged:
        pass     # the analysis reported it under inputs[].errors; what was read is kept
    finally:
        close()
    return (lo, hi) if lo <= hi else (0, 0)


def _assign(seg: np.ndarray, data: Any, wanted: list[Optional[_Ranges]], out: list[list[Seg]]) -> None:
    """Append a batch's segments to their sessions' lists. A flow with one session (the
    rule) is assigned on whole columns; a reused 4-tuple's segments by frame range."""
    nflows = len(wanted)
    index = np.full(nflows, -1, dtype=np.int64)     # the flow's one session, -2: several
    first = np.zeros(nflows, dtype=np.int64)
    last = np.zeros(nflows, dtype=np.int64)
    c2s = np.zeros(nflows, dtype=np.int64)
    for fi, w in enumerate(wanted):
        if w is None:
            continue
        if len(w.entries) == 1:
            first[fi] = w.firsts[0]
            last[fi], index[fi], c2s[fi] = w.entries[0]
        else:
            index[fi] = -2
    flow = seg["flow"]
    frame = seg["frame"]
    sess = index[flow]
    sess = np.where((sess >= 0) & ((frame < first[flow]) | (frame > last[flow])), -1, sess)
    client_dir = c2s[flow]
    for i in np.flatnonzero(sess == -2).tolist():
        several = wanted[int(flow[i])]
        hit = several.find(int(frame[i])) if several is not None else None
        sess[i], client_dir[i] = (-1, 0) if hit is None else hit[1:]
    keep = np.flatnonzero(sess >= 0)
    if not len(keep):
        return
    keep = keep[np.argsort(sess[keep], kind="stable")]
    rows = seg[keep]
    owner = sess[keep]
    d = np.where(rows["dir"] == client_dir[keep], C2S, S2C)
    offs, lens = rows["pay_off"].tolist(), rows["pay_len"].tolist()
    payloads = [bytes(data[o:o + n]) if n else b"" for o, n in zip(offs, lens)]
    segs = list(map(Seg, rows["frame"].tolist(), rows["ts"].tolist(), d.tolist(),
                    rows["flags"].tolist(), rows["seq"].tolist(), rows["ack"].tolist(),
                    rows["plen"].tolist(), payloads, rows["ttl"].tolist(), rows["ipid"].tolist(),
                    rows["mss"].tolist(), rows["tsval"].tolist(), rows["win"].tolist(),
                    rows["opts"].tolist()))
    bounds = np.flatnonzero(np.diff(owner)) + 1
    starts = [0, *bounds.tolist()]
    ends = [*bounds.tolist(), len(owner)]
    for a, b, who in zip(starts, ends, owner[starts].tolist()):
        out[who].extend(segs[a:b])
