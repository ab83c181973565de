"""Time pushscan on a real Dask cluster on this machine, against a local run, in one run.

    python bench/cluster.py [--packets 2000000] [--repeat 3] [--files 200] [--keep]

Starts a ``dask scheduler`` and N ``dask worker`` processes (one thread each) on
127.0.0.1 for N = 1 and 2, and times, with the local run beside them:

- one big capture: ``pushscan analyze`` locally, and ``--cluster`` with 1 and 2 workers
  and 1, 2 and 4 shards: the speed-up, and what a shard costs (each reads the capture);
- many small captures (``--files`` copies of a bundled one, each its own capture):
  ``--separate -j 2`` locally against ``--cluster`` with 2 workers: the overhead per task.

Prints wall seconds (the median of ``--repeat`` runs, the spread too) and each run's
speed against the local one (tcptrace on the same file for scale). Generated files go
to bench/out/ and are removed unless ``--keep``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
sys.path.insert(0, str(HERE))
from run import capture  # noqa: E402

PUSHSCAN = [sys.executable, "-m", "pushscan"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    def __init__(self, workers: int) -> None:
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.procs = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1",
                                        "--port", str(self.port), "--no-dashboard"], env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        time.sleep(2)
        for _ in range(workers):
            self.procs.append(subprocess.Popen(
                [sys.executable, "-m", "dask", "worker", self.address, "--nthreads", "1", "--no-nanny",
                 "--no-dashboard", "--memory-limit", "0", "--host", "127.0.0.1"], env=env, cwd=str(ROOT),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        from distributed import Client
        with Client(self.address, timeout=60) as c:
            c.wait_for_workers(workers, timeout=120)

    def stop(self) -> None:
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()


def timed(argv: list[str], repeat: int) -> tuple[float, float]:
    """Median and spread (max - min) of wall seconds; output to /dev/null."""
    walls = []
    for _ in range(repeat):
        time.sleep(1.0)
        t = time.perf_counter()
        r = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=str(ROOT))
        walls.append(time.perf_counter() - t)
        if r.returncode not in (0,):
            raise SystemExit(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.decode()[-500:]}")
    return statistics.median(walls), max(walls) - min(walls)


def row(name: str, result: tuple[float, float], base: float | None = None) -> None:
    med, spread = result
    ratio = f"{base / med:5.2f}x" if base else "     "
    print(f"{name:<58} {med:7.2f} s  (±{spread / 2:.2f})  {ratio}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--packets", type=int, default=2_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    big = capture(a.packets)
    many = OUT / "many"
    many.mkdir(parents=True, exist_ok=True)
    src = ROOT / "captures" / "smtp_unpushed_turns.pcap"
    files = []
    for i in range(a.files):
        f = many / f"trace_{i:04d}.pcap"
        shutil.copyfile(src, f)
        files.append(str(f))
    print(f"{big.name}: {big.stat().st_size / 1e6:.0f} MB, {a.packets:,} packets; "
          f"{a.files} small captures; {os.cpu_count()} cores", flush=True)
    json_out = ["--format", "json", "-o", os.devnull]
    subprocess.run(PUSHSCAN + ["analyze", *json_out, str(big)], check=True)   # kernels built
    base = timed(PUSHSCAN + ["analyze", *json_out, str(big)], a.repeat)
    row("local: analyze (one process)", base)
    if shutil.which("tcptrace"):        # the reference the local run is measured against
        row("tcptrace -l -n (for scale)", timed(["tcptrace", "-l", "-n", str(big)], a.repeat), base[0])
    for workers in (1, 2):
        c = Cluster(workers)
        try:
            for shards in (1, 2, 4):
                row(f"--cluster, {workers} worker(s), {shards} shard(s)",
                    timed(PUSHSCAN + ["analyze", "--cluster", c.address, "--shards", str(shards),
                                      *json_out, str(big)], a.repeat), base[0])
            if workers == 2:
                local_many = timed(PUSHSCAN + ["analyze", "--separate", "-j", "2", *json_out, *files], a.repeat)
                row(f"local: {a.files} captures, --separate -j 2", local_many)
                on = timed(PUSHSCAN + ["analyze", "--separate", "--cluster", c.address, *json_out, *files],
                           a.repeat)
                row(f"--cluster, 2 workers, {a.files} captures", on, local_many[0])
                print(f"{'overhead per task against -j 2':<58} {(on[0] - local_many[0]) / a.files * 1000:7.1f} ms")
        finally:
            c.stop()
    if not a.keep:
        shutil.rmtree(many, ignore_errors=True)
        big.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
