"""Session documents are written exactly as the standard library's JSON encoder writes
them, whichever encoder does the work."""
from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from pushscan.output import _compact

leaves = (st.none() | st.booleans() | st.integers(-(1 << 70), 1 << 70)
          | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
documents = st.recursive(leaves, lambda kids: st.lists(kids, max_size=4)
                         | st.dictionaries(st.text(max_size=6), kids, max_size=4), max_leaves=20)


@settings(max_examples=400, deadline=None)
@given(documents)
def test_same_text_as_the_standard_library(doc):
    assert _compact(doc) == json.dumps(doc, separators=(",", ":"))


def test_small_and_large_numbers():
    doc = {"wait": 5e-05, "tiny": 1e-07, "big": 1e16, "t": 1790000000.000414, "s": "é"}
    assert _compact(doc) == json.dumps(doc, separators=(",", ":"))
