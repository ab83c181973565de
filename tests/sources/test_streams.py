"""FIFOs, pipes and process substitutions: read once, in the order given; a FIFO nobody
writes to is waited for boundedly, with a word; non-capture data on one fails at once."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pushscan.sources.streams import rereadable

from ..conftest import CAPTURES, json_documents

OK = (CAPTURES / "smtp_ok.pcap").read_bytes()
BAD = (CAPTURES / "smtp_unpushed_reset.pcap").read_bytes()


def pushscan(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    r = subprocess.run([sys.executable, "-m", "pushscan", *args], capture_output=True, text=True,
                       timeout=timeout, env=dict(os.environ, **(env or {})))
    assert "Traceback" not in r.stderr, r.stderr
    return r


def feed(fifo: Path, data: bytes, delay: float = 0.0) -> threading.Thread:
    """A writer that opens ``fifo`` (after ``delay``), writes ``data`` and closes it."""
    def write() -> None:
        time.sleep(delay)
        with open(fifo, "wb") as f:
            f.write(data)
    t = threading.Thread(target=write, daemon=True)
    t.start()
    return t


def test_what_can_be_read_twice(tmp_path):
    f = tmp_path / "x.pcap"
    f.write_bytes(OK)
    fifo = tmp_path / "x.fifo"
    os.mkfifo(fifo)
    assert rereadable(str(f)) and rereadable(str(tmp_path / "missing.pcap"))
    assert not rereadable("-") and not rereadable(str(fifo)) and not rereadable("/dev/null")
    r, w = os.pipe()
    try:
        assert not rereadable(f"/dev/fd/{r}")
    finally:
        os.close(r)
        os.close(w)


def test_two_fifos_analysed_separately_are_read_once_in_order(tmp_path):
    a, b = tmp_path / "a.fifo", tmp_path / "b.fifo"
    os.mkfifo(a)
    os.mkfifo(b)
    writers = [feed(a, OK), feed(b, BAD)]
    r = pushscan("analyze", "--separate", "--format", "jsonl", str(a), str(b))
    for w in writers:
        w.join(timeout=10)
    summaries = [json.loads(x) for x in r.stdout.splitlines() if x.startswith('{"summary"')]
    assert r.returncode == 0, r.stderr
    assert [s["inputs"][0]["path"] for s in summaries] == [str(a), str(b)]
    assert [s["summary"]["by_verdict"] for s in summaries] == [{"ok": 1}, {"push_problem": 1}]


def test_two_fifos_as_one_capture(tmp_path):
    a, b = tmp_path / "a.fifo", tmp_path / "b.fifo"
    os.mkfifo(a)
    os.mkfifo(b)
    for f, data in ((a, OK), (b, BAD)):
        feed(f, data)
    r = pushscan("analyze", "--merge", "--format", "json", str(a), str(b), env={"PUSHSCAN_FIFO_TIMEOUT": "5"})
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)                       # read once each, in the order given
    assert [i["packets"] for i in doc["inputs"]] == [35, 16]
    assert doc["capture"] == {"how": "merged", "files": [str(a), str(b)]}


def test_two_process_substitutions(tmp_path):
    a, b = tmp_path / "a.pcap", tmp_path / "b.pcap"
    a.write_bytes(OK)
    b.write_bytes(BAD)
    r = subprocess.run(["bash", "-c", f"{sys.executable} -m pushscan analyze --format json <(cat {a}) <(cat {b})"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr          # not placed in time: a capture each, in order
    assert [[i["packets"] for i in d["inputs"]] for d in json_documents(r.stdout)] == [[35], [16]]
    r = subprocess.run(["bash", "-c", f"{sys.executable} -m pushscan analyze --merge --format json "
                        f"<(cat {a}) <(cat {b})"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert [i["packets"] for i in json.loads(r.stdout)["inputs"]] == [35, 16]


def test_one_process_substitution(tmp_path):
    a = tmp_path / "a.pcap"
    a.write_bytes(BAD)
    r = subprocess.run(["bash", "-c", f"{sys.executable} -m pushscan analyze --format json <(cat {a})"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["summary"]["by_verdict"] == {"push_problem": 1}


def test_a_fifo_nobody_writes_to_is_waited_for_with_a_word_then_given_up(tmp_path):
    fifo = tmp_path / "never.fifo"
    os.mkfifo(fifo)
    started = time.monotonic()
    r = pushscan("analyze", str(fifo), env={"PUSHSCAN_FIFO_TIMEOUT": "3"})
    took = time.monotonic() - started
    assert r.returncode == 3
    assert r.stderr == (f"pushscan: {fifo}: waiting for up to 3 s (PUSHSCAN_FIFO_TIMEOUT) for a program to "
                        f"open this FIFO for writing\npushscan: error: {fifo}: nothing was written to this FIFO "
                        "within 3 s (no program opened it for writing)\n")
    assert 3 <= took < 30


def test_a_late_writer_is_waited_for(tmp_path):
    fifo = tmp_path / "late.fifo"
    os.mkfifo(fifo)
    writer = feed(fifo, BAD, delay=2.0)
    r = pushscan("analyze", "--format", "json", str(fifo), env={"PUSHSCAN_FIFO_TIMEOUT": "30"})
    writer.join(timeout=10)
    assert r.returncode == 0 and json.loads(r.stdout)["summary"]["by_verdict"] == {"push_problem": 1}
    assert "waiting for up to 30 s" in r.stderr


def test_a_writer_that_holds_the_fifo_open_silently_is_not_timed_out(tmp_path):
    """A capture program that opened the FIFO and has seen no packet yet is a writer."""
    fifo = tmp_path / "quiet.fifo"
    os.mkfifo(fifo)

    def write() -> None:
        with open(fifo, "wb") as f:
            time.sleep(4)                 # longer than the time-out, then the capture
            f.write(BAD)
    t = threading.Thread(target=write, daemon=True)
    t.start()
    r = pushscan("analyze", "--format", "json", str(fifo), env={"PUSHSCAN_FIFO_TIMEOUT": "2"})
    t.join(timeout=10)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["summary"]["by_verdict"] == {"push_problem": 1}


def test_non_capture_data_on_a_fifo_fails_at_once(tmp_path):
    fifo = tmp_path / "text.fifo"
    os.mkfifo(fifo)
    writer = feed(fifo, b"Received: from mx\r\nSubject: not a capture\r\n" * 100)
    started = time.monotonic()
    r = pushscan("analyze", str(fifo))
    writer.join(timeout=10)
    assert r.returncode == 3 and time.monotonic() - started < 20
    assert r.stderr == (f"pushscan: error: {fifo}: not a pcap or pcapng capture (unknown magic number "
                        "52656365)\n")


def test_the_other_engines_refuse_streams(tmp_path):
    fifo = tmp_path / "x.fifo"
    os.mkfifo(fifo)
    for engine in ("scapy", "tshark"):
        writer = feed(fifo, OK)
        r = pushscan("analyze", "--engine", engine, str(fifo))
        writer.join(timeout=10)
        assert r.returncode == 2
        assert r.stderr == (f"pushscan: error: the {engine} engine reads files, not {fifo}, a FIFO or pipe "
                            "(the native engine reads streams)\n")
