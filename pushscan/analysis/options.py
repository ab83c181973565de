"""What an analysis can be asked: ``Options``, checked once, shared by every command."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Optional

from ..errors import UsageError
from .select import Selection
from ..smtp import SMTP_PORTS
from ..sources.engines import ENGINES
from ..sources.tshark_engine import TSHARK_MISSING, tshark_available


@dataclass
class Options:
    """What ``analyze`` can be asked. Mirrors the CLI options one to one."""

    ports: tuple[int, ...] = ()
    all_tcp: bool = False
    outgoing: str = "client"                 # client | server
    local: tuple[str, ...] = ()              # CIDRs: outgoing = sent by a local address
    separate: bool = False                   # each file a capture of its own
    merge: bool = False                      # all files one capture (else: ring sets join)
    engine: str = "native"
    max_sessions: int = 50_000               # open sessions kept (the idlest are evicted)
    max_buffer: int = 8 << 20                # out-of-order bytes held per direction
    max_line: int = 4096                     # bytes kept of one SMTP line
    fast: Optional[bool] = None              # compiled fast lane: None = for big inputs only
    shard: Optional[tuple[int, int]] = None  # (index, count): track only that shard's sessions
    select: Selection = field(default_factory=Selection)   # what is reported (--host, ...)
    nets: list[Any] = field(default_factory=list, repr=False)   # ``local``, parsed

    def __post_init__(self) -> None:
        if self.outgoing not in ("client", "server"):
            raise UsageError(f"--outgoing must be client or server, not {self.outgoing!r}")
        if self.engine not in ENGINES:
            raise UsageError(f"unknown engine {self.engine!r} (choose from {', '.join(ENGINES)})")
        if self.engine == "tshark" and not tshark_available():
            raise UsageError(TSHARK_MISSING)
        for p in self.ports:
            if not 0 < int(p) < 65536:
                raise UsageError(f"--smtp-port {p} is not a TCP port")
        for name, least in (("max_sessions", 1), ("max_buffer", 0), ("max_line", 16)):
            if int(getattr(self, name)) < least:
                raise UsageError(f"--{name.replace('_', '-')} must be at least {least}")
        if self.separate and self.merge:
            raise UsageError("--merge and --separate exclude each other")
        if self.shard is not None and not 0 <= self.shard[0] < self.shard[1]:
            raise UsageError(f"shard {self.shard[0]} of {self.shard[1]} does not exist")
        try:
            self.nets = [ipaddress.ip_network(c, strict=False) for c in self.local]
        except ValueError as exc:
            raise UsageError(f"--local: {exc}") from None

    @property
    def smtp_ports(self) -> frozenset[int]:
        return frozenset(SMTP_PORTS) | frozenset(int(p) for p in self.ports)
