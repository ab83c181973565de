"""What the commands share: failing with a one-line error, stopping on signals, the
options that shape an analysis, the progress bar. Outputs are ``pushscan.output``'s."""
from __future__ import annotations

import os
import signal
import sys
from typing import Any, NoReturn

import click

from ..errors import OutputError, PushscanError
from ..sources.engines import ENGINES


EXIT_INTERRUPTED = 130     # Ctrl-C, as shells report it (128 + SIGINT)


def fail(exc: PushscanError) -> NoReturn:
    from ..report.output import silence_stdout
    click.echo(f"pushscan: error: {exc}", err=True)
    if isinstance(exc, OutputError):
        silence_stdout()
    sys.exit(exc.exit_code)


class Stopped(BaseException):
    """SIGTERM or SIGHUP (a CI time-out, a closed terminal) asked pushscan to stop. A
    BaseException, like KeyboardInterrupt: it unwinds everything, so that outputs in
    progress are removed on the way out; the exit code is 128 + the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _stop(signum: int, _frame: Any) -> None:
    raise Stopped(signum)


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP raise ``Stopped`` in the main thread (``live`` replaces this
    with a clean stop of the capture)."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)


class ProgressBar:
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


def _apply(f: Any, options: list[Any]) -> Any:
    for opt in reversed(options):
        f = opt(f)
    return f


def smtp_options(f: Any) -> Any:
    """What is SMTP and which side is judged: ``--smtp-port``, ``--all-tcp``,
    ``--outgoing``, ``--local``, and how frames are read (``--engine``)."""
    return _apply(f, [
        click.option("--smtp-port", "smtp_ports", type=click.IntRange(1, 65535), multiple=True,
                     metavar="N", help="Also treat server port N as SMTP (repeatable); 25, 465, 587 "
                     "and 2525 always are."),
        click.option("--all-tcp", is_flag=True, help="Every TCP session, not only SMTP ones."),
        click.option("--outgoing", type=click.Choice(["client", "server"]), default="client",
                     show_default=True, help="Whose data is 'outgoing' (the side whose pushing is judged)."),
        click.option("--local", "local", multiple=True, metavar="CIDR",
                     help="Outgoing = data sent by an address in CIDR (repeatable)."),
        click.option("--engine", type=click.Choice(ENGINES), default="native", show_default=True,
                     help="How frames become segments: pushscan's own reader (fast), scapy, or "
                          "tshark via pyshark (reads every format tshark reads)."),
    ])


MERGE = click.option("--merge", is_flag=True, help="All files are one capture, in time order "
                     "(default: only the pieces of a ring set join).")


def merge_option(f: Any) -> Any:
    """``--merge`` (commands that show one capture)."""
    return MERGE(f)


def file_options(f: Any) -> Any:
    """Which files named together are one capture: ``--merge``, ``--separate``."""
    return _apply(f, [MERGE, click.option("--separate", is_flag=True,
                                          help="Every file is a capture of its own.")])


def select_options(f: Any, sessions: bool = True) -> Any:
    """What is reported: ``--host``, ``--port``, ``--session``, ``--verdict``."""
    from ..analysis.select import VERDICTS
    opts = [
        click.option("--host", "hosts", multiple=True, metavar="IP|CIDR",
                     help="Only sessions with an endpoint in it (repeatable)."),
        click.option("--port", "sel_ports", type=click.IntRange(1, 65535), multiple=True, metavar="N",
                     help="Only sessions with an endpoint on port N (repeatable)."),
    ]
    if sessions:
        opts.append(click.option("--session", "sessions", type=click.IntRange(0), multiple=True,
                                 metavar="ID", help="Only this session (repeatable)."))
    opts.append(click.option("--verdict", "verdicts", type=click.Choice(VERDICTS), multiple=True,
                             help="Only sessions with this verdict (repeatable)."))
    return _apply(f, opts)


def color_option(f: Any) -> Any:
    return click.option("--color", type=click.Choice(["auto", "always", "never"]), default="auto",
                        show_default=True, help="Colour in text output (auto: on a terminal, "
                        "unless NO_COLOR is set).")(f)


def cluster_option(f: Any) -> Any:
    """``--cluster`` (``pushscan.cluster``)."""
    return click.option("--cluster", metavar="tcp://HOST:PORT|local", default=None,
                        help="Run on this Dask scheduler (or a LocalCluster on this machine); needs "
                             "pip install 'pushscan[cluster]' and inputs the workers can read.")(f)


def cluster_options(f: Any) -> Any:
    """``--cluster`` and ``--shards``."""
    return _apply(f, [
        cluster_option,
        click.option("--shards", type=click.IntRange(1), default=None, metavar="N",
                     help="With --cluster: split each capture into N shards by flow (default: "
                          "one per 512 MB, up to the cluster's threads)."),
    ])


def options_from(kw: dict[str, Any], **more: Any) -> Any:
    """The ``Options`` of the shared options in ``kw`` (taken out of it), plus ``more``."""
    from ..analysis import Options
    from ..analysis.select import Selection
    taken: dict[str, Any] = {k: kw.pop(k) for k in ("smtp_ports", "all_tcp", "outgoing", "local", "engine",
                                    "merge", "separate") if k in kw}
    if "smtp_ports" in taken:
        taken["ports"] = taken.pop("smtp_ports")
    select = Selection(hosts=kw.pop("hosts", ()), ports=kw.pop("sel_ports", ()),
                       sessions=kw.pop("sessions", ()), verdicts=kw.pop("verdicts", ()))
    return Options(**taken, select=select, **more)
