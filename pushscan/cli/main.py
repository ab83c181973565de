"""The command line (click): the ``pushscan`` group and the program's entry point. Only
the CLI and the sources touch the outside world."""
from __future__ import annotations

import os
import sys

import click

from ..version import __version__
from .analyze import analyze
from .check import check
from .compare import compare
from .evidence import follow, plot, report
from .live import live


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pushscan")
def main() -> None:
    """Find out why SMTP (and other TCP) sessions die: PSH analysis of packet captures.

    Exit codes: 0 analysed (whatever was found), 2 usage error, 3 unreadable input.
    """


for command in (analyze, check, compare, follow, plot, report, live):
    main.add_command(command)


def run() -> None:
    """The program's entry point (``pushscan`` and ``python -m pushscan``): ``main``, then
    leave without tearing the interpreter down one object at a time, which after a big
    analysis takes a tenth of a second or more. Output streams are flushed first; nothing
    else is pending by then (output files are written atomically before ``main`` returns,
    worker pools and capture programs are shut down)."""
    code: object = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code
    if not isinstance(code, int):
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass   # a closed pipe: nothing more can be said there
    os._exit(code)
