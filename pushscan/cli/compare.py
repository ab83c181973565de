"""``pushscan compare``: two captures of one path, what the network between changed."""
from __future__ import annotations

import json
import sys
from typing import Any, Optional

import click

from ..errors import PushscanError
from ..report.output import Output, refuse_overwrite
from .common import color_option, fail, options_from, smtp_options


@click.command()
@click.argument("near", metavar="NEAR")
@click.argument("far", metavar="FAR")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--clock-offset", type=float, default=None, metavar="SECONDS",
              help="FAR's clock minus NEAR's, if known (default: estimated from matched packets).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write the report here (a file: complete or not at all) instead of standard output.")
@color_option
@smtp_options
def compare(near: str, far: str, fmt: str, clock_offset: Optional[float], output: Optional[str],
            color: str, **kw: Any) -> None:
    """Compare two captures of the same traffic taken at two points of a path (NEAR: near
    the sender, e.g. the gateway; FAR: near the receiver, e.g. the MX) at the same time.

    Pairs the sessions seen at both points (through NAT and sequence number
    randomisation), matches every segment with its copy, and reports what the path
    changed: PATH_LOSS, PATH_INJECTED_RESET, PATH_PSH_STRIPPED, PATH_PSH_ADDED,
    PATH_MODIFIED, PATH_MSS_CLAMPED; one-way delays and hops as facts. The clocks need not
    agree. Exit codes: 0 compared (whatever was found), 2 usage error, 3 unreadable input.
    """
    from ..compare import compare as run_compare, same_file
    from ..compare.text import render_text
    from ..report.terminal import use_color, width_of

    try:
        opts = options_from(kw)
        refuse_overwrite([("-o", output)], (near, far))
        out = Output(output)          # a bad place is said before the work
        if same_file(near, far):
            click.echo(f"pushscan: warning: NEAR and FAR are the same file ({near}): every session "
                       "pairs with itself and nothing can differ", err=True)
        doc = run_compare(near, far, opts, clock_offset)
    except PushscanError as exc:
        fail(exc)
    for inp in doc["inputs"]:
        for e in inp["errors"]:
            click.echo(f"pushscan: warning: {inp['path']}: {e} (the part before it was compared)",
                       err=True)
    with out:
        if fmt == "json":
            out.stream.write(json.dumps(doc, indent=1) + "\n")
        else:
            render_text(doc, out.stream, use_color(color, out.stream), width_of(out.stream))
    sys.exit(0)
