"""Reaching a Dask cluster: the `--cluster` options, a client of a scheduler or of a local
cluster started for `local:N`, and the errors that stop a cluster run."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

INSTALL_HINT = "pip install 'bench[cluster]' (it installs dask[distributed])"
LOCAL_PREFIX = "local:"
CONNECT_TIMEOUT_S = 10.0


class ClusterError(Exception):
    """The cluster cannot run the cases; the message says why and what to do."""


class ClusterLost(ClusterError):
    """The scheduler, or every worker, went away during the run; finished cases are kept."""


@dataclass(frozen=True)
class ClusterOptions:
    address: str  # tcp://HOST:PORT, HOST:PORT, or local:N
    parallel: bool = False  # let cases share a host (`--cluster-parallel`)
    retries: int = 1  # attempts after a lost worker (`--cluster-retries`)
    download: bool = True  # workers may download a missing dataset
    measure_peak: bool = True  # workers measure their machine's peak once per thread count


def local_workers(address: str) -> int | None:
    """N of `local:N`, None for the address of a scheduler; a malformed one is refused."""
    if not address.startswith(LOCAL_PREFIX):
        if ":" not in address:
            raise ClusterError(
                f"--cluster {address!r}: give a scheduler as tcp://HOST:PORT (`dask scheduler` "
                "prints it), or local:N for N worker processes on this machine"
            )
        return None
    count = address.removeprefix(LOCAL_PREFIX)
    if not count.isdigit() or int(count) < 1:
        raise ClusterError(f"--cluster {address!r}: local:N takes a number of workers of 1 or more")
    return int(count)


def _distributed():
    """`dask.distributed`, or a message saying how to install it."""
    try:
        import distributed
    except ImportError as error:
        raise ClusterError(
            f"--cluster runs cases on Dask, which is not installed here ({error}): {INSTALL_HINT}"
        ) from None
    return distributed


@contextlib.contextmanager
def connect(address: str) -> Iterator[Any]:
    """A Dask client of the scheduler at `address`, or of a LocalCluster started for
    `local:N` (closed, with its workers, at the end)."""
    workers = local_workers(address)
    distributed = _distributed()
    if workers is not None:
        try:
            cluster = distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                worker_dashboard_address=None,
                silence_logs=logging.ERROR,
            )
        except Exception as error:  # Dask says only "Nanny failed to start", and logs why
            raise ClusterError(
                f"could not start a local Dask cluster of {workers} worker process(es) "
                f"({type(error).__name__}: {error}); the log above says why. A busy machine can "
                "delay a worker's start past Dask's time limit: try again, or with fewer"
            ) from None
        with cluster, distributed.Client(cluster, set_as_default=True) as client:
            yield client
        return
    try:
        client = distributed.Client(address, timeout=CONNECT_TIMEOUT_S, set_as_default=True)
    except (OSError, TimeoutError) as error:
        raise ClusterError(
            f"cannot reach the Dask scheduler at {address} ({error}). Start one with "
            f"`dask scheduler` and workers with `dask worker {address}` (docs/cluster.md), "
            "or check the address and that its port is open to this machine"
        ) from None
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close(timeout=5)
