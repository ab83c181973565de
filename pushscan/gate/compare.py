"""The CI gate over pairs of captures of one path: ``pushscan compare`` judged by the
policy's ``compare_fail_on`` (by default, error findings: the path strips PSH or
injects resets). A pair of files fails when a paired session has such a finding, or when
no session was seen at both points (nothing was compared: the files are not two views of
the same traffic)."""
from __future__ import annotations

from typing import Any

from ..analysis import Options
from ..compare import compare
from ..errors import InputError
from .policy import Policy
from .results import CaseResult, TraceResult


def _ep(e: dict[str, Any]) -> str:
    return f"{e['ip']}:{e['port']}"


def pair_name(p: dict[str, Any]) -> str:
    n, f = p["near"], p["far"]
    return (f"near #{n['id']} {_ep(n['client'])} -> {_ep(n['server'])} <-> far #{f['id']} "
            f"{_ep(f['client'])} -> {_ep(f['server'])}")


def check_compare(near: str, far: str, policy: Policy, engine: str = "native") -> TraceResult:
    """Compare one pair of captures and judge it; ``path`` is "NEAR <-> FAR"."""
    name = f"{near} <-> {far}"
    opts = Options(ports=policy.smtp_ports, outgoing=policy.outgoing, local=policy.local,
                   all_tcp=policy.all_tcp, engine=engine)
    try:
        doc = compare(near, far, opts)
    except InputError as exc:
        return TraceResult(name, False, [], error=str(exc), kind="compare")
    cases = []
    for p in doc["pairs"]:
        case = CaseResult(pair_name(p), p["near"]["id"], verdict=p["verdict"])
        for f in p["findings"]:
            if policy.fails_compare(f):
                frames = "; ".join(f"{point} frames {','.join(map(str, f[point + '_frames']))}"
                                   for point in ("near", "far") if f[point + "_frames"])
                case.failures.append((f"{f['code']} ({f['severity']}) {f['direction']}: "
                                      f"{f['message']} [{frames}]", []))
        cases.append(case)
    if not doc["pairs"]:
        cases.append(CaseResult("pairs", None, failures=[(
            "no session was seen at both points: nothing was compared (two captures of the "
            "same traffic, taken at the same time?)", [])]))
    warnings = [f"{i['path']}: {e}" for i in doc["inputs"] for e in i["errors"]]
    for point in ("near", "far"):
        ids = doc["unmatched"][point]
        if ids:
            warnings.append(f"{len(ids)} session(s) seen at {point} only: "
                            + ", ".join(f"#{i}" for i in ids[:20]) + (", ..." if len(ids) > 20 else ""))
    return TraceResult(name, not any(c.failures for c in cases), cases, warnings=warnings,
                       report=doc, kind="compare")
