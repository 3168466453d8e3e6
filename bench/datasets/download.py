"""Downloading an image dataset into the cache: each file streamed into a temporary file,
verified, then renamed into place, from the first mirror that gives a verified copy."""

from __future__ import annotations

import http.client
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.datasets.catalogue import IMAGE_DATASETS, DatasetError, IdxFile
from bench.datasets.idx import CHUNK_BYTES, idx_file_problem
from bench.datasets.locations import MIRROR_VARIABLE, cache_folder

TIMEOUT_VARIABLE = "BENCH_DOWNLOAD_TIMEOUT"


DOWNLOAD_TIMEOUT_S = 30.0


# The largest real file is 26 MB: the cap stops a misbehaving mirror from filling the disk.
MAX_DOWNLOAD_BYTES = 64 * 2**20


# Left behind only when a process was killed mid-download; older than any live download.
STALE_PARTIAL_S = 3600.0


PARTIAL_SUFFIX = ".part"


class DownloadFailed(Exception):
    """No mirror gave a verified copy; the message lists what each one answered."""


def download_missing(
    name: str, *, force: bool, mirrors: Sequence[str] | None, log: Callable[[str], object]
) -> Path:
    spec = IMAGE_DATASETS[name]
    bases = _mirror_bases(name, spec.mirrors if mirrors is None else mirrors)
    if not bases:
        raise DownloadFailed(f"no mirror is configured (set {MIRROR_VARIABLE})")
    timeout = _download_timeout()
    folder = cache_folder(name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DownloadFailed(f"cannot create the cache folder {folder}: {error}") from None
    _remove_stale_partials(folder)
    for expected in spec.files:
        destination = folder / expected.name
        if force or not destination.is_file() or idx_file_problem(destination, expected):
            _download_from_first_good_mirror(name, expected, destination, bases, timeout, log)
    return folder


def _mirror_bases(name: str, mirrors: Sequence[str]) -> list[str]:
    bases = [base if base.endswith("/") else base + "/" for base in mirrors]
    override = os.environ.get(MIRROR_VARIABLE)
    if override:
        # One variable serves every dataset, and MNIST and Fashion-MNIST share file names,
        # so the dataset name is a folder under it.
        bases.insert(0, f"{override.rstrip('/')}/{name}/")
    return bases


def _download_timeout() -> float:
    value = os.environ.get(TIMEOUT_VARIABLE)
    if not value:
        return DOWNLOAD_TIMEOUT_S
    try:
        return float(value)
    except ValueError:
        raise DatasetError(
            f"{TIMEOUT_VARIABLE}={value!r} is not a number of seconds; "
            "set it to e.g. 60 or unset it"
        ) from None


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
    timeout: float,
    log: Callable[[str], object],
) -> None:
    failures = []
    for base in bases:
        url = base + expected.name
        log(f"{name}: downloading {url}")
        try:
            _download(url, destination, expected, timeout)
        except DownloadFailed as error:
            failures.append(f"{url}: {error}")
            log(f"{name}: {url} failed ({error})")
        else:
            return
    raise DownloadFailed(f"{expected.name}: " + "; ".join(failures))


def _download(url: str, destination: Path, expected: IdxFile, timeout: float) -> None:
    """Stream `url` into a temporary file beside `destination`, verify it, then rename it into
    place: the rename is atomic, so `destination` is never half-written, and the temporary
    file is removed whatever happens."""
    handle, temporary_name = tempfile.mkstemp(
        dir=destination.parent, prefix=f".{destination.name}.", suffix=PARTIAL_SUFFIX
    )
    temporary = Path(temporary_name)
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as answer:
            received = 0
            while chunk := answer.read(CHUNK_BYTES):
                received += len(chunk)
                if received > MAX_DOWNLOAD_BYTES:
                    raise DownloadFailed(
                        f"sent more than {MAX_DOWNLOAD_BYTES} bytes; not this file"
                    )
                out.write(chunk)
        problem = idx_file_problem(temporary, expected)
        if problem:
            raise DownloadFailed(f"got a file that failed verification ({problem})")
        os.replace(temporary, destination)
    except urllib.error.HTTPError as error:
        raise DownloadFailed(f"HTTP {error.code} {error.reason}") from None
    except urllib.error.URLError as error:
        raise DownloadFailed(f"unreachable ({error.reason})") from None
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise DownloadFailed(f"{type(error).__name__}: {error}") from None
    finally:
        temporary.unlink(missing_ok=True)
