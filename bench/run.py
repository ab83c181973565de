"""Time pushscan against tshark and tcptrace on the same generated capture, in one run.

    python bench/run.py [--packets 2000000] [--concurrency 200] [--repeat 3] [--memory] [--pcapng]
                        [--engines 20000] [--jobs] [--keep] [--against PYTHON] [--no-tshark]

Prints, for each command, wall time, packets per second and peak resident memory (the
child's ru_maxrss), and the ratios pushscan/tshark and pushscan/tcptrace. With
``--repeat N`` each command runs N times in turn and the median run counts (the spread is
printed). Before timing, pushscan runs once on the file: the first run after an install
compiles the numba kernels (cached from then on); that run's time is printed too. ``--memory``
also runs pushscan alone on 1M- and 4M-packet captures and compares peak memory;
``--engines N`` times ``pushscan analyze --engine E`` for each engine on an N-packet capture.
``--concurrency N`` makes the timed capture hold about N concurrent sessions (a busier
gateway than the default 200; the other captures keep 200). ``--pcapng`` also times
pushscan on the timed capture converted to pcapng by editcap, and on both through a pipe.
Generated files go to bench/out/ (ignored by git) and are removed unless --keep.
"""
from __future__ import annotations

import argparse
import os
import platform
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))
import generate  # noqa: E402


def capture(packets: int, concurrency: int = 200) -> Path:
    OUT.mkdir(exist_ok=True)
    path = OUT / (f"smtp_{packets}.pcap" if concurrency == 200 else f"smtp_{packets}_c{concurrency}.pcap")
    if not path.exists():
        t = time.perf_counter()
        with open(path, "wb") as f:
            generate.generate(f, packets, concurrency=concurrency)
        print(f"generated {path.name}: {path.stat().st_size / 1e6:.0f} MB in "
              f"{time.perf_counter() - t:.1f}s", file=sys.stderr)
    return path


SETTLE = 3.0   # seconds of rest before each timed command (a big process's exit frees
#                memory in the background for a while, which would slow the next one)


