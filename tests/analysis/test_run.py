"""The analysis pipeline streams sessions with bounded memory."""
from __future__ import annotations

from pushscan.analysis import Analysis, Options

from ..conftest import CAPTURES


def test_every_session_is_emitted_once_even_with_a_tiny_reorder_buffer(monkeypatch):
    monkeypatch.setattr(Analysis, "REORDER_MAX", 1)
    got = []
    a = Analysis([str(CAPTURES / "tcp_other.pcap"), str(CAPTURES / "smtp_port_reuse.pcap")],
                 Options(all_tcp=True), on_session=lambda d: got.append(d["id"]), keep_sessions=False)
    report = a.run()
    assert sorted(got) == [0, 1, 2, 3] and report["sessions"] == []
    assert report["summary"]["sessions"] == 4


def test_unordered_emission_is_in_order_of_ending():
    got = []
    Analysis([str(CAPTURES / "smtp_port_reuse.pcap")], Options(), on_session=lambda d: got.append(d["id"]),
             ordered=False).run()
    assert got == [0, 1]
