from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
CAPTURES = ROOT / "captures"
ALL_CAPTURES = sorted(p for p in CAPTURES.iterdir()
                      if p.name.endswith((".pcap", ".pcapng", ".pcap.gz")))


def bench_capture(path: Path, packets: int, seed: int = 1) -> Path:
    """A capture from bench/generate.py (SMTP sessions, bodies, retransmissions, resets)."""
    sys.path.insert(0, str(ROOT / "bench"))
    import generate

    with open(path, "wb") as out:
        generate.generate(out, packets, seed=seed)
    return path


def run_cli(*args: str, stdin: bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``python -m pushscan ARGS`` as a user would; text output."""
    return subprocess.run([sys.executable, "-m", "pushscan", *args], input=stdin.decode("latin-1") if stdin else None,
                          capture_output=True, text=True, timeout=timeout)


def analyze_json(*args: str) -> dict[str, Any]:
    r = run_cli("analyze", "--format", "json", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def json_documents(text: str) -> list[dict[str, Any]]:
    """Every JSON document in ``text``: ``analyze`` writes one per capture, one after
    the other, when the files named are separate captures."""
    docs, decoder, rest = [], json.JSONDecoder(), text.lstrip()
    while rest:
        doc, end = decoder.raw_decode(rest)
        docs.append(doc)
        rest = rest[end:].lstrip()
    return docs


@pytest.fixture
def captures() -> Path:
    return CAPTURES


def require(tool: str) -> str:
    """Path of an external program the test needs. Missing: skipped on a developer's
    machine, a failure in CI (where .ci/run installs it)."""
    import os
    import shutil

    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is not installed; .ci/run must install it")
        pytest.skip(f"{tool} not installed")
    return path
