"""Mutated captures through the whole analyze path: only pushscan's own errors may escape,
and whatever was readable is analysed."""
from __future__ import annotations

import hashlib
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pushscan.analysis import Analysis, Options
from pushscan.errors import PushscanError

from ..conftest import ALL_CAPTURES, TESTS

CRASHES = str(TESTS / "catalogue")

SEEDS = [p.read_bytes() for p in ALL_CAPTURES if p.stat().st_size < 40_000]
EXAMPLES = int(os.environ.get("PUSHSCAN_FUZZ_EXAMPLES", "150"))


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 12))):
        op = draw(st.sampled_from(["flip", "byte", "cut", "dup", "zero"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if op == "flip":
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif op == "byte":
            data[i] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[i:i + draw(st.integers(1, 64))]
        elif op == "dup":
            j = min(len(data), i + draw(st.integers(1, 200)))
            data[i:i] = data[i:j]
        else:
            data[i:i + 4] = b"\xff\xff\xff\xff"
    return bytes(data)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_capture_never_crashes(tmp_path_factory, data):
    f = tmp_path_factory.mktemp("fuzz") / "m.pcap"
    f.write_bytes(data)
    try:
        report = Analysis([str(f)], Options(all_tcp=True)).run()
    except PushscanError:
        return
    except BaseException:
        # keep the input as a catalogue entry, so the crash stays fixed once fixed
        name = "crash-" + hashlib.sha1(data).hexdigest()[:16] + ".pcap"
        with open(os.path.join(CRASHES, name), "wb") as out:
            out.write(data)
        raise
    assert report["schema"] == 1
    for s in report["sessions"]:
        assert s["first_frame"] <= s["last_frame"]
        for d in s["directions"].values():
            assert 0 <= d["psh_segments"] <= d["data_segments"]
            assert d["turns_unpushed"] <= d["turns"]
