"""pushscan check: policies, exit codes, baselines, JUnit and annotations."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pushscan
from pushscan.analysis import Options, captures
from pushscan.gate import expand_traces

from ..conftest import CAPTURES, TESTS

# The captures that are meant to show a problem, and a policy that says so.
POLICY = """
fail_on = "warning"

[overrides."captures/smtp_unpushed_*"]
fail_on = "none"
[overrides."captures/smtp_peer_reset.pcap"]
fail_on = "none"
[overrides."captures/smtp_refused.pcap"]
fail_on = "none"
[overrides."captures/smtp_no_answer.pcap"]
fail_on = "none"
[overrides."captures/smtp_retrans_loss.pcap"]
fail_on = "none"
[overrides."captures/smtp_conflict.pcap"]
fail_on = ["UNPUSHED_BEFORE_RESET", "PEER_RESET"]
[overrides."captures/smtp_bdat_auth.pcap"]
fail_on = "none"
[overrides."captures/real_*"]
fail_on = "none"
[overrides."captures/gen_*"]
fail_on = "none"
[overrides."captures/path_*"]
fail_on = "none"
"""


def traces(project: Path) -> int:
    """How many traces ``check captures`` finds in the project (a ring set is one)."""
    return len(captures(expand_traces([str(project / "captures")]), Options())[0])


def run(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pushscan", "check", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A CI checkout: traces under captures/, a policy file."""
    shutil.copytree(CAPTURES, tmp_path / "captures", ignore=shutil.ignore_patterns("*.py", "*.md"))
    (tmp_path / "policy.toml").write_text(POLICY)
    return tmp_path


def test_pass_and_fail_exit_codes():
    ok = run(str(CAPTURES / "smtp_ok.pcap"))
    assert ok.returncode == 0 and ok.stdout.startswith("PASS ")
    bad = run(str(CAPTURES / "smtp_ok.pcap"), str(CAPTURES / "smtp_unpushed_reset.pcap"))
    assert bad.returncode == 1
    assert "FAIL" in bad.stdout and "UNPUSHED_BEFORE_RESET (error)" in bad.stdout and "[frames 14,16]" in bad.stdout
    assert "2 trace(s): 1 passed, 1 failed" in bad.stdout


def test_directory_with_policy_and_overrides_passes(project):
    r = run("captures", "--policy", "policy.toml", cwd=project)
    assert r.returncode == 0, r.stdout
    n = traces(project)
    assert f"{n} trace(s): {n} passed, 0 failed (policy: policy.toml)" in r.stdout


def test_policy_from_pyproject(project):
    (project / "pyproject.toml").write_text("[tool.pushscan]\n" + POLICY.replace(
        "[overrides.", "[tool.pushscan.overrides."))
    assert run("captures", cwd=project).returncode == 0
    # without the override the push problem fails the run
    assert run("captures/smtp_unpushed_reset.pcap", "--policy", os.devnull, cwd=project).returncode == 1


def test_glob_and_cli_options_override_policy(project):
    r = run("captures/smtp_unpushed_t*.pcap", "--fail-on", "none", "--require-pushed-turns", cwd=project)
    assert r.returncode == 1 and "3 of 3 outgoing turns ended without PSH (require_pushed_turns)" in r.stdout
    r = run("captures/smtp_unpushed_turns.pcap", "--fail-on", "none", "--min-push-ratio", "0.5", cwd=project)
    assert r.returncode == 1 and "0 of 3 outgoing turns pushed (0.00), below min_push_ratio 0.5" in r.stdout
    r = run("captures/smtp_unpushed_turns.pcap", "--fail-on", "UNPUSHED_BEFORE_RESET", cwd=project)
    assert r.returncode == 0


@pytest.mark.parametrize("policy,message", [
    ("fail_on = 'errors'", "'fail_on': 'errors' is neither a severity"),
    ("require_pushed_turns = 'yes'", "'require_pushed_turns': expected true or false"),
    ("min_push_ratio = 2", "'min_push_ratio': expected a number from 0 to 1"),
    ("ports = [25, 'x']", "'ports': expected a list of TCP ports"),
    ("outgoing = 'both'", "'outgoing': expected 'client' or 'server'"),
    ("local = ['10.0.0.0/33']", "'local': '10.0.0.0/33' is not a network"),
    ("colour = true", "unknown key 'colour'"),
    ("[overrides.'x*']\nmin_push_ratio = -1", "'overrides.\"x*\".' 'min_push_ratio'"),
    ("fail_on = [", "policy file"),
])
def test_policy_errors_name_the_key(tmp_path, policy, message):
    f = tmp_path / "p.toml"
    f.write_text(policy)
    r = run(str(CAPTURES / "smtp_ok.pcap"), "--policy", str(f))
    assert r.returncode == 2, r.stdout
    assert message in r.stderr and "Traceback" not in r.stderr


