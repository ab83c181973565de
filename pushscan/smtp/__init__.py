"""SMTP: the dialogue parser fed the two reassembled streams (sans-I/O)."""
from .dialogue import IMPLICIT_TLS_PORTS, SMTP_PORTS, SmtpDialogue, smtp_of

__all__ = ["IMPLICIT_TLS_PORTS", "SMTP_PORTS", "SmtpDialogue", "smtp_of"]
