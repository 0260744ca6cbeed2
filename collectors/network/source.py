"""Batch sources over the network sensor: capture files and live interfaces.

:class:`PcapFileSource` reads one pcap/pcapng file; the source identity (and so
every event id) comes from a hash of the file's first 64 KiB and its size, so
ingesting the same capture twice stores nothing new. :class:`LiveCaptureSource`
reads an interface until :meth:`stop`, and emits a batch at least every
``flush_seconds`` so events reach the store while the capture runs.

Problems met while reading (truncated file, corrupt record headers, undecodable
packets, malformed DNS/HTTP/TLS/SSH) are counted by reason in :attr:`problems`;
the first few of each kind become dead letters in the batches.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator

from collectors.base import DEFAULT_BATCH_SIZE, Batch
from collectors.network.payloads import PayloadSink
from collectors.network.reader import CaptureReader, LiveCapture, capture_identity, open_capture
from collectors.network.sensor import NetworkSensor, SensorSettings
from govsoc.errors import ParseError
from govsoc.events import DeadLetter


class PcapFileSource:
    """One capture file as a finite source of batches."""

    def __init__(self, path: str, *, settings: SensorSettings | None = None,
                 payload_sink: PayloadSink | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE) -> None:
        self.path = path
        self.name = f"pcap:{path}"
        self.settings = settings
        self.payload_sink = payload_sink
        self.batch_size = batch_size
        self.sensor: NetworkSensor | None = None
        self.reader: CaptureReader | None = None
        self.problems: Counter[str] = Counter()
        self._stopped = False

    def batches(self) -> Iterator[Batch]:
        try:
            identity = capture_identity(self.path)
            reader = self.reader = open_capture(self.path)
        except ParseError as exc:
            self.problems["unreadable_file"] += 1
            yield Batch(rejected=[DeadLetter.from_error(exc, b"", self.path, 0)])
            return
        sensor = self.sensor = NetworkSensor(identity, self.path, settings=self.settings,
                                             payload_sink=self.payload_sink)
        size = self.batch_size
        frames = iter(reader)
        try:
            while sensor.consume(frames, size) and not self._stopped:
                if len(sensor.events) >= size:
                    events, rejected = sensor.take()
                    yield Batch(events, rejected)
        except ParseError as exc:
            sensor.reject("unreadable_file", "0", b"", str(exc))
        finally:
            reader.close()
        sensor.flush()
        for reason, count in reader.problems.items():
            sensor.problems[reason] += count
            sensor.reject(reason, f"offset {reader.bytes_read}", b"",
                          f"{count} time(s) while reading the file", counted=True)
        self.problems = sensor.problems
        events, rejected = sensor.take()
        while events or rejected:
            yield Batch(events[:size], rejected)
            events, rejected = events[size:], []

    def stop(self) -> None:
        self._stopped = True


class LiveCaptureSource:
    """A live interface as an endless source (needs root or CAP_NET_RAW)."""

    def __init__(self, iface: str, bpf: str | None = None, *,
                 settings: SensorSettings | None = None,
                 payload_sink: PayloadSink | None = None,
                 batch_size: int = DEFAULT_BATCH_SIZE, flush_seconds: float = 2.0,
                 observer: str | None = None) -> None:
        self.iface = iface
        self.bpf = bpf
        self.name = f"live:{iface}"
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.reader = LiveCapture(iface, bpf)
        # a live sensor's identity includes its start, so restarts never collide
        started = time.time()
        self.sensor = NetworkSensor(f"live:{iface}:{started:.6f}", self.name,
                                    settings=settings, payload_sink=payload_sink,
                                    observer=observer or iface)
        self._stopped = False

    @property
    def problems(self) -> Counter[str]:
        return self.sensor.problems

    def batches(self) -> Iterator[Batch]:
        sensor = self.sensor
        reader = self.reader
        last_flush = time.monotonic()
        try:
            for ts, linktype, data, _wirelen in reader:
                if linktype >= 0:
                    sensor.packet(ts, linktype, data)
                else:
                    sensor.tick(ts)
                now = time.monotonic()
                if len(sensor.events) >= self.batch_size or (
                        now - last_flush >= self.flush_seconds and
                        (sensor.events or sensor.rejected)):
                    events, rejected = sensor.take()
                    last_flush = now
                    yield Batch(events, rejected)
                if self._stopped:
                    break
        finally:
            reader.close()
        sensor.flush()
        for reason, count in reader.problems.items():
            sensor.problems[reason] += count
        events, rejected = sensor.take()
        if events or rejected:
            yield Batch(events, rejected)

    def stop(self) -> None:
        self._stopped = True
        self.reader.stop()
