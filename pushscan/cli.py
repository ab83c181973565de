"""The command line: ``pushscan analyze`` (click). Only this module and the sources
touch the outside world."""
from __future__ import annotations

import os
import sys
from typing import Any, Optional

import click

from . import __version__
from .errors import EXIT_FAILED, EXIT_INPUT, PushscanError

FORMATS = ("text", "json", "jsonl")

# pushscan does no linear algebra: numpy's BLAS need not start a thread per core when
# numpy loads (they burn ~0.05-0.1 s of CPU in every process, -j workers included, that
# the read-ahead thread could use). Set before numpy is imported; the user's value wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


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
@click.option("--max-sessions", type=click.IntRange(1), default=50_000, show_default=True,
              help="Open sessions kept; past it the least recently active end as 'timeout'.")
@click.option("--max-buffer", type=click.IntRange(0), default=8 << 20, show_default=True,
              help="Out-of-order bytes held per direction; past it the hole becomes a capture gap.")
@click.option("--max-line", type=click.IntRange(16), default=4096, show_default=True,
              help="Bytes kept of one SMTP command or reply line.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the report here (atomically) instead of standard output.")
@click.option("--color/--no-color", default=None, help="Colour in text output (default: on a terminal).")
@click.option("-j", "--jobs", type=click.IntRange(1), default=1, show_default=True,
              help="With --separate, analyse this many files at once in parallel processes.")
def analyze(captures: tuple[str, ...], fmt: str, ports: tuple[int, ...], all_tcp: bool,
            outgoing: str, local: tuple[str, ...], separate: bool, engine: str,
            max_sessions: int, max_buffer: int, max_line: int,
            output: Optional[str], color: Optional[bool], jobs: int) -> None:
    """Rebuild TCP sessions from CAPTURE files (pcap, pcapng, .gz; '-' is standard input),
    report PSH per direction and turn, and say why sessions died.

    Several files are one capture in time order (rotated files); frame numbers then
    continue from file to file (see inputs[].first_frame).
    """
    from .analysis import SCHEMA, Analysis, Options, groups, in_parallel
    from .output import JsonDocument, JsonLines

    try:
        opts = Options(ports=ports, all_tcp=all_tcp, outgoing=outgoing, local=local,
                       separate=separate, engine=engine, max_sessions=max_sessions,
                       max_buffer=max_buffer, max_line=max_line)
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
            todo = groups(list(captures), opts)
            # JSON formats: workers send sessions already encoded
            parallel = in_parallel(todo, opts, jobs, as_text=fmt in ("json", "jsonl")) \
                if jobs > 1 and len(todo) > 1 else None
            for group in todo:
                head = {"schema": SCHEMA, "pushscan_version": __version__, "engine": engine}
                writer = JsonDocument(stream, head) if fmt == "json" else \
                    JsonLines(stream) if fmt == "jsonl" else None
                table = _TextSessions() if writer is None else None
                emit = writer.session if writer else table.add  # type: ignore[union-attr]
                if parallel is None:
                    a = Analysis(group, opts, on_session=emit, progress=progress, keep_sessions=False,
                                 ordered=fmt != "jsonl")
                    report, unreadable = a.run(), a.unreadable
                else:
                    report, unreadable = next(parallel)
                    # JSON from the workers for the JSON formats, documents otherwise
                    for item in report["sessions"]:
                        if writer is not None:
                            writer.session_json(item)
                        else:
                            emit(item)
                    report["sessions"] = []
                for err in unreadable:
                    click.echo(f"pushscan: error: {err}", err=True)
                    exit_code = EXIT_INPUT
                for inp in report["inputs"]:
                    for e in inp["errors"]:
                        if not any(e == u.problem and inp["path"] == u.path for u in unreadable):
                            click.echo(f"pushscan: warning: {inp['path']}: {e} "
                                       "(the part before it was analysed)", err=True)
                if len(unreadable) == len(group):
                    continue   # nothing was read: the error line says it all
                if writer is not None:
                    writer.finish(report)
                else:
                    from .render import render_text
                    report["sessions"] = table.sessions  # type: ignore[union-attr]
                    render_text(report, stream, use_color, omitted_ok=table.omitted_ok)  # type: ignore[union-attr]
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


