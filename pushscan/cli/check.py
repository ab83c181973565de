"""``pushscan check``: the CI gate's command line."""
from __future__ import annotations

import os
import sys
from typing import Any, Optional

import click

from ..errors import EXIT_FAILED, EXIT_INPUT, PushscanError
from ..report.output import Output, refuse_overwrite
from ..version import __version__
from ..analysis.select import Selection
from .cluster import on_cluster_checked
from ..sources.engines import ENGINES
from .common import cluster_option, fail, file_options, select_options


@click.command()
@click.argument("captures", nargs=-1, metavar="[CAPTURE]...")
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
@click.option("--smtp-port", "smtp_ports", type=click.IntRange(1, 65535), multiple=True, metavar="N",
              help="Also treat server port N as SMTP (repeatable; policy key smtp_ports).")
@click.option("--outgoing", type=click.Choice(["client", "server"]), default=None,
              help="Whose data is 'outgoing', the side whose pushing is judged (policy key outgoing).")
@click.option("--local", "local", multiple=True, metavar="CIDR",
              help="Outgoing = data sent by an address in CIDR (repeatable; policy key local).")
@click.option("--all-tcp/--smtp-only", default=None, help="Judge every TCP session, not only SMTP.")
@click.option("--baseline", type=click.Path(dir_okay=False), default=None,
              help="Fail on any difference from this baseline (sessions, verdicts, findings).")
@click.option("--write-baseline", type=click.Path(dir_okay=False), default=None,
              help="Record each trace's sessions, verdicts and findings in this file.")
@click.option("--junit", type=click.Path(dir_okay=False), default=None, help="Write JUnit XML here.")
@click.option("--compare", "compare_pairs", multiple=True, metavar="NEAR:FAR",
              help="Also compare these two captures of one path (repeatable; as `pushscan compare`).")
@click.option("--compare-fail-on", multiple=True, metavar="CODES|SEVERITY|none",
              help="Fail a compared pair on these PATH_* codes or findings of at least this "
                   "severity; 'none' turns it off. Default: error (PSH stripped, reset injected).")
@click.option("--engine", type=click.Choice(ENGINES), default="native", show_default=True,
              help="How frames become segments (as for analyze).")
@file_options
@select_options
@click.option("-j", "--jobs", type=click.IntRange(1), default=1, show_default=True,
              help="Check this many traces at once in parallel processes.")
