"""Outputs never destroy anything: an output naming an input is refused, devices and
FIFOs are written in place, and every write error (a full disk, a read-only file system,
a closed standard output) is one line, exit code 5, and no partial file."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from ..conftest import CAPTURES

OK = CAPTURES / "smtp_ok.pcap"
BAD = CAPTURES / "smtp_unpushed_reset.pcap"


def pushscan(*args: str, cwd: Path | None = None, **kw) -> subprocess.CompletedProcess[str]:
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    r = subprocess.run([sys.executable, "-m", "pushscan", *args], text=True, timeout=300, cwd=cwd, **kw)
    assert "Traceback" not in r.stderr, r.stderr
    return r


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    f = tmp_path / "in.pcap"
    f.write_bytes(BAD.read_bytes())
    return f


def same_file_message(option: str, named: str, input_: str) -> str:
    return (f"pushscan: error: {option} {named} is the input {input_} (the same file): pushscan never "
            "writes over its inputs\n")


@pytest.mark.parametrize("command,option", [
    (["analyze"], "-o"), (["analyze", "--format", "json"], "-o"), (["report"], "-o"),
    (["plot", "--session", "0"], "-o"), (["check"], "--junit"), (["check"], "--write-baseline")])
@pytest.mark.parametrize("how", ["itself", "relative", "symlink", "hard link"])
def test_an_output_naming_an_input_is_refused(tmp_path, capture, command, option, how):
    target = capture
    if command[0] == "plot":                       # plot writes .png or .svg only
        target = tmp_path / "in.png"
        target.write_bytes(b"not a graph")
    named = {"itself": str(target), "relative": f"./{target.name}",
             "symlink": str(tmp_path / f"link{target.suffix}"),
             "hard link": str(tmp_path / f"hard{target.suffix}")}[how]
    if how == "symlink":
        os.symlink(target.name, named)
    elif how == "hard link":
        os.link(target, named)
    before = capture.read_bytes(), target.read_bytes()
    inputs = [str(capture)] if target == capture else [str(capture), str(target)]
    r = pushscan(*command, *inputs, option, named, cwd=tmp_path)
    assert r.returncode == 2
    assert r.stderr == same_file_message(option, named, str(target))
    assert (capture.read_bytes(), target.read_bytes()) == before
    assert not list(tmp_path.glob("*.tmp"))


def test_standard_output_appended_to_an_input_is_refused(capture):
    r = subprocess.run(f"{sys.executable} -m pushscan analyze {capture} >> {capture}", shell=True,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and r.stderr == (f"pushscan: error: standard output is the input {capture} "
                                              "(the same file): pushscan never writes over its inputs\n")
    assert capture.read_bytes() == BAD.read_bytes()


def test_the_policy_and_the_baseline_are_inputs_too(tmp_path, capture):
    policy = tmp_path / "policy.toml"
    policy.write_text('fail_on = "none"\n')
    assert pushscan("check", str(capture), "--policy", str(policy), "--junit", str(policy)).returncode == 2
    assert policy.read_text() == 'fail_on = "none"\n'
    base = tmp_path / "base.json"
    assert pushscan("check", str(capture), "--write-baseline", str(base), "--fail-on", "none").returncode == 0
    r = pushscan("check", str(capture), "--baseline", str(base), "--write-baseline", str(base))
    assert r.returncode == 2 and "--write-baseline" in r.stderr and json.loads(base.read_text())["schema"] == 1
    for name in ("new", "old"):          # one output over the other: a new name, or a file there
        if name == "old":
            (tmp_path / name).write_text("")
        r = pushscan("check", str(capture), "--junit", str(tmp_path / name), "--write-baseline",
                     f"{tmp_path}/./{name}")
        assert r.returncode == 2 and r.stderr == (f"pushscan: error: --write-baseline {tmp_path}/./{name} "
                                                  f"and --junit {tmp_path / name} are the same file\n")


@pytest.mark.skipif(os.geteuid() != 0, reason="replacing /dev/null needs root: the test is that it does not")
def test_dev_null_stays_a_device():
    before = os.stat("/dev/null")
    r = pushscan("analyze", str(OK), "-o", "/dev/null")
    assert r.returncode == 0 and r.stderr == ""
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)
    assert not [p for p in os.listdir("/dev") if p.startswith("null.") and p.endswith(".tmp")]


def test_a_fifo_output_is_written_in_place(tmp_path):
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    r = pushscan("analyze", "--format", "json", str(OK), "-o", str(fifo))
    reader.join(timeout=60)
    assert r.returncode == 0 and json.loads(got[0])["summary"]["sessions"] == 1
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and os.listdir(tmp_path) == ["report.fifo"]


def test_a_fifo_output_nobody_reads_is_waited_for_then_given_up(tmp_path):
    fifo = tmp_path / "report.fifo"
    os.mkfifo(fifo)
    r = pushscan("analyze", str(OK), "-o", str(fifo), env=dict(os.environ, PUSHSCAN_FIFO_TIMEOUT="2"))
    assert r.returncode == 5
    assert r.stderr == (f"pushscan: {fifo}: waiting for up to 2 s (PUSHSCAN_FIFO_TIMEOUT) for a program to "
                        f"open this FIFO for reading\npushscan: error: cannot write {fifo}: no program opened "
                        "this FIFO for reading within 2 s\n")


def test_replacing_a_file_keeps_its_mode_and_its_symlink(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old")
    real.chmod(0o640)
    link = tmp_path / "report.json"
    link.symlink_to(real.name)
    r = pushscan("analyze", "--format", "json", str(OK), "-o", str(link))
    assert r.returncode == 0
    assert link.is_symlink() and json.loads(real.read_text())["summary"]["sessions"] == 1
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["real.json", "report.json"]


def test_standard_output_on_a_full_device():
    with open("/dev/full", "w") as full:
        for args in (["analyze", "--format", "json", str(OK)], ["analyze", str(OK)],
                     ["analyze", "--format", "jsonl", str(OK)], ["check", str(OK)],
                     ["follow", str(OK), "--session", "0"]):
            r = pushscan(*args, stdout=full, stderr=subprocess.PIPE)
            assert r.returncode == 5, args
            assert r.stderr == "pushscan: error: cannot write standard output: No space left on device\n", args
    r = pushscan("analyze", str(OK), "-o", "/dev/full")
    assert r.returncode == 5 and r.stderr == "pushscan: error: cannot write /dev/full: No space left on device\n"


@pytest.fixture
def tiny_disk(tmp_path: Path):
    """A real file system of 64 KB (tmpfs), mounted for the test and removed after it."""
    if os.geteuid() != 0:
        pytest.skip("mounting a file system needs root")
    where = tmp_path / "disk"
    where.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=True)


def test_a_full_disk_leaves_no_partial_file(tiny_disk, tmp_path):
    """Each output, on a disk too small for it: one line, exit 5, nothing left behind; a
    file that was there stays as it was."""
    big = tmp_path / "big.pcap"
    sys.path.insert(0, str(CAPTURES.parent / "bench"))
    import generate
    with open(big, "wb") as out:
        generate.refused_sessions(out, 3000)      # a report of a few MB
    kept = tiny_disk / "kept.json"
    kept.write_text("the old report")
    cases = [(["analyze", "--format", "json", str(big), "-o"], "out.json"),
             (["analyze", str(big), "-o"], "out.txt"),
             (["analyze", "--format", "json", str(big), "-o"], "kept.json"),
             (["check", "--fail-on", "none", str(big), "--junit"], "junit.xml"),
             (["report", str(big), "-o"], "report.html")]
    for args, name in cases:
        r = pushscan(*args, str(tiny_disk / name))
        assert r.returncode == 5, (args, r.stderr)
        assert r.stderr.splitlines()[-1] == f"pushscan: error: cannot write {tiny_disk / name}: " \
                                            "No space left on device", r.stderr
        assert sorted(os.listdir(tiny_disk)) == ["kept.json"], os.listdir(tiny_disk)
    assert kept.read_text() == "the old report"


def test_a_read_only_file_system(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a file system needs root")
    ro = tmp_path / "ro"
    ro.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,ro", "tmpfs", str(ro)], check=True)
    try:
        r = pushscan("analyze", str(OK), "-o", str(ro / "x.txt"))
        assert r.returncode == 5 and r.stderr == (f"pushscan: error: cannot write {ro / 'x.txt'}: Read-only "
                                                  "file system (the report is written to a temporary file "
                                                  "in its directory first)\n")
    finally:
        subprocess.run(["umount", "-l", str(ro)], check=True)


def test_a_missing_directory_is_said_before_any_work(tmp_path):
    for args in (["analyze", str(OK), "-o"], ["report", str(OK), "-o"], ["check", str(OK), "--junit"]):
        r = pushscan(*args, "/nonexistent/dir/out.x")
        assert r.returncode == 5
        assert r.stderr == "pushscan: error: cannot write /nonexistent/dir/out.x: No such file or directory\n"
        assert r.stdout == ""          # check said nothing of the traces: it did not start
