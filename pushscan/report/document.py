"""The report document (the JSON contract, ``"schema": 1``): each ended session as a
plain dict, and the summary's counts. Every output format and the CI gate read these."""
from __future__ import annotations

from typing import Any, Optional

from ..decode.layers import tunnel_kind
from ..findings import NS, assess, direction_name, remedy, rtt_ns
from ..model import (OPT_MSS, OPT_OTHER, OPT_SACK, OPT_SACK_PERM, OPT_TIMESTAMP, OPT_WSCALE,
                     endpoint_ip)
from ..smtp import SmtpDialogue, smtp_of
from ..tcp.session import Direction, Session
from ..tcp.tracker import Tracker

SCHEMA = 1


def endpoint(s: Session, d: int) -> dict[str, Any]:
    """The endpoint that sends in direction ``d``."""
    k = s.key
    if d == 0:
        return {"ip": endpoint_ip(k[0], k[1], k[2]), "port": k[3]}
    return {"ip": endpoint_ip(k[0], k[4], k[5]), "port": k[6]}


OPTION_NAMES = ((OPT_MSS, "mss"), (OPT_WSCALE, "wscale"), (OPT_SACK_PERM, "sack_perm"),
                (OPT_SACK, "sack"), (OPT_TIMESTAMP, "timestamps"), (OPT_OTHER, "other"))


def option_names(kinds: int) -> list[str]:
    """The TCP options in a set of ``OPT_*`` bits, by name (bits of other kinds: "other")."""
    named = [name for bit, name in OPTION_NAMES if kinds & bit]
    if kinds & ~(OPT_MSS | OPT_WSCALE | OPT_SACK_PERM | OPT_SACK | OPT_TIMESTAMP | OPT_OTHER) \
            and "other" not in named:
        named.append("other")
    return named


def ip_id_behaviour(dd: Direction) -> Optional[str]:
    """How a sender sets the IPv4 ID: "zero", "counter" (it grows by small steps),
    "random"; None for IPv6 or too few packets."""
    nonzero = dd.ipid_count - dd.ipid_zero
    if dd.ipid_count < 2:
        return None
    if nonzero == 0:
        return "zero"
    if nonzero < 2:
        return None
    return "counter" if dd.ipid_inc >= 0.8 * (nonzero - 1) else "random"


def tunnel_document(s: Session) -> Optional[dict[str, Any]]:
    """The tunnel a session's packets came through (its first packet's), if any."""
    t = s.tunnel
    if t is None:
        return None
    return {"kind": tunnel_kind(t.kinds, t.outer_version, s.key[0]),
            "outer": {"src": t.outer_src, "dst": t.outer_dst} if t.outer_version else None,
            "id": t.id if t.id >= 0 else None}


def _zero_window(ep: Any) -> dict[str, Any]:
    return {"start_frame": ep.start_frame, "end_frame": ep.end_frame,
            "duration_seconds": round((ep.end_ts - ep.start_ts) / NS, 6) if ep.end_ts is not None else None,
            "probes": ep.probes, "probes_answered": ep.answered, "ended_by": ep.ended_by}


