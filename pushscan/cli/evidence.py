"""``pushscan follow``, ``plot`` and ``report``: the evidence commands."""
from __future__ import annotations

from typing import Any, Optional

import click

from ..errors import PushscanError, UsageError
from ..report.output import Output, refuse_overwrite
from .common import fail, file_options, merge_option, options_from, select_options, smtp_options


def _session_of(captures: tuple[str, ...], sid: Optional[int], kw: dict[str, Any]) -> tuple[Any, Any]:
    """The options, and the session to show: ``--session``, or the one that ``--host``,
    ``--port`` and ``--verdict`` leave."""
    from ..report.evidence import one_session, pick_session
    opts = options_from(kw)
    if sid is not None and opts.select:
        raise UsageError("--session names the session: --host, --port and --verdict only pick one "
                         "when it is not given")
    if sid is None:
        sid = pick_session(list(captures), opts)
    return opts, one_session(list(captures), opts, sid)


def _picking(f: Any) -> Any:
    """``--session ID``, or ``--host``/``--port``/``--verdict`` that leave one session."""
    f = select_options(f, sessions=False)
    return click.option("--session", "sid", type=click.IntRange(0), default=None, metavar="ID",
                        help="Session id, as analyze shows it (or pick it with --host, --port, "
                             "--verdict).")(f)


@click.command()
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@_picking
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None,
              help="Write it here (a file: complete or not at all) instead of standard output.")
@smtp_options
@merge_option
def follow(captures: tuple[str, ...], sid: Optional[int], fmt: str, output: Optional[str], **kw: Any) -> None:
    """Follow one session: its SMTP dialogue (or, for other TCP, its data) in time order,
    each segment marked pushed or not, and how long unpushed data waited and what ended
    the wait."""
    import json as _json

    from ..report.follow import follow_document, follow_text
    try:
        refuse_overwrite([("-o", output)], captures)
        with Output(output) as out:     # a bad place is said before the work
            _, (s, doc) = _session_of(captures, sid, kw)
            fdoc = follow_document(s, doc)
            out.stream.write(_json.dumps(fdoc, indent=1) + "\n" if fmt == "json" else follow_text(fdoc))
    except PushscanError as exc:
        fail(exc)


@click.command()
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@_picking
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="FILE.png or FILE.svg.")
@smtp_options
@merge_option
def plot(captures: tuple[str, ...], sid: Optional[int], output: str, **kw: Any) -> None:
    """Draw a session's time-sequence graph (sequence number against time, both directions):
    pushed and unpushed data drawn differently, the peer's ACKs, resets, unpushed waits."""
    import io as _io

    from ..report.plot import plot as draw
    fmt = output.rsplit(".", 1)[-1].lower()
    try:
        if fmt not in ("png", "svg"):
            raise UsageError(f"{output}: the graph is written as .png or .svg")
        refuse_overwrite([("-o", output)], captures)
        with Output(output, binary=True) as out:   # a bad place is said before the work
            _, (s, doc) = _session_of(captures, sid, kw)
            buf = _io.BytesIO()
            drawn = draw(s, doc, buf, fmt)
            out.write(buf.getvalue())
    except PushscanError as exc:
        fail(exc)
    c2s, s2c = drawn["client_to_server"], drawn["server_to_client"]
    click.echo(f"{output}: session {doc['id']}: client>server {c2s['pushed']} pushed + {c2s['unpushed']} "
               f"unpushed segments, server>client {s2c['pushed']} + {s2c['unpushed']}, "
               f"{drawn['resets']} reset(s), {c2s['waits'] + s2c['waits']} unpushed wait(s)")


@click.command()
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="report.html")
@smtp_options
@file_options
@select_options
def report(captures: tuple[str, ...], output: str, **kw: Any) -> None:
    """Write one self-contained HTML report (works offline): per capture a summary, a
    sortable table of its worst sessions, each flagged session's findings with frames and
    remedy, and their graphs."""
    from ..report.html import report_html
    try:
        refuse_overwrite([("-o", output)], captures)
        with Output(output, binary=True) as out:   # a bad place is said before the work
            page, info = report_html(list(captures), options_from(kw))
            # a file name that is not UTF-8 is written as the bytes it is made of
            out.write(page.encode("utf-8", "surrogateescape"))
    except PushscanError as exc:
        fail(exc)
    click.echo(f"{output}: {info['sessions']} session(s), {info['graphs']} flagged with graphs")
