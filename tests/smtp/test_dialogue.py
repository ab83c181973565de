"""The SMTP dialogue gives the same verbs, codes and counts however the bytes are cut."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pushscan.smtp import SmtpDialogue

CLIENT = [
    b"EHLO client.example.com\r\n",
    b"AUTH LOGIN\r\n", b"dXNlcg==\r\n", b"cGFzcw==\r\n",
    b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n",
    b"Subject: hi\r\n\r\n..leading dot\r\nline\r\n.\r\n",
    b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.org>\r\nBDAT 12\r\n",
    b"hello\r\nworld",
    b"BDAT 0 LAST\r\n",
    b"RSET\r\n",
    b"QUIT\r\n",
]
SERVER = [
    b"220 mx ESMTP\r\n",
    b"250-mx\r\n250-PIPELINING\r\n250 CHUNKING\r\n",
    b"334 VXNlcm5hbWU6\r\n", b"334 UGFzc3dvcmQ6\r\n", b"235 ok\r\n",
    b"250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n",
    b"250 queued\r\n",
    b"250 ok\r\n250 ok\r\n",
    b"250 12 bytes\r\n",
    b"250 queued\r\n",
    b"250 ok\r\n",
    b"221 bye\r\n",
]
# (speaker, chunk) in dialogue order: the server greets, then each client turn gets its reply
TURNS = [(False, SERVER[0]), (True, CLIENT[0]), (False, SERVER[1]), (True, CLIENT[1]),
         (False, SERVER[2]), (True, CLIENT[2]), (False, SERVER[3]), (True, CLIENT[3]),
         (False, SERVER[4]), (True, CLIENT[4]), (False, SERVER[5]), (True, CLIENT[5]),
         (False, SERVER[6]), (True, CLIENT[6]), (False, SERVER[7]), (True, CLIENT[7]),
         (False, SERVER[8]), (True, CLIENT[8]), (False, SERVER[9]), (True, CLIENT[9]),
         (False, SERVER[10]), (True, CLIENT[10]), (False, SERVER[11])]

EXPECTED = [("EHLO", 250), ("AUTH", 235), ("MAIL", 250), ("RCPT", 250), ("RCPT", 250),
            ("DATA", 354), ("DATA body", 250), ("MAIL", 250), ("RCPT", 250), ("BDAT", 250),
            ("BDAT", 250), ("RSET", 250), ("QUIT", 221)]


def feed(cuts: list[list[int]] | None) -> SmtpDialogue:
    d = SmtpDialogue()
    for i, (client, chunk) in enumerate(TURNS):
        points = sorted(set(cuts[i])) if cuts else []
        pieces = [chunk[a:b] for a, b in zip([0] + points, points + [len(chunk)]) if chunk[a:b]]
        for k, piece in enumerate(pieces):
            d.data(client, piece, frame=i * 100 + k, pushed=k == len(pieces) - 1, ts=i)
    return d


def result(d: SmtpDialogue):
    return ([(c.verb, c.reply_code) for c in d.commands], d.messages, d.body_bytes,
            d.greeting.code if d.greeting else None, d.malformed)


def test_whole_turns():
    d = feed(None)
    assert [(c.verb, c.reply_code) for c in d.commands] == EXPECTED
    assert d.messages == 2 and d.greeting is not None and d.greeting.code == 220
    assert d.body_bytes == len(CLIENT[5]) + 12
    assert d.commands[6].frame == 1100 and d.commands[6].pushed  # the body is TURNS[11]


def test_byte_by_byte():
    cuts = [list(range(1, len(c))) for _, c in TURNS]
    assert result(feed(cuts)) == result(feed(None))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_random_segmentation(data):
    cuts = [data.draw(st.lists(st.integers(1, max(1, len(c) - 1)), max_size=6)) for _, c in TURNS]
    assert result(feed(cuts)) == result(feed(None))


def test_pushed_flag_comes_from_completing_segment():
    d = SmtpDialogue()
    d.data(False, b"220 hi\r\n", 1, True, 0)
    d.data(True, b"EHLO x", 2, True, 0)     # pushed, but the line is not complete
    d.data(True, b"\r\n", 3, False, 0)      # completes it, unpushed
    assert (d.commands[0].frame, d.commands[0].pushed) == (3, False)
    assert d.command_in_progress() == "EHLO"


def test_starttls_stops_parsing():
    d = SmtpDialogue()
    d.data(False, b"220 hi\r\n", 1, True, 0)
    d.data(True, b"STARTTLS\r\n", 2, True, 0)
    d.data(False, b"220 go ahead\r\n", 3, True, 0)
    d.data(True, b"\x16\x03\x01garbage\r\nQUIT\r\n", 4, True, 0)
    assert d.tls and [c.verb for c in d.commands] == ["STARTTLS"]


def test_data_refused_returns_to_commands():
    d = SmtpDialogue()
    d.data(True, b"DATA\r\n", 1, True, 0)
    d.data(False, b"554 no valid recipients\r\n", 2, True, 0)
    d.data(True, b"QUIT\r\n", 3, True, 0)
    assert [(c.verb, c.reply_code) for c in d.commands] == [("DATA", 554), ("QUIT", None)]
    assert d.messages == 0


def test_unsolicited_timeout_reply_and_hostile_lines():
    d = SmtpDialogue()
    d.data(False, b"220 hi\r\n", 1, True, 0)
    d.data(False, b"421 4.4.2 timeout\r\n", 2, True, 0)
    d.data(False, b"\x00\xff garbage\r\n" + b"9" * 10000 + b"\r\n", 3, True, 0)
    d.data(True, b"\x00\x01\x02\r\n" + b"A" * 100000 + b"\r\n", 4, True, 0)
    assert [r.code for r in d.unsolicited] == [421]
    assert d.malformed == 2                       # the garbage line and the line of nines
    assert [c.verb for c in d.commands] == ["UNKNOWN", "UNKNOWN"]


def test_gap_in_body_ended_by_server_reply():
    d = SmtpDialogue()
    d.data(True, b"DATA\r\n", 1, True, 0)
    d.data(False, b"354 go\r\n", 2, True, 0)
    d.data(True, b"Subject: x\r\n", 3, False, 0)
    d.gap(True, 500)                   # the end of the body was never captured
    d.data(False, b"250 queued\r\n", 5, True, 0)
    d.data(True, b"QUIT\r\n", 6, True, 0)
    assert [(c.verb, c.reply_code) for c in d.commands] == [("DATA", 354), ("DATA body", 250), ("QUIT", None)]
    assert d.messages == 1


def feed_with_round_trips(cuts: list[list[int]], trips: set[int]) -> SmtpDialogue:
    """``feed``, the state exported into a fresh value and imported back before the
    pieces numbered in ``trips``."""
    d = SmtpDialogue()
    n = 0
    for i, (client, chunk) in enumerate(TURNS):
        points = sorted(set(cuts[i]))
        pieces = [chunk[a:b] for a, b in zip([0] + points, points + [len(chunk)]) if chunk[a:b]]
        for k, piece in enumerate(pieces):
            if n in trips:
                st = d.export_state()
                d.import_state(type(st)(*list(st)))
            n += 1
            d.data(client, piece, frame=i * 100 + k, pushed=k == len(pieces) - 1, ts=i)
    return d


@settings(max_examples=200, deadline=None)
@given(cuts=st.lists(st.lists(st.integers(0, 120), max_size=5), min_size=len(TURNS), max_size=len(TURNS)),
       trips=st.sets(st.integers(0, 60)))
def test_state_exported_and_imported_anywhere_changes_nothing(cuts, trips):
    """The state as a value is the whole continuation: a lexer that exports it, and
    imports it back, anywhere in the dialogue (mid-line, mid-body, mid-BDAT), leaves
    the parser where it was."""
    plain, tripped = feed(cuts), feed_with_round_trips(cuts, trips)
    assert result(tripped) == result(plain) and tripped.to_dict() == plain.to_dict()


def test_line_level_input_is_what_the_byte_level_calls():
    """Lines already read (what the fast lane's kernel hands over) give the dialogue the
    byte level gives: commands with replies read in the same call, bodies, replies."""
    by_bytes = SmtpDialogue()
    for frame, (client, chunk) in enumerate([
            (False, b"220 mx\r\n"), (True, b"EHLO c\r\n"), (False, b"250 ok\r\n"),
            (True, b"MAIL FROM:<a@b>\r\nDATA\r\n"), (False, b"250 ok\r\n354 go\r\n"),
            (True, b"body\r\n.\r\n"), (False, b"250 queued\r\n")]):
        by_bytes.data(client, chunk, frame + 1, True, frame)
    by_lines = SmtpDialogue()
    by_lines.reply(220, 1, 0)
    by_lines.command("EHLO", 2, True, 250, 3)
    by_lines.command("MAIL", 4, True)
    by_lines.command("DATA", 4, True)
    by_lines.reply(250, 5, 4)
    by_lines.reply(354, 5, 4)
    by_lines.body_end(6, True, 9)          # "body\r\n.\r\n": the body counts its end
    by_lines.reply(250, 7, 6)
    assert by_lines.to_dict() == by_bytes.to_dict()
    a, b = by_lines.export_state(), by_bytes.export_state()
    # (the last segment fed is a byte-level fact: lines carry no segment)
    assert (a.state, a.pending, a.tail, a.body_bytes) == (b.state, b.pending, b.tail, b.body_bytes)
