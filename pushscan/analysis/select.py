"""Narrowing what is reported: ``--host``, ``--port``, ``--session``, ``--verdict``.

A selection only chooses which ended sessions are reported (and counted in the summary);
tracking is untouched, so a session's result, id and frames are those of the whole run.
Several values of one filter match any of them; different filters must all match.
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from ..errors import UsageError
from ..findings.codes import Verdict

VERDICTS = tuple(v.value for v in Verdict)


@dataclass(frozen=True)
class Selection:
    hosts: tuple[str, ...] = ()        # addresses or networks (CIDR) of either endpoint
    ports: tuple[int, ...] = ()        # a port of either endpoint
    sessions: tuple[int, ...] = ()     # session ids
    verdicts: tuple[str, ...] = ()
    nets: tuple[Any, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            nets = tuple(ipaddress.ip_network(h, strict=False) for h in self.hosts)
        except ValueError as exc:
            raise UsageError(f"--host: {exc}") from None
        object.__setattr__(self, "nets", nets)
        for v in self.verdicts:
            if v not in VERDICTS:
                raise UsageError(f"--verdict {v!r} is not a verdict (choose from {', '.join(VERDICTS)})")
        for p in self.ports:
            if not 0 < int(p) < 65536:
                raise UsageError(f"--port {p} is not a TCP port")

    def __bool__(self) -> bool:
        return bool(self.hosts or self.ports or self.sessions or self.verdicts)

    def before_findings(self, sid: int, endpoints: tuple[tuple[str, int], tuple[str, int]]) -> bool:
        """What can be decided before the session is assessed (its id and endpoints)."""
        if self.sessions and sid not in self.sessions:
            return False
        if self.ports and not any(port in self.ports for _, port in endpoints):
            return False
        if self.nets:
            addrs = [ipaddress.ip_address(ip) for ip, _ in endpoints]
            if not any(a in n for a in addrs for n in self.nets if a.version == n.version):
                return False
        return True

    def matches(self, doc: dict[str, Any]) -> bool:
        """Whether a session's report is selected."""
        ends = ((doc["client"]["ip"], doc["client"]["port"]), (doc["server"]["ip"], doc["server"]["port"]))
        if not self.before_findings(doc["id"], ends):
            return False
        return not self.verdicts or doc["verdict"] in self.verdicts

    def describe(self) -> dict[str, Any]:
        """The filters, as the report's summary names them."""
        return {k: list(v) for k, v in (("hosts", self.hosts), ("ports", self.ports),
                                        ("sessions", self.sessions), ("verdicts", self.verdicts)) if v}
