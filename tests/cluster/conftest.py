"""A real Dask cluster for the tests: a ``dask scheduler`` and ``dask worker`` processes on
127.0.0.1, started from this environment's Python, stopped after the tests."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class DaskCluster:
    """A scheduler and its workers as processes (SIGKILL-able: no nanny restarts them)."""

    def __init__(self, workers: int = 2, preload: str | None = None) -> None:
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        env = dict(os.environ, PYTHONPATH=str(ROOT), DASK_DISTRIBUTED__LOGGING__DISTRIBUTED="error")
        self.env = env
        self.scheduler = subprocess.Popen(
            [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", str(self.port),
             "--no-dashboard"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait_port()
        self.workers = [self.start_worker(preload) for _ in range(workers)]
        self.wait_workers(workers)

    def start_worker(self, preload: str | None = None) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "dask", "worker", self.address, "--nthreads", "1",
                "--no-nanny", "--no-dashboard", "--memory-limit", "0", "--host", "127.0.0.1"]
        if preload:
            argv += ["--preload", preload]
        return subprocess.Popen(argv, env=self.env, cwd=str(ROOT), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)

    def _wait_port(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError("the dask scheduler did not start")

    def wait_workers(self, n: int, timeout: float = 90) -> None:
        from distributed import Client
        with Client(self.address, timeout=30) as c:
            c.wait_for_workers(n, timeout=timeout)

    def stop(self) -> None:
        for p in self.workers + [self.scheduler]:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.workers + [self.scheduler]:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture(scope="module")
def dask_cluster():
    c = DaskCluster(2)
    yield c
    c.stop()
