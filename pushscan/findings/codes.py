"""The findings' vocabulary: codes and their severities, verdicts, their precedence and
their remedies. Data, read by ``assess.py``, the reports and the CI gate."""
from __future__ import annotations

from enum import Enum

class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


class Code(str, Enum):
    UNPUSHED_BEFORE_RESET = "UNPUSHED_BEFORE_RESET"
    UNPUSHED_TURN = "UNPUSHED_TURN"
    PEER_RESET = "PEER_RESET"
    NO_ANSWER = "NO_ANSWER"
    RETRANSMISSIONS = "RETRANSMISSIONS"
    OVERLAP_CONFLICT = "OVERLAP_CONFLICT"
    LOCAL_RESET = "LOCAL_RESET"
    CAPTURE_GAP = "CAPTURE_GAP"


SEVERITY = {
    Code.UNPUSHED_BEFORE_RESET: Severity.ERROR,
    Code.PEER_RESET: Severity.ERROR,
    Code.NO_ANSWER: Severity.ERROR,
    Code.UNPUSHED_TURN: Severity.WARNING,
    Code.RETRANSMISSIONS: Severity.WARNING,
    Code.OVERLAP_CONFLICT: Severity.WARNING,
    Code.LOCAL_RESET: Severity.INFO,
    Code.CAPTURE_GAP: Severity.INFO,
}


class Verdict(str, Enum):
    OK = "ok"
    PUSH_PROBLEM = "push_problem"
    PEER_RESET = "peer_reset"
    NO_ANSWER = "no_answer"
    NETWORK_LOSS = "network_loss"
    INCOMPLETE = "incomplete"


# Which verdict a session gets when its findings imply several: the first in this order.
# (A finding implies a verdict when it explains the session's end: see ``assess.py``.)
PRECEDENCE = (
    Verdict.NO_ANSWER,       # nothing answered the SYNs
    Verdict.PUSH_PROBLEM,    # the peer reset while unpushed outgoing data waited
    Verdict.PEER_RESET,      # the peer reset otherwise
    Verdict.NETWORK_LOSS,    # outgoing data retransmitted, and the session died
)


REMEDY = {
    Verdict.PUSH_PROBLEM: (
        "The sending TCP stack must set PSH on the last segment of each write "
        "(RFC 1122 4.2.2.2); for LAN Manager TCP/IP set ForcePushBit=1 in the [TCPIP] "
        "section of PROTOCOL.INI (TCPTSR.EXE 2.2b or later)."),
    Verdict.PEER_RESET: (
        "The peer's application or host dropped the session: check its logs at the reset "
        "time (crash, timeout, connection limit, anti-spam policy)."),
    Verdict.NO_ANSWER: (
        "The server did not answer: check that the host is up, the route to it, and "
        "firewalls that drop SYNs."),
    Verdict.NETWORK_LOSS: (
        "Data was lost on the path: check interface errors, duplex and MTU settings, and "
        "firewalls or links that drop packets."),
    Verdict.INCOMPLETE: (
        "The capture does not cover the whole session: capture from before it starts "
        "until after it ends."),
}
