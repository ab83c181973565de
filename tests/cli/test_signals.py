"""Signals leave no debris: Ctrl-C, SIGTERM and SIGHUP end every command with its exit code
(130, 143, 129) and remove the output in progress; a killed -j worker is an error that
names its input; workers never outlive pushscan, even killed with SIGKILL."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ..conftest import CAPTURES

sys.path.insert(0, str(CAPTURES.parent / "bench"))
import generate  # noqa: E402


@pytest.fixture(scope="module")
def slow_capture(tmp_path_factory) -> Path:
    """A capture that takes pushscan many seconds (200,000 refused sessions)."""
    f = tmp_path_factory.mktemp("slow") / "refused.pcap"
    with open(f, "wb") as out:
        generate.refused_sessions(out, 200_000)
    return f


def start(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "pushscan", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=cwd)


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def workers_of(pid: int, at_least: int = 1, timeout: float = 30) -> list[int]:
    """The worker processes of ``pid``, once it has started ``at_least`` of them."""
    deadline = time.monotonic() + timeout
    while len(found := children(pid)) < at_least:
        assert time.monotonic() < deadline, "no worker started"
        time.sleep(0.05)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:          # a zombie is dead, only not reaped yet
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def wait_for_tmp(where: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Until the command has its temporary output file (it is at work)."""
    deadline = time.monotonic() + timeout
    while not list(where.glob("*.tmp")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(0.5)


COMMANDS = {
    "analyze": lambda f: ["analyze", str(f), "-o", "out.txt"],
    "analyze json": lambda f: ["analyze", "--format", "json", str(f), "-o", "out.json"],
    "check": lambda f: ["check", str(f), "--junit", "junit.xml"],
    "report": lambda f: ["report", str(f), "-o", "report.html"],
    "plot": lambda f: ["plot", str(f), "--session", "7", "-o", "graph.png"],
}


@pytest.mark.slow
@pytest.mark.parametrize("sig,code,said", [(signal.SIGINT, 130, "interrupted"),
                                           (signal.SIGTERM, 143, "stopped by SIGTERM"),
                                           (signal.SIGHUP, 129, "stopped by SIGHUP")],
                         ids=["SIGINT", "SIGTERM", "SIGHUP"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_signal_ends_the_command_and_removes_its_output(tmp_path, slow_capture, command, sig, code, said):
    p = start(*COMMANDS[command](slow_capture), cwd=tmp_path)
    wait_for_tmp(tmp_path, p)
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == code, err
    assert err.splitlines()[-1] == f"pushscan: {said}", err
    assert "Traceback" not in err and "Aborted!" not in err
    assert os.listdir(tmp_path) == []


@pytest.mark.slow
def test_follow_interrupted_exits_130(slow_capture, tmp_path):
    p = start("follow", str(slow_capture), "--session", "5", cwd=tmp_path)
    time.sleep(3)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and err.strip().splitlines()[-1] == "pushscan: interrupted", err


@pytest.mark.slow
def test_a_killed_worker_is_an_error_naming_its_input(tmp_path, slow_capture):
    small = CAPTURES / "smtp_unpushed_reset.pcap"
    p = start("analyze", "--separate", "-j", "2", "--format", "jsonl", str(slow_capture), str(small),
              "-o", "out.jsonl", cwd=tmp_path)
    wait_for_tmp(tmp_path, p)
    os.kill(workers_of(p.pid)[0], signal.SIGKILL)     # the first worker took the first file
    _, err = p.communicate(timeout=120)
    assert p.returncode == 3, err
    assert err == (f"pushscan: error: {slow_capture}: the worker process analysing it died (killed by "
                   "SIGKILL, perhaps by the kernel's out-of-memory killer); nothing of it is reported\n")
    lines = (tmp_path / "out.jsonl").read_text().splitlines()
    assert lines[-1].startswith('{"summary":') and len(lines) == 2     # the other file, complete
    assert os.listdir(tmp_path) == ["out.jsonl"]


@pytest.mark.slow
def test_a_killed_check_worker_is_an_error_case_and_the_gate_goes_on(tmp_path, slow_capture):
    small = CAPTURES / "smtp_unpushed_reset.pcap"
    p = start("check", "-j", "2", str(slow_capture), str(small), "--junit", "junit.xml", cwd=tmp_path)
    first = workers_of(p.pid)[0]               # it took the first trace, the slow one
    time.sleep(1)
    os.kill(first, signal.SIGKILL)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 3, err
    assert out.splitlines()[0] == (f"ERROR {slow_capture}: pushscan failed on this trace (its worker process "
                                   "died: killed by SIGKILL, perhaps by the kernel's out-of-memory killer)")
    assert f"FAIL {small} (1 session)" in out
    junit = (tmp_path / "junit.xml").read_text()
    assert 'type="Crash"' in junit and "UNPUSHED_BEFORE_RESET" in junit


@pytest.mark.slow
def test_workers_die_with_pushscan(tmp_path, slow_capture):
    p = start("analyze", "--separate", "-j", "2", "--format", "json", str(slow_capture), str(slow_capture),
              "-o", "out.json", cwd=tmp_path)
    wait_for_tmp(tmp_path, p)
    workers = workers_of(p.pid, at_least=2)
    p.kill()                                   # SIGKILL: no code of pushscan runs
    p.wait()
    deadline = time.monotonic() + 10
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(w) for w in workers)
