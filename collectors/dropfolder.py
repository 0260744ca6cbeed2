"""Drop folders: files placed in a directory (EVTX exports, captures) are read once.

A file is taken when its size and modification time have stayed the same for
``settle_seconds`` (so a copy still in progress is not read half-way). Each file
is read by the reader of its kind; the identity of every file taken (device,
inode, size, mtime) is kept in the checkpoint, so after a restart nothing is read
twice, and a file read half-way before a crash is read again — its deterministic
event ids make the repeat harmless.
"""

from __future__ import annotations

import fnmatch
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from collectors.base import Batch
from govsoc.errors import GovsocError
from govsoc.events import DeadLetter

#: Reads one file into batches (e.g. ``collectors.evtx.read_evtx``).
FileReader = Callable[[str], Iterator[Batch]]

#: How many file identities a checkpoint remembers (oldest dropped first).
MAX_REMEMBERED = 10_000


@dataclass
class _Seen:
    size: int
    mtime_ns: int
    since: float


def _identity(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"


class DropFolderSource:
    """Watches a directory and reads each new, complete file once."""

    def __init__(self, directory: str, patterns: list[str], reader: FileReader, *,
                 name: str | None = None, checkpoint: dict[str, Any] | None = None,
                 poll_seconds: float = 1.0, settle_seconds: float = 2.0,
                 recursive: bool = True) -> None:
        self.directory = directory
        self.patterns = patterns
        self.reader = reader
        self.name = name or f"drop:{directory}"
        self.poll_seconds = poll_seconds
        self.settle_seconds = settle_seconds
        self.recursive = recursive
        self.done: list[str] = list((checkpoint or {}).get("done", []))
        self._done_set = set(self.done)
        self._pending: dict[str, _Seen] = {}
        self._stopping = threading.Event()
        self.counters = {"files_read": 0, "files_failed": 0}

    def stop(self) -> None:
        self._stopping.set()

    def _candidates(self) -> Iterator[tuple[str, os.stat_result]]:
        for root, dirs, files in os.walk(self.directory):
            if not self.recursive:
                dirs.clear()
            for name in sorted(files):
                if not any(fnmatch.fnmatch(name.lower(), p) for p in self.patterns):
                    continue
                path = os.path.join(root, name)
                try:
                    st = os.stat(path, follow_symlinks=False)
                except OSError:
                    continue
                if os.path.isfile(path) and not os.path.islink(path):
                    yield path, st

    def _checkpoint(self) -> tuple[str, dict[str, Any]]:
        return self.name, {"done": self.done[-MAX_REMEMBERED:]}

    def batches(self) -> Iterator[Batch]:
        while not self._stopping.is_set():
            now = time.monotonic()
            for path, st in self._candidates():
                ident = _identity(st)
                if ident in self._done_set:
                    continue
                seen = self._pending.get(path)
                if seen is None or seen.size != st.st_size or seen.mtime_ns != st.st_mtime_ns:
                    self._pending[path] = _Seen(st.st_size, st.st_mtime_ns, now)
                    continue
                if now - seen.since < self.settle_seconds:
                    continue
                del self._pending[path]
                yield from self._read(path, ident)
                if self._stopping.is_set():
                    return
            self._stopping.wait(self.poll_seconds)

    def _read(self, path: str, ident: str) -> Iterator[Batch]:
        try:
            for batch in self.reader(path):
                batch.checkpoint = None  # the folder's own checkpoint says what is done
                yield batch
            self.counters["files_read"] += 1
        except (OSError, GovsocError) as exc:
            self.counters["files_failed"] += 1
            yield Batch(rejected=[DeadLetter(path, "", f"cannot read the file: {exc}", b"")])
        self.done.append(ident)
        self._done_set.add(ident)
        if len(self.done) > MAX_REMEMBERED:
            dropped = self.done[: len(self.done) - MAX_REMEMBERED]
            self.done = self.done[-MAX_REMEMBERED:]
            self._done_set.difference_update(dropped)
        yield Batch(checkpoint=self._checkpoint())
