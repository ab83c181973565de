"""Reports: the session documents (JSON contract), their writers (JSON, JSON lines,
text), and the evidence for people (follow, plot, HTML)."""
from .document import SCHEMA, Tally, session_document

__all__ = ["SCHEMA", "Tally", "session_document"]
