"""SMTP dialogue from the two reassembled streams. No I/O.

Fed in capture order with ``data(from_client, bytes, frame, pushed, ts)`` and
``gap(from_client, length)``. Understands multi-line replies, PIPELINING, DATA bodies up
to CRLF.CRLF, BDAT chunks (and LAST), AUTH exchanges, and STARTTLS (after its 220 the
rest is TLS and not parsed). Bodies are counted, never stored.

Whatever the peer sends, the parser never raises: lines it cannot understand are counted
in ``malformed``. The verbs, reply codes, message and body-byte counts it produces do not
depend on how the bytes were segmented.
"""
from __future__ import annotations

from array import array
from dataclasses import dataclass
from enum import Enum
from typing import Any, Iterator, NamedTuple, Optional

from .tls import TlsWatch

MAX_LINE = 4096           # bytes of one command or reply line kept (the rest is skipped)
ERROR_TEXT = 200          # characters kept of an error reply's text
SMTP_PORTS = (25, 465, 587, 2525)
IMPLICIT_TLS_PORTS = (465,)
BODY_END = b"\r\n.\r\n"
# A packed command (SmtpDialogue.packed): CW int64 fields (the times of commands and
# replies are not kept: no report uses them)
C_FRAME, C_PUSHED, C_CODE, C_RFRAME = range(4)
CW = 4


@dataclass(slots=True)
class Command:
    """One client command. ``pushed``: the segment completing its line carried PSH.
    (A view: ``SmtpDialogue`` keeps its commands packed, see ``SmtpDialogue.commands``.)"""

    verb: str
    frame: int
    pushed: bool
    reply_code: Optional[int] = None
    reply_frame: Optional[int] = None


@dataclass(slots=True)
class Reply:
    code: int
    frame: int
    ts: int


class ErrorReply(NamedTuple):
    """A reply of code 400 or more, with its text (the final line's, after the code):
    to ``verb`` (None: the greeting, or a reply no command waited for)."""

    verb: Optional[str]
    code: int
    text: str
    frame: int


class ClientState(Enum):
    COMMAND = "command"
    AWAIT_DATA_GO = "await_354"   # DATA sent; body or commands depend on the reply
    BODY = "body"
    CHUNK = "bdat"
    TLS = "tls"


class DialogueState(NamedTuple):
    """Where a dialogue stands between two segments, as a value: what
    ``SmtpDialogue.export_state`` gives and ``import_state`` takes back. A lexer that
    reads some of the bytes itself (the fast lane's kernel) exports it to know what the
    dialogue expects, and imports it changed (``but``) to say what it consumed."""

    state: "ClientState"
    pending: tuple[int, ...]   # commands (indices into ``verbs``) awaiting their final reply
    command_line: bytes        # an incomplete command line, and an incomplete reply line
    reply_line: bytes
    tail: bytes                # the body's last bytes, to find CRLF.CRLF across segments
    chunk_left: int            # BDAT bytes still to come, and whether the chunk is LAST
    chunk_last: bool
    auth_continue: bool        # the server sent 334: the next client line is auth data
    body_gap: bool             # part of the current body was never captured
    body_bytes: int
    body_frame: int            # the last body segment fed, and its PSH
    body_pushed: bool
    last_frame: int            # the last segment fed: its frame, PSH and time
    last_pushed: bool
    last_ts: int

    def but(self, **changes: Any) -> "DialogueState":
        """This state with the fields in ``changes`` set to new values."""
        return self._replace(**changes)


