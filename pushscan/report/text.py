"""Text rendering of a report: the inputs, a line per session (a table when it fits the
terminal, a block per session when it does not), each session's findings, the summary.
Plain text in linear time, wrapped and coloured as ``terminal.Terminal`` decides."""
from __future__ import annotations

from typing import Any, Optional, TextIO

from .terminal import Terminal

SEV_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}
VERDICT_STYLE = {"ok": "green", "push_problem": "bold red", "incomplete": "dim",
                 "network_loss": "magenta", "local_timeout": "yellow", "smtp_refused": "yellow"}
FAILED_STYLE = "red"          # every other verdict: the session failed
FINDINGS_SHOWN = 20           # per session; JSON has them all
COLUMNS = ("id", "client", "server", "proto", "frames", "close", "PSH c>s", "PSH s>c",
           "pushed turns out", "verdict")
GAP = "  "

# ``inputs[].decode`` counts, as the text says why a capture gave no session
SKIPPED = (("not_ip", "not IP (ARP, other ethertypes, link-layer control)"),
           ("not_tcp", "IP but not TCP (UDP, ICMP other than errors about TCP, ...)"),
           ("fragments", "IP fragments (pushscan does not reassemble them)"),
           ("malformed", "TCP headers too short or damaged"),
           ("unsupported_link_type", "of a link type pushscan does not decode"),
           ("wlan_control", "802.11 management or control frames, not data"),
           ("wlan_protected", "802.11 data frames encrypted (WEP/WPA): nothing to read"),
           ("icmp_errors", "ICMP errors about TCP"))


def verdict_style(verdict: str) -> str:
    return VERDICT_STYLE.get(verdict, FAILED_STYLE)


def endpoint_text(e: dict[str, Any]) -> str:
    """``ip:port``, or ``[ipv6]:port``."""
    ip = e["ip"]
    return f"[{ip}]:{e['port']}" if ":" in ip else f"{ip}:{e['port']}"


def _pushed(d: dict[str, Any]) -> str:
    return f"{d['psh_segments']}/{d['data_segments']}"


def _turns(d: dict[str, Any]) -> str:
    return f"{d['turns'] - d['turns_unpushed']}/{d['turns']}"


def _row(s: dict[str, Any]) -> tuple[str, ...]:
    dirs = s["directions"]
    return (str(s["id"]), endpoint_text(s["client"]), endpoint_text(s["server"]), s["protocol"],
            f"{s['first_frame']}-{s['last_frame']}", s["close"],
            _pushed(dirs["client_to_server"]), _pushed(dirs["server_to_client"]),
            _turns(dirs[s["outgoing"]]), s["verdict"])


def _table(term: Terminal, sessions: list[dict[str, Any]]) -> None:
    """Aligned columns if they fit the terminal (or always, to a file); else one block
    of two lines per session, so that no address is cut."""
    rows = [_row(s) for s in sessions]
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(COLUMNS)]
    if term.width is not None and sum(widths) + len(GAP) * (len(widths) - 1) > term.width:
        for s, r in zip(sessions, rows):
            verdict = term.style(r[9], verdict_style(r[9]))
            term.line(f"#{r[0]}  {r[1]} -> {r[2]}  {r[3]}  {r[9]}",
                      styled=f"#{r[0]}  {r[1]} -> {r[2]}  {r[3]}  {verdict}")
            term.line(f"frames {r[4]}, close {r[5]}, PSH c>s {r[6]}, PSH s>c {r[7]}, "
                      f"pushed turns out {r[8]}", indent="    ")
        return
    last = len(COLUMNS) - 1
    head = GAP.join(c.ljust(w) if i < last else c for i, (c, w) in enumerate(zip(COLUMNS, widths)))
    term.raw(term.style(head, "bold") + "\n")
    for r in rows:
        cells = [v.ljust(w) for v, w in zip(r[:last], widths)]
        term.raw(GAP.join(cells + [term.style(r[last], verdict_style(r[last]))]) + "\n")


def no_session_reason(report: dict[str, Any]) -> list[str]:
    """Why a report has no session to show, in words (one line per input)."""
    tcp = report["summary"]["tcp_sessions"]
    selected = report["summary"].get("selected")
    if selected and selected["left_out"]:
        filters = ", ".join(f"--{k.rstrip('s')} {' '.join(map(str, v))}" for k, v in selected["filters"].items())
        return [f"no session matches {filters} ({selected['left_out']:,} left out)"]
    if tcp:
        return [f"no SMTP sessions found ({tcp} other TCP session{'s' if tcp != 1 else ''}; "
                "--all-tcp shows them)"]
    lines = []
    for inp in report["inputs"]:
        if inp.get("decode") is None:
            continue
        dec = inp["decode"]
        parts = []
        for key, what in SKIPPED:
            n = dec.get(key, 0)
            if n:
                extra = f" ({', '.join(inp['link_types'])})" if key == "unsupported_link_type" else ""
                parts.append(f"{n:,} {what}{extra}")
        packets = inp["packets"]
        lines.append(f"no TCP session in {inp['path']}: {packets:,} frame{'s' if packets != 1 else ''}"
                     + (": " + "; ".join(parts) if parts else ""))
    return lines or ["no TCP session found"]


