"""pushscan live on an interface of network namespaces the test creates, joined by a veth
pair: a real SMTP server (aiosmtpd) on one side, real clients (swaks) on the other."""
from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import pushscan

from ..conftest import TESTS, require

HERE = TESTS
SERVER, CLIENT = "192.0.2.1", "192.0.2.2"


@pytest.fixture
def loopback_smtp():
    """aiosmtpd on a free loopback port (root only: the tests capture on lo)."""
    if os.geteuid() != 0:
        pytest.skip("capturing needs root")
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
                               "-c", "aiosmtpd.handlers.Sink"], stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    yield port
    server.kill()


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


@dataclass
class Net:
    srv: str
    cli: str
    srv_if: str

    def run(self, ns: str, *argv: str, **kw) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", ns, *argv], **kw)


@pytest.fixture
def net():
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    require("ip")
    require("dumpcap")
    tag = f"ps{os.getpid() % 100000}"
    srv, cli = f"{tag}s", f"{tag}c"
    sh("ip", "netns", "add", srv)
    sh("ip", "netns", "add", cli)
    try:
        sh("ip", "link", "add", f"{tag}a", "type", "veth", "peer", "name", f"{tag}b")
        sh("ip", "link", "set", f"{tag}a", "netns", srv)
        sh("ip", "link", "set", f"{tag}b", "netns", cli)
        for ns, dev, addr in ((srv, f"{tag}a", SERVER), (cli, f"{tag}b", CLIENT)):
            sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            sh("ip", "-n", ns, "link", "set", dev, "up")
            sh("ip", "-n", ns, "link", "set", "lo", "up")
        yield Net(srv, cli, f"{tag}a")
    finally:
        for ns in (srv, cli):
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


class Live:
    """pushscan live running in the server's namespace; its output lines as they come."""

    def __init__(self, net: Net, *args: str) -> None:
        self.proc = net.run(net.srv, sys.executable, "-m", "pushscan", "live", "-i", net.srv_if,
                            "--format", "jsonl", *args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=HERE.parent)
        self.lines: "queue.Queue[dict]" = queue.Queue()
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()
        # the capture program attaches to the interface
        time.sleep(2.0)

    def _pump(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(json.loads(line))

    def next_session(self, timeout: float = 30) -> dict:
        doc = self.lines.get(timeout=timeout)
        assert "summary" not in doc, doc
        return doc

    def stop(self) -> tuple[dict, str]:
        self.proc.send_signal(signal.SIGTERM)
        err = self.proc.stderr.read()
        assert self.proc.wait(timeout=30) == 0, err
        self.pump.join(timeout=10)
        rest = []
        while not self.lines.empty():
            rest.append(self.lines.get())
        return rest[-1], err


def listening(net: Net, port: int) -> None:
    for _ in range(100):
        out = subprocess.run(["ip", "netns", "exec", net.srv, "ss", "-ltn"], capture_output=True, text=True).stdout
        if f"{SERVER}:{port}" in out:
            return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def swaks(net: Net, port: int) -> int:
    require("swaks")
    return subprocess.run(["ip", "netns", "exec", net.cli, "swaks", "--server", f"{SERVER}:{port}",
                           "--to", "rcpt@example.org", "--from", "sender@example.com", "--hide-all",
                           "--timeout", "20"], timeout=60).returncode


BACKENDS = [("--backend", "dumpcap"), ("--backend", "tcpdump"), ("--backend", "scapy")]


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b[1])
def test_live_reports_real_sessions_and_equals_analyze_of_its_file(net, tmp_path, backend):
    server = net.run(net.srv, sys.executable, "-m", "aiosmtpd", "-n", "-l", f"{SERVER}:25",
                     "-c", "aiosmtpd.handlers.Sink", stderr=subprocess.DEVNULL)
    try:
        listening(net, 25)
        written = tmp_path / "live.pcapng"
        live = Live(net, "--write", str(written), *backend)
        assert swaks(net, 25) == 0
        assert swaks(net, 25) == 0
        a, b = live.next_session(), live.next_session()      # reported while live runs
        summary, _ = live.stop()
    finally:
        server.kill()
    for s in (a, b):
        assert s["verdict"] == "ok" and s["close"] == "fin" and s["handshake"] == "complete"
        assert [c["verb"] for c in s["smtp"]["commands"]] == ["EHLO", "MAIL", "RCPT", "DATA", "DATA body", "QUIT"]
        assert s["client"]["ip"] == CLIENT and s["server"] == {"ip": SERVER, "port": 25}
    assert summary["summary"]["sessions"] == 2
    if backend[1] in ("dumpcap", "tcpdump"):
        assert summary["summary"]["kernel_drops"] == 0     # the others cannot know
    # what live reported equals what analyze reports on the file live wrote
    again = pushscan.analyze(str(written))
    strip = lambda d: {k: v for k, v in d.items() if k != "file"}  # noqa: E731
    assert [strip(s) for s in again["sessions"]] == [strip(a), strip(b)]


