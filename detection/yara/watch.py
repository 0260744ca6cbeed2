"""Watching web roots and upload folders: each new or changed file is scanned
within seconds of being written.

Linux inotify (through ``ctypes``; the standard library has no binding and the
calls are few) reports writes as they finish (``IN_CLOSE_WRITE``), files moved
in (``IN_MOVED_TO``) and new directories, which are watched in turn. A file that
is written but held open is scanned once it has been quiet for
``settle_seconds``. When inotify is unavailable, runs out of watches or its
queue overflows, the watcher falls back to polling: it compares a snapshot of
(inode, size, mtime) per file every ``poll_seconds``.

Symlinks are never followed: a link created in a web root is reported as a link,
its target is not read. The watcher is a long-running input like a collector's
``Source``: :meth:`YaraWatch.run` blocks until :meth:`YaraWatch.stop`, and hands
each result (matched or not scanned) to a callback.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import logging
import os
import queue
import select
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from collectors.base import Batch
from detection.yara.alerts import match_event
from detection.yara.scanner import FileResult, ScanStats, YaraScanner
from govsoc.events import Event

log = logging.getLogger(__name__)

IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_EXCL_UNLINK = 0x04000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = getattr(os, "O_CLOEXEC", 0o2000000)

_DIR_MASK = (IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_MODIFY | IN_ATTRIB
             | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)
_EVENT_HEADER = struct.Struct("iIII")


class InotifyUnavailable(OSError):
    """inotify cannot be used here (no kernel support, or out of instances/watches)."""


class Inotify:
    """A minimal inotify binding: add watches and read events."""

    def __init__(self) -> None:
        name = ctypes.util.find_library("c") or "libc.so.6"
        try:
            self._libc = ctypes.CDLL(name, use_errno=True)
            init = self._libc.inotify_init1
        except (OSError, AttributeError) as exc:
            raise InotifyUnavailable(str(exc)) from exc
        fd = init(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise InotifyUnavailable(code, f"inotify_init1: {os.strerror(code)}")
        self.fd = fd
        self._add = self._libc.inotify_add_watch
        self._add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]

    def add_watch(self, path: str, mask: int = _DIR_MASK) -> int:
        wd = int(self._add(self.fd, os.fsencode(path), mask))
        if wd < 0:
            code = ctypes.get_errno()
            if code in (errno.ENOSPC, errno.ENOMEM):
                raise InotifyUnavailable(code, f"out of inotify watches at {path}")
            raise OSError(code, os.strerror(code), path)
        return wd

    def read(self, timeout: float) -> list[tuple[int, int, str]]:
        """Events ``(watch descriptor, mask, name)`` arriving within ``timeout`` seconds."""
        poller = select.poll()
        poller.register(self.fd, select.POLLIN)
        if not poller.poll(max(0, int(timeout * 1000))):
            return []
        try:
            data = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return []
        events = []
        offset = 0
        while offset + _EVENT_HEADER.size <= len(data):
            wd, mask, _cookie, length = _EVENT_HEADER.unpack_from(data, offset)
            offset += _EVENT_HEADER.size
            raw = data[offset: offset + length].split(b"\0", 1)[0]
            offset += length
            events.append((wd, mask, os.fsdecode(raw)))
        return events

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


@dataclass(frozen=True)
class WatchSettings:
    poll_seconds: float = 5.0
    #: quiet time after the last write before a file still held open is scanned
    settle_seconds: float = 0.5
    inotify: bool = True
    #: scan what the directories hold when watching starts
    initial_scan: bool = False


Snapshot = dict[str, tuple[int, int, int]]


class YaraWatch:
    """Scans files as they appear or change under ``roots``."""

    def __init__(self, scanner: YaraScanner, roots: Sequence[str],
                 on_result: Callable[[FileResult], None],
                 settings: WatchSettings | None = None) -> None:
        self.name = "yara-watch:" + ",".join(roots)
        self.scanner = scanner
        self.roots = [os.path.realpath(r) for r in roots]
        self.on_result = on_result
        self.settings = settings or WatchSettings()
        self.stats = ScanStats()
        self._stop = threading.Event()
        self._inotify: Inotify | None = None
        self._watches: dict[int, str] = {}
        self._pending: dict[str, float] = {}
        self._snapshot: Snapshot = {}
        self.mode = "polling"
        self.ready = threading.Event()
        if self.settings.inotify:
            try:
                self._inotify = Inotify()
                self.mode = "inotify"
            except InotifyUnavailable as exc:
                log.warning("inotify unavailable (%s); polling every %ss", exc,
                            self.settings.poll_seconds)

    # ---------------------------------------------------------------- lifecycle
    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Watch until :meth:`stop`; results go to the callback."""
        try:
            if self._inotify is not None:
                try:
                    for root in self.roots:
                        self._watch_tree(root)
                except InotifyUnavailable as exc:
                    log.warning("%s; falling back to polling", exc)
                    self._fall_back()
            if self.settings.initial_scan:
                self._scan(self.roots)
            if self._inotify is None:
                self._snapshot = self._take_snapshot()
            self.ready.set()
            while not self._stop.is_set():
                if self._inotify is not None:
                    self._inotify_round()
                else:
                    self._poll_round()
        finally:
            self.ready.set()
            if self._inotify is not None:
                self._inotify.close()

    # ---------------------------------------------------------------- inotify
    def _fall_back(self) -> None:
        if self._inotify is not None:
            self._inotify.close()
        self._inotify = None
        self._watches.clear()
        self.mode = "polling"

    def _watch_tree(self, top: str) -> list[str]:
        """Watch ``top`` and its subdirectories; returns the files already in them."""
        assert self._inotify is not None
        files: list[str] = []
        for dirpath, dirnames, filenames in os.walk(top, followlinks=False):
            try:
                wd = self._inotify.add_watch(dirpath)
            except InotifyUnavailable:
                raise
            except OSError as exc:
                log.warning("cannot watch %s: %s", dirpath, exc.strerror)
                dirnames[:] = []
                continue
            self._watches[wd] = dirpath
            files.extend(os.path.join(dirpath, name) for name in filenames)
        return files

    def _inotify_round(self) -> None:
        assert self._inotify is not None
        now = time.monotonic()
        settle = self.settings.settle_seconds
        wait = 0.5
        if self._pending:
            wait = max(0.0, min(self._pending.values()) + settle - now)
        try:
            events = self._inotify.read(min(wait, 0.5))
        except OSError as exc:
            log.warning("inotify read failed (%s); falling back to polling", exc)
            self._fall_back()
            self._snapshot = self._take_snapshot()
            return
        now = time.monotonic()
        for wd, mask, name in events:
            if mask & IN_Q_OVERFLOW:
                # events were lost: scan everything once, then go on
                log.warning("inotify queue overflowed; rescanning %s", ", ".join(self.roots))
                self._scan(self.roots)
                continue
            directory = self._watches.get(wd)
            if directory is None:
                continue
            if mask & IN_IGNORED:
                self._watches.pop(wd, None)
                continue
            if not name:
                continue
            path = os.path.join(directory, name)
            if mask & IN_ISDIR:
                if mask & (IN_CREATE | IN_MOVED_TO):
                    try:
                        for file_path in self._watch_tree(path):
                            self._pending[file_path] = now - settle
                    except InotifyUnavailable as exc:
                        log.warning("%s; falling back to polling", exc)
                        self._fall_back()
                        self._snapshot = self._take_snapshot()
                        return
                continue
            if mask & (IN_CLOSE_WRITE | IN_MOVED_TO):
                self._pending[path] = now - settle  # the write is complete
            elif mask & (IN_CREATE | IN_MODIFY | IN_ATTRIB):
                self._pending.setdefault(path, now)
                if mask & IN_MODIFY:
                    self._pending[path] = max(self._pending[path], now)
        due = [p for p, t in self._pending.items() if t + settle <= now]
        if due:
            for path in due:
                del self._pending[path]
            self._scan(due, files_only=True)

    # ---------------------------------------------------------------- polling
    def _take_snapshot(self) -> Snapshot:
        snapshot: Snapshot = {}
        for root in self.roots:
            for dirpath, _dirnames, filenames in os.walk(root, followlinks=False):
                for name in filenames:
                    path = os.path.join(dirpath, name)
                    try:
                        st = os.lstat(path)
                    except OSError:
                        continue
                    snapshot[path] = (st.st_ino, st.st_size, st.st_mtime_ns)
        return snapshot

    def changed_since_snapshot(self) -> list[str]:
        """Files new or changed since the last snapshot (and take a new one)."""
        current = self._take_snapshot()
        changed = [p for p, key in current.items() if self._snapshot.get(p) != key]
        self._snapshot = current
        return changed

    def _poll_round(self) -> None:
        if self._stop.wait(self.settings.poll_seconds):
            return
        changed = self.changed_since_snapshot()
        if changed:
            self._scan(changed, files_only=True)

    # ---------------------------------------------------------------- scanning
    def _scan(self, paths: Sequence[str], files_only: bool = False) -> None:
        if files_only:
            paths = [p for p in paths if _is_file_or_special(p)]
        if not paths:
            return
        for result in self.scanner.scan(list(paths), self.stats, follow_given=False):
            try:
                self.on_result(result)
            except Exception:  # a failing consumer must not stop the watch
                log.exception("YARA watch callback failed for %s", result.path)