def test_usage_errors():
    assert run(str(CAPTURES / "smtp_ok.pcap"), "--fail-on", "bogus").returncode == 2
    assert run("/no/such/*.pcap").returncode == 2
    assert run(str(CAPTURES / "smtp_ok.pcap"), "--policy", "/no/such.toml").returncode == 2


def test_unreadable_trace_is_exit_3(tmp_path):
    r = run(str(CAPTURES / "smtp_ok.pcap"), str(tmp_path / "gone.pcap"))
    assert r.returncode == 3 and "ERROR" in r.stdout and "no such file" in r.stdout


def test_baseline_round_trip_and_diff(project):
    r = run("captures", "--policy", "policy.toml", "--write-baseline", "base.json", cwd=project)
    assert r.returncode == 0
    base = json.loads((project / "base.json").read_text())
    assert base["schema"] == 1 and len(base["traces"]) == traces(project)
    assert run("captures", "--policy", "policy.toml", "--baseline", "base.json", cwd=project).returncode == 0
    # the recorded past differs: a verdict, a finding, a session
    t = base["traces"]["captures/smtp_unpushed_reset.pcap"]
    t[0]["verdict"] = "ok"
    t[0]["findings"] = []
    base["traces"]["captures/smtp_ok.pcap"].append({"id": 7, "client": "192.0.2.10:1", "server": "198.51.100.25:25",
                                                     "verdict": "ok", "findings": []})
    (project / "base.json").write_text(json.dumps(base))
    r = run("captures", "--policy", "policy.toml", "--baseline", "base.json", "--junit", "j.xml", cwd=project)
    assert r.returncode == 1
    assert "baseline: session 0: verdict changed ok -> push_problem" in r.stdout
    assert "baseline: session 0: new finding UNPUSHED_BEFORE_RESET" in r.stdout
    assert "baseline: session 7 (192.0.2.10:1 -> 198.51.100.25:25) missing" in r.stdout
    assert "BaselineDiff" in (project / "j.xml").read_text()


def test_junit_is_valid_and_carries_findings(tmp_path):
    lxml = pytest.importorskip("lxml.etree")
    out = tmp_path / "junit.xml"
    r = run(str(CAPTURES / "smtp_ok.pcap"), str(CAPTURES / "smtp_unpushed_reset.pcap"),
            str(tmp_path / "missing.pcap"), "--junit", str(out))
    assert r.returncode == 3
    schema = lxml.XMLSchema(lxml.parse(str(TESTS / "junit.xsd")))
    doc = lxml.parse(str(out))
    schema.assertValid(doc)
    root = doc.getroot()
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("3", "1", "1")
    failure = root.find(".//testsuite[@name='%s']/testcase/failure" % (CAPTURES / "smtp_unpushed_reset.pcap"))
    assert failure.get("type") == "UNPUSHED_BEFORE_RESET" and "[frames 14, 16]" in failure.text


def test_github_annotations():
    env = dict(os.environ, GITHUB_ACTIONS="true")
    r = run(str(CAPTURES / "smtp_unpushed_reset.pcap"), env=env)
    lines = [x for x in r.stdout.splitlines() if x.startswith("::error ")]
    assert len(lines) == 1
    assert lines[0].startswith(f"::error file={CAPTURES / 'smtp_unpushed_reset.pcap'},title=pushscan session 0")
    assert "UNPUSHED_BEFORE_RESET" in lines[0]


def test_python_api_from_pytest():
    results = pushscan.check([str(CAPTURES / "smtp_ok.pcap"), str(CAPTURES / "smtp_unpushed_turns.pcap")],
                             {"fail_on": "warning"})
    assert [r.passed for r in results] == [True, False]
    assert results[1].cases[0].failures[0][1] == [6]
    with pytest.raises(pushscan.UsageError):
        pushscan.check(str(CAPTURES / "smtp_ok.pcap"), {"min_push_ratio": "high"})


def test_parallel_check_gives_the_same_results(project):
    one = run("captures", "--policy", "policy.toml", cwd=project)
    two = run("captures", "--policy", "policy.toml", "-j", "2", cwd=project)
    assert one.returncode == two.returncode == 0 and one.stdout == two.stdout


