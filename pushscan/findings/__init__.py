"""Findings: a session's facts become findings (codes with frames), a verdict and a remedy."""
from .assess import EVIDENCE_NS, NS, assess, direction_name, remedy, rtt_ns, side_name
from .codes import PRECEDENCE, REMEDY, SEVERITY, Code, Severity, Verdict

__all__ = ["EVIDENCE_NS", "NS", "PRECEDENCE", "REMEDY", "SEVERITY", "Code", "Severity", "Verdict",
           "assess", "direction_name", "remedy", "rtt_ns", "side_name"]
