"""Evidence for people: a session's dialogue in time order (``follow``), its
time-sequence graph (``plot``), and a self-contained HTML report (``report``).

All three are built from one traced analysis: the tracker records every packet of the
sessions asked for (``Session.trace``), and these functions only read it.
"""
from __future__ import annotations

import html
import io
from dataclasses import dataclass, field
from typing import Any, Optional

from .analysis import Analysis, Options, time_order
from .errors import UsageError
from .findings import NS
from .model import FIN, PSH, RST, SYN
from .smtp import SmtpDialogue
from .tcp.session import Session

WAIT_SHOWN_NS = 200_000_000   # a wait inside a turn shorter than this is normal, not shown
BODY_LISTED = 6               # bodies of more segments are summarised


def traced(paths: list[str], opts: Options, ids: set[int]) -> tuple[dict[str, Any], dict[int, tuple[Session, dict[str, Any]]]]:
    """Analyse ``paths`` recording every packet of sessions ``ids``."""
    a = Analysis(time_order(list(paths)), opts, trace_ids=frozenset(ids))
    return a.run_or_raise(), a.traced


def one_session(paths: list[str], opts: Options, sid: int) -> tuple[Session, dict[str, Any]]:
    report, found = traced(paths, opts, {sid})
    if sid not in found:
        raise UsageError(f"no session {sid} in the capture (it has {report['summary']['tcp_sessions']} "
                         f"TCP sessions, ids 0 to {report['summary']['tcp_sessions'] - 1})")
    return found[sid]


# -- waits ---------------------------------------------------------------------------------
@dataclass
class Wait:
    """Data that sat without PSH: from ``start`` until what ended it."""

    dir: int
    start: int
    end: Optional[int]
    bytes: int
    frames: list[int]
    ended_by: str            # peer's reply | later PSH | reset by client/server | FIN | capture end
    end_frame: Optional[int]


def waits(s: Session) -> list[Wait]:
    """Every stretch of unpushed data worth showing: each one that ended a turn, and those
    inside a turn that lasted at least WAIT_SHOWN_NS before a later PSH."""
    open_: dict[int, Wait] = {}
    out: list[Wait] = []
    side = {s.client_dir: "client", s.client_dir ^ 1: "server"}

    def close(d: int, ts: int, how: str, frame: Optional[int], always: bool) -> None:
        w = open_.pop(d, None)
        if w is not None and (always or ts - w.start >= WAIT_SHOWN_NS):
            w.end, w.ended_by, w.end_frame = ts, how, frame
            out.append(w)

    for e in s.trace or ():
        if e.new:
            close(e.dir ^ 1, e.ts, "peer's reply", e.frame, True)
            if e.flags & PSH:
                close(e.dir, e.ts, "later PSH", e.frame, False)
            else:
                w = open_.get(e.dir)
                if w is None:
                    open_[e.dir] = Wait(e.dir, e.ts, None, e.new, [e.frame], "", None)
                else:
                    w.bytes += e.new
                    w.frames.append(e.frame)
        elif e.length and e.flags & PSH:
            close(e.dir, e.ts, "PSH on a retransmission", e.frame, False)
        if e.flags & RST:
            for d in list(open_):
                close(d, e.ts, f"reset by {side[e.dir]}", e.frame, True)
        elif e.flags & FIN:
            close(e.dir, e.ts, "FIN", e.frame, False)
            close(e.dir ^ 1, e.ts, f"{side[e.dir]} closed", e.frame, True)
    for d in list(open_):
        w = open_.pop(d)
        w.ended_by = "capture end"
        out.append(w)
    return sorted(out, key=lambda w: w.start)


# -- follow --------------------------------------------------------------------------------
@dataclass
class Item:
    """An SMTP command or reply, completed by the segment ``frame`` of direction ``dir``."""

    dir: int
    frame: int
    kind: str
    text: str
    segments: list[tuple[int, bool, int]] = field(default_factory=list)  # (frame, pushed, bytes)


