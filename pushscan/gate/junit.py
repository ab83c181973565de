"""JUnit XML and GitHub Actions annotations for ``pushscan check`` results."""
from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TextIO

from .check import TraceResult


def junit_xml(results: list[TraceResult]) -> bytes:
    """A testsuite per trace, a testcase per session (and per trace-level rule); failures
    carry the finding messages and frame numbers."""
    root = ET.Element("testsuites", name="pushscan")
    total = failed = errors = 0
    for r in results:
        suite = ET.SubElement(root, "testsuite", name=r.path)
        n = f = e = 0
        if r.error is not None:
            case = ET.SubElement(suite, "testcase", classname=r.path, name="read capture", time="0")
            ET.SubElement(case, "error", message=r.error, type=r.error_kind or "UnreadableInput").text = \
                r.error + ("\n\n" + r.error_detail if r.error_detail else "")
            n, e = 1, 1
        for c in r.cases:
            n += 1
            case = ET.SubElement(suite, "testcase", classname=r.path, name=c.name, time="0")
            if c.failures:
                f += 1
                body = "\n".join(msg + (f" [frames {', '.join(map(str, frames))}]" if frames else "")
                                 for msg, frames in c.failures)
                first = c.failures[0][0]
                ET.SubElement(case, "failure", message=first, type=first.split(" ", 1)[0]).text = body
        if r.baseline_diff:
            n += 1
            f += 1
            case = ET.SubElement(suite, "testcase", classname=r.path, name="baseline", time="0")
            ET.SubElement(case, "failure", message=f"differs from the baseline: {r.baseline_diff[0]}",
                          type="BaselineDiff").text = "\n".join(r.baseline_diff)
        if r.warnings:
            ET.SubElement(suite, "system-err").text = "\n".join(r.warnings)
        suite.set("tests", str(n))
        suite.set("failures", str(f))
        suite.set("errors", str(e))
        suite.set("skipped", "0")
        suite.set("time", "0")
        total, failed, errors = total + n, failed + f, errors + e
    root.set("tests", str(total))
    root.set("failures", str(failed))
    root.set("errors", str(errors))
    ET.indent(root)
    return bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github_annotations(results: list[TraceResult], out: TextIO) -> None:
    """Workflow commands that GitHub Actions shows as annotations on the run (a pair of
    captures on its NEAR file)."""
    for r in results:
        # a pair of captures on its NEAR file, a ring set on its first piece
        path = r.path.partition(" <-> ")[0] if r.kind == "compare" else r.path.partition(" + ")[0]
        if r.error is not None:
            out.write(f"::error file={path},title=pushscan: trace not checked::{_escape(r.error)}\n")
        for c in r.cases:
            for msg, _frames in c.failures:
                out.write(f"::error file={path},title=pushscan {c.name}::{_escape(msg)}\n")
        for line in r.baseline_diff:
            out.write(f"::error file={path},title=pushscan baseline::{_escape(line)}\n")
