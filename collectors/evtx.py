"""Windows EVTX files → ECS events.

Public API:

* :func:`read_evtx` — batches (:class:`~collectors.base.Batch`) of ECS events from
  one ``.evtx`` file, with a dead letter for every record or chunk that cannot be
  read; it never raises for bad content.
* :func:`record_to_event` — one record in the XML-as-JSON shape
  (``{"Event": {"System": ..., "EventData": ...}}``, as the ``evtx`` package,
  ``evtx_dump`` and SigmaHQ's regression data render it) → one ECS event.
* :func:`iter_evtx_paths` — the ``.evtx`` files named by files and directories
  (directories recursively).

Records are read with the Rust-backed ``evtx`` package (JSON rendering, parsed
with orjson); the mapping to ``winlog.*`` and ECS lives in
:mod:`collectors.windows`.

Two paths, one result. When the compiled module ``govsoc_evtx`` (``native/evtx``,
over the same ``evtx`` crate) is installed and not turned off with
``GOVSOC_NATIVE=0``, it reads the file's chunks as the package does, renders each
record to the same JSON text (``event.original``, byte for byte) and builds the
event dict itself, field for field, key order included, as
:func:`~collectors.windows.winlog.winlog_event` and
:func:`~collectors.windows.ecs.enrich` would, without the parsed record's Python
objects in between (``bench/bench_evtx.py`` measures both paths). The Python path
stays the reference and the fallback, and the compiled path leans on it for what
is rare: a record whose mapping meets anything it is not sure to
answer as Python does (floats, non-ASCII case rules, nested element JSON, records
Python would reject) comes back as its JSON text and is mapped here; at the first
parser error the package's own iterator takes over after the records already
read, so dead letters, their positions and texts stay the package's; a damaged
file header goes the Python recovery way from the start. Batches, checkpoints and
counts are cut by the same rules on both paths (``tests/collectors/
test_evtx_native.py`` holds them equal over the corpus).

Damaged files: a chunk the parser rejects becomes one dead letter (reason from
the parser, the chunk's bytes as the original) and reading goes on with the next
chunk; a trailing partial chunk (a file cut short by a copy) becomes a dead
letter too. When the file header itself is damaged, the chunks are read one by
one behind a rebuilt header, so every intact chunk is still recovered.
"""

from __future__ import annotations

import io
import os
import re
import struct
import zlib
from collections.abc import Generator, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import evtx
import orjson

from collectors.base import DEFAULT_BATCH_SIZE, Batch, built_without_gc
from collectors.native import native_module
from collectors.windows.ecs import enrich
from collectors.windows.winlog import winlog_event
from govsoc.errors import RecordError
from govsoc.events import DeadLetter, Event

__all__ = ["CHUNK_SIZE", "EvtxStats", "iter_evtx_paths", "read_evtx", "record_to_event"]

CHUNK_SIZE = 65536
HEADER_BLOCK = 4096
_FILE_MAGIC = b"ElfFile\x00"
_CHUNK_MAGIC = b"ElfChnk\x00"
#: give up on a file after this many consecutive parser errors without a record
_MAX_CONSECUTIVE_ERRORS = 1000
_CHUNK_RANGE = re.compile(r"record IDs (\d+)\.\.(\d+)")
#: records taken from the parser before they are mapped (see _read_until_error)
_RUN = 256


def record_to_event(record: Mapping[str, Any], *, original: str | None = None,
                    source: str = "", position: str | int = "") -> Event:
    """The ECS event of one Windows event record.

    ``record`` is ``{"Event": {...}}`` (or the inner ``Event`` object). When
    ``original`` is given it becomes ``event.original``. Raises
    :class:`~govsoc.errors.ParseError` naming ``source``/``position`` when the
    record lacks ``System``, ``EventID`` or ``TimeCreated``.
    """
    return enrich(winlog_event(record, original, source, position))


