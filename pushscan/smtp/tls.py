"""TLS records after STARTTLS (or on port 465): enough of the handshake to tell whether it
completed, and the alert that ended it when it did not. No I/O, no decryption.

Fed each direction's bytes in order (``data``), as the SMTP dialogue is. Reads record
headers (content type, length) and, while they are in the clear, the first handshake
message of each record (ClientHello, ServerHello and the version it chose) and alerts
(level and description). Stops reading once the handshake is settled, or after
``RECORDS_READ`` records a side, so that a long encrypted session costs nothing more.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional

CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA = 20, 21, 22, 23
CLIENT_HELLO, SERVER_HELLO = 1, 2
RECORDS_READ = 64
SUPPORTED_VERSIONS = 43       # the extension a TLS 1.3 ServerHello names its version in

ALERTS = {0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac",
          21: "decryption_failed", 22: "record_overflow", 30: "decompression_failure",
          40: "handshake_failure", 41: "no_certificate", 42: "bad_certificate",
          43: "unsupported_certificate", 44: "certificate_revoked", 45: "certificate_expired",
          46: "certificate_unknown", 47: "illegal_parameter", 48: "unknown_ca",
          49: "access_denied", 50: "decode_error", 51: "decrypt_error", 60: "export_restriction",
          70: "protocol_version", 71: "insufficient_security", 80: "internal_error",
          86: "inappropriate_fallback", 90: "user_canceled", 100: "no_renegotiation",
          109: "missing_extension", 110: "unsupported_extension", 112: "unrecognized_name",
          113: "bad_certificate_status_response", 115: "unknown_psk_identity",
          116: "certificate_required", 120: "no_application_protocol"}
VERSIONS = {0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2",
            0x0304: "TLS 1.3"}


class Alert(NamedTuple):
    from_client: bool
    frame: int
    level: Optional[int]          # 1 warning, 2 fatal; None: encrypted (not readable)
    description: Optional[str]


class TlsWatch:
    """The TLS handshake of one session, as far as the capture shows it in the clear."""

    __slots__ = ("_buf", "_skip", "records", "app_data", "ccs", "client_hello", "server_hello",
                 "version", "alerts", "_app_after_client")

    def __init__(self) -> None:
        self._buf = {True: bytearray(), False: bytearray()}   # a record header in pieces
        self._skip = {True: 0, False: 0}      # bytes of the current record still to come
        self.records = {True: 0, False: 0}    # per side (True: the client)
        self.app_data = {True: 0, False: 0}   # application-data records
        self.ccs = {True: False, False: False}
        self.client_hello: Optional[int] = None   # frames
        self.server_hello: Optional[int] = None
        self.version: Optional[str] = None        # what the ServerHello chose
        self.alerts: list[Alert] = []
        self._app_after_client = False      # the server sent application data after the client's first

    @property
    def completed(self) -> bool:
        """The handshake finished: application data flows both ways (TLS 1.2: after both
        ChangeCipherSpecs; TLS 1.3: the client's Finished, then more records)."""
        c = self.app_data[True]
        if self.version == "TLS 1.3":
            return c >= 2 or (c >= 1 and self._app_after_client)
        return c >= 1 and self.ccs[True] and self.ccs[False]

    @property
    def settled(self) -> bool:
        """Nothing more is worth reading: completed, failed, or read long enough."""
        return self.completed or any(a.level == 2 for a in self.alerts) or \
            min(self.records.values()) >= RECORDS_READ

    def data(self, from_client: bool, data: bytes, frame: int) -> None:
        pos, n = 0, len(data)
        buf = self._buf[from_client]
        while pos < n and self.records[from_client] < RECORDS_READ:
            skip = self._skip[from_client]
            if skip:
                take = min(skip, n - pos)
                self._skip[from_client] -= take
                pos += take
                continue
            need = 5 - len(buf)
            buf += data[pos:pos + need]
            pos += need
            if len(buf) < 5:
                return
            ctype, length = buf[0], int.from_bytes(buf[3:5], "big")
            buf.clear()
            self.records[from_client] += 1
            body = data[pos:pos + length]       # what of the record this segment holds
            self._record(from_client, ctype, length, body, frame)
            self._skip[from_client] = length
            if ctype not in (CHANGE_CIPHER_SPEC, ALERT, HANDSHAKE, APPLICATION_DATA):
                self.records[from_client] = RECORDS_READ   # not TLS: stop reading it

    def gap(self, from_client: bool) -> None:
        """Bytes never captured: the record boundaries are lost; stop reading that side."""
        self.records[from_client] = RECORDS_READ

    def _record(self, from_client: bool, ctype: int, length: int, body: bytes, frame: int) -> None:
        if ctype == APPLICATION_DATA:
            if not from_client and self.app_data[True]:
                self._app_after_client = True
            self.app_data[from_client] += 1
        elif ctype == CHANGE_CIPHER_SPEC:
            self.ccs[from_client] = True
        elif ctype == ALERT:
            if length == 2 and len(body) >= 2 and not self.ccs[from_client]:
                self.alerts.append(Alert(from_client, frame, body[0], ALERTS.get(body[1], f"alert {body[1]}")))
            else:                                   # after ChangeCipherSpec: encrypted
                self.alerts.append(Alert(from_client, frame, None, None))
        elif ctype == HANDSHAKE and body and not self.ccs[from_client]:
            if body[0] == CLIENT_HELLO and from_client and self.client_hello is None:
                self.client_hello = frame
            elif body[0] == SERVER_HELLO and not from_client and self.server_hello is None:
                self.server_hello = frame
                self.version = _server_hello_version(body)

    def to_dict(self) -> dict[str, Any]:
        return {"client_hello_frame": self.client_hello, "server_hello_frame": self.server_hello,
                "version": self.version, "completed": self.completed,
                "records": {"client": self.records[True], "server": self.records[False]},
                "alerts": [{"from": "client" if a.from_client else "server", "frame": a.frame,
                            "level": {1: "warning", 2: "fatal"}.get(a.level or 0, "encrypted"),
                            "description": a.description} for a in self.alerts]}


def _server_hello_version(body: bytes) -> Optional[str]:
    """The version a ServerHello message (``body``: from its type byte) chose: the
    supported_versions extension's if it has one (TLS 1.3), else its legacy field."""
    if len(body) < 6 + 32 + 1:
        return None
    legacy = int.from_bytes(body[4:6], "big")
    p = 38
    p += 1 + body[p]                     # session id
    p += 3                               # cipher suite, compression method
    if p + 2 > len(body):
        return VERSIONS.get(legacy)
    end = min(len(body), p + 2 + int.from_bytes(body[p:p + 2], "big"))
    p += 2
    while p + 4 <= end:
        kind, ln = int.from_bytes(body[p:p + 2], "big"), int.from_bytes(body[p + 2:p + 4], "big")
        if kind == SUPPORTED_VERSIONS and ln == 2 and p + 6 <= end:
            return VERSIONS.get(int.from_bytes(body[p + 4:p + 6], "big"))
        p += 4 + ln
    return VERSIONS.get(legacy)
