"""The command line as a user meets it: output formats, exit codes, messages."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from ..conftest import CAPTURES, analyze_json, run_cli


def test_text_output_names_the_problem():
    r = run_cli("analyze", str(CAPTURES / "smtp_unpushed_reset.pcap"))
    assert r.returncode == 0
    assert "push_problem" in r.stdout and "UNPUSHED_BEFORE_RESET" in r.stdout
    assert "ForcePushBit=1" in r.stdout
    assert "\x1b[" not in r.stdout          # no colour when not on a terminal


def test_json_contract():
    r = analyze_json(str(CAPTURES / "smtp_ok.pcap"))
    assert r["schema"] == 1 and r["pushscan_version"]
    assert set(r) >= {"schema", "pushscan_version", "inputs", "sessions", "summary"}
    inp = r["inputs"][0]
    assert set(inp) >= {"path", "format", "link_types", "packets", "errors"}
    assert (inp["format"], inp["link_types"], inp["packets"], inp["errors"]) == ("pcap", ["EN10MB"], 35, [])
    s = r["sessions"][0]
    assert set(s) >= {"id", "file", "client", "server", "protocol", "first_frame", "last_frame", "start",
                      "end", "handshake", "close", "outgoing", "directions", "smtp", "findings", "verdict"}
    assert set(s["directions"]["client_to_server"]) >= {
        "data_segments", "psh_segments", "bytes", "retransmitted_segments", "turns", "turns_unpushed",
        "unpushed_bytes_at_end"}
    assert r["summary"] == {"sessions": 1, "tcp_sessions": 1, "by_verdict": {"ok": 1}, "by_code": {},
                            "limits": {"evicted_sessions": 0, "buffer_overflows": 0, "lines_truncated": 0}}


def test_jsonl_one_line_per_session_then_summary():
    r = run_cli("analyze", "--format", "jsonl", str(CAPTURES / "smtp_port_reuse.pcap"))
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert [x["id"] for x in lines[:-1]] == [0, 1]
    assert lines[-1]["summary"]["sessions"] == 2


def test_standard_input_pipe_equals_file():
    f = CAPTURES / "smtp_unpushed_reset.pcap"
    cat = subprocess.Popen(["cat", str(f)], stdout=subprocess.PIPE)
    r = subprocess.run([sys.executable, "-m", "pushscan", "analyze", "--format", "json", "-"],
                       stdin=cat.stdout, capture_output=True, text=True, timeout=60)
    cat.wait()
    assert r.returncode == 0, r.stderr
    piped = json.loads(r.stdout)
    direct = analyze_json(str(f))
    assert piped["sessions"][0]["findings"] == direct["sessions"][0]["findings"]
    assert piped["inputs"][0]["path"] == "-"


def test_tcpdump_to_stdin_gz(tmp_path):
    """gzip through a pipe: the magic is read once, the format committed, no seeking."""
    r = subprocess.run(f"cat {CAPTURES / 'smtp_ok.pcap.gz'} | {sys.executable} -m pushscan analyze "
                       "--format json -", shell=True, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and json.loads(r.stdout)["inputs"][0]["format"] == "pcap+gzip"


def test_separate_analyses_each_file():
    files = [str(CAPTURES / "rotated_00001.pcap"), str(CAPTURES / "rotated_00002.pcap")]
    r = run_cli("analyze", "--separate", "--format", "jsonl", *files)
    summaries = [json.loads(x) for x in r.stdout.splitlines() if '"summary"' in x[:12]]
    assert len(summaries) == 2


def test_port_option_makes_a_port_smtp(tmp_path):
    r = analyze_json("--smtp-port", "8080", str(CAPTURES / "tcp_other.pcap"))
    assert [s["server"]["port"] for s in r["sessions"]] == [8080, 10025]


@pytest.mark.parametrize("args,code,text", [
    (["analyze", "/nonexistent/x.pcap"], 3, "/nonexistent/x.pcap: no such file"),
    (["analyze", str(CAPTURES)], 3, "is a directory"),
    (["analyze", "--local", "300.1.2.3/8", str(CAPTURES / "smtp_ok.pcap")], 2, "--local"),
    (["analyze", "--format", "xml", str(CAPTURES / "smtp_ok.pcap")], 2, "xml"),
    (["analyze"], 2, "pushscan: error: Missing argument 'CAPTURE...'. (see pushscan analyze --help)\n"),
    (["check", "--shards", "2", str(CAPTURES)], 2, "pushscan: error: No such option '--shards'. (see pushscan "
                                                  "check --help)\n"),
    (["analyze", "-", "-"], 2, "only once"),
])
def test_exit_codes(args, code, text):
    r = run_cli(*args)
    assert r.returncode == code, (r.stdout, r.stderr)
    assert text in r.stderr
    assert r.stderr.count("\n") == 1            # one line, whatever the error


@pytest.mark.parametrize("content,problem", [
    (b"", "empty file"),
    (b"hello, this is not a capture\n", "not a pcap or pcapng capture"),
    (b"\x7fELF\x02\x01\x01" + bytes(100), "not a pcap or pcapng capture"),
    (b"\x89PNG\r\n\x1a\n" + bytes(100), "not a pcap or pcapng capture"),
    (b"\x1f\x8b\x08\x00garbage-not-deflate", "gzip"),
])
def test_not_a_capture(tmp_path, content, problem):
    f = tmp_path / "input.pcap"
    f.write_bytes(content)
    r = run_cli("analyze", str(f))
    assert r.returncode == 3
    assert r.stderr.strip().splitlines()[-1].startswith(f"pushscan: error: {f}: ")
    assert problem in r.stderr and "Traceback" not in r.stderr


def test_truncated_tail_keeps_the_good_part(tmp_path):
    data = (CAPTURES / "smtp_unpushed_reset.pcap").read_bytes()
    f = tmp_path / "cut.pcap"
    f.write_bytes(data[:-30])          # the reset frame is cut in half
    before = f.read_bytes()
    r = run_cli("analyze", "--format", "json", str(f))
    assert r.returncode == 0
    assert "warning" in r.stderr and "truncated record" in r.stderr
    rep = json.loads(r.stdout)
    assert rep["inputs"][0]["packets"] == 15
    assert rep["inputs"][0]["errors"] and "truncated record" in rep["inputs"][0]["errors"][0]
    assert rep["sessions"][0]["close"] == "open"
    assert f.read_bytes() == before     # the input is never modified


def test_one_unreadable_input_among_good_ones(tmp_path):
    r = run_cli("analyze", "--format", "json", str(CAPTURES / "smtp_ok.pcap"), str(tmp_path / "missing.pcap"))
    assert r.returncode == 3
    rep = json.loads(r.stdout)          # the readable capture's report, whole
    assert rep["summary"]["sessions"] == 1 and [i["path"] for i in rep["inputs"]] == [str(CAPTURES / "smtp_ok.pcap")]
    assert f"pushscan: error: {tmp_path / 'missing.pcap'}: no such file" in r.stderr


def test_output_file_is_written_atomically(tmp_path):
    out = tmp_path / "report.json"
    r = run_cli("analyze", "--format", "json", "-o", str(out), str(CAPTURES / "smtp_ok.pcap"))
    assert r.returncode == 0 and r.stdout == ""
    assert json.loads(out.read_text())["summary"]["sessions"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_fifo_input(tmp_path):
    fifo = tmp_path / "cap.fifo"
    os.mkfifo(fifo)
    proc = subprocess.Popen([sys.executable, "-m", "pushscan", "analyze", "--format", "json", str(fifo)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with open(fifo, "wb") as w:
        w.write((CAPTURES / "smtp_ok.pcap").read_bytes())
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert json.loads(out)["sessions"][0]["verdict"] == "ok"
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_python_api_raises_on_unreadable_only_input():
    import pushscan
    with pytest.raises(pushscan.InputError) as exc:
        pushscan.analyze("/nonexistent.pcap")
    assert exc.value.exit_code == 3


def test_text_table_of_a_large_capture_lists_what_needs_attention(tmp_path):
    sys.path.insert(0, str(CAPTURES.parent / "bench"))
    import generate
    f = tmp_path / "many.pcap"
    with open(f, "wb") as out:
        generate.generate(out, 60_000, seed=3)
    r = run_cli("analyze", str(f))
    assert r.returncode == 0
    summary = json.loads(run_cli("analyze", "--format", "jsonl", str(f)).stdout.splitlines()[-1])["summary"]
    ok = summary["by_verdict"]["ok"]
    assert summary["sessions"] > 500
    assert f"{ok} sessions with verdict ok are not listed" in r.stdout
    assert "push_problem" in r.stdout or "peer_reset" in r.stdout


@pytest.mark.parametrize("fmt", ["jsonl", "json", "text"])
def test_parallel_jobs_give_the_same_output(fmt):
    files = [str(CAPTURES / n) for n in ("smtp_ok.pcap", "smtp_unpushed_reset.pcap", "tcp_other.pcap",
                                         "smtp_port_reuse.pcap")]
    one = run_cli("analyze", "--separate", "--format", fmt, *files)
    two = run_cli("analyze", "--separate", "--format", fmt, "-j", "2", *files)
    assert one.returncode == two.returncode == 0
    assert two.stdout == one.stdout
    # every file reported: a summary each (JSON), or its name (text)
    assert one.stdout.count('"summary"') == 4 if fmt != "text" else \
        all(n in one.stdout for n in ("smtp_ok.pcap", "smtp_port_reuse.pcap"))


def test_numpy_starts_no_blas_threads():
    """pushscan does no linear algebra: loading numpy through the command line starts no
    BLAS thread per core (they cost CPU in every process and -j worker); a value the user
    set is kept."""
    probe = ("import os, pushscan.cli, numpy; "
             "print(os.environ['OPENBLAS_NUM_THREADS'], len(os.listdir('/proc/self/task')))")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["1", "1"]
    env["OPENBLAS_NUM_THREADS"] = "2"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out[0] == "2"
