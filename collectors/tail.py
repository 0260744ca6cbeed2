"""Following log files: globs, rotation, truncation and checkpoints.

:class:`FileTailer` is a long-running :class:`~collectors.base.Source`. It polls
its paths and globs, reads new complete lines with the format's line parser (see
:mod:`collectors.logformats`) and hands out batches whose checkpoint is the
position after their last line: ``{"inode", "dev", "offset", "line",
"generation"}`` under the name ``tail:<absolute path>``. The pipeline stores a
checkpoint only after the batch, so after ``kill -9`` the tailer restarts from the
last stored position; lines read again get the same event ids (file identity +
byte offset) and the store drops them — nothing is lost, nothing is stored twice.

Rotation:

* **rename and create** (logrotate's default): the open file handle still reads
  the renamed file, so the tailer finishes it (the last line even without its
  newline) and then opens the new file from its start. If the rotation happened
  while the tailer was stopped, the checkpointed inode is looked for among the
  files of the same directory and finished first.
* **copytruncate**: the file shrinks under the open handle; the tailer starts it
  again from offset 0 with the next *generation* (part of the event ids, so the
  new lines are not mistaken for the old ones). Lines written between logrotate's
  copy and its truncate are lost by copytruncate itself; that is why rename and
  create is the safer setting.
* **deleted while read**: the open handle is drained to its end, then the file is
  dropped from the watch list with a counted error and a dead letter that says
  how far it was read.

Lines are read a block at a time (:class:`~collectors.lines.BlockLines`: the
compiled access-log reader splits the blocks itself, see :mod:`collectors.weblog`).
A line longer than the limit becomes one dead letter holding its head. When the
end of the file is reached inside it (the writer has not finished it), the
checkpoint says so (``"in_long_line": true``) and the rest is skipped as it
arrives, not read as a line of its own.

Globs should not match the rotated names (``auth.log`` rather than ``auth.log*``):
a rotated file matched again under another name is a different source.
"""

from __future__ import annotations

import glob
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, BinaryIO

from collectors.base import DEFAULT_BATCH_SIZE, Batch
from collectors.lines import DEFAULT_MAX_LINE_BYTES, BlockLines, RawLine
from collectors.logformats import (
    FORMATS,
    file_identity,
    make_parser,
    parser_reference,
    resolve_kind,
)
from collectors.textlog import COUNTERS, LineParser, line_batches
from govsoc.events import DeadLetter

log = logging.getLogger("govsoc.collectors.tail")

CHECKPOINT_PREFIX = "tail:"
#: bytes read at once while skipping the rest of an over-long line
_SKIP_BLOCK = 1 << 20
#: polls without new data after which a joining parser (auditd) hands out what it holds
IDLE_POLLS_BEFORE_FLUSH = 2


def _ends_line(fh: BinaryIO, end: int) -> bool:
    """True when the byte before ``end`` in the file is a newline."""
    try:
        return end > 0 and os.pread(fh.fileno(), 1, end - 1) == b"\n"
    except OSError:
        return True


def checkpoint_name(path: str) -> str:
    return CHECKPOINT_PREFIX + os.path.abspath(path)


@dataclass
class _Tracked:
    path: str  # the watched path: checkpoint key and identity
    fh: BinaryIO
    dev: int
    inode: int
    generation: int
    offset: int  # where reading continues
    line: int  # lines consumed so far
    kind: str
    parser: LineParser
    #: the handle is a rotated-away file found at start-up; the path holds a newer one
    rotated: bool = False
    idle_polls: int = 0
    #: reading stopped inside an over-long line whose head was already handed out
    #: (its newline not written yet): its rest is skipped, not read as a new line
    in_long_line: bool = False

    @property
    def source(self) -> str:
        return file_identity(self.path, self.inode, self.generation)


