"""Machine-readable writers that stream: memory does not grow with the number of sessions."""
from __future__ import annotations

import json
import re
from typing import Any, TextIO

_json_compact = json.JSONEncoder(separators=(",", ":")).encode

try:
    import orjson

    # Numbers the two encoders print differently: below 1e-4 (Python 5e-05 and 1.5e-07,
    # orjson 0.00005 and 1.5e-7), and from 1e16 on if this orjson prints 1e16 (Python:
    # 1e+16; recent orjson prints it so too, and then a plain search is enough).
    if orjson.dumps(1e16) == b"1e+16":
        def _differs(b: bytes) -> bool:
            return b"0.0000" in b or b"e-" in b
    else:  # pragma: no cover - older orjson
        _exponent = re.compile(rb"\de[-\d]").search

        def _differs(b: bytes) -> bool:
            return b"0.0000" in b or _exponent(b) is not None

    def _compact(doc: Any) -> str:
        """Compact JSON of one document, exactly as the standard library writes it:
        orjson (several times faster) when its text is the same, that is for ASCII
        documents without a number the two print differently (``_differs``); the
        standard library otherwise (it also escapes non-ASCII, so output stays ASCII
        whatever the terminal's encoding)."""
        try:
            b = orjson.dumps(doc)
        except (TypeError, orjson.JSONEncodeError):
            return _json_compact(doc)
        if not b.isascii() or _differs(b):
            return _json_compact(doc)
        return b.decode("ascii")
except ImportError:  # pragma: no cover - orjson is a dependency
    _compact = _json_compact


class JsonDocument:
    """Writes the report document (schema 1) with sessions streamed one per line::

        {"schema": 1, "pushscan_version": ..., "engine": ...,
         "sessions": [
          {...},
          {...}
         ],
         "inputs": [...],
         "summary": {...}}
    """

    def __init__(self, out: TextIO, head: dict[str, Any]) -> None:
        self.out = out
        self.head = head      # keys known before reading: schema, version, engine
        self.n = 0
        self.started = False

    def _start(self) -> None:
        if not self.started:
            self.started = True
            self.out.write(json.dumps(self.head)[:-1] + ',\n"sessions": [')

    def session(self, doc: dict[str, Any]) -> None:
        self.session_text(_compact(doc))

    def session_text(self, text: str) -> None:
        """A session already encoded (by ``_compact``, in a worker process)."""
        self._start()
        self.out.write(("\n " if self.n == 0 else ",\n ") + text)
        self.n += 1

    def finish(self, report: dict[str, Any]) -> None:
        """Close the session list; add what is known only at the end."""
        self._start()
        self.out.write("\n ],\n" + '"inputs": ' + json.dumps(report["inputs"]) + ",\n"
                       + '"summary": ' + json.dumps(report["summary"]) + "}\n")


class JsonLines:
    """One line per session as it ends, then a line with the summary and inputs."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def session(self, doc: dict[str, Any]) -> None:
        self.session_text(_compact(doc))

    def session_text(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def finish(self, report: dict[str, Any]) -> None:
        self.out.write(_compact({"summary": report["summary"], "inputs": report["inputs"]}) + "\n")
