"""``pushscan report``: one self-contained HTML file (no network fetches)."""
from __future__ import annotations

import heapq
import html
from dataclasses import replace
import io
from typing import Any

from ..analysis import Analysis, Options, captures
from .evidence import traced
from .plot import plot
from .text import endpoint_text


CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;font-size:90%}th,td{border:1px solid #ccc;padding:.25em .5em}
th{background:#eee;cursor:pointer}.error{color:#b00}.warning{color:#a60}.info{color:#06a}
.v-ok{color:#070}.v-failed{color:#b00;font-weight:bold}.v-incomplete{color:#777}figure{margin:1em 0}svg{max-width:100%;height:auto}
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
document.querySelectorAll('.js-status').forEach(function(p){ p.textContent = 'sortable: click a column heading'; });
"""
MAX_GRAPHS = 50        # flagged sessions detailed with a graph: the worst ones
MAX_ROWS = 2000        # sessions in a capture's table: the worst ones, then in id order


def verdict_class(verdict: str) -> str:
    """The CSS class a verdict is shown with: ok, incomplete, or failed."""
    return "v-" + verdict if verdict in ("ok", "incomplete") else "v-failed"


def flagged(doc: dict[str, Any]) -> bool:
    return doc["verdict"] not in ("ok", "incomplete") or any(
        f["severity"] in ("error", "warning") for f in doc["findings"])


def badness(doc: dict[str, Any]) -> tuple[int, int, int]:
    """Larger is worse: a failed verdict, then error findings, then warnings."""
    sev = [f["severity"] for f in doc["findings"]]
    return (int(doc["verdict"] not in ("ok", "incomplete")), sev.count("error"), sev.count("warning"))


class Worst:
    """The ``n`` worst of the sessions offered (by ``badness``, then lowest id first),
    in bounded memory, and how many were offered."""

    def __init__(self, n: int, only_flagged: bool) -> None:
        self.n, self.only_flagged = n, only_flagged
        self.heap: list[tuple[tuple[int, int, int], int, int, dict[str, Any]]] = []
        self.offered = 0

    def add(self, doc: dict[str, Any], order: int) -> None:
        if self.only_flagged and not flagged(doc):
            return
        self.offered += 1
        item = (badness(doc), -doc["id"], order, doc)
        if len(self.heap) < self.n:
            heapq.heappush(self.heap, item)
        elif item[:3] > self.heap[0][:3]:
            heapq.heapreplace(self.heap, item)

    def docs(self) -> list[dict[str, Any]]:
        """The kept sessions, worst first."""
        return [x[3] for x in sorted(self.heap, key=lambda x: x[:3], reverse=True)]


def report_html(paths: list[str], opts: Options) -> tuple[str, dict[str, Any]]:
    """A self-contained HTML report (no network fetches) and what it holds: per capture
    (``analysis.captures``) its summary and a table of its worst ``MAX_ROWS`` sessions;
    then the worst ``MAX_GRAPHS`` flagged sessions of all, each with its findings and graph.
    Memory stays bounded by those limits, not by the capture."""
    groups, why = captures(paths, opts)
    e = html.escape
    parts = ["<!doctype html><html lang=en><head><meta charset=utf-8>",
             "<title>pushscan report</title>", f"<style>{CSS}</style></head><body>",
             "<h1>pushscan report</h1>"]
    if why:
        parts.append("<p>" + e(f"{len(groups)} captures: " + "; ".join(why)
                               + " (each analysed alone; --merge joins them)") + "</p>")
    graphs = Worst(MAX_GRAPHS, only_flagged=True)
    reports = []
    for gi, group in enumerate(groups):
        rows = Worst(MAX_ROWS, only_flagged=False)
        tables: list[dict[str, Any]] = []

        def keep(doc: dict[str, Any], gi: int = gi, rows: Worst = rows) -> None:
            rows.add(doc, gi)
            graphs.add(doc, gi)
        a = Analysis(list(group.paths), opts, on_session=keep, keep_sessions=False)
        report = a.run()
        if a.unreadable and len(a.unreadable) == len(group.paths):
            if len(groups) == 1:
                raise a.unreadable[0]
        tables = sorted(rows.docs(), key=lambda d: d["id"])
        reports.append(report)
        parts.append(f"<section id=capture-{gi} class=summary><h2>"
                     + e(group.describe() if len(group.paths) > 1 else group.paths[0]) + "</h2><ul>")
        for inp in report["inputs"]:
            parts.append(f"<li>{e(inp['path'])}: {e(str(inp['format']))}, {inp['packets']:,} packets"
                         + (f" <span class=error>({e('; '.join(inp['errors']))})</span>" if inp["errors"] else "")
                         + "</li>")
        summ = report["summary"]
        parts.append(f"</ul><p>{summ['sessions']:,} session(s): "
                     + ", ".join(f"<span class={verdict_class(k)}>{e(k)} {v:,}</span>"
                                 for k, v in summ["by_verdict"].items())
                     + "</p><p>Findings: " + (", ".join(f"{e(k)} {v:,}" for k, v in summ["by_code"].items()) or "none")
                     + "</p>")
        if rows.offered > len(tables):
            parts.append(f"<p>The table lists the {len(tables):,} worst of {rows.offered:,} sessions "
                         "(failed verdicts, then errors, then warnings); pushscan analyze --format "
                         "json lists them all.</p>")
        parts.append("<p class=js-status>(static table)</p>"
                     f"<table class=sortable id=sessions-table-{gi}><thead><tr>" + "".join(
                         f"<th>{h}</th>" for h in ("id", "client", "server", "frames", "close", "PSH c&gt;s",
                                                   "PSH s&gt;c", "unpushed turns out", "verdict", "findings"))
                     + "</tr></thead><tbody>")
        for d in tables:
            c2s, s2c = d["directions"]["client_to_server"], d["directions"]["server_to_client"]
            out = d["directions"][d["outgoing"]]
            parts.append(
                f"<tr><td data-v={d['id']}><a href='#session-{gi}-{d['id']}'>{d['id']}</a></td>"
                f"<td>{e(endpoint_text(d['client']))}</td><td>{e(endpoint_text(d['server']))}</td>"
                f"<td data-v={d['first_frame']}>{d['first_frame']}-{d['last_frame']}</td><td>{e(d['close'])}</td>"
                f"<td>{c2s['psh_segments']}/{c2s['data_segments']}</td><td>{s2c['psh_segments']}/{s2c['data_segments']}</td>"
                f"<td data-v={out['turns_unpushed']}>{out['turns_unpushed']}/{out['turns']}</td>"
                f"<td class={verdict_class(d['verdict'])}>{e(d['verdict'])}</td>"
                f"<td>{e(', '.join(sorted({f['code'] for f in d['findings']})))}</td></tr>")
        parts.append("</tbody></table></section>")
    chosen = graphs.docs()
    parts.append("<section id=findings><h2>Flagged sessions</h2>")
    if not chosen:
        parts.append("<p>No session was flagged.</p>")
    elif graphs.offered > len(chosen):
        parts.append(f"<p>The {len(chosen)} worst of {graphs.offered:,} flagged sessions (failed "
                     "verdicts, then errors, then warnings); the tables above list more.</p>")
    by_group: dict[int, dict[int, int]] = {}       # capture -> id -> first frame
    ranked = sorted(graphs.heap, key=lambda x: x[:3], reverse=True)
    order = [(x[2], x[3]["id"]) for x in ranked]
    for x in ranked:
        by_group.setdefault(x[2], {})[x[3]["id"]] = x[3]["first_frame"]
    found: dict[tuple[int, int], tuple[Any, dict[str, Any]]] = {}
    for gi, ids in by_group.items():
        _, got = traced(list(groups[gi].paths), replace(opts, merge=True), set(ids),  # (one capture)
                        set(ids.values()))
        found.update({(gi, k): v for k, v in got.items()})
    for gi, sid in order:
        s, doc = found[(gi, sid)]
        svg = io.BytesIO()
        plot(s, doc, svg, "svg")
        inline_svg = svg.getvalue().decode("utf-8").split("?>", 1)[-1]   # drop the XML declaration
        where = f" of {e(groups[gi].paths[0])}" if len(groups) > 1 else ""
        parts.append(f"<article class=session id=session-{gi}-{sid}><h3>session {sid}{where}: "
                     f"{e(endpoint_text(doc['client']))} -&gt; {e(endpoint_text(doc['server']))} — "
                     f"<span class={verdict_class(doc['verdict'])}>{e(doc['verdict'])}</span></h3><ul>")
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
    return "\n".join(parts), {"sessions": sum(r["summary"]["sessions"] for r in reports),
                               "graphs": len(order), "captures": len(groups), "reports": reports}