# -- a gate that checks nothing, or cannot read what it checks, is never green -------------
def test_traces_without_packets_are_errors(tmp_path):
    ok = (CAPTURES / "smtp_ok.pcap").read_bytes()
    garbage_first = tmp_path / "garbage-first.pcap"
    garbage_first.write_bytes(ok[:24] + b"\xff" * 16 + ok[24:])
    empty = tmp_path / "no-packets.pcap"
    empty.write_bytes(ok[:24])
    r = run(str(CAPTURES / "smtp_ok.pcap"), str(garbage_first), str(empty), "--junit", str(tmp_path / "j.xml"))
    assert r.returncode == 3
    assert r.stdout.splitlines() == [
        f"PASS {CAPTURES / 'smtp_ok.pcap'} (1 session)",
        f"ERROR {garbage_first}: no packets could be read (record at byte 24 claims an impossible length)",
        f"ERROR {empty}: no packets could be read",
        "3 trace(s): 1 passed, 0 failed, 2 with errors (unreadable, no packets, or pushscan failed)"]
    junit = (tmp_path / "j.xml").read_text()
    assert junit.count('type="NoPackets"') == 2


def test_a_directory_without_captures_is_a_usage_error(tmp_path):
    (tmp_path / "notes.txt").write_text("no captures here")
    r = run(str(tmp_path))
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == (f"pushscan: error: {tmp_path}: no capture files in this directory (looked for *.pcap, "
                        "*.pcapng, *.cap, *.pcap.gz, *.pcapng.gz)\n")


def test_a_policy_that_is_not_utf8(tmp_path):
    f = tmp_path / "p.toml"
    f.write_bytes(b'fail_on = "warning"\n# caf\xe9\n')
    r = run(str(CAPTURES / "smtp_ok.pcap"), "--policy", str(f))
    assert r.returncode == 2
    assert r.stderr == f"pushscan: error: policy file {f}: not UTF-8 text (byte 25), as TOML must be\n"
    f.write_text("tool = 3\n")            # [tool] that is not a table
    assert run(str(CAPTURES / "smtp_ok.pcap"), "--policy", str(f)).returncode == 2


@pytest.mark.parametrize("content,message", [
    ('{"schema": 1, "traces": []}', "'traces' must map trace paths to their sessions"),
    ('{"schema": 1, "traces": {"a.pcap": {"id": 0}}}', "trace 'a.pcap': expected a list of sessions"),
    ('{"schema": 1, "traces": {"a.pcap": [3]}}', "trace 'a.pcap', session 0: expected id, client, server"),
    ('{"schema": 1, "traces": {"a.pcap": [{"id": "0", "client": "x", "server": "y", "verdict": "ok", '
     '"findings": []}]}}', "trace 'a.pcap', session 0: expected id (keys"),
    ('{"schema": 1, "traces": {"a.pcap": [{"id": 0, "client": "x", "server": "y", "verdict": "ok", '
     '"findings": [1]}]}}', "session 0: expected findings"),
    ('[1, 2]', "not a pushscan baseline (schema 1)"),
    ('{"schema": 1', "not JSON"),
    (b'\xff\xfe', "not UTF-8 text (byte 0)"),
])
def test_a_baseline_of_the_wrong_shape(tmp_path, content, message):
    f = tmp_path / "base.json"
    f.write_bytes(content if isinstance(content, bytes) else content.encode())
    r = run(str(CAPTURES / "smtp_ok.pcap"), "--baseline", str(f))
    assert r.returncode == 2 and r.stderr.startswith(f"pushscan: error: baseline {f}: ") and message in r.stderr, \
        r.stderr
    assert r.stderr.count("\n") == 1


def test_a_crashing_trace_is_an_error_case_and_the_gate_goes_on(tmp_path):
    """A trace whose analysis fails in pushscan itself (a bug) is reported as an error
    case with its traceback in the JUnit file; the other traces are still judged."""
    from pushscan.gate import Policy
    from pushscan.gate.check import check
    from pushscan.gate.junit import junit_xml

    class Broken(Policy):      # a policy whose per-trace view fails: a bug met on one trace
        def for_trace(self, path):
            if path.endswith("smtp_ok.pcap"):
                raise RuntimeError("boom")
            return super().for_trace(path)

    results = check([str(CAPTURES / "smtp_ok.pcap"), str(CAPTURES / "smtp_unpushed_reset.pcap")], Broken())
    assert [r.error_kind for r in results] == ["Crash", ""]
    assert results[0].error == f"{CAPTURES / 'smtp_ok.pcap'}: pushscan failed on this trace (RuntimeError: boom)"
    assert not results[1].passed and results[1].cases[0].failures
    xml = junit_xml(results).decode()
    assert 'type="Crash"' in xml and "Traceback" in xml and "UNPUSHED_BEFORE_RESET" in xml