class FileTailer:
    """Follows files and globs of one log format; a long-running Source."""

    def __init__(self, patterns: list[str], kind: str = "syslog", *, name: str | None = None,
                 checkpoints: Mapping[str, Mapping[str, Any]] | None = None,
                 poll_seconds: float = 0.25, batch_size: int = DEFAULT_BATCH_SIZE,
                 max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, timezone: str | None = None,
                 start_at: str = "beginning", follow: bool = True) -> None:
        if kind not in FORMATS:
            raise ValueError(f"unknown log format {kind!r}; one of {', '.join(FORMATS)}")
        if start_at not in ("beginning", "end"):
            raise ValueError("start_at must be 'beginning' or 'end'")
        self.patterns = list(patterns)
        self.kind = kind
        self.name = name or "tail:" + ",".join(self.patterns)
        self.checkpoints = dict(checkpoints or {})
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.max_line_bytes = max_line_bytes
        self.timezone = timezone
        self.start_at = start_at
        self.follow = follow
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.counters.update(files_opened=0, rotations=0, truncations=0, files_deleted=0,
                             open_errors=0, read_errors=0)
        self._files: dict[str, _Tracked] = {}
        self._stopping = threading.Event()

    # -- Source ------------------------------------------------------------------
    def stop(self) -> None:
        self._stopping.set()

    def batches(self) -> Iterator[Batch]:
        """Batches of new lines of every watched file, until :meth:`stop`.

        With ``follow`` False, every file is read to its end once and the
        generator returns (the last line is taken even without its newline).
        """
        try:
            while not self._stopping.is_set():
                progressed = False
                for path in self._expand():
                    for batch in self._poll(path):
                        progressed = True
                        yield batch
                if not self.follow:
                    for path in list(self._files):
                        yield from self._drain(self._files.pop(path))
                    return
                if not progressed:
                    self._stopping.wait(self.poll_seconds)
        finally:
            for tracked in self._files.values():
                tracked.fh.close()
            self._files.clear()

    # -- files -------------------------------------------------------------------
    def _expand(self) -> list[str]:
        paths: set[str] = set(self._files)
        for pattern in self.patterns:
            if glob.has_magic(pattern):
                paths.update(p for p in glob.glob(pattern) if os.path.isfile(p))
            elif os.path.exists(pattern):
                paths.add(pattern)
        return sorted(paths)

    def _new_parser(self, kind: str, source: str) -> LineParser:
        return make_parser(kind, source=source, timezone=self.timezone)

    def _open(self, path: str, use_checkpoint: bool = True) -> _Tracked | None:
        try:
            fh: BinaryIO = open(path, "rb")  # noqa: SIM115 - kept open while followed
        except OSError as exc:
            self.counters["open_errors"] += 1
            log.warning("cannot open %s: %s", path, exc.strerror or exc)
            return None
        st = os.fstat(fh.fileno())
        kind = resolve_kind(self.kind, path)
        saved = self.checkpoints.pop(checkpoint_name(path), None) if use_checkpoint else None
        generation, offset, line = 0, 0, 0
        rotated = in_long_line = False
        if saved is not None and int(saved.get("inode", -1)) == st.st_ino:
            generation = int(saved.get("generation", 0))
            offset, line = int(saved.get("offset", 0)), int(saved.get("line", 0))
            in_long_line = bool(saved.get("in_long_line", False))
            if st.st_size < offset:
                # truncated (copytruncate) while we were stopped
                self.counters["truncations"] += 1
                generation, offset, line = generation + 1, 0, 0
                in_long_line = False
        elif saved is not None:
            old = self._find_inode(path, int(saved.get("inode", -1)))
            if old is not None:
                fh.close()
                fh = old
                st = os.fstat(fh.fileno())
                generation = int(saved.get("generation", 0))
                offset, line = int(saved.get("offset", 0)), int(saved.get("line", 0))
                in_long_line = bool(saved.get("in_long_line", False))
                rotated = True
            else:
                log.warning("%s was rotated while stopped and the old file (inode %s) is "
                            "gone; lines after offset %s of it could not be read", path,
                            saved.get("inode"), saved.get("offset"))
        elif self.start_at == "end":
            offset = st.st_size
        fh.seek(offset)
        source = file_identity(path, st.st_ino, generation)
        parser = self._new_parser(kind, source)
        prime = getattr(parser, "prime", None)
        if prime is not None and offset > 0:
            prime(fh, offset)
        self.counters["files_opened"] += 1
        return _Tracked(path, fh, st.st_dev, st.st_ino, generation, offset, line, kind, parser,
                        rotated, in_long_line=in_long_line)

    def _find_inode(self, path: str, inode: int) -> BinaryIO | None:
        directory = os.path.dirname(os.path.abspath(path))
        try:
            entries = list(os.scandir(directory))
        except OSError:
            return None
        for entry in entries:
            try:
                if entry.is_file() and entry.inode() == inode:
                    return open(entry.path, "rb")
            except OSError:
                continue
        return None

    def _checkpoint(self, tracked: _Tracked, line: RawLine) -> tuple[str, dict[str, Any]]:
        next_offset = line.offset + line.consumed
        tracked.offset, tracked.line = next_offset, line.number
        # an over-long line is cut at the end of what is written so far: its rest is
        # still to come unless its newline was read
        tracked.in_long_line = line.truncated and not _ends_line(tracked.fh, next_offset)
        offset = next_offset
        pending_offset = getattr(tracked.parser, "pending_offset", None)
        if pending_offset is not None:
            pending = pending_offset()
            if pending is not None:
                offset = min(offset, pending)
        return checkpoint_name(tracked.path), self._state(tracked, offset, line.number)

    @staticmethod
    def _state(tracked: _Tracked, offset: int, line: int) -> dict[str, Any]:
        """The checkpoint of ``tracked`` resuming at ``offset`` after ``line`` lines."""
        state: dict[str, Any] = {
            "path": os.path.abspath(tracked.path), "dev": tracked.dev, "inode": tracked.inode,
            "generation": tracked.generation, "offset": offset, "line": line}
        # only where reading resumes at the cut: from an earlier offset (a joining
        # parser's pending lines) the long line is read again from its start
        if tracked.in_long_line and offset == tracked.offset:
            state["in_long_line"] = True
        return state

    def _read(self, tracked: _Tracked, final: bool) -> Iterator[Batch]:
        try:
            mtime = os.fstat(tracked.fh.fileno()).st_mtime
        except OSError:
            mtime = None
        if mtime is not None:
            parser_reference(tracked.parser, datetime.fromtimestamp(mtime, UTC))
        if tracked.in_long_line and not self._skip_long_line(tracked):
            return
        tracked.fh.seek(tracked.offset)
        lines = BlockLines(tracked.fh, self.max_line_bytes, start_offset=tracked.offset,
                           start_line=tracked.line + 1, final_partial=final)
        read_any = False
        try:
            for batch in line_batches(lines, tracked.parser, tracked.source, tracked.path,
                                      self.batch_size,
                                      checkpoint=lambda ln: self._checkpoint(tracked, ln),
                                      counters=self.counters, final=final):
                read_any = True
                yield batch
        except OSError as exc:
            self.counters["read_errors"] += 1
            reason = f"read error at offset {tracked.offset}: {exc.strerror or exc}"
            log.warning("%s: %s", tracked.path, reason)
            yield Batch(rejected=[DeadLetter(tracked.path, f"offset {tracked.offset}", reason,
                                             b"")])
            return
        if read_any:
            tracked.idle_polls = 0
            return
        tracked.idle_polls += 1
        finish = getattr(tracked.parser, "finish", None)
        if finish is not None and tracked.idle_polls >= IDLE_POLLS_BEFORE_FLUSH:
            held = finish()
            if held:
                for event in held:
                    event.setdefault("log", {})["file"] = {"path": tracked.path}
                self.counters["events"] += len(held)
                yield Batch(events=held, checkpoint=(checkpoint_name(tracked.path),
                                                     self._state(tracked, tracked.offset,
                                                                 tracked.line)))

    def _skip_long_line(self, tracked: _Tracked) -> bool:
        """Skip the rest of an over-long line whose head was handed out; False while
        its newline is not written yet (everything up to the end is skipped)."""
        fh = tracked.fh
        fh.seek(tracked.offset)
        while True:
            block = fh.read(_SKIP_BLOCK)
            if not block:
                return False
            end = block.find(b"\n")
            if end >= 0:
                tracked.offset += end + 1
                tracked.in_long_line = False
                return True
            tracked.offset += len(block)

    def _drain(self, tracked: _Tracked) -> Iterator[Batch]:
        """Read a file that will not grow any more to its very end, then close it."""
        try:
            yield from self._read(tracked, final=True)
        finally:
            tracked.fh.close()

    def _poll(self, path: str) -> Iterator[Batch]:
        tracked = self._files.get(path)
        if tracked is None:
            opened = self._open(path)
            if opened is None:
                return
            tracked = self._files[path] = opened
        if tracked.rotated:
            # the rotated-away file found at start-up: finish it, then the new one
            del self._files[path]
            self.counters["rotations"] += 1
            yield from self._drain(tracked)
            fresh = self._open(path, use_checkpoint=False)
            if fresh is not None:
                self._files[path] = fresh
                yield from self._read(fresh, final=False)
            return
        yield from self._read(tracked, final=False)
        yield from self._check_rotation(path, tracked)

    def _check_rotation(self, path: str, tracked: _Tracked) -> Iterator[Batch]:
        try:
            current = os.stat(path)
        except FileNotFoundError:
            current = None
        except OSError:
            return
        handle = os.fstat(tracked.fh.fileno())
        if current is None:
            if handle.st_nlink > 0:
                return  # renamed away and not yet re-created: keep reading the old file
            del self._files[path]
            yield from self._drain(tracked)
            self.counters["files_deleted"] += 1
            reason = (f"file deleted while being read; its open handle was read to the end "
                      f"(offset {tracked.offset}, {tracked.line} lines)")
            log.warning("%s: %s", path, reason)
            yield Batch(rejected=[DeadLetter(os.path.abspath(path), f"offset {tracked.offset}",
                                             reason, b"")])
            return
        if current.st_ino != tracked.inode:
            del self._files[path]
            self.counters["rotations"] += 1
            yield from self._drain(tracked)
            fresh = self._open(path, use_checkpoint=False)
            if fresh is not None:
                self._files[path] = fresh
                yield from self._read(fresh, final=False)
            return
        if handle.st_size < tracked.offset:
            self.counters["truncations"] += 1
            tracked.generation += 1
            tracked.offset = tracked.line = 0
            tracked.in_long_line = False
            tracked.parser = self._new_parser(tracked.kind, tracked.source)
            yield from self._read(tracked, final=False)


