"""``pushscan live``."""
from __future__ import annotations

import os
import sys
from typing import Any, Optional

import click

from ..errors import PushscanError
from .common import fail


@click.command()
@click.option("-i", "--interface", "ifaces", multiple=True, required=True, metavar="IFACE",
              help="Interface to capture on (repeatable).")
@click.option("--bpf", default=None, metavar="FILTER",
              help="Capture filter (default: the SMTP ports and any --smtp-port).")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None, metavar="S",
              help="Stop after S seconds.")
@click.option("--count", type=click.IntRange(1), default=None, metavar="N", help="Stop after N packets.")
@click.option("--write", type=click.Path(dir_okay=False), default=None, metavar="FILE.pcapng",
              help="Also write what was captured here, for a later 'pushscan analyze'.")
@click.option("--idle-timeout", type=click.FloatRange(min=0, min_open=True), default=300.0, show_default=True,
              metavar="S", help="Report and drop sessions with no packet for S seconds.")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text", show_default=True,
              help="text: a line per session as it ends; jsonl: analyze's session objects, a line each.")
@click.option("--smtp-port", "ports", type=click.IntRange(1, 65535), multiple=True, metavar="N",
              help="Also treat server port N as SMTP (repeatable), and capture it.")
@click.option("--outgoing", type=click.Choice(["client", "server"]), default="client", show_default=True,
              help="Whose data is 'outgoing' (the side whose pushing is judged).")
@click.option("--local", "local", multiple=True, metavar="CIDR",
              help="Outgoing = data sent by an address in CIDR (repeatable).")
@click.option("--all-tcp", is_flag=True, help="Report every TCP session the filter lets through.")
@click.option("--backend", type=click.Choice(["auto", "dumpcap", "tcpdump", "scapy"]), default="auto",
              show_default=True, help="Capture program: auto = dumpcap, else tcpdump, else scapy's sniffer.")
@click.option("--engine", type=click.Choice(["native", "tshark"]), default="native", show_default=True,
              help="tshark: capture through pyshark's LiveCapture instead.")
def live(ifaces: tuple[str, ...], bpf: Optional[str], duration: Optional[float], count: Optional[int],
         write: Optional[str], idle_timeout: float, fmt: str, ports: tuple[int, ...], outgoing: str,
         local: tuple[str, ...], all_tcp: bool, backend: str, engine: str) -> None:
    """Watch interfaces and report each session, with its findings, as it ends.

    Capture runs through dumpcap (or tcpdump), filtered in the kernel. Ctrl-C, SIGTERM or
    SIGHUP stop cleanly: open sessions are reported as 'open' and the summary is printed.
    Exit codes: 0 done, 2 usage error (unknown interface, invalid filter, no capture
    program), 4 the capture could not start (no permission) or the capture program died
    (what it captured is reported and kept), 5 --write or standard output failed.
    """
    import json as _json

    from ..analysis import Options
    from ..analysis.live import Monitor, install_stop_signals, session_line

    closed: list[bool] = []

    def on_session(doc: dict[str, Any]) -> None:
        if closed:
            return
        try:
            sys.stdout.write(_json.dumps(doc, separators=(",", ":")) + "\n" if fmt == "jsonl" else session_line(doc))
            sys.stdout.flush()
        except BrokenPipeError:      # the reader went away (| head): stop capturing
            closed.append(True)
            mon.request_stop()

    try:
        opts = Options(ports=ports, outgoing=outgoing, local=local, all_tcp=all_tcp)
        status = sys.stderr if sys.stderr.isatty() else None
        if engine == "tshark" and backend != "auto":
            raise PushscanError("--engine tshark captures through pyshark; leave --backend at auto")
        mon = Monitor(list(ifaces), opts, bpf=bpf, duration=duration, count=count, write=write,
                      idle_timeout=idle_timeout, on_session=on_session, status=status,
                      backend=backend, engine=engine)
        install_stop_signals(mon)
        rep = mon.run()
    except PushscanError as exc:
        fail(exc)
    if closed:
        sys.stdout = open(os.devnull, "w")   # nothing more can reach the closed pipe
        sys.exit(0)
    try:
        _live_summary(fmt, rep, ifaces)
    except BrokenPipeError:
        sys.stdout = open(os.devnull, "w")
    for e in rep["inputs"][0]["errors"]:
        if mon.error is None or e not in str(mon.error):
            click.echo(f"pushscan: warning: {e}", err=True)
    if mon.error is not None:        # after what was seen was reported
        fail(mon.error)
    sys.exit(0)


def _live_summary(fmt: str, rep: dict[str, Any], ifaces: tuple[str, ...]) -> None:
    import json as _json

    summ, inp = rep["summary"], rep["inputs"][0]
    if fmt == "jsonl":
        sys.stdout.write(_json.dumps({"summary": summ, "inputs": rep["inputs"]}, separators=(",", ":")) + "\n")
    else:
        verdicts = ", ".join(f"{k} {v}" for k, v in summ["by_verdict"].items()) or "none"
        drops = inp["kernel_drops"]
        sys.stdout.write(f"{inp['packets']} packets on {', '.join(ifaces)} ({inp['capture_program']}, filter "
                         f"'{inp['filter']}'), kernel drops: {'unknown' if drops is None else drops}; "
                         f"{summ['sessions']} session(s): {verdicts}\n")
    sys.stdout.flush()


