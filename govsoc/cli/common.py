"""What every command shares: the loaded configuration and store, output formats,
progress display and the ingest summary."""

from __future__ import annotations

import csv
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import click
import orjson

from govsoc.config import Config, load_config
from govsoc.events import get_field
from govsoc.logs import setup_logging

FORMATS = ("table", "jsonl", "csv")


def fail(message: str) -> None:
    click.secho(f"error: {message}", fg="red", err=True)


def format_option(choices: Sequence[str] = FORMATS, default: str = "table") -> Callable[..., Any]:
    return click.option("--format", "fmt", type=click.Choice(list(choices)), default=default,
                        show_default=True, help="Output format.")


@dataclass
class AppContext:
    """Lazily loaded configuration and store for one command invocation."""

    config_path: str | None = None
    data_dir: str | None = None
    log_format: str | None = None
    verbose: bool = False
    _config: Config | None = None
    _store: Any = None
    _closers: list[Callable[[], None]] = field(default_factory=list)

    @property
    def config(self) -> Config:
        if self._config is None:
            from govsoc.service import import_input_sections

            import_input_sections()
            self._config = load_config(self.config_path, data_dir=self.data_dir)
            log = self._config.section("log")
            setup_logging("debug" if self.verbose else log.get("level", "info"),
                          self.log_format or log.get("format", "text"), log.get("file"))
        return self._config

    @property
    def store(self) -> Any:
        """The configured store (``store.base.Store``), opened on first use."""
        if self._store is None:
            from store import open_store

            self._store = open_store(self.config)
        return self._store

    def on_close(self, closer: Callable[[], None]) -> None:
        self._closers.append(closer)

    def close(self) -> None:
        for closer in reversed(self._closers):
            closer()
        if self._store is not None:
            self._store.close()
            self._store = None


pass_app = click.make_pass_decorator(AppContext)


def _cell(value: Any, width: int = 60) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        text = orjson.dumps(value, default=str).decode()
    else:
        text = str(value)
    text = text.replace("\n", "\\n").replace("\r", "\\r").replace("\t", " ")
    # terminal control characters from attacker-controlled fields must not reach the tty
    text = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)
    return text if len(text) <= width else text[: width - 1] + "…"


def render_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str],
                 headers: Sequence[str] | None = None, width: int = 60) -> str:
    """A plain-text table; values are flattened to one line and escaped."""
    headers = list(headers or columns)
    cells = [[_cell(get_field(row, c), width) for c in columns] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
              for r in cells]
    return "\n".join(lines)


def emit(rows: Iterable[Mapping[str, Any]], fmt: str, columns: Sequence[str],
         headers: Sequence[str] | None = None, out: Any = None) -> int:
    """Write ``rows`` as a table, JSON lines (the whole row) or CSV (the columns)."""
    out = out or sys.stdout
    count = 0
    if fmt == "jsonl":
        for row in rows:
            out.write(orjson.dumps(row, default=str, option=orjson.OPT_NON_STR_KEYS).decode())
            out.write("\n")
            count += 1
    elif fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(list(headers or columns))
        for row in rows:
            writer.writerow([_csv_cell(get_field(row, c)) for c in columns])
            count += 1
    else:
        materialised = list(rows)
        count = len(materialised)
        if materialised:
            out.write(render_table(materialised, columns, headers) + "\n")
        else:
            out.write("(nothing)\n")
    out.flush()
    return count


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return orjson.dumps(value, default=str).decode()
    text = str(value)
    # a cell starting with a formula character would run in a spreadsheet
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        text = "'" + text
    return text


class Progress:
    """A one-line progress display on a terminal; silent otherwise."""

    def __init__(self, label: str, total_bytes: int | None = None,
                 stream: Any = None, enabled: bool | None = None) -> None:
        self.label = label
        self.total = total_bytes
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.started = time.monotonic()
        self.last = 0.0
        self.records = 0

    def update(self, records: int, done_bytes: int | None = None) -> None:
        self.records += records
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < 0.2:
            return
        self.last = now
        rate = self.records / max(now - self.started, 1e-6)
        part = ""
        if self.total and done_bytes is not None:
            part = f" {100 * done_bytes / self.total:5.1f}%"
        self.stream.write(f"\r{self.label}:{part} {self.records:,} records "
                          f"({rate:,.0f}/s)\x1b[K")
        self.stream.flush()

    def finish(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def summary_lines(stats: Any, elapsed: float) -> list[str]:
    """The end-of-ingest summary: stored / duplicates / rejected, alerts, rate."""
    rate = stats.received / elapsed if elapsed > 0 else 0.0
    lines = [
        f"stored {stats.stored:,}  duplicates {stats.duplicates:,}  "
        f"rejected {stats.rejected:,}  ({stats.received:,} records in {elapsed:.1f}s, "
        f"{rate:,.0f}/s)",
    ]
    if stats.by_dataset:
        parts = ", ".join(f"{k} {v:,}" for k, v in stats.by_dataset.most_common())
        lines.append(f"by dataset: {parts}")
    if stats.alerts_created or stats.alerts_folded:
        lines.append(f"alerts: {stats.alerts_created:,} new, "
                     f"{stats.alerts_folded:,} folded into existing ones")
    if stats.rejected_by_reason:
        worst = ", ".join(f"{k} ({v:,})" for k, v in stats.rejected_by_reason.most_common(5))
        lines.append(f"rejected because: {worst} — see `govsoc deadletters list`")
    return lines


def file_size(path: str | os.PathLike[str]) -> int:
    """Size of a file for progress display; 0 when it cannot be read (the reader
    reports why)."""
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_since(text: str, now: Any = None) -> Any:
    """A start time from ``7d``/``24h``/``30m``/``90s``/``2w`` ago or an ISO 8601 time."""
    from datetime import UTC, datetime, timedelta

    from govsoc.events import parse_timestamp

    now = now or datetime.now(UTC)
    spec = text.strip().lower()
    if spec[:-1].isdigit() and spec[-1:] in _UNITS:
        return now - timedelta(seconds=int(spec[:-1]) * _UNITS[spec[-1]])
    try:
        return parse_timestamp(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither a duration (7d, 24h, 30m) nor an ISO 8601 time") from None
