"""``pushscan follow``, ``plot`` and ``report``: the evidence commands."""
from __future__ import annotations


import click

from ..errors import PushscanError
from ..report.output import Output, refuse_overwrite
from .common import analysis_options, fail, options_of


@click.command()
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@click.option("--session", "sid", type=click.IntRange(0), required=True, help="Session id, as analyze shows it.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@analysis_options
def follow(captures: tuple[str, ...], sid: int, fmt: str, ports: tuple[int, ...], outgoing: str,
           local: tuple[str, ...], all_tcp: bool, engine: str) -> None:
    """Follow one session: its SMTP dialogue (or, for other TCP, its data) in time order,
    each segment marked pushed or not, and how long unpushed data waited and what ended
    the wait."""
    import json as _json

    from ..report.evidence import one_session
    from ..report.follow import follow_document, follow_text
    try:
        s, doc = one_session(list(captures), options_of(ports, outgoing, local, all_tcp, engine), sid)
    except PushscanError as exc:
        fail(exc)
    fdoc = follow_document(s, doc)
    click.echo(_json.dumps(fdoc, indent=1) if fmt == "json" else follow_text(fdoc), nl=fmt == "json")


@click.command()
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@click.option("--session", "sid", type=click.IntRange(0), required=True, help="Session id, as analyze shows it.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="FILE.png or FILE.svg.")
@analysis_options
def plot(captures: tuple[str, ...], sid: int, output: str, ports: tuple[int, ...], outgoing: str,
         local: tuple[str, ...], all_tcp: bool, engine: str) -> None:
    """Draw a session's time-sequence graph (sequence number against time, both directions):
    pushed and unpushed data drawn differently, the peer's ACKs, resets, unpushed waits."""
    import io as _io

    from ..report.evidence import one_session
    from ..report.plot import plot as draw
    fmt = output.rsplit(".", 1)[-1].lower()
    try:
        if fmt not in ("png", "svg"):
            raise PushscanError(f"{output}: the graph is written as .png or .svg")
        refuse_overwrite([("-o", output)], captures)
        with Output(output, binary=True) as out:   # a bad place is said before the work
            s, doc = one_session(list(captures), options_of(ports, outgoing, local, all_tcp, engine), sid)
            buf = _io.BytesIO()
            drawn = draw(s, doc, buf, fmt)
            out.write(buf.getvalue())
    except PushscanError as exc:
        fail(exc)
    c2s, s2c = drawn["client_to_server"], drawn["server_to_client"]
    click.echo(f"{output}: client>server {c2s['pushed']} pushed + {c2s['unpushed']} unpushed segments, "
               f"server>client {s2c['pushed']} + {s2c['unpushed']}, {drawn['resets']} reset(s), "
               f"{c2s['waits'] + s2c['waits']} unpushed wait(s)")


@click.command()
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="report.html")
@analysis_options
def report(captures: tuple[str, ...], output: str, ports: tuple[int, ...], outgoing: str,
           local: tuple[str, ...], all_tcp: bool, engine: str) -> None:
    """Write one self-contained HTML report (works offline): summary, a sortable table of
    sessions, each finding with its frames and remedy, and the graph of every flagged
    session."""
    from ..report.html import report_html
    try:
        refuse_overwrite([("-o", output)], captures)
        with Output(output, binary=True) as out:   # a bad place is said before the work
            page, info = report_html(list(captures), options_of(ports, outgoing, local, all_tcp, engine))
            # a file name that is not UTF-8 is written as the bytes it is made of
            out.write(page.encode("utf-8", "surrogateescape"))
    except PushscanError as exc:
        fail(exc)
    click.echo(f"{output}: {info['sessions']} session(s), {info['graphs']} flagged with graphs")