class _TextSessions:
    """Sessions for the text table: all of them in small captures; past ``LIMIT``, only
    those whose verdict is not ``ok`` (memory stays bounded by the ones that matter)."""

    LIMIT = 500

    def __init__(self) -> None:
        self.sessions: list[dict[str, Any]] = []
        self.omitted_ok = 0
        self._large = False

    def add(self, doc: dict[str, Any]) -> None:
        if self._large and doc["verdict"] == "ok":
            self.omitted_ok += 1
            return
        self.sessions.append(doc)
        if not self._large and len(self.sessions) > self.LIMIT:
            self._large = True
            kept = [d for d in self.sessions if d["verdict"] != "ok"]
            self.omitted_ok += len(self.sessions) - len(kept)
            self.sessions = kept


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


@main.command()
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False), default=None,
              help="Policy TOML file (top-level keys or [tool.pushscan]); default: [tool.pushscan] "
                   "in ./pyproject.toml.")
@click.option("--fail-on", multiple=True, metavar="CODES|SEVERITY|none",
              help="Fail on these finding codes or on findings of at least this severity "
                   "(error, warning, info); 'none' turns finding-based failure off. Default: error.")
@click.option("--require-pushed-turns/--no-require-pushed-turns", default=None,
              help="Every outgoing turn must end with PSH.")
@click.option("--min-push-ratio", type=click.FloatRange(0, 1), default=None,
              help="Minimum share of outgoing turns that end pushed, per trace.")
@click.option("--port", "ports", type=click.IntRange(1, 65535), multiple=True, help="Extra SMTP port.")
@click.option("--outgoing", type=click.Choice(["client", "server"]), default=None)
@click.option("--local", "local", multiple=True, metavar="CIDR")
@click.option("--all-tcp/--smtp-only", default=None, help="Judge every TCP session, not only SMTP.")
@click.option("--baseline", type=click.Path(dir_okay=False), default=None,
              help="Fail on any difference from this baseline (sessions, verdicts, findings).")
@click.option("--write-baseline", type=click.Path(dir_okay=False), default=None,
              help="Record each trace's sessions, verdicts and findings in this file.")
@click.option("--junit", type=click.Path(dir_okay=False), default=None, help="Write JUnit XML here.")
@click.option("--engine", type=click.Choice(["native", "scapy", "tshark"]), default="native")
@click.option("-j", "--jobs", type=click.IntRange(1), default=1, show_default=True,
              help="Check this many traces at once in parallel processes.")
