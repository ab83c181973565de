"""``pushscan check``: a CI gate over recorded traces.

Each trace (one capture file) is analysed alone and judged by a policy; a trace fails when
a session has a finding the policy fails on, when outgoing turns went unpushed and the
policy requires them pushed, when the trace's push ratio is below the minimum, or when it
differs from a baseline. Pure functions over reports, apart from reading the policy file.
"""
from __future__ import annotations

import fnmatch
import glob
import os
import sys
from dataclasses import dataclass, field, fields, replace
from typing import Any, Optional

from .errors import UsageError
from .findings import Code, Severity

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SEVERITY_RANK = {Severity.INFO.value: 0, Severity.WARNING.value: 1, Severity.ERROR.value: 2}
CAPTURE_SUFFIXES = (".pcap", ".pcapng", ".cap", ".pcap.gz", ".pcapng.gz")


class PolicyError(UsageError):
    """A policy file or option is wrong (exit code 2). The message names the key."""


@dataclass(frozen=True)
class Policy:
    """What makes a trace fail. Every key is also a ``pushscan check`` option."""

    fail_on: tuple[str, ...] = ("error",)    # severities and/or finding codes; () = none
    require_pushed_turns: bool = False
    min_push_ratio: Optional[float] = None
    ports: tuple[int, ...] = ()
    outgoing: str = "client"
    local: tuple[str, ...] = ()
    all_tcp: bool = False
    overrides: tuple[tuple[str, dict[str, Any]], ...] = ()

    def for_trace(self, path: str) -> "Policy":
        """This policy with the overrides whose glob matches ``path`` applied, in order."""
        p = self
        for pattern, values in self.overrides:
            if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(os.path.basename(path), pattern):
                p = replace(p, **values)
        return p

    def fails(self, finding: dict[str, Any]) -> bool:
        if finding["code"] in self.fail_on:
            return True
        ranks = [SEVERITY_RANK[s] for s in self.fail_on if s in SEVERITY_RANK]
        return bool(ranks) and SEVERITY_RANK[finding["severity"]] >= min(ranks)


KEYS = {f.name for f in fields(Policy)}


def _fail_on(value: Any, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(x, str) for x in items):
        raise PolicyError(f"{where}'fail_on': expected a severity, 'none', or a list of finding "
                          f"codes, not {value!r}")
    out: list[str] = []
    codes = {c.value for c in Code}
    for x in items:
        for part in (p.strip() for p in x.split(",") if p.strip()):
            if part.lower() == "none":
                continue
            if part.lower() in SEVERITY_RANK:
                out.append(part.lower())
            elif part.upper() in codes:
                out.append(part.upper())
            else:
                raise PolicyError(f"{where}'fail_on': {part!r} is neither a severity "
                                  f"({', '.join(SEVERITY_RANK)}), 'none', nor a finding code "
                                  f"({', '.join(sorted(codes))})")
    return tuple(out)


def coerce(key: str, value: Any, where: str) -> Any:
    """Check one policy value's type; return it in Policy's form."""
    def bad(expected: str) -> PolicyError:
        return PolicyError(f"{where}{key!r}: expected {expected}, not {value!r}")

    if key == "fail_on":
        return _fail_on(value, where)
    if key in ("require_pushed_turns", "all_tcp"):
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if key == "min_push_ratio":
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise bad("a number from 0 to 1")
        return float(value)
    if key == "ports":
        if not isinstance(value, list) or not all(isinstance(p, int) and not isinstance(p, bool)
                                                  and 0 < p < 65536 for p in value):
            raise bad("a list of TCP ports")
        return tuple(value)
    if key == "outgoing":
        if value not in ("client", "server"):
            raise bad("'client' or 'server'")
        return value
    if key == "local":
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise bad("a list of CIDR strings")
        import ipaddress
        for c in value:
            try:
                ipaddress.ip_network(c, strict=False)
            except ValueError:
                raise PolicyError(f"{where}'local': {c!r} is not a network") from None
        return tuple(value)
    raise PolicyError(f"{where}unknown key {key!r} (known: {', '.join(sorted(KEYS))})")


