"""Text log commands: ``govsoc ingest auditd|auth|access|syslog FILE…``,
``govsoc listen syslog`` and ``govsoc tail PATH…``.

``ingest`` reads whole files once. ``listen`` and ``tail`` run until interrupted
(Ctrl-C or SIGTERM), storing each batch through the pipeline as it comes and
printing running counters; ``tail`` resumes from the checkpoints in the store.
"""

from __future__ import annotations

import gc
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import click

from collectors import syslog as syslog_collector
from collectors import tail as tail_collector
from collectors.base import Batch
from collectors.logformats import FORMATS, read_log_file
from govsoc.cli.common import pass_app, summary_lines
from govsoc.cli.ingest import file_batches, run_ingest

_TIMEZONE = click.option(
    "--timezone", default=None, metavar="ZONE",
    help="IANA zone of timestamps that carry none (RFC 3164 syslog, Apache error "
         "log), e.g. Asia/Ho_Chi_Minh. Default UTC.")
_NO_DETECT = click.option("--no-detect", is_flag=True, help="Store only; do not run detection.")


def _ingest_files(app: Any, kind: str, label: str, files: tuple[str, ...], timezone: str | None,
                  no_detect: bool) -> int:
    batch_size = int(app.config.get("ingest.batch_size"))
    max_line = int(app.config.get("ingest.max_line_bytes"))

    def reader(path: str) -> Iterator[Batch]:
        return read_log_file(path, kind, batch_size=batch_size, max_line_bytes=max_line,
                             timezone=timezone)

    total = 0
    for path in files:
        try:
            import os

            total += os.path.getsize(path)
        except OSError:
            pass
    return run_ingest(app, label, file_batches(files, reader, label), detect=not no_detect,
                      total_bytes=total or None)


_FILES = click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))


@click.command("auth")
@_FILES
@_TIMEZONE
@_NO_DETECT
@pass_app
def ingest_auth(app: Any, files: tuple[str, ...], timezone: str | None, no_detect: bool) -> int:
    """Linux auth.log / secure files (sshd, sudo, su, useradd…) → system.auth."""
    return _ingest_files(app, "auth", "auth", files, timezone, no_detect)


@click.command("syslog")
@_FILES
@_TIMEZONE
@_NO_DETECT
@pass_app
def ingest_syslog(app: Any, files: tuple[str, ...], timezone: str | None,
                  no_detect: bool) -> int:
    """Syslog files (/var/log/syslog, messages); sshd/sudo lines become system.auth."""
    return _ingest_files(app, "syslog", "syslog", files, timezone, no_detect)


@click.command("auditd")
@_FILES
@_NO_DETECT
@pass_app
def ingest_auditd(app: Any, files: tuple[str, ...], no_detect: bool) -> int:
    """Raw audit.log files; the records of one event are joined → auditd.log."""
    return _ingest_files(app, "auditd", "auditd", files, None, no_detect)


@click.command("access")
@_FILES
@click.option("--kind", type=click.Choice(["auto", "apache", "nginx", "iis", "apache-error"]),
              default="auto", show_default=True,
              help="Log kind; auto finds IIS (W3C) and Apache error logs, else Apache "
                   "combined.")
@_TIMEZONE
@_NO_DETECT
@pass_app
def ingest_access(app: Any, files: tuple[str, ...], kind: str, timezone: str | None,
                  no_detect: bool) -> int:
    """Web server logs: Apache/nginx access (combined), IIS W3C, Apache error log."""
    return _ingest_files(app, "access" if kind == "auto" else kind, "access", files,
                         timezone, no_detect)


# -- long-running inputs ---------------------------------------------------------

