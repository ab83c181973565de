"""Connecting to the Dask scheduler (or starting a ``LocalCluster``), with checks that turn
every way it can fail into one line and exit 2."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Optional

from ..errors import UsageError
from ..version import __version__

CLUSTER_MISSING = "--cluster needs dask.distributed: pip install 'pushscan[cluster]'"
CONNECT_TIMEOUT_S = 10.0


def _worker_version() -> str:
    """Runs on each worker: the pushscan version it imports."""
    from pushscan.version import __version__ as v
    return v


def _dashboard(client: Any) -> Optional[str]:
    """The dashboard's address if it answers (the scheduler serves it only with bokeh)."""
    import urllib.error
    import urllib.request

    link = getattr(client, "dashboard_link", None)
    if not link:
        return None
    try:
        with urllib.request.urlopen(link, timeout=2) as r:
            return str(link) if r.status == 200 else None
    except (OSError, urllib.error.URLError, ValueError):
        return None


@dataclass
class Cluster:
    """A connected client, what it runs on, and what to close."""

    client: Any
    address: str
    workers: int            # worker processes
    threads: int            # threads over all workers (tasks that can run at once)
    dashboard: Optional[str]
    local: Any = None       # the LocalCluster we started, if any

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self.local is not None:
                self.local.close()


def connect(address: str, timeout: float = CONNECT_TIMEOUT_S,
            local_workers: Optional[int] = None) -> Cluster:
    """A client of the scheduler at ``address`` (``tcp://HOST:PORT``), or of a new
    ``LocalCluster`` on this machine for ``local`` (one single-threaded worker process per
    core, or ``local_workers``). Raises ``UsageError`` (exit 2) when dask is missing, the
    scheduler cannot be reached within ``timeout`` seconds, no worker is there, or a
    worker runs another pushscan version."""
    try:
        import distributed
    except ImportError:
        raise UsageError(CLUSTER_MISSING) from None
    import logging
    logging.getLogger("distributed").setLevel(logging.ERROR)   # its own chatter: ours is enough
    local = None
    try:
        if address == "local":
            n = local_workers or os.cpu_count() or 1
            local = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                             dashboard_address=":0")
            client = distributed.Client(local, timeout=timeout)
        else:
            if "://" not in address:
                address = "tcp://" + address
            client = distributed.Client(address, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        if local is not None:
            local.close()
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"cannot reach the Dask scheduler at {address} within {timeout:g} s "
                         f"({why})") from None
    try:
        info = client.scheduler_info()
        workers = info.get("workers", {})
        if not workers:
            try:
                client.wait_for_workers(1, timeout=timeout)
            except (TimeoutError, OSError):
                raise UsageError(f"the Dask scheduler at {address} has no worker "
                                 f"(none came within {timeout:g} s)") from None
            workers = client.scheduler_info().get("workers", {})
        versions = client.run(_worker_version)
        other = {w: v for w, v in versions.items() if v != __version__}
        if other:
            listed = ", ".join(f"{w} has {v}" for w, v in sorted(other.items()))
            raise UsageError(f"Dask workers run another pushscan version than this {__version__}: "
                             f"{listed}; install the same version everywhere")
        threads = sum(int(w.get("nthreads", 1)) for w in workers.values())
        dashboard = _dashboard(client) if info.get("services", {}).get("dashboard") else None
        return Cluster(client, address, len(workers), max(1, threads), dashboard, local)
    except UsageError:
        client.close()
        if local is not None:
            local.close()
        raise
    except ModuleNotFoundError as exc:      # a worker without pushscan (client.run)
        client.close()
        if local is not None:
            local.close()
        raise UsageError(f"a Dask worker cannot import pushscan ({exc}): install "
                         f"pushscan {__version__} where the workers run") from None
