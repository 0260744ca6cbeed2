"""``govsoc ingest …``: read files into the store through the ingest pipeline.

Each collector adds its own ``ingest`` subcommand; :func:`run_ingest` is what they
all share (progress, the pipeline with detection, the summary).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

import click

from collectors.base import Batch
from govsoc.cli.common import Progress, file_size, pass_app, summary_lines
from govsoc.errors import GovsocError
from govsoc.events import DeadLetter


@click.group()
def ingest() -> None:
    """Read files into the store (JSON lines, pcaps, EVTX, logs)."""


def run_ingest(app, label: str, batches: Iterable[Batch], *, detect: bool = True,
               total_bytes: int | None = None,
               done_bytes: Callable[[], int] | None = None) -> int:
    """Feed ``batches`` through the pipeline, with progress and a summary.

    ``done_bytes`` (with ``total_bytes``) tells the progress display how far the
    reader has got. Returns the exit status: 0, or 3 when some records were
    rejected (dead letters).
    """
    from govsoc.pipeline import build_pipeline

    pipeline = build_pipeline(app.config, app.store, detect=detect)
    progress = Progress(label, total_bytes)
    started = time.monotonic()
    try:
        pipeline.run(batches, lambda result, batch: progress.update(
            len(batch), done_bytes() if done_bytes is not None else None), read_ahead=4)
    finally:
        progress.finish()
        for line in summary_lines(pipeline.stats, time.monotonic() - started):
            click.echo(line)
    return 3 if pipeline.stats.rejected else 0


def file_batches(paths: Iterable[str], reader, source_label: str) -> Iterator[Batch]:
    """Batches from each file in turn; a file that cannot be read becomes a dead
    letter naming it, and the other files go on."""
    for path in paths:
        try:
            yield from reader(path)
        except OSError as exc:
            reason = f"cannot read {source_label} file: {exc.strerror or exc}"
            click.secho(f"error: {path}: {reason}", fg="red", err=True)
            yield Batch(rejected=[DeadLetter(str(path), "", reason, b"")])
        except GovsocError as exc:
            click.secho(f"error: {path}: {exc}", fg="red", err=True)
            yield Batch(rejected=[DeadLetter(str(path), "", str(exc), b"")])


@ingest.command("jsonl")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--no-detect", is_flag=True, help="Store only; do not run detection.")
@pass_app
def ingest_jsonl(app, files: tuple[str, ...], no_detect: bool) -> int:
    """ECS events as JSON lines (one object per line) into the store."""
    from collectors.jsonl import read_jsonl

    batch_size = int(app.config.get("ingest.batch_size"))
    max_line = int(app.config.get("ingest.max_line_bytes"))
    total = sum(file_size(f) for f in files)
    return run_ingest(app, "jsonl", file_batches(
        files, lambda p: read_jsonl(p, batch_size, max_line), "JSON lines"),
        detect=not no_detect, total_bytes=total or None)


COMMANDS = [ingest]