def _is_file_or_special(path: str) -> bool:
    try:
        return not stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


class YaraWatchSource:
    """The watcher as a collector-style ``Source``: batches of ``yara.match`` events.

    Run by the service like any input; the pipeline stores the events and
    :class:`detection.yara.detector.YaraMatchDetector` raises their alerts.
    Files that could not be scanned are logged with their reason.
    """

    def __init__(self, scanner: YaraScanner, roots: Sequence[str],
                 settings: WatchSettings | None = None, batch_seconds: float = 1.0) -> None:
        self._events: queue.Queue[Event] = queue.Queue()
        self.watch = YaraWatch(scanner, roots, self._on_result, settings)
        self.name = self.watch.name
        self.batch_seconds = batch_seconds

    def _on_result(self, result: FileResult) -> None:
        if result.matches:
            self._events.put(match_event(result))
        elif result.skipped:
            log.info("not scanned: %s: %s %s", result.path, result.skipped, result.detail)

    def batches(self) -> Iterator[Batch]:
        runner = threading.Thread(target=self.watch.run, name=self.name, daemon=True)
        runner.start()
        while runner.is_alive() or not self._events.empty():
            events: list[Event] = []
            deadline = time.monotonic() + self.batch_seconds
            while time.monotonic() < deadline:
                try:
                    events.append(self._events.get(timeout=max(0.01, deadline - time.monotonic())))
                except queue.Empty:
                    break
            if events:
                yield Batch(events=events)
        runner.join()

    def stop(self) -> None:
        self.watch.stop()
