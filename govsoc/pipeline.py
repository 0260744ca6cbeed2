"""The ingest pipeline: collector batches → validation → store → detection → alerts.

This is one of the two places (with the CLI) that wire components together. A
batch is stored first; detection then sees only the events that were new, so a
redelivered batch raises nothing twice. The batch's checkpoint is written last,
once its events, rejects and alerts are safely stored.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from collectors.base import Batch
from detection.base import Detector
from govsoc.config import Config
from govsoc.errors import RecordError
from govsoc.events import DeadLetter, Event, get_field, validate_event
from store.base import Alert, InsertResult, NewAlert, Store

log = logging.getLogger("govsoc.pipeline")

#: Store settings the console writes and detection reads: rule ids switched off, and
#: rules uploaded in the console ({id: {"language": "sigma"|"yara", "text": ...}}).
DISABLED_RULES_KEY = "rules.disabled"
CUSTOM_RULES_KEY = "rules.custom"


@dataclass
class IngestStats:
    """Running totals of what the pipeline did."""

    received: int = 0
    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    alerts_created: int = 0
    alerts_folded: int = 0
    batches: int = 0
    by_dataset: Counter[str] = field(default_factory=Counter)
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    detect_seconds: float = 0.0
    store_seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "received": self.received, "stored": self.stored,
            "duplicates": self.duplicates, "rejected": self.rejected,
            "alerts_created": self.alerts_created, "alerts_folded": self.alerts_folded,
            "by_dataset": dict(self.by_dataset),
        }


AlertCallback = Callable[[list[tuple[Alert, bool]]], None]


class Pipeline:
    """Moves batches from collectors into the store, running detection inline."""

    def __init__(self, store: Store, detectors: Sequence[Detector] = (),
                 alert_window: timedelta = timedelta(hours=1),
                 on_alerts: AlertCallback | None = None, validate: bool = True) -> None:
        self.store = store
        self.detectors = list(detectors)
        self.alert_window = alert_window
        self.on_alerts = on_alerts
        self.validate = validate
        self.stats = IngestStats()

    def refresh_rule_state(self) -> None:
        """Reload from the store what analysts and engineers changed in the console:
        suppressions, and the rules switched off (setting ``rules.disabled``)."""
        suppressions = self.store.list_suppressions()
        disabled_ids = disabled_rule_ids(self.store)
        for detector in self.detectors:
            detector.set_suppressions(suppressions)
            detector.set_disabled_rules(disabled_ids)

    def _validated(self, events: Iterable[Event], rejected: list[DeadLetter]) -> list[Event]:
        if not self.validate:
            return list(events)
        good: list[Event] = []
        for event in events:
            try:
                good.append(validate_event(event, str(get_field(event, "log.file.path") or ""),
                                           get_field(event, "log.offset") or ""))
            except RecordError as exc:
                try:
                    import orjson

                    raw = orjson.dumps(event, default=str)
                except TypeError:
                    raw = repr(event).encode()
                rejected.append(DeadLetter.from_error(exc, raw))
        return good

    def submit(self, batch: Batch) -> InsertResult:
        """Store one batch, detect on its new events, then commit its checkpoint."""
        stats = self.stats
        stats.batches += 1
        stats.received += len(batch)
        rejected = list(batch.rejected)
        events = batch.events if batch.validated else self._validated(batch.events, rejected)
        started = time.perf_counter()
        result = self.store.insert_events(events) if events else InsertResult()
        if rejected:
            self.store.add_dead_letters(rejected)
            for letter in rejected:
                stats.rejected_by_reason[letter.reason.split(":")[0][:80]] += 1
        stats.store_seconds += time.perf_counter() - started
        result.rejected += len(rejected)
        stats.stored += result.stored
        stats.duplicates += result.duplicates
        stats.rejected += len(rejected)
        if result.new_ids:
            new_ids = set(result.new_ids)
            fresh = [e for e in events if e["event"]["id"] in new_ids]
            for event in fresh:
                stats.by_dataset[event["event"]["dataset"]] += 1
            if self.detectors:
                self._detect(fresh)
        if batch.checkpoint is not None:
            name, state = batch.checkpoint
            self.store.set_checkpoint(name, state)
        return result

    def _detect(self, events: Sequence[Event]) -> None:
        started = time.perf_counter()
        drafts: list[NewAlert] = []
        for detector in self.detectors:
            drafts.extend(detector.detect(events))
        self.stats.detect_seconds += time.perf_counter() - started
        self._record(drafts)

    def _record(self, drafts: Sequence[NewAlert]) -> None:
        if not drafts:
            return
        stored = self.store.record_alerts(drafts, self.alert_window)
        for _, created in stored:
            if created:
                self.stats.alerts_created += 1
            else:
                self.stats.alerts_folded += 1
        if self.on_alerts is not None:
            self.on_alerts(stored)

    def flush(self) -> None:
        """Raise what windowed detectors still hold (end of a finite input)."""
        drafts: list[NewAlert] = []
        for detector in self.detectors:
            drafts.extend(detector.flush())
        self._record(drafts)

    def run(self, batches: Iterable[Batch],
            progress: Callable[[InsertResult, Batch], None] | None = None,
            read_ahead: int = 0) -> IngestStats:
        """Submit every batch of a finite input, then flush detectors.

        ``read_ahead`` > 0 parses that many batches ahead on a reader thread while
        the store writes (SQLite works outside the interpreter lock)."""
        source = batches if read_ahead <= 0 else _read_ahead(batches, read_ahead)
        for batch in source:
            result = self.submit(batch)
            if progress is not None:
                progress(result, batch)
        self.flush()
        return self.stats


_END = object()


def _read_ahead(batches: Iterable[Batch], depth: int) -> Iterator[Batch]:
    """The batches, produced on a reader thread at most ``depth`` ahead (memory stays
    bounded); an error of the reader is raised here, in order."""
    ahead: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for batch in batches:
                if not offer(batch):
                    return
            offer(_END)
        except BaseException as exc:  # handed to the consumer, raised there
            offer(exc)

    reader = threading.Thread(target=produce, name="govsoc-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            item = ahead.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        reader.join(timeout=5)


def build_detectors(config: Config, store: Store) -> list[Detector]:
    """The detectors the configuration enables (Sigma streaming + correlation, YARA)."""
    if not config.get("detection.enabled", True):
        return []
    from detection.sigma.engine import build_sigma_detector
    from detection.yara.detector import YaraMatchDetector

    return [build_sigma_detector(config, custom_sigma_texts(store)), YaraMatchDetector()]


def disabled_rule_ids(store: Store) -> list[str]:
    """The rules switched off in the console."""
    disabled = store.get_setting(DISABLED_RULES_KEY)
    return [str(r) for r in disabled] if isinstance(disabled, list) else []


def custom_sigma_texts(store: Store) -> list[str]:
    """The Sigma rules uploaded in the console."""
    uploads = store.get_setting(CUSTOM_RULES_KEY)
    if not isinstance(uploads, dict):
        return []
    return [str(item.get("text", "")) for item in uploads.values()
            if isinstance(item, dict) and item.get("language") == "sigma"]


def build_pipeline(config: Config, store: Store, *, detect: bool = True) -> Pipeline:
    """The pipeline for one process: the store, the configured detectors, the alert
    window, the suppressions in force."""
    detectors = build_detectors(config, store) if detect else []
    pipeline = Pipeline(store, detectors,
                        alert_window=timedelta(seconds=int(
                            config.get("detection.alert_window_seconds", 3600))))
    if detectors:
        pipeline.refresh_rule_state()
    return pipeline