class EvtxStats:
    """Counts of one file's reading, filled in while :func:`read_evtx` runs."""

    def __init__(self) -> None:
        self.events = 0
        self.rejected = 0
        self.chunk_errors = 0
        self.recovered = False

    @property
    def records(self) -> int:
        """Records read: events plus rejected records and chunks."""
        return self.events + self.rejected

    def __repr__(self) -> str:
        return (f"EvtxStats(records={self.records}, events={self.events}, "
                f"rejected={self.rejected}, chunk_errors={self.chunk_errors}, "
                f"recovered={self.recovered})")


def read_evtx(path: str | os.PathLike[str], *, batch_size: int = DEFAULT_BATCH_SIZE,
              threads: int = 1, source: str | None = None,
              stats: EvtxStats | None = None) -> Iterator[Batch]:
    """Batches of ECS events from the EVTX file ``path``.

    ``threads`` is the ``evtx`` package's worker count (0 = one per core).
    ``source`` names the file in events' dead letters (default: the path).
    Each batch carries the checkpoint ``("evtx:<absolute path>", {"record_id":
    last record id, "records": records read so far})``; since event ids are
    deterministic, re-reading a file after a crash stores no duplicates.
    """
    file_path = os.fspath(path)
    name = source or file_path
    stats = stats if stats is not None else EvtxStats()
    return built_without_gc(_FileReader(file_path, name, batch_size, threads, stats).batches())


