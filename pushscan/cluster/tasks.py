"""What a Dask worker runs: one ``Analysis`` (a capture, or one shard of it), its result
as a gzip-compressed JSON-lines blob: a header line (inputs, summary, unreadable inputs,
the worker), for a shard a line with the first frame of every session it tracked
(base64 of int64s: the merge numbers sessions as a run over the whole capture does),
then the sessions in order of first frame, one per line."""
from __future__ import annotations

import base64
import gzip
import json
import socket
from typing import Any, Iterator, Optional

import numpy as np

from ..analysis.options import Options
from ..analysis.run import Analysis
from ..report.json_stream import compact_json


def run_task(paths: tuple[str, ...], opts: Options, shard: Optional[tuple[int, int]]) -> bytes:
    """Analyse ``paths`` as one capture (only ``shard``'s sessions, if given). If pushscan
    fails on them, the result is a header saying so (``failed``): an error is data here,
    never an exception through Dask (whose client waits for ever on an exception it cannot
    rebuild)."""
    from dataclasses import replace

    lines: list[tuple[int, bytes]] = []
    try:
        a = Analysis(list(paths), replace(opts, shard=shard), keep_sessions=False,
                     on_session=lambda doc: lines.append((doc["first_frame"], compact_json(doc))))
        report = a.run()
    except Exception as exc:   # noqa: BLE001 - the client names it, with the capture
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        failed = {"failed": f"{type(exc).__name__}" + (f": {why}" if why else ""),
                  "worker": socket.gethostname()}
        return gzip.compress(json.dumps(failed).encode() + b"\n", compresslevel=1)
    lines.sort(key=lambda x: x[0])      # id order (a run's reorder buffer may release early)
    head = {"inputs": report["inputs"], "summary": report["summary"],
            "unreadable": [[u.path, u.problem] for u in a.unreadable],
            "worker": socket.gethostname(), "starts": a.starts is not None}
    starts = [base64.b64encode(np.asarray(sorted(a.starts), dtype="<i8").tobytes())] \
        if a.starts is not None else []
    return gzip.compress(b"\n".join([json.dumps(head).encode()] + starts + [b for _, b in lines]) + b"\n",
                         compresslevel=1)


def read_head(path: str) -> dict[str, Any]:
    """The header of a task's result written to ``path``."""
    with gzip.open(path, "rb") as f:
        return dict(json.loads(f.readline()))


def read_starts(path: str) -> Any:
    """A shard's sessions' first frames, sorted (a numpy array)."""
    with gzip.open(path, "rb") as f:
        f.readline()
        return np.frombuffer(base64.b64decode(f.readline().rstrip(b"\n")), dtype="<i8")


def read_sessions(path: str) -> Iterator[bytes]:
    """The sessions of a task's result at ``path`` (compact JSON, in order of first frame)."""
    with gzip.open(path, "rb") as f:
        if json.loads(f.readline()).get("starts"):
            f.readline()
        for line in f:
            line = line.rstrip(b"\n")
            if line:
                yield line
