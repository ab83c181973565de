"""The options every command shares: which files are one capture (--merge, --separate,
ring sets), what is reported (--host, --port, --session, --verdict), --smtp-port, --color."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ..conftest import CAPTURES, bench_capture, json_documents

RING = [str(CAPTURES / "rotated_00001.pcap"), str(CAPTURES / "rotated_00002.pcap")]
OK, RESET = str(CAPTURES / "smtp_ok.pcap"), str(CAPTURES / "smtp_unpushed_reset.pcap")


def pushscan(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pushscan", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


@pytest.fixture(scope="module")
def many(tmp_path_factory) -> str:
    return str(bench_capture(tmp_path_factory.mktemp("sel") / "many.pcap", 8_000))


@pytest.fixture(scope="module")
def everything(many) -> dict:
    r = pushscan("analyze", "--format", "json", "--all-tcp", many)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_unrelated_files_are_reported_alone_with_the_reason():
    r = pushscan("analyze", "--format", "json", RESET, *RING, OK)
    assert r.returncode == 0, r.stderr
    docs = json_documents(r.stdout)
    files = [[i["path"] for i in d["inputs"]] for d in docs]
    assert sorted(files) == sorted([[OK], [RESET], RING])
    firsts = [d["sessions"][0]["start"] if d["sessions"] else 0 for d in docs]
    assert firsts == sorted(firsts)                                    # in time order
    assert [d.get("capture") for d in docs if len(d["inputs"]) > 1] == [{"how": "ring set", "files": RING}]
    assert r.stderr == ("pushscan: note: 3 captures, each reported alone (files not named alike are "
                        "separate captures (the pieces of a ring set differ only in the number or date at the "
                        "end of their names)); --merge reads the files as one capture\n")


def test_merge_and_separate_decide():
    merged = json_documents(pushscan("analyze", "--format", "json", "--merge", OK, RESET).stdout)
    assert len(merged) == 1 and merged[0]["capture"] == {"how": "merged", "files": [OK, RESET]}
    assert merged[0]["inputs"][1]["first_frame"] == merged[0]["inputs"][0]["packets"] + 1
    apart = pushscan("analyze", "--format", "json", "--separate", *RING)
    assert [[i["path"] for i in d["inputs"]] for d in json_documents(apart.stdout)] == [[RING[0]], [RING[1]]]
    assert apart.stderr == ""
    both = pushscan("analyze", "--merge", "--separate", OK)
    assert both.returncode == 2 and both.stderr == "pushscan: error: --merge and --separate exclude each other\n"


def test_the_text_report_says_which_files_it_joined():
    r = pushscan("analyze", *RING)
    assert r.returncode == 0, r.stderr
    assert (f"{RING[0]} + {RING[1]}: one capture: consecutive in time, same link types (a ring set); "
            "frame numbers continue from file to file") in r.stdout.splitlines()


def test_narrowing_reports_exactly_the_matching_sessions(many, everything):
    sessions = everything["sessions"]
    flagged = next(s for s in sessions if s["verdict"] != "ok")
    port = flagged["client"]["port"]
    cases = [
        (["--port", str(port)], lambda s: port in (s["client"]["port"], s["server"]["port"])),
        (["--verdict", flagged["verdict"]], lambda s: s["verdict"] == flagged["verdict"]),
        (["--session", "3", "--session", "5"], lambda s: s["id"] in (3, 5)),
        (["--host", flagged["client"]["ip"] + "/32", "--verdict", flagged["verdict"]],
         lambda s: flagged["client"]["ip"] in (s["client"]["ip"], s["server"]["ip"])
         and s["verdict"] == flagged["verdict"]),
    ]
    for args, keep in cases:
        r = pushscan("analyze", "--format", "json", "--all-tcp", *args, many)
        assert r.returncode == 0, r.stderr
        doc = json.loads(r.stdout)
        want = [s for s in sessions if keep(s)]
        assert want and doc["sessions"] == want, args          # ids and frames of the whole run
        assert doc["summary"]["sessions"] == len(want)


def test_follow_picks_the_one_session_the_filters_leave(many, everything):
    sessions = everything["sessions"]
    ports = [s["client"]["port"] for s in sessions]
    unique = next(s for s in sessions if ports.count(s["client"]["port"]) == 1)
    by_port = pushscan("follow", "--all-tcp", "--port", str(unique["client"]["port"]), "--format", "json", many)
    by_id = pushscan("follow", "--all-tcp", "--session", str(unique["id"]), "--format", "json", many)
    assert by_port.returncode == 0, by_port.stderr
    assert json.loads(by_port.stdout) == json.loads(by_id.stdout)
    server_port = str(sessions[0]["server"]["port"])
    many_match = pushscan("follow", "--all-tcp", "--port", server_port, many)
    assert many_match.returncode == 2
    n = sum(server_port in (str(s["client"]["port"]), str(s["server"]["port"])) for s in sessions)
    assert many_match.stderr.startswith(f"pushscan: error: {n:,} sessions match: 0 (")
    assert many_match.stderr.rstrip().endswith("; ...; pick one with --session ID")
    neither = pushscan("follow", many)
    assert neither.returncode == 2 and "which session? give --session ID" in neither.stderr
    clash = pushscan("follow", "--session", "1", "--port", "25", many)
    assert clash.returncode == 2 and "--session names the session" in clash.stderr


def test_check_judges_a_ring_set_as_one_trace(tmp_path):
    junit = tmp_path / "j.xml"
    r = pushscan("check", *RING, OK, "--junit", str(junit))
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    assert sorted(lines[:2]) == [f"PASS {RING[0]} + {RING[1]} (2 sessions)", f"PASS {OK} (1 session)"]
    assert lines[-1].startswith("2 trace(s): 2 passed, 0 failed")
    assert f'name="{RING[0]} + {RING[1]}"' in junit.read_text()
    apart = pushscan("check", "--separate", *RING)
    assert apart.stdout.splitlines()[-1].startswith("2 trace(s)")


def test_check_judges_only_the_selected_sessions():
    failing = pushscan("check", RESET)
    assert failing.returncode == 1
    narrowed = pushscan("check", "--verdict", "ok", OK, RESET)
    assert narrowed.returncode == 3, narrowed.stdout      # a filter that leaves nothing is not green
    assert narrowed.stdout.splitlines()[:2] == [
        f"PASS {OK} (1 session)",
        f"ERROR {RESET}: no session matches --verdict ok (1 left out): nothing to judge"]


def test_smtp_port_and_the_policy_keys_old_name(tmp_path):
    other = str(CAPTURES / "tcp_other.pcap")
    plain = pushscan("analyze", "--format", "json", other)
    assert [s["server"]["port"] for s in json.loads(plain.stdout)["sessions"]] == [10025]  # banner + EHLO
    r = pushscan("analyze", "--format", "json", "--smtp-port", "8080", other)
    assert [s["server"]["port"] for s in json.loads(r.stdout)["sessions"]] == [8080, 10025]
    for key in ("smtp_ports", "ports"):          # `ports` is what policy files said before
        policy = tmp_path / f"{key}.toml"
        policy.write_text(f"{key} = [8080]\n")
        c = pushscan("check", "--policy", str(policy), other)
        assert c.returncode == 0 and c.stdout.startswith(f"PASS {other} (2 sessions)"), c.stdout


def test_color_always_and_never(tmp_path):
    always = pushscan("analyze", "--color", "always", RESET)
    never = pushscan("analyze", "--color", "never", RESET)
    auto = subprocess.run([sys.executable, "-m", "pushscan", "analyze", RESET], capture_output=True,
                          text=True, env=dict(os.environ, NO_COLOR="1"))
    assert "\x1b[" in always.stdout and "\x1b[" not in never.stdout and "\x1b[" not in auto.stdout
    assert never.stdout == auto.stdout
