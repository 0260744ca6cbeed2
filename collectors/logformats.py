"""Which line parser reads which text log format, and reading a whole log file.

The names here are the ones people write in ``govsoc.yml`` (``inputs.tail``) and
on the command line (``govsoc ingest access --kind iis``): ``auth``, ``syslog``,
``auditd``, ``apache``, ``nginx``, ``iis``, ``apache-error`` and ``access``
(Apache combined unless the file's first lines show IIS or an error log).

Events of a file get ids from the file's identity (path, inode) and the byte
offset of each line, the same whether the file is ingested once or tailed, so
reading it both ways stores each line once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import islice
from typing import Any

from collectors.auditd import AuditEventParser
from collectors.authlog import AuthLogParser
from collectors.base import DEFAULT_BATCH_SIZE, Batch
from collectors.lines import DEFAULT_MAX_LINE_BYTES, read_lines_bulk
from collectors.syslog import SyslogLineParser
from collectors.textlog import LineParser, line_batches
from collectors.weblog import AccessLogParser, ApacheErrorLogParser, IISLogParser, detect_kind

FORMATS: dict[str, str] = {
    "auth": "Linux auth.log / secure → system.auth",
    "syslog": "syslog files (/var/log/syslog, messages) → syslog, auth lines → system.auth",
    "auditd": "raw audit.log → auditd.log",
    "apache": "Apache access log, common or combined → apache.access",
    "nginx": "nginx access log (combined) → nginx.access",
    "iis": "IIS W3C extended log → iis.access",
    "apache-error": "Apache error log → apache.error",
    "access": "an access log: IIS when the file says so, else Apache combined",
}


def file_identity(path: str, inode: int, generation: int = 0) -> str:
    """The source name hashed into event ids of a file's lines."""
    return f"{os.path.abspath(path)}#{inode}.{generation}"


def resolve_kind(kind: str, path: str) -> str:
    """``access`` → the concrete kind read from the file's first lines."""
    if kind != "access":
        return kind
    try:
        with open(path, "rb") as fh:
            found = detect_kind(islice(fh, 20))
    except OSError:
        return "apache"
    return "apache" if found == "access" else found


def make_parser(kind: str, *, source: str = "", timezone: str | None = None,
                reference: datetime | None = None) -> LineParser:
    """A fresh line parser for ``kind`` (see :data:`FORMATS`)."""
    if kind == "auth":
        return AuthLogParser(timezone, reference)
    if kind == "syslog":
        return SyslogLineParser(timezone, reference)
    if kind == "auditd":
        return AuditEventParser(source)
    if kind in ("apache", "nginx"):
        return AccessLogParser(kind)
    if kind == "iis":
        return IISLogParser()
    if kind == "apache-error":
        return ApacheErrorLogParser(timezone)
    raise ValueError(f"unknown log format {kind!r}; one of {', '.join(FORMATS)}")


def read_log_file(path: str, kind: str, *, batch_size: int = DEFAULT_BATCH_SIZE,
                  max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, timezone: str | None = None,
                  counters: dict[str, int] | None = None) -> Iterator[Batch]:
    """Every line of one log file as batches (``govsoc ingest``)."""
    with open(path, "rb") as fh:
        st = os.fstat(fh.fileno())
        concrete = resolve_kind(kind, path)
        source = file_identity(path, st.st_ino)
        # the file's mtime is the reference for timestamps without a year
        reference = datetime.fromtimestamp(st.st_mtime, UTC)
        parser = make_parser(concrete, source=source, timezone=timezone, reference=reference)
        yield from line_batches(read_lines_bulk(fh, max_line_bytes), parser, source, path,
                                batch_size, counters=counters)


def parser_reference(parser: Any, moment: datetime) -> None:
    """Tell a parser reading a live file the moment its newest line can be from."""
    syslog = getattr(parser, "syslog", None)
    if syslog is not None:
        syslog.reference = moment
