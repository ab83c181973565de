"""``pushscan analyze``."""
from __future__ import annotations

import sys
from typing import Any, Optional

import click

from ..errors import EXIT_INPUT, PushscanError
from ..report.output import Output, refuse_overwrite
from ..version import __version__
from .common import ProgressBar, fail

FORMATS = ("text", "json", "jsonl")


@click.command()
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True,
              help="text: tables and findings; json: one document; jsonl: a line per session as it ends.")
@click.option("--port", "ports", type=click.IntRange(1, 65535), multiple=True,
              help="Also treat this server port as SMTP (repeatable); 25, 465, 587, 2525 always are.")
@click.option("--all-tcp", is_flag=True, help="Report every TCP session, not only SMTP ones.")
@click.option("--outgoing", type=click.Choice(["client", "server"]), default="client", show_default=True,
              help="Which side's data is 'outgoing' (the side whose pushing is judged).")
@click.option("--local", "local", multiple=True, metavar="CIDR",
              help="Outgoing = data sent by an address in CIDR (repeatable); overrides --outgoing "
                   "for sessions with exactly one local side.")
@click.option("--separate", is_flag=True, help="Analyse each file alone instead of as one capture.")
@click.option("--engine", type=click.Choice(["native", "scapy", "tshark"]), default="native",
              show_default=True,
              help="How frames become segments: pushscan's own reader (fast), scapy, or tshark "
                   "via pyshark (reads every format tshark reads).")
@click.option("--max-sessions", type=click.IntRange(1), default=50_000, show_default=True,
              help="Open sessions kept; past it the least recently active end as 'timeout'.")
@click.option("--max-buffer", type=click.IntRange(0), default=8 << 20, show_default=True,
              help="Out-of-order bytes held per direction; past it the hole becomes a capture gap.")
@click.option("--max-line", type=click.IntRange(16), default=4096, show_default=True,
              help="Bytes kept of one SMTP command or reply line.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the report here (a file: complete or not at all) instead of standard output.")
@click.option("--color/--no-color", default=None, help="Colour in text output (default: on a terminal).")
@click.option("-j", "--jobs", type=click.IntRange(1), default=1, show_default=True,
              help="With --separate, analyse this many files at once in parallel processes.")
def analyze(captures: tuple[str, ...], fmt: str, ports: tuple[int, ...], all_tcp: bool,
            outgoing: str, local: tuple[str, ...], separate: bool, engine: str,
            max_sessions: int, max_buffer: int, max_line: int,
            output: Optional[str], color: Optional[bool], jobs: int) -> None:
    """Rebuild TCP sessions from CAPTURE files (pcap, pcapng, .gz; '-' is standard input),
    report PSH per direction and turn, and say why sessions died.

    Several files are one capture in time order (rotated files); frame numbers then
    continue from file to file (see inputs[].first_frame).
    """
    from ..analysis import Analysis, Options, groups
    from ..analysis.parallel import WorkerLost, in_parallel
    from ..report.document import SCHEMA
    from ..report.json_stream import JsonDocument, JsonLines

    try:
        opts = Options(ports=ports, all_tcp=all_tcp, outgoing=outgoing, local=local,
                       separate=separate, engine=engine, max_sessions=max_sessions,
                       max_buffer=max_buffer, max_line=max_line)
        if captures.count("-") > 1:
            raise PushscanError("standard input ('-') can be given only once")
        refuse_overwrite([("-o", output)], captures)
        out = Output(output)
    except PushscanError as exc:
        fail(exc)
    stream = out.stream
    use_color = stream.isatty() if color is None else color

    exit_code = 0
    with out, ProgressBar(captures) as progress:
        todo = groups(list(captures), opts)
        # JSON formats: workers send sessions already encoded
        parallel = in_parallel(todo, opts, jobs, as_text=fmt in ("json", "jsonl")) \
            if jobs > 1 and len(todo) > 1 else None
        try:
            for group in todo:
                head = {"schema": SCHEMA, "pushscan_version": __version__, "engine": engine}
                writer = JsonDocument(stream, head) if fmt == "json" else \
                    JsonLines(stream) if fmt == "jsonl" else None
                table = TextSessions() if writer is None else None
                emit = writer.session if writer else table.add  # type: ignore[union-attr]
                if parallel is None:
                    a = Analysis(group, opts, on_session=emit, progress=progress, keep_sessions=False,
                                 ordered=fmt != "jsonl")
                    report, unreadable = a.run(), a.unreadable
                else:
                    result = next(parallel)
                    if isinstance(result, WorkerLost):
                        click.echo(f"pushscan: error: {', '.join(group)}: the worker process analysing "
                                   f"it died ({result.reason}); nothing of it is reported", err=True)
                        exit_code = EXIT_INPUT
                        continue
                    report, unreadable = result
                    # JSON from the workers for the JSON formats, documents otherwise
                    for item in report["sessions"]:
                        if writer is not None:
                            writer.session_json(item)
                        else:
                            emit(item)
                    report["sessions"] = []
                for err in unreadable:
                    click.echo(f"pushscan: error: {err}", err=True)
                    exit_code = EXIT_INPUT
                for inp in report["inputs"]:
                    for e in inp["errors"]:
                        if not any(e == u.problem and inp["path"] == u.path for u in unreadable):
                            click.echo(f"pushscan: warning: {inp['path']}: {e} "
                                       "(the part before it was analysed)", err=True)
                if len(unreadable) == len(group):
                    continue   # nothing was read: the error line says it all
                if writer is not None:
                    writer.finish(report)
                else:
                    from ..report.text import render_text
                    report["sessions"] = table.sessions  # type: ignore[union-attr]
                    render_text(report, stream, use_color, omitted_ok=table.omitted_ok)  # type: ignore[union-attr]
                    table.say_omitted(stream)  # type: ignore[union-attr]
        finally:
            if parallel is not None:
                parallel.close()     # workers still running are ended
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

    def say_omitted(self, out: Any) -> None:
        """After the report: how many failed sessions the table left out."""
        if self.omitted:
            n = sum(self.omitted.values())
            verdicts = ", ".join(f"{v} {k}" for v, k in sorted(self.omitted.items(), key=lambda x: -x[1]))
            out.write(f"{n} more session(s) not listed (first {self.LISTED} shown; not listed: "
                      f"{verdicts}); --format json or jsonl lists every session\n")
