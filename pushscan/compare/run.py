"""``compare``: two captures of one path -> paired sessions, what the path did to each,
as the JSON contract's document (``"schema": 1``). Wires reading (``gather``) to the
sans-I/O stages (``pairing``, ``findings``)."""
from __future__ import annotations

import os
from collections import Counter
from typing import Any, Optional

from ..analysis import Options
from ..errors import UsageError
from ..report.document import SCHEMA
from ..version import __version__
from .findings import PointFacts, Side, assess_pair, client_side, clock_offset, verdict_remedy
from .gather import Point, read_point
from .pairing import pair_sessions


def _facts(doc: dict[str, Any], span: tuple[int, int]) -> PointFacts:
    return PointFacts(verdict=doc["verdict"], close=doc["close"], outgoing=doc["outgoing"],
                      findings=tuple(doc["findings"]), span=span)


def _session(doc: dict[str, Any]) -> dict[str, Any]:
    return {"id": doc["id"], "client": doc["client"], "server": doc["server"],
            "first_frame": doc["first_frame"], "last_frame": doc["last_frame"],
            "close": doc["close"], "verdict": doc["verdict"]}


def same_file(near: str, far: str) -> bool:
    try:
        return os.path.samefile(near, far)
    except OSError:
        return near == far


def compare(near_path: str, far_path: str, opts: Optional[Options] = None,
            clock_offset_s: Optional[float] = None) -> dict[str, Any]:
    """Compare two captures of one path (NEAR and FAR, taken at the same time) and return
    the report document. ``clock_offset_s``: the far clock minus the near clock, if known
    (else estimated from the matched packets). Raises ``InputError`` if either file
    cannot be read at all, ``UsageError`` for standard input."""
    opts = opts or Options()
    if "-" in (near_path, far_path):
        raise UsageError("compare reads two files, not standard input")   # each is read twice
    near = read_point(near_path, opts)
    far = read_point(far_path, opts)
    return compare_points(near, far, clock_offset_s, opts.engine)


def compare_points(near: Point, far: Point, clock_offset_s: Optional[float] = None,
                   engine: str = "native") -> dict[str, Any]:
    """The document for two points already read (see ``compare``)."""
    given = None if clock_offset_s is None else int(round(clock_offset_s * 1e9))
    pairing = pair_sessions(near.traces, far.traces, given)
    sides: list[Side] = [client_side(p.matching) for p in pairing.pairs]
    offset = given if given is not None else clock_offset((p.matching, s) for p, s in zip(pairing.pairs, sides))
    expected = offset if offset is not None else (pairing.offset or 0)
    docs_n, docs_f = near.sessions, far.sessions
    pairs = []
    by_verdict: Counter[str] = Counter()
    by_code: Counter[str] = Counter()
    for p, side in zip(pairing.pairs, sides):
        dn, df = docs_n[p.near], docs_f[p.far]
        tn, tf = near.traces[p.near], far.traces[p.far]
        findings, directions, v, why = assess_pair(
            tn, tf, p.matching, side, offset, expected,
            (_facts(dn, near.span), _facts(df, far.span)))
        by_verdict[v.value] += 1
        by_code.update(f["code"] for f in findings)
        pairs.append({
            "near": _session(dn), "far": _session(df),
            "client_point": side.client_point, "client_point_by": side.by,
            "translated": {"client": tn.client != tf.client, "server": tn.server != tf.server},
            "directions": directions, "findings": findings,
            "verdict": v.value, "explanation": why, "remedy": verdict_remedy(v)})
    inputs = []
    for name, point in (("near", near), ("far", far)):
        info = dict(point.report["inputs"][0])
        info["point"] = name
        inputs.append(info)
    return {
        "schema": SCHEMA, "pushscan_version": __version__, "engine": engine,
        "inputs": inputs,
        "clock_offset_seconds": None if offset is None else round(offset / 1e9, 6) + 0.0,
        "clock_offset_from": None if offset is None else ("given" if given is not None
                                                          else "matched packets"),
        "pairs": pairs,
        "unmatched": {"near": [docs_n[i]["id"] for i in pairing.near_only],
                      "far": [docs_f[i]["id"] for i in pairing.far_only]},
        "unmatched_sessions": {"near": [_session(docs_n[i]) for i in pairing.near_only],
                               "far": [_session(docs_f[i]) for i in pairing.far_only]},
        "summary": {"pairs": len(pairs), "by_verdict": dict(sorted(by_verdict.items())),
                    "by_code": dict(sorted(by_code.items())),
                    "unmatched": {"near": len(pairing.near_only), "far": len(pairing.far_only)}},
    }
