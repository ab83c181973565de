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
    ZERO_WINDOW_STALL = "ZERO_WINDOW_STALL"
    ZERO_WINDOW = "ZERO_WINDOW"
    INJECTED_RESET = "INJECTED_RESET"
    IDLE_TIMEOUT = "IDLE_TIMEOUT"
    PMTU_BLACKHOLE = "PMTU_BLACKHOLE"
    ICMP_UNREACHABLE = "ICMP_UNREACHABLE"
    PEER_VANISHED = "PEER_VANISHED"
    PEER_RESTARTED = "PEER_RESTARTED"
    SMTP_REFUSED = "SMTP_REFUSED"
    TLS_FAILED = "TLS_FAILED"
    LOCAL_GAVE_UP = "LOCAL_GAVE_UP"
    ONE_SIDED = "ONE_SIDED"
    NO_GREETING = "NO_GREETING"


SEVERITY = {
    Code.UNPUSHED_BEFORE_RESET: Severity.ERROR,
    Code.PEER_RESET: Severity.ERROR,
    Code.NO_ANSWER: Severity.ERROR,
    Code.ZERO_WINDOW_STALL: Severity.ERROR,
    Code.INJECTED_RESET: Severity.ERROR,
    Code.IDLE_TIMEOUT: Severity.ERROR,
    Code.PMTU_BLACKHOLE: Severity.ERROR,
    Code.ICMP_UNREACHABLE: Severity.ERROR,
    Code.PEER_VANISHED: Severity.ERROR,
    Code.PEER_RESTARTED: Severity.ERROR,
    Code.SMTP_REFUSED: Severity.ERROR,
    Code.TLS_FAILED: Severity.ERROR,
    Code.NO_GREETING: Severity.ERROR,
    Code.UNPUSHED_TURN: Severity.WARNING,
    Code.RETRANSMISSIONS: Severity.WARNING,
    Code.OVERLAP_CONFLICT: Severity.WARNING,
    Code.LOCAL_GAVE_UP: Severity.WARNING,
    Code.ONE_SIDED: Severity.WARNING,
    Code.LOCAL_RESET: Severity.INFO,
    Code.CAPTURE_GAP: Severity.INFO,
    Code.ZERO_WINDOW: Severity.INFO,
}


class Verdict(str, Enum):
    OK = "ok"
    PUSH_PROBLEM = "push_problem"
    PEER_RESET = "peer_reset"
    NO_ANSWER = "no_answer"
    NETWORK_LOSS = "network_loss"
    INCOMPLETE = "incomplete"
    RECEIVER_STALLED = "receiver_stalled"
    MIDDLEBOX_RESET = "middlebox_reset"
    PATH_DROPPED_STATE = "path_dropped_state"
    PATH_MTU = "path_mtu"
    UNREACHABLE = "unreachable"
    PEER_VANISHED = "peer_vanished"
    PEER_RESTARTED = "peer_restarted"
    SMTP_REFUSED = "smtp_refused"
    TLS_FAILED = "tls_failed"
    LOCAL_TIMEOUT = "local_timeout"
    NO_GREETING = "no_greeting"


# Which verdict a session gets when its findings imply several: the first in this order.
# A finding implies a verdict when it explains the session's end (``assess.py``). The
# order puts what the capture proves about the path and the peer's application before
# what it shows of the end itself: a receiver that stopped reading explains a reset that
# followed unpushed data (no PSH would have helped), a reset the peer never sent explains
# the "peer reset", an SMTP refusal explains the close after it.
PRECEDENCE = (
    Verdict.INCOMPLETE,          # ONE_SIDED: a direction is missing, nothing can blame it
    Verdict.NO_ANSWER,           # nothing answered the SYNs
    Verdict.SMTP_REFUSED,        # the server refused (a reply of 4xx/5xx), then the end
    Verdict.NO_GREETING,         # the server closed, or said nothing, before its greeting
    Verdict.TLS_FAILED,          # the TLS handshake after STARTTLS (or on 465) failed
    Verdict.RECEIVER_STALLED,    # a zero window that never reopened
    Verdict.PATH_DROPPED_STATE,  # after an idle time the path no longer passed the session
    Verdict.MIDDLEBOX_RESET,     # a reset in the peer's name that the peer did not send
    Verdict.PEER_RESTARTED,      # the peer's stack no longer knew the session
    Verdict.PUSH_PROBLEM,        # the peer reset while unpushed outgoing data waited
    Verdict.UNREACHABLE,         # ICMP errors quoting the session, during it
    Verdict.PATH_MTU,            # full-size segments never passed, small ones did
    Verdict.PEER_VANISHED,       # the peer answered, then nothing, until the sender gave up
    Verdict.LOCAL_TIMEOUT,       # the outgoing side gave up sooner than RFC 5321 allows
    Verdict.PEER_RESET,          # the peer reset otherwise
    Verdict.NETWORK_LOSS,        # outgoing data retransmitted, and the session died
)