class _FileReader:
    def __init__(self, path: str, source: str, batch_size: int, threads: int,
                 stats: EvtxStats) -> None:
        self.path = path
        self.source = source
        self.batch_size = max(1, batch_size)
        self.threads = threads
        self.stats = stats
        self.checkpoint_name = f"evtx:{os.path.abspath(path)}"
        self.batch = Batch()
        self.last_record_id: int | None = None

    # -- batching ---------------------------------------------------------------------
    def _full(self) -> bool:
        return len(self.batch) >= self.batch_size

    def _take(self) -> Batch:
        batch = self.batch
        self.stats.events += len(batch.events)
        batch.checkpoint = (self.checkpoint_name, {"record_id": self.last_record_id,
                                                   "records": self.stats.records})
        self.batch = Batch()
        return batch

    def _reject(self, reason: str, position: str, original: bytes) -> None:
        self.batch.rejected.append(DeadLetter(self.source, position, reason, original))
        self.stats.rejected += 1

    # -- reading ----------------------------------------------------------------------
    def batches(self) -> Generator[Batch, None, None]:
        try:
            size = os.path.getsize(self.path)
        except OSError as exc:
            self._reject(f"cannot open EVTX file: {exc.strerror or exc}", "file", b"")
            yield self._take()
            return
        # the compiled reader opens the file as the package does: where it cannot,
        # the package's own error and recovery follow
        native = _native_records(self.path)
        try:
            parser = None if native is not None else \
                evtx.PyEvtxParser(self.path, number_of_threads=self.threads)
        except (RuntimeError, OSError, ValueError) as exc:
            try:
                with open(self.path, "rb") as handle:
                    yield from self._recover(handle, handle.read(HEADER_BLOCK), size, str(exc))
            except OSError as error:
                self._reject(f"cannot read EVTX file: {error.strerror or error}", "file", b"")
        else:
            if parser is None:
                yield from self._read_native(native)
            else:
                yield from self._read_records(parser.records_json(), locate=True)
            # the file is opened again only when its length shows a partial chunk
            if size > HEADER_BLOCK and (size - HEADER_BLOCK) % CHUNK_SIZE:
                try:
                    with open(self.path, "rb") as handle:
                        yield from self._check_tail(handle, handle.read(HEADER_BLOCK), size)
                except OSError:
                    pass
        if len(self.batch) or self.stats.records == 0:
            yield self._take()

    def _read_native(self, native: Any) -> Iterator[Batch]:
        """Read with the compiled module: the same runs, batches and events as
        :meth:`_read_until_error`; a record it hands back is mapped here, and after a
        parser error the package's own iterator goes on past the records read."""
        while True:
            taken, record_id, handed_back = native.read(self.batch.events, self._run_length())
            if handed_back is not None:
                self._map([{"data": handed_back, "event_record_id": record_id}])
            elif record_id is not None:
                self.last_record_id = record_id
            if self._full():
                yield self._take()
            if not taken:
                break
        if native.failed:
            try:
                records = evtx.PyEvtxParser(self.path,
                                            number_of_threads=self.threads).records_json()
                for _ in range(native.consumed):
                    next(records)
            except (RuntimeError, OSError, ValueError, StopIteration) as exc:
                # the file changed under the reader (replaced, cut) since it opened
                self._reject(f"cannot read EVTX file: {exc}", "file", b"")
                return
            yield from self._read_records(records, locate=True)

    def _read_records(self, records: Iterator[Any], locate: bool) -> Iterator[Batch]:
        consecutive = 0
        while True:
            try:
                yield from self._read_until_error(records)
                return
            except (RuntimeError, OSError, ValueError) as exc:
                # the parser could not read a chunk; it goes on with the next one
                consecutive += 1
                self.stats.chunk_errors += 1
                message = str(exc)
                position, original = self._locate_chunk(message, locate)
                self._reject(f"damaged EVTX data: {message}", position, original)
                if consecutive >= _MAX_CONSECUTIVE_ERRORS:
                    self._reject(f"gave up after {consecutive} consecutive parser errors",
                                 "file", b"")
                    return
                if self._full():
                    yield self._take()

    def _read_until_error(self, records: Iterator[Any]) -> Iterator[Batch]:
        """Map records until the parser raises (the caller handles that) or ends.

        Records are taken from the parser a run at a time and then mapped: the
        parser and the mapping each stay in the processor's caches longer than
        when they alternate record by record (about a sixth faster)."""
        pending: list[Any] = []
        append = pending.append
        limit = self._run_length()
        try:
            for record in records:
                append(record)
                if len(pending) >= limit:
                    self._map(pending)
                    pending.clear()
                    if self._full():
                        yield self._take()
                    limit = self._run_length()
        finally:
            # records the parser gave before it failed (or ended) are kept
            if pending:
                self._map(pending)
                pending.clear()
        if self._full():
            yield self._take()

    def _run_length(self) -> int:
        """How many records to take next: a run, but never past a full batch."""
        return max(1, min(_RUN, self.batch_size - len(self.batch)))

    def _map(self, records: list[Any]) -> None:
        source = self.source
        events = self.batch.events
        loads = orjson.loads
        record_id = None
        for record in records:
            data = record["data"]
            record_id = record["event_record_id"]
            try:
                parsed = loads(data)
                if type(parsed) is not dict:
                    raise RecordError("record is not a JSON object", source, record_id)
                events.append(enrich(winlog_event(parsed, data, source, record_id,
                                                  reuse=True)))
            except (RecordError, orjson.JSONDecodeError, TypeError, ValueError, KeyError,
                    AttributeError, RecursionError) as exc:
                raw = data.encode("utf-8", "replace") if isinstance(data, str) else b""
                reason = getattr(exc, "reason", None) or f"{type(exc).__name__}: {exc}"
                self._reject(reason, str(record_id), raw)
        if record_id is not None:
            self.last_record_id = record_id

    def _locate_chunk(self, message: str, locate: bool) -> tuple[str, bytes]:
        """The position and bytes of the chunk a parser error names (when it does)."""
        match = _CHUNK_RANGE.search(message)
        if match is None:
            return "chunk ?", b""
        first, last = int(match.group(1)), int(match.group(2))
        position = f"records {first}..{last}"
        if not locate:
            return position, b""
        try:
            with open(self.path, "rb") as handle:
                offset = _header_size(handle.read(HEADER_BLOCK))
                while True:
                    handle.seek(offset)
                    head = handle.read(24)
                    if len(head) < 24:
                        break
                    if head[:8] == _CHUNK_MAGIC:
                        lo, hi = struct.unpack_from("<QQ", head, 8)
                        if lo == first and hi == last:
                            handle.seek(offset)
                            return (f"chunk at offset {offset} ({position})",
                                    handle.read(CHUNK_SIZE))
                    offset += CHUNK_SIZE
        except OSError:
            pass
        return position, b""

    def _check_tail(self, handle: BinaryIO, header: bytes, size: int) -> Iterator[Batch]:
        """A partial chunk at the end (the parser skips it silently) is a dead letter."""
        start = _header_size(header)
        remainder = (size - start) % CHUNK_SIZE if size > start else 0
        if remainder:
            offset = size - remainder
            handle.seek(offset)
            tail = handle.read(remainder)
            if tail.strip(b"\x00"):
                self.stats.chunk_errors += 1
                self._reject(f"truncated chunk: {remainder} of {CHUNK_SIZE} bytes at offset "
                             f"{offset} (the file was cut short)", f"offset {offset}", tail)
                if self._full():
                    yield self._take()

    def _recover(self, handle: BinaryIO, header: bytes, size: int,
                 error: str) -> Iterator[Batch]:
        """Read chunk by chunk behind a rebuilt header when the file header is bad."""
        self.stats.recovered = True
        self._reject(f"damaged EVTX file header ({error}); reading its chunks one by one",
                     "header", header)
        found = 0
        offset = HEADER_BLOCK
        while offset < size:
            handle.seek(offset)
            chunk = handle.read(CHUNK_SIZE)
            if chunk[:8] == _CHUNK_MAGIC and len(chunk) == CHUNK_SIZE:
                found += 1
                image = io.BytesIO(build_file_header(1) + chunk)
                try:
                    parser = evtx.PyEvtxParser(image, number_of_threads=self.threads)
                except (RuntimeError, OSError, ValueError) as exc:
                    self.stats.chunk_errors += 1
                    self._reject(f"damaged EVTX chunk: {exc}", f"chunk at offset {offset}",
                                 chunk)
                else:
                    yield from self._read_records(parser.records_json(), locate=False)
            elif chunk.strip(b"\x00"):
                self.stats.chunk_errors += 1
                what = "truncated chunk" if len(chunk) < CHUNK_SIZE else "not an EVTX chunk"
                self._reject(f"{what} at offset {offset} ({len(chunk)} bytes)",
                             f"offset {offset}", chunk)
            if self._full():
                yield self._take()
            offset += CHUNK_SIZE
        if not found:
            self._reject("no EVTX chunks found: not an EVTX file", "file", b"")


