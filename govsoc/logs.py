"""The one logger set-up: text or JSON lines, to stderr or a file."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record, ECS-flavoured (``@timestamp``, ``log.level``)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "@timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "log.level": record.levelname.lower(),
            "log.logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["error.stack_trace"] = self.formatException(record.exc_info)
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            doc.update(extra)
        return orjson.dumps(doc, default=str).decode()


def setup_logging(level: str = "info", fmt: str = "text", file: str | None = None) -> None:
    """Configure the root logger once for a CLI command or service."""
    handler: logging.Handler = (
        logging.FileHandler(file, encoding="utf-8") if file else logging.StreamHandler(sys.stderr)
    )
    if fmt == "json":
        handler.setFormatter(JsonLineFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
