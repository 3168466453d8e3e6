"""Downloading an image dataset into the cache: each file streamed into a temporary file,
verified, then renamed into place, from the first mirror that gives a verified copy.

A transfer is bounded three ways, so that no mirror can hold a run before its first case:
each read waits at most `$BENCH_DOWNLOAD_TIMEOUT`; the whole file must arrive within
`$BENCH_DOWNLOAD_DEADLINE`; and after its first `MIN_RATE_AFTER_S` seconds it must average
at least `$BENCH_DOWNLOAD_MIN_RATE` bytes per second. A mirror that fails one is refused with
the reason, and the next one is tried.
"""

from __future__ import annotations

import http.client
import os
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.datasets.catalogue import IMAGE_DATASETS, DatasetError, IdxFile
from bench.datasets.idx import CHUNK_BYTES, idx_file_problem
from bench.datasets.locations import MIRROR_VARIABLE, cache_folder

TIMEOUT_VARIABLE = "BENCH_DOWNLOAD_TIMEOUT"


DOWNLOAD_TIMEOUT_S = 30.0


DEADLINE_VARIABLE = "BENCH_DOWNLOAD_DEADLINE"


# Per file. The largest file (26 MB) takes 520 s at the minimum rate below.
DOWNLOAD_DEADLINE_S = 600.0


MIN_RATE_VARIABLE = "BENCH_DOWNLOAD_MIN_RATE"


# Bytes per second, averaged from the start of the transfer; 0 turns the check off.
DOWNLOAD_MIN_RATE = 50_000.0


# The rate is judged only after this long: connecting and a slow start are no verdict.
MIN_RATE_AFTER_S = 10.0


# The largest real file is 26 MB: the cap stops a misbehaving mirror from filling the disk.
MAX_DOWNLOAD_BYTES = 64 * 2**20


# Left behind only when a process was killed mid-download; older than any live download.
STALE_PARTIAL_S = 3600.0


PARTIAL_SUFFIX = ".part"


class DownloadFailed(Exception):
    """No mirror gave a verified copy; the message lists what each one answered."""


@dataclass(frozen=True)
class DownloadLimits:
    read_timeout_s: float
    deadline_s: float
    min_rate: float  # bytes per second; 0: no minimum


