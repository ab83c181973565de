"""The command line (click): the ``pushscan`` group and the program's entry point. Only
the CLI and the sources touch the outside world."""
from __future__ import annotations

import os
import signal
import sys

import click

from ..errors import EXIT_OK, OutputError, PushscanError
from ..report.output import discard_pending, guard_standard_streams, silence_stdout
from ..sources import streams
from ..version import __version__
from .analyze import analyze
from .check import check
from .compare import compare
from .common import EXIT_INTERRUPTED, Stopped, stop_on_signals
from .evidence import follow, plot, report
from .live import live


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pushscan")
def main() -> None:
    """Find out why SMTP (and other TCP) sessions die: PSH analysis of packet captures.

    Exit codes: 0 analysed (whatever was found), 1 check: a trace failed, 2 usage error,
    3 an input cannot be read, 4 live: the capture failed, 5 an output cannot be
    written, 130 interrupted (Ctrl-C), 128+N stopped by signal N (SIGTERM: 143).
    """


for command in (analyze, check, compare, follow, plot, report, live):
    main.add_command(command)


def _say(text: str) -> None:
    click.echo(f"pushscan: {text}", err=True)


def run() -> None:
    """The program's entry point (``pushscan`` and ``python -m pushscan``): ``main``,
    then leave without tearing the interpreter down one object at a time, which after a
    big analysis takes a tenth of a second or more.

    Whatever way ``main`` ends (done, an error, Ctrl-C, SIGTERM or SIGHUP), temporary
    output files are removed and standard output is flushed; a write error there is
    said in one line (exit code 5). Worker processes and capture programs end with
    pushscan (they are tied to its life)."""
    guard_standard_streams()
    streams.notify = _say
    stop_on_signals()
    code: object = EXIT_OK
    try:
        code = main.main(standalone_mode=False, prog_name="pushscan")
    except SystemExit as exc:
        code = exc.code
    except click.exceptions.Abort:        # Ctrl-C (click turns it into Abort)
        _quiet_signals()
        _say("interrupted")
        code = EXIT_INTERRUPTED
    except KeyboardInterrupt:
        _quiet_signals()
        _say("interrupted")
        code = EXIT_INTERRUPTED
    except Stopped as exc:
        _quiet_signals()
        _say(f"stopped by {signal.Signals(exc.signum).name}")
        code = 128 + exc.signum
    except click.UsageError as exc:     # a bad option or argument: one line, like every error
        where = exc.ctx.command_path if exc.ctx is not None else "pushscan"
        _say(f"error: {exc.format_message()} (see {where} --help)")
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except PushscanError as exc:
        _say(f"error: {exc}")
        code = exc.exit_code
        if isinstance(exc, OutputError):
            silence_stdout()
    except BrokenPipeError:
        code = EXIT_OK          # the reader went away (| head): nothing more to say
    finally:
        _quiet_signals()
        discard_pending()
    if not isinstance(code, int):
        if code is not None:
            print(code, file=sys.stderr)
        code = EXIT_OK if code is None else 1
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
    except BrokenPipeError:
        pass
    except PushscanError as exc:
        _say(f"error: {exc}")
        if code == EXIT_OK:
            code = exc.exit_code
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code)


def _quiet_signals() -> None:
    """On the way out: a second Ctrl-C or SIGTERM must not interrupt the cleaning up."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        try:
            signal.signal(sig, signal.SIG_IGN)
        except (ValueError, OSError):
            pass
