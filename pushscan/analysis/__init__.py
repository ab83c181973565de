"""Wiring the stages together: over capture files (``run.Analysis``), several at once
(``parallel``), or over a live capture (``live.Monitor``)."""
from .grouping import Group
from .options import Options
from .run import Analysis, captures, groups, make_tracker, one_capture, time_order

__all__ = ["Analysis", "Group", "Options", "captures", "groups", "make_tracker", "one_capture",
           "time_order"]
