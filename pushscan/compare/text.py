"""The text report of ``pushscan compare``: each pair with its facts, its findings side by
side (near frame <-> far frame) and its verdict; the sessions seen at one point only."""
from __future__ import annotations

from typing import Any, Optional, TextIO

from ..findings.numbers import duration
from ..report.terminal import Terminal
from ..report.text import endpoint_text as _ep

LIMIT = 200          # pairs shown in full; past it only those whose verdict is not clean
ROWS = 12            # frame rows shown per finding


def _session(point: str, s: dict[str, Any]) -> str:
    return f"{point} #{s['id']} {_ep(s['client'])} -> {_ep(s['server'])}"


def _ms(seconds: float) -> str:
    """A one-way delay; a negative one is a clock offset estimated a little off."""
    ns = round(seconds * 1e9)
    return duration(ns) if ns >= 0 else f"-{duration(-ns)}"


def _direction(name: str, d: dict[str, Any]) -> str:
    seg = d["segments"]
    parts = [f"{d['matched']} matched of {seg['near']} near / {seg['far']} far segments"]
    if d["delay_seconds"] is not None:
        parts.append(f"delay median {_ms(d['delay_seconds']['median'])}, max "
                     f"{_ms(d['delay_seconds']['max'])}")
    if d["hops"] is not None:
        parts.append(f"{d['hops']} hop(s) between the points")
    if d["sequence_offset"]:
        parts.append(f"sequence numbers +{d['sequence_offset']} at far (mod 2^32)")
    rest = d["only_at_receiving_point"]["count"]
    if rest:
        parts.append(f"{rest} segment(s) only at the receiving point")
    if d["outside_other_capture"]:
        parts.append(f"{d['outside_other_capture']} outside the other capture's time")
    return f"  {name}: " + "; ".join(parts)


def _frame_rows(f: dict[str, Any]) -> list[str]:
    near, far = f["near_frames"], f["far_frames"]
    if near and far and len(near) == len(far):
        rows = [f"near {a:<7} <->  far {b}" for a, b in zip(near, far)]
    else:
        rows = [f"near {a:<7} <->  far (none)" for a in near] + \
               [f"near (none) <->  far {b}" for b in far]
    if len(rows) > ROWS:
        rows = rows[:ROWS] + [f"... {len(rows) - ROWS} more"]
    return rows


def render_pair(term: Terminal, p: dict[str, Any]) -> None:
    term.line(f"{_session('near', p['near'])}  <->  {_session('far', p['far'])}: {p['verdict']}")
    nat = [who for who in ("client", "server") if p["translated"][who]]
    where = f"the client is at the {p['client_point']} side (told by {p['client_point_by']})"
    if nat:
        where += "; translated between the points (NAT): " + ", ".join(nat)
    term.line(where, indent="  ")
    for name, d in p["directions"].items():
        term.line(_direction(name, d).lstrip(), indent="  ")
    for f in p["findings"]:
        term.line(f"{f['severity']:<7} {f['code']} {f['direction']}: {f['message']}", indent="  ")
        for row in _frame_rows(f):
            term.line(row, indent="            ")
        term.line(f"remedy: {f['remedy']}", indent="          ")
    term.line(f"verdict {p['verdict']}: {p['explanation']}", indent="  ")


def render_text(doc: dict[str, Any], out: TextIO, color: bool = False,
                width: Optional[int] = None) -> None:
    """Write the text report of a compare document (``width``: the terminal's, or None
    for a file or pipe: nothing wraps)."""
    term = Terminal(out, color, width)
    for inp in doc["inputs"]:
        errors = "; ".join(inp["errors"])
        term.line(f"{inp['point']}: {inp['path']}: {inp['format']}, {inp['packets']:,} packets"
                  f"{'; ' + errors if errors else ''}")
    off = doc["clock_offset_seconds"]
    if off is None:
        term.line("clock offset (far - near): unknown (no direction matched both ways); "
                  "no one-way delays")
    else:
        term.line(f"clock offset (far - near): {off:+.6f} s, from {doc['clock_offset_from']}")
    pairs = doc["pairs"]
    shown = pairs if len(pairs) <= LIMIT else [p for p in pairs if p["verdict"] != "clean"]
    for p in shown:
        term.line()
        render_pair(term, p)
    if len(shown) < len(pairs):
        term.line()
        term.line(f"({len(pairs) - len(shown)} clean pair(s) not shown; --format json lists "
                  "them all)")
    un = doc["unmatched_sessions"]
    for point in ("near", "far"):
        if un[point]:
            term.line()
            term.line(f"seen at {point} only ({len(un[point])}):")
            for s in un[point][:LIMIT]:
                term.line(f"{_session(point, s)}, frames {s['first_frame']}-{s['last_frame']}, "
                          f"{s['verdict']}", indent="  ")
            if len(un[point]) > LIMIT:
                term.line(f"... {len(un[point]) - LIMIT} more", indent="  ")
    summ = doc["summary"]
    verdicts = ", ".join(f"{k} {v}" for k, v in summ["by_verdict"].items()) or "none"
    term.line()
    term.line(f"{summ['pairs']} pair(s): {verdicts}; seen at one point only: near "
              f"{summ['unmatched']['near']}, far {summ['unmatched']['far']}")
