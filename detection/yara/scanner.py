"""Scanning files, trees and byte payloads with a compiled YARA rule set.

The scanner walks trees with ``os.fwalk`` (directory descriptors, no symlink is
followed), looks at each entry with ``lstat`` before opening it, so FIFOs, device
files and sockets are never opened, and opens regular files with ``O_NOFOLLOW |
O_NONBLOCK``, so a file swapped for a symlink or a FIFO between the look and the
open is caught by ``fstat`` on the open descriptor. Files are read into memory (at
most the size cap) and scanned from there: libyara maps files it opens itself,
and a file truncated under such a mapping kills the process.

Every file that is not scanned, or not fully, is counted under a reason
(:data:`SKIP_REASONS`); the scan goes on. Hashes are computed only for files that
matched, from the very bytes that were scanned.

Work is spread over threads: libyara releases the GIL while it scans. Each thread
has its own ``yara.Rules`` object because the external variables (``filename``,
``filepath``, ``extension``, ``filetype``, ``owner``) are set on the rules object
for each scan.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import pwd
import queue
import stat
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import yara

from detection.yara.archives import (
    BAD_ARCHIVE,
    MEMBER_LIMIT,
    ArchiveLimits,
    archive_kind,
    members,
)
from detection.yara.compiler import CompiledRules
from detection.yara.filetypes import file_type

# reasons a file was not scanned (or not completely); counted in ScanStats.skipped
EXCLUDED = "excluded by a glob"
TOO_LARGE = "larger than the size cap"
NOT_REGULAR = "not a regular file (FIFO, device or socket)"
SYMLINK_OUT = "symlink pointing out of the scanned root"
SYMLINK_IN = "symlink inside the root (its target is scanned where it lies)"
SYMLINK_NOT_FOLLOWED = "symlink (not followed)"
DANGLING = "dangling symlink"
UNREADABLE = "unreadable (permission denied)"
VANISHED = "vanished before it could be read"
READ_ERROR = "read error"
CHANGED = "changed while being read (scanned as read)"
TIMEOUT = "scan timed out"
YARA_ERROR = "libyara error"

SKIP_REASONS = (EXCLUDED, TOO_LARGE, NOT_REGULAR, SYMLINK_OUT, SYMLINK_IN,
                SYMLINK_NOT_FOLLOWED, DANGLING,
                UNREADABLE, VANISHED, READ_ERROR, CHANGED, TIMEOUT, YARA_ERROR,
                MEMBER_LIMIT, BAD_ARCHIVE)

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class ScanLimits:
    """Bounds that keep one bad file from stalling or exhausting the scanner."""

    #: files larger than this are not scanned (counted as too large)
    max_file_size: int = 64 * 1024 * 1024
    #: seconds libyara may spend on one file
    timeout: int = 60
    #: fnmatch globs, tested on the path relative to the root and on the name
    exclude: tuple[str, ...] = ()
    #: string match instances kept per rule in a result (the rule still matches)
    max_strings_per_rule: int = 20
    #: bytes of matched data kept per string match
    max_match_bytes: int = 64
    #: scanning threads; libyara releases the GIL so each uses a core
    threads: int = max(2, os.cpu_count() or 2)
    #: open zip/tar archives and scan their members (None: scan the bytes only)
    archives: ArchiveLimits | None = field(default_factory=ArchiveLimits)


@dataclass(frozen=True)
class StringHit:
    identifier: str
    offset: int
    data: str


@dataclass(frozen=True)
class RuleMatch:
    """One rule that matched: its name, namespace, tags, meta and (capped) strings."""

    rule: str
    namespace: str
    tags: tuple[str, ...]
    meta: Mapping[str, Any]
    strings: tuple[StringHit, ...] = ()
    #: string instances not kept because of the cap
    strings_dropped: int = 0
    #: the archive member that matched ("dir/shell.php", nested: "inner.zip!x.php")
    member: str | None = None


@dataclass
class FileResult:
    """A file that matched, or that could not be scanned (``skipped`` says why)."""

    path: str
    size: int = 0
    mtime: datetime | None = None
    owner: str = ""
    uid: int | None = None
    mode: int | None = None
    matches: list[RuleMatch] = field(default_factory=list)
    md5: str = ""
    sha1: str = ""
    sha256: str = ""
    skipped: str | None = None
    detail: str = ""
    #: archive members not scanned, by reason
    member_skips: Counter[str] = field(default_factory=Counter)

    @property
    def matched(self) -> bool:
        return bool(self.matches)


@dataclass
class ScanStats:
    files: int = 0
    scanned: int = 0
    bytes_scanned: int = 0
    matched: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def add(self, result: FileResult | None, scanned_bytes: int) -> None:
        self.files += 1
        if result is not None and result.member_skips:
            self.skipped.update(result.member_skips)
        if result is not None and result.skipped and result.skipped != CHANGED:
            self.skipped[result.skipped] += 1
            return
        if result is not None and result.skipped == CHANGED:
            self.skipped[CHANGED] += 1
        self.scanned += 1
        self.bytes_scanned += scanned_bytes
        if result is not None and result.matches:
            self.matched += 1

    def summary(self) -> str:
        text = (f"{self.files:,} files: {self.scanned:,} scanned "
                f"({self.bytes_scanned / 1e6:,.1f} MB), {self.matched:,} matched")
        if self.skipped:
            text += "; not scanned: " + ", ".join(
                f"{reason} {count:,}" for reason, count in self.skipped.most_common())
        return text


@lru_cache(maxsize=4096)
def owner_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _printable(data: bytes, limit: int) -> str:
    return data[:limit].decode("utf-8", errors="backslashreplace")


@dataclass
class _Job:
    """A file the walker opened, handed to a scanning thread."""

    path: str
    fd: int
    st: os.stat_result


class YaraScanner:
    """Scans files, trees and payloads with one compiled rule set."""

    def __init__(self, compiled: CompiledRules, limits: ScanLimits | None = None) -> None:
        self.compiled = compiled
        self.limits = limits or ScanLimits()
        self._local = threading.local()
        # libyara copies at most this much matched data per match (a global setting)
        yara.set_config(max_match_data=max(1, self.limits.max_match_bytes))

    # ---------------------------------------------------------------- rules
    def _rules(self) -> yara.Rules:
        rules = getattr(self._local, "rules", None)
        if rules is None:
            rules = self.compiled.load()
            self._local.rules = rules
        return rules

    def match_bytes(self, data: bytes, externals: Mapping[str, str] | None = None
                    ) -> list[RuleMatch]:
        """Rules matching ``data``; raises ``yara.TimeoutError``/``yara.Error``."""
        found = self._rules().match(data=data, externals=dict(externals or {}),
                                    timeout=self.limits.timeout)
        return self._convert(found)

    def _convert(self, found: Iterable[yara.Match]) -> list[RuleMatch]:
        cap = self.limits.max_strings_per_rule
        seen: set[str] = set()
        matches = []
        for match in found:
            # shared rules compiled into several namespaces report once
            if match.rule in seen:
                continue
            seen.add(match.rule)
            hits: list[StringHit] = []
            total = 0
            for string in match.strings:
                for instance in string.instances:
                    total += 1
                    if len(hits) < cap:
                        hits.append(StringHit(string.identifier, instance.offset,
                                              _printable(instance.matched_data,
                                                         self.limits.max_match_bytes)))
            matches.append(RuleMatch(match.rule, match.namespace, tuple(match.tags),
                                     dict(match.meta), tuple(hits), total - len(hits)))
        return matches

    # ---------------------------------------------------------------- payloads
    def scan_payload(self, data: bytes, name: str = "") -> list[RuleMatch]:
        """Rules matching a payload carved from traffic (``name`` as its file name)."""
        extension = os.path.splitext(name)[1].lower()
        externals = {"filename": os.path.basename(name), "filepath": os.path.dirname(name),
                     "extension": extension, "filetype": file_type(data[:1024], extension),
                     "owner": ""}
        return self.match_bytes(data[: self.limits.max_file_size], externals)

    # ---------------------------------------------------------------- files
    def scan_file(self, path: str) -> tuple[FileResult | None, int]:
        """Scan one file; returns the result (None when clean) and the bytes scanned."""
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return FileResult(path, skipped=VANISHED), 0
        except OSError as exc:
            return FileResult(path, skipped=READ_ERROR, detail=exc.strerror or str(exc)), 0
        early = self._check_entry(path, st)
        if early is not None:
            return early, 0
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError as exc:
            return self._open_failure(path, exc), 0
        return self._scan_open(_Job(path, fd, st))

    def _check_entry(self, path: str, st: os.stat_result) -> FileResult | None:
        if stat.S_ISLNK(st.st_mode):
            return FileResult(path, skipped=SYMLINK_IN)
        if not stat.S_ISREG(st.st_mode):
            return FileResult(path, skipped=NOT_REGULAR, detail=_kind(st.st_mode))
        if st.st_size > self.limits.max_file_size:
            return FileResult(path, size=st.st_size, skipped=TOO_LARGE,
                              detail=f"{st.st_size:,} bytes")
        return None

    @staticmethod
    def _open_failure(path: str, exc: OSError) -> FileResult:
        if isinstance(exc, FileNotFoundError):
            return FileResult(path, skipped=VANISHED)
        if isinstance(exc, PermissionError):
            return FileResult(path, skipped=UNREADABLE)
        if exc.errno == 40:  # ELOOP: replaced by a symlink after we looked
            return FileResult(path, skipped=SYMLINK_IN, detail="became a symlink")
        return FileResult(path, skipped=READ_ERROR, detail=exc.strerror or str(exc))

    def _scan_open(self, job: _Job) -> tuple[FileResult | None, int]:
        try:
            return self._scan_fd(job)
        finally:
            os.close(job.fd)

    def _scan_fd(self, job: _Job) -> tuple[FileResult | None, int]:
        path = job.path
        try:
            before = os.fstat(job.fd)
        except OSError as exc:
            return FileResult(path, skipped=READ_ERROR, detail=str(exc)), 0
        if not stat.S_ISREG(before.st_mode):
            return FileResult(path, skipped=NOT_REGULAR, detail=_kind(before.st_mode)), 0
        cap = self.limits.max_file_size
        if before.st_size > cap:
            return FileResult(path, size=before.st_size, skipped=TOO_LARGE,
                              detail=f"{before.st_size:,} bytes"), 0
        changed = False
        for _attempt in range(2):
            try:
                data = _read_at_most(job.fd, cap + 1)
                after = os.fstat(job.fd)
            except OSError as exc:
                return FileResult(path, skipped=READ_ERROR, detail=exc.strerror or str(exc)), 0
            if len(data) > cap:
                return FileResult(path, size=len(data), skipped=TOO_LARGE,
                                  detail="grew past the cap while being read"), 0
            changed = (after.st_mtime_ns != before.st_mtime_ns
                       or after.st_size != before.st_size or after.st_size != len(data))
            if not changed:
                break
            before = after
            os.lseek(job.fd, 0, os.SEEK_SET)
        name = os.path.basename(path)
        extension = os.path.splitext(name)[1].lower()
        owner = owner_name(after.st_uid)
        externals = {"filename": name, "filepath": os.path.dirname(path),
                     "extension": extension, "filetype": file_type(data[:1024], extension),
                     "owner": owner}
        try:
            matches = self.match_bytes(data, externals)
        except yara.TimeoutError:
            return FileResult(path, size=len(data), skipped=TIMEOUT,
                              detail=f"after {self.limits.timeout}s"), 0
        except yara.Error as exc:
            return FileResult(path, size=len(data), skipped=YARA_ERROR, detail=str(exc)), 0
        member_skips: Counter[str] = Counter()
        if self.limits.archives is not None and archive_kind(data[:512]):
            matches += self._scan_members(data, externals, member_skips)
        if not matches and not changed and not member_skips:
            return None, len(data)
        result = FileResult(
            path, size=len(data), owner=owner, uid=after.st_uid, mode=after.st_mode,
            mtime=datetime.fromtimestamp(after.st_mtime, UTC), matches=matches,
            skipped=CHANGED if changed else None, member_skips=member_skips)
        if matches:
            result.md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
            result.sha1 = hashlib.sha1(data, usedforsecurity=False).hexdigest()
            result.sha256 = hashlib.sha256(data).hexdigest()
        return result, len(data)

    def _scan_members(self, data: bytes, externals: Mapping[str, str],
                      skips: Counter[str]) -> list[RuleMatch]:
        """Rules matching members of the archive in ``data`` (bounded unpacking)."""
        assert self.limits.archives is not None
        found: list[RuleMatch] = []
        for member in members(data, self.limits.archives):
            if member.skipped is not None:
                skips[member.skipped] += 1
                continue
            name = os.path.basename(member.name)
            extension = os.path.splitext(name)[1].lower()
            inner = dict(externals, filename=name, extension=extension,
                         filetype=file_type(member.data[:1024], extension))
            try:
                matched = self.match_bytes(member.data, inner)
            except yara.TimeoutError:
                skips[TIMEOUT] += 1
                continue
            except yara.Error:
                skips[YARA_ERROR] += 1
                continue
            found += [replace(m, member=member.name) for m in matched]
        return found

    # ---------------------------------------------------------------- trees
    def scan(self, paths: Sequence[str], stats: ScanStats | None = None,
             follow_given: bool = True) -> Iterator[FileResult]:
        """Scan files and trees; yields matched and skipped files as they finish.

        Clean files are only counted in ``stats``. A symlink named in ``paths`` is
        followed only when ``follow_given`` (a person named it on the command line);
        symlinks met inside trees never are.
        """
        stats = stats if stats is not None else ScanStats()
        threads = max(1, self.limits.threads)
        jobs: queue.Queue[_Job | FileResult | None] = queue.Queue(maxsize=threads * 8)
        results: queue.Queue[tuple[FileResult | None, int] | None] = queue.Queue()
        stop = threading.Event()

        def walker() -> None:
            try:
                for item in self._walk(paths, stop, follow_given):
                    jobs.put(item)
            except Exception as exc:  # a tree that cannot be walked ends its walk, not the scan
                jobs.put(FileResult(", ".join(paths), skipped=READ_ERROR,
                                    detail=f"walk failed: {type(exc).__name__}: {exc}"))
            finally:
                for _ in range(threads):
                    jobs.put(None)

        def worker() -> None:
            try:
                while True:
                    item = jobs.get()
                    if item is None:
                        return
                    if stop.is_set():
                        if isinstance(item, _Job):
                            os.close(item.fd)
                        continue
                    if isinstance(item, FileResult):
                        results.put((item, 0))
                    else:
                        try:
                            results.put(self._scan_open(item))
                        except Exception as exc:  # one file must not end the scan
                            results.put((FileResult(item.path, skipped=READ_ERROR,
                                                    detail=f"{type(exc).__name__}: {exc}"),
                                         0))
            finally:
                results.put(None)

        pool = [threading.Thread(target=walker, name="yara-walk", daemon=True)]
        pool += [threading.Thread(target=worker, name=f"yara-scan-{i}", daemon=True)
                 for i in range(threads)]
        for thread in pool:
            thread.start()
        running = threads
        try:
            while running:
                item = results.get()
                if item is None:
                    running -= 1
                    continue
                result, scanned = item
                stats.add(result, scanned)
                if result is not None:
                    yield result
        finally:
            # the walker stops at its next entry; workers close what is queued unscanned
            stop.set()
            for thread in pool:
                thread.join()

    def _walk(self, paths: Sequence[str], stop: threading.Event, follow_given: bool
              ) -> Iterator[_Job | FileResult]:
        for given in paths:
            if stop.is_set():
                return
            try:
                st = os.stat(given) if follow_given else os.lstat(given)
            except OSError as exc:
                yield self._open_failure(given, exc)
                continue
            if stat.S_ISLNK(st.st_mode):
                yield FileResult(given, skipped=SYMLINK_NOT_FOLLOWED,
                                 detail=os.path.realpath(given))
                continue
            if stat.S_ISDIR(st.st_mode):
                yield from self._walk_tree(given, stop)
            else:
                # a file named on the command line is scanned where its link points
                target = os.path.realpath(given) if follow_given else given
                item = self._open_entry(target, st, None, "")
                if item is not None:
                    yield item

    def _walk_tree(self, top: str, stop: threading.Event) -> Iterator[_Job | FileResult]:
        root = os.path.realpath(top)
        for dirpath, dirnames, filenames, dirfd in os.fwalk(root, follow_symlinks=False,
                                                             onerror=None):
            if stop.is_set():
                return
            relative_dir = os.path.relpath(dirpath, root)
            kept = []
            for name in dirnames:
                relative = name if relative_dir == "." else f"{relative_dir}/{name}"
                if self._excluded(relative, name):
                    yield FileResult(os.path.join(dirpath, name), skipped=EXCLUDED)
                    continue
                try:
                    st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISLNK(st.st_mode):
                    yield self._symlink(os.path.join(dirpath, name), root)
                    continue
                kept.append(name)
            dirnames[:] = sorted(kept)
            for name in sorted(filenames):
                relative = name if relative_dir == "." else f"{relative_dir}/{name}"
                path = os.path.join(dirpath, name)
                if self._excluded(relative, name):
                    yield FileResult(path, skipped=EXCLUDED)
                    continue
                try:
                    st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
                except OSError as exc:
                    yield self._open_failure(path, exc)
                    continue
                if stat.S_ISLNK(st.st_mode):
                    yield self._symlink(path, root)
                    continue
                item = self._open_entry(path, st, dirfd, name)
                if item is not None:
                    yield item

    def _open_entry(self, path: str, st: os.stat_result, dirfd: int | None,
                    name: str) -> _Job | FileResult | None:
        early = self._check_entry(path, st)
        if early is not None:
            return early
        try:
            if dirfd is None:
                fd = os.open(path, _OPEN_FLAGS)
            else:
                fd = os.open(name, _OPEN_FLAGS, dir_fd=dirfd)
        except OSError as exc:
            return self._open_failure(path, exc)
        return _Job(path, fd, st)

    @staticmethod
    def _symlink(path: str, root: str) -> FileResult:
        target = os.path.realpath(path)
        if not os.path.exists(target):
            return FileResult(path, skipped=DANGLING)
        if target == root or target.startswith(root.rstrip("/") + "/"):
            return FileResult(path, skipped=SYMLINK_IN, detail=target)
        return FileResult(path, skipped=SYMLINK_OUT, detail=target)

    def _excluded(self, relative: str, name: str) -> bool:
        return any(fnmatch.fnmatchcase(relative, glob) or fnmatch.fnmatchcase(name, glob)
                   for glob in self.limits.exclude)


def _read_at_most(fd: int, limit: int) -> bytes:
    chunks = []
    remaining = limit
    while remaining > 0:
        chunk = os.read(fd, min(remaining, 4 * 1024 * 1024))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISDIR(mode):
        return "directory"
    return "special file"


#: Receives each result of a watched or carved scan.
ResultCallback = Callable[[FileResult], None]
