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


PCAPNG_SEEDS = [p.read_bytes() for p in ALL_CAPTURES if p.name.endswith(".pcapng")]
BLOCK_TYPES = [0x0A0D0D0A, 1, 2, 3, 5, 6, 0x0BAD]


@st.composite
def pcapng_with_hostile_blocks(draw):
    """A real pcapng with blocks of every type pushscan reads, of hostile lengths (too
    short for their type, cut, or odd), appended or spliced in at a block boundary."""
    import struct
    data = draw(st.sampled_from(PCAPNG_SEEDS))
    bounds, pos = [], 0
    while pos + 8 <= len(data):
        pos += struct.unpack_from("<I", data, pos + 4)[0]
        bounds.append(pos)
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        btype = draw(st.sampled_from(BLOCK_TYPES))
        blen = draw(st.sampled_from([12, 16, 20, 24, 28, 32, 36]) | st.integers(0, 80))
        body = draw(st.binary(min_size=0, max_size=max(0, blen - 12)))
        block = struct.pack("<II", btype, blen) + body
        if draw(st.booleans()):
            block += struct.pack("<I", blen)
        at = draw(st.sampled_from(bounds + [len(out)]))
        out[at:at] = block
    return bytes(out)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pcapng_with_hostile_blocks())
def test_hostile_pcapng_blocks_never_crash(tmp_path_factory, data):
    test_mutated_capture_never_crashes.hypothesis.inner_test(tmp_path_factory, data)


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.one_of(st.binary(max_size=200),
                 st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")),
                 st.sampled_from(['fail_on = "warning"\n', "[tool.pushscan]\nports = [25]\n",
                                  "tool = 1\n", "[tool]\npushscan = 2\n", "overrides = 3\n",
                                  '[overrides."x*"]\nfail_on = 3\n']).map(str.encode)))
def test_hostile_policy_files_are_policy_errors(tmp_path_factory, data):
    from pushscan.gate.policy import PolicyError, load_policy
    f = tmp_path_factory.mktemp("policy") / "p.toml"
    f.write_bytes(data)
    try:
        load_policy(str(f))
    except PolicyError:
        pass


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                max_size=4),
                    max_leaves=20)
SESSION = st.fixed_dictionaries({"id": st.integers(0, 3) | JSON, "client": st.text(max_size=4) | JSON,
                                 "server": st.text(max_size=4), "verdict": st.sampled_from(["ok", "x"]) | JSON,
                                 "findings": st.lists(st.sampled_from(["A", "B"]), max_size=3) | JSON})


@settings(max_examples=EXAMPLES, deadline=None)
@given(st.one_of(JSON, st.fixed_dictionaries({"schema": st.just(1), "traces": JSON}),
                 st.fixed_dictionaries({"schema": st.just(1), "traces": st.dictionaries(
                     st.text(max_size=8), st.lists(SESSION, max_size=3) | JSON, max_size=3)})))
def test_hostile_baselines_are_policy_errors_or_compare(tmp_path_factory, doc):
    import json
    from pushscan.gate.baseline import baseline_diff, load_baseline
    from pushscan.gate.policy import PolicyError
    f = tmp_path_factory.mktemp("baseline") / "b.json"
    f.write_text(json.dumps(doc))
    try:
        base = load_baseline(str(f))
    except PolicyError:
        return
    for sessions in base["traces"].values():    # a baseline it accepts, it can compare with
        baseline_diff(sessions, [{"id": 0, "client": "c", "server": "s", "verdict": "ok", "findings": []}])