REMEDY = {
    Verdict.PUSH_PROBLEM: (
        "The sending TCP stack must set PSH on the last segment of each write "
        "(RFC 1122 4.2.2.2); for LAN Manager TCP/IP set ForcePushBit=1 in the [TCPIP] "
        "section of PROTOCOL.INI (TCPTSR.EXE 2.2b or later). Today's causes: a firewall or "
        "IPS that \"normalises\" TCP and clears PSH (compare captures on both sides of it: "
        "pushscan compare), or an embedded or legacy TCP stack; update or reconfigure it."),
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
        "until after it ends, on a point that sees both directions."),
    Verdict.RECEIVER_STALLED: (
        "The receiving application stopped reading (its buffer filled: zero window): it "
        "hung, is overloaded or blocked on something else (disk, a content filter, a "
        "DNS or policy lookup). Check it at that time; PSH is not the cause."),
    Verdict.MIDDLEBOX_RESET: (
        "A firewall, IPS or load balancer on the path sent the reset in the peer's name "
        "(its TTL or IP ID differ from the peer's packets): check its logs and policies "
        "(SMTP inspection or 'fixup', IPS signatures, connection limits)."),
    Verdict.PATH_DROPPED_STATE: (
        "A stateful firewall or NAT forgot the idle session: raise its idle timeout for "
        "SMTP above the sender's longest pause, or enable TCP keep-alives on the sender "
        "shorter than that timeout."),
    Verdict.PATH_MTU: (
        "A path MTU black hole: full-size packets are dropped and no ICMP 'fragmentation "
        "needed' / 'packet too big' comes back. Let that ICMP through, clamp the MSS on "
        "the tunnel or VPN (e.g. iptables TCPMSS --clamp-mss-to-pmtu), lower the MTU, or "
        "enable packetization-layer PMTU discovery (Linux net.ipv4.tcp_mtu_probing=1)."),
    Verdict.UNREACHABLE: (
        "A router says the peer is unreachable (see the ICMP errors' source and code): "
        "check routing and firewalls at that router; 'administratively prohibited' is a "
        "filter."),
    Verdict.PEER_VANISHED: (
        "The peer stopped answering anything, even TCP (host down, crashed, or the path to "
        "it broke): check the host and the route at that time."),
    Verdict.PEER_RESTARTED: (
        "The peer's TCP stack no longer knew the session (a reboot, a restarted service, "
        "a failover): check its uptime and logs at the reset time."),
    Verdict.SMTP_REFUSED: (
        "Not a network fault: the server refused with the reply quoted (4xx: try again "
        "later, e.g. greylisting or load; 5xx: policy, relay, reputation or recipient); "
        "read it and contact the receiving side's postmaster if needed."),
    Verdict.TLS_FAILED: (
        "The TLS handshake failed (see the alert): align the TLS versions and ciphers both "
        "sides allow, check the certificate and its chain, or disable STARTTLS towards "
        "this peer if policy allows."),
    Verdict.LOCAL_TIMEOUT: (
        "The sender gave up before the server answered, sooner than RFC 5321's timeouts "
        "(4.5.3.2: 5 minutes for most replies, 10 minutes after the message's final dot): "
        "raise the sender's SMTP timeouts."),
    Verdict.NO_GREETING: (
        "The server accepted the connection but sent no greeting: it is overloaded, "
        "rate-limits or blacklists the client (some close at once), or its SMTP service "
        "hangs; check its logs."),
}

# RFC 5321 4.5.3.2: how long a client should wait for the reply to each command (seconds);
# others: 5 minutes.
RFC5321_TIMEOUT_S = {"DATA": 120, "DATA body": 600, "BDAT": 600}
RFC5321_DEFAULT_TIMEOUT_S = 300
