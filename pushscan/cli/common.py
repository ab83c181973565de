"""What the commands share: failing with a one-line error, stopping on signals, the
options that shape an analysis, the progress bar. Outputs are ``pushscan.output``'s."""
from __future__ import annotations

import os
import signal
import sys
from typing import Any, NoReturn

import click

from ..errors import OutputError, PushscanError


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


def analysis_options(f: Any) -> Any:
    """The options that shape an analysis, shared by follow, plot and report."""
    for opt in reversed([
        click.option("--port", "ports", type=click.IntRange(1, 65535), multiple=True, help="Extra SMTP port."),
        click.option("--outgoing", type=click.Choice(["client", "server"]), default="client", show_default=True),
        click.option("--local", "local", multiple=True, metavar="CIDR"),
        click.option("--all-tcp", is_flag=True, help="Consider every TCP session, not only SMTP."),
        click.option("--engine", type=click.Choice(["native", "scapy", "tshark"]), default="native",
                     show_default=True),
    ]):
        f = opt(f)
    return f


def options_of(ports: tuple[int, ...], outgoing: str, local: tuple[str, ...], all_tcp: bool, engine: str) -> Any:
    from ..analysis import Options
    return Options(ports=ports, outgoing=outgoing, local=local, all_tcp=all_tcp, engine=engine)


