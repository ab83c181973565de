"""Baselines: what a trace's sessions were (verdicts, finding codes), and how a report
differs from it, in readable lines."""
from __future__ import annotations

import json
from typing import Any

from .policy import PolicyError

SESSION_KEYS = {"id": int, "client": str, "server": str, "verdict": str, "findings": list}


def load_baseline(path: str) -> dict[str, Any]:
    """A baseline file as ``--write-baseline`` writes it, or a ``PolicyError`` (exit 2)
    that names the file and what is wrong with it."""
    try:
        with open(path, "rb") as f:
            doc = json.loads(f.read().decode("utf-8"))
    except OSError as exc:
        raise PolicyError(f"baseline {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise PolicyError(f"baseline {path}: not UTF-8 text (byte {exc.start})") from None
    except ValueError as exc:
        raise PolicyError(f"baseline {path}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema") != 1 or "traces" not in doc:
        raise PolicyError(f"baseline {path}: not a pushscan baseline (schema 1)")
    traces = doc["traces"]
    if not isinstance(traces, dict):
        raise PolicyError(f"baseline {path}: 'traces' must map trace paths to their sessions")
    for trace, sessions in traces.items():
        if not isinstance(sessions, list):
            raise PolicyError(f"baseline {path}: trace {trace!r}: expected a list of sessions")
        for k, s in enumerate(sessions):
            wrong = [key for key, kind in SESSION_KEYS.items()
                     if not isinstance(s, dict) or not isinstance(s.get(key), kind)
                     or (kind is int and isinstance(s.get(key), bool))]
            if not wrong and not all(isinstance(c, str) for c in s["findings"]):
                wrong = ["findings"]
            if wrong:
                raise PolicyError(f"baseline {path}: trace {trace!r}, session {k}: expected "
                                  f"{', '.join(wrong)} (keys: id, client, server, verdict, findings)")
    return doc


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
