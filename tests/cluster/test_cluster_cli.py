"""``--cluster`` on the command line: ``analyze`` writes what a local run writes, ``check``
gives the same exit code and JUnit, and every wrong way to ask is one line, exit 2."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys

import pytest

from ..conftest import CAPTURES, bench_capture, json_documents

FILES = [str(CAPTURES / n) for n in ("rotated_00001.pcap", "rotated_00002.pcap", "smtp_ok.pcap",
                                     "smtp_unpushed_reset.pcap", "real_zero_window_stall.pcap")]


def pushscan(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pushscan", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    return str(bench_capture(tmp_path_factory.mktemp("cli") / "medium.pcap", 60_000))


def test_analyze_on_the_cluster_writes_the_local_json(dask_cluster, medium):
    """Many captures (a ring set among them: one task), and one capture in three shards:
    the documents are those of the local run, every field (nothing in them is timed)."""
    for inputs, shards in ((FILES, []), ([medium], ["--shards", "3"])):
        here = pushscan("analyze", "--format", "json", "--all-tcp", *inputs)
        there = pushscan("analyze", "--format", "json", "--all-tcp", "--cluster", dask_cluster.address,
                         *shards, *inputs)
        assert here.returncode == there.returncode == 0, there.stderr
        assert json_documents(there.stdout) == json_documents(here.stdout)
        assert there.stderr == here.stderr          # not a terminal: no progress, the same notes
    docs = json_documents(there.stdout)
    assert len(docs) == 1 and len(docs[0]["sessions"]) > 500


def test_shards_keep_the_ids_of_sessions_they_do_not_report(dask_cluster, medium):
    """Reporting some sessions only (a verdict; SMTP only): a merged session's id counts
    every session of every shard that began before it, reported or not."""
    narrow = ["--format", "json", "--verdict", "push_problem", "--verdict", "peer_reset", medium]
    here = pushscan("analyze", *narrow)
    there = pushscan("analyze", "--cluster", dask_cluster.address, "--shards", "3", *narrow)
    assert there.returncode == 0, there.stderr
    assert json.loads(there.stdout) == json.loads(here.stdout)
    ids = [s["id"] for s in json.loads(here.stdout)["sessions"]]
    assert len(ids) >= 3 and ids != list(range(len(ids)))      # not simply ranks
    for picked in (["--session", str(ids[1])], ["--session", str(ids[0]), "--session", "7", "--verdict", "ok"]):
        narrow = ["--format", "json", *picked, medium]
        here = pushscan("analyze", *narrow)
        there = pushscan("analyze", "--cluster", dask_cluster.address, "--shards", "3", *narrow)
        assert there.returncode == 0, there.stderr
        assert json.loads(there.stdout) == json.loads(here.stdout), picked


def test_analyze_jsonl_and_text_on_the_cluster(dask_cluster):
    for fmt in ("jsonl", "text"):
        here = pushscan("analyze", "--format", fmt, *FILES)
        there = pushscan("analyze", "--format", fmt, "--cluster", dask_cluster.address, *FILES)
        assert there.returncode == 0, there.stderr
        if fmt == "jsonl":
            assert sorted(there.stdout.splitlines()) == sorted(here.stdout.splitlines())
        else:
            assert there.stdout == here.stdout
            assert there.stderr == here.stderr + (f"pushscan: on the Dask scheduler {dask_cluster.address}: "
                                                  "2 worker(s), 2 thread(s)\n")
            assert here.stderr.startswith("pushscan: note: 4 captures, each reported alone (files not "
                                          "named alike are separate captures")


def test_check_on_the_cluster_gives_the_same_verdict_and_junit(dask_cluster, tmp_path):
    traces = tmp_path / "traces"
    traces.mkdir()
    for f in FILES:
        os.symlink(f, traces / os.path.basename(f))
    runs = {}
    for name, extra in (("local", []), ("cluster", ["--cluster", dask_cluster.address])):
        junit = tmp_path / f"{name}.xml"
        runs[name] = pushscan("check", str(traces), "--junit", str(junit), *extra, cwd=str(tmp_path))
        runs[name + ".xml"] = re.sub(r'time="[^"]*"|timestamp="[^"]*"', "", junit.read_text())
    assert runs["local"].returncode == runs["cluster"].returncode == 1     # the unpushed reset fails
    assert runs["cluster"].stdout == runs["local"].stdout
    assert runs["cluster.xml"] == runs["local.xml"]
    assert f"PASS {traces}/rotated_00001.pcap + {traces}/rotated_00002.pcap" in runs["local"].stdout


def test_wrong_ways_to_ask_are_one_line(tmp_path):
    ok = str(CAPTURES / "smtp_ok.pcap")
    cases = [
        (["analyze", "--shards", "2", ok], "--shards splits captures between the tasks of a cluster"),
        (["analyze", "--cluster", "local", "-j", "2", ok], "--jobs and --cluster exclude each other"),
        (["analyze", "--cluster", "local", "-"], "--cluster: standard input cannot be read by the "
                                                 "cluster's workers"),
        (["analyze", "--cluster", "tcp://127.0.0.1:9", ok], "cannot reach the Dask scheduler at "
                                                            "tcp://127.0.0.1:9 within 10 s"),
    ]
    for args, message in cases:
        r = pushscan(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.startswith(f"pushscan: error: {message}"), (args, r.stderr)
        assert r.stderr.count("\n") == 1 and r.stdout == ""


def test_a_task_that_fails_is_that_captures_error_and_the_others_go_on(tmp_path):
    """pushscan failing on a worker (here: made to fail for one file, by a preload on the
    worker) is one line naming that capture, exit 3, and every other capture reported."""
    from .conftest import DaskCluster
    bad = tmp_path / "bad_one.pcap"
    bad.write_bytes((CAPTURES / "smtp_peer_reset.pcap").read_bytes())
    pre = tmp_path / "break_one.py"
    pre.write_text("import pushscan.cluster.tasks as t\n"       # a bug that one capture meets
                   "Real = getattr(t, 'RealAnalysis', t.Analysis)\n"   # (dask may run a preload twice)
                   "def Analysis(paths, *args, **kw):\n"
                   "    if any(p.endswith('bad_one.pcap') for p in paths):\n"
                   "        raise RuntimeError('boom on the worker')\n"
                   "    return Real(paths, *args, **kw)\n"
                   "t.RealAnalysis, t.Analysis = Real, Analysis\n")
    c = DaskCluster(1, preload=str(pre))
    try:
        ok = str(CAPTURES / "smtp_ok.pcap")
        r = pushscan("analyze", "--format", "json", "--cluster", c.address, ok, str(bad))
    finally:
        c.stop()
    assert r.returncode == 3
    assert r.stderr.splitlines()[-1] == (f"pushscan: error: {bad}: its Dask task failed on {socket.gethostname()}: "
                                         "RuntimeError: boom on the worker; nothing of it is reported")
    assert [d["inputs"][0]["path"] for d in json_documents(r.stdout)] == [ok]
