"""What a Dask worker runs: one ``Analysis`` (a capture, or one shard of it), its result
as a gzip-compressed JSON-lines blob: a header line (inputs, summary, unreadable inputs,
the worker), then the sessions in order of first frame, one per line."""
from __future__ import annotations

import gzip
import json
import socket
from typing import Any, Iterator, Optional

from ..analysis.options import Options
from ..analysis.run import Analysis
from ..report.json_stream import compact_json


def run_task(paths: tuple[str, ...], opts: Options, shard: Optional[tuple[int, int]]) -> bytes:
    """Analyse ``paths`` as one capture (only ``shard``'s sessions, if given)."""
    from dataclasses import replace

    lines: list[tuple[int, bytes]] = []
    a = Analysis(list(paths), replace(opts, shard=shard), keep_sessions=False,
                 on_session=lambda doc: lines.append((doc["first_frame"], compact_json(doc))))
    report = a.run()
    lines.sort(key=lambda x: x[0])      # id order (a run's reorder buffer may release early)
    head = {"inputs": report["inputs"], "summary": report["summary"],
            "unreadable": [[u.path, u.problem] for u in a.unreadable],
            "worker": socket.gethostname()}
    return gzip.compress(b"\n".join([json.dumps(head).encode()] + [b for _, b in lines]) + b"\n",
                         compresslevel=1)


def read_head(path: str) -> dict[str, Any]:
    """The header of a task's result written to ``path``."""
    with gzip.open(path, "rb") as f:
        return dict(json.loads(f.readline()))


def read_sessions(path: str) -> Iterator[bytes]:
    """The sessions of a task's result at ``path`` (compact JSON, in order of first frame)."""
    with gzip.open(path, "rb") as f:
        f.readline()
        for line in f:
            line = line.rstrip(b"\n")
            if line:
                yield line
