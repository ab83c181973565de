"""Which tasks a run on the cluster makes: a task per group of files (one capture) that
is small, a task per shard of each big one. A session is never cut: a group stays one
capture, and a shard holds whole sessions (``analysis.shard``)."""
from __future__ import annotations

import math
import os
from typing import NamedTuple, Optional

# A capture this big (bytes, its files together) is split into shards when no shard
# count is asked for: below it, reading the capture once per shard costs more than the
# tracking it spreads (bench/cluster.py measures both).
SHARD_BYTES = 512 << 20


class Task(NamedTuple):
    group: int                     # index of the group (capture) in the run
    paths: tuple[str, ...]         # its files, in time order
    shard: Optional[tuple[int, int]]   # (number, of), or None: the whole capture


def _size(paths: list[str]) -> int:
    total = 0
    for p in paths:
        try:
            total += os.path.getsize(p)
        except OSError:
            pass
    return total


def shard_count(paths: list[str], threads: int, shards: Optional[int]) -> int:
    """Shards for one capture: ``shards`` if asked, else one per ``SHARD_BYTES`` of it, at
    most one per thread of the cluster."""
    if shards is not None:
        return max(1, shards)
    return max(1, min(threads, math.ceil(_size(paths) / SHARD_BYTES)))


def plan(groups: list[list[str]], threads: int, shards: Optional[int] = None) -> list[Task]:
    """The tasks for ``groups`` (each a list of files read as one capture)."""
    tasks: list[Task] = []
    for g, paths in enumerate(groups):
        n = shard_count(paths, threads, shards)
        if n == 1:
            tasks.append(Task(g, tuple(paths), None))
        else:
            tasks.extend(Task(g, tuple(paths), (k, n)) for k in range(n))
    return tasks
