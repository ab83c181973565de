"""``--cluster`` and ``--shards`` for ``analyze`` and ``check``: the checks a command line
needs before any work, the connection, and progress on standard error (tasks done /
total, and the Dask dashboard's link when the scheduler serves one)."""
from __future__ import annotations

import sys
from typing import Any, Callable, Iterator, Optional

import click

from ..errors import UsageError
from ..sources.streams import rereadable


class ClusterRun:
    """A connection to a Dask cluster for one command; ``close`` when done."""

    def __init__(self, address: str) -> None:
        from ..cluster import connect
        self.cluster = connect(address)
        self.bar: Any = None

    def announce(self) -> None:
        c = self.cluster
        where = "a LocalCluster on this machine" if c.local is not None else f"the Dask scheduler {c.address}"
        click.echo(f"pushscan: on {where}: {c.workers} worker(s), {c.threads} thread(s)"
                   + (f"; dashboard {c.dashboard}" if c.dashboard else ""), err=True)

    def progress(self) -> Optional[Callable[[int, int], None]]:
        """Tasks done / total, drawn on standard error when it is a terminal."""
        if not sys.stderr.isatty():
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
        self.bar = Progress("Dask tasks", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            transient=True)
        self.bar.start()
        task = self.bar.add_task("tasks", total=None)

        def done(n: int, total: int) -> None:
            self.bar.update(task, completed=n, total=total)
        return done

    def run(self, groups: list[list[str]], opts: Any, shards: Optional[int], as_text: bool,
            announce: bool) -> Iterator[Any]:
        """``cluster.on_cluster`` for these captures (``(report, unreadable)`` per group)."""
        from ..cluster import on_cluster
        if announce or sys.stderr.isatty():
            self.announce()
        return on_cluster(groups, opts, self.cluster, shards, as_text, self.progress())

    def map(self, fn: Callable[..., Any], work: list[tuple[Any, ...]]) -> list[Any]:
        """``fn(*args)`` for each ``args`` on the cluster, results in order."""
        from ..cluster import map_tasks
        if sys.stderr.isatty():
            self.announce()
        return map_tasks(self.cluster, fn, work, self.progress())

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
        self.cluster.close()


def on_cluster_checked(address: Optional[str], shards: Optional[int], jobs: int,
                       inputs: tuple[str, ...]) -> Optional[ClusterRun]:
    """The cluster to run on (None: this process), after the checks that make a wrong
    command line a usage error before any work."""
    if address is None:
        if shards is not None:
            raise UsageError("--shards splits captures between the tasks of a cluster: give --cluster too")
        return None
    if jobs > 1:
        raise UsageError("--jobs and --cluster exclude each other (the cluster's workers run the tasks)")
    streams = [p for p in inputs if not rereadable(p)]
    if streams:
        what = "standard input" if streams[0] == "-" else f"{streams[0]} (not a regular file)"
        raise UsageError(f"--cluster: {what} cannot be read by the cluster's workers; give files "
                         "on a file system they share")
    return ClusterRun(address)
