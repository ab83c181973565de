"""``pushscan check``: a CI gate over recorded traces.

Each trace (one capture file) is analysed alone and judged by a policy; a trace fails when
a session has a finding the policy fails on, when outgoing turns went unpushed and the
policy requires them pushed, when the trace's push ratio is below the minimum, or when it
differs from a baseline.
"""
from __future__ import annotations

import glob
import os
import traceback
from typing import Any, Optional

from ..analysis import Analysis, Options
from ..errors import PushscanError, UsageError
from .baseline import baseline_diff, baseline_entry
from .compare import check_compare
from .policy import Policy
from .results import CaseResult as CaseResult, TraceResult as TraceResult  # (re-exported)

CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz")


def expand_traces(args: list[str]) -> list[str]:
    """Files, directories (searched for capture files) and glob patterns, in order. A
    directory without capture files, or a pattern that matches nothing, is a
    ``UsageError``: a gate that checks nothing must not pass."""
    out: list[str] = []
    for a in args:
        if os.path.isdir(a):
            found = sorted(os.path.join(d, f) for d, _, fs in os.walk(a) for f in fs
                           if f.endswith(CAPTURE_SUFFIXES))
            if not found:
                raise UsageError(f"{a}: no capture files in this directory (looked for "
                                 f"{', '.join('*' + x for x in CAPTURE_SUFFIXES)})")
            out.extend(found)
        elif any(ch in a for ch in "*?[") and not os.path.exists(a):
            matches = sorted(glob.glob(a, recursive=True))
            if not matches:
                raise UsageError(f"{a}: no file matches")
            out.extend(matches)
        else:
            out.append(a)
    return out


def judge(path: str, report: dict[str, Any], policy: Policy) -> TraceResult:
    """Apply ``policy`` to one trace's report."""
    cases: list[CaseResult] = []
    out_turns = out_pushed = 0
    for s in report["sessions"]:
        name = (f"session {s['id']} {s['client']['ip']}:{s['client']['port']} -> "
                f"{s['server']['ip']}:{s['server']['port']}")
        case = CaseResult(name, s["id"], verdict=s["verdict"])
        for f in s["findings"]:
            if policy.fails(f):
                case.failures.append((f"{f['code']} ({f['severity']}): {f['message']}", f["frames"]))
        d = s["directions"][s["outgoing"]]
        out_turns += d["turns"]
        out_pushed += d["turns"] - d["turns_unpushed"]
        if policy.require_pushed_turns and d["turns_unpushed"]:
            frames = [fr for t in s["findings"] if t["code"] == "UNPUSHED_TURN" for fr in t["frames"]]
            case.failures.append((f"{d['turns_unpushed']} of {d['turns']} outgoing turns ended "
                                  "without PSH (require_pushed_turns)", frames))
        cases.append(case)
    if policy.min_push_ratio is not None:
        ratio = out_pushed / out_turns if out_turns else 1.0
        case = CaseResult("push ratio", None)
        if ratio < policy.min_push_ratio:
            case.failures.append((f"{out_pushed} of {out_turns} outgoing turns pushed ({ratio:.2f}), "
                                  f"below min_push_ratio {policy.min_push_ratio:g}", []))
        cases.append(case)
    warnings = [e for i in report["inputs"] for e in i["errors"]]
    return TraceResult(path, not any(c.failures for c in cases), cases, warnings=warnings,
                       report=report)


def check_trace(path: str, policy: Policy, engine: str = "native") -> TraceResult:
    """Analyse one trace alone and judge it (no baseline). A trace that cannot be read,
    holds no packet that could be read, or makes pushscan fail is an error result, never
    a pass."""
    try:
        p = policy.for_trace(path)
        opts = Options(ports=p.ports, outgoing=p.outgoing, local=p.local, all_tcp=p.all_tcp,
                       engine=engine)
        a = Analysis([path], opts)
        report = a.run()
    except PushscanError as exc:
        return TraceResult(path, False, [], error=str(exc), error_kind="UnreadableInput")
    except Exception as exc:   # a bug met on this trace: the gate reports it and goes on
        return crashed(path, f"{type(exc).__name__}: {exc}", traceback.format_exc())
    if a.unreadable:
        return TraceResult(path, False, [], error=str(a.unreadable[0]), error_kind="UnreadableInput")
    inp = report["inputs"][0]
    if not inp["packets"]:
        why = f" ({'; '.join(inp['errors'])})" if inp["errors"] else ""
        return TraceResult(path, False, [], error=f"{path}: no packets could be read{why}",
                           error_kind="NoPackets", report=report)
    return judge(path, report, p)


def crashed(path: str, reason: str, detail: str = "") -> TraceResult:
    """The result of a trace whose analysis failed unexpectedly (or whose worker died)."""
    return TraceResult(path, False, [], error=f"{path}: pushscan failed on this trace ({reason})",
                       error_kind="Crash", error_detail=detail)


def check(paths: list[str] | str, policy: Optional[Policy] = None,
          baseline: Optional[dict[str, Any]] = None, engine: str = "native",
          jobs: int = 1) -> list[TraceResult]:
    """Check traces (files, directories, globs) against ``policy`` and, if given, a
    baseline (as written by ``--write-baseline``). One result per trace, in order, then
    one per pair of captures in the policy's ``compare`` (``gate.compare``; baselines do
    not cover those); ``jobs`` > 1 checks traces in that many processes at once."""
    if isinstance(paths, str):
        paths = [paths]
    policy = policy or Policy()
    traces = expand_traces(list(paths))
    Options(engine=engine)     # a wrong engine is a usage error before any work
    if jobs > 1 and len(traces) > 1:
        from ..analysis.parallel import WorkerLost, in_processes
        results = [crashed(t, f"its worker process died: {r.reason}", r.detail)
                   if isinstance(r, WorkerLost) else r
                   for t, r in zip(traces, in_processes(check_trace, [(t, policy, engine) for t in traces],
                                                        jobs))]
    else:
        results = [check_trace(t, policy, engine) for t in traces]
    results += [check_compare(near, far, policy, engine) for near, far in policy.compare]
    if baseline is not None:
        recorded = baseline.get("traces", {})
        for r in results:
            if r.report is None or r.error is not None or r.kind != "trace":
                continue
            if r.path not in recorded:
                r.baseline_diff = ["trace not in the baseline"]
            else:
                r.baseline_diff = baseline_diff(recorded[r.path], baseline_entry(r.report))
            if r.baseline_diff:
                r.passed = False
    return results