def _direction(s: Session, d: int) -> dict[str, Any]:
    dd = s.dirs[d]
    return {
        "data_segments": dd.data_segments,
        "psh_segments": dd.psh_segments,
        "bytes": dd.bytes,
        "retransmitted_segments": dd.retransmitted,
        "out_of_order_segments": dd.out_of_order,
        "turns": dd.turns,
        "turns_unpushed": dd.turns_unpushed,
        "unpushed_bytes_at_end": max(0, dd.nxt - dd.last_push_end) if dd.started else 0,
        "capture_gap_bytes": dd.gap_bytes,
        "truncated_segments": dd.truncated,
        "oversize_segments": dd.oversize,
        "mss": dd.mss or None,
        "fin": dd.fin,
        # the sender's TCP and IP facts: new keys of schema 1
        "packets": dd.packets,
        "window_scale": dd.wscale if dd.wscale >= 0 and s.dirs[d ^ 1].wscale >= 0 else None,
        "window_last": dd.win if dd.win >= 0 else None,
        "zero_windows": [_zero_window(ep) for ep in dd.zero_windows],
        "zero_window_count": dd.zero_window_count,
        "window_full": dd.window_full,
        "keepalives": dd.keepalives,
        "keepalives_answered": dd.ka_answered,
        "duplicate_acks": dd.dup_acks,
        "ttl": [dd.ttl_min, dd.ttl_max] if dd.ttl_min >= 0 else None,
        "ip_id": ip_id_behaviour(dd),
        "options_syn": option_names(dd.syn_opts) if dd.syn_opts >= 0 else None,
        "options_always": option_names(dd.opts_all) if dd.opts_all >= 0 else None,
        "largest_acknowledged_segment": dd.max_acked_segment or None,
    }


def session_document(s: Session, files: list[str]) -> dict[str, Any]:
    """The JSON form of an ended session (schema 1)."""
    findings, verdict, notes, incomplete = assess(s)
    c, sv = s.client_dir, s.client_dir ^ 1
    app = smtp_of(s.app)
    smtp = app.to_dict() if app is not None else None
    return {
        "id": s.id,
        "file": files[s.file_index] if s.file_index < len(files) else None,
        "client": endpoint(s, c),
        "server": endpoint(s, sv),
        "protocol": "smtp" if smtp is not None else "tcp",
        "first_frame": s.first_frame,
        "last_frame": s.last_frame,
        "start": round(s.start / NS, 6),
        "end": round(s.end / NS, 6),
        "handshake": s.handshake._value_,   # _value_: .value is a property, 5x slower
        "close": s.close._value_,
        "outgoing": direction_name(s, s.out_dir),
        "directions": {"client_to_server": _direction(s, c), "server_to_client": _direction(s, sv)},
        "rtt_seconds": round(rtt / NS, 6) if (rtt := rtt_ns(s)) is not None else None,
        "tunnel": tunnel_document(s),
        "icmp_errors": [{"frame": e.frame, "from": e.origin, "type": e.type, "code": e.code,
                         "text": e.text} for e in s.icmp],
        "smtp": smtp,
        "findings": findings,
        "verdict": verdict._value_,
        "remedy": remedy(verdict),
        "incomplete": incomplete or None,
        "notes": notes,
    }


class Tally:
    """Counts over ended sessions and the report's ``summary``: one place for analyze,
    check and live."""

    def __init__(self) -> None:
        self.sessions = 0
        self.verdicts: dict[str, int] = {}
        self.codes: dict[str, int] = {}
        self.lines_truncated = 0

    def ended(self, s: Session, doc: Optional[dict[str, Any]]) -> None:
        """Count a session that ended; ``doc`` if it is reported."""
        if isinstance(s.app, SmtpDialogue):
            self.lines_truncated += s.app.lines_truncated
        if doc is not None:
            self.sessions += 1
            self.verdicts[doc["verdict"]] = self.verdicts.get(doc["verdict"], 0) + 1
            for f in doc["findings"]:
                self.codes[f["code"]] = self.codes.get(f["code"], 0) + 1

    def summary(self, tracker: Tracker, selection: Any = None, left_out: int = 0) -> dict[str, Any]:
        """The summary; with a ``selection`` (``analysis.select``), its filters and how
        many sessions they left out (the counts are of the selected sessions)."""
        out = {"sessions": self.sessions, "tcp_sessions": tracker.next_id,
               "by_verdict": dict(sorted(self.verdicts.items())),
               "by_code": dict(sorted(self.codes.items())),
               "limits": {"evicted_sessions": tracker.evicted,
                          "buffer_overflows": tracker.buffer_overflows,
                          "lines_truncated": self.lines_truncated}}
        if selection:
            out["selected"] = {"filters": selection.describe(), "left_out": left_out}
        return out
