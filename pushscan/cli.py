"""The command line: ``pushscan analyze`` (click). Only this module and the sources
touch the outside world."""
from __future__ import annotations

import os
import sys
from typing import Any, Optional

import click

from . import __version__
from .errors import EXIT_INPUT, EXIT_USAGE, PushscanError

FORMATS = ("text", "json", "jsonl")


def _fail(exc: PushscanError) -> None:
    click.echo(f"pushscan: error: {exc}", err=True)
    sys.exit(exc.exit_code)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pushscan")
def main() -> None:
    """Find out why SMTP (and other TCP) sessions die: PSH analysis of packet captures.

    Exit codes: 0 analysed (whatever was found), 2 usage error, 3 unreadable input.
    """


@main.command()
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
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the report here (atomically) instead of standard output.")
@click.option("--color/--no-color", default=None, help="Colour in text output (default: on a terminal).")
def analyze(captures: tuple[str, ...], fmt: str, ports: tuple[int, ...], all_tcp: bool,
            outgoing: str, local: tuple[str, ...], separate: bool, engine: str,
            output: Optional[str], color: Optional[bool]) -> None:
    """Rebuild TCP sessions from CAPTURE files (pcap, pcapng, .gz; '-' is standard input),
    report PSH per direction and turn, and say why sessions died.

    Several files are one capture in time order (rotated files); frame numbers then
    continue from file to file (see inputs[].first_frame).
    """
    from .analysis import SCHEMA, Analysis, Options, groups
    from .output import JsonDocument, JsonLines

    try:
        opts = Options(ports=ports, all_tcp=all_tcp, outgoing=outgoing, local=local,
                       separate=separate, engine=engine)
    except PushscanError as exc:
        _fail(exc)
    if captures.count("-") > 1:
        _fail(PushscanError("standard input ('-') can be given only once"))
    sink = _Sink(output)
    stream = sink.stream
    is_tty = stream.isatty() if hasattr(stream, "isatty") else False
    use_color = is_tty if color is None else color

    exit_code = 0
    try:
        with _progress(captures) as progress:
            for group in groups(list(captures), opts):
                head = {"schema": SCHEMA, "pushscan_version": __version__, "engine": engine}
                writer = JsonDocument(stream, head) if fmt == "json" else \
                    JsonLines(stream) if fmt == "jsonl" else None
                a = Analysis(group, opts, on_session=writer.session if writer else None,
                             progress=progress, keep_sessions=writer is None, ordered=fmt != "jsonl")
                report = a.run()
                for err in a.unreadable:
                    click.echo(f"pushscan: error: {err}", err=True)
                    exit_code = EXIT_INPUT
                for inp in report["inputs"]:
                    for e in inp["errors"]:
                        if not any(e == u.problem and inp["path"] == u.path for u in a.unreadable):
                            click.echo(f"pushscan: warning: {inp['path']}: {e} "
                                       "(the part before it was analysed)", err=True)
                if len(a.unreadable) == len(group):
                    continue   # nothing was read: the error line says it all
                if writer is not None:
                    writer.finish(report)
                else:
                    from .render import render_text
                    render_text(report, stream, use_color)
        sink.commit()
    except PushscanError as exc:
        sink.abort()
        _fail(exc)
    except KeyboardInterrupt:
        sink.abort()
        click.echo("pushscan: interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sink.abort()
        sys.exit(0)
    sys.exit(exit_code)


class _Sink:
    """Standard output, or a file written atomically (temporary file, then rename)."""

    def __init__(self, path: Optional[str]) -> None:
        self.path = path
        if path is None:
            self.stream = sys.stdout
            self.tmp = None
        else:
            self.tmp = f"{path}.{os.getpid()}.tmp"
            try:
                self.stream = open(self.tmp, "w", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                _fail(PushscanError(f"cannot write {path}: {exc.strerror}"))

    def commit(self) -> None:
        if self.tmp is not None:
            self.stream.close()
            os.replace(self.tmp, self.path)  # type: ignore[arg-type]

    def abort(self) -> None:
        if self.tmp is not None:
            self.stream.close()
            try:
                os.unlink(self.tmp)
            except OSError:
                pass


class _progress:
    """A progress bar on stderr when stderr is a terminal and the inputs' size is known."""

    def __init__(self, captures: tuple[str, ...]) -> None:
        self.total = 0
        for p in captures:
            try:
                self.total += os.path.getsize(p) if p != "-" else 0
            except OSError:
                pass
        self.bar: Any = None

    def __enter__(self) -> Any:
        if not sys.stderr.isatty() or self.total < (32 << 20):
            return None
        from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn
        self.bar = Progress("reading", BarColumn(), DownloadColumn(), TimeRemainingColumn(),
                            transient=True)
        self.bar.start()
        task = self.bar.add_task("read", total=self.total)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()
