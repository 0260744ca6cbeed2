"""Windows event log commands: ``govsoc ingest evtx FILE|DIR…`` and
``govsoc ingest winlog-json FILE…``.

Both feed the ingest pipeline (storage, then detection) with a progress line and
the usual summary; ``--print-events`` writes the ECS events as JSON lines to
standard output instead, which stores nothing (for a look at what a file holds,
or to feed another tool).
"""

from __future__ import annotations

import sys
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import click
import orjson

from collectors.base import Batch
from govsoc.cli.common import file_size, pass_app
from govsoc.cli.ingest import run_ingest
from govsoc.events import DeadLetter

_NO_DETECT = click.option("--no-detect", is_flag=True, help="Store only; do not run detection.")
_PRINT = click.option("--print-events", is_flag=True,
                      help="Write the ECS events as JSON lines to stdout; store nothing.")


class _FileProgress:
    """Bytes of the files finished so far, for the progress display."""

    def __init__(self, files: list[Path]) -> None:
        self.sizes = {str(p): file_size(p) for p in files}
        self.total = sum(self.sizes.values())
        self.done = 0

    def finished(self, path: Path) -> None:
        self.done += self.sizes.get(str(path), 0)


def _each_file(files: list[Path], reader: Callable[[Path], Iterator[Batch]],
               progress: _FileProgress) -> Iterator[Batch]:
    for path in files:
        yield from reader(path)
        progress.finished(path)


def _print_events(batches: Iterable[Batch]) -> int:
    """JSON lines of the events on stdout, rejects and the summary on stderr."""
    out = sys.stdout.buffer
    events = rejected = 0
    started = time.monotonic()
    for batch in batches:
        for event in batch.events:
            out.write(orjson.dumps(event, option=orjson.OPT_APPEND_NEWLINE))
        events += len(batch.events)
        for letter in batch.rejected:
            click.secho(f"rejected: {letter.source}:{letter.position}: {letter.reason}",
                        fg="red", err=True)
        rejected += len(batch.rejected)
    out.flush()
    elapsed = time.monotonic() - started
    click.echo(f"{events:,} events, {rejected:,} rejected in {elapsed:.1f}s", err=True)
    return 3 if rejected else 0


@click.command("evtx")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--threads", type=click.IntRange(min=0), default=1, show_default=True,
              help="Worker threads of the EVTX parser per file (0 = one per core).")
@_PRINT
@_NO_DETECT
@pass_app
def ingest_evtx(app: Any, paths: tuple[str, ...], threads: int, print_events: bool,
                no_detect: bool) -> int:
    """Windows event logs (.evtx files; directories are searched recursively) →
    windows.security, windows.sysmon_operational, windows.system, … events.

    A damaged chunk or a cut-off file becomes a dead letter naming the file and
    the chunk; every intact record is still read.
    """
    from collectors.evtx import iter_evtx_paths, read_evtx

    files = list(iter_evtx_paths(paths))
    if not files:
        raise click.UsageError(f"no .evtx files in {', '.join(paths)}")

    def reader(path: Path) -> Iterator[Batch]:
        return read_evtx(path, threads=threads,
                         batch_size=int(app.config.get("ingest.batch_size")))

    if print_events:
        return _print_events(_each_file(files, lambda p: read_evtx(p, threads=threads),
                                        _FileProgress([])))
    progress = _FileProgress(files)
    return run_ingest(app, f"evtx ({len(files)} files)", _each_file(files, reader, progress),
                      detect=not no_detect, total_bytes=progress.total or None,
                      done_bytes=lambda: progress.done)


@click.command("winlog-json")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@_PRINT
@_NO_DETECT
@pass_app
def ingest_winlog_json(app: Any, files: tuple[str, ...], print_events: bool,
                       no_detect: bool) -> int:
    """Windows event exports, one record per line (.zip members and .gz read too):
    Winlogbeat / Elastic Agent JSON, NXLog and Log Analytics rows, evtx_dump JSON,
    event XML, Sysmon for Linux syslog records.

    "govsoc ingest jsonl" recognises the same records among other ECS lines;
    this command also reads archives and rejects lines that are not Windows events.
    """
    from collectors.winlog_json import read_winlog_json

    paths = [Path(f) for f in files]
    batch_size = int(app.config.get("ingest.batch_size"))
    max_line = int(app.config.get("ingest.max_line_bytes"))

    def reader(path: Path) -> Iterator[Batch]:
        try:
            yield from read_winlog_json(path, batch_size, max_line)
        except (OSError, EOFError, zipfile.BadZipFile) as exc:
            reason = f"cannot read Windows event file: {getattr(exc, 'strerror', None) or exc}"
            yield Batch(rejected=[DeadLetter(str(path), "", reason, b"")])

    if print_events:
        return _print_events(_each_file(paths, reader, _FileProgress([])))
    progress = _FileProgress(paths)
    return run_ingest(app, "winlog-json", _each_file(paths, reader, progress),
                      detect=not no_detect, total_bytes=progress.total or None,
                      done_bytes=lambda: progress.done)


COMMANDS: list[Any] = [("ingest", ingest_evtx), ("ingest", ingest_winlog_json)]
