"""``govsoc run``: the long-running SOC service, supervised.

Part of the composition root (with the CLI and the pipeline): it builds the inputs
named in ``govsoc.yml``, runs each in its own thread under supervision (a failing
input is restarted with exponential back-off and its failure is visible), moves
their batches through one bounded queue into the ingest pipeline (a slow store
blocks the inputs instead of growing memory), serves the console with ``/healthz``
and a Prometheus ``/metrics`` beside it, and shuts down cleanly on SIGTERM:
inputs stop, the queue drains, checkpoints are saved.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from collectors.base import Batch, Source
from govsoc.config import Config
from govsoc.errors import GovsocError, StoreError
from govsoc.pipeline import Pipeline, build_pipeline
from store.base import Alert, Store

log = logging.getLogger("govsoc.service")

#: Batches waiting for the store; inputs block when it is full (back-pressure).
QUEUE_BATCHES = 64
#: How often the console's rule changes (suppressions, disabled and uploaded rules)
#: are read from the store.
RULE_STATE_SECONDS = 30.0
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0


@dataclass
class InputState:
    """What the sensors page and ``/healthz`` show for one input."""

    name: str
    kind: str
    state: str = "starting"  # starting | running | backing_off | finished | stopped
    restarts: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    records: int = 0
    batches: int = 0
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "state": self.state,
                "restarts": self.restarts, "last_error": self.last_error,
                "last_error_at": self.last_error_at.isoformat() if self.last_error_at else None,
                "records": self.records, "batches": self.batches}


SourceFactory = Callable[[], Source]


class SupervisedInput:
    """Runs one source in a thread; restarts it with back-off when it fails."""

    def __init__(self, name: str, kind: str, factory: SourceFactory,
                 out: queue.Queue[tuple[str, Batch] | None], *, restart_finished: bool = False,
                 on_error: Callable[[str, BaseException], None] | None = None) -> None:
        self.status = InputState(name, kind)
        self.factory = factory
        self.out = out
        self.restart_finished = restart_finished
        self.on_error = on_error
        self.source: Source | None = None
        self._stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"input:{name}", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stopping.set()
        source = self.source
        if source is not None:
            source.stop()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)

    def _put(self, batch: Batch) -> bool:
        while not self._stopping.is_set():
            try:
                self.out.put((self.status.name, batch), timeout=0.5)
                return True
            except queue.Full:
                continue
        # stopping: hand over what was read anyway, so nothing already read is lost
        self.out.put((self.status.name, batch))
        return False

    def _run(self) -> None:
        delay = BACKOFF_FIRST
        status = self.status
        while not self._stopping.is_set():
            try:
                self.source = self.factory()
                status.state = "running"
                for batch in self.source.batches():
                    status.batches += 1
                    status.records += len(batch)
                    delay = BACKOFF_FIRST
                    if not self._put(batch):
                        break
                if self._stopping.is_set():
                    break
                if not self.restart_finished:
                    status.state = "finished"
                    return
            except Exception as exc:  # supervision: any failure restarts
                status.restarts += 1
                status.last_error = f"{type(exc).__name__}: {exc}"
                status.last_error_at = datetime.now(UTC)
                status.state = "backing_off"
                log.error("input %s failed (restart %d in %.0fs): %s", status.name,
                          status.restarts, delay, status.last_error)
                if self.on_error is not None:
                    self.on_error(status.name, exc)
                if self._stopping.wait(delay):
                    break
                delay = min(delay * 2, BACKOFF_MAX)
        status.state = "stopped"


class ServiceMetrics:
    """Prometheus metrics of the service, in their own registry."""

    def __init__(self, service: Service) -> None:
        self.registry = CollectorRegistry()
        self.service = service
        self.alerts = Counter("govsoc_alerts_total", "Alerts raised (new or folded)",
                              ["rule", "level"], registry=self.registry)
        self.store_errors = Counter("govsoc_store_errors_total",
                                    "Store writes that failed and were retried",
                                    registry=self.registry)
        self.queue_depth = Gauge("govsoc_queue_batches", "Batches waiting for the store",
                                 registry=self.registry)
        self.queue_depth.set_function(lambda: service.queue.qsize())
        self.registry.register(_ServiceCollector(service))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _ServiceCollector:
    """Figures read at scrape time from the inputs and the pipeline."""

    def __init__(self, service: Service) -> None:
        self.service = service

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        svc = self.service
        records = CounterMetricFamily("govsoc_input_records", "Records read per input",
                                      labels=["input"])
        restarts = CounterMetricFamily("govsoc_input_restarts",
                                       "Restarts after a failure, per input", labels=["input"])
        up = GaugeMetricFamily("govsoc_input_up", "1 when the input is running",
                               labels=["input"])
        drops = CounterMetricFamily("govsoc_udp_dropped", "UDP messages dropped on a full queue",
                                    labels=["input"])
        for inp in svc.inputs:
            st = inp.status
            records.add_metric([st.name], st.records)
            restarts.add_metric([st.name], st.restarts)
            up.add_metric([st.name], 1.0 if st.state == "running" else 0.0)
            counters = getattr(inp.source, "counters", None)
            dropped = getattr(counters, "udp_dropped", None)
            if dropped is None and isinstance(counters, dict):
                dropped = counters.get("udp_dropped")
            if dropped is not None:
                drops.add_metric([st.name], float(dropped))
        yield records
        yield restarts
        yield up
        yield drops
        stats = svc.pipeline.stats
        for name, value, text in (
                ("govsoc_events_stored", stats.stored, "Events stored"),
                ("govsoc_events_duplicates", stats.duplicates, "Events already stored"),
                ("govsoc_dead_letters", stats.rejected, "Records rejected to dead letters"),
                ("govsoc_rule_evaluation_seconds", stats.detect_seconds,
                 "Time spent in detection"),
                ("govsoc_store_write_seconds", stats.store_seconds, "Time spent writing")):
            yield CounterMetricFamily(name, text, value=value)
        per_input = CounterMetricFamily("govsoc_events_out", "Events stored per input",
                                        labels=["input"])
        for name, count in svc.stored_by_input.items():
            per_input.add_metric([name], count)
        yield per_input


class Service:
    """Inputs → queue → pipeline (store + detection), console, health and metrics."""

    def __init__(self, config: Config, store: Store, *,
                 inputs: list[tuple[str, str, SourceFactory]] | None = None,
                 pipeline: Pipeline | None = None, serve_console: bool = True) -> None:
        self.config = config
        self.store = store
        self.queue: queue.Queue[tuple[str, Batch] | None] = queue.Queue(QUEUE_BATCHES)
        self.pipeline = pipeline or build_pipeline(config, store)
        self.pipeline.on_alerts = self._alerts_recorded
        self.stored_by_input: dict[str, int] = {}
        self.alert_listeners: list[Callable[[list[tuple[Alert, bool]]], None]] = []
        specs = inputs if inputs is not None else build_inputs(config, store)
        self.inputs = [SupervisedInput(name, kind, factory, self.queue)
                       for name, kind, factory in specs]
        self.metrics = ServiceMetrics(self)
        self.serve_console = serve_console
        self.started_at = datetime.now(UTC)
        self._writer = threading.Thread(target=self._write_loop, name="store-writer",
                                        daemon=True)
        self._writer_alive = True
        self._server: Any = None
        self._server_thread: threading.Thread | None = None
        self._stopped = threading.Event()
        self._suppressions_at = 0.0
        from govsoc.pipeline import custom_sigma_texts

        self._custom_rules = custom_sigma_texts(store)
        self.automation: Any = None
        if config.get("playbooks.auto_run", True):
            from playbooks.automation import PlaybookAutomation

            self.automation = PlaybookAutomation(store, config)
            self.alert_listeners.append(self.automation)

    # ------------------------------------------------------------ running
    def start(self) -> None:
        if self.automation is not None:
            self.automation.start()
        self._writer.start()
        for inp in self.inputs:
            inp.start()
        if self.serve_console:
            self._start_web()
        log.info("govsoc running: %d inputs", len(self.inputs))

    def _alerts_recorded(self, stored: list[tuple[Alert, bool]]) -> None:
        for alert, _created in stored:
            self.metrics.alerts.labels(alert.rule_id, alert.severity.value).inc()
        for listener in self.alert_listeners:
            try:
                listener(stored)
            except Exception:  # a listener must not stop ingest
                log.exception("alert listener failed")

    def _write_loop(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                break
            name, batch = item
            delay = BACKOFF_FIRST
            while True:
                try:
                    if time.monotonic() - self._suppressions_at > RULE_STATE_SECONDS:
                        self._refresh_rules()
                        self._suppressions_at = time.monotonic()
                    result = self.pipeline.submit(batch)
                    self.stored_by_input[name] = self.stored_by_input.get(name, 0) + \
                        result.stored
                    break
                except StoreError as exc:
                    # the batch is kept and retried: the queue fills and inputs wait
                    self.metrics.store_errors.inc()
                    log.error("store write failed (retry in %.0fs): %s", delay, exc)
                    time.sleep(delay)
                    delay = min(delay * 2, BACKOFF_MAX)
                except GovsocError as exc:
                    log.error("batch from %s rejected: %s", name, exc)
                    break
        try:
            self.pipeline.flush()
        except GovsocError as exc:
            log.error("flushing detection state failed: %s", exc)
        self._writer_alive = False

    def _refresh_rules(self) -> None:
        """Suppressions and disabled rules at once; the detectors rebuilt when the
        rules uploaded in the console changed (windowed correlation state restarts)."""
        from govsoc.pipeline import build_detectors, custom_sigma_texts

        uploads = custom_sigma_texts(self.store)
        if uploads != self._custom_rules and self.pipeline.detectors:
            log.info("rules uploaded in the console changed: rebuilding the detectors")
            self.pipeline.detectors = build_detectors(self.config, self.store)
        self._custom_rules = uploads
        self.pipeline.refresh_rule_state()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop inputs, drain the queue into the store, stop the web server."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        log.info("stopping: inputs first, then the queue drains")
        for inp in self.inputs:
            inp.stop()
        deadline = time.monotonic() + timeout
        for inp in self.inputs:
            inp.join(max(0.1, deadline - time.monotonic()))
        self.queue.put(None)
        self._writer.join(max(1.0, deadline - time.monotonic()))
        if self.automation is not None:
            self.automation.stop(max(1.0, deadline - time.monotonic()))
        if self._server is not None:
            self._server.close()
        log.info("stopped")

    def wait(self) -> None:
        """Block until SIGTERM/SIGINT, then stop cleanly."""
        def handler(signum: int, _frame: Any) -> None:
            log.info("signal %d received", signum)
            threading.Thread(target=self.stop, daemon=True).start()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
        while not self._stopped.is_set():
            self._stopped.wait(0.5)
        self._writer.join(60)

    # ------------------------------------------------------------ health
    def health(self) -> tuple[bool, dict[str, Any]]:
        store_ok = True
        store_error = None
        try:
            self.store.schema_version()
        except GovsocError as exc:
            store_ok, store_error = False, str(exc)
        inputs = [i.status.as_dict() for i in self.inputs]
        failing = [i["name"] for i in inputs if i["state"] == "backing_off"]
        healthy = store_ok and self._writer_alive and not self._stopped.is_set()
        status = "ok" if healthy and not failing else "degraded" if healthy else "down"
        return healthy, {
            "status": status, "store": {"engine": self.store.engine, "ok": store_ok,
                                        "error": store_error},
            "queue_batches": self.queue.qsize(), "inputs": inputs,
            "failing_inputs": failing, "started_at": self.started_at.isoformat(),
            "pipeline": self.pipeline.stats.as_dict(),
        }

    def wsgi(self, console_app: Any) -> Callable[..., Any]:
        """The console with ``/healthz`` and ``/metrics`` in front of it."""
        def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
            path = environ.get("PATH_INFO", "")
            if path == "/healthz":
                healthy, body = self.health()
                start_response("200 OK" if healthy else "503 Service Unavailable",
                               [("Content-Type", "application/json"),
                                ("Cache-Control", "no-store")])
                return [orjson.dumps(body)]
            if path == "/metrics":
                start_response("200 OK", [("Content-Type",
                                           "text/plain; version=0.0.4; charset=utf-8")])
                return [self.metrics.render()]
            return console_app(environ, start_response)
        return app

    def _start_web(self) -> None:
        from waitress.server import create_server

        from console import create_app

        section = self.config.section("console")
        console_app = create_app(self.config, self.store)
        console_app.extensions["govsoc_service"] = self
        self._server = create_server(self.wsgi(console_app), host=section.get("host"),
                                     port=int(section.get("port", 8080)),
                                     threads=int(section.get("threads", 8)), ident="govsoc",
                                     clear_untrusted_proxy_headers=True)
        self._server_thread = threading.Thread(target=self._server.run, name="web",
                                               daemon=True)
        self._server_thread.start()
        log.info("console on http://%s:%s/", section.get("host"), self._server.effective_port)

    @property
    def web_port(self) -> int | None:
        return int(self._server.effective_port) if self._server is not None else None


# ---------------------------------------------------------------- inputs from config

def build_inputs(config: Config, store: Store) -> list[tuple[str, str, SourceFactory]]:
    """The inputs ``govsoc.yml`` names, as (name, kind, factory) for supervision.

    Factories read their checkpoints from the store each time they start, so a
    restarted input resumes where the last one stopped.
    """
    import_input_sections()
    inputs_cfg = config.section("inputs")
    batch_size = int(config.get("ingest.batch_size", 2000))
    max_line = int(config.get("ingest.max_line_bytes", 1 << 20))
    specs: list[tuple[str, str, SourceFactory]] = []

    listeners = inputs_cfg.get("syslog") or []
    if listeners:
        from collectors.syslog import receiver_from_config

        specs.append(("syslog", "syslog",
                      lambda: receiver_from_config(listeners, batch_size=batch_size)))

    for item in inputs_cfg.get("tail") or []:
        from collectors.tail import tail_checkpoints, tailer_from_config

        def tail_factory(item: dict[str, Any] = item) -> Source:
            return tailer_from_config(item, tail_checkpoints(store.list_checkpoints()),
                                      batch_size=batch_size, max_line_bytes=max_line)

        specs.append((f"tail:{','.join(item['paths'])}", "tail", tail_factory))

    for directory in inputs_cfg.get("evtx_drop") or []:
        specs.append((f"evtx-drop:{directory}", "evtx-drop",
                      _drop_factory(store, directory, ["*.evtx"], _evtx_reader(batch_size))))

    for directory in inputs_cfg.get("pcap_drop") or []:
        specs.append((f"pcap-drop:{directory}", "pcap-drop",
                      _drop_factory(store, directory, ["*.pcap", "*.pcapng", "*.cap"],
                                    _pcap_reader(config, batch_size))))

    for directory in inputs_cfg.get("winlog_drop") or []:
        specs.append((f"winlog-drop:{directory}", "winlog-drop",
                      _drop_factory(store, directory, ["*.json", "*.ndjson", "*.jsonl",
                                                       "*.json.gz", "*.zip"],
                                    _winlog_reader(batch_size))))

    watch = config.section("detection.yara").get("watch") or {}
    if watch.get("paths"):
        specs.append((f"yara-watch:{','.join(watch['paths'])}", "yara-watch",
                      _yara_watch_factory(config, watch)))

    for item in inputs_cfg.get("capture") or []:
        from collectors.network.source import LiveCaptureSource

        def capture_factory(item: dict[str, Any] = item) -> Source:
            from collectors.network.settings import sensor_settings

            sink, matched = _payload_sink(config)
            return _WithPayloadMatches(LiveCaptureSource(
                item["iface"], item.get("bpf"), batch_size=batch_size,
                settings=sensor_settings(config), payload_sink=sink), matched)

        specs.append((f"capture:{item['iface']}", "capture", capture_factory))
    return specs


def _yara_watch_factory(config: Config, watch: dict[str, Any]) -> SourceFactory:
    def factory() -> Source:
        from detection.yara.settings import open_scanner
        from detection.yara.watch import WatchSettings, YaraWatchSource

        settings = WatchSettings(poll_seconds=float(watch.get("poll_seconds", 5)),
                                 settle_seconds=float(watch.get("settle_seconds", 0.5)),
                                 inotify=bool(watch.get("inotify", True)))
        return YaraWatchSource(open_scanner(config), list(watch["paths"]), settings)
    return factory


def _evtx_reader(batch_size: int) -> Callable[[str], Iterator[Batch]]:
    def read(path: str) -> Iterator[Batch]:
        from collectors.evtx import read_evtx

        return read_evtx(path, batch_size=batch_size)
    return read


def _winlog_reader(batch_size: int) -> Callable[[str], Iterator[Batch]]:
    def read(path: str) -> Iterator[Batch]:
        from collectors.winlog_json import read_winlog_json

        return read_winlog_json(path, batch_size=batch_size)
    return read


def _payload_sink(config: Config) -> tuple[Any, list[Any]]:
    """A YARA sink for HTTP bodies carved from captures, and the list its
    ``yara.match`` events are collected in (they join the capture's batches)."""
    from detection.yara.payloads import YaraPayloadSink
    from detection.yara.settings import open_scanner

    matched: list[Any] = []
    return YaraPayloadSink(open_scanner(config),
                           on_match=lambda event, _alert: matched.append(event)), matched


class _WithPayloadMatches:
    """A capture source whose batches also carry the YARA matches of carved bodies;
    the pipeline's YARA detector raises their alerts."""

    def __init__(self, source: Any, matched: list[Any]) -> None:
        self.source = source
        self.matched = matched
        self.name = source.name

    def batches(self) -> Iterator[Batch]:
        for batch in self.source.batches():
            if self.matched:
                batch.events.extend(self.matched)
                self.matched.clear()
            yield batch
        if self.matched:
            yield Batch(events=list(self.matched))
            self.matched.clear()

    def stop(self) -> None:
        self.source.stop()


def _pcap_reader(config: Config, batch_size: int) -> Callable[[str], Iterator[Batch]]:
    def read(path: str) -> Iterator[Batch]:
        from collectors.network.settings import sensor_settings
        from collectors.network.source import PcapFileSource

        sink, matched = _payload_sink(config)
        return _WithPayloadMatches(PcapFileSource(
            path, batch_size=batch_size, settings=sensor_settings(config),
            payload_sink=sink), matched).batches()
    return read


def _drop_factory(store: Store, directory: str, patterns: list[str],
                  reader: Callable[[str], Iterator[Batch]]) -> SourceFactory:
    def factory() -> Source:
        from collectors.dropfolder import DropFolderSource

        name = f"drop:{directory}"
        return DropFolderSource(directory, patterns, reader, name=name,
                                checkpoint=store.get_checkpoint(name))
    return factory


_STRINGS = {"type": "array", "items": {"type": "string", "minLength": 1}}


def import_input_sections() -> None:
    """Import the modules that declare configuration sections (``inputs.*``,
    ``detection.yara``), so one loader validates every key of ``govsoc.yml``."""
    import importlib

    from govsoc.config import SCHEMA, register_section

    for module in ("collectors.syslog", "collectors.tail", "collectors.network.settings",
                   "detection.yara.settings"):
        importlib.import_module(module)  # each registers its configuration section
    known = SCHEMA["properties"]["inputs"].get("properties", {})
    if "evtx_drop" not in known:
        register_section("inputs.evtx_drop", _STRINGS, [])
        register_section("inputs.pcap_drop", _STRINGS, [])
        register_section("inputs.winlog_drop", _STRINGS, [])
        register_section("inputs.capture", {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["iface"],
            "properties": {"iface": {"type": "string", "minLength": 1},
                           "bpf": {"type": ["string", "null"]}}}}, [])
