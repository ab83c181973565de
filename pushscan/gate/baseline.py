"""Baselines: what a trace's sessions were (verdicts, finding codes), and how a report
differs from it, in readable lines."""
from __future__ import annotations

from typing import Any


def baseline_entry(report: dict[str, Any]) -> list[dict[str, Any]]:
    """What a baseline records of a trace: each session's identity, verdict and findings."""
    return [{"id": s["id"], "client": f"{s['client']['ip']}:{s['client']['port']}",
             "server": f"{s['server']['ip']}:{s['server']['port']}", "verdict": s["verdict"],
             "findings": sorted(f["code"] for f in s["findings"])} for s in report["sessions"]]


def baseline_diff(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[str]:
    """Readable differences between a trace's baseline and its report now."""
    lines: list[str] = []
    o = {s["id"]: s for s in old}
    n = {s["id"]: s for s in new}
    for sid in sorted(set(o) | set(n)):
        a, b = o.get(sid), n.get(sid)
        if b is None:
            lines.append(f"session {sid} ({a['client']} -> {a['server']}) missing")  # type: ignore[index]
            continue
        if a is None:
            lines.append(f"new session {sid} ({b['client']} -> {b['server']}), verdict {b['verdict']}")
            continue
        if (a["client"], a["server"]) != (b["client"], b["server"]):
            lines.append(f"session {sid}: endpoints changed {a['client']} -> {a['server']} to "
                         f"{b['client']} -> {b['server']}")
        if a["verdict"] != b["verdict"]:
            lines.append(f"session {sid}: verdict changed {a['verdict']} -> {b['verdict']}")
        for code in sorted(set(b["findings"])):
            extra = b["findings"].count(code) - a["findings"].count(code)
            if extra > 0:
                lines.append(f"session {sid}: new finding {code}" + (f" (x{extra})" if extra > 1 else ""))
        for code in sorted(set(a["findings"])):
            gone = a["findings"].count(code) - b["findings"].count(code)
            if gone > 0:
                lines.append(f"session {sid}: finding {code} gone" + (f" (x{gone})" if gone > 1 else ""))
    return lines
