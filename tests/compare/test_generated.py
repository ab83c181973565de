"""compare at scale: a generated capture (bench/generate.py) and its far copy through a
NAT that shifts sequence numbers, a clock 3.7 s ahead, delays that reorder the
directions, PSH cleared on some client segments and some originals lost
(bench/far_copy.py): every session pairs, every change is found where it was made."""
from __future__ import annotations

import sys

from pushscan.analysis import Options
from pushscan.compare import compare

from ..conftest import CAPTURES, ROOT, bench_capture


def test_generated_capture_and_its_far_copy(tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    import far_copy

    near = bench_capture(tmp_path / "near.pcap", 20_000, seed=3)
    made = far_copy.far_copy(str(near), str(tmp_path / "far.pcap"), drop=0.5, clear_psh=0.02, seed=4)
    assert made["dropped"] and made["cleared_psh"]
    doc = compare(str(near), str(tmp_path / "far.pcap"), Options())
    assert doc["unmatched"] == {"near": [], "far": []}
    assert len(doc["pairs"]) == made["sessions"]
    assert abs(doc["clock_offset_seconds"] - 3.7) < 0.0005
    lost, cleared = [], []
    for p in doc["pairs"]:
        assert p["translated"] == {"client": True, "server": False}
        assert p["directions"]["client_to_server"]["sequence_offset"] == far_copy.SHIFT
        assert p["client_point"] == "near"
        for f in p["findings"]:
            assert f["direction"] == "client_to_server"
            if f["code"] == "PATH_LOSS":
                assert f["recovered"] == f["count"]          # each retransmission got through
                lost += f["near_frames"]
            elif f["code"] == "PATH_PSH_STRIPPED":
                cleared += f["near_frames"]
            else:
                raise AssertionError(f)
    assert sorted(lost) == made["dropped"]
    assert sorted(cleared) == made["cleared_psh"]


def test_port_reuse_pairs_each_session_with_its_own():
    path = str(CAPTURES / "smtp_port_reuse.pcap")
    doc = compare(path, path, Options())
    assert [(p["near"]["id"], p["far"]["id"]) for p in doc["pairs"]] == [(0, 0), (1, 1)]
    for p in doc["pairs"]:
        for d in p["directions"].values():
            assert d["matched"] == d["segments"]["near"] == d["segments"]["far"]
