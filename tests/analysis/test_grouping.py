"""Which files named together are one capture: pieces of a ring set join (whatever order
they are named in), anything else stays apart, and why is said."""
from __future__ import annotations

import os
import subprocess
import threading

import pytest

import pushscan
from pushscan.analysis import Options, captures
from pushscan.analysis.grouping import MAX_GAP_NS, NOT_ALIKE
from pushscan.errors import UsageError

from ..conftest import CAPTURES, bench_capture, require


def shifted(tmp_path, name: str, seconds: float, as_name: str = "") -> str:
    """``name`` with its times moved by ``seconds``, written as ``AS_NAME_SECONDS.pcap``
    (numbered at the end, as a rotating program numbers its pieces)."""
    stem = (as_name or name).rsplit(".", 1)[0]
    out = tmp_path / f"{stem}_{seconds:g}.pcap"
    subprocess.run([require("editcap"), "-t", str(seconds), str(CAPTURES / name), str(out)], check=True,
                   capture_output=True)
    return str(out)


def test_a_ring_set_is_one_capture_in_time_order():
    files = [str(CAPTURES / "rotated_00002.pcap"), str(CAPTURES / "rotated_00001.pcap")]
    (g,), why = captures(files, Options())
    assert g.paths == tuple(reversed(files)) and g.how == "ring set" and why == []
    assert "one capture: consecutive in time, same link types (a ring set)" in g.describe()


def test_pieces_cut_by_editcap_give_the_whole_capture(tmp_path):
    """A capture cut into a ring set with editcap -c: the same sessions, ids and frames."""
    whole = bench_capture(tmp_path / "whole.pcap", 20_000)
    subprocess.run([require("editcap"), "-c", "6000", str(whole), str(tmp_path / "ring.pcap")], check=True,
                   capture_output=True)
    pieces = sorted(str(p) for p in tmp_path.glob("ring_*.pcap"))
    assert len(pieces) == 4
    (g,), why = captures(pieces[::-1], Options())
    assert g.paths == tuple(pieces) and why == []
    a = pushscan.analyze(str(whole), all_tcp=True)
    b = pushscan.analyze(pieces[::-1], all_tcp=True)
    strip = lambda r: [{k: v for k, v in s.items() if k != "file"} for s in r["sessions"]]  # noqa: E731
    assert strip(a) == strip(b) and a["summary"] == b["summary"]


def test_overlapping_captures_stay_apart(tmp_path):
    files = [shifted(tmp_path, "smtp_ok.pcap", 0),          # named alike, but at the same time
             shifted(tmp_path, "smtp_unpushed_reset.pcap", 0.0001, as_name="smtp_ok.pcap")]
    groups, why = captures(files, Options())
    assert [g.paths for g in groups] == [(files[0],), (files[1],)]
    assert why == [f"{files[1]} overlaps {files[0]} in time"]
    with pytest.raises(UsageError, match="these files are 2 captures, not one .*overlaps.*merge=True"):
        pushscan.analyze(files)
    merged = pushscan.analyze(files, merge=True)        # asked for: one capture, as before
    assert merged["inputs"][1]["first_frame"] == 36


def test_a_later_capture_or_another_link_type_stays_apart(tmp_path):
    ok = shifted(tmp_path, "smtp_ok.pcap", 0)
    later = shifted(tmp_path, "smtp_ok.pcap", MAX_GAP_NS / 1e9 + 60)
    groups, why = captures([ok, later], Options())
    assert len(groups) == 2 and why[0].startswith(f"{later} starts 66") and "after" in why[0]
    soon = shifted(tmp_path, "smtp_ok.pcap", 30)
    assert len(captures([ok, soon], Options())[0]) == 1          # 30 s later: the ring goes on
    sll = shifted(tmp_path, "smtp_sll.pcap", 30, as_name="smtp_ok.pcap")
    groups, why = captures([ok, sll], Options())
    assert len(groups) == 2 and why == [f"{sll} has other link types than {ok}"]


def test_recordings_named_for_what_they_hold_stay_apart(tmp_path):
    """Two recordings made one after the other (a CI suite's traces) are consecutive in
    time like ring pieces; their names say they are not one capture."""
    ok = shifted(tmp_path, "smtp_ok.pcap", 0)
    other = shifted(tmp_path, "smtp_ok.pcap", 30, as_name="smtp_reset.pcap")
    groups, why = captures([ok, other], Options())
    assert [g.paths for g in groups] == [(ok,), (other,)]
    assert why == [NOT_ALIKE]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    moved = str(elsewhere / os.path.basename(shifted(tmp_path, "smtp_ok.pcap", 30)))
    os.rename(moved.replace("/elsewhere", ""), moved)
    assert len(captures([ok, moved], Options())[0]) == 2        # another directory


def test_a_ring_set_among_other_captures_at_the_same_time():
    """A capture taken while a ring set rotated does not cut the set."""
    files = [str(CAPTURES / n) for n in ("rotated_00001.pcap", "smtp_ok.pcap", "rotated_00002.pcap",
                                         "smtp_unpushed_reset.pcap")]
    groups, why = captures(files, Options())
    assert sorted(g.paths for g in groups) == sorted([(files[0], files[2]), (files[1],), (files[3],)])
    assert why == [NOT_ALIKE]


def test_two_sets_rotating_side_by_side_stay_two(tmp_path):
    """Two sets' pieces interleaved in time (the second set's piece overlaps the first
    set's pieces): each piece joins the set it continues, whether the names tell the sets
    apart (gw1_*, gw2_*) or not."""
    for first, second in (("gw1_00001.pcap", "gw2_00001.pcap"), ("gw_00001.pcap", "gw_00003.pcap")):
        a = [shifted(tmp_path, "rotated_00001.pcap", 0, as_name=first),
             shifted(tmp_path, "rotated_00002.pcap", 0, as_name=first.replace("0001", "0002"))]
        b = shifted(tmp_path, "smtp_ok.pcap", 0, as_name=second)       # overlaps a[0]
        groups, _ = captures([a[0], b, a[1]], Options())
        assert sorted(g.paths for g in groups) == sorted([tuple(a), (b,)]), (first, second)


def test_merge_and_separate(tmp_path):
    files = [str(CAPTURES / "rotated_00001.pcap"), str(CAPTURES / "rotated_00002.pcap")]
    assert [g.paths for g in captures(files, Options(separate=True))[0]] == [(f,) for f in files]
    unrelated = [str(CAPTURES / "smtp_ok.pcap"), str(CAPTURES / "smtp_peer_reset.pcap")]
    (g,), _ = captures(unrelated, Options(merge=True))
    assert g.how == "merged" and len(g.paths) == 2
    with pytest.raises(UsageError, match="exclude each other"):
        Options(merge=True, separate=True)


def test_a_fifo_is_not_read_ahead(tmp_path):
    """A FIFO can be read once: grouping never opens it (no hang), it is a capture alone."""
    fifo = tmp_path / "live.pcap"
    os.mkfifo(fifo)
    opened = threading.Event()

    def writer() -> None:
        with open(fifo, "wb") as f:       # blocks until a reader opens the FIFO
            opened.set()
            f.write((CAPTURES / "smtp_ok.pcap").read_bytes())

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    groups, _ = captures([str(CAPTURES / "smtp_peer_reset.pcap"), str(fifo)], Options())
    assert [g.how for g in groups] == ["file", "unplaced"] and not opened.is_set()
    report = pushscan.analyze(str(fifo))      # read once, when analysed
    assert report["sessions"][0]["verdict"] == "ok"
    t.join(5)
