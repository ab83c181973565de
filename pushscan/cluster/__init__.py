"""Running analyses on a Dask cluster (``--cluster tcp://SCHEDULER:8786`` or ``local``),
with the answers of a local run.

- ``connect``: the scheduler (or a ``LocalCluster``), checked: reachable within a timeout,
  every worker on this pushscan version;
- ``plan``: the tasks: each group of files (one capture) is one task, or, when big, one
  task per shard (``analysis.shard``: each reads the capture, tracks its sessions);
- ``tasks``: what runs on a worker (an ``Analysis``, its result compressed);
- ``run.on_cluster``: submits, spills results to local temporary files as they arrive,
  and hands back each group's report in order with its sessions merged in id order
  (streamed from those files: the client's memory does not grow with the sessions);
- ``run.map_tasks``: one task per piece of work, results in order (``check``: a trace each).

Needs the extra: ``pip install 'pushscan[cluster]'`` (dask, distributed). Inputs are paths
the workers can read: a shared file system, mounted at the same place.
"""
from .client import CLUSTER_MISSING, Cluster, connect
from .plan import Task, plan
from .run import map_tasks, on_cluster

__all__ = ["CLUSTER_MISSING", "Cluster", "Task", "connect", "map_tasks", "on_cluster", "plan"]
