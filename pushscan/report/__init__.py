"""Reports: the session documents (JSON contract), their writers (JSON, JSON lines,
text), the evidence for people (follow, plot, HTML), and the outputs they are written
to (``output``: never over an input, complete or not at all).

``SCHEMA``, ``Tally`` and ``session_document`` are ``document``'s, loaded when first
asked for: the command line loads ``output`` at start, and must not pay for the rest."""
from __future__ import annotations

from typing import Any

__all__ = ["SCHEMA", "Tally", "session_document"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import document
        return getattr(document, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