def policy_from_mapping(data: dict[str, Any], where: str = "policy key ") -> Policy:
    """Build a policy from a TOML table; unknown keys and wrong types name the key."""
    values: dict[str, Any] = {}
    overrides: list[tuple[str, dict[str, Any]]] = []
    for key, value in data.items():
        if key == "overrides":
            if not isinstance(value, dict):
                raise PolicyError(f"{where}'overrides': expected a table of glob = {{...}}")
            for pattern, sub in value.items():
                if not isinstance(sub, dict):
                    raise PolicyError(f"{where}'overrides.{pattern}': expected a table")
                sub_where = f"{where[:-1]} 'overrides.\"{pattern}\".' "
                overrides.append((pattern, {k: coerce(k, v, sub_where) for k, v in sub.items()}))
            continue
        values[key] = coerce(key, value, where)
    return Policy(**values, overrides=tuple(overrides))


def load_policy(path: Optional[str]) -> tuple[Policy, Optional[str]]:
    """The policy from ``path`` (a TOML file whose top level, or ``[tool.pushscan]``, holds
    the keys), else from ``[tool.pushscan]`` in ./pyproject.toml, else the defaults.
    Returns the policy and where it came from."""
    candidates = [path] if path else (["pyproject.toml"] if os.path.exists("pyproject.toml") else [])
    for p in candidates:
        try:
            with open(p, "rb") as f:
                doc = tomllib.load(f)
        except FileNotFoundError:
            raise PolicyError(f"policy file {p}: no such file") from None
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise PolicyError(f"policy file {p}: {exc}") from None
        table = doc.get("tool", {}).get("pushscan") if "tool" in doc else None
        if table is None:
            if path is None:
                return Policy(), None    # a pyproject.toml without [tool.pushscan]
            table = doc
        return policy_from_mapping(table, where=f"{p}: policy key "), p
    return Policy(), None


def expand_traces(args: list[str]) -> list[str]:
    """Files, directories (searched for capture files) and glob patterns, in order."""
    out: list[str] = []
    for a in args:
        if os.path.isdir(a):
            found = sorted(os.path.join(d, f) for d, _, fs in os.walk(a) for f in fs
                           if f.endswith(CAPTURE_SUFFIXES))
            out.extend(found)
        elif any(ch in a for ch in "*?[") and not os.path.exists(a):
            matches = sorted(glob.glob(a, recursive=True))
            if not matches:
                raise UsageError(f"{a}: no file matches")
            out.extend(matches)
        else:
            out.append(a)
    return out


@dataclass
class CaseResult:
    """One session of a trace (or a trace-level rule) and why it failed, if it did."""

    name: str
    session: Optional[int]
    failures: list[tuple[str, list[int]]] = field(default_factory=list)  # (message, frames)
    verdict: Optional[str] = None


@dataclass
class TraceResult:
    path: str
    passed: bool
    cases: list[CaseResult]
    error: Optional[str] = None          # unreadable input
    warnings: list[str] = field(default_factory=list)
    report: Optional[dict[str, Any]] = None
    baseline_diff: list[str] = field(default_factory=list)


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


# -- baselines -----------------------------------------------------------------------------
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


def check_trace(path: str, policy: Policy, engine: str = "native") -> TraceResult:
    """Analyse one trace alone and judge it (no baseline)."""
    from .analysis import Analysis, Options

    p = policy.for_trace(path)
    opts = Options(ports=p.ports, outgoing=p.outgoing, local=p.local, all_tcp=p.all_tcp, engine=engine)
    a = Analysis([path], opts)
    report = a.run()
    if a.unreadable:
        return TraceResult(path, False, [], error=str(a.unreadable[0]))
    return judge(path, report, p)


def check(paths: list[str] | str, policy: Optional[Policy] = None,
          baseline: Optional[dict[str, Any]] = None, engine: str = "native",
          jobs: int = 1) -> list[TraceResult]:
    """Check traces (files, directories, globs) against ``policy`` and, if given, a
    baseline (as written by ``--write-baseline``). One result per trace, in order;
    ``jobs`` > 1 checks traces in that many processes at once."""
    from .analysis import Options

    if isinstance(paths, str):
        paths = [paths]
    policy = policy or Policy()
    traces = expand_traces(list(paths))
    Options(engine=engine)     # a wrong engine is a usage error before any work
    if jobs > 1 and len(traces) > 1:
        from concurrent.futures import ProcessPoolExecutor
        from itertools import repeat
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(check_trace, traces, repeat(policy), repeat(engine)))
    else:
        results = [check_trace(t, policy, engine) for t in traces]
    if baseline is not None:
        recorded = baseline.get("traces", {})
        for r in results:
            if r.report is None:
                continue
            if r.path not in recorded:
                r.baseline_diff = ["trace not in the baseline"]
            else:
                r.baseline_diff = baseline_diff(recorded[r.path], baseline_entry(r.report))
            if r.baseline_diff:
                r.passed = False
    return results
