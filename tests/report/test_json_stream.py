"""Session documents are written exactly as the standard library's JSON encoder writes
them, whichever encoder does the work."""
from __future__ import annotations

import io
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from pushscan.report.json_stream import JsonDocument, JsonLines, compact_json

leaves = (st.none() | st.booleans() | st.integers(-(1 << 70), 1 << 70)
          | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
documents = st.recursive(leaves, lambda kids: st.lists(kids, max_size=4)
                         | st.dictionaries(st.text(max_size=6), kids, max_size=4), max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_same_text_as_the_standard_library(doc):
    assert compact_json(doc) == json.dumps(doc, separators=(",", ":")).encode()


def test_small_and_large_numbers():
    doc = {"wait": 5e-05, "tiny": 1e-07, "big": 1e16, "t": 1790000000.000414, "s": "é"}
    assert compact_json(doc) == json.dumps(doc, separators=(",", ":")).encode()


def test_sessions_as_bytes_keep_their_place_between_text_parts():
    """The writers put session JSON straight into the stream's binary buffer; what the
    text layer holds goes out first, whatever the stream."""
    docs = [{"id": i, "s": "x" * i} for i in range(3)]
    report = {"inputs": [{"path": "é"}], "summary": {"sessions": 3}}
    raw = io.BytesIO()
    text = io.TextIOWrapper(raw, encoding="utf-8")
    plain = io.StringIO()
    for out in (text, plain):
        w = JsonDocument(out, {"schema": 1})
        for d in docs:
            w.session(d)
        w.finish(report)
        out.flush()
    written = raw.getvalue().decode("utf-8")
    assert written == plain.getvalue()
    assert json.loads(written) == {"schema": 1, "sessions": docs, **report}
    raw = io.BytesIO()
    text = io.TextIOWrapper(raw, encoding="utf-8")
    lines = JsonLines(text)
    for d in docs:
        lines.session(d)
    lines.finish(report)
    text.flush()
    assert [json.loads(x) for x in raw.getvalue().splitlines()] == \
        docs + [{"summary": report["summary"], "inputs": report["inputs"]}]