def download_missing(
    name: str, *, force: bool, mirrors: Sequence[str] | None, log: Callable[[str], object]
) -> Path:
    spec = IMAGE_DATASETS[name]
    bases = _mirror_bases(name, spec.mirrors if mirrors is None else mirrors)
    if not bases:
        raise DownloadFailed(f"no mirror is configured (set {MIRROR_VARIABLE})")
    limits = _download_limits()
    folder = cache_folder(name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DownloadFailed(f"cannot create the cache folder {folder}: {error}") from None
    try:
        _remove_stale_partials(folder)
        for expected in spec.files:
            destination = folder / expected.name
            if force or not destination.is_file() or idx_file_problem(destination, expected):
                _download_from_first_good_mirror(name, expected, destination, bases, limits, log)
    except OSError as error:  # the cache folder cannot be read or written
        raise DownloadFailed(
            f"cannot use the cache folder {folder} ({error.strerror}); fix its permissions "
            "or remove it"
        ) from None
    return folder


def _mirror_bases(name: str, mirrors: Sequence[str]) -> list[str]:
    bases = [base if base.endswith("/") else base + "/" for base in mirrors]
    override = os.environ.get(MIRROR_VARIABLE)
    if override:
        # One variable serves every dataset, and MNIST and Fashion-MNIST share file names,
        # so the dataset name is a folder under it.
        bases.insert(0, f"{override.rstrip('/')}/{name}/")
    return bases


def _download_limits() -> DownloadLimits:
    return DownloadLimits(
        read_timeout_s=_number_variable(TIMEOUT_VARIABLE, DOWNLOAD_TIMEOUT_S, "seconds", 60),
        deadline_s=_number_variable(DEADLINE_VARIABLE, DOWNLOAD_DEADLINE_S, "seconds", 900),
        min_rate=_number_variable(
            MIN_RATE_VARIABLE, DOWNLOAD_MIN_RATE, "bytes per second", 20000, zero_allowed=True
        ),
    )


def _number_variable(
    variable: str, default: float, unit: str, example: float, *, zero_allowed: bool = False
) -> float:
    text = os.environ.get(variable)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not (value >= 0 if zero_allowed else value > 0) or value == float("inf"):
        raise DatasetError(
            f"{variable}={text!r} is not a number of {unit}"
            + (" (0 or more)" if zero_allowed else " above 0")
            + f"; set it to e.g. {example:g} or unset it"
        )
    return value


def _remove_stale_partials(folder: Path) -> None:
    """Delete temporary files that a killed download left; a live one is never this old."""
    cutoff = time.time() - STALE_PARTIAL_S
    for partial in folder.glob(f".*{PARTIAL_SUFFIX}"):
        try:
            if partial.stat().st_mtime < cutoff:
                partial.unlink()
        except OSError:
            continue  # another process removed or renamed it meanwhile


def _download_from_first_good_mirror(
    name: str,
    expected: IdxFile,
    destination: Path,
    bases: Sequence[str],
    limits: DownloadLimits,
    log: Callable[[str], object],
) -> None:
    failures = []
    for base in bases:
        url = base + expected.name
        log(f"{name}: downloading {url}")
        try:
            _download(url, destination, expected, limits)
        except DownloadFailed as error:
            failures.append(f"{url}: {error}")
            log(f"{name}: {url} failed ({error})")
        else:
            return
    raise DownloadFailed(f"{expected.name}: " + "; ".join(failures))


def _download(url: str, destination: Path, expected: IdxFile, limits: DownloadLimits) -> None:
    """Fetch `url` into `destination` within the deadline. The transfer runs in a thread of
    its own, waited for at most the deadline: a read blocked on a mirror that trickles its
    bytes (its headers included) cannot hold the download past it. A transfer given up loses
    its temporary file at once, stops at its next read, and never puts a file in place."""
    transfer = _Transfer(url, destination, expected, limits)
    thread = threading.Thread(target=transfer.run, name=f"download {url}", daemon=True)
    thread.start()
    thread.join(limits.deadline_s)
    if thread.is_alive():
        transfer.give_up()
        raise DownloadFailed(
            f"not finished within its deadline of {limits.deadline_s:g} s "
            f"({transfer.received} bytes received; {DEADLINE_VARIABLE} sets it)"
        )
    if transfer.failure is not None:
        raise transfer.failure


class _Transfer:
    """One file streamed into a temporary file beside its destination, verified, then renamed
    into place: the rename is atomic, so the destination is never half-written, and the
    temporary file is removed whatever happens."""

    def __init__(
        self, url: str, destination: Path, expected: IdxFile, limits: DownloadLimits
    ) -> None:
        self.url, self.destination, self.expected, self.limits = url, destination, expected, limits
        self.received = 0
        self.failure: DownloadFailed | None = None
        self._lock = threading.Lock()
        self._given_up = False
        self._temporary: Path | None = None

    def give_up(self) -> None:
        with self._lock:
            self._given_up = True
            if self._temporary is not None:
                self._temporary.unlink(missing_ok=True)

    def run(self) -> None:
        try:
            self._fetch()
        except DownloadFailed as failure:
            self.failure = failure
        except urllib.error.HTTPError as error:
            self.failure = DownloadFailed(f"HTTP {error.code} {error.reason}")
        except urllib.error.URLError as error:
            self.failure = DownloadFailed(f"unreachable ({error.reason})")
        except (OSError, http.client.HTTPException, ValueError) as error:
            self.failure = DownloadFailed(f"{type(error).__name__}: {error}")

    def _fetch(self) -> None:
        destination, limits = self.destination, self.limits
        handle, temporary_name = tempfile.mkstemp(
            dir=destination.parent, prefix=f".{destination.name}.", suffix=PARTIAL_SUFFIX
        )
        temporary = self._temporary = Path(temporary_name)
        started = time.monotonic()
        try:
            with (
                os.fdopen(handle, "wb") as out,
                urllib.request.urlopen(self.url, timeout=limits.read_timeout_s) as answer,
            ):
                # read1: what has arrived, at once; read(n) would wait for all n bytes.
                while chunk := answer.read1(CHUNK_BYTES):
                    if self._given_up:
                        return
                    self.received += len(chunk)
                    if self.received > MAX_DOWNLOAD_BYTES:
                        raise DownloadFailed(
                            f"sent more than {MAX_DOWNLOAD_BYTES} bytes; not this file"
                        )
                    self._check_rate(time.monotonic() - started)
                    out.write(chunk)
            problem = idx_file_problem(temporary, self.expected)
            if problem:
                raise DownloadFailed(f"got a file that failed verification ({problem})")
            with self._lock:
                if not self._given_up:
                    os.replace(temporary, destination)
        finally:
            temporary.unlink(missing_ok=True)

    def _check_rate(self, elapsed: float) -> None:
        minimum = self.limits.min_rate
        if minimum and elapsed >= MIN_RATE_AFTER_S and self.received < minimum * elapsed:
            raise DownloadFailed(
                f"too slow: {self.received} bytes in {elapsed:.0f} s, below the minimum of "
                f"{minimum:g} bytes/s ({MIN_RATE_VARIABLE} sets it)"
            )
