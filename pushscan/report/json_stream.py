"""Machine-readable writers that stream: memory does not grow with the number of sessions."""
from __future__ import annotations

import json
import re
from typing import Any, TextIO

_json_compact = json.JSONEncoder(separators=(",", ":")).encode


def compact_json_std(doc: Any) -> bytes:
    return _json_compact(doc).encode("ascii")   # ensure_ascii: always ASCII


try:
    import orjson

    # Numbers the two encoders print differently: below 1e-4 (Python 5e-05 and 1.5e-07,
    # orjson 0.00005 and 1.5e-7), and from 1e16 on if this orjson prints 1e16 (Python:
    # 1e+16; recent orjson prints it so too, and then a plain search is enough; the
    # search for "-" first, a memchr, spares most documents the slower one for "e-").
    if orjson.dumps(1e16) == b"1e+16":
        def _differs(b: bytes) -> bool:
            return b"0.0000" in b or (b"-" in b and b"e-" in b)
    else:  # pragma: no cover - older orjson
        _exponent = re.compile(rb"\de[-\d]").search

        def _differs(b: bytes) -> bool:
            return b"0.0000" in b or _exponent(b) is not None

    def compact_json(doc: Any) -> bytes:
        """Compact JSON of one document, exactly as the standard library writes it:
        orjson (several times faster) when its text is the same, that is for ASCII
        documents without DEL or a number the two print differently (``_differs``); the
        standard library otherwise (it also escapes non-ASCII, so output stays ASCII
        whatever the terminal's encoding)."""
        try:
            b = orjson.dumps(doc)
        except (TypeError, orjson.JSONEncodeError):
            return compact_json_std(doc)
        if not b.isascii() or b"\x7f" in b or _differs(b):   # the library escapes DEL too
            return compact_json_std(doc)
        return b
except ImportError:  # pragma: no cover - orjson is a dependency
    compact_json = compact_json_std


class _Writer:
    """Text, and ASCII bytes written straight to the text stream's binary buffer when it
    has one (no decoding and encoding again), in order."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.raw = getattr(out, "buffer", None)
        self.text_pending = False

    def text(self, s: str) -> None:
        self.out.write(s)
        self.text_pending = True

    def ascii(self, *parts: bytes) -> None:
        if self.raw is None:
            self.out.write(b"".join(parts).decode("ascii"))
            return
        if self.text_pending:          # text first: it may still sit in the text layer
            self.out.flush()
            self.text_pending = False
        for p in parts:
            self.raw.write(p)

    def flush(self) -> None:
        (self.raw or self.out).flush()


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
        self.w = _Writer(out)
        self.head = head      # keys known before reading: schema, version, engine
        self.n = 0
        self.started = False

    def _start(self) -> None:
        if not self.started:
            self.started = True
            self.w.text(json.dumps(self.head)[:-1] + ',\n"sessions": [')

    def session(self, doc: dict[str, Any]) -> None:
        self.session_json(compact_json(doc))

    def session_json(self, b: bytes) -> None:
        """A session already encoded (by ``compact_json``, in a worker process)."""
        self._start()
        self.w.ascii(b"\n " if self.n == 0 else b",\n ", b)
        self.n += 1

    def finish(self, report: dict[str, Any]) -> None:
        """Close the session list; add what is known only at the end."""
        self._start()
        joined = f'"capture": {json.dumps(report["capture"])},\n' if "capture" in report else ""
        self.w.text("\n ],\n" + '"inputs": ' + json.dumps(report["inputs"]) + ",\n" + joined
                    + '"summary": ' + json.dumps(report["summary"]) + "}\n")


class JsonLines:
    """One line per session as it ends (flushed: a reader sees it at once), then a line
    with the summary and inputs."""

    def __init__(self, out: TextIO) -> None:
        self.w = _Writer(out)

    def session(self, doc: dict[str, Any]) -> None:
        self.session_json(compact_json(doc))

    def session_json(self, b: bytes) -> None:
        """A session already encoded (by ``compact_json``, in a worker process)."""
        self.w.ascii(b, b"\n")
        self.w.flush()

    def finish(self, report: dict[str, Any]) -> None:
        tail = {"summary": report["summary"], "inputs": report["inputs"]}
        if "capture" in report:
            tail["capture"] = report["capture"]
        self.w.ascii(compact_json(tail), b"\n")
