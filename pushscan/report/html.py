"""``pushscan report``: one self-contained HTML file (no network fetches)."""
from __future__ import annotations

import html
import io
from typing import Any

from ..analysis import Analysis, Options, time_order
from .evidence import traced
from .plot import plot


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
document.getElementById('js-status').textContent = 'sortable: click a column heading';
"""
MAX_GRAPHS = 50


def verdict_class(verdict: str) -> str:
    """The CSS class a verdict is shown with: ok, incomplete, or failed."""
    return "v-" + verdict if verdict in ("ok", "incomplete") else "v-failed"


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
                 + ", ".join(f"<span class={verdict_class(k)}>{e(k)} {v}</span>" for k, v in summ["by_verdict"].items())
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
            f"<td class={verdict_class(d['verdict'])}>{e(d['verdict'])}</td>"
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
                     f"{doc['server']['port']} — <span class={verdict_class(doc['verdict'])}>{e(doc['verdict'])}</span></h3><ul>")
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