def measure(argv: list[str], env: dict | None = None) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one command, output to /dev/null."""
    wall, rss, _ = measure_cpu(argv, env)
    return wall, rss


def measure_cpu(argv: list[str], env: dict | None = None) -> tuple[float, float, float]:
    """``measure``, and the CPU seconds (user + system) of the command and the worker
    processes it waited for."""
    time.sleep(SETTLE)
    t = time.perf_counter()
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(argv, stdout=null, stderr=subprocess.DEVNULL, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(argv)}")
    return wall, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime


def pushscan_cmd(path: Path, engine: str = "native", python: str = sys.executable) -> list[str]:
    return [python, "-m", "pushscan", "analyze", "--format", "json", "--engine", engine, str(path)]


def piped(path: Path) -> list[str]:
    """pushscan reading ``path`` from a pipe (what ``tcpdump -w - | pushscan analyze -`` does)."""
    return ["sh", "-c", f"cat {shlex.quote(str(path))} | {shlex.join(pushscan_cmd(Path('-')))}"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--packets", type=int, default=2_000_000)
    ap.add_argument("--concurrency", type=int, default=200, help="concurrent sessions in the timed capture")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each command (median counts)")
    ap.add_argument("--memory", action="store_true", help="also compare peak memory at 1M and 4M packets")
    ap.add_argument("--engines", type=int, default=0, metavar="N",
                    help="also time each engine on an N-packet capture")
    ap.add_argument("--jobs", action="store_true",
                    help="also time analyze --separate -j 1 and -j 2 on two halves of the capture")
    ap.add_argument("--pcapng", action="store_true",
                    help="also time pushscan on the capture converted to pcapng (editcap), as a file and a pipe")
    ap.add_argument("--keep", action="store_true", help="keep the generated captures")
    ap.add_argument("--against", metavar="PYTHON", default=None,
                    help="also time the pushscan installed for this Python (e.g. an older version's "
                         "venv), in the same runs: before/after ratios from one run")
    ap.add_argument("--no-tshark", action="store_true", help="leave tshark out (the slow part)")
    a = ap.parse_args()

    path = capture(a.packets, a.concurrency)
    first, _ = measure(pushscan_cmd(path))
    print(f"first pushscan run (compiles the kernels unless cached): {first:.2f} s", file=sys.stderr)
    commands = {"pushscan analyze --format json": pushscan_cmd(path)}
    if a.against:
        measure(pushscan_cmd(path, python=a.against))     # its first run may build its kernels
        commands["pushscan (--against) analyze --format json"] = pushscan_cmd(path, python=a.against)
    if not a.no_tshark:
        commands["tshark -T fields (stream, push, len)"] = [
            "tshark", "-r", str(path), "-T", "fields", "-e", "tcp.stream", "-e", "tcp.flags.push",
            "-e", "tcp.len"]
    commands["tcptrace -l -n"] = ["tcptrace", "-l", "-n", str(path)]
    runs: dict[str, list[tuple[float, float]]] = {}
    for _ in range(a.repeat):
        for name, argv in commands.items():
            if shutil.which(argv[0]) is None and argv[0] != sys.executable:
                continue
            runs.setdefault(name, []).append(measure(argv))
    for name, argv in commands.items():
        if name not in runs:
            print(f"skipping {name}: {argv[0]} not installed", file=sys.stderr)
    results = {name: sorted(r)[len(r) // 2] for name, r in runs.items()}
    print(f"\n{a.packets:,} packets, {path.stat().st_size / 1e6:.0f} MB, about {a.concurrency} "
          f"concurrent sessions; {platform.node()}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}\n")
    print(f"median of {a.repeat} run(s) each\n")
    print("| command | wall s | packets/s | peak RSS MB | runs (s) |")
    print("|---|---:|---:|---:|---|")
    for name, (wall, rss) in results.items():
        spread = ", ".join(f"{w:.2f}" for w, _ in runs[name])
        print(f"| `{name}` | {wall:.2f} | {a.packets / wall:,.0f} | {rss:.0f} | {spread} |")
    ours = results.get("pushscan analyze --format json")
    for other in ("tshark -T fields (stream, push, len)", "tcptrace -l -n"):
        if ours and other in results:
            print(f"\npushscan is {results[other][0] / ours[0]:.2f}x the speed of {other.split()[0]}", end="")
    theirs = results.get("pushscan (--against) analyze --format json")
    if theirs and "tcptrace -l -n" in results:
        print(f"\nthe --against pushscan is {results['tcptrace -l -n'][0] / theirs[0]:.2f}x the speed of "
              f"tcptrace; this one is {theirs[0] / ours[0]:.2f}x its speed", end="")
    print()
    if a.memory:
        small, big = capture(1_000_000), capture(4_000_000)
        _, m1 = measure(pushscan_cmd(small))
        _, m4 = measure(pushscan_cmd(big))
        line = f"\npeak RSS: 1M packets {m1:.0f} MB, 4M packets {m4:.0f} MB ({(m4 / m1 - 1) * 100:+.0f}%)"
        if ours and a.concurrency == 200:
            # the timed runs' size: where the sessions known at once stop growing
            m2 = ours[1]
            line += f"; {a.packets / 1e6:g}M packets (above) {m2:.0f} MB, 4M {(m4 / m2 - 1) * 100:+.0f}% over it"
        print(line)
        if not a.keep:
            small.unlink()
            big.unlink()
    if a.jobs:
        halves = []
        for seed in (1, 2):
            half = OUT / f"half_{seed}.pcap"
            with open(half, "wb") as f:
                generate.generate(f, a.packets // 2, seed=seed)
            halves.append(half)
        base = [sys.executable, "-m", "pushscan", "analyze", "--separate", "--format", "jsonl"]
        files = [str(h) for h in halves]
        cores = os.cpu_count() or 1
        for label, env in (("", None), (" (read-ahead off: one core per analysis)",
                                        dict(os.environ, PUSHSCAN_READAHEAD="0"))):
            jruns: dict[str, list[tuple[float, float, float]]] = {"1": [], "2": []}
            for _ in range(a.repeat):      # in turn, as above; the medians count
                for j in jruns:
                    jruns[j].append(measure_cpu(base + ["-j", j] + files, env))
            (w1, _, c1), (w2, _, c2) = (sorted(jruns[j])[len(jruns[j]) // 2] for j in ("1", "2"))
            # what the machine allows: the CPU seconds -j 2 needs, spread over every core
            bound = c2 / min(2, cores)
            print(f"\ntwo files of {a.packets // 2:,} packets{label}: -j 1 {w1:.2f} s "
                  f"({c1 / w1:.1f} cores busy), -j 2 {w2:.2f} s ({c2 / w2:.1f} cores busy): "
                  f"speed-up {w1 / w2:.2f}x on {cores} cores; -j 2 is at {bound / w2:.0%} of "
                  f"the {bound:.2f} s its {c2:.2f} CPU seconds allow on {min(2, cores)} cores (runs "
                  f"{', '.join(f'{x[0]:.2f}' for x in jruns['1'])} and "
                  f"{', '.join(f'{x[0]:.2f}' for x in jruns['2'])})")
        for h in halves:
            h.unlink()
    if a.engines:
        small = capture(a.engines)
        print(f"\nengines on {a.engines:,} packets:\n\n| engine | wall s | packets/s | peak RSS MB |\n|---|---:|---:|---:|")
        for engine in ("native", "scapy", "tshark"):
            wall, rss = measure(pushscan_cmd(small, engine))
            print(f"| {engine} | {wall:.2f} | {a.engines / wall:,.0f} | {rss:.0f} |")
        if not a.keep:
            small.unlink()
    if a.pcapng and shutil.which("editcap"):
        ng = path.with_suffix(".pcapng")
        subprocess.run(["editcap", "-F", "pcapng", str(path), str(ng)], check=True)
        forms = {"pcap file": pushscan_cmd(path), "pcapng file": pushscan_cmd(ng),
                 "pcap, standard input a pipe": piped(path), "pcapng, standard input a pipe": piped(ng)}
        print(f"\nthe same {a.packets:,} packets as pcap and pcapng (median of {a.repeat}):\n\n"
              "| input | wall s | packets/s | peak RSS MB |\n|---|---:|---:|---:|")
        for name, argv in forms.items():
            wall, rss = sorted(measure(argv) for _ in range(a.repeat))[a.repeat // 2]
            print(f"| {name} | {wall:.2f} | {a.packets / wall:,.0f} | {rss:.0f} |")
        if not a.keep:
            ng.unlink()
    if not a.keep:
        path.unlink()


if __name__ == "__main__":
    main()