def check(captures: tuple[str, ...], policy_file: Optional[str], fail_on: tuple[str, ...],
          require_pushed_turns: Optional[bool], min_push_ratio: Optional[float],
          ports: tuple[int, ...], outgoing: Optional[str], local: tuple[str, ...],
          all_tcp: Optional[bool], baseline: Optional[str], write_baseline: Optional[str],
          junit: Optional[str], engine: str, jobs: int) -> None:
    """CI gate: check recorded traces (files, directories, globs) against a policy.

    Exit codes: 0 every trace passes, 1 a trace fails, 2 usage or policy error,
    3 an input is unreadable.
    """
    import json as _json
    from dataclasses import replace

    from . import gate as chk
    from .junit import github_annotations, junit_xml

    try:
        policy, source = chk.load_policy(policy_file)
        cli: dict[str, Any] = {}
        if fail_on:
            cli["fail_on"] = chk.coerce("fail_on", list(fail_on), "option --")
        if require_pushed_turns is not None:
            cli["require_pushed_turns"] = require_pushed_turns
        if min_push_ratio is not None:
            cli["min_push_ratio"] = min_push_ratio
        if ports:
            cli["ports"] = chk.coerce("ports", list(ports), "option --")
        if outgoing is not None:
            cli["outgoing"] = outgoing
        if local:
            cli["local"] = chk.coerce("local", list(local), "option --")
        if all_tcp is not None:
            cli["all_tcp"] = all_tcp
        policy = replace(policy, **cli)
        base = None
        if baseline is not None:
            try:
                with open(baseline, encoding="utf-8") as f:
                    base = _json.load(f)
            except (OSError, ValueError) as exc:
                raise chk.PolicyError(f"baseline {baseline}: {exc}") from None
            if not isinstance(base, dict) or base.get("schema") != 1 or "traces" not in base:
                raise chk.PolicyError(f"baseline {baseline}: not a pushscan baseline (schema 1)")
        results = chk.check(list(captures), policy, base, engine=engine, jobs=jobs)
    except PushscanError as exc:
        _fail(exc)

    for r in results:
        if r.error is not None:
            click.echo(f"ERROR {r.path}: {r.error}")
            continue
        sessions = len(r.report["sessions"]) if r.report else 0
        click.echo(f"{'PASS' if r.passed else 'FAIL'} {r.path} ({sessions} session{'s' if sessions != 1 else ''})")
        for w in r.warnings:
            click.echo(f"  warning: {w}")
        for c in r.cases:
            for msg, frames in c.failures:
                shown = f" [frames {','.join(map(str, frames[:12]))}{',...' if len(frames) > 12 else ''}]" \
                    if frames else ""
                click.echo(f"  {c.name}: {msg}{shown}")
        for line in r.baseline_diff:
            click.echo(f"  baseline: {line}")
    passed = sum(r.passed for r in results)
    unreadable = sum(r.error is not None for r in results)
    click.echo(f"{len(results)} trace(s): {passed} passed, {len(results) - passed - unreadable} failed"
               + (f", {unreadable} unreadable" if unreadable else "")
               + (f" (policy: {source})" if source else ""))
    if os.environ.get("GITHUB_ACTIONS") == "true":
        github_annotations(results, sys.stdout)
    if junit:
        _write_atomically(junit, junit_xml(results))
    if write_baseline:
        doc = {"schema": 1, "pushscan_version": __version__,
               "traces": {r.path: chk.baseline_entry(r.report) for r in results if r.report}}
        _write_atomically(write_baseline, (_json.dumps(doc, indent=1) + "\n").encode())
        click.echo(f"baseline written to {write_baseline}")
    if unreadable:
        sys.exit(EXIT_INPUT)
    sys.exit(0 if passed == len(results) else EXIT_FAILED)


def _write_atomically(path: str, data: bytes) -> None:
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
        _fail(PushscanError(f"cannot write {path}: {exc.strerror}"))


def _analysis_options(f: Any) -> Any:
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


def _options(ports: tuple[int, ...], outgoing: str, local: tuple[str, ...], all_tcp: bool, engine: str) -> Any:
    from .analysis import Options
    return Options(ports=ports, outgoing=outgoing, local=local, all_tcp=all_tcp, engine=engine)


@main.command()
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@click.option("--session", "sid", type=click.IntRange(0), required=True, help="Session id, as analyze shows it.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@_analysis_options
def follow(captures: tuple[str, ...], sid: int, fmt: str, ports: tuple[int, ...], outgoing: str,
           local: tuple[str, ...], all_tcp: bool, engine: str) -> None:
    """Follow one session: its SMTP dialogue (or, for other TCP, its data) in time order,
    each segment marked pushed or not, and how long unpushed data waited and what ended
    the wait."""
    import json as _json

    from .evidence import follow_document, follow_text, one_session
    try:
        s, doc = one_session(list(captures), _options(ports, outgoing, local, all_tcp, engine), sid)
    except PushscanError as exc:
        _fail(exc)
    fdoc = follow_document(s, doc)
    click.echo(_json.dumps(fdoc, indent=1) if fmt == "json" else follow_text(fdoc), nl=fmt == "json")


@main.command()
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@click.option("--session", "sid", type=click.IntRange(0), required=True, help="Session id, as analyze shows it.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="FILE.png or FILE.svg.")
@_analysis_options
def plot(captures: tuple[str, ...], sid: int, output: str, ports: tuple[int, ...], outgoing: str,
         local: tuple[str, ...], all_tcp: bool, engine: str) -> None:
    """Draw a session's time-sequence graph (sequence number against time, both directions):
    pushed and unpushed data drawn differently, the peer's ACKs, resets, unpushed waits."""
    import io as _io

    from .evidence import one_session, plot as draw
    fmt = output.rsplit(".", 1)[-1].lower()
    if fmt not in ("png", "svg"):
        _fail(PushscanError(f"{output}: the graph is written as .png or .svg"))
    try:
        s, doc = one_session(list(captures), _options(ports, outgoing, local, all_tcp, engine), sid)
    except PushscanError as exc:
        _fail(exc)
    buf = _io.BytesIO()
    drawn = draw(s, doc, buf, fmt)
    _write_atomically(output, buf.getvalue())
    c2s, s2c = drawn["client_to_server"], drawn["server_to_client"]
    click.echo(f"{output}: client>server {c2s['pushed']} pushed + {c2s['unpushed']} unpushed segments, "
               f"server>client {s2c['pushed']} + {s2c['unpushed']}, {drawn['resets']} reset(s), "
               f"{c2s['waits'] + s2c['waits']} unpushed wait(s)")


@main.command()
@click.argument("captures", nargs=-1, required=True, metavar="CAPTURE...")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="report.html")
@_analysis_options
def report(captures: tuple[str, ...], output: str, ports: tuple[int, ...], outgoing: str,
           local: tuple[str, ...], all_tcp: bool, engine: str) -> None:
    """Write one self-contained HTML report (works offline): summary, a sortable table of
    sessions, each finding with its frames and remedy, and the graph of every flagged
    session."""
    from .evidence import report_html
    try:
        page, info = report_html(list(captures), _options(ports, outgoing, local, all_tcp, engine))
    except PushscanError as exc:
        _fail(exc)
    _write_atomically(output, page.encode("utf-8"))
    click.echo(f"{output}: {info['sessions']} session(s), {info['graphs']} flagged with graphs")


@main.command()
@click.option("-i", "--interface", "ifaces", multiple=True, required=True, metavar="IFACE",
              help="Interface to capture on (repeatable).")
@click.option("--bpf", default=None, metavar="FILTER",
              help="Capture filter (default: the SMTP ports and any --port).")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None, metavar="S",
              help="Stop after S seconds.")
