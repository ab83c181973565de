"""What is SMTP: a "220" banner alone is not (FTP greets the same way); the client's
EHLO, HELO or LHLO or a port known as SMTP make it so. A reset that does not acknowledge
the SYN, before the SYN-ACK, refuses nothing: the client's stack ignores it."""
from __future__ import annotations

import pushscan

from ..dialogue_builder import Dialogue


def ftp_login(tmp_path, port=21):
    d = Dialogue(server=("198.51.100.25", port))
    d.handshake()
    d.say("s", b"220 ProFTPD Server (ftp.example.org)\r\n")
    d.say("c", b"USER anonymous\r\n")
    d.say("s", b"331 Anonymous login ok, send your complete email address as your password\r\n")
    d.say("c", b"PASS guest@example.org\r\n")
    d.say("s", b"230 Anonymous access granted\r\n")
    d.say("c", b"QUIT\r\n")
    d.say("s", b"221 Goodbye.\r\n")
    d.close()
    return d.write(tmp_path / f"ftp_{port}.pcap")


def smtp_on(tmp_path, port):
    d = Dialogue(server=("198.51.100.25", port))
    d.handshake()
    d.say("s", b"220 mx.example.org ESMTP\r\n")
    d.say("c", b"EHLO client.example.org\r\n")
    d.say("s", b"250 mx.example.org\r\n")
    d.say("c", b"QUIT\r\n")
    d.say("s", b"221 bye\r\n")
    d.close()
    return d.write(tmp_path / f"smtp_{port}.pcap")


def test_ftp_with_a_220_banner_is_not_smtp(tmp_path):
    path = ftp_login(tmp_path)
    assert pushscan.analyze(str(path))["sessions"] == []          # not an SMTP session
    (s,) = pushscan.analyze(str(path), all_tcp=True)["sessions"]
    assert s["protocol"] == "tcp" and s["smtp"] is None and s["verdict"] == "ok"


def test_banner_and_ehlo_on_an_unknown_port_is_smtp(tmp_path):
    (s,) = pushscan.analyze(str(smtp_on(tmp_path, 2526)))["sessions"]
    assert s["protocol"] == "smtp"
    assert [c["verb"] for c in s["smtp"]["commands"]] == ["EHLO", "QUIT"]


def test_a_known_port_is_smtp_without_ehlo(tmp_path):
    """On port 25 even a session that never got to EHLO is SMTP (FTP-like words too)."""
    (s,) = pushscan.analyze(str(ftp_login(tmp_path, 25)))["sessions"]
    assert s["protocol"] == "smtp"


def test_reset_before_synack_that_acks_nothing_is_no_refusal(tmp_path):
    d = Dialogue()
    d.send("c", "S")
    d.send("s", "R", seq=0)                      # no ACK: RFC 793 makes the client ignore it
    d.send("s", "SA")
    d.send("c", "A")
    d.say("s", b"220 mx.example.org ESMTP\r\n")
    d.say("c", b"EHLO client.example.org\r\n")
    d.say("s", b"250 mx.example.org\r\n")
    d.say("c", b"QUIT\r\n")
    d.say("s", b"221 bye\r\n")
    d.close()
    (s,) = pushscan.analyze(str(d.write(tmp_path / "stray_rst.pcap")))["sessions"]
    assert s["verdict"] == "ok" and s["close"] == "fin" and s["handshake"] == "complete"
    assert [f["code"] for f in s["findings"]] == []
    assert any("frame 2" in n and "refused nothing" in n for n in s["notes"])


def test_reset_that_acks_the_syn_is_a_refusal(tmp_path):
    d = Dialogue()
    d.send("c", "S")
    d.send("s", "RA", seq=0)                     # ack = ISN + 1: nothing listens
    (s,) = pushscan.analyze(str(d.write(tmp_path / "refused.pcap")))["sessions"]
    assert s["verdict"] == "peer_reset"
    assert s["findings"][0]["code"] == "PEER_RESET" and s["findings"][0]["refused"] is True
