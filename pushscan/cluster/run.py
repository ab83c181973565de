"""The client side of a run on the cluster: submit the plan, spill each result to a local
temporary file as it arrives, hand back each group's report in order.

The contract is that of ``analysis.parallel.in_parallel``: an iterator of ``(report,
unreadable)`` per group, in the groups' order, whose ``report["sessions"]`` is an iterator
(compact JSON bytes with ``as_text``, documents otherwise) in id order, streamed from the
spilled files: the client holds one session per shard at a time, whatever the capture.
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
import tempfile
import uuid
from collections import Counter
from dataclasses import replace
from typing import Any, Callable, Iterator, Optional

from ..analysis.options import Options
from ..analysis.parallel import WorkerLost
from ..analysis.shard import merge_sessions, merge_summaries
from ..errors import InputError, PushscanError
from ..report.json_stream import compact_json
from .client import Cluster
from .plan import Task, plan
from .tasks import read_head, read_sessions, read_starts, run_task


def _unreadable(head: dict[str, Any], worker_view: bool) -> list[InputError]:
    """The inputs a task could not read; a file that this machine sees and the worker
    does not is said to be missing there (the cluster needs a shared file system)."""
    out = []
    for path, problem in head["unreadable"]:
        if worker_view and problem == "no such file" and os.path.exists(path):
            problem = (f"no such file on Dask worker {head['worker']} (the workers must see "
                       "the same paths: a shared file system)")
        out.append(InputError(path, problem))
    return out


def _group_report(files: list[str], as_text: bool, tidy: Callable[[], None],
                  wanted: tuple[int, ...] = (), filters: Optional[dict[str, Any]] = None
                  ) -> tuple[dict[str, Any], list[InputError]]:
    """A group's report from its tasks' spilled results (one per shard, in shard order).
    ``wanted``: the session ids asked for (``--session``), chosen here, after the merge
    gave the ids: the shards' tasks ran without that filter (a shard does not know the
    ids); the summary's counts are then those of the wanted sessions, completed when the
    last session has been read."""
    heads = [read_head(f) for f in files]
    head = heads[0]
    unreadable = _unreadable(head, worker_view=True)
    for inp in head["inputs"]:
        for u in unreadable:
            if inp["path"] == u.path and inp["errors"]:
                inp["errors"] = [u.problem if e.startswith("no such file") else e for e in inp["errors"]]
    summary = merge_summaries([h["summary"] for h in heads]) if len(heads) > 1 else head["summary"]

    def sessions() -> Iterator[Any]:
        try:
            if len(files) == 1:
                for line in read_sessions(files[0]):
                    yield line if as_text else json.loads(line)
                return
            docs = merge_sessions([(json.loads(b) for b in read_sessions(f)) for f in files],
                                  [read_starts(f) for f in files])
            if wanted:
                docs = _only(docs, set(wanted), summary, filters or {})
            for doc in docs:
                yield compact_json(doc) if as_text else doc
        finally:
            tidy()

    return {"inputs": head["inputs"], "sessions": sessions(), "summary": summary}, unreadable


def _only(docs: Iterator[dict[str, Any]], wanted: set[int], summary: dict[str, Any],
          filters: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The sessions whose id is wanted; ``summary`` counts them once all are read."""
    sessions, verdicts, codes, seen = 0, Counter[str](), Counter[str](), 0
    for doc in docs:
        seen += 1
        if doc["id"] in wanted:
            sessions += 1
            verdicts[doc["verdict"]] += 1
            codes.update(f["code"] for f in doc["findings"])
            yield doc
    summary["sessions"] = sessions
    summary["by_verdict"] = dict(sorted(verdicts.items()))
    summary["by_code"] = dict(sorted(codes.items()))
    selected = summary.setdefault("selected", {"filters": {}, "left_out": 0})
    selected["filters"] = filters
    selected["left_out"] += seen - sessions


