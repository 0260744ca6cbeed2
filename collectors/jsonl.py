"""JSON lines of ECS events (exports of Elastic Agent, Winlogbeat, Filebeat, govsoc).

Each line is one JSON object. Dotted keys (``{"source.ip": ...}``) are expanded
into nested objects so every event has one shape. An event without ``event.id``
gets the deterministic id of its file and line, so ingesting the same file twice
stores nothing twice. ``log.file.path`` and ``log.offset`` say where it came from.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from collectors.base import DEFAULT_BATCH_SIZE, Batch
from collectors.lines import DEFAULT_MAX_LINE_BYTES, read_lines
from collectors.winlog_json import windows_record_event
from govsoc.errors import ParseError, RecordError
from govsoc.events import (
    DeadLetter,
    Event,
    event_id_maker,
    get_field,
    set_field,
    validate_event,
)
from govsoc.fastcheck import types_certainly_valid


def expand_dotted(doc: dict[str, Any]) -> dict[str, Any]:
    """Nested form of a document that spells some fields with dotted keys.

    Nested objects without dotted keys are returned as they are (no copy).
    """
    dotted = False
    for key, value in doc.items():
        if "." in key:
            dotted = True
        elif type(value) is dict:
            doc[key] = expand_dotted(value)
    if not dotted:
        return doc
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if type(value) is dict and "." in key:
            value = expand_dotted(value)
        existing = get_field(out, key) if "." in key else out.get(key)
        if isinstance(existing, dict) and isinstance(value, dict):
            existing.update(value)
        elif "." in key and not key.startswith(".") and not key.endswith("."):
            set_field(out, key, value)
        else:
            out[key] = value
    return out


def parse_json_line(data: bytes, source: str, line: int, offset: int,
                    make_id: Callable[[str | int], str] | None = None) -> Event:
    """One validated ECS event from one line; raises ParseError or
    EventValidationError naming the file and line."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as uexc:
            raise ParseError(f"not valid UTF-8 at byte {uexc.start}", source, line) from None
        raise ParseError(f"invalid JSON: {exc}", source, line) from None
    if type(doc) is not dict:
        raise ParseError(f"expected a JSON object, got {type(doc).__name__}", source, line)
    # Windows event exports (Winlogbeat, Elastic Agent, NXLog, Log Analytics, Sysmon
    # for Linux) become the same events EVTX files give
    windows = windows_record_event(doc, data, source, line)
    checked = False
    if windows is not None:
        event = windows
    elif types_certainly_valid(data):
        event, checked = doc, True
    else:
        event = expand_dotted(doc)
    meta = event.get("event")
    if type(meta) is dict and not meta.get("id"):
        meta["id"] = (make_id or event_id_maker(f"jsonl:{source}"))(line)
    log = event.get("log")
    if type(log) is not dict:
        log = event["log"] = {}
    if "file" not in log:  # an export keeps the path of the log it came from
        log["file"] = {"path": source}
        log["offset"] = offset
    return validate_event(event, source, line, types_checked=checked)


def read_jsonl(path: str | os.PathLike[str], batch_size: int = DEFAULT_BATCH_SIZE,
               max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Iterator[Batch]:
    """Batches of events from a JSON-lines file; bad lines become dead letters."""
    source = str(Path(path).resolve())
    make_id = event_id_maker(f"jsonl:{source}")
    batch = Batch(validated=True)
    events, rejected = batch.events, batch.rejected
    number, offset = 0, 0
    with open(path, "rb") as stream:
        readline = stream.readline
        while True:
            line = readline(max_line_bytes + 1)
            if not line:
                break
            number += 1
            if len(line) > max_line_bytes and not line.endswith(b"\n"):
                # an over-long line: the bounded reader keeps its head and skips the rest
                stream.seek(offset)
                raw = next(read_lines(stream, max_line_bytes, offset, number))
                if raw.data.strip():
                    rejected.append(DeadLetter(
                        source, str(number),
                        f"line longer than {max_line_bytes} bytes (ingest.max_line_bytes); "
                        f"first {len(raw.data)} bytes kept", raw.data))
                offset += raw.consumed
            else:
                data = line.rstrip(b"\r\n")
                if data and not data.isspace():
                    try:
                        events.append(parse_json_line(data, source, number, offset, make_id))
                    except RecordError as exc:
                        rejected.append(DeadLetter.from_error(exc, data))
                offset += len(line)
            if len(events) + len(rejected) >= batch_size:
                yield batch
                batch = Batch(validated=True)
                events, rejected = batch.events, batch.rejected
    if len(batch):
        yield batch
