"""Narrowing a capture: --host, --port, --session, --verdict choose what is reported,
never what a session's result is."""
from __future__ import annotations

import pytest

import pushscan
from pushscan.analysis.select import Selection
from pushscan.errors import UsageError

from ..conftest import CAPTURES, bench_capture


@pytest.fixture(scope="module")
def busy(tmp_path_factory):
    path = bench_capture(tmp_path_factory.mktemp("sel") / "busy.pcap", 30_000)
    return str(path), pushscan.analyze(str(path), all_tcp=True)


def test_a_filter_changes_what_is_reported_not_the_results(busy):
    path, whole = busy
    by_id = {s["id"]: s for s in whole["sessions"]}
    host = whole["sessions"][3]["client"]["ip"]
    r = pushscan.analyze(path, all_tcp=True, select=Selection(hosts=(host,)))
    assert r["sessions"] and all(host in (s["client"]["ip"], s["server"]["ip"]) for s in r["sessions"])
    assert all(s == by_id[s["id"]] for s in r["sessions"])          # the same result, id, frames
    expected = [s for s in whole["sessions"] if host in (s["client"]["ip"], s["server"]["ip"])]
    assert r["sessions"] == expected
    assert r["summary"]["sessions"] == len(expected)
    assert r["summary"]["selected"] == {"filters": {"hosts": [host]},
                                        "left_out": len(whole["sessions"]) - len(expected)}
    assert r["summary"]["tcp_sessions"] == whole["summary"]["tcp_sessions"]


def test_filters_combine(busy):
    path, whole = busy
    failed = [s for s in whole["sessions"] if s["verdict"] == "peer_reset"]
    assert failed
    net = failed[0]["client"]["ip"].rsplit(".", 1)[0] + ".0/24"
    r = pushscan.analyze(path, all_tcp=True, select=Selection(hosts=(net,), verdicts=("peer_reset",)))
    assert r["sessions"] and {s["verdict"] for s in r["sessions"]} == {"peer_reset"}
    ids = [failed[0]["id"], failed[-1]["id"]]
    r = pushscan.analyze(path, all_tcp=True, select=Selection(sessions=tuple(ids)))
    assert [s["id"] for s in r["sessions"]] == sorted(set(ids))
    r = pushscan.analyze(path, all_tcp=True, select=Selection(ports=(25,), verdicts=("ok",)))
    assert r["sessions"] == [s for s in whole["sessions"] if s["verdict"] == "ok"]


def test_bad_filters_are_usage_errors():
    with pytest.raises(UsageError, match="--host"):
        Selection(hosts=("mail.example.org",))
    with pytest.raises(UsageError, match="not a verdict"):
        Selection(verdicts=("broken",))
    assert not Selection() and Selection(ports=(25,))
    r = pushscan.analyze(str(CAPTURES / "smtp_ok.pcap"), select=Selection(hosts=("2001:db8::/32",)))
    assert r["sessions"] == [] and r["summary"]["selected"]["left_out"] == 1
