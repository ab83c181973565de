"""What the commands share: failing with a one-line error, writing outputs, the
options that shape an analysis, the progress bar."""
from __future__ import annotations

import os
import sys
from typing import Any, Optional

import click

from ..errors import PushscanError


def fail(exc: PushscanError) -> None:
    click.echo(f"pushscan: error: {exc}", err=True)
    sys.exit(exc.exit_code)


class Sink:
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
                fail(PushscanError(f"cannot write {path}: {exc.strerror}"))

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


def write_atomically(path: str, data: bytes) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        fail(PushscanError(f"cannot write {path}: {exc.strerror}"))


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