@pytest.mark.slow
def test_live_catches_a_push_problem_between_real_stacks(net, tmp_path):
    require("nft")
    # the client's stack never pushes: nftables clears PSH on its data segments
    for rule in (["add", "table", "inet", "pushscan"],
                 ["add", "chain", "inet", "pushscan", "out", "{ type filter hook output priority 0 ; }"],
                 ["add", "rule", "inet", "pushscan", "out", "tcp", "dport", "2525", "tcp", "flags", "&",
                  "(fin|syn|rst|psh|ack)", "==", "(psh|ack)", "tcp", "flags", "set", "ack"]):
        sh("ip", "netns", "exec", net.cli, "nft", *rule)
    peer = net.run(net.srv, sys.executable, str(HERE / "pushpeer.py"), net.srv_if, SERVER, "2525", "3",
                   stdout=subprocess.DEVNULL)
    try:
        listening(net, 2525)
        live = Live(net)
        assert swaks(net, 2525) != 0                         # the peer reset the session
        s = live.next_session()                              # reported while live runs
        summary, _ = live.stop()
    finally:
        peer.kill()
    assert s["verdict"] == "push_problem" and s["close"] == "reset_by_server"
    f = next(f for f in s["findings"] if f["code"] == "UNPUSHED_BEFORE_RESET")
    assert f["smtp_command"] == "EHLO" and f["acked"] is True and f["dwell_seconds"] >= 3
    assert f["unpushed_bytes"] > 0
    assert summary["summary"]["by_code"]["UNPUSHED_BEFORE_RESET"] == 1


