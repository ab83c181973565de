"""``pushscan plot``: a session's time-sequence graph (matplotlib, headless)."""
from __future__ import annotations

from typing import Any

from ..findings import NS
from ..model import PSH, RST
from ..tcp.session import Session
from .evidence import waits


def plot(s: Session, doc: dict[str, Any], out: Any, fmt: str = "png") -> dict[str, Any]:
    """Draw the time-sequence graph (one panel per direction: data segments as vertical
    bars from their first to last sequence number, pushed and unpushed drawn differently,
    the peer's acknowledgements as a step line, resets as red lines with their TTL,
    unpushed waits shaded, the peer's zero windows shaded grey, probes and keep-alives as
    triangles, ICMP errors as dotted lines). Writes to ``out`` (a path or a binary file)
    and returns what was drawn."""
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
                ax.vlines(xs, [e.seq for e in group], [(e.seq or 0) + e.length for e in group], colors=color,
                          linestyles=style, linewidth=2, label=label)
                ax.plot(xs, [(e.seq or 0) + e.length for e in group], linestyle="none", marker="_" if color == "tab:blue" else "x",
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
            ax.annotate(f"RST (frame {e.frame}, TTL {e.ttl})", ((e.ts - t0) / NS, 0.95),
                        xycoords=("data", "axes fraction"), color="red", ha="right", fontsize=8)
        # the peer's zero windows: it stopped reading what this direction sends
        closed = s.dirs[d ^ 1].zero_windows
        for ep in closed:
            x0 = (ep.start_ts - t0) / NS
            x1 = ((ep.end_ts if ep.end_ts is not None else s.seen_until) - t0) / NS
            ax.axvspan(x0, x1, color="grey", alpha=0.25, label="peer's zero window" if ep is closed[0] else None)
            ax.annotate(f"zero window, {x1 - x0:.3g}s, {ep.probes} probe(s)", ((x0 + x1) / 2, 0.85),
                        xycoords=("data", "axes fraction"), ha="center", color="dimgrey", fontsize=8)
        probes = [e for e in trace if e.dir == d and e.what in ("zero-window probe", "keep-alive")]
        for what, marker, colour in (("zero-window probe", "v", "black"), ("keep-alive", "^", "tab:brown")):
            group = [e for e in probes if e.what == what]
            if group:
                ax.plot([(e.ts - t0) / NS for e in group], [e.seq or 0 for e in group], linestyle="none",
                        marker=marker, color=colour, label=what)
        icmp = [err for err in s.icmp if err.dir == d]   # errors quoting this direction's segments
        for err in icmp:
            ax.axvline((err.ts - t0) / NS, color="tab:red", linestyle=":", linewidth=1,
                       label="ICMP error" if err is icmp[0] else None)
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
                       "acks": len(acks), "waits": len(mine), "zero_windows": len(closed),
                       "probes": len([e for e in probes if e.what == "zero-window probe"]),
                       "keepalives": len([e for e in probes if e.what == "keep-alive"]),
                       "icmp": len(icmp)}
    drawn["resets"] = len([e for e in trace if e.flags & RST])
    axes[-1].set_xlabel("seconds since the session's first packet")
    c, sv = doc["client"], doc["server"]
    fig.suptitle(f"session {doc['id']}: {c['ip']}:{c['port']} -> {sv['ip']}:{sv['port']}  ({doc['verdict']})")
    # the same session gives the same file: no creation date, element ids from a fixed salt
    with matplotlib.rc_context({"svg.hashsalt": f"pushscan-{doc['id']}"}):
        fig.savefig(out, format=fmt, metadata={"Date": None} if fmt == "svg" else {"Software": "pushscan"})
    plt.close(fig)
    return drawn


