"""Several analyses at once, in worker processes (``-j N``).

Each piece of work runs in a process of its own, at most ``jobs`` at once, and its result
comes back in the order given. A worker that dies (killed, out of memory) or fails with
an unexpected error gives a ``WorkerLost`` for its piece of work, naming what happened;
the others go on. Workers ignore Ctrl-C (the parent ends them), die with the parent
(``PR_SET_PDEATHSIG``, SIGKILL included), and are killed if the parent stops early.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
import traceback
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Generator, Iterator, Optional, Sequence

from ..errors import InputError
from ..report.json_stream import compact_json
from ..sources.lifeline import die_with_parent
from .options import Options
from .run import Analysis


class WorkerLost(Exception):
    """A piece of work gave no result: ``reason`` says why (``killed by SIGKILL``,
    ``exit code 1``, or the unexpected error); ``detail`` is its traceback, if any."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


def exit_reason(code: Optional[int]) -> str:
    """A process's end in words, from ``multiprocessing``'s exit code."""
    if code is None:
        return "still running"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else f"signal {-code}"
        return f"killed by {name}" + (", perhaps by the kernel's out-of-memory killer"
                                      if -code == signal.SIGKILL else "")
    return f"exit code {code}"


def _work(conn: Connection, parent: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """A worker: one piece of work, its result (or the error) sent back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)        # the parent handles Ctrl-C
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)
    die_with_parent(signal.SIGKILL, parent)
    try:
        answer: tuple[str, Any] = ("ok", fn(*args))
    except BaseException as exc:  # any failure is the parent's to report
        answer = ("error", (f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    try:
        conn.send(answer)
    except BaseException as exc:  # the result could not be sent (e.g. not picklable)
        conn.send(("error", (f"{type(exc).__name__}: {exc}", traceback.format_exc())))
    conn.close()
    os._exit(0)               # no interpreter teardown: the parent has what it needs


def _context() -> Any:
    """fork where it exists (the worker inherits the loaded modules and kernels)."""
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def in_processes(fn: Callable[..., Any], work: Sequence[tuple[Any, ...]],
                 jobs: int) -> Iterator[Any]:
    """``fn(*args)`` for every ``args`` in ``work``, in up to ``jobs`` processes at
    once; each result (or a ``WorkerLost``) in the order of ``work``."""
    ctx = _context()
    me = os.getpid()
    running: dict[int, tuple[Any, Connection]] = {}
    done: dict[int, Any] = {}
    started = given = 0
    try:
        while given < len(work):
            while len(running) < jobs and started < len(work):
                receive, send = ctx.Pipe(duplex=False)
                p = ctx.Process(target=_work, args=(send, me, fn, work[started]), daemon=True)
                p.start()
                send.close()
                running[started] = (p, receive)
                started += 1
            if given in done:
                yield done.pop(given)
                given += 1
                continue
            ready = set(wait([c for _, c in running.values()] + [p.sentinel for p, _ in running.values()]))
            for i, (p, conn) in list(running.items()):
                if conn not in ready and p.sentinel not in ready:
                    continue
                result: Any
                try:
                    kind, value = conn.recv()
                    result = value if kind == "ok" else WorkerLost(*value)
                except (EOFError, OSError):     # it died before it could answer
                    p.join()
                    result = WorkerLost(exit_reason(p.exitcode))
                conn.close()
                p.join()
                del running[i]
                done[i] = result
    finally:
        for p, conn in running.values():       # stopped early: no worker is left behind
            p.kill()
            p.join()
            conn.close()


def analyze_group(group: list[str], opts: Options, readahead: bool = True,
                  as_text: bool = False) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Analyse one group of files in this process: the report (sessions kept) and the
    unreadable inputs as (path, problem). Used by ``-j`` worker processes. ``as_text``:
    sessions as their compact JSON (bytes), which crosses to the parent process several
    times faster than dictionaries do (and the parent need not encode them again)."""
    texts: list[bytes] = []
    a = Analysis(group, opts, readahead=readahead, keep_sessions=not as_text,
                 on_session=(lambda doc: texts.append(compact_json(doc))) if as_text else None)
    report = a.run()
    if as_text:
        report["sessions"] = texts
    return report, [(u.path, u.problem) for u in a.unreadable]


def in_parallel(groups_: list[list[str]], opts: Options, jobs: int, as_text: bool = False
                ) -> Generator[tuple[dict[str, Any], list[InputError]] | WorkerLost, None, None]:
    """Analyse groups in ``jobs`` processes; results in the groups' order (sessions as
    JSON text with ``as_text``), or a ``WorkerLost`` for a group whose worker died."""
    # each analysis of a big input reads ahead on a second core; with fewer cores than
    # that, the workers do not (they would only take cores from each other)
    readahead = (os.cpu_count() or 1) >= 2 * min(jobs, len(groups_))
    for result in in_processes(analyze_group, [(g, opts, readahead, as_text) for g in groups_], jobs):
        if isinstance(result, WorkerLost):
            yield result
        else:
            report, unread = result
            yield report, [InputError(p, m) for p, m in unread]