def test_live_errors(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pushscan", "live", "-i", "nosuch0", "--duration", "1"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "unknown interface nosuch0" in r.stderr
    if os.geteuid() == 0:
        r = subprocess.run(["setpriv", "--bounding-set=-net_raw,-net_admin", "--", sys.executable, "-m",
                            "pushscan", "live", "-i", "lo", "--duration", "1"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 4 and "CAP_NET_RAW and CAP_NET_ADMIN" in r.stderr
    env = dict(os.environ, PATH=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "pushscan", "live", "-i", "lo", "--duration", "1",
                        "--backend", "dumpcap"], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 2 and "dumpcap is not installed" in r.stderr


@pytest.mark.slow
def test_live_tshark_engine_on_loopback(tmp_path, loopback_smtp):
    """--engine tshark captures through pyshark's LiveCapture (here on loopback, stopped by
    --duration); it reports the same sessions as analyze of the file it wrote."""
    require("tshark")
    require("swaks")
    port = loopback_smtp
    written = tmp_path / "live.pcap"
    live = subprocess.Popen([sys.executable, "-m", "pushscan", "live", "-i", "lo", "--engine", "tshark",
                             "--smtp-port", str(port), "--bpf", f"tcp port {port}", "--format", "jsonl",
                             "--duration", "25", "--write", str(written)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=HERE.parent)
    time.sleep(8)     # tshark, then its dumpcap, start up
    for _ in range(2):
        assert subprocess.run(["swaks", "--server", f"127.0.0.1:{port}", "--to", "a@example.org",
                               "--from", "b@example.com", "--hide-all"], timeout=60).returncode == 0
    out, err = live.communicate(timeout=90)
    assert live.returncode == 0, err
    lines = [json.loads(x) for x in out.splitlines()]
    sessions, summary = lines[:-1], lines[-1]
    assert summary["inputs"][0]["capture_program"] == "tshark (pyshark)"
    assert [s["verdict"] for s in sessions] == ["ok", "ok"]
    assert all(s["smtp"]["messages"] == 1 for s in sessions)
    again = pushscan.analyze(str(written), ports=(port,))
    strip = lambda d: {k: v for k, v in d.items() if k != "file"}  # noqa: E731
    assert [strip(s) for s in again["sessions"]] == [strip(s) for s in sessions]


@pytest.mark.slow
def test_live_idle_timeout_and_count_on_loopback(loopback_smtp):
    """An idle connection is reported as 'timeout' while it is still open; --count stops
    the capture after exactly N packets."""
    import socket
    require("dumpcap")
    port = loopback_smtp
    common = ["-i", "lo", "--smtp-port", str(port), "--bpf", f"tcp port {port}", "--format", "jsonl"]
    live = subprocess.Popen([sys.executable, "-m", "pushscan", "live", *common, "--idle-timeout", "2",
                             "--duration", "20"], stdout=subprocess.PIPE, text=True, cwd=HERE.parent)
    time.sleep(2)
    client = socket.create_connection(("127.0.0.1", port))
    client.recv(1024)
    client.sendall(b"EHLO idle.example.com\r\n")
    client.recv(1024)
    first = json.loads(live.stdout.readline())          # comes while the client is idle
    still_open = client.fileno() != -1
    client.close()
    live.send_signal(signal.SIGTERM)
    live.communicate(timeout=30)
    assert still_open and first["close"] == "timeout"
    assert [c["verb"] for c in first["smtp"]["commands"]] == ["EHLO"]

    counted = subprocess.Popen([sys.executable, "-m", "pushscan", "live", *common, "--count", "10",
                                "--duration", "30"], stdout=subprocess.PIPE, text=True, cwd=HERE.parent)
    time.sleep(2)
    started = time.monotonic()
    for _ in range(3):
        subprocess.run(["swaks", "--server", f"127.0.0.1:{port}", "--to", "a@example.org", "--from",
                        "b@example.com", "--hide-all"], timeout=60)
    out, _ = counted.communicate(timeout=60)
    summary = json.loads(out.splitlines()[-1])
    assert summary["inputs"][0]["packets"] == 10
    assert time.monotonic() - started < 25                # stopped by the count, not the duration


# -- faults: the capture program never outlives pushscan, and its failures are said -------
def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:      # a zombie is dead, only not reaped yet
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _capture_tree(live: subprocess.Popen, prog: str, timeout: float = 20) -> tuple[int, int]:
    """(the guard, the capture program) under a running ``pushscan live``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for guard in _children(live.pid):
            for child in _children(guard):
                with open(f"/proc/{child}/comm") as f:
                    if f.read().strip() == prog:
                        return guard, child
        time.sleep(0.1)
    raise AssertionError(f"no {prog} under pushscan live")


def _start_live(*args: str, new_session: bool = False) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pushscan", "live", "-i", "lo", "--format", "jsonl", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=HERE.parent,
                            start_new_session=new_session)


def _gone(*pids: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not any(_alive(p) for p in pids)


def _refused_connection(port: int) -> None:
    """Two real packets on loopback: a SYN to a closed port, and the kernel's RST."""
    import socket
    with socket.socket() as s:
        try:
            s.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            pass


@pytest.fixture
def root_capture():
    if os.geteuid() != 0:
        pytest.skip("capturing needs root")


@pytest.mark.slow
@pytest.mark.parametrize("prog", ["dumpcap", "tcpdump"])
@pytest.mark.parametrize("how", ["pushscan killed", "its process group killed"])
def test_the_capture_program_dies_with_pushscan(root_capture, prog, how):
    require(prog)
    live = _start_live("--backend", prog, "--duration", "120", new_session=True)
    guard, capture = _capture_tree(live, prog)
    if how == "pushscan killed":
        live.kill()                                   # SIGKILL: no code of pushscan runs
    else:
        os.killpg(live.pid, signal.SIGKILL)           # what a CI runner's time-out does
    live.wait(timeout=10)
    assert _gone(guard, capture), f"{prog} outlived pushscan"


@pytest.mark.slow
@pytest.mark.parametrize("prog", ["dumpcap", "tcpdump"])
def test_a_capture_program_that_dies_is_said_and_what_it_saw_is_kept(root_capture, tmp_path, prog):
    require(prog)
    port = 40000 + os.getpid() % 20000
    written = tmp_path / "seen.pcap"
    live = _start_live("--backend", prog, "--bpf", f"tcp port {port}", "--smtp-port", str(port), "--all-tcp",
                       "--write", str(written), "--duration", "120")
    _, capture = _capture_tree(live, prog)
    time.sleep(1.5)                                   # it attached to the interface
    _refused_connection(port)
    time.sleep(1.5)                                   # the packets reached pushscan
    os.kill(capture, signal.SIGKILL)
    out, err = live.communicate(timeout=60)
    assert live.returncode == 4, err
    assert err.splitlines()[-1] == (f"pushscan: error: {prog} stopped unexpectedly (killed by SIGKILL); "
                                    "the 2 packets it captured were analysed")
    lines = [json.loads(x) for x in out.splitlines()]
    assert lines[0]["verdict"] == "peer_reset" and lines[-1]["summary"]["tcp_sessions"] == 1
    again = pushscan.analyze(str(written), all_tcp=True, ports=(port,))
    assert again["inputs"][0]["packets"] == 2 and os.listdir(tmp_path) == ["seen.pcap"]


@pytest.mark.parametrize("prog", ["dumpcap", "tcpdump"])
def test_an_invalid_filter_says_why(root_capture, prog):
    require(prog)
    r = subprocess.run([sys.executable, "-m", "pushscan", "live", "-i", "lo", "--backend", prog, "--bpf",
                        "tcp port smtpx", "--duration", "5"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr == f"pushscan: error: invalid capture filter 'tcp port smtpx': unknown port 'smtpx' ({prog})\n"


def test_write_where_it_cannot_be_written(root_capture, tmp_path):
    require("dumpcap")
    ro = tmp_path / "ro"
    ro.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", str(ro)], check=True)
    try:
        for where, why in ((tmp_path / "missing" / "x.pcapng", "No such file or directory"),
                           (ro / "x.pcapng", "Read-only file system (the report is written to a temporary "
                                             "file in its directory first)")):
            started = time.monotonic()
            r = subprocess.run([sys.executable, "-m", "pushscan", "live", "-i", "lo", "--duration", "30",
                                "--write", str(where)], capture_output=True, text=True, timeout=60)
            assert r.returncode == 5 and r.stderr == f"pushscan: error: cannot write {where}: {why}\n"
            assert time.monotonic() - started < 10     # said at once: no capture was started
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=True)


@pytest.mark.slow
def test_sighup_stops_live_cleanly(root_capture, tmp_path):
    require("dumpcap")
    written = tmp_path / "live.pcapng"
    live = _start_live("--duration", "120", "--write", str(written))
    guard, capture = _capture_tree(live, "dumpcap")
    time.sleep(1)
    live.send_signal(signal.SIGHUP)
    out, err = live.communicate(timeout=60)
    assert live.returncode == 0, err
    assert json.loads(out.splitlines()[-1])["inputs"][0]["capture_program"] == "dumpcap"
    assert written.exists() and _gone(guard, capture)