def _smtp_items(s: Session) -> dict[int, list[Item]]:
    by_frame: dict[int, list[Item]] = {}
    app = s.app
    if not isinstance(app, SmtpDialogue):
        return by_frame
    c, sv = s.client_dir, s.client_dir ^ 1

    def add(item: Item) -> None:
        by_frame.setdefault(item.frame, []).append(item)

    if app.greeting is not None:
        add(Item(sv, app.greeting.frame, "greeting", f"{app.greeting.code} greeting"))
    for cmd in app.commands:
        kind = "body" if cmd.verb == "DATA body" else "command"
        add(Item(c, cmd.frame, kind, cmd.verb))
        if cmd.reply_frame is not None:
            add(Item(sv, cmd.reply_frame, "reply", f"{cmd.reply_code} (to {cmd.verb})"))
    for r in app.unsolicited:
        add(Item(sv, r.frame, "reply", f"{r.code} (no command waiting)"))
    return by_frame


def follow_events(s: Session) -> list[dict[str, Any]]:
    """The session in time order: SMTP commands and replies (or, for other TCP and
    after STARTTLS, the data of each turn), control packets, and the waits."""
    if s.trace is None:
        raise UsageError("the session was not traced")
    t0 = s.start
    arrow = {s.client_dir: "C>S", s.client_dir ^ 1: "S>C"}
    items = _smtp_items(s)
    pending: dict[int, list[tuple[int, bool, int, int]]] = {0: [], 1: []}
    events: list[dict[str, Any]] = []

    def segs_event(ts: int, d: int, kind: str, text: str, segs: list[tuple[int, bool, int]]) -> None:
        events.append({"t": round((ts - t0) / NS, 6), "dir": arrow[d], "kind": kind, "text": text,
                       "frames": [f for f, _, _ in segs], "pushed": [p for _, p, _ in segs],
                       "bytes": sum(b for _, _, b in segs)})

    def flush(d: int) -> None:
        if pending[d]:
            segs = [(f, p, b) for f, p, b, _ in pending[d]]
            segs_event(pending[d][0][3], d, "data", f"{sum(b for _, _, b in segs)} bytes", segs)
            pending[d] = []

    for e in s.trace:
        if e.flags & (SYN | FIN | RST):
            names = [n for bit, n in ((SYN, "SYN"), (FIN, "FIN"), (RST, "RST")) if e.flags & bit]
            if e.flags & 0x10 and e.flags & SYN:
                names = ["SYN-ACK"]
            events.append({"t": round((e.ts - t0) / NS, 6), "dir": arrow[e.dir], "kind": "control",
                           "text": "+".join(names), "frames": [e.frame], "pushed": None, "bytes": e.length})
        if not e.length:
            continue
        if e.new:
            flush(e.dir ^ 1)
        pending[e.dir].append((e.frame, bool(e.flags & PSH), e.length, e.ts))
        for item in items.get(e.frame, ()):
            if item.dir != e.dir:
                continue
            segs = [(f, p, b) for f, p, b, _ in pending[e.dir]] or [(e.frame, bool(e.flags & PSH), e.length)]
            pending[e.dir] = []
            text = item.text
            if item.kind == "body":
                n, pushed = len(segs), sum(p for _, p, _ in segs)
                text = f"DATA body: {sum(b for _, _, b in segs)} bytes in {n} segment(s), {pushed} pushed"
                if n > BODY_LISTED:
                    segs = segs[:2] + segs[-2:]   # summarised: first and last segments
            segs_event(e.ts, e.dir, item.kind, text, segs)
    for d in (0, 1):
        flush(d)
    for w in waits(s):
        events.append({"t": round((w.start - t0) / NS, 6), "dir": arrow[w.dir], "kind": "wait",
                       "text": (f"{w.bytes} bytes waited {((w.end or s.seen_until) - w.start) / NS:.3f}s "
                                f"without PSH; ended by {w.ended_by}"
                                + (f" (frame {w.end_frame})" if w.end_frame else "")),
                       "frames": w.frames[:20], "pushed": None, "bytes": w.bytes})
    kind_order = {"control": 0, "wait": 2}
    events.sort(key=lambda ev: (ev["t"], ev["frames"][0] if ev["frames"] else 0, kind_order.get(ev["kind"], 1)))
    return events


