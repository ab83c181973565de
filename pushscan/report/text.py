"""Text rendering of a report (rich): a per-session table and the findings."""
from __future__ import annotations

from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

SEV_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
VERDICT_STYLE = {"ok": "green", "push_problem": "bold red", "incomplete": "dim",
                 "network_loss": "magenta", "local_timeout": "yellow", "smtp_refused": "yellow"}
FAILED_STYLE = "red"          # every other verdict: the session failed


def verdict_style(verdict: str) -> str:
    return VERDICT_STYLE.get(verdict, FAILED_STYLE)


def _pushed(d: dict[str, Any]) -> str:
    return f"{d['psh_segments']}/{d['data_segments']}"


def _turns(d: dict[str, Any]) -> str:
    return f"{d['turns'] - d['turns_unpushed']}/{d['turns']}"


def render_text(report: dict[str, Any], out: TextIO, color: bool, omitted_ok: int = 0) -> None:
    """Write the human-readable report to ``out``."""
    con = Console(file=out, force_terminal=color, no_color=not color, width=None if color else 140,
                  highlight=False, soft_wrap=False)
    for inp in report["inputs"]:
        errs = "; ".join(inp["errors"])
        con.print(f"[bold]{inp['path']}[/]: {inp['format'] or '?'}, "
                  f"{', '.join(inp['link_types']) or '-'}, {inp['packets']} packets"
                  + (f" [red](error: {errs})[/]" if errs else ""))
    sessions = report["sessions"]
    if omitted_ok:
        con.print(f"{omitted_ok} sessions with verdict ok are not listed "
                  "(--format json or jsonl lists every session)")
    if not sessions and not omitted_ok:
        con.print("no SMTP sessions found" + ("" if report["summary"]["tcp_sessions"] == 0 else
                  f" ({report['summary']['tcp_sessions']} other TCP sessions; --all-tcp shows them)"))
    else:
        t = Table(title=None, show_lines=False, header_style="bold")
        for col in ("id", "client", "server", "proto", "frames", "close", "PSH c>s", "PSH s>c",
                    "pushed turns out", "verdict"):
            t.add_column(col, no_wrap=True)
        for s in sessions:
            c2s = s["directions"]["client_to_server"]
            s2c = s["directions"]["server_to_client"]
            out_d = s["directions"][s["outgoing"]]
            t.add_row(str(s["id"]), f"{s['client']['ip']}:{s['client']['port']}",
                      f"{s['server']['ip']}:{s['server']['port']}", s["protocol"],
                      f"{s['first_frame']}-{s['last_frame']}", s["close"],
                      _pushed(c2s), _pushed(s2c), _turns(out_d),
                      f"[{verdict_style(s['verdict'])}]{s['verdict']}[/]")
        con.print(t)
    for s in sessions:
        shown = s["findings"]
        if not shown and not s["notes"]:
            continue
        con.print(f"\n[bold]session {s['id']}[/] {s['client']['ip']}:{s['client']['port']} -> "
                  f"{s['server']['ip']}:{s['server']['port']}: "
                  f"[{verdict_style(s['verdict'])}]{s['verdict']}[/]")
        for f in shown[:20]:
            frames = _frames(f["frames"])
            con.print(f"  [{SEV_STYLE[f['severity']]}]{f['severity']:7}[/] {f['code']}: "
                      f"{f['message']}" + (f" (frames {frames})" if frames else ""))
        if len(shown) > 20:
            con.print(f"  ... and {len(shown) - 20} more findings (see --format json)")
        for n in s["notes"]:
            con.print(f"  note: {n}")
        if s["remedy"]:
            con.print(f"  [bold]remedy:[/] {s['remedy']}")
    summ = report["summary"]
    verdicts = ", ".join(f"{k} {v}" for k, v in summ["by_verdict"].items()) or "none"
    con.print(f"\n{summ['sessions']} session(s): {verdicts}")


def _frames(frames: list[int], most: int = 12) -> str:
    if len(frames) <= most:
        return ",".join(map(str, frames))
    return ",".join(map(str, frames[:most])) + f",... ({len(frames)} frames)"
