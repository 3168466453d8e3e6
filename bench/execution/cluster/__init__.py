"""Runs a run's cases on a Dask cluster: `bench run --cluster tcp://HOST:PORT`, or
`--cluster local:N` (a LocalCluster of N worker processes on this machine, to try it).

Each case is one Dask task that calls `runner.measure_case` on a Dask worker: the same fresh
worker process as a local run, in a temporary folder of that machine. The coordinator (the
`bench run` process) keeps the run: it decides which case goes to which worker and stores
each record in its RunStore as the task returns it, so a run stopped anywhere keeps every
case that finished, and `--resume` finishes it.

- **One timed case per host at a time**, unless `--cluster-parallel`: the coordinator is
  the per-host lock. It pins each task to one worker and gives a host its next case only
  when its last one has returned, because two cases on one machine share its cores.
- **Code is installed identically**, not shipped: each worker imports its own harness,
  frameworks and plugins. Before any case runs, every worker reports what it has
  (`worker_identity`) and a worker that differs from the coordinator is refused, naming the
  difference. A plugin of the `implementations/` folder is looked for in the worker's own
  checkout, a `--plugins` folder at the same path, an entry point as installed.
- **Datasets are resolved on each worker** with the same SHA-256 checks; a worker that
  cannot get one fails its cases with the reason.
- **A worker lost mid-case** (killed, its machine gone) is noticed by the coordinator: the
  attempt goes into the case's record and the case is retried on another worker
  (`--cluster-retries`, default 1). The lost attempt's rounds stayed on that worker: the
  record holds the retry's rounds only, never a mix.
"""

from bench.execution.cluster.connection import (
    INSTALL_HINT,
    ClusterError,
    ClusterLost,
    ClusterOptions,
    connect,
    local_workers,
)
from bench.execution.cluster.executor import DaskExecutor
from bench.execution.cluster.identity import differences, worker_identity

__all__ = [
    "INSTALL_HINT",
    "ClusterError",
    "ClusterLost",
    "ClusterOptions",
    "DaskExecutor",
    "connect",
    "differences",
    "local_workers",
    "worker_identity",
]