class SmtpDialogue:
    """Parses one SMTP session. Public results: ``commands``, ``greeting``,
    ``unsolicited`` (replies with no command waiting, e.g. a 421 timeout), ``tls``,
    ``messages``, ``body_bytes``, ``malformed``.

    Two levels of input: bytes (``data``, ``gap``), split into lines here; and lines
    already read (``command``, ``reply``, ``body_end``), which the byte level calls and
    which a lexer of its own (the fast lane's kernel) may call directly, with the state
    as a value in between (``export_state``, ``import_state``).

    Commands are kept packed: their verbs in ``verbs``, their numbers in ``packed``
    (``CW`` int64 per command, fields ``C_*``, -1 for none), about a quarter of the
    memory of objects (a capture's closed sessions linger by the thousand)."""

    __slots__ = ("max_line", "lines_truncated", "verbs", "packed", "greeting", "unsolicited", "tls",
                 "messages", "body_bytes", "malformed", "state", "_cbuf", "_sbuf", "_pending",
                 "_tail", "_chunk_left", "_chunk_last", "_auth_continue", "_body_gap",
                 "_body_frame", "_body_pushed", "_last_frame", "_last_pushed",
                 "_last_ts", "tls_watch", "error_replies", "by_banner")

    def __init__(self, implicit_tls: bool = False, max_line: int = MAX_LINE,
                 by_banner: bool = False) -> None:
        self.by_banner = by_banner   # begun on a "220" from a port not known as SMTP
        self.max_line = max_line
        self.lines_truncated = 0   # lines longer than max_line (the rest was skipped)
        self.verbs: list[str] = []
        self.packed = array("q")
        self.greeting: Optional[Reply] = None
        self.unsolicited: list[Reply] = []
        self.tls = implicit_tls
        self.messages = 0
        self.body_bytes = 0
        self.malformed = 0
        self.state = ClientState.TLS if implicit_tls else ClientState.COMMAND
        self._cbuf = bytearray()
        self._sbuf = bytearray()
        self._pending: list[int] = []   # (indices of) commands awaiting their final reply
        self._tail = b""           # last bytes of the body, to find CRLF.CRLF across segments
        self._chunk_left = 0
        self._chunk_last = False
        self._auth_continue = False  # server sent 334: the next client line is auth data
        self._body_gap = False     # part of the current body was never captured
        self._body_frame = 0       # the last body segment seen
        self._body_pushed = False
        self._last_frame = 0       # the segment last fed, for lines a gap completes
        self._last_pushed = False
        self._last_ts = 0
        self.tls_watch: Optional[TlsWatch] = TlsWatch() if implicit_tls else None
        self.error_replies: Any = ()   # list of ErrorReply, made when first needed

    # -- inputs ------------------------------------------------------------------------
    @property
    def tls_settled(self) -> bool:
        """In TLS, and its handshake needs no more reading (completed, failed, or long)."""
        return self.tls and (self.tls_watch is None or self.tls_watch.settled)

    def data(self, from_client: bool, data: bytes, frame: int, pushed: bool, ts: int) -> None:
        if self.tls:
            if self.tls_watch is not None and not self.tls_watch.settled:
                self.tls_watch.data(from_client, data, frame)
            return
        self._last_frame, self._last_pushed, self._last_ts = frame, pushed, ts
        if from_client:
            if self.state is ClientState.BODY and len(data) >= 4:
                # the common case, a body segment: one search, no copies of the segment
                if data.find(BODY_END) < 0 and (self._tail + data[:4]).find(BODY_END) < 0:
                    self._body_frame, self._body_pushed = frame, pushed
                    self.body_bytes += len(data)
                    self._tail = data[-4:]
                    return
            self._client(data, frame, pushed)
        else:
            self._server(data, frame, ts)

    def gap(self, from_client: bool, length: int) -> None:
        """``length`` bytes of one stream were never captured (lost, or cut by the snap
        length): resynchronise. A line cut by the gap still counts with what was seen
        of it (its verb or reply code); the next byte after a gap starts a new line."""
        if self.tls:
            if self.tls_watch is not None:
                self.tls_watch.gap(from_client)
            return
        if from_client:
            if self.state is ClientState.BODY:
                self.body_bytes += length
                self._tail = b""
                self._body_gap = True
            elif self.state is ClientState.CHUNK:
                used = min(length, self._chunk_left)
                self._chunk_left -= used
                self.body_bytes += used
                if not self._chunk_left:
                    self._chunk_done()
            elif self._cbuf:
                line = bytes(self._cbuf)
                self._cbuf.clear()
                self._command(line, self._last_frame, self._last_pushed)
        else:
            if self._sbuf[:3].isdigit():
                code = int(self._sbuf[:3])
                self._sbuf.clear()
                self.reply(code, self._last_frame, self._last_ts)
            self._sbuf.clear()

    def command_in_progress(self) -> Optional[str]:
        """The command the client is stuck in: the body being sent, the oldest command
        awaiting a reply, or the verb of a line not yet complete."""
        if self.state is ClientState.BODY:
            return "DATA body"
        if self.state is ClientState.CHUNK:
            return "BDAT"
        if self._pending:
            return self.verbs[self._pending[0]]
        if self._cbuf:
            return _verb(bytes(self._cbuf))
        return None

    # -- client side -------------------------------------------------------------------
    def _client(self, data: bytes, frame: int, pushed: bool) -> None:
        pos = 0
        n = len(data)
        while pos < n and not self.tls:
            st = self.state
            if st is ClientState.AWAIT_DATA_GO:
                # a well-behaved client waits for 354; one that does not is sending a body
                self.state = st = ClientState.BODY
                self._tail = b"\r\n"
            if st is ClientState.BODY:
                self._body_frame, self._body_pushed = frame, pushed
                pos = self._body_data(data, pos, frame, pushed)
            elif st is ClientState.CHUNK:
                take = min(self._chunk_left, n - pos)
                self._chunk_left -= take
                self.body_bytes += take
                pos += take
                if not self._chunk_left:
                    self._chunk_done()
            else:
                nl = data.find(b"\n", pos)
                if nl < 0:
                    self._append_line(self._cbuf, data[pos:])
                    return
                self._append_line(self._cbuf, data[pos:nl])
                pos = nl + 1
                line = bytes(self._cbuf).rstrip(b"\r")
                self._cbuf.clear()
                self._command(line, frame, pushed)

    def _append_line(self, buf: bytearray, part: bytes) -> None:
        """Add to a line buffer, keeping at most ``max_line`` bytes of one line."""
        room = self.max_line - len(buf)
        if room >= len(part):
            buf += part
        else:
            if room > 0:
                buf += part[:room]
                self.lines_truncated += 1   # counted once, when the line first overflows

    def _command(self, line: bytes, frame: int, pushed: bool) -> None:
        if self._auth_continue:
            self._auth_continue = False   # an AUTH response line, not a command
            return
        verb = _verb(line)
        self.command(verb, frame, pushed)
        if verb == "BDAT":
            parts = line.split()
            size = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else -1
            if size < 0:
                self.malformed += 1
                return
            self._chunk_last = len(parts) > 2 and parts[2].upper() == b"LAST"
            self._chunk_left = size
            self.state = ClientState.CHUNK
            if size == 0:
                self._chunk_done()

    # -- lines already read ------------------------------------------------------------
    def command(self, verb: str, frame: int, pushed: bool, reply_code: int = -1,
                reply_frame: int = -1) -> None:
        """A command line was read: its verb, the segment that completed it and its PSH.
        With ``reply_code``: its final reply was read too, and no command was awaiting
        one before it (the same as ``reply`` right after, for replies that change no
        state but DATA's: not to AUTH or STARTTLS, no gap)."""
        if reply_code < 0:
            self._pending.append(len(self.verbs))
            self.verbs.append(verb)
            self.packed.extend((frame, pushed, -1, -1))
            if verb == "DATA":
                self.state = ClientState.AWAIT_DATA_GO
            return
        self.verbs.append(verb)
        self.packed.extend((frame, pushed, reply_code, reply_frame))
        if verb == "DATA" and reply_code == 354:
            self.state = ClientState.BODY
            self._tail = b"\r\n"

    def body_end(self, frame: int, pushed: bool, nbytes: int = 0) -> None:
        """A message body ended (CRLF.CRLF) in segment ``frame``, after ``nbytes`` more
        body bytes of it."""
        self.body_bytes += nbytes
        self.messages += 1
        self.state = ClientState.COMMAND
        self._tail = b""
        self._body_gap = False
        self._pending.append(len(self.verbs))
        self.verbs.append("DATA body")
        self.packed.extend((frame, pushed, -1, -1))

    # -- the state as a value ----------------------------------------------------------
    def export_state(self) -> DialogueState:
        return DialogueState(
            self.state, tuple(self._pending), bytes(self._cbuf), bytes(self._sbuf), self._tail,
            self._chunk_left, self._chunk_last, self._auth_continue, self._body_gap,
            self.body_bytes, self._body_frame, self._body_pushed, self._last_frame,
            self._last_pushed, self._last_ts)

    def import_state(self, st: DialogueState) -> None:
        """Continue from ``st`` (as ``export_state`` gave it, or changed)."""
        self.state = st.state
        self._pending = list(st.pending)
        self._cbuf = bytearray(st.command_line)
        self._sbuf = bytearray(st.reply_line)
        self._tail = st.tail
        self._chunk_left = st.chunk_left
        self._chunk_last = st.chunk_last
        self._auth_continue = st.auth_continue
        self._body_gap = st.body_gap
        self.body_bytes = st.body_bytes
        self._body_frame = st.body_frame
        self._body_pushed = st.body_pushed
        self._last_frame = st.last_frame
        self._last_pushed = st.last_pushed
        self._last_ts = st.last_ts

    def _chunk_done(self) -> None:
        self.state = ClientState.COMMAND
        if self._chunk_last:
            self.messages += 1
            self._chunk_last = False

    def _body_data(self, data: bytes, pos: int, frame: int, pushed: bool) -> int:
        chunk = data[pos:]
        probe = self._tail + chunk
        i = probe.find(BODY_END)
        if i < 0:
            self.body_bytes += len(chunk)
            self._tail = probe[-4:]
            return len(data)
        used = i + len(BODY_END) - len(self._tail)   # bytes of `chunk` up to the terminator
        self.body_end(frame, pushed, used)
        return pos + used

    # -- server side -------------------------------------------------------------------
    def _server(self, data: bytes, frame: int, ts: int) -> None:
        pos = 0
        n = len(data)
        while pos < n and not self.tls:
            nl = data.find(b"\n", pos)
            if nl < 0:
                self._append_line(self._sbuf, data[pos:])
                return
            self._append_line(self._sbuf, data[pos:nl])
            pos = nl + 1
            line = bytes(self._sbuf).rstrip(b"\r")
            self._sbuf.clear()
            self._reply_line(line, frame, ts)

    def _reply_line(self, line: bytes, frame: int, ts: int) -> None:
        if len(line) < 3 or not line[:3].isdigit() or (len(line) > 3 and line[3:4] not in b" -"):
            self.malformed += 1
            return
        if line[3:4] == b"-":
            return   # a continuation line: the final line carries the reply
        code = int(line[:3])
        self.reply(code, frame, ts,
                   line[4:ERROR_TEXT + 4].decode("utf-8", "replace").strip() if code >= 400 else "")

    def reply(self, code: int, frame: int, ts: int, text: str = "") -> None:
        """A final reply line was read (``code``, and for codes of 400 and more its text),
        completed by segment ``frame``."""
        if code >= 400:
            verb = self.verbs[self._pending[0]] if self._pending else None
            if not self.error_replies:
                self.error_replies = []
            self.error_replies.append(ErrorReply(verb, code, text, frame))
        if self.state is ClientState.BODY and self._body_gap:
            # the body's end was in bytes never captured; the server's reply shows it ended
            self.body_end(self._body_frame, self._body_pushed)
        if not self._pending:
            r = Reply(code, frame, ts)
            if self.greeting is None and not self.verbs:
                self.greeting = r
            else:
                self.unsolicited.append(r)
            return
        k = self._pending[0]
        verb = self.verbs[k]
        if verb == "AUTH" and code == 334:
            self._auth_continue = True
            return
        self._pending.pop(0)
        p, b = self.packed, k * CW
        p[b + C_CODE] = code
        p[b + C_RFRAME] = frame
        if verb == "DATA":
            if code == 354:
                if self.state is ClientState.AWAIT_DATA_GO:
                    self.state = ClientState.BODY
                    self._tail = b"\r\n"
            elif self.state is ClientState.AWAIT_DATA_GO:
                self.state = ClientState.COMMAND   # DATA refused: no body follows
        elif verb == "STARTTLS" and code == 220:
            self.tls = True
            self.state = ClientState.TLS
            self.tls_watch = TlsWatch()

    # -- report ------------------------------------------------------------------------
    def _rows(self) -> Iterator[tuple[str, int, int, int, int]]:
        """(verb, frame, pushed, reply code, reply frame) per command, -1 for none."""
        p = self.packed.tolist()
        return zip(self.verbs, p[C_FRAME::CW], p[C_PUSHED::CW], p[C_CODE::CW], p[C_RFRAME::CW])

    @property
    def commands(self) -> list[Command]:
        """The commands in order, as objects (made on each call)."""
        return [Command(v, f, u == 1, c if c >= 0 else None, rf if rf >= 0 else None)
                for v, f, u, c, rf in self._rows()]

    def to_dict(self) -> dict[str, object]:
        return {
            "commands": [{"verb": v, "frame": f, "pushed": u == 1,
                          "reply_code": c if c >= 0 else None,
                          "reply_frame": rf if rf >= 0 else None}
                         for v, f, u, c, rf in self._rows()],
            "tls": self.tls,
            "messages": self.messages,
            "body_bytes": self.body_bytes,
            "greeting_code": self.greeting.code if self.greeting else None,
            "unsolicited_replies": [{"code": r.code, "frame": r.frame} for r in self.unsolicited],
            "malformed_lines": self.malformed,
            "lines_truncated": self.lines_truncated,
            "error_replies": [{"verb": e.verb, "code": e.code, "text": e.text, "frame": e.frame}
                              for e in self.error_replies],
            "tls_handshake": self.tls_watch.to_dict() if self.tls_watch is not None else None,
        }


HELLO = ("EHLO", "HELO", "LHLO")


def smtp_of(app: object) -> Optional[SmtpDialogue]:
    """The session's SMTP dialogue if it is SMTP: on a port known as SMTP, or begun on a
    "220" banner and confirmed by the client's EHLO, HELO or LHLO (FTP greets with 220
    too, then says USER). None for anything else."""
    if not isinstance(app, SmtpDialogue):
        return None
    if app.by_banner and not any(v in HELLO for v in app.verbs):
        return None
    return app


def _verb(line: bytes) -> str:
    word = line.split(None, 1)[0] if line.strip() else b""
    word = word.split(b":", 1)[0]
    if 0 < len(word) <= 12 and word.isalpha() and word.isascii():
        return word.decode("ascii").upper()
    return "UNKNOWN"