@click.option("--count", type=click.IntRange(1), default=None, metavar="N", help="Stop after N packets.")
@click.option("--write", type=click.Path(dir_okay=False), default=None, metavar="FILE.pcapng",
              help="Also write what was captured here, for a later 'pushscan analyze'.")
@click.option("--idle-timeout", type=click.FloatRange(min=0, min_open=True), default=300.0, show_default=True,
              metavar="S", help="Report and drop sessions with no packet for S seconds.")
@click.option("--format", "fmt", type=click.Choice(["text", "jsonl"]), default="text", show_default=True)
@click.option("--port", "ports", type=click.IntRange(1, 65535), multiple=True, help="Extra SMTP port.")
@click.option("--outgoing", type=click.Choice(["client", "server"]), default="client", show_default=True)
@click.option("--local", "local", multiple=True, metavar="CIDR")
@click.option("--all-tcp", is_flag=True, help="Report every TCP session the filter lets through.")
@click.option("--backend", type=click.Choice(["auto", "dumpcap", "tcpdump", "scapy"]), default="auto",
              show_default=True, help="Capture program: auto = dumpcap, else tcpdump, else scapy's sniffer.")
@click.option("--engine", type=click.Choice(["native", "tshark"]), default="native", show_default=True,
              help="tshark: capture through pyshark's LiveCapture instead.")
def live(ifaces: tuple[str, ...], bpf: Optional[str], duration: Optional[float], count: Optional[int],
         write: Optional[str], idle_timeout: float, fmt: str, ports: tuple[int, ...], outgoing: str,
         local: tuple[str, ...], all_tcp: bool, backend: str, engine: str) -> None:
    """Watch interfaces and report each session, with its findings, as it ends.

    Capture runs through dumpcap (or tcpdump), filtered in the kernel. Ctrl-C or SIGTERM
    stop cleanly: open sessions are reported as 'open' and the summary is printed.
    Exit codes: 0 done, 2 usage error (unknown interface, no capture program),
    4 the capture could not start (no permission).
    """
    import json as _json

    from .analysis import Options
    from .live import Monitor, install_stop_signals, session_line

    closed = []

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
        _fail(exc)
    if closed:
        sys.stdout = open(os.devnull, "w")   # nothing more can reach the closed pipe
        sys.exit(0)
    inp = rep["inputs"][0]
    try:
        _live_summary(fmt, rep, ifaces)
    except BrokenPipeError:
        sys.stdout = open(os.devnull, "w")
    for e in inp["errors"]:
        click.echo(f"pushscan: warning: {e}", err=True)
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
