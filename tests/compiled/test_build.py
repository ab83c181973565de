"""The fast lane's kernels: built ahead of time once, numba's JIT as the fallback; both
give the same reports, and a failed or impossible build never stops an analysis."""
from __future__ import annotations

import importlib.machinery
import json
import os
import subprocess
import sys

import pytest

from ..conftest import ALL_CAPTURES, CAPTURES, bench_capture, json_documents, require

pytest.importorskip("numba")
ROOT = CAPTURES.parent
INPUTS = [str(p) for p in ALL_CAPTURES]


def run(*args: str, env: dict[str, str] | None = None, code: str | None = None,
        ) -> subprocess.CompletedProcess[str]:
    """``pushscan analyze ARGS`` (or python ``code``) with the fast lane forced."""
    argv = [sys.executable, "-c", code] if code else [sys.executable, "-m", "pushscan", "analyze", *args]
    return subprocess.run(argv, check=False, capture_output=True, text=True, cwd=ROOT, timeout=900,
                          env=dict(os.environ, PUSHSCAN_FASTLANE="1", **(env or {})))


def report(r: subprocess.CompletedProcess[str]) -> list[dict]:
    """The documents of every capture, in order (the bundled files are separate captures)."""
    assert r.returncode in (0, 1), r.stderr
    return json_documents(r.stdout)


def sessions(docs: list[dict]) -> list[dict]:
    return [s for d in docs for s in d["sessions"]]


@pytest.mark.slow
def test_build_once_then_load_without_numba(tmp_path):
    require("cc")
    cache = tmp_path / "cache"
    env = {"PUSHSCAN_CACHE_DIR": str(cache)}
    first = run("--format", "json", *INPUTS, env=env)
    built = sorted(p.name for p in cache.iterdir() if p.name.startswith("pushscan_kernels_"))
    assert len(built) == 1 and built[0].endswith(".so"), built
    # not a terminal: no progress; only the note that the files are separate captures
    assert [x for x in first.stderr.splitlines() if not x.startswith("pushscan: note: ")] == []
    code = ("import sys, json\n"
            "from pushscan import cli\nfrom pushscan.compiled import build as compiled\n"
            "try:\n"
            f"    cli.main(['analyze', '--format', 'json', *{INPUTS!r}], standalone_mode=False)\n"
            "finally:\n"
            "    print(json.dumps({'origin': compiled.load().origin,\n"
            "                      'numba': 'numba' in sys.modules}), file=sys.stderr)\n")
    again = run(env=env, code=code)
    assert report(again) == report(first)
    status = json.loads(again.stderr.splitlines()[-1])     # after the note
    assert status == {"origin": f"built: {cache / built[0]}", "numba": False}
    assert len(sessions(report(first))) > 30


@pytest.mark.slow
def test_built_and_jit_kernels_give_the_same_report(tmp_path):
    big = bench_capture(tmp_path / "bench.pcap", 60_000)   # the kernels' common case
    for inputs in (INPUTS, [str(big)]):
        built = report(run("--format", "json", *inputs))
        jit = report(run("--format", "json", *inputs, env={"PUSHSCAN_KERNELS": "jit"}))
        assert built == jit
    assert len(built) == 1 and len(built[0]["sessions"]) > 100
    assert built[0]["summary"]["by_code"]["RETRANSMISSIONS"] > 10


@pytest.mark.slow
def test_signatures_are_what_the_jit_infers():
    """The built module checks no argument types: its signatures must be exactly what
    the callers pass, which is what the JIT compiles for."""
    code = ("import pushscan\n"
            "from pushscan.analysis import Analysis, Options\n"
            "from pushscan.compiled import build as compiled\n"
            f"Analysis([{str(CAPTURES / 'smtp_ok.pcap')!r}, {str(CAPTURES / 'smtp_conflict.pcap')!r}],"
            " Options(fast=True)).run()\n"
            f"Analysis([{str(CAPTURES / 'smtp_ok_multi_interface.pcapng')!r}], Options(fast=True)).run()\n"
            "k = compiled.load()\n"
            "assert k.origin == 'jit', k.origin\n"
            "want = compiled.signatures()\n"
            "for name in compiled.ENTRIES:\n"
            "    got = getattr(k, name).nopython_signatures\n"
            "    assert [str(s) for s in got] == [str(want[name])], (name, got, want[name])\n"
            "print('ok')\n")
    r = run(env={"PUSHSCAN_KERNELS": "jit"}, code=code)
    assert r.stdout.strip() == "ok", r.stderr


@pytest.mark.slow
def test_without_a_compiler_the_jit_runs_silently(tmp_path):
    cache = tmp_path / "cache"
    env = {"PUSHSCAN_CACHE_DIR": str(cache), "CC": str(tmp_path / "no-such-cc")}
    r = run("--format", "json", str(CAPTURES / "smtp_peer_reset.pcap"), env=env)
    assert r.stderr == ""
    assert report(r) == report(run("--format", "json", str(CAPTURES / "smtp_peer_reset.pcap")))
    assert not cache.exists() or not any(cache.glob("pushscan_kernels_*"))


