"""A bounded on-disk spool for event batches the cluster could not take.

When the cluster is unreachable (or keeps answering 429/5xx past the retries),
the batch is written here as one segment file (JSON lines, written to a temporary
name, fsynced, then renamed, so a segment is either whole or absent) and the
caller's batch counts as accepted. Before every later write (and by the store's
background replayer while segments wait), segments are replayed oldest first; a
segment is deleted only after the cluster took all of it, so a crash in the
middle replays it again, which ``op_type=create`` on the event id makes harmless.
When the spool reaches its size cap the write fails with
:class:`~govsoc.errors.StoreUnavailableError`: the collector then keeps its
checkpoint and nothing is lost, it only stops reading.

Several processes may share a spool directory: an exclusive lock file
serialises appends and replays.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson

from govsoc.errors import StoreUnavailableError

_PREFIX = "seg-"
_SUFFIX = ".jsonl"


class Spool:
    """Ordered segments of events waiting for the cluster."""

    def __init__(self, directory: str | os.PathLike[str], max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._thread_lock = threading.RLock()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailableError(
                f"cannot create the spool directory {self.directory}: {exc.strerror}; "
                "set store.spool_dir to a writable place") from None

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the spool for this process and thread (appends and replays)."""
        with self._thread_lock, open(self.directory / "spool.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def segments(self) -> list[Path]:
        """Segment files, oldest first."""
        return sorted(p for p in self.directory.glob(f"{_PREFIX}*{_SUFFIX}"))

    def size(self) -> int:
        total = 0
        for path in self.segments():
            with contextlib.suppress(FileNotFoundError):
                total += path.stat().st_size
        return total

    def pending(self) -> bool:
        return bool(self.segments())

    def append(self, events: Sequence[dict[str, Any]]) -> Path:
        """Write one batch as a new segment (call inside :meth:`locked`)."""
        body = b"".join(orjson.dumps(e, default=str) + b"\n" for e in events)
        used = self.size()
        if used + len(body) > self.max_bytes:
            raise StoreUnavailableError(
                f"the search cluster is unreachable and the spool {self.directory} is full "
                f"({used >> 20} MiB of {self.max_bytes >> 20} MiB); the batch was not "
                "accepted — it will be read again when the cluster is back")
        existing = self.segments()
        number = int(existing[-1].name[len(_PREFIX):-len(_SUFFIX)]) + 1 if existing else 1
        final = self.directory / f"{_PREFIX}{number:012d}{_SUFFIX}"
        tmp = self.directory / f".{final.name}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        dir_fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return final

    @staticmethod
    def read(segment: Path) -> list[dict[str, Any]]:
        with open(segment, "rb") as fh:
            return [orjson.loads(line) for line in fh if line.strip()]

    @staticmethod
    def remove(segment: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            segment.unlink()
