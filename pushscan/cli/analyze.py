"""``pushscan analyze``."""
from __future__ import annotations

import sys
from typing import Any, Optional

import click

from ..errors import EXIT_INPUT, PushscanError
from ..findings.numbers import duration
from ..report.output import Output, refuse_overwrite
from ..version import __version__
from .common import (ProgressBar, cluster_options, color_option, fail, file_options, options_from,
                     select_options, smtp_options)
from .cluster import on_cluster_checked

FORMATS = ("text", "json", "jsonl")


@click.command()
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="text: tables and findings; json: one document per capture; jsonl: a line per "
                   "session as it ends, then one with the summary.")
@smtp_options
@file_options
@select_options
@click.option("--max-sessions", type=click.IntRange(1), default=50_000, show_default=True,
              help="Open sessions kept; past it the least recently active end as 'timeout'.")
@click.option("--max-buffer", type=click.IntRange(0), default=8 << 20, show_default=True,
              help="Out-of-order bytes held per direction; past it the hole becomes a capture gap.")
@click.option("--max-line", type=click.IntRange(16), default=4096, show_default=True,
              help="Bytes kept of one SMTP command or reply line.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the report here (a file: complete or not at all) instead of standard output.")
@color_option
@click.option("-j", "--jobs", type=click.IntRange(1), default=1, show_default=True,
              help="Analyse this many captures at once in parallel processes.")
@cluster_options
def analyze(captures: tuple[str, ...], fmt: str, output: Optional[str], color: str, jobs: int,
            cluster: Optional[str], shards: Optional[int], **kw: Any) -> None:
    """Rebuild TCP sessions from CAPTURE files (pcap, pcapng, .gz; '-' is standard input),
    report PSH per direction and turn, and say why sessions died.

    Files that are pieces of one ring set (consecutive in time, same link types, named
    alike) are one capture, frame numbers continuing from file to file (see
    inputs[].first_frame); any other file is a capture of its own, with a report of its
    own. --merge and --separate decide instead.
    """
    from ..analysis import Analysis, captures as find_captures
    from ..analysis.parallel import WorkerLost, in_parallel
    from ..report.document import SCHEMA
    from ..report.json_stream import JsonDocument, JsonLines
    from ..report.terminal import use_color, width_of

    try:
        opts = options_from(kw, max_sessions=kw.pop("max_sessions"), max_buffer=kw.pop("max_buffer"),
                            max_line=kw.pop("max_line"))
        if captures.count("-") > 1:
            raise PushscanError("standard input ('-') can be given only once")
        refuse_overwrite([("-o", output)], captures)
        out = Output(output)
    except PushscanError as exc:
        fail(exc)
    try:
        where = on_cluster_checked(cluster, shards, jobs, captures)
    except PushscanError as exc:
        out.abort()
        fail(exc)
    stream = out.stream
    colored, width = use_color(color, stream), width_of(stream)

    exit_code = 0
    with out, ProgressBar(captures if where is None else ()) as progress:
        todo, why = find_captures(list(captures), opts)
        if why:
            click.echo(f"pushscan: note: {len(todo)} captures, each reported alone ({'; '.join(why)}); "
                       "--merge reads the files as one capture", err=True)
        as_text = fmt in ("json", "jsonl")      # the formats whose sessions come encoded
        paths = [list(g.paths) for g in todo]
        results: Any = None
        if where is not None:
            results = where.run(paths, opts, shards, as_text, fmt == "text")
        elif jobs > 1 and len(todo) > 1:
            results = in_parallel(paths, opts, jobs, as_text=as_text)
        try:
            for group in todo:
                head = {"schema": SCHEMA, "pushscan_version": __version__, "engine": opts.engine}
                writer = JsonDocument(stream, head) if fmt == "json" else \
                    JsonLines(stream) if fmt == "jsonl" else None
                table = TextSessions() if writer is None else None
                emit = writer.session if writer else table.add  # type: ignore[union-attr]
                if results is None:
                    a = Analysis(list(group.paths), opts, on_session=emit, progress=progress,
                                 keep_sessions=False, ordered=fmt != "jsonl")
                    report, unreadable = a.run(), a.unreadable
                else:
                    result = next(results)
                    if isinstance(result, WorkerLost):
                        what = f"the worker process analysing it died ({result.reason})" if where is None \
                            else result.reason
                        click.echo(f"pushscan: error: {', '.join(group.paths)}: {what}; nothing of it is "
                                   "reported", err=True)
                        exit_code = EXIT_INPUT
                        continue
                    report, unreadable = result
                    for item in report["sessions"]:     # encoded for the JSON formats
                        if writer is not None:
                            writer.session_json(item)
                        else:
                            emit(item)
                    report["sessions"] = []
                if len(group.paths) > 1:
                    report["capture"] = {"how": group.how, "files": list(group.paths)}
                for err in unreadable:
                    click.echo(f"pushscan: error: {err}", err=True)
                    exit_code = EXIT_INPUT
                for inp in report["inputs"]:
                    if "clock_went_back" in inp:
                        c = inp["clock_went_back"]
                        click.echo(f"pushscan: warning: {inp['path']}: the capture's clock went backwards "
                                   f"({c['packets']:,} packet(s) earlier than the one before, by up to "
                                   f"{duration(int(c['largest_seconds'] * 1e9))}, first at frame "
                                   f"{c['first_frame']}): times across it are unknown", err=True)
                    for e in inp["errors"]:
                        if not any(e == u.problem and inp["path"] == u.path for u in unreadable):
                            click.echo(f"pushscan: warning: {inp['path']}: {e} "
                                       "(the part before it was analysed)", err=True)
                if len(unreadable) == len(group.paths):
                    continue   # nothing was read: the error line says it all
                if writer is not None:
                    writer.finish(report)
                else:
                    from ..report.text import render_text
                    report["sessions"] = table.sessions  # type: ignore[union-attr]
                    if len(group.paths) > 1:
                        report["joined"] = group.describe()
                    render_text(report, stream, colored, omitted_ok=table.omitted_ok,  # type: ignore[union-attr]
                                width=width, omitted=table.omitted)  # type: ignore[union-attr]
        finally:
            if results is not None:
                results.close()      # workers or cluster tasks still running are ended
            if where is not None:
                where.close()
    sys.exit(exit_code)


class TextSessions:
    """Sessions for the text table: all of them in small captures; past ``LIMIT``, only
    those whose verdict is not ``ok``, and of those the first ``LISTED`` (the others are
    counted by verdict): memory stays bounded, and so does the time to render, however
    many sessions fail (a flood of refused connections)."""

    LIMIT = 500
    LISTED = 1000

    def __init__(self) -> None:
        self.sessions: list[dict[str, Any]] = []
        self.omitted_ok = 0
        self.omitted: dict[str, int] = {}     # verdict -> sessions past LISTED
        self._large = False

    def add(self, doc: dict[str, Any]) -> None:
        if self._large:
            if doc["verdict"] == "ok":
                self.omitted_ok += 1
                return
            if len(self.sessions) >= self.LISTED:
                self.omitted[doc["verdict"]] = self.omitted.get(doc["verdict"], 0) + 1
                return
        self.sessions.append(doc)
        if not self._large and len(self.sessions) > self.LIMIT:
            self._large = True
            kept = [d for d in self.sessions if d["verdict"] != "ok"]
            self.omitted_ok += len(self.sessions) - len(kept)
            self.sessions = kept[:self.LISTED]
            for d in kept[self.LISTED:]:
                self.omitted[d["verdict"]] = self.omitted.get(d["verdict"], 0) + 1