@pytest.mark.slow
def test_a_failed_build_is_reported_once_and_not_retried(tmp_path):
    cache = tmp_path / "cache"
    env = {"PUSHSCAN_CACHE_DIR": str(cache), "CC": "false"}   # a compiler that always fails
    path = str(CAPTURES / "smtp_peer_reset.pcap")
    first = run("--format", "json", path, env=env)
    failed = list(cache.glob("pushscan_kernels_*.failed"))
    assert len(failed) == 1 and failed[0].read_text().strip()
    assert first.stderr.startswith("pushscan: could not build the compiled kernels (")
    assert f"using numba's JIT (to try again, delete {failed[0]})" in first.stderr
    assert first.stderr.count("\n") == 1
    assert report(first)[0]["summary"]["by_verdict"] == {"peer_reset": 1}
    again = run("--format", "json", path, env=env)
    assert again.stderr == "" and report(again) == report(first)
    assert not list(cache.glob("pushscan_kernels_*.so"))


@pytest.mark.slow
def test_a_broken_module_is_removed_and_the_jit_used(tmp_path):
    cache = tmp_path / "cache"
    env = {"PUSHSCAN_CACHE_DIR": str(cache), "CC": "false"}
    name = run(env=env, code="from pushscan.compiled import build as compiled; print(compiled.module_name())").stdout.strip()
    cache.mkdir()
    broken = cache / (name + importlib.machinery.EXTENSION_SUFFIXES[0])
    broken.write_bytes(b"\x7fELF but not really")
    path = str(CAPTURES / "smtp_peer_reset.pcap")
    r = run("--format", "json", path, env=env)
    assert r.stderr.startswith(f"pushscan: could not load {broken} (")
    assert r.stderr.rstrip().endswith("removed it, using numba's JIT")
    assert not broken.exists()
    assert report(r) == report(run("--format", "json", path))


@pytest.mark.slow
def test_medium_inputs_take_the_fast_lane_once_it_is_built(tmp_path):
    """With the built module at hand the fast lane starts at no cost, so files from
    4 MB (standard input from 20,000 packets) take it; with the JIT only big ones do."""
    medium = bench_capture(tmp_path / "medium.pcap", 10_000)    # ~5.5 MB
    code = ("import sys\n"
            "from pushscan.compiled import build as compiled\n"
            "from pushscan.analysis import Analysis, Options\n"
            "from pushscan.tcp import lane as fastlane\n"
            "made = []\n"
            "init = fastlane.FastLane.__init__\n"
            "def counted(self, *a, **k):\n"
            "    made.append(1)\n"
            "    init(self, *a, **k)\n"
            "fastlane.FastLane.__init__ = counted\n"
            "if sys.argv[1] == 'built':\n"
            "    assert compiled.load().origin.startswith('built'), compiled.load()\n"
            f"r = Analysis([{str(medium)!r}], Options()).run()\n"
            "print(len(made), len(r['sessions']), compiled.ready())\n")
    argv = [sys.executable, "-c", code]
    env = {k: v for k, v in os.environ.items() if k != "PUSHSCAN_FASTLANE"}
    out = {}
    for mode, extra in (("built", {}), ("jit", {"PUSHSCAN_KERNELS": "jit"})):
        r = subprocess.run(argv + [mode], check=False, capture_output=True, text=True, cwd=ROOT,
                           env=dict(env, **extra), timeout=900)
        assert r.returncode == 0, r.stderr
        out[mode] = r.stdout.split()
    assert out["built"][0] == "1" and out["built"][2] == "True"
    assert out["jit"][0] == "0" and out["jit"][2] == "False"
    assert out["built"][1] == out["jit"][1] != "0"


@pytest.mark.slow
def test_an_unwritable_cache_means_the_jit_silently(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    env = {"PUSHSCAN_CACHE_DIR": str(blocker / "cache")}
    path = str(CAPTURES / "smtp_peer_reset.pcap")
    r = run("--format", "json", path, env=env)
    assert r.stderr == ""
    assert report(r) == report(run("--format", "json", path))


@pytest.mark.slow
def test_built_kernels_let_other_threads_run():
    """The read-ahead thread decodes while the main thread tracks: the built module's
    calls must release the GIL, as the JIT's nogil=True does (pycc's wrappers do not by
    default). Another thread notes the time as it loops; while a call holds the GIL it
    cannot run at all, so no note may fall inside a call (beyond two switch intervals
    from either end, where the threads may still be changing hands)."""
    code = ("import sys, threading, time, numpy as np\n"
            "from pushscan.compiled import build as compiled\n"
            "k = compiled.load()\n"
            "assert k.origin.startswith('built'), k.origin\n"
            "buf = np.zeros(96 << 20, np.uint8)   # records of 0 bytes: 16 bytes each\n"
            "cols = [np.empty(len(buf) // 16, np.int64) for _ in range(5)]\n"
            "k.scan(buf, 0, False, 1 << 20, *cols)\n"
            "notes, stop = [], []\n"
            "def loop():\n"
            "    while not stop:\n"
            "        notes.append(time.perf_counter())\n"
            "        for _ in range(1000):\n"
            "            pass\n"
            "t = threading.Thread(target=loop)\n"
            "t.start()\n"
            "time.sleep(0.05)\n"
            "calls = []\n"
            "for _ in range(5):\n"
            "    t0 = time.perf_counter()\n"
            "    k.scan(buf, 0, False, 1 << 20, *cols)\n"
            "    calls.append((t0, time.perf_counter()))\n"
            "stop.append(1)\n"
            "t.join()\n"
            "m = 2 * sys.getswitchinterval()\n"
            "inside = sum(t0 + m < x < t1 - m for t0, t1 in calls for x in notes)\n"
            "print(inside, min(t1 - t0 for t0, t1 in calls))\n")
    r = run(code=code)
    assert r.returncode == 0, r.stderr
    inside, shortest = r.stdout.split()
    assert float(shortest) > 0.025   # long enough to have an inside at all
    assert int(inside) > 50
