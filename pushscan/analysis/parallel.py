"""Several analyses at once, in worker processes (``-j N``)."""
from __future__ import annotations

import os
from typing import Any, Iterator

from ..errors import InputError
from ..report.json_stream import compact_json
from .options import Options
from .run import Analysis


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


def in_parallel(groups_: list[list[str]], opts: Options, jobs: int,
                as_text: bool = False) -> Iterator[tuple[dict[str, Any], list[InputError]]]:
    """Analyse groups in ``jobs`` processes; results in the groups' order (sessions as
    JSON text with ``as_text``)."""
    from concurrent.futures import ProcessPoolExecutor
    from itertools import repeat

    # each analysis of a big input reads ahead on a second core; with fewer cores than
    # that, the workers do not (they would only take cores from each other)
    readahead = (os.cpu_count() or 1) >= 2 * min(jobs, len(groups_))
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        for report, unread in pool.map(analyze_group, groups_, repeat(opts), repeat(readahead),
                                       repeat(as_text)):
            yield report, [InputError(p, m) for p, m in unread]
