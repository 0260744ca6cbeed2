"""Network commands: ``govsoc ingest pcap FILE…`` and ``govsoc capture --iface IF``.

Both run the network collector through the ingest pipeline, so its events are
stored and seen by detection like any other source. ``ingest pcap`` shows a
progress line and ends with the records by type and the problems met in the
captures (counted by reason); ``capture`` shows running counters until Ctrl-C.

Carved HTTP bodies can be written to a directory (``--carve-dir``) and scanned
with YARA (``--yara``, with the configured rules plus any ``--yara-rules``).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import click

import collectors.network.settings  # registers inputs.network before the config loads
from collectors.base import Batch
from govsoc.cli.common import file_size, pass_app
from govsoc.cli.ingest import run_ingest

_NO_DETECT = click.option("--no-detect", is_flag=True, help="Store only; do not run detection.")
_CARVE = click.option("--carve-dir", type=click.Path(file_okay=False),
                      help="Write carved HTTP bodies here, named by their sha256.")
_YARA = click.option("--yara", "use_yara", is_flag=True,
                     help="Scan carved HTTP bodies with the configured YARA rules.")
_YARA_RULES = click.option("--yara-rules", multiple=True, type=click.Path(exists=True),
                           help="Extra YARA rule directory or file (repeatable; implies --yara).")


class _Sinks:
    """Fans carved payloads out to the directory writer and the YARA sink."""

    def __init__(self, sinks: list[Any]) -> None:
        self.sinks = sinks

    def accept(self, payload: Any) -> None:
        for sink in self.sinks:
            sink.accept(payload)


def _payload_sink(app: Any, carve_dir: str | None, use_yara: bool,
                  yara_rules: tuple[str, ...], matches: list[tuple[Any, Any]]) -> Any:
    sinks: list[Any] = []
    if carve_dir:
        from collectors.network.payloads import DirectorySink

        sinks.append(DirectorySink(carve_dir))
    if use_yara or yara_rules:
        from detection.yara.payloads import YaraPayloadSink
        from detection.yara.settings import open_scanner

        scanner = open_scanner(app.config, list(yara_rules), True)
        click.echo(f"yara rules: {scanner.compiled.report.summary()}", err=True)
        sinks.append(YaraPayloadSink(scanner, on_match=lambda e, a: matches.append((e, a))))
    return _Sinks(sinks) if sinks else None


def _record_matches(app: Any, matches: list[tuple[Any, Any]]) -> None:
    if not matches:
        return
    from govsoc.cli.yara import _record

    created, folded = _record(app, [e for e, _ in matches], [a for _, a in matches])
    click.echo(f"yara: {len(matches):,} carved payload(s) matched; alerts {created:,} new, "
               f"{folded:,} folded")


def _problem_lines(problems: Counter[str]) -> list[str]:
    if not problems:
        return []
    parts = ", ".join(f"{reason} {count:,}" for reason, count in problems.most_common())
    return [f"packets/streams not decoded, by reason: {parts}"]


@click.command("pcap")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@_NO_DETECT
@_CARVE
@_YARA
@_YARA_RULES
@pass_app
def ingest_pcap(app: Any, files: tuple[str, ...], no_detect: bool, carve_dir: str | None,
                use_yara: bool, yara_rules: tuple[str, ...]) -> int:
    """pcap/pcapng captures: connections, DNS, HTTP, TLS, SSH, ICMP, scan counters."""
    from collectors.network.source import PcapFileSource

    batch_size = int(app.config.get("ingest.batch_size"))
    settings = collectors.network.settings.sensor_settings(app.config)
    matches: list[tuple[Any, Any]] = []
    sink = _payload_sink(app, carve_dir, use_yara, yara_rules, matches)
    sizes = {f: file_size(f) for f in files}
    problems: Counter[str] = Counter()
    packets = 0
    done = 0
    current: list[PcapFileSource] = []

    def batches() -> Iterator[Batch]:
        nonlocal packets, done
        for path in files:
            source = PcapFileSource(path, payload_sink=sink, batch_size=batch_size,
                                    settings=settings)
            current[:] = [source]
            yield from source.batches()
            problems.update(source.problems)
            if source.sensor is not None:
                packets += source.sensor.packets
            done += sizes[path]

    def done_bytes() -> int:
        reader = current[0].reader if current else None
        return done + (reader.bytes_read if reader is not None else 0)

    status = run_ingest(app, "pcap", batches(), detect=not no_detect,
                        total_bytes=sum(sizes.values()) or None, done_bytes=done_bytes)
    click.echo(f"packets: {packets:,} in {len(files)} capture(s)")
    for line in _problem_lines(problems):
        click.echo(line)
    _record_matches(app, matches)
    return status


@click.command("capture")
@click.option("--iface", required=True, help="Interface to capture on (needs root or "
              "CAP_NET_RAW).")
@click.option("--bpf", help="BPF filter expression (tcpdump syntax), applied in the kernel.")
@click.option("--seconds", type=float, help="Stop after this many seconds (default: Ctrl-C).")
@_NO_DETECT
@_CARVE
@_YARA
@_YARA_RULES
@pass_app
def capture(app: Any, iface: str, bpf: str | None, seconds: float | None, no_detect: bool,
            carve_dir: str | None, use_yara: bool, yara_rules: tuple[str, ...]) -> int:
    """Live capture: events reach the store every few seconds, with running counters."""
    from collectors.network.source import LiveCaptureSource
    from govsoc.pipeline import build_pipeline

    matches: list[tuple[Any, Any]] = []
    sink = _payload_sink(app, carve_dir, use_yara, yara_rules, matches)
    source = LiveCaptureSource(iface, bpf, payload_sink=sink,
                               settings=collectors.network.settings.sensor_settings(app.config),
                               batch_size=int(app.config.get("ingest.batch_size")))
    pipeline = build_pipeline(app.config, app.store, detect=not no_detect)
    started = time.monotonic()
    previous = signal.signal(signal.SIGINT, lambda *_: source.stop())
    tty = sys.stderr.isatty()
    last = 0.0

    def show(result: Any, batch: Batch) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < 1.0:
            return
        last = now
        sensor = source.sensor
        by = ", ".join(f"{k.split('.', 1)[1]} {v:,}" for k, v in
                       sorted(sensor.by_dataset.items()))
        line = (f"{iface}: {sensor.packets:,} packets, {sensor.flows.active:,} active flows; "
                f"{by or 'no events yet'}; problems {sum(sensor.problems.values()):,}")
        click.echo(("\r" + line + "\x1b[K") if tty else line, err=True, nl=not tty)

    timer = threading.Timer(seconds, source.stop) if seconds is not None else None
    if timer is not None:
        timer.start()
    try:
        pipeline.run(source.batches(), show)
    finally:
        signal.signal(signal.SIGINT, previous)
        if timer is not None:
            timer.cancel()
        if tty:
            click.echo("", err=True)
    stats = pipeline.stats
    click.echo(f"captured {source.sensor.packets:,} packets in "
               f"{time.monotonic() - started:.1f}s; stored {stats.stored:,} events "
               f"({', '.join(f'{k} {v:,}' for k, v in stats.by_dataset.most_common())})")
    for line in _problem_lines(source.problems):
        click.echo(line)
    _record_matches(app, matches)
    return 3 if stats.rejected else 0


COMMANDS: list[Any] = [("ingest", ingest_pcap), capture]