def follow_document(s: Session, doc: dict[str, Any]) -> dict[str, Any]:
    return {"session": {k: doc[k] for k in ("id", "client", "server", "protocol", "verdict", "close",
                                             "first_frame", "last_frame", "start")},
            "findings": [{k: f[k] for k in ("code", "severity", "message", "frames")} for f in doc["findings"]],
            "events": follow_events(s)}


def _frames_text(ev: dict[str, Any]) -> str:
    frames, pushed = ev["frames"], ev["pushed"]
    if not frames:
        return ""
    if pushed is None:
        return "frame " + ",".join(map(str, frames)) if len(frames) == 1 else \
            f"frames {frames[0]}..{frames[-1]}" if len(frames) > 3 else "frames " + ",".join(map(str, frames))
    marks = [f"{f}{'' if p else '(no PSH)'}" for f, p in zip(frames, pushed)]
    return ("frame " if len(marks) == 1 else "frames ") + ", ".join(marks)


def follow_text(fdoc: dict[str, Any]) -> str:
    s = fdoc["session"]
    lines = [f"session {s['id']}: {s['client']['ip']}:{s['client']['port']} -> {s['server']['ip']}:"
             f"{s['server']['port']} ({s['protocol']}), frames {s['first_frame']}-{s['last_frame']}, "
             f"close {s['close']}, verdict {s['verdict']}",
             "frames marked (no PSH) were sent without PSH; the others carried it", ""]
    for ev in fdoc["events"]:
        mark = "  ..." if ev["kind"] == "wait" else ""
        lines.append(f"{ev['t']:+10.3f}s  {ev['dir']}  {mark}{ev['text']:<44} {_frames_text(ev)}".rstrip())
    if fdoc["findings"]:
        lines.append("")
        lines += [f"{f['severity']}: {f['code']}: {f['message']}" for f in fdoc["findings"]]
    return "\n".join(lines) + "\n"