def on_cluster(groups: list[list[str]], opts: Options, cluster: Cluster,
               shards: Optional[int] = None, as_text: bool = False,
               task_done: Optional[Callable[[int, int], None]] = None) -> \
        Iterator[tuple[dict[str, Any], list[InputError]] | WorkerLost]:
    """Analyse ``groups`` on ``cluster`` (``shards`` per capture, or as ``plan`` chooses);
    ``task_done(done, total)`` after each task. A group one of whose tasks failed (an
    error in pushscan on the worker; Dask already reran the tasks of workers that died)
    gives a ``WorkerLost`` naming the failure, as a dead ``-j`` worker does; the other
    groups go on."""
    from distributed import as_completed

    groups = [[os.path.abspath(p) for p in g] for g in groups]
    tasks = plan(groups, cluster.threads, shards)
    wanted = opts.select.sessions
    # a shard does not know the capture's ids: --session is applied after the merge
    sharded = replace(opts, select=replace(opts.select, sessions=())) if wanted else opts
    run_id = uuid.uuid4().hex[:12]
    client = cluster.client
    futures = {client.submit(run_task, t.paths, sharded if t.shard else opts, t.shard, pure=False,
                             key=f"pushscan-{run_id}-{i}"): i for i, t in enumerate(tasks)}
    by_group: dict[int, list[int]] = {}
    for i, t in enumerate(tasks):
        by_group.setdefault(t.group, []).append(i)
    spill = tempfile.mkdtemp(prefix="pushscan-cluster-")
    done: set[int] = set()
    failed: dict[int, str] = {}        # group -> why one of its tasks failed
    nxt = 0
    try:
        for fut in as_completed(list(futures)):
            i = futures[fut]
            t = tasks[i]
            spilled = os.path.join(spill, f"{i}.gz")
            try:
                blob = fut.result()
            except Exception as exc:   # noqa: BLE001 - Dask's own failure (a task lost for good)
                why = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                blob = gzip.compress(json.dumps({"failed": type(exc).__name__ + (f": {why}" if why else ""),
                                                 "worker": "the cluster"}).encode() + b"\n")
            with open(spilled, "wb") as f:
                f.write(blob)
            del blob
            fut.release()
            head = read_head(spilled)
            if "failed" in head:
                shard = f" (shard {t.shard[0] + 1} of {t.shard[1]})" if t.shard else ""
                failed.setdefault(t.group, f"its Dask task{shard} failed on {head['worker']}: {head['failed']}")
            done.add(i)
            if task_done is not None:
                task_done(len(done), len(tasks))
            while nxt < len(groups) and all(j in done for j in by_group[nxt]):
                files = [os.path.join(spill, f"{j}.gz") for j in by_group[nxt]]
                if nxt in failed:
                    _remover(files)()
                    yield WorkerLost(failed[nxt])
                else:
                    yield _group_report(files, as_text, _remover(files), wanted if len(files) > 1 else (),
                                        opts.select.describe())
                nxt += 1
    finally:
        for fut in futures:
            fut.cancel()
        shutil.rmtree(spill, ignore_errors=True)


def map_tasks(cluster: Cluster, fn: Callable[..., Any], work: list[tuple[Any, ...]],
              task_done: Optional[Callable[[int, int], None]] = None) -> list[Any]:
    """``fn(*args)`` for every ``args`` of ``work`` as one task each (``check``: a trace
    per task), results in the order of ``work``; a task whose function raised gives the
    exception in its place (Dask reruns the tasks of a worker that died)."""
    from distributed import as_completed

    run_id = uuid.uuid4().hex[:12]
    futures = {cluster.client.submit(fn, *args, pure=False, key=f"pushscan-{run_id}-{i}"): i
               for i, args in enumerate(work)}
    results: list[Any] = [None] * len(work)
    try:
        for n, fut in enumerate(as_completed(list(futures)), 1):
            try:
                results[futures[fut]] = fut.result()
            except Exception as exc:   # noqa: BLE001 - the caller reports it with its input
                results[futures[fut]] = exc
            fut.release()
            if task_done is not None:
                task_done(n, len(work))
    finally:
        for fut in futures:
            fut.cancel()
    return results


def _remover(files: list[str]) -> Callable[[], None]:
    def remove() -> None:
        for f in files:
            try:
                os.unlink(f)
            except OSError:
                pass
    return remove


__all__ = ["Task", "map_tasks", "on_cluster"]