def _native_records(path: str) -> Any:
    """The compiled reader of ``path``, or None for the Python path."""
    module = native_module("evtx")
    if module is None:
        return None
    try:
        return module.EvtxRecords(path)
    except (RuntimeError, OSError, ValueError):
        return None


def _header_size(header: bytes) -> int:
    if len(header) >= 42 and header[:8] == _FILE_MAGIC:
        block = struct.unpack_from("<H", header, 40)[0]
        if block >= 128:
            return int(block)
    return HEADER_BLOCK


def build_file_header(chunk_count: int) -> bytes:
    """A valid EVTX file header (version 3.1) for ``chunk_count`` chunks."""
    head = bytearray(128)
    head[:8] = _FILE_MAGIC
    struct.pack_into("<QQQIHHHH", head, 8, 0, max(chunk_count - 1, 0), 0, 128, 1, 3,
                     HEADER_BLOCK, chunk_count)
    struct.pack_into("<I", head, 120, 0)  # flags: clean
    struct.pack_into("<I", head, 124, zlib.crc32(bytes(head[:120])))
    return bytes(head) + b"\x00" * (HEADER_BLOCK - 128)


def iter_evtx_paths(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Each named file, and every ``*.evtx`` under each named directory (sorted)."""
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found = [p for p in path.rglob("*") if p.suffix.lower() == ".evtx" and p.is_file()]
            yield from sorted(found)
        else:
            yield path
