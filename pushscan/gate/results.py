"""What the gate says of a trace (or a pair of captures) and of each of its sessions."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional


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
    error: Optional[str] = None          # the trace could not be judged (one line)
    warnings: list[str] = field(default_factory=list)
    report: Optional[dict[str, Any]] = None
    baseline_diff: list[str] = field(default_factory=list)
    kind: str = "trace"                  # or "compare": a pair of captures of one path
    error_kind: str = ""                 # UnreadableInput, NoPackets, Crash
    error_detail: str = ""               # a crash's traceback

    @property
    def counted(self) -> str:
        """What the result covers, e.g. "3 sessions" or "1 pair"."""
        items = self.report.get("pairs" if self.kind == "compare" else "sessions", []) \
            if self.report else []
        noun = "pair" if self.kind == "compare" else "session"
        return f"{len(items)} {noun}{'s' if len(items) != 1 else ''}"
