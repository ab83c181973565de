"""What ``pushscan compare`` can say of the path between two capture points: codes, their
severities and remedies (the middlebox feature to look at), the pair verdicts and their
precedence. Data, read by ``findings.py``, the reports and the CI gate."""
from __future__ import annotations

from enum import Enum

from ..findings import Severity


class PathCode(str, Enum):
    PATH_LOSS = "PATH_LOSS"
    PATH_INJECTED_RESET = "PATH_INJECTED_RESET"
    PATH_PSH_STRIPPED = "PATH_PSH_STRIPPED"
    PATH_PSH_ADDED = "PATH_PSH_ADDED"
    PATH_MODIFIED = "PATH_MODIFIED"
    PATH_MSS_CLAMPED = "PATH_MSS_CLAMPED"


SEVERITY = {
    PathCode.PATH_INJECTED_RESET: Severity.ERROR,   # it ends the session, always
    PathCode.PATH_PSH_STRIPPED: Severity.ERROR,     # the original incident's cause
    PathCode.PATH_MODIFIED: Severity.WARNING,
    PathCode.PATH_LOSS: Severity.WARNING,
    PathCode.PATH_MSS_CLAMPED: Severity.INFO,       # usual on tunnels and PPPoE
    PathCode.PATH_PSH_ADDED: Severity.INFO,         # harmless: PSH only hurries delivery
}

REMEDY = {
    PathCode.PATH_PSH_STRIPPED: (
        "A firewall or IPS between the points clears PSH (TCP \"normalisation\"). Look at "
        "its TCP normalizer: on a Cisco ASA the tcp-map applied with 'set connection "
        "advanced-options' (its 'tcp-options' and flag settings), elsewhere the TCP "
        "normalisation or scrubbing profile of the IPS (e.g. Snort's normalize_tcp) and any "
        "rule that rewrites TCP flags (nftables 'tcp flags set', iptables mangle rules); "
        "stop it from clearing PSH, or exempt SMTP from it."),
    PathCode.PATH_PSH_ADDED: (
        "Something between the points sets PSH (a TCP normalizer or proxy re-segmenting): "
        "harmless to delivery; look at the same TCP normalisation settings if it surprises."),
    PathCode.PATH_LOSS: (
        "Segments were dropped between the points: the firewall's drop counters and logs "
        "(Cisco ASA 'show asp drop', IPS drop logs, policers and rate limits), interface "
        "errors and queue drops on the links and routers in between."),
    PathCode.PATH_INJECTED_RESET: (
        "A middlebox between the points reset the session in a peer's name: its logs at "
        "that time. Typical senders: SMTP inspection (Cisco ASA 'inspect esmtp' / the old "
        "'fixup protocol smtp', which resets on commands it does not allow), IPS "
        "signatures, connection or rate limits, TCP normalizer checks, idle timeouts."),
    PathCode.PATH_MODIFIED: (
        "A middlebox rewrote payload bytes: SMTP inspection ('ESMTP inspection': Cisco ASA "
        "'inspect esmtp', PIX 'fixup protocol smtp', which masks commands it does not know "
        "as XXXX, e.g. EHLO and STARTTLS), a mail proxy or an application-layer gateway. "
        "Turn the inspection off for this traffic or allow the extended commands."),
    PathCode.PATH_MSS_CLAMPED: (
        "A middlebox rewrote the SYN's MSS option (MSS clamping: Cisco ASA 'sysopt "
        "connection tcpmss', IOS 'ip tcp adjust-mss', iptables/nft TCPMSS "
        "--clamp-mss-to-pmtu). Usual and harmless on tunnels; check it fits the path's "
        "MTU, and that it is not far below it (small segments, slow transfers)."),
}


class PathVerdict(str, Enum):
    MIDDLEBOX_RESET = "middlebox_reset"     # an injected reset ended the session
    PSH_STRIPPED = "psh_stripped"           # the receiver waited for the PSH the path removed
    PAYLOAD_MODIFIED = "payload_modified"   # the path rewrote bytes, and the session died
    PATH_LOSS = "path_loss"                 # segments never arrived, and the session died
    PATH_CHANGED = "path_changed"           # the path changed the session, which survived
    CLEAN = "clean"                         # nothing changed between the points


# Which verdict a pair gets when several apply: the first in this order. A reset sent in
# a peer's name ends a session whatever else happened; a receiver that waited for PSH
# the sender did set is proof of the stripping; a rewrite or a loss explains a death only
# when nothing more direct does.
PRECEDENCE = (
    PathVerdict.MIDDLEBOX_RESET,
    PathVerdict.PSH_STRIPPED,
    PathVerdict.PAYLOAD_MODIFIED,
    PathVerdict.PATH_LOSS,
    PathVerdict.PATH_CHANGED,
    PathVerdict.CLEAN,
)

# the finding whose remedy a verdict takes
VERDICT_CODE = {
    PathVerdict.MIDDLEBOX_RESET: PathCode.PATH_INJECTED_RESET,
    PathVerdict.PSH_STRIPPED: PathCode.PATH_PSH_STRIPPED,
    PathVerdict.PAYLOAD_MODIFIED: PathCode.PATH_MODIFIED,
    PathVerdict.PATH_LOSS: PathCode.PATH_LOSS,
}
