"""The text report of ``pushscan compare``: each pair with its facts, its findings side by
side (near frame <-> far frame) and its verdict; the sessions seen at one point only."""
from __future__ import annotations

import textwrap
from typing import Any, TextIO

LIMIT = 200          # pairs shown in full; past it only those whose verdict is not clean
ROWS = 12            # frame rows shown per finding
WIDTH = 100


def _ep(e: dict[str, Any]) -> str:
    ip = e["ip"]
    return f"[{ip}]:{e['port']}" if ":" in ip else f"{ip}:{e['port']}"


def _session(point: str, s: dict[str, Any]) -> str:
    return f"{point} #{s['id']} {_ep(s['client'])} -> {_ep(s['server'])}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.3f} ms"


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


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(text, WIDTH, initial_indent=indent, subsequent_indent=indent + "  ")


def render_pair(p: dict[str, Any]) -> list[str]:
    lines = [f"{_session('near', p['near'])}  <->  {_session('far', p['far'])}: {p['verdict']}"]
    nat = [who for who in ("client", "server") if p["translated"][who]]
    where = f"  the client is at the {p['client_point']} side (told by {p['client_point_by']})"
    if nat:
        where += "; translated between the points (NAT): " + ", ".join(nat)
    lines.append(where)
    for name, d in p["directions"].items():
        lines.append(_direction(name, d))
    for f in p["findings"]:
        lines.extend(_wrap(f"{f['severity']:<7} {f['code']} {f['direction']}: {f['message']}", "  "))
        lines.extend(f"            {row}" for row in _frame_rows(f))
        lines.extend(_wrap(f"remedy: {f['remedy']}", "          "))
    lines.extend(_wrap(f"verdict {p['verdict']}: {p['explanation']}", "  "))
    return lines


def render_text(doc: dict[str, Any], out: TextIO) -> None:
    """Write the text report of a compare document."""
    for inp in doc["inputs"]:
        errors = "; ".join(inp["errors"])
        out.write(f"{inp['point']}: {inp['path']}: {inp['format']}, {inp['packets']} packets"
                  f"{'; ' + errors if errors else ''}\n")
    off = doc["clock_offset_seconds"]
    if off is None:
        out.write("clock offset (far - near): unknown (no direction matched both ways); "
                  "no one-way delays\n")
    else:
        out.write(f"clock offset (far - near): {off:+.6f} s, from {doc['clock_offset_from']}\n")
    pairs = doc["pairs"]
    shown = pairs if len(pairs) <= LIMIT else [p for p in pairs if p["verdict"] != "clean"]
    for p in shown:
        out.write("\n" + "\n".join(render_pair(p)) + "\n")
    if len(shown) < len(pairs):
        out.write(f"\n({len(pairs) - len(shown)} clean pair(s) not shown; --format json lists "
                  "them all)\n")
    un = doc["unmatched_sessions"]
    for point in ("near", "far"):
        if un[point]:
            out.write(f"\nseen at {point} only ({len(un[point])}):\n")
            for s in un[point][:LIMIT]:
                out.write(f"  {_session(point, s)}, frames {s['first_frame']}-{s['last_frame']}, "
                          f"{s['verdict']}\n")
            if len(un[point]) > LIMIT:
                out.write(f"  ... {len(un[point]) - LIMIT} more\n")
    summ = doc["summary"]
    verdicts = ", ".join(f"{k} {v}" for k, v in summ["by_verdict"].items()) or "none"
    out.write(f"\n{summ['pairs']} pair(s): {verdicts}; seen at one point only: near "
              f"{summ['unmatched']['near']}, far {summ['unmatched']['far']}\n")