def tune_gc() -> None:
    """Garbage-collector settings for a long-running ingest process.

    Every event is a few nested dicts, so the collector's default thresholds run
    a collection every few hundred events and a full one often, about a third of
    the parsing time. What is loaded at start (rules, modules) is frozen out of
    the collections and the youngest generation collects less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
    # listener threads need the interpreter often and briefly (a UDP socket
    # overflows within milliseconds at tens of thousands of messages per second)
    sys.setswitchinterval(0.0005)

def _run_source(app: Any, source: Any, no_detect: bool,
                status: Callable[[], str], every: float) -> int:
    """Store every batch of an endless source until SIGINT/SIGTERM."""
    from govsoc.pipeline import build_pipeline

    pipeline = build_pipeline(app.config, app.store, detect=not no_detect)
    tune_gc()
    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stopping.set()
        source.stop()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    started = last = time.monotonic()
    try:
        for batch in source.batches():
            pipeline.submit(batch)
            now = time.monotonic()
            if now - last >= every:
                last = now
                click.echo(f"{status()}  stored {pipeline.stats.stored:,} "
                           f"duplicates {pipeline.stats.duplicates:,} "
                           f"rejected {pipeline.stats.rejected:,}", err=True)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        pipeline.flush()
        for line in summary_lines(pipeline.stats, time.monotonic() - started):
            click.echo(line)
        click.echo(status())
    return 0


@click.group("listen")
def listen() -> None:
    """Receive events from the network until interrupted."""


@listen.command("syslog")
@click.option("--host", default="0.0.0.0", show_default=True,  # noqa: S104
              help="Address to listen on.")
@click.option("--udp", "udp_port", type=click.IntRange(0, 65535), default=None,
              help="UDP port (514 is the standard one).")
@click.option("--tcp", "tcp_port", type=click.IntRange(0, 65535), default=None,
              help="TCP port (plain; octet-counted or newline framing).")
@click.option("--tls", "tls_port", type=click.IntRange(0, 65535), default=None,
              help="TLS port (RFC 5425; needs --tls-cert and --tls-key).")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), default=None)
@click.option("--queue-size", type=click.IntRange(1), default=syslog_collector.DEFAULT_QUEUE_SIZE,
              show_default=True, help="Messages held between the sockets and the store; "
              "UDP beyond this is dropped and counted, TCP waits.")
@click.option("--status-every", type=float, default=10.0, show_default=True,
              help="Seconds between status lines on stderr.")
@_TIMEZONE
@_NO_DETECT
@pass_app
def listen_syslog(app: Any, host: str, udp_port: int | None, tcp_port: int | None,
                  tls_port: int | None, tls_cert: str | None, tls_key: str | None,
                  queue_size: int, status_every: float, timezone: str | None,
                  no_detect: bool) -> int:
    """Syslog server: RFC 5424 and RFC 3164 over UDP, TCP and TLS into the store.

    Without port options the listeners of inputs.syslog in govsoc.yml are used.
    """
    listeners: list[dict[str, Any]] = []
    if udp_port is not None:
        listeners.append({"protocol": "udp", "host": host, "port": udp_port})
    if tcp_port is not None:
        listeners.append({"protocol": "tcp", "host": host, "port": tcp_port})
    if tls_port is not None:
        if not tls_cert:
            raise click.UsageError("--tls needs --tls-cert (and --tls-key)")
        listeners.append({"protocol": "tls", "host": host, "port": tls_port,
                          "tls_cert": tls_cert, "tls_key": tls_key})
    if listeners:
        for item in listeners:
            item["timezone"] = timezone
            item["queue_size"] = queue_size
    else:
        listeners = list(app.config.get("inputs.syslog") or [])
    if not listeners:
        raise click.UsageError("give --udp, --tcp or --tls, or configure inputs.syslog")
    receiver = syslog_collector.receiver_from_config(
        listeners, batch_size=int(app.config.get("ingest.batch_size")))
    receiver.start()
    ports = ", ".join(f"{proto} {port}" for proto, port in receiver.bound)
    click.echo(f"listening for syslog on {host}: {ports}", err=True)
    sys.stderr.flush()

    def status() -> str:
        c = receiver.counters
        return (f"received {c.received:,}  udp dropped {c.udp_dropped:,} (queue full) "
                f"{c.udp_kernel_dropped:,} (socket buffer full)  events {c.events:,}"
                f"  auth {c.auth_events:,}  rejected {c.rejected:,}  invalid utf-8 "
                f"{c.invalid_utf8:,}  tcp connections {c.tcp_connections:,}  queued "
                f"{len(receiver.queue):,}")

    return _run_source(app, receiver, no_detect, status, status_every)


@click.command("tail")
@click.argument("paths", nargs=-1, required=True)
@click.option("--format", "kind", type=click.Choice(list(FORMATS)), default="syslog",
              show_default=True, help="Log format of the files.")
@click.option("--start-at", type=click.Choice(["beginning", "end"]), default="beginning",
              show_default=True, help="Where to start a file that has no checkpoint yet.")
@click.option("--poll", "poll_seconds", type=float, default=0.25, show_default=True,
              help="Seconds between looks at the files when idle.")
@click.option("--once", is_flag=True, help="Read to the end of every file and exit.")
@click.option("--status-every", type=float, default=10.0, show_default=True)
@_TIMEZONE
@_NO_DETECT
@pass_app
def tail(app: Any, paths: tuple[str, ...], kind: str, start_at: str, poll_seconds: float,
         once: bool, status_every: float, timezone: str | None, no_detect: bool) -> int:
    """Follow log files and globs (rotation-safe), resuming from stored checkpoints."""
    checkpoints = tail_collector.tail_checkpoints(app.store.list_checkpoints())
    tailer = tail_collector.FileTailer(
        list(paths), kind, checkpoints=checkpoints, poll_seconds=poll_seconds,
        batch_size=int(app.config.get("ingest.batch_size")),
        max_line_bytes=int(app.config.get("ingest.max_line_bytes")), timezone=timezone,
        start_at=start_at, follow=not once)

    def status() -> str:
        c = tailer.counters
        return (f"lines {c['lines']:,}  events {c['events']:,}  rejected {c['rejected']:,}  "
                f"rotations {c['rotations']:,}  truncations {c['truncations']:,}  deleted "
                f"{c['files_deleted']:,}  open errors {c['open_errors']:,}")

    return _run_source(app, tailer, no_detect, status, status_every)


COMMANDS: list[Any] = [
    ("ingest", ingest_auth), ("ingest", ingest_syslog), ("ingest", ingest_auditd),
    ("ingest", ingest_access), listen, tail,
]
