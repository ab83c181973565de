"""Shards of one capture: every session belongs to exactly one, by a symmetric hash of its
flow (the canonical 4-tuple, so both directions and every packet of a session, and the
ICMP errors that quote it, land together: the flow balancing of Suricata and Zeek
clusters, applied to files). Each shard's analysis reads the whole capture (frame numbers
and capture time stay the capture's) and tracks only its own sessions; ``merge`` puts the
shards' sessions back in one report with the ids of a run over the whole capture.

Identical to one run over the whole capture, except when the open-session limit
(``--max-sessions``) is reached: each shard counts its own open sessions, so which idle
session is evicted first may differ.
"""
from __future__ import annotations

import heapq
import struct
import zlib
from typing import Any, Iterable, Iterator, NamedTuple, Sequence

import numpy as np

from ..model import FlowKey, SegmentBatch

_KEY = struct.Struct("<BQQHQQH")


class Shard(NamedTuple):
    number: int     # 0 .. of - 1
    of: int


def flow_shard(key: FlowKey, count: int) -> int:
    """The shard of a flow (stable across processes and machines: CRC-32 of its key)."""
    return zlib.crc32(_KEY.pack(*key)) % count


def select(batch: SegmentBatch, shard: Shard) -> SegmentBatch:
    """The part of ``batch`` that belongs to ``shard``: its segments and ICMP errors (the
    flows list is kept whole, so flow indices stay valid); the batch's end time is kept,
    so that capture time advances as in the whole capture."""
    count, index = shard.of, shard.number
    mine = np.fromiter((flow_shard(k, count) == index for k in batch.flows), dtype=bool,
                       count=len(batch.flows))
    until = batch.last_ts() if len(batch) else batch.until
    seg = batch.seg[mine[batch.seg["flow"]]] if len(batch) else batch.seg
    icmp = [e for e in batch.icmp if flow_shard(e.flow, count) == index]
    return SegmentBatch(seg=seg, data=batch.data, flows=batch.flows, icmp=icmp,
                        hints=batch.hints, tunnels=batch.tunnels, until=until)


def merge_sessions(shards: Iterable[Iterable[dict[str, Any]]],
                   starts: Sequence[np.ndarray]) -> Iterator[dict[str, Any]]:
    """The sessions of every shard (each in order of first frame) in one sequence, in
    order of first frame, with the ids a run over the whole capture gives them: the
    number of sessions, reported or not, of every shard that began before (``starts``:
    each shard's sessions' first frames, sorted; every frame starts at most one
    session). Streams: holds one session per shard."""
    for doc in heapq.merge(*shards, key=lambda d: d["first_frame"]):
        doc["id"] = sum(int(np.searchsorted(st, doc["first_frame"])) for st in starts)
        yield doc


def merge_summaries(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary of the whole capture from its shards' summaries (counts add up)."""
    out: dict[str, Any] = {"sessions": 0, "tcp_sessions": 0, "by_verdict": {}, "by_code": {},
                           "limits": {}}
    for s in summaries:
        out["sessions"] += s["sessions"]
        out["tcp_sessions"] += s["tcp_sessions"]
        for key in ("by_verdict", "by_code", "limits"):
            for k, v in s[key].items():
                out[key][k] = out[key].get(k, 0) + v
    out["by_verdict"] = dict(sorted(out["by_verdict"].items()))
    out["by_code"] = dict(sorted(out["by_code"].items()))
    if "selected" in summaries[0]:
        out["selected"] = {"filters": summaries[0]["selected"]["filters"],
                           "left_out": sum(s["selected"]["left_out"] for s in summaries)}
    return out
