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

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.metadata
import logging
import os
import platform
import shutil
import signal
import socket
import tempfile
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import datasets, outcomes, plugins
from bench.execution import environment, peak, runner
from bench.records import BENCHMARK_FILE, Case, CaseRecord
from bench.store import RunStore

INSTALL_HINT = "pip install 'bench[cluster]' (it installs dask[distributed])"
LOCAL_PREFIX = "local:"
HARNESS_DIR = Path(__file__).resolve().parents[1]
CONNECT_TIMEOUT_S = 10.0
POLL_S = 0.5
# How long the coordinator waits for a scheduler connection that dropped to come back, and
# for a worker to take the cases left when none can.
SCHEDULER_GRACE_S = 20.0
NO_WORKER_GRACE_S = 60.0
# After Ctrl-C, how long the cases killed on their workers have to send back their rounds.
INTERRUPT_WAIT_S = 10.0
# Facts of a machine that make its times differ from another's: `machine_id` digests them.
MACHINE_KEYS = ("cpu_model", "cores_logical", "cores_allowed", "memory_total_bytes", "os", "gpu")


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


# --- what a worker runs with ---------------------------------------------------------------


def harness_digest() -> str:
    """SHA-256 of the harness's own files (the `bench` package), by relative path and
    content: two machines measure alike only if they run the same harness code."""
    digest = hashlib.sha256()
    for path in sorted(HARNESS_DIR.rglob("*")):
        relative = path.relative_to(HARNESS_DIR)
        if not path.is_file() or "__pycache__" in relative.parts:
            continue
        digest.update(f"{relative.as_posix()}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def worker_identity(sources: Sequence[str], builtin_dir: str) -> dict:
    """What this machine would run a case with: the harness, Python and the frameworks, the
    plugins the run uses (`sources`, as planned on a machine whose implementations/ folder
    is `builtin_dir`), and the machine itself. Called on every worker, and on the
    coordinator to compare."""
    try:
        version = importlib.metadata.version("bench")
    except importlib.metadata.PackageNotFoundError:
        version = None
    return {
        **this_machine(),
        "harness": {"version": version, "digest": harness_digest()},
        "python": platform.python_version(),
        "packages": environment.package_versions(),
        "plugins": {
            source: plugins.source_digest(plugins.relocated_source(source, builtin_dir))
            for source in sources
        },
    }


def this_machine() -> dict:
    """This machine's name, the facts that make its times differ from another's, and a
    short digest of them."""
    facts = environment.machine_facts()
    machine = {key: facts.get(key) for key in MACHINE_KEYS}
    digest = hashlib.sha256("|".join(map(str, machine.values())).encode()).hexdigest()[:12]
    return {"host": socket.gethostname(), "machine": machine, "machine_id": digest}


def differences(mine: dict, theirs: dict, builtin_dir: str) -> list[str]:
    """How a worker's identity differs from the coordinator's, in words."""
    found = []
    harness, their_harness = mine["harness"], theirs["harness"]
    if harness != their_harness:
        found.append(
            f"harness bench {their_harness['version']} (source digest "
            f"{their_harness['digest'][:12]}) there, bench {harness['version']} "
            f"({harness['digest'][:12]}) here"
        )
    if mine["python"] != theirs["python"]:
        found.append(f"Python {theirs['python']} there, {mine['python']} here")
    for name, version in mine["packages"].items():
        other = theirs["packages"].get(name)
        if other != version:
            found.append(
                f"{name} {other or 'not installed'} there, {version or 'not installed'} here"
            )
    for source, digest in mine["plugins"].items():
        other = theirs["plugins"].get(source)
        if other == digest:
            continue
        name = _source_name(source, builtin_dir)
        found.append(
            f"plugin {name} is missing there"
            if other is None
            else f"plugin {name} differs (sha256 {other[:12]} there, {(digest or '-')[:12]} here)"
        )
    return found


def _source_name(source: str, builtin_dir: str) -> str:
    """A plugin source as a person knows it: implementations/NAME, or its path."""
    location = source.removeprefix("path:")
    with contextlib.suppress(ValueError):
        return f"implementations/{Path(location).relative_to(builtin_dir).as_posix()}"
    return location


# --- on a worker: one case ---------------------------------------------------------------

# Each worker process measures its machine's peak once per thread count.
_peaks: dict[int, dict] = {}


def session_folder(session: str) -> Path:
    """Where a worker keeps the work folders of one coordinator's cases."""
    return Path(tempfile.gettempdir()) / f"bench-cluster-{session}"


def measure_remote(
    case_json: dict, builtin_dir: str, session: str, download: bool, measure_peak: bool
) -> dict:
    """The Dask task of one case: measure it on this worker and return its record, its
    pytest-benchmark JSON and this worker's facts (its host, machine and measured peak)."""
    from distributed import get_worker

    case = Case.from_json(case_json)
    worker = {"address": get_worker().address, **this_machine()}
    if measure_peak:
        if case.threads not in _peaks:
            _peaks[case.threads] = peak.measure_in_subprocess(case.threads)
        worker["peak"] = {str(case.threads): _peaks[case.threads]}
    workdir = session_folder(session) / case.id
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    try:
        local = _on_this_machine(case, builtin_dir, download)
        if isinstance(local, str):
            now = runner.timestamp()
            record = CaseRecord(case, outcomes.FAILED, local, started_at=now, ended_at=now)
            return {"record": record.to_json(), "benchmark": None, "worker": worker}
        measured = runner.measure_case(local, workdir)
        benchmark = measured.benchmark_file
        return {
            "record": measured.record.to_json(),
            "benchmark": benchmark.read_text(encoding="utf-8") if benchmark else None,
            "worker": {**worker, "dataset_location": local.dataset and local.dataset.location},
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _on_this_machine(case: Case, builtin_dir: str, download: bool) -> Case | str:
    """The case with its plugin and dataset as this machine has them, or why it cannot run
    here. The dataset is the one the run planned (never a fallback chosen here), found or
    fetched and verified by SHA-256 like on the coordinator."""
    source = plugins.relocated_source(case.source, builtin_dir)
    if case.dataset is None:
        return dataclasses.replace(case, source=source)
    messages: list[str] = []
    try:
        found = datasets.resolve(
            case.dataset.used, download=download, fallback=False, log=messages.append
        )
    except datasets.DatasetError as error:
        return (
            f"dataset {case.dataset.used} is not available on worker host "
            f"{socket.gethostname()}: {error}" + (f" ({'; '.join(messages)})" if messages else "")
        )
    dataset = dataclasses.replace(case.dataset, location=found.location)
    return dataclasses.replace(case, source=source, dataset=dataset)


def kill_cases(session: str) -> list[int]:
    """On a worker (after Ctrl-C): kill the process groups of this session's running cases,
    found by their working folder. Their tasks then return with what they measured."""
    import psutil

    root = session_folder(session)
    own_group = os.getpgid(0)
    killed = []
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error, OSError):
            group = os.getpgid(child.pid)
            if group != own_group and Path(child.cwd()).is_relative_to(root):
                os.killpg(group, signal.SIGKILL)
                killed.append(child.pid)
    return killed


# --- on the coordinator --------------------------------------------------------------------


@dataclass
class _Attempt:
    case: Case
    worker: str  # address
    worker_key: str  # the worker's address and name (`_Worker.key`)
    host: str
    started_at: str


@dataclass
class _Worker:
    address: str
    name: str
    nthreads: int
    host: str = ""

    @property
    def key(self) -> str:
        """Which worker this is: its address, and the name it was started with. (A worker
        restarted by its nanny on a fixed `--worker-port` keeps both, so for Dask, which then
        runs its task again, it is the same worker: its lost attempt goes unrecorded.)"""
        return f"{self.address} {self.name}"


@dataclass
class DaskExecutor:
    """Runs cases as Dask tasks, at most one per host at a time unless `parallel`."""

    client: Any
    options: ClusterOptions
    notify: Callable[[str], None] = print
    session: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    checked: dict[str, dict] = field(default_factory=dict)  # `_Worker.key` -> identity
    refused: set[str] = field(default_factory=set)  # keys of workers that differ
    _mine: dict = field(default_factory=dict)
    _sources: list[str] = field(default_factory=list)

    @property
    def builtin_dir(self) -> str:
        return str(plugins.BUILTIN_DIR)

    def prepare(self, cases: Sequence[Case]) -> dict:
        """Check, before any case runs, that every worker runs what this machine does;
        refuse the run otherwise. Returns what run.json records of the cluster."""
        self._sources = sorted({case.source for case in cases if case.will_run})
        self._mine = worker_identity(self._sources, self.builtin_dir)
        workers = self._workers()
        if not workers:
            raise ClusterError(
                f"the Dask cluster at {self.options.address} has no workers: start them with "
                f"`dask worker {self.options.address}` on each machine (docs/cluster.md)"
            )
        problems = self._check(workers.values())
        if problems:
            raise ClusterError(
                "refusing to run: these workers do not run what this machine runs, so their "
                "numbers would not be comparable:\n"
                + "\n".join(f"  {problem}" for problem in problems)
                + "\nInstall the same versions there (docs/cluster.md), or stop those workers"
            )
        return self.description()

    def description(self) -> dict:
        return {
            "scheduler": self.options.address,
            "parallel": self.options.parallel,
            "retries": self.options.retries,
            "code": "installed identically on every worker, checked before the run",
            "workers": {
                identity["address"]: {
                    "host": identity["host"],
                    "machine_id": identity["machine_id"],
                    **identity["machine"],
                }
                for identity in self.checked.values()
            },
        }

    def _workers(self) -> dict[str, _Worker]:
        """The workers the scheduler has now, by address."""
        info = self.client.scheduler_info(n_workers=-1)
        return {
            address: _Worker(address, str(w.get("name")), int(w.get("nthreads") or 1))
            for address, w in info.get("workers", {}).items()
        }

    def _check(self, workers: Sequence[_Worker]) -> list[str]:
        """Ask each worker not yet checked who it is; what differs, by worker."""
        new = [w for w in workers if w.key not in self.checked and w.key not in self.refused]
        if not new:
            return []
        try:
            answers = self.client.run(
                worker_identity,
                self._sources,
                self.builtin_dir,
                workers=[w.address for w in new],
                on_error="return",
            )
        except (OSError, TimeoutError) as error:  # the scheduler went away meanwhile
            raise ClusterLost(
                f"lost the Dask scheduler at {self.options.address} while asking its workers "
                f"who they are ({type(error).__name__}: {error})"
            ) from None
        problems = []
        for worker in new:
            answer = answers.get(worker.address)
            if answer is None:
                continue  # it left meanwhile
            if isinstance(answer, BaseException):
                self.refused.add(worker.key)
                problems.append(
                    f"worker {worker.address} cannot run the harness: "
                    f"{type(answer).__name__}: {answer}. Install bench there"
                )
                continue
            found = differences(self._mine, answer, self.builtin_dir)
            if found:
                self.refused.add(worker.key)
                problems.append(
                    f"worker {worker.address} (host {answer['host']}): " + "; ".join(found)
                )
            else:
                self.checked[worker.key] = {**answer, "address": worker.address}
        return problems

    def run(
        self, store: RunStore, cases: Sequence[Case], on_start: Callable[[Case], None]
    ) -> Iterator[CaseRecord]:
        for case in cases:
            if not case.will_run:
                on_start(case)
                yield runner.run_case(store, case)
        queue = deque(case for case in cases if case.will_run)
        running: dict[Any, _Attempt] = {}
        lost: dict[str, list[dict]] = {}
        idle_since = time.monotonic()
        try:
            while queue or running:
                workers = self._usable_workers()
                for future, attempt in list(running.items()):
                    gone = _Worker("", "", 0)
                    if workers.get(attempt.worker, gone).key != attempt.worker_key:
                        del running[future]
                        future.cancel()
                        record = self._lost(attempt, lost.setdefault(attempt.case.id, []))
                        if record is None:
                            queue.appendleft(attempt.case)
                        else:
                            yield self._save(store, record)
                for case, worker in self._assign(queue, running, workers, lost):
                    future = self.client.submit(
                        measure_remote,
                        case.to_json(),
                        self.builtin_dir,
                        self.session,
                        self.options.download,
                        self.options.measure_peak,
                        key=f"bench-{case.id}-{uuid.uuid4().hex[:8]}",
                        workers=[worker.address],
                        allow_other_workers=False,
                        pure=False,
                    )
                    running[future] = _Attempt(
                        case, worker.address, worker.key, worker.host, runner.timestamp()
                    )
                    on_start(case)
                if running:
                    idle_since = time.monotonic()
                elif time.monotonic() - idle_since > NO_WORKER_GRACE_S:
                    raise ClusterLost(
                        f"no worker of the cluster at {self.options.address} could take the "
                        f"{len(queue)} case(s) left for {NO_WORKER_GRACE_S:g} s (all gone, "
                        "or refused). Start workers, then resume the run"
                    )
                for future in self._wait(running):
                    attempt = running.pop(future)
                    yield self._save(store, *self._finished(future, attempt, lost))
        except BaseException as error:
            self._abandon(store, running, lost, error)
            raise

    def _usable_workers(self) -> dict[str, _Worker]:
        """The workers that passed the check, by address; a worker that joined since is
        checked now, and left out, with a notice, if it differs."""
        started = time.monotonic()
        while self.client.status != "running":  # reconnecting: give it a moment
            if (
                self.client.status in ("closing", "closed")
                or time.monotonic() - started > SCHEDULER_GRACE_S
            ):
                raise self._scheduler_lost()
            time.sleep(POLL_S)
        workers = self._workers()
        for problem in self._check(list(workers.values())):
            self.notify(f"a worker that joined is not used: {problem}")
        usable = {}
        for address, worker in workers.items():
            identity = self.checked.get(worker.key)
            if identity is not None:
                worker.host = identity["host"]
                usable[address] = worker
        return usable

    def _scheduler_lost(self) -> ClusterLost:
        return ClusterLost(
            f"lost the connection to the Dask scheduler at {self.options.address} (the "
            f"client is {self.client.status}): is it still running, and reachable from here?"
        )

    def _assign(
        self,
        queue: deque[Case],
        running: dict[Any, _Attempt],
        workers: dict[str, _Worker],
        lost: dict[str, list[dict]],
    ) -> Iterator[tuple[Case, _Worker]]:
        """The next cases and the free workers they go to: a host takes one case at a time
        (each worker as many as its threads with `parallel`); a retried case prefers a
        worker other than those it was lost on."""
        busy_hosts = {attempt.host for attempt in running.values()}
        busy_slots = Counter(attempt.worker for attempt in running.values())
        free: list[_Worker] = []
        for worker in sorted(workers.values(), key=lambda w: (w.host, w.address)):
            if self.options.parallel:
                free += [worker] * max(0, worker.nthreads - busy_slots[worker.address])
            elif worker.host not in busy_hosts:
                free.append(worker)
                busy_hosts.add(worker.host)
        while queue and free:
            case = queue.popleft()
            avoided = {attempt["worker"] for attempt in lost.get(case.id, ())}
            worker = min(free, key=lambda w: w.address in avoided)
            free.remove(worker)
            yield case, worker

    def _wait(self, running: dict[Any, _Attempt]) -> list[Any]:
        if not running:
            time.sleep(POLL_S)
            return []
        distributed = _distributed()
        try:
            done, _ = distributed.wait(list(running), timeout=POLL_S, return_when="FIRST_COMPLETED")
        except TimeoutError:
            return []
        except distributed.client.FuturesCancelledError:
            raise self._scheduler_lost() from None  # the client cancels all when it loses it
        return list(done)

    def _lost(self, attempt: _Attempt, attempts: list[dict]) -> CaseRecord | None:
        """Note an attempt whose worker left; the record to store when no retry is left."""
        attempts.append(
            {
                "worker": attempt.worker,
                "host": attempt.host,
                "started_at": attempt.started_at,
                "ended_at": runner.timestamp(),
                "reason": f"worker {attempt.worker} on host {attempt.host} left the cluster "
                "while it ran the case (killed, or its machine went away); the rounds it "
                "measured were lost with it",
            }
        )
        if len(attempts) <= self.options.retries:
            self.notify(
                f"{attempt.case.id}: its worker {attempt.worker} was lost; retrying it "
                f"({len(attempts)} of {self.options.retries})"
            )
            return None
        return CaseRecord(
            attempt.case,
            outcomes.CRASHED,
            f"lost its worker {len(attempts)} time(s), the last {attempt.worker} on host "
            f"{attempt.host}; not retried again (--cluster-retries {self.options.retries})",
            attempts=tuple(attempts),
        )

    def _finished(
        self, future: Any, attempt: _Attempt, lost: dict[str, list[dict]]
    ) -> tuple[CaseRecord, str | None]:
        """A returned task as its record and its pytest-benchmark JSON."""
        attempts = tuple(lost.get(attempt.case.id, ()))
        worker = {"address": attempt.worker, "host": attempt.host}
        try:
            result = future.result()
        except Exception as error:
            reason = (
                f"the Dask task failed on worker {attempt.worker} (host {attempt.host}): "
                f"{type(error).__name__}: {error}"
            )
            record = CaseRecord(attempt.case, outcomes.FAILED, reason, worker=worker)
            return dataclasses.replace(record, attempts=attempts), None
        record = CaseRecord.from_json(result["record"])
        # The planned case, not the worker's copy (its plugin and data paths are that
        # machine's, kept in `worker`): a record keeps the id and plan it was stored under.
        record = dataclasses.replace(
            record, case=attempt.case, worker=result["worker"], attempts=attempts
        )
        return record, result["benchmark"]

    def _save(
        self, store: RunStore, record: CaseRecord, benchmark: str | None = None
    ) -> CaseRecord:
        """Store a record the cluster sent back, its pytest-benchmark JSON first."""
        if benchmark is None:
            return store.save_case(record)
        path = store.workdir(record.case.id) / BENCHMARK_FILE
        path.write_text(benchmark, encoding="utf-8")
        return store.save_case(record, path)

    def _abandon(
        self,
        store: RunStore,
        running: dict[Any, _Attempt],
        lost: dict[str, list[dict]],
        error: BaseException,
    ) -> None:
        """The run stops with cases running: store each as *interrupted* (with the rounds its
        worker sends back, when the cluster still answers) and cancel their tasks."""
        if not running:
            return
        if isinstance(error, ClusterLost):
            why = f"interrupted: {error}"
        elif isinstance(error, KeyboardInterrupt):
            why = "interrupted (Ctrl-C)"
        else:  # GeneratorExit: the run stopped while storing another case
            why = f"interrupted: the run stopped while it ran ({type(error).__name__})"
        returned: dict[Any, tuple[CaseRecord, str | None]] = {}
        if not isinstance(error, ClusterLost):
            with contextlib.suppress(Exception):
                self.client.run(
                    kill_cases,
                    self.session,
                    workers=sorted({a.worker for a in running.values()}),
                    on_error="ignore",
                )
                deadline = time.monotonic() + INTERRUPT_WAIT_S
                while len(returned) < len(running) and time.monotonic() < deadline:
                    waiting = {f: a for f, a in running.items() if f not in returned}
                    for future in self._wait(waiting):
                        returned[future] = self._finished(future, running[future], lost)
        for future, attempt in running.items():
            record, _ = returned.get(future) or (
                CaseRecord(
                    attempt.case,
                    outcomes.INTERRUPTED,
                    worker={"address": attempt.worker, "host": attempt.host},
                    attempts=tuple(lost.get(attempt.case.id, ())),
                ),
                None,
            )
            with contextlib.suppress(Exception):
                future.cancel()
            interrupted = dataclasses.replace(
                record, status=outcomes.INTERRUPTED, reason=why, details=None, log_tail=None
            )
            with contextlib.suppress(OSError):
                store.save_case(interrupted)
