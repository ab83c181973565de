"""Runs on a real Dask cluster (a scheduler and two worker processes on 127.0.0.1) give
the answers of local runs: a capture split into shards, a ring set, many captures; a
worker killed mid-run changes nothing; every way of not getting a cluster is one line."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

import pushscan
from pushscan.analysis import Analysis, Options, captures
from pushscan.cluster import CLUSTER_MISSING, connect, on_cluster, plan
from pushscan.errors import UsageError

from ..conftest import ALL_CAPTURES, CAPTURES, bench_capture
from .conftest import DaskCluster


def local(paths: list[str], opts: Options) -> dict:
    return Analysis(list(paths), opts).run()


def cluster_reports(cluster, groups, opts, shards=None, task_done=None):
    out = []
    for report, unreadable in on_cluster(groups, opts, cluster, shards=shards, task_done=task_done):
        report["sessions"] = list(report["sessions"])
        out.append((report, unreadable))
    return out


def same(a: dict, b: dict) -> None:
    assert a["sessions"] == b["sessions"]
    assert a["summary"] == b["summary"]
    assert a["inputs"] == b["inputs"]


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    return str(bench_capture(tmp_path_factory.mktemp("cluster") / "big.pcap", 300_000))


@pytest.fixture(scope="module")
def cluster(dask_cluster):
    c = connect(dask_cluster.address)
    yield c
    c.close()


def test_connects_and_sees_two_workers(cluster):
    assert cluster.workers == 2 and cluster.threads == 2


def test_a_capture_in_shards_equals_a_local_run(cluster, big):
    opts = Options(all_tcp=True)
    whole = local([big], opts)
    assert len(whole["sessions"]) > 2000
    for shards in (1, 4):
        ((report, unreadable),) = cluster_reports(cluster, [[big]], opts, shards=shards)
        assert unreadable == []
        same(report, whole)


def test_a_ring_set_and_many_captures_equal_local_runs(cluster):
    ring = [str(CAPTURES / "rotated_00001.pcap"), str(CAPTURES / "rotated_00002.pcap")]
    opts = Options(all_tcp=True)
    assert [list(g.paths) for g in captures(ring[::-1], opts)[0]] == [ring]
    groups = [ring] + [[str(p)] for p in ALL_CAPTURES if str(p) not in ring]
    got = cluster_reports(cluster, groups, opts)
    assert len(got) == len(groups)
    for g, (report, unreadable) in zip(groups, got):
        same(report, local(g, opts))
        assert unreadable == []


def test_a_worker_killed_mid_run_changes_nothing(tmp_path, big):
    """SIGKILL one of two workers once the first of 8 shards is in: Dask runs its tasks
    again on the other worker, and the report is still the local one."""
    c = DaskCluster(2)
    try:
        cl = connect(c.address)
        opts = Options(all_tcp=True)
        killed = []

        def task_done(done: int, total: int) -> None:
            if not killed:
                os.kill(c.workers[0].pid, signal.SIGKILL)
                killed.append(done)

        ((report, _),) = cluster_reports(cl, [[big]], opts, shards=8, task_done=task_done)
        assert killed and c.workers[0].wait(timeout=10) == -signal.SIGKILL
        same(report, local([big], opts))
        cl.close()
    finally:
        c.stop()


def test_an_unreachable_scheduler_is_one_line_within_the_timeout():
    t = time.monotonic()
    with pytest.raises(UsageError, match=r"cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 2 s"):
        connect("127.0.0.1:9", timeout=2)
    assert time.monotonic() - t < 15


def test_workers_on_another_version_are_refused(tmp_path):
    pre = tmp_path / "other_version.py"
    pre.write_text("import pushscan.version\npushscan.version.__version__ = '0.0.0+other'\n")
    c = DaskCluster(1, preload=str(pre))
    try:
        with pytest.raises(UsageError, match=r"Dask workers run another pushscan version than this "
                                             r".*has 0\.0\.0\+other; install the same version everywhere"):
            connect(c.address)
    finally:
        c.stop()


def test_without_dask_it_says_what_to_install():
    code = ("import sys; sys.modules['distributed'] = None\n"
            "from pushscan.cluster import connect\n"
            "try:\n    connect('local')\nexcept Exception as e:\n    print(e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.strip() == CLUSTER_MISSING


def test_a_file_the_workers_cannot_see(cluster, tmp_path):
    """An input missing on the worker side is that input's error, as locally."""
    missing = str(tmp_path / "gone.pcap")
    ((report, unreadable),) = cluster_reports(cluster, [[missing]], Options())
    assert [(u.path, u.problem) for u in unreadable] == [(missing, "no such file")]
    assert report["sessions"] == []


def test_plan_splits_only_big_captures():
    tasks = plan([["a"], ["b", "c"]], threads=4, shards=3)
    assert [(t.group, t.shard) for t in tasks] == [(0, (0, 3)), (0, (1, 3)), (0, (2, 3)),
                                                   (1, (0, 3)), (1, (1, 3)), (1, (2, 3))]
    small = plan([[str(CAPTURES / "smtp_ok.pcap")]], threads=4)
    assert [(t.group, t.shard) for t in small] == [(0, None)]
