"""Writing files so that a reader never sees half of one: write a temporary file beside the
target, flush it to disk, then rename it into place (atomic on POSIX)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

# mkstemp creates files 0600; results, reports and caches get the ordinary mode instead.
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Call `write(handle)` on a temporary file, then move it to `path`. On any error the
    old `path` (if any) is left as it was and the temporary file is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def atomic_write_json(path: Path, data: object) -> None:
    """JSON with NaN allowed (a round that measured nothing), NumPy scalars and paths as
    plain values."""
    atomic_write_text(path, json.dumps(data, indent=2, default=_json_default, allow_nan=True))


def _json_default(value: object) -> object:
    if hasattr(value, "item"):  # NumPy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store {type(value).__name__} in JSON")


def write_cache(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Best effort: a cache that cannot be written (read-only home, full disk) only costs
    time, so the error is swallowed."""
    with contextlib.suppress(OSError):
        atomic_write(path, write)