# -- plot ----------------------------------------------------------------------------------
def plot(s: Session, doc: dict[str, Any], out: Any, fmt: str = "png") -> dict[str, Any]:
    """Draw the time-sequence graph (one panel per direction: data segments as vertical
    bars from their first to last sequence number, pushed and unpushed drawn differently,
    the peer's acknowledgements as a step line, resets as red lines, unpushed waits
    shaded). Writes to ``out`` (a path or a binary file) and returns what was drawn."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = s.start
    trace = s.trace or []
    drawn: dict[str, Any] = {}
    fig, axes = plt.subplots(2, 1, sharex=True, figsize=(10, 7), constrained_layout=True)
    all_waits = waits(s)
    for ax, d in zip(axes, (s.client_dir, s.client_dir ^ 1)):
        name = "client_to_server" if d == s.client_dir else "server_to_client"
        data = [e for e in trace if e.dir == d and e.length and e.seq is not None]
        pushed = [e for e in data if e.flags & PSH]
        unpushed = [e for e in data if not e.flags & PSH]
        retrans = [e for e in data if not e.new]
        for group, color, style, label in ((pushed, "tab:blue", "solid", "data, PSH"),
                                           (unpushed, "tab:orange", "solid", "data, no PSH")):
            if group:
                xs = [(e.ts - t0) / NS for e in group]
                ax.vlines(xs, [e.seq for e in group], [e.seq + e.length for e in group], colors=color,
                          linestyles=style, linewidth=2, label=label)
                ax.plot(xs, [e.seq + e.length for e in group], linestyle="none", marker="_" if color == "tab:blue" else "x",
                        color=color)
        if retrans:
            ax.plot([(e.ts - t0) / NS for e in retrans], [e.seq for e in retrans], linestyle="none",
                    marker="o", mfc="none", color="tab:purple", label="retransmission")
        acks = [e for e in trace if e.dir != d and e.ack is not None]
        if acks:
            ax.step([(e.ts - t0) / NS for e in acks], [e.ack for e in acks], where="post", color="tab:green",
                    linewidth=1, label="peer's ACK")
        resets = [e for e in trace if e.flags & RST]
        for e in resets:
            ax.axvline((e.ts - t0) / NS, color="red", linewidth=1.5)
            ax.annotate(f"RST (frame {e.frame})", ((e.ts - t0) / NS, 0.95), xycoords=("data", "axes fraction"),
                        color="red", ha="right", fontsize=8)
        mine = [w for w in all_waits if w.dir == d]
        for w in mine:
            x0, x1 = (w.start - t0) / NS, ((w.end or s.seen_until) - t0) / NS
            ax.axvspan(x0, x1, color="orange", alpha=0.2, label="unpushed wait" if w is mine[0] else None)
            ax.annotate(f"{w.bytes} B unpushed, {x1 - x0:.3g}s", ((x0 + x1) / 2, 0.5),
                        xycoords=("data", "axes fraction"), ha="center", color="darkorange", fontsize=9)
        ax.set_ylabel(f"{name.replace('_', ' ')}\nsequence (bytes)")
        if data or acks:
            ax.legend(loc="upper left", fontsize=8)
        drawn[name] = {"pushed": len(pushed), "unpushed": len(unpushed), "retransmissions": len(retrans),
                       "acks": len(acks), "waits": len(mine)}
    drawn["resets"] = len([e for e in trace if e.flags & RST])
    axes[-1].set_xlabel("seconds since the session's first packet")
    c, sv = doc["client"], doc["server"]
    fig.suptitle(f"session {doc['id']}: {c['ip']}:{c['port']} -> {sv['ip']}:{sv['port']}  ({doc['verdict']})")
    fig.savefig(out, format=fmt)
    plt.close(fig)
    return drawn


# -- report --------------------------------------------------------------------------------
CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;font-size:90%}th,td{border:1px solid #ccc;padding:.25em .5em}
th{background:#eee;cursor:pointer}.error{color:#b00}.warning{color:#a60}.info{color:#06a}
.v-ok{color:#070}.v-push_problem,.v-peer_reset,.v-no_answer{color:#b00;font-weight:bold}
.v-network_loss{color:#808}.v-incomplete{color:#777}figure{margin:1em 0}svg{max-width:100%;height:auto}
.remedy{background:#ffd;padding:.5em}
"""
SORT_JS = """
document.querySelectorAll('table.sortable th').forEach(function(th, col){
  th.addEventListener('click', function(){
    var body = th.closest('table').tBodies[0], rows = Array.from(body.rows);
    var asc = th.dataset.order !== 'asc'; th.dataset.order = asc ? 'asc' : 'desc';
    rows.sort(function(a, b){
      var x = a.cells[col].dataset.v || a.cells[col].textContent, y = b.cells[col].dataset.v || b.cells[col].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var r = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return asc ? r : -r; });
    rows.forEach(function(r){ body.appendChild(r); });
  });
});
document.getElementById('js-status').textContent = 'sortable: click a column heading';
"""
MAX_GRAPHS = 50


def flagged(doc: dict[str, Any]) -> bool:
    return doc["verdict"] not in ("ok", "incomplete") or any(
        f["severity"] in ("error", "warning") for f in doc["findings"])


