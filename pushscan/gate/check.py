"""``pushscan check``: a CI gate over recorded traces.

Each trace (one capture: a file, or the pieces of a ring set named together, as
``analysis.grouping`` finds them) is analysed alone and judged by a policy; a trace fails
when a session has a finding the policy fails on, when outgoing turns went unpushed and
the policy requires them pushed, when the trace's push ratio is below the minimum, or when
it differs from a baseline. A trace of several files is named "FIRST + SECOND + ...".
"""
from __future__ import annotations

import glob
import os
import traceback
from typing import Any, Optional

from ..analysis import Analysis, Options, captures
from ..analysis.select import Selection
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


def trace_name(paths: tuple[str, ...]) -> str:
    """How results, JUnit and baselines name a trace."""
    return " + ".join(paths)


def check_trace(paths: tuple[str, ...] | str, policy: Policy, engine: str = "native",
                select: Selection = Selection()) -> TraceResult:
    """Analyse one trace (its files as one capture) alone and judge it (no baseline). A
    trace that cannot be read, holds no packet that could be read, or makes pushscan
    fail is an error result, never a pass. ``select``: only those sessions are judged."""
    files = (paths,) if isinstance(paths, str) else tuple(paths)
    name = trace_name(files)
    try:
        p = policy.for_trace(files[0])
        opts = Options(ports=p.smtp_ports, outgoing=p.outgoing, local=p.local, all_tcp=p.all_tcp,
                       engine=engine, merge=len(files) > 1, select=select)
        a = Analysis(list(files), opts)
        report = a.run()
    except PushscanError as exc:
        return TraceResult(name, False, [], error=str(exc), error_kind="UnreadableInput")
    except Exception as exc:   # a bug met on this trace: the gate reports it and goes on
        return crashed(name, f"{type(exc).__name__}: {exc}", traceback.format_exc())
    if a.unreadable and len(a.unreadable) == len(files):
        return TraceResult(name, False, [], error=str(a.unreadable[0]), error_kind="UnreadableInput")
    if a.unreadable:
        return TraceResult(name, False, [], error="; ".join(map(str, a.unreadable)),
                           error_kind="UnreadableInput", report=report)
    if not any(inp["packets"] for inp in report["inputs"]):
        errors = [e for inp in report["inputs"] for e in inp["errors"]]
        why = f" ({'; '.join(errors)})" if errors else ""
        return TraceResult(name, False, [], error=f"{name}: no packets could be read{why}",
                           error_kind="NoPackets", report=report)
    selected = report["summary"].get("selected")
    if selected and not report["summary"]["sessions"]:
        filters = ", ".join(f"--{k.rstrip('s')} {' '.join(map(str, v))}" for k, v in selected["filters"].items())
        return TraceResult(name, False, [], error=f"{name}: no session matches {filters} "
                           f"({selected['left_out']:,} left out): nothing to judge",
                           error_kind="NothingSelected", report=report)
    return judge(name, report, p)


def crashed(path: str, reason: str, detail: str = "") -> TraceResult:
    """The result of a trace whose analysis failed unexpectedly (or whose worker died)."""
    return TraceResult(path, False, [], error=f"{path}: pushscan failed on this trace ({reason})",
                       error_kind="Crash", error_detail=detail)


def check(paths: list[str] | str, policy: Optional[Policy] = None,
          baseline: Optional[dict[str, Any]] = None, engine: str = "native",
          jobs: int = 1, merge: bool = False, separate: bool = False,
          select: Selection = Selection(), cluster: Any = None) -> list[TraceResult]:
    """Check traces (files, directories, globs) against ``policy`` and, if given, a
    baseline (as written by ``--write-baseline``). Files that are pieces of one ring set
    are one trace (``merge``: all files are one; ``separate``: every file is one). One
    result per trace, in order, then one per pair of captures in the policy's ``compare``
    (``gate.compare``; baselines do not cover those); ``jobs`` > 1 checks traces in that
    many processes at once, ``cluster`` (``cli.cluster.ClusterRun``) one task per trace."""
    if isinstance(paths, str):
        paths = [paths]
    policy = policy or Policy()
    found = expand_traces(list(paths))
    opts = Options(engine=engine, merge=merge, separate=separate)   # wrong ones: usage errors now
    # in the order named (a ring set where its first piece is)
    order = {p: i for i, p in reversed(list(enumerate(found)))}
    traces = sorted((g.paths for g in captures(found, opts)[0]), key=lambda t: min(order[p] for p in t)) \
        if found else []
    work = [(t, policy, engine, select) for t in traces]
    if cluster is not None and traces:
        results = [crashed(trace_name(t), f"its Dask task failed: {type(r).__name__}: {r}")
                   if isinstance(r, BaseException) else r
                   for t, r in zip(traces, cluster.map(check_trace, work))]
    elif jobs > 1 and len(traces) > 1:
        from ..analysis.parallel import WorkerLost, in_processes
        results = [crashed(trace_name(t), f"its worker process died: {r.reason}", r.detail)
                   if isinstance(r, WorkerLost) else r
                   for t, r in zip(traces, in_processes(check_trace, work, jobs))]
    else:
        results = [check_trace(*w) for w in work]
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