@cluster_option
def check(captures: tuple[str, ...], policy_file: Optional[str], fail_on: tuple[str, ...],
          require_pushed_turns: Optional[bool], min_push_ratio: Optional[float],
          smtp_ports: tuple[int, ...], outgoing: Optional[str], local: tuple[str, ...],
          all_tcp: Optional[bool], baseline: Optional[str], write_baseline: Optional[str],
          junit: Optional[str], compare_pairs: tuple[str, ...], compare_fail_on: tuple[str, ...],
          engine: str, merge: bool, separate: bool, jobs: int, cluster: Optional[str],
          **select: Any) -> None:
    """CI gate: check recorded traces (files, directories, globs) against a policy, and
    pairs of captures of one path (--compare NEAR:FAR, or the policy's compare key). The
    pieces of a ring set are one trace (--merge: all files are one; --separate: each is);
    --host, --port, --session and --verdict judge only those sessions.

    Exit codes: 0 every trace passes, 1 a trace fails, 2 usage or policy error (a
    directory without captures too), 3 a trace could not be judged (unreadable, no
    packets, or pushscan failed on it: the others are still checked), 5 --junit or
    --write-baseline cannot be written.
    """
    import json as _json
    from dataclasses import replace

    from .. import gate as chk
    from ..gate.baseline import load_baseline
    from ..gate.junit import junit_xml

    try:
        policy, source = chk.load_policy(policy_file)
        cli: dict[str, Any] = {}
        if fail_on:
            cli["fail_on"] = chk.coerce("fail_on", list(fail_on), "option --")
        if require_pushed_turns is not None:
            cli["require_pushed_turns"] = require_pushed_turns
        if min_push_ratio is not None:
            cli["min_push_ratio"] = min_push_ratio
        if smtp_ports:
            cli["smtp_ports"] = chk.coerce("smtp_ports", list(smtp_ports), "option --")
        if outgoing is not None:
            cli["outgoing"] = outgoing
        if local:
            cli["local"] = chk.coerce("local", list(local), "option --")
        if all_tcp is not None:
            cli["all_tcp"] = all_tcp
        if compare_pairs:
            cli["compare"] = chk.coerce("compare", list(compare_pairs), "option --")
        if compare_fail_on:
            cli["compare_fail_on"] = chk.coerce("compare_fail_on", list(compare_fail_on), "option --")
        policy = replace(policy, **cli)
        if not captures and not policy.compare:
            raise chk.PolicyError("nothing to check: give traces, or pairs of captures to compare "
                                  "(--compare NEAR:FAR, or the policy's compare key)")
        sel = Selection(hosts=select.pop("hosts"), ports=select.pop("sel_ports"),
                        sessions=select.pop("sessions"), verdicts=select.pop("verdicts"))
        base = load_baseline(baseline) if baseline is not None else None
        traces = chk.expand_traces(list(captures))
        inputs = traces + [p for p in (policy_file or source, baseline) if p]
        refuse_overwrite([("--junit", junit), ("--write-baseline", write_baseline)], inputs)
        # the output files are made now: a place that cannot be written is said before the work
        junit_out = Output(junit, binary=True) if junit else None
        baseline_out = Output(write_baseline, binary=True) if write_baseline else None
        where = on_cluster_checked(cluster, None, jobs, tuple(traces))
    except PushscanError as exc:
        fail(exc)
    try:
        results = chk.check(traces, policy, base, engine=engine, jobs=jobs, merge=merge,
                            separate=separate, select=sel, cluster=where)
    except PushscanError as exc:
        for o in (junit_out, baseline_out):
            if o is not None:
                o.abort()
        fail(exc)
    finally:
        if where is not None:
            where.close()

    try:
        _print_results(results, source)
    except BrokenPipeError:     # the reader went away (| head): the exit code still tells
        sys.stdout = open(os.devnull, "w")
    if junit_out is not None:
        with junit_out:
            junit_out.write(junit_xml(results))
    if baseline_out is not None:
        doc = {"schema": 1, "pushscan_version": __version__,
               "traces": {r.path: chk.baseline_entry(r.report) for r in results
                          if r.report is not None and r.error is None and r.kind == "trace"}}
        with baseline_out:
            baseline_out.write((_json.dumps(doc, indent=1) + "\n").encode())
        click.echo(f"baseline written to {write_baseline}")
    if any(r.error is not None for r in results):
        sys.exit(EXIT_INPUT)
    sys.exit(0 if all(r.passed for r in results) else EXIT_FAILED)


def _print_results(results: list[Any], source: Optional[str]) -> None:
    from ..gate.junit import github_annotations

    for r in results:
        if r.error is not None:
            click.echo(f"ERROR {r.path}: {r.error.removeprefix(r.path + ': ')}")
            continue
        click.echo(f"{'PASS' if r.passed else 'FAIL'} {r.path} ({r.counted})")
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
    errors = sum(r.error is not None for r in results)
    pairs = sum(r.kind == "compare" for r in results)
    what = f"{len(results) - pairs} trace(s)" + (f" and {pairs} compared pair(s) of captures" if pairs else "")
    click.echo(f"{what}: {passed} passed, {len(results) - passed - errors} failed"
               + (f", {errors} with errors (unreadable, no packets, or pushscan failed)" if errors else "")
               + (f" (policy: {source})" if source else ""))
    if os.environ.get("GITHUB_ACTIONS") == "true":
        github_annotations(results, sys.stdout)