def report_html(paths: list[str], opts: Options) -> tuple[str, dict[str, Any]]:
    """A self-contained HTML report (no network fetches) and what it holds."""
    report = Analysis(time_order(list(paths)), opts).run_or_raise()
    ids = [d["id"] for d in report["sessions"] if flagged(d)][:MAX_GRAPHS]
    _, found = traced(paths, opts, set(ids)) if ids else (report, {})
    e = html.escape
    parts = ["<!doctype html><html lang=en><head><meta charset=utf-8>",
             "<title>pushscan report</title>", f"<style>{CSS}</style></head><body>",
             "<h1>pushscan report</h1>", "<section id=summary><h2>Summary</h2><ul>"]
    for inp in report["inputs"]:
        parts.append(f"<li>{e(inp['path'])}: {e(str(inp['format']))}, {inp['packets']} packets"
                     + (f" <span class=error>({e('; '.join(inp['errors']))})</span>" if inp["errors"] else "")
                     + "</li>")
    summ = report["summary"]
    parts.append(f"</ul><p>{summ['sessions']} session(s): "
                 + ", ".join(f"<span class=v-{e(k)}>{e(k)} {v}</span>" for k, v in summ["by_verdict"].items())
                 + "</p><p>Findings: " + (", ".join(f"{e(k)} {v}" for k, v in summ["by_code"].items()) or "none")
                 + "</p></section>")
    parts.append("<section id=sessions><h2>Sessions</h2><p id=js-status>(static table)</p>"
                 "<table class=sortable id=sessions-table><thead><tr>" + "".join(
                     f"<th>{h}</th>" for h in ("id", "client", "server", "frames", "close", "PSH c&gt;s",
                                               "PSH s&gt;c", "unpushed turns out", "verdict", "findings"))
                 + "</tr></thead><tbody>")
    for d in report["sessions"]:
        c2s, s2c = d["directions"]["client_to_server"], d["directions"]["server_to_client"]
        out = d["directions"][d["outgoing"]]
        link = f"<a href='#session-{d['id']}'>{d['id']}</a>" if d["id"] in found else str(d["id"])
        parts.append(
            f"<tr><td data-v={d['id']}>{link}</td><td>{e(d['client']['ip'])}:{d['client']['port']}</td>"
            f"<td>{e(d['server']['ip'])}:{d['server']['port']}</td><td data-v={d['first_frame']}>"
            f"{d['first_frame']}-{d['last_frame']}</td><td>{e(d['close'])}</td>"
            f"<td>{c2s['psh_segments']}/{c2s['data_segments']}</td><td>{s2c['psh_segments']}/{s2c['data_segments']}</td>"
            f"<td data-v={out['turns_unpushed']}>{out['turns_unpushed']}/{out['turns']}</td>"
            f"<td class=v-{e(d['verdict'])}>{e(d['verdict'])}</td>"
            f"<td>{e(', '.join(sorted({f['code'] for f in d['findings']})))}</td></tr>")
    parts.append("</tbody></table></section><section id=findings><h2>Flagged sessions</h2>")
    if not ids:
        parts.append("<p>No session was flagged.</p>")
    for sid in ids:
        s, doc = found[sid]
        svg = io.BytesIO()
        plot(s, doc, svg, "svg")
        inline_svg = svg.getvalue().decode("utf-8").split("?>", 1)[-1]   # drop the XML declaration
        parts.append(f"<article class=session id=session-{sid}><h3>session {sid}: "
                     f"{e(doc['client']['ip'])}:{doc['client']['port']} -&gt; {e(doc['server']['ip'])}:"
                     f"{doc['server']['port']} — <span class=v-{e(doc['verdict'])}>{e(doc['verdict'])}</span></h3><ul>")
        for f in doc["findings"]:
            parts.append(f"<li class={e(f['severity'])}><b>{e(f['code'])}</b> ({e(f['severity'])}): "
                         f"{e(f['message'])}" + (f" — frames {e(', '.join(map(str, f['frames'][:30])))}"
                                                 if f["frames"] else "") + "</li>")
        parts.append("</ul>")
        if doc["remedy"]:
            parts.append(f"<p class=remedy><b>Remedy:</b> {e(doc['remedy'])}</p>")
        parts.append(f"<figure>{inline_svg}<figcaption>Time-sequence graph: data segments with PSH "
                     "(blue) and without (orange), the peer's acknowledgements (green), resets (red), "
                     "unpushed waits (shaded).</figcaption></figure></article>")
    parts.append(f"</section><script>{SORT_JS}</script></body></html>")
    return "\n".join(parts), {"sessions": len(report["sessions"]), "graphs": len(ids), "report": report}
