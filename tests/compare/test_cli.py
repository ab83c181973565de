"""``pushscan compare`` as a user runs it: the JSON contract, the text report, exit codes
and bad inputs."""
from __future__ import annotations

import json

import pytest

from ..conftest import CAPTURES, run_cli


def files(name: str) -> tuple[str, str]:
    return str(CAPTURES / f"path_{name}_near.pcap"), str(CAPTURES / f"path_{name}_far.pcap")


def compare_json(*args: str) -> dict:
    r = run_cli("compare", "--format", "json", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_json_contract():
    doc = compare_json(*files("injected_reset"))
    assert doc["schema"] == 1
    assert {"pairs", "unmatched", "inputs", "clock_offset_seconds", "summary"} <= set(doc)
    assert doc["unmatched"] == {"near": [], "far": []}
    assert [i["point"] for i in doc["inputs"]] == ["near", "far"]
    assert all(i["format"] == "pcap" and i["errors"] == [] for i in doc["inputs"])
    (pair,) = doc["pairs"]
    for point in ("near", "far"):
        s = pair[point]
        assert isinstance(s["id"], int)
        assert set(s["client"]) == set(s["server"]) == {"ip", "port"}
    assert {"findings", "verdict", "explanation", "remedy", "directions", "client_point"} <= set(pair)
    for f in pair["findings"]:
        assert {"code", "direction", "count", "near_frames", "far_frames", "message", "severity",
                "remedy"} <= set(f)
        assert f["direction"] in ("client_to_server", "server_to_client")
        assert all(isinstance(x, int) for x in f["near_frames"] + f["far_frames"])
    assert set(pair["directions"]) == {"client_to_server", "server_to_client"}
    assert doc["summary"] == {"pairs": 1, "by_verdict": {"middlebox_reset": 1},
                              "by_code": {"PATH_INJECTED_RESET": 1, "PATH_LOSS": 1},
                              "unmatched": {"near": 0, "far": 0}}


def test_text_shows_pairs_side_by_side():
    r = run_cli("compare", *files("psh_stripped"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"near: {files('psh_stripped')[0]}: pcap, 33 packets"
    assert lines[2] == "clock offset (far - near): +0.000000 s, from matched packets"
    assert any(x.endswith(": path_changed") and x.startswith("near #0 192.0.2.10:") and "  <->  far #0 " in x
               for x in lines)
    rows = [x.strip() for x in lines if "<->  far" in x and x.strip().startswith("near ") and "#" not in x]
    assert rows == [f"near {n:<7} <->  far {n}" for n in (6, 15, 17, 19, 25, 29)]
    assert any(x.strip().startswith("error   PATH_PSH_STRIPPED client_to_server: 6 client data segment(s)")
               for x in lines)
    assert any("remedy: A firewall or IPS between the points clears PSH" in x for x in lines)
    assert lines[-1] == "1 pair(s): path_changed 1; seen at one point only: near 0, far 0"


def test_text_one_sided_frames_and_nat():
    r = run_cli("compare", *files("loss"))
    assert "            near 21      <->  far (none)" in r.stdout.splitlines()
    r = run_cli("compare", *files("nat"))
    assert "translated between the points (NAT): client" in r.stdout
    assert r.stdout.splitlines()[-1] == "1 pair(s): clean 1; seen at one point only: near 0, far 0"


def test_output_file(tmp_path):
    out = tmp_path / "c.json"
    r = run_cli("compare", *files("clean"), "--format", "json", "-o", str(out))
    assert r.returncode == 0 and r.stdout == ""
    assert json.loads(out.read_text())["pairs"][0]["verdict"] == "clean"
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]


@pytest.mark.parametrize("which", [0, 1])
def test_unreadable_input_is_exit_3_with_one_line(tmp_path, which):
    args = list(files("clean"))
    args[which] = str(tmp_path / "gone.pcap")
    r = run_cli("compare", *args)
    assert r.returncode == 3 and r.stdout == ""
    assert r.stderr.splitlines() == [f"pushscan: error: {args[which]}: no such file"]
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a capture\n")
    r = run_cli("compare", str(text), files("clean")[1])
    assert r.returncode == 3 and len(r.stderr.splitlines()) == 1
    assert r.stderr.startswith(f"pushscan: error: {text}: not a pcap or pcapng capture")


def test_same_file_twice_says_so_and_pairs_everything_with_itself():
    near = files("psh_stripped")[0]
    r = run_cli("compare", near, near, "--format", "json")
    assert r.returncode == 0
    assert r.stderr.splitlines() == [f"pushscan: warning: NEAR and FAR are the same file ({near}): "
                                     "every session pairs with itself and nothing can differ"]
    (pair,) = json.loads(r.stdout)["pairs"]
    assert pair["findings"] == [] and pair["verdict"] == "clean"


def test_usage_errors():
    near, far = files("clean")
    assert run_cli("compare", near).returncode == 2
    r = run_cli("compare", "-", far)
    assert r.returncode == 2 and "not standard input" in r.stderr
    assert run_cli("compare", near, far, "--format", "xml").returncode == 2


def test_clock_offset_given():
    """A far clock 2 s ahead (the same files: the offset is what the user says)."""
    doc = compare_json(*files("clean"), "--clock-offset", "2")
    assert doc["clock_offset_seconds"] == 2 and doc["clock_offset_from"] == "given"
    assert doc["pairs"][0]["verdict"] == "clean"


def test_engines_agree():
    native = compare_json(*files("smtp_fixup"))
    scapy = compare_json(*files("smtp_fixup"), "--engine", "scapy")
    for doc in (native, scapy):
        doc.pop("engine")
        for i in doc["inputs"]:
            i.pop("engine")
            i.pop("link_types")
    assert native == scapy
