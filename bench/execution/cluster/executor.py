"""The coordinator's side: `DaskExecutor` checks every worker, gives each host one case at
a time (unless `--cluster-parallel`), stores each record as its task returns, retries a
case whose worker was lost, and keeps what finished when the run stops."""

from __future__ import annotations

import contextlib
import dataclasses
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench import outcomes, plugins
from bench.execution import runner
from bench.execution.cluster.connection import (
    ClusterError,
    ClusterLost,
    ClusterOptions,
    _distributed,
)
from bench.execution.cluster.identity import differences, worker_identity
from bench.execution.cluster.remote import kill_cases, measure_remote
from bench.records import BENCHMARK_FILE, Case, CaseRecord
from bench.store import RunStore

POLL_S = 0.5
# How long the coordinator waits for a scheduler connection that dropped to come back, and
# for a worker to take the cases left when none can.
SCHEDULER_GRACE_S = 20.0
NO_WORKER_GRACE_S = 60.0
# After Ctrl-C, how long the cases killed on their workers have to send back their rounds.
INTERRUPT_WAIT_S = 10.0


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
                        store.meta.scenarios.get(case.scenario),
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
