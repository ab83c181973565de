"""Wiring the stages together: over capture files (``run.Analysis``), several at once
(``parallel``), or over a live capture (``live.Monitor``)."""
from .options import Options
from .run import Analysis, groups, make_tracker, time_order

__all__ = ["Analysis", "Options", "groups", "make_tracker", "time_order"]
