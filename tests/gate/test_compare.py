"""check over pairs of captures of one path: `--compare NEAR:FAR`, the policy's `compare`
key (a list, or a `[compare]` table with its own `fail_on`), failing when the path strips
PSH (by default: error findings), its errors, JUnit, baselines and the Python API."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from lxml import etree

import pushscan

from ..conftest import CAPTURES, TESTS

C = "captures"


def pair(name: str, root: str = C) -> str:
    return f"{root}/path_{name}_near.pcap:{root}/path_{name}_far.pcap"


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pushscan", "check", *args], capture_output=True,
                          text=True, cwd=cwd, timeout=300)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / C).mkdir()
    for p in CAPTURES.glob("path_*.pcap"):
        (tmp_path / C / p.name).write_bytes(p.read_bytes())
    (tmp_path / C / "smtp_ok.pcap").write_bytes((CAPTURES / "smtp_ok.pcap").read_bytes())
    return tmp_path


def test_compare_option_fails_when_the_path_strips_psh(project):
    r = run("--compare", pair("psh_stripped"), "--compare", pair("clean"), cwd=project)
    assert r.returncode == 1, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"FAIL {C}/path_psh_stripped_near.pcap <-> {C}/path_psh_stripped_far.pcap (1 pair)"
    assert "PATH_PSH_STRIPPED (error) client_to_server: 6 client data segment(s)" in lines[1]
    assert lines[1].endswith("[near frames 6,15,17,19,25,29; far frames 6,15,17,19,25,29]")
    assert lines[2] == f"PASS {C}/path_clean_near.pcap <-> {C}/path_clean_far.pcap (1 pair)"
    assert lines[-1] == "0 trace(s) and 2 compared pair(s) of captures: 1 passed, 1 failed"


@pytest.mark.parametrize("name,code", [("clean", 0), ("nat_seq_shift", 0), ("mss_clamped", 0),
                                       ("psh_added", 0), ("loss", 0), ("smtp_fixup", 0),
                                       ("psh_stripped", 1), ("injected_reset", 1)])
def test_default_fails_on_error_findings_only(project, name, code):
    assert run("--compare", pair(name), cwd=project).returncode == code


def test_traces_and_pairs_together_and_fail_on_options(project):
    r = run(f"{C}/smtp_ok.pcap", "--compare", pair("loss"), "--compare-fail-on", "PATH_LOSS", cwd=project)
    assert r.returncode == 1 and "PATH_LOSS (warning) client_to_server" in r.stdout
    assert r.stdout.splitlines()[-1] == "1 trace(s) and 1 compared pair(s) of captures: 1 passed, 1 failed"
    r = run("--compare", pair("psh_stripped"), "--compare-fail-on", "none", cwd=project)
    assert r.returncode == 0
    r = run("--compare", pair("mss_clamped"), "--compare-fail-on", "info", cwd=project)
    assert r.returncode == 1 and r.stdout.count("PATH_MSS_CLAMPED (info)") == 2


@pytest.mark.parametrize("policy", [
    f'compare = ["{pair("psh_stripped")}", "{pair("clean")}"]',
    f'compare = [["{C}/path_psh_stripped_near.pcap", "{C}/path_psh_stripped_far.pcap"]]',
    f'[compare]\npairs = ["{pair("psh_stripped")}"]',
    f'[compare]\npairs = ["{pair("psh_stripped")}", "{pair("loss")}"]\nfail_on = ["PATH_PSH_STRIPPED"]',
])
def test_policy_file_forms(project, policy):
    (project / "policy.toml").write_text(policy + "\n")
    r = run("--policy", "policy.toml", cwd=project)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "PATH_PSH_STRIPPED (error)" in r.stdout and "PATH_LOSS" not in r.stdout


def test_policy_in_pyproject_and_options_win(project):
    (project / "pyproject.toml").write_text(
        f'[tool.pushscan.compare]\npairs = ["{pair("loss")}"]\nfail_on = "warning"\n')
    assert run(cwd=project).returncode == 1
    assert run("--compare-fail-on", "error", cwd=project).returncode == 0
    assert run("--compare", pair("clean"), cwd=project).returncode == 0     # replaces the pairs


def test_no_session_at_both_points_fails(project):
    r = run("--compare", f"{C}/path_nat_near.pcap:{C}/path_smtp_fixup_far.pcap", cwd=project)
    assert r.returncode == 1
    assert "no session was seen at both points: nothing was compared" in r.stdout
    assert "warning: 1 session(s) seen at near only: #0" in r.stdout


@pytest.mark.parametrize("policy,message", [
    ("compare = 'a:b'", "'compare': expected a list"),
    ("compare = ['nocolon']", "'compare': 'nocolon' is neither \"NEAR:FAR\" nor [NEAR, FAR]"),
    ("compare = [['a']]", "is neither"),
    ("[compare]\npairs = []\ncolour = 1", "'compare.colour': unknown key"),
    ("[compare]\nfail_on = 'PATH_NOPE'", "'compare_fail_on': 'PATH_NOPE' is neither a severity"),
    ("compare_fail_on = 'UNPUSHED_TURN'", "'compare_fail_on': 'UNPUSHED_TURN' is neither"),
    ("[overrides.'x*']\ncompare = []", "an override applies to traces"),
])
def test_policy_errors_name_the_key(project, policy, message):
    (project / "p.toml").write_text(policy + "\n")
    r = run(f"{C}/smtp_ok.pcap", "--policy", "p.toml", cwd=project)
    assert r.returncode == 2, r.stdout
    assert message in r.stderr and "Traceback" not in r.stderr


def test_usage_and_input_errors(project):
    r = run(cwd=project)
    assert r.returncode == 2 and "nothing to check" in r.stderr
    assert run("--compare", "nocolon", cwd=project).returncode == 2
    r = run("--compare", f"{C}/gone.pcap:{C}/path_clean_far.pcap", cwd=project)
    assert r.returncode == 3
    assert r.stdout.splitlines()[0] == f"ERROR {C}/gone.pcap <-> {C}/path_clean_far.pcap: {C}/gone.pcap: no such file"


def test_junit_and_baseline(project):
    r = run(f"{C}/smtp_ok.pcap", "--compare", pair("psh_stripped"), "--junit", "j.xml",
            "--write-baseline", "b.json", cwd=project)
    assert r.returncode == 1
    doc = etree.parse(str(project / "j.xml"))
    etree.XMLSchema(etree.parse(str(TESTS / "junit.xsd"))).assertValid(doc)
    suite = doc.find(f"testsuite[@name='{C}/path_psh_stripped_near.pcap <-> {C}/path_psh_stripped_far.pcap']")
    assert suite is not None and suite.get("failures") == "1"
    assert "PATH_PSH_STRIPPED" in suite.find("testcase/failure").get("message")
    import json
    base = json.loads((project / "b.json").read_text())
    assert list(base["traces"]) == [f"{C}/smtp_ok.pcap"]          # baselines cover traces only
    r = run(f"{C}/smtp_ok.pcap", "--compare", pair("clean"), "--baseline", "b.json", cwd=project)
    assert r.returncode == 0, r.stdout


def test_python_api(project):
    cwd = os.getcwd()
    os.chdir(project)
    try:
        results = pushscan.check([], {"compare": [pair("psh_stripped"), pair("clean")]})
    finally:
        os.chdir(cwd)
    assert [r.passed for r in results] == [False, True]
    assert [r.kind for r in results] == ["compare", "compare"]
    assert results[0].cases[0].failures[0][0].startswith("PATH_PSH_STRIPPED (error)")
    assert results[0].report["pairs"][0]["verdict"] == "path_changed"


def test_github_annotations_point_at_the_near_file(project):
    env = dict(os.environ, GITHUB_ACTIONS="true")
    r = subprocess.run([sys.executable, "-m", "pushscan", "check", "--compare", pair("psh_stripped")],
                       capture_output=True, text=True, cwd=project, env=env, timeout=300)
    notes = [x for x in r.stdout.splitlines() if x.startswith("::error ")]
    assert len(notes) == 1
    assert notes[0].startswith(f"::error file={C}/path_psh_stripped_near.pcap,title=pushscan near #0 ")
