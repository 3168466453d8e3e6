"""What runs on a Dask worker: one case, measured by `runner.measure_case` in a folder of
that machine, with the plugin and the dataset as that machine has them; and, after Ctrl-C,
the killing of the cases still running there."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import signal
import socket
import tempfile
from pathlib import Path

from bench import datasets, outcomes, plugins
from bench.execution import peak, runner
from bench.execution.cluster.identity import this_machine
from bench.records import Case, CaseRecord

# Each worker process measures its machine's peak once per thread count.
_peaks: dict[int, dict] = {}


def session_folder(session: str) -> Path:
    """Where a worker keeps the work folders of one coordinator's cases."""
    return Path(tempfile.gettempdir()) / f"bench-cluster-{session}"


def measure_remote(
    case_json: dict,
    definition: dict | None,
    builtin_dir: str,
    session: str,
    download: bool,
    measure_peak: bool,
) -> dict:
    """The Dask task of one case: measure it on this worker (its scenario as the run stored
    it) and return its record, its pytest-benchmark JSON and this worker's facts (its host,
    machine and measured peak)."""
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
        measured = runner.measure_case(local, workdir, definition=definition)
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
    if case.dataset.from_file:
        return _with_own_dataset(dataclasses.replace(case, source=source))
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


def _with_own_dataset(case: Case) -> Case | str:
    """A case on a user's dataset file: the same file (by SHA-256) at the same path on this
    worker, or why it cannot run here. Nothing is copied between machines."""
    expected = case.dataset
    try:
        found = datasets.resolve_file(expected.location)
    except datasets.DatasetError as error:
        found, problem = None, str(error)
    if found is not None and found.files == expected.files:
        return case
    problem = "its files differ from the coordinator's (SHA-256)" if found else problem
    return (
        f"dataset {expected.location} is not usable on worker host {socket.gethostname()}: "
        f"{problem}. Put the same file at the same path on every worker (a shared folder)"
    )


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
