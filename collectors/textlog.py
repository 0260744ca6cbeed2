"""Line events: text log lines → batches of ECS events, with dead letters.

The line-based collectors (auth, web, syslog files, auditd) read lines with
:func:`collectors.lines.read_lines` and hand them here with a :class:`LineParser`.
:func:`line_batches` sets what every line event shares (``event.id`` from the
source and byte offset, ``log.file.path``, ``log.offset``), counts what happened
and dead-letters the lines that cannot be read, naming the file and line.

A parser may offer a compiled reader of whole runs of lines as its ``bulk``
attribute (:class:`BulkLineReader`; the access-log parser does when
``govsoc_weblog`` is installed): :func:`line_batches` then hands it lists of lines,
or whole unsplit blocks when the lines come as :class:`~collectors.lines.BlockLines`,
and reads with the parser only the lines the compiled reader leaves, one by one.
Batches, dead letters, counters and checkpoints are the same either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from hashlib import blake2b
from itertools import islice
from typing import Any, Protocol

from collectors.base import DEFAULT_BATCH_SIZE, Batch, built_without_gc
from collectors.lines import BlockLines, LineBlock, RawLine
from govsoc.errors import RecordError
from govsoc.events import DeadLetter, Event

COUNTERS = ("lines", "events", "rejected", "skipped", "invalid_utf8", "truncated")


def decode_line(data: bytes) -> tuple[str, bool]:
    """Text of a line and whether it was valid UTF-8.

    Invalid bytes are kept visibly as ``\\xNN`` escapes rather than rejecting the
    line: an attacker must not be able to hide a failed login by putting one bad
    byte in the user name. The caller tags such events (``invalid_utf8``) and
    counts them.
    """
    try:
        return data.decode("utf-8"), True
    except UnicodeDecodeError:
        return data.decode("utf-8", "backslashreplace"), False


class LineParser(Protocol):
    """Turns the text of one line into an ECS event.

    Returns None for a line that carries no event by design (a blank line, a
    ``#Fields`` directive); raises :class:`~govsoc.errors.ParseError` (or
    ValueError) for a line it cannot read. A parser that joins several lines into
    one event (auditd) returns a list of the events a line completed, sets their
    ``event.id`` and ``log.offset`` itself, and has a ``finish()`` method giving
    the events still being joined at the end of the input.
    """

    def __call__(self, text: str, line: RawLine) -> Event | list[Event] | None: ...


class BulkLineReader(Protocol):
    """What a :class:`LineParser` may offer as its ``bulk`` attribute: a compiled
    reader of runs of lines, giving the very events :func:`line_batches` would
    make of them with the parser (``event.id``, ``log.*`` included)."""

    def take(self, lines: list[RawLine], start: int, room: int, events: list[Event],
             id_prefix: bytes, path: str) -> int:
        """Append the events of ``lines[start:]`` to ``events`` until ``room``
        events were made or a line comes that the parser itself is to read;
        the index of the first line not taken."""
        ...

    def take_block(self, data: bytes, start: int, offset: int, max_bytes: int, room: int,
                   events: list[Event], id_prefix: bytes, path: str) -> tuple[int, int]:
        """:meth:`take` over the lines of a :class:`~collectors.lines.LineBlock`'s
        ``data`` from position ``start`` (the line there at file offset ``offset``),
        stopping also at a line over ``max_bytes``; the position of the first line
        not taken, and how many were."""
        ...


def _finish(parse: LineParser) -> list[Event]:
    finish = getattr(parse, "finish", None)
    return list(finish()) if finish is not None else []


def line_batches(lines: Iterable[RawLine], parse: LineParser, source: str, path: str,
                 batch_size: int = DEFAULT_BATCH_SIZE,
                 checkpoint: Callable[[RawLine], tuple[str, dict[str, Any]]] | None = None,
                 counters: dict[str, int] | None = None, final: bool = True) -> Iterator[Batch]:
    """Parse ``lines`` into batches; ``source`` is the identity hashed into event ids.

    Each batch's checkpoint (when ``checkpoint`` is given) is the position after
    its last line, so storing it means every line up to there is stored.
    ``counters`` (if given) is updated with the :data:`COUNTERS`. ``final`` (the
    end of the input) also takes the events a joining parser still holds.
    Python's cyclic garbage collector is paused while a batch is built
    (:func:`~collectors.base.built_without_gc`).
    """
    return built_without_gc(_line_batches(lines, parse, source, path, batch_size, checkpoint,
                                          counters, final))


def _line_batches(lines: Iterable[RawLine], parse: LineParser, source: str, path: str,
                  batch_size: int,
                  checkpoint: Callable[[RawLine], tuple[str, dict[str, Any]]] | None,
                  counters: dict[str, int] | None, final: bool) -> Iterator[Batch]:
    counts = counters if counters is not None else {}
    for key in COUNTERS:
        counts.setdefault(key, 0)
    # event ids hash the source then the offset: the source part is made once
    id_prefix = source.encode("utf-8", "surrogatepass") + b"\x00"
    bulk: BulkLineReader | None = getattr(parse, "bulk", None)
    batch = Batch()
    last: RawLine | None = None
    n_lines = n_events = 0
    if bulk is None:
        for line in lines:
            last = line
            n_lines += 1
            n_events += _take_line(line, parse, batch, counts, id_prefix, path)
            if len(batch.events) + len(batch.rejected) >= batch_size:
                yield _closed(batch, line, checkpoint, counts, n_lines, n_events)
                batch, n_lines, n_events = Batch(), 0, 0
    else:
        # the compiled reader takes the lines it reads exactly as the parser would,
        # and stops at the first one it leaves to the parser (or when the batch is full)
        for chunk in _bulk_chunks(lines):
            if isinstance(chunk, LineBlock):
                data, number, offset = chunk.data, chunk.number, chunk.offset
                pos, end = 0, data.rfind(b"\n") + 1
                while pos < end:
                    stop, taken = bulk.take_block(data, pos, offset, chunk.max_bytes,
                                                  max(batch_size - len(batch), 1),
                                                  batch.events, id_prefix, path)
                    if taken:
                        n_lines += taken
                        n_events += taken
                        number += taken
                        start = max(data.rfind(b"\n", pos, stop - 1) + 1, pos)
                        offset += stop - pos
                        last = chunk.line(start, stop, number - 1, offset - (stop - start))
                    else:
                        stop = data.index(b"\n", pos) + 1
                        last = chunk.line(pos, stop, number, offset)
                        n_lines += 1
                        n_events += _take_line(last, parse, batch, counts, id_prefix, path)
                        number += 1
                        offset += stop - pos
                    pos = stop
                    if len(batch) >= batch_size:
                        yield _closed(batch, last, checkpoint, counts, n_lines, n_events)
                        batch, n_lines, n_events = Batch(), 0, 0
                continue
            i, end = 0, len(chunk)
            while i < end:
                taken = bulk.take(chunk, i, max(batch_size - len(batch), 1), batch.events,
                                  id_prefix, path) - i
                if taken:
                    i += taken
                    n_lines += taken
                    n_events += taken
                    last = chunk[i - 1]
                else:
                    last = chunk[i]
                    i += 1
                    n_lines += 1
                    n_events += _take_line(last, parse, batch, counts, id_prefix, path)
                if len(batch) >= batch_size:
                    yield _closed(batch, last, checkpoint, counts, n_lines, n_events)
                    batch, n_lines, n_events = Batch(), 0, 0
    counts["lines"] += n_lines
    counts["events"] += n_events
    if final:
        rest = _finish(parse)
        for joined in rest:
            _place(joined, path, None)
        counts["events"] += len(rest)
        batch.events.extend(rest)
    if last is not None and (len(batch) or checkpoint is not None):
        if checkpoint is not None:
            batch.checkpoint = checkpoint(last)
        yield batch
    elif len(batch):
        yield batch


def _closed(batch: Batch, last: RawLine,
            checkpoint: Callable[[RawLine], tuple[str, dict[str, Any]]] | None,
            counts: dict[str, int], n_lines: int, n_events: int) -> Batch:
    """``batch`` made ready to hand out: its checkpoint after ``last``, and counted."""
    if checkpoint is not None:
        batch.checkpoint = checkpoint(last)
    counts["lines"] += n_lines
    counts["events"] += n_events
    return batch


def _bulk_chunks(lines: Iterable[RawLine], size: int = 2048) -> Iterator[
        LineBlock | list[RawLine]]:
    """``lines`` in runs for a compiled reader: whole blocks where they come as
    such (:class:`~collectors.lines.BlockLines`), else lists of lines."""
    if isinstance(lines, list):
        yield lines
        return
    if isinstance(lines, BlockLines):
        for item in lines.blocks():
            if not isinstance(item, LineBlock):
                yield [item]
            elif type(item.data) is bytes and item.offset >= 0 and item.max_bytes >= 0:
                yield item
            else:  # what the compiled reader does not take as a block
                yield list(item.lines())
        return
    it = iter(lines)
    while chunk := list(islice(it, size)):
        yield chunk


def _take_line(line: RawLine, parse: LineParser, batch: Batch, counts: dict[str, int],
               id_prefix: bytes, path: str) -> int:
    """Parse one line into ``batch`` (its event, or its dead letter); the number of
    events it gave."""
    event: Event | list[Event] | None = None
    _number, offset, data, truncated, _consumed = line
    rejected = batch.rejected
    if truncated:
        counts["truncated"] += 1
        counts["rejected"] += 1
        rejected.append(DeadLetter(
            path, f"line {line.number}", f"line longer than the limit of "
            f"{len(data)} bytes (its first {len(data)} bytes are kept here)", data))
        return 0
    try:
        text, valid = data.decode("utf-8"), True
    except UnicodeDecodeError:
        text, valid = data.decode("utf-8", "backslashreplace"), False
    try:
        event = parse(text, line)
    except RecordError as exc:
        counts["rejected"] += 1
        rejected.append(DeadLetter(path, f"line {line.number}", exc.reason, data))
    except (ValueError, KeyError, IndexError, OverflowError) as exc:
        counts["rejected"] += 1
        rejected.append(DeadLetter(path, f"line {line.number}",
                                   f"{type(exc).__name__}: {exc}", data))
    if event is None:
        if not rejected or rejected[-1].original is not data:
            counts["skipped"] += 1
        return 0
    if type(event) is dict:
        event["event"]["id"] = blake2b(b"%s%d" % (id_prefix, offset),
                                       digest_size=16).hexdigest()
        log = event.get("log")
        if log is None:
            event["log"] = {"file": {"path": path}, "offset": offset}
        else:
            log["file"] = {"path": path}
            log["offset"] = offset
        if not valid:
            counts["invalid_utf8"] += 1
            event.setdefault("tags", []).append("invalid_utf8")
        batch.events.append(event)
        return 1
    assert isinstance(event, list)
    for joined in event:
        _place(joined, path, None)
    batch.events.extend(event)
    if not valid:
        counts["invalid_utf8"] += 1
    return len(event)


def _place(event: Event, path: str, offset: int | None) -> None:
    log = event.get("log")
    if log is None:
        log = event["log"] = {}
    log["file"] = {"path": path}
    if offset is not None:
        log["offset"] = offset
