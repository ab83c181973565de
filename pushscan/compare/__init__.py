"""``pushscan compare``: two captures of the same traffic at two points of a path; which
session is which at both, and what the network between them changed (lost, injected,
flags, payload, options), with the middlebox feature to look at.

``pairing`` and ``segments`` (which session and which segment is which) and ``findings``
(what changed, the verdict) are sans-I/O; ``gather`` reads the files; ``run`` wires them
into the report document; ``text`` renders it.
"""
from .codes import PRECEDENCE, REMEDY, SEVERITY, PathCode, PathVerdict
from .run import compare, compare_points, same_file

__all__ = ["PRECEDENCE", "REMEDY", "SEVERITY", "PathCode", "PathVerdict", "compare",
           "compare_points", "same_file"]