# -- configuration: inputs.tail ---------------------------------------------------

TAIL_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["paths", "format"],
    "properties": {
        "paths": {"type": "array", "items": {"type": "string", "minLength": 1},
                  "minItems": 1},
        "format": {"enum": list(FORMATS)},
        "timezone": {"type": ["string", "null"]},
        "start_at": {"enum": ["beginning", "end"]},
        "poll_seconds": {"type": "number", "exclusiveMinimum": 0},
    },
}
CONFIG_SCHEMA: dict[str, Any] = {"type": "array", "items": TAIL_SCHEMA}


def tailer_from_config(item: Mapping[str, Any], checkpoints: Mapping[str, Mapping[str, Any]],
                       *, batch_size: int = DEFAULT_BATCH_SIZE,
                       max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> FileTailer:
    """A tailer for one ``inputs.tail`` entry; ``checkpoints`` from the store."""
    return FileTailer(list(item["paths"]), item["format"], checkpoints=checkpoints,
                      timezone=item.get("timezone"), start_at=item.get("start_at", "beginning"),
                      poll_seconds=float(item.get("poll_seconds", 0.25)),
                      batch_size=batch_size, max_line_bytes=max_line_bytes)


def tail_checkpoints(saved: Mapping[str, Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The tail checkpoints among all stored ones (``store.list_checkpoints()``)."""
    return {k: v for k, v in saved.items() if k.startswith(CHECKPOINT_PREFIX)}


def _register() -> None:
    from govsoc.config import register_section

    register_section("inputs.tail", CONFIG_SCHEMA, [])


_register()