def _tunnel_note(t: Optional[dict[str, Any]]) -> Optional[str]:
    if t is None:
        return None
    text = f"came through {t['kind']}"
    if t["outer"]:
        text += f" between {t['outer']['src']} and {t['outer']['dst']}"
    if t["id"] is not None:
        text += f", id {t['id']}"
    return text + " (its inner hosts are shown)"


def _tunnels(term: Terminal, sessions: list[dict[str, Any]], most: int = 10) -> None:
    """One line per tunnel the listed sessions came through, with how many."""
    seen: dict[str, int] = {}
    for s in sessions:
        note = _tunnel_note(s.get("tunnel"))
        if note is not None:
            seen[note] = seen.get(note, 0) + 1
    for note, n in list(seen.items())[:most]:
        term.line(f"{n:,} session{'s' if n != 1 else ''} {note}", hang="    ")
    if len(seen) > most:
        term.line(f"... and {len(seen) - most} more tunnels (see tunnel in --format json)")


def _session(term: Terminal, s: dict[str, Any]) -> None:
    head = f"session {s['id']} {endpoint_text(s['client'])} -> {endpoint_text(s['server'])}: "
    term.line()
    term.line(head + s["verdict"], styled=term.style(head, "bold")
              + term.style(s["verdict"], verdict_style(s["verdict"])))
    for f in s["findings"][:FINDINGS_SHOWN]:
        frames = _frames(f["frames"], f.get("frame_count", 0))
        sev = f"{f['severity']:7}"
        text = f"{sev} {f['code']}: {f['message']}" + (f" (frames {frames})" if frames else "")
        term.line(text, indent="  ", hang="          ",
                  styled=term.style(sev, SEV_STYLE[f["severity"]]) + text[len(sev):])
    if len(s["findings"]) > FINDINGS_SHOWN:
        term.line(f"... and {len(s['findings']) - FINDINGS_SHOWN} more findings (see --format json)",
                  indent="  ")
    tunnel = _tunnel_note(s.get("tunnel"))
    for n in ([tunnel] if tunnel else []) + s["notes"]:
        term.line(f"note: {n}", indent="  ", hang="      ")
    if s["remedy"]:
        term.line(f"remedy: {s['remedy']}", indent="  ", hang="        ",
                  styled=term.style("remedy:", "bold") + f" {s['remedy']}")


def _summary(term: Terminal, summ: dict[str, Any]) -> None:
    verdicts = ", ".join(f"{k} {v:,}" for k, v in summ["by_verdict"].items())
    term.line()
    term.line(f"{summ['sessions']:,} session(s)" + (f": {verdicts}" if verdicts else ""))
    codes = summ.get("by_code") or {}
    if codes:
        term.line("findings: " + ", ".join(f"{k} {v:,}" for k, v in codes.items()), hang="  ")


def render_text(report: dict[str, Any], out: TextIO, color: bool, omitted_ok: int = 0,
                width: Optional[int] = None, omitted: Optional[dict[str, int]] = None) -> None:
    """Write the human-readable report to ``out`` (``width``: the terminal's, or None for
    a file or pipe: nothing wraps). ``omitted_ok``: sessions with verdict ok left out of
    the listing; ``omitted``: other sessions left out past the first ones listed, by
    verdict (a flood of failures)."""
    term = Terminal(out, color, width)
    for inp in report["inputs"]:
        errs = "; ".join(inp["errors"])
        line = (f"{inp['path']}: {inp['format'] or '?'}, {', '.join(inp['link_types']) or '-'}, "
                f"{inp['packets']:,} packets")
        term.line(line + (f" (error: {errs})" if errs else ""), hang="    ",
                  styled=term.style(inp["path"], "bold") + line[len(inp["path"]):]
                  + (term.style(f" (error: {errs})", "red") if errs else ""))
    joined = report.get("joined")
    if joined:
        term.line(joined, hang="    ")
    sessions = report["sessions"]
    if omitted_ok:
        term.line(f"{omitted_ok:,} sessions with verdict ok are not listed "
                  "(--format json or jsonl lists every session)")
    if not sessions and not omitted_ok:
        for line in no_session_reason(report):
            term.line(line, hang="    ")
    elif sessions:
        _table(term, sessions)
        _tunnels(term, sessions)
    for s in sessions:
        if s["findings"] or s["notes"]:
            _session(term, s)
    _summary(term, report["summary"])
    if omitted:
        verdicts = ", ".join(f"{k} {v:,}" for k, v in sorted(omitted.items(), key=lambda x: -x[1]))
        term.line(f"{sum(omitted.values()):,} more session(s) not listed (the first {len(sessions):,} "
                  f"that did not end ok are; not listed: {verdicts}); --format json or jsonl lists "
                  "every session", hang="    ")


def _frames(frames: list[int], count: int = 0, most: int = 12) -> str:
    """A finding's frames: all of them, or the first ``most`` and how many there are
    (``count``, when the finding lists only the first ones it kept)."""
    total = max(count, len(frames))
    if total <= most and len(frames) == total:
        return ",".join(map(str, frames))
    return ",".join(map(str, frames[:most])) + f",... ({total:,} frames)"
