"""The Store contract on an Elasticsearch 8 or OpenSearch 2 cluster.

Index layout: see ``mappings.py``. What this engine guarantees:

- Events: ``_id = event.id`` with ``op_type=create``, so a redelivered event is a
  duplicate (the 409 of its item tells it apart from a new one). Bulk requests are
  retried with jittered back-off on 429/5xx and on an unreachable cluster; items
  that fail with 429/5xx are retried on their own; an item the cluster refuses
  (a mapping conflict) goes to the dead letters with the cluster's reason and the
  rest of the batch is stored. When the retries run out the batch goes to the
  on-disk spool (``spool.py``) and is replayed, in order, before the next write and
  before a refresh, and by a background thread every few seconds (backing off to a
  minute) while segments wait, so a quiet sensor's spool drains without new writes.
- Bulk: one insert goes in requests of at most ``batch_bytes``, two at a time, with
  one block of sequence numbers; answers are trimmed to status and error per item.
- Alert batches: one ``_mget`` of the group pointers, one of their alerts and one
  ``_bulk`` fold a batch of drafts; a group the batch cannot settle alone goes
  through the one-by-one path below.
- Storage order: every stored event carries ``govsoc.seq``, taken in blocks from a
  counter document updated with ``if_seq_no``. A writer registers its block as in
  flight in the same document and removes it when its bulk requests have finished.
  ``tail_events`` reads the counter in real time, takes as its watermark the lowest
  block still in flight (entries expire after ``IN_FLIGHT_TTL`` so a crashed writer
  cannot stop the tail), refreshes and returns events below the watermark in
  ``govsoc.seq`` order. So with any number of concurrent writers a tail consumer
  sees each stored event exactly once; a bulk that takes longer than the TTL may be
  seen late, never twice.
- Alerts fold by group key: ``P-alert-groups`` maps the group key to the newest
  alert (a real-time GET, no refresh), and every change of an alert or a case is a
  conditional write (``if_seq_no``/``if_primary_term``), retried for folding and
  surfaced as :class:`ConflictError` for people's edits. A version string is
  ``<primary term>.<seq no>``.
- Queries are query DSL built from values (term/terms/range/multi_match/wildcard
  with escaped values), never query strings, so filters cannot inject.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import os
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import orjson

from govsoc.errors import (
    ConflictError,
    NotFoundError,
    QueryError,
    StoreError,
    StoreUnavailableError,
)
from govsoc.events import DeadLetter, Event, field_type, is_valid_field_name, timestamp_micros
from store.base import (
    ALERT_SORTS,
    MAX_ALERT_EVENT_IDS,
    Alert,
    AlertChange,
    AlertFilter,
    AlertStatus,
    ApiToken,
    AuditEntry,
    AuditFilter,
    Bucket,
    Case,
    CaseChange,
    CaseFilter,
    CaseStatus,
    CaseTask,
    Comment,
    EventQuery,
    InsertResult,
    NewAlert,
    NewCase,
    Observable,
    Page,
    Role,
    Severity,
    Store,
    StoredDeadLetter,
    Suppression,
    TermCount,
    User,
)
from store.elastic import mappings, retention
from store.elastic.caseless import caseless_dsl
from store.elastic.client import ClusterError, SearchClient, error_reason, quote_id
from store.elastic.spool import Spool

log = logging.getLogger("govsoc.store.elastic")

SCHEMA_VERSION = 1
#: A writer's block of sequence numbers counts as in flight at most this long.
IN_FLIGHT_TTL = timedelta(minutes=10)
#: Largest dead-letter original kept (as in the SQLite engine).
MAX_DEAD_LETTER_BYTES = 1 << 20
#: Bulk requests are cut at this many bytes of NDJSON.
BULK_MAX_BYTES = 8 << 20
#: Bulk requests one insert sends side by side: the node indexes one while the
#: client builds and sends the next.
BULK_CONCURRENCY = 2
#: Smaller inserts go in one request (splitting them would only add round trips).
MIN_SPLIT_EVENTS = 1000
#: Seconds between background replays of the spool (doubling up to the maximum
#: while the cluster stays away).
SPOOL_REPLAY_INTERVAL = 5.0
SPOOL_REPLAY_MAX_INTERVAL = 60.0
#: The bulk answer cut to what the store reads (a full answer is ~250 bytes an item).
_BULK_PARAMS = {"filter_path": "errors,items.*.status,items.*.error"}
_ALERT_BULK_PARAMS = {"filter_path": "items.*.status,items.*.error,items.*._seq_no,"
                                     "items.*._primary_term"}

_SEQ_DOC = "event-seq"
#: hunt queries sent in one _msearch (the node runs them side by side)
MSEARCH_QUERIES = 16
#: reads and conditional writes tried before an update of a setting gives up
_SETTING_ATTEMPTS = 100
_INDEX_UNSAFE = re.compile(r"[^a-z0-9._-]+")
_OPEN = [s.value for s in AlertStatus if s.is_open]
_ALERT_COLUMNS = {
    "status": "status", "severity": "severity", "rule_id": "rule_id", "host": "host",
    "source": "source", "assignee": "assignee", "user": "user",
    "source_ip": "source_ip", "destination_ip": "destination_ip", "dataset": "dataset",
    "rule_name": "rule_name",
}
_ALERT_SORT_COLUMNS = {
    "last_seen": "last_seen", "first_seen": "first_seen", "severity": "severity_rank",
    "count": "count", "created_at": "created_at",
}


# ------------------------------------------------------------------ small helpers

def _us(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def _dt(value: Any) -> datetime | None:
    if value is None:
        return None
    value = int(value)
    return datetime.fromtimestamp(value // 1_000_000, UTC).replace(microsecond=value % 1_000_000)


def _now_us() -> int:
    return _us(datetime.now(UTC)) or 0


def _iso(us: int) -> str:
    return (_dt(us) or datetime.min).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _key(name: str) -> str:
    """A document id for a free-form name (checkpoints, settings, group keys)."""
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()


def _encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


def _decode_cursor(cursor: str, size: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise QueryError(f"invalid cursor {cursor[:40]!r}") from exc
    if not isinstance(values, list) or len(values) != size or not all(
            isinstance(v, str | int | float) for v in values):
        raise QueryError(f"invalid cursor {cursor[:40]!r}")
    return values


def _version(hit: Mapping[str, Any]) -> str:
    return f"{hit['_primary_term']}.{hit['_seq_no']}"


def _cas(version: str) -> dict[str, Any] | None:
    """``if_primary_term``/``if_seq_no`` from a version string; None when malformed."""
    term, _, seq = str(version).partition(".")
    if not (term.isdigit() and seq.isdigit()):
        return None
    return {"if_primary_term": int(term), "if_seq_no": int(seq)}


def _scalar(value: Any) -> str | None:
    if isinstance(value, list):
        return str(value[0]) if value else None
    return None if value is None else str(value)


def _escape_wildcard(text: str) -> str:
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")


def _typed_values(name: str, values: Sequence[Any]) -> list[Any]:
    """Filter values the field's type can hold; others can never match (and would make
    the cluster refuse the whole query)."""
    type_ = field_type(name)
    out: list[Any] = []
    for value in values:
        if type_ in ("long", "integer"):
            try:
                out.append(int(str(value).strip()))
            except ValueError:
                continue
        elif type_ in ("float", "double"):
            try:
                out.append(float(str(value).strip()))
            except ValueError:
                continue
        elif type_ == "ip":
            try:
                out.append(str(ip_address(str(value).strip())))
            except ValueError:
                continue
        elif type_ == "boolean":
            text = str(value).lower()
            if text in ("true", "false"):
                out.append(text == "true")
        elif type_ == "date":
            try:
                out.append(_iso(timestamp_micros(value)))
            except (ValueError, OverflowError, OSError):
                continue
        else:
            out.append(str(value) if not isinstance(value, bool | int | float) else value)
    return out


def _match_nothing() -> dict[str, Any]:
    return {"bool": {"must_not": {"match_all": {}}}}


def _strip_seq(source: dict[str, Any]) -> Event:
    own = source.get("govsoc")
    if isinstance(own, dict) and "seq" in own:
        del own["seq"]
        if not own:
            del source["govsoc"]
    return source


@dataclass
class _GroupPlan:
    """How one alert group of a batch is recorded in the batch's bulk request."""

    gid: str
    members: list[int]
    #: per member draft: the id of its alert, created by it?
    results: list[tuple[str, bool]] = field(default_factory=list)
    #: alert documents to write: id, document, if_seq_no/if_primary_term (None: create)
    writes: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = field(
        default_factory=list)
    pointer: dict[str, Any] | None = None
    pointer_cas: dict[str, Any] | None = None


class _Retry(Exception):
    """A conditional write lost a race; start the operation again."""


# ------------------------------------------------------------------ the engine

class ElasticStore(Store):
    """The Store contract on Elasticsearch 8 / OpenSearch 2 (``client.engine``)."""

    def __init__(self, client: SearchClient, prefix: str = "govsoc", *, shards: int = 1,
                 replicas: int = 1, refresh_interval: str = "auto",
                 index_period: str = "month", spool_dir: str | os.PathLike[str] | None = None,
                 spool_max_bytes: int = 1 << 30, retention_days: int = 90,
                 attempts: int = 5, retry_delay: float = 0.2, max_retry_delay: float = 5.0,
                 batch_bytes: int = BULK_MAX_BYTES,
                 bulk_concurrency: int = BULK_CONCURRENCY,
                 spool_replay_interval: float = SPOOL_REPLAY_INTERVAL) -> None:
        if index_period not in ("day", "month", "year"):
            raise ValueError("index_period must be 'day', 'month' or 'year'")
        self.client = client
        self.engine = client.engine
        self.prefix = prefix
        self.shards = shards
        self.replicas = replicas
        self.refresh_interval = refresh_interval
        self.index_period = index_period
        self.retention_days = retention_days
        self.attempts = attempts
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.batch_bytes = batch_bytes
        self.bulk_concurrency = max(1, bulk_concurrency)
        self._pool: ThreadPoolExecutor | None = None
        self._index_names: dict[str, str] = {}
        self.spool = Spool(spool_dir, spool_max_bytes) if spool_dir is not None else None
        self.spool_replay_interval = spool_replay_interval
        self._replayer: threading.Thread | None = None
        self._replayer_lock = threading.Lock()
        self._closing = threading.Event()
        self._ready = False
        self._ready_lock = threading.Lock()
        self._clock_lock = threading.Lock()
        self._last_recorded = 0
        self._unreleased: set[str] = set()
        with contextlib.suppress(StoreUnavailableError):
            # an unreachable cluster is not fatal for ingest: batches go to the spool
            self._ensure_layout()
        if self.spool is not None and self.spool.pending():
            # left by a run that ended while the cluster was away
            self._start_replayer()

    # ---------------------------------------------------------------- plumbing
    def _ix(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    @property
    def _events(self) -> str:
        return f"{self.prefix}-events-*"

    def _req(self, method: str, path: str, body: Any = None, *,
             params: Mapping[str, Any] | None = None, retry: bool = True,
             ndjson: bool = False) -> Any:
        try:
            if retry:
                return self.client.request_retrying(
                    method, path, body, params=params, ndjson=ndjson, attempts=self.attempts,
                    base_delay=self.retry_delay, max_delay=self.max_retry_delay)
            return self.client.request(method, path, body, params=params, ndjson=ndjson)
        except ClusterError as exc:
            raise self._translate(exc) from None

    def _translate(self, exc: ClusterError) -> StoreError:
        if exc.status == 0 or exc.status in (502, 503, 504):
            return StoreUnavailableError(
                f"the {self.engine} cluster at {', '.join(self.client.settings.urls)} cannot "
                f"be reached: {exc.reason}")
        if exc.status == 400:
            return QueryError(f"the {self.engine} cluster refused the request: {exc.reason}")
        return StoreError(f"{self.engine} cluster error {exc.status}: {exc.reason}")

    def _get(self, index: str, doc_id: str) -> dict[str, Any] | None:
        try:
            return self.client.request_retrying(
                "GET", f"/{index}/_doc/{quote_id(doc_id)}", attempts=self.attempts,
                base_delay=self.retry_delay, max_delay=self.max_retry_delay)
        except ClusterError as exc:
            if exc.status == 404:
                return None
            raise self._translate(exc) from None

    def _put(self, index: str, doc_id: str, doc: Mapping[str, Any], *,
             create: bool = False, cas: Mapping[str, Any] | None = None,
             refresh: bool = False) -> dict[str, Any]:
        """Index one document; a 409 (version conflict, exists) is the caller's ClusterError."""
        params: dict[str, Any] = dict(cas or {})
        if create:
            params["op_type"] = "create"
        if refresh:
            params["refresh"] = "true"
        return self.client.request_retrying(
            "PUT", f"/{index}/_doc/{quote_id(doc_id)}", doc, params=params,
            attempts=self.attempts, base_delay=self.retry_delay,
            max_delay=self.max_retry_delay)

    def _write(self, index: str, doc_id: str, doc: Mapping[str, Any], **kw: Any
               ) -> dict[str, Any] | None:
        """_put that answers None on a 409 and translates other errors."""
        try:
            return self._put(index, doc_id, doc, **kw)
        except ClusterError as exc:
            if exc.status == 409:
                return None
            raise self._translate(exc) from None

    def _search(self, index: str, body: Mapping[str, Any], **params: Any) -> dict[str, Any]:
        params.setdefault("ignore_unavailable", "true")
        params.setdefault("allow_no_indices", "true")
        return self._req("POST", f"/{index}/_search", body, params=params)

    def _hits(self, index: str, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        return list(self._search(index, body)["hits"]["hits"])

    def _recorded(self) -> int:
        """Strictly increasing microsecond stamps in this process (append order)."""
        with self._clock_lock:
            now = max(_now_us(), self._last_recorded + 1)
            self._last_recorded = now
            return now

    # ---------------------------------------------------------------- layout
    def _ensure_layout(self) -> None:
        if self._ready:
            return
        with self._ready_lock:
            if self._ready:
                return
            lifecycle: dict[str, Any] = {}
            try:
                lifecycle = retention.install_policy(self.client, self.prefix,
                                                     self.retention_days)
            except ClusterError as exc:
                if exc.status == 0:
                    raise self._translate(exc) from None
                log.warning("cannot install the retention policy: %s", exc.reason)
            template = mappings.event_template(
                self.prefix, self.engine, shards=self.shards, replicas=self.replicas,
                refresh_interval=self.refresh_interval, lifecycle=lifecycle)
            self._req("PUT", f"/_index_template/{quote_id(self.prefix + '-events')}", template)
            existing = {row["index"] for row in self._req(
                "GET", f"/_cat/indices/{quote_id(self.prefix)}-*",
                params={"format": "json", "h": "index"}) or []}
            missing = [n for n in mappings.CONFIG_INDICES if self._ix(n) not in existing]
            # created side by side: the cluster manager batches them into few state updates
            with ThreadPoolExecutor(max_workers=max(1, len(missing))) as pool:
                for error in pool.map(self._create_config_index, missing):
                    if error is not None:
                        raise self._translate(error)
            if self._get(self._ix("state"), "schema") is None:
                self._write(self._ix("state"), "schema",
                            {"doc": {"version": SCHEMA_VERSION}}, create=True)
            self._ready = True
        try:
            retention.sweep_expired(self.client, self.prefix, self.retention_days)
        except ClusterError as exc:
            log.warning("retention sweep failed: %s", exc.reason)

    def _create_config_index(self, name: str) -> ClusterError | None:
        try:
            self.client.request("PUT", f"/{self._ix(name)}", mappings.config_index_body(
                name, shards=1, replicas=self.replicas))
        except ClusterError as exc:
            if not (exc.status == 400 and "already_exists" in exc.reason):
                return exc
        return None

    def _ready_or_raise(self) -> None:
        if not self._ready:
            self._ensure_layout()

    def schema_version(self) -> int:
        self._ready_or_raise()
        doc = self._get(self._ix("state"), "schema")
        return int(doc["_source"]["doc"]["version"]) if doc else SCHEMA_VERSION

    def refresh(self) -> None:
        """Spooled events go first (so they become visible too), then a refresh."""
        if self.spool is not None and self.spool.pending():
            self.flush_spool()
        self._ready_or_raise()
        self._req("POST", f"/{self.prefix}-*/_refresh",
                  params={"ignore_unavailable": "true", "allow_no_indices": "true"})

    def close(self) -> None:
        self._closing.set()
        replayer = self._replayer
        if replayer is not None:
            replayer.join(timeout=30)
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        with contextlib.suppress(Exception):
            self.client.close()

    def drop_all(self) -> None:
        """Delete every index, template and lifecycle policy of this prefix."""
        listing = self._req("GET", f"/_cat/indices/{quote_id(self.prefix)}-*",
                            params={"format": "json", "h": "index", "expand_wildcards": "all"})
        names = sorted(row["index"] for row in listing or [])
        for start in range(0, len(names), 50):
            self._req("DELETE", "/" + ",".join(quote_id(n) for n in names[start:start + 50]))
        with contextlib.suppress(StoreError):
            self._req("DELETE", f"/_index_template/{quote_id(self.prefix + '-events')}",
                      retry=False)
        with contextlib.suppress(ClusterError):
            retention.remove_policy(self.client, self.prefix)
        self._ready = False

    def sweep_retention(self, now: datetime | None = None) -> list[str]:
        """Delete event indices older than ``retention_days`` (see retention.py)."""
        try:
            return retention.sweep_expired(self.client, self.prefix, self.retention_days, now)
        except ClusterError as exc:
            raise self._translate(exc) from None

    # ---------------------------------------------------------------- events: write
    def event_index(self, event: Mapping[str, Any]) -> str:
        """The index an event belongs in: its dataset and the period of its time."""
        meta = event.get("event")
        dataset = str(meta.get("dataset") or "unknown") if isinstance(meta, dict) else "unknown"
        name = self._index_names.get(dataset)
        if name is None:
            name = _INDEX_UNSAFE.sub("_", dataset.lower()).lstrip("._-+")[:100] or "unknown"
            if len(self._index_names) < 10_000:
                self._index_names[dataset] = name
        stamp = event.get("@timestamp")
        if not (isinstance(stamp, str) and len(stamp) >= 10 and stamp[4] == "-"):
            try:
                stamp = _iso(timestamp_micros(stamp))
            except (ValueError, OverflowError, OSError):
                stamp = "1970-01-01"
        width = {"year": 4, "month": 7, "day": 10}[self.index_period]
        period = stamp[:width].replace("-", ".")
        return f"{self.prefix}-events-{name}-{period}"

    def insert_events(self, events: Sequence[Event]) -> InsertResult:
        result = InsertResult()
        unique: list[Event] = []
        seen: set[str] = set()
        for event in events:
            meta = event.get("event")
            eid = meta.get("id") if isinstance(meta, dict) else None
            if not eid:
                raise QueryError("an event without event.id cannot be stored")
            eid = str(eid)
            if eid in seen:
                result.duplicates += 1
                continue
            seen.add(eid)
            unique.append(event)
        if not unique:
            return result
        if self.spool is not None and self.spool.pending():
            with self.spool.locked():
                if not self._replay_spool():
                    self.spool.append(unique)
                    result.stored += len(unique)
                    result.new_ids.extend(str(e["event"]["id"]) for e in unique)
                    return result
        try:
            self._ready_or_raise()
            result.add(self._store_events(unique))
        except _Unreachable as exc:
            result.add(exc.partial)
            self._spool_or_raise(exc.events, exc.reason, result)
        except StoreUnavailableError as exc:
            self._spool_or_raise(unique, str(exc), result)
        if len(result.new_ids) > 1:
            order = {str(e["event"]["id"]): i for i, e in enumerate(unique)}
            result.new_ids.sort(key=lambda i: order.get(i, 0))
        return result

    def _spool_or_raise(self, events: list[Event], reason: str, result: InsertResult) -> None:
        """Keep events the cluster could not take in the spool; they count as stored."""
        if self.spool is None:
            raise StoreUnavailableError(
                f"the {self.engine} cluster could not take {len(events)} events: {reason}")
        with self.spool.locked():
            self.spool.append(events)
        log.warning("search cluster unreachable (%s): %d events spooled to %s",
                    reason, len(events), self.spool.directory)
        self._start_replayer()
        result.stored += len(events)
        result.new_ids.extend(str(e["event"]["id"]) for e in events)

    def _start_replayer(self) -> None:
        """Replay the spool in the background until it is empty, so events spooled
        during an outage reach the cluster when it is back even if nothing more is
        written (a sensor whose inputs went quiet)."""
        if self.spool is None or self.spool_replay_interval <= 0 or self._closing.is_set():
            return
        with self._replayer_lock:
            if self._replayer is not None:
                return
            self._replayer = threading.Thread(target=self._replay_loop, daemon=True,
                                              name="govsoc-spool-replay")
            self._replayer.start()

    def _replay_loop(self) -> None:
        assert self.spool is not None
        delay = self.spool_replay_interval
        while not self._closing.wait(delay):
            with self._replayer_lock:
                # checked under the lock _start_replayer takes: a segment spooled
                # after this check finds no replayer and starts a new one
                if not self.spool.pending():
                    self._replayer = None
                    return
            try:
                with self.spool.locked():
                    done = self._replay_spool()
            except Exception as exc:  # the loop outlives any one failure; logged
                log.warning("spool replay failed: %s", exc)
                done = False
            if not done:
                delay = min(SPOOL_REPLAY_MAX_INTERVAL, delay * 2)
        with self._replayer_lock:
            self._replayer = None

    def flush_spool(self) -> bool:
        """Replay the spool now; True when it is empty afterwards."""
        if self.spool is None:
            return True
        with self.spool.locked():
            return self._replay_spool()

    def _replay_spool(self) -> bool:
        """Replay spooled segments oldest first (spool lock held). False when the
        cluster is still unreachable."""
        assert self.spool is not None
        for segment in self.spool.segments():
            events = self.spool.read(segment)
            try:
                self._ready_or_raise()
                self._store_events(events)
            except (_Unreachable, StoreUnavailableError) as exc:
                log.info("spool replay paused: %s", exc)
                return False
            self.spool.remove(segment)
            log.info("replayed %d spooled events from %s", len(events), segment.name)
        return True

    def _store_events(self, events: Sequence[Event]) -> InsertResult:
        """Bulk-write events in chunks of at most ``batch_bytes``, up to
        ``bulk_concurrency`` requests at a time. When the cluster stays unreachable,
        raises _Unreachable carrying what was stored and the events not written, in
        their order."""
        bodies = [orjson.dumps(event, default=str) for event in events]
        chunks = self._chunks(bodies)
        try:
            first, token = self._reserve_seq(len(events))
        except ClusterError as exc:
            if exc.retryable:
                raise _Unreachable(exc.reason, list(events)) from None
            raise self._translate(exc) from None
        gone = threading.Event()

        def send(span: range) -> tuple[InsertResult, list[Event], str | None]:
            if gone.is_set():
                # the cluster went away during an earlier chunk: spool the rest at once
                return InsertResult(), [events[i] for i in span], "the cluster went away"
            outcome = self._bulk_chunk(events, bodies, span, first)
            if outcome[2] is not None:
                gone.set()
            return outcome

        try:
            if len(chunks) == 1:
                outcomes = [send(chunks[0])]
            else:
                outcomes = list(self._bulk_pool().map(send, chunks))
        finally:
            self._release_seq(token)
        result = InsertResult()
        unsent: list[Event] = []
        reason: str | None = None
        for stored, left, why in outcomes:
            result.add(stored)
            unsent.extend(left)
            reason = reason or why
        if reason is not None:
            raise _Unreachable(reason, unsent, result)
        return result

    def _chunks(self, bodies: Sequence[bytes]) -> list[range]:
        """Spans of at most ``batch_bytes``; a large batch is cut in at least
        ``bulk_concurrency`` spans so that the node indexes one while the next is sent."""
        limit = self.batch_bytes
        if self.bulk_concurrency > 1 and len(bodies) >= MIN_SPLIT_EVENTS:
            limit = min(limit, sum(map(len, bodies)) // self.bulk_concurrency + 1)
        spans: list[range] = []
        start = size = 0
        for i, body in enumerate(bodies):
            size += len(body)
            if size >= limit and i < len(bodies) - 1:
                spans.append(range(start, i + 1))
                start, size = i + 1, 0
        spans.append(range(start, len(bodies)))
        return spans

    def _bulk_pool(self) -> ThreadPoolExecutor:
        with self._ready_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.bulk_concurrency,
                                                thread_name_prefix="govsoc-bulk")
            return self._pool

    def _bulk_chunk(self, events: Sequence[Event], bodies: Sequence[bytes], span: range,
                    first: int) -> tuple[InsertResult, list[Event], str | None]:
        """One span of events through ``_bulk``: what was stored, the events left
        unwritten and why (None when every item has its final answer)."""
        result = InsertResult()
        pending = list(span)
        ids = {i: str(events[i]["event"]["id"]) for i in span}
        index_of = {i: self.event_index(events[i]) for i in span}
        status: dict[int, int] = {}
        reasons: dict[int, str] = {}
        unreachable: str | None = None
        delay = self.retry_delay
        for attempt in range(1, self.attempts + 1):
            payload = bytearray()
            for i in pending:
                payload += orjson.dumps({"create": {"_index": index_of[i], "_id": ids[i]}})
                payload += b"\n"
                body = bodies[i]
                if b'"govsoc":' not in body:
                    payload += body[:-1]
                    payload += b',"govsoc":{"seq":%d}}\n' % (first + i)
                else:
                    doc = dict(events[i])
                    own = dict(doc["govsoc"]) if isinstance(doc.get("govsoc"), dict) else {}
                    own["seq"] = first + i
                    doc["govsoc"] = own
                    payload += orjson.dumps(doc, default=str)
                    payload += b"\n"
            try:
                answer = self.client.request("POST", "/_bulk", bytes(payload), ndjson=True,
                                             params=_BULK_PARAMS)
            except ClusterError as exc:
                if not exc.retryable:
                    raise self._translate(exc) from None
                if attempt == self.attempts:
                    unreachable = exc.reason
                    break
                log.debug("bulk retry after %s", exc)
                time.sleep(delay * (0.5 + random.random()))
                delay = min(self.max_retry_delay, delay * 2)
                continue
            if not answer.get("errors"):
                # every item was created: no need to read 5,000 answers one by one
                status.update((i, 201) for i in pending)
                pending = []
                break
            retry: list[int] = []
            for i, item in zip(pending, answer["items"], strict=True):
                info = item.get("create") or next(iter(item.values()))
                code = int(info.get("status", 500))
                if code in (429, 500, 502, 503, 504):
                    retry.append(i)
                    continue
                status[i] = code
                if code >= 300 and code != 409:
                    err = info.get("error") or {}
                    reasons[i] = (f"{err.get('type', 'error')}: {err.get('reason', '')}"
                                  if isinstance(err, dict) else str(err))[:2000]
            pending = retry
            if not pending:
                break
            if attempt == self.attempts:
                unreachable = "the cluster kept refusing items with 429/5xx"
                break
            time.sleep(delay * (0.5 + random.random()))
            delay = min(self.max_retry_delay, delay * 2)
        letters: list[DeadLetter] = []
        for i in span:
            outcome = status.get(i)
            if outcome is None:
                continue
            if outcome < 300:
                result.stored += 1
                result.new_ids.append(ids[i])
            elif outcome == 409:
                result.duplicates += 1
            else:
                result.rejected += 1
                letters.append(DeadLetter(
                    source=f"{self.engine}:{index_of[i]}", position=ids[i],
                    reason=f"the {self.engine} cluster refused the event: {reasons.get(i, '')}",
                    original=bodies[i]))
        if letters:
            log.warning("%d events refused by the cluster went to the dead letters (first: %s)",
                        len(letters), letters[0].reason)
            self.add_dead_letters(letters)
        if unreachable is None:
            return result, [], None
        return result, [events[i] for i in pending], unreachable

    # the sequence counter -------------------------------------------------------
    def _reserve_seq(self, count: int) -> tuple[int, str]:
        token = uuid.uuid4().hex[:16]
        index = self._ix("state")
        for _ in range(200):
            try:
                current = self.client.request_retrying(
                    "GET", f"/{index}/_doc/{_SEQ_DOC}", attempts=self.attempts,
                    base_delay=self.retry_delay, max_delay=self.max_retry_delay)
            except ClusterError as exc:
                if exc.status != 404:
                    raise
                current = None
            now = _now_us()
            expires = now + int(IN_FLIGHT_TTL.total_seconds() * 1_000_000)
            if current is None:
                doc = {"doc": {"next": 1 + count, "inflight": {token: [1, expires]}}}
                params: dict[str, Any] = {"op_type": "create"}
                first = 1
            else:
                state = current["_source"]["doc"]
                first = int(state["next"])
                # blocks this process could not release while the cluster was away
                stale = self._unreleased
                inflight = {k: v for k, v in state.get("inflight", {}).items()
                            if v[1] > now and k not in stale}
                inflight[token] = [first, expires]
                doc = {"doc": {"next": first + count, "inflight": inflight}}
                params = {"if_seq_no": current["_seq_no"],
                          "if_primary_term": current["_primary_term"]}
            try:
                self.client.request_retrying(
                    "PUT", f"/{index}/_doc/{_SEQ_DOC}", doc, params=params,
                    attempts=self.attempts, base_delay=self.retry_delay,
                    max_delay=self.max_retry_delay)
                if current is not None:
                    self._unreleased.difference_update(current["_source"]["doc"].get(
                        "inflight", {}))
                return first, token
            except ClusterError as exc:
                if exc.status != 409:
                    raise
                time.sleep(random.random() * 0.01)
        raise StoreError("could not reserve event sequence numbers: too much contention")

    def _release_seq(self, token: str) -> None:
        index = self._ix("state")
        for _ in range(200):
            try:
                current = self.client.request("GET", f"/{index}/_doc/{_SEQ_DOC}")
                state = current["_source"]["doc"]
                inflight = dict(state.get("inflight", {}))
                if inflight.pop(token, None) is None:
                    return
                self.client.request("PUT", f"/{index}/_doc/{_SEQ_DOC}",
                                    {"doc": {"next": state["next"], "inflight": inflight}},
                                    params={"if_seq_no": current["_seq_no"],
                                            "if_primary_term": current["_primary_term"]})
                return
            except ClusterError as exc:
                if exc.status == 404:
                    return
                if exc.status != 409:
                    # unreachable: the next reservation drops it (or it expires)
                    self._unreleased.add(token)
                    return
                time.sleep(random.random() * 0.01)

    def _watermark(self) -> int:
        """The lowest sequence number that may still be in flight."""
        current = self._get(self._ix("state"), _SEQ_DOC)
        if current is None:
            return 1
        state = current["_source"]["doc"]
        now = _now_us()
        starts = [int(v[0]) for v in state.get("inflight", {}).values() if v[1] > now]
        return min([int(state["next"]), *starts])

    # ---------------------------------------------------------------- events: read
    def _event_query(self, query: EventQuery) -> dict[str, Any]:
        filters: list[dict[str, Any]] = []
        must: list[dict[str, Any]] = []
        if query.start is not None or query.end is not None:
            span: dict[str, Any] = {}
            if query.start is not None:
                span["gte"] = _iso(_us(query.start) or 0)
            if query.end is not None:
                span["lt"] = _iso(_us(query.end) or 0)
            filters.append({"range": {"@timestamp": span}})
        if query.datasets:
            filters.append({"terms": {"event.dataset": [str(d) for d in query.datasets]}})
        for name, values in query.filters.items():
            if not is_valid_field_name(name):
                raise QueryError(f"invalid field name {name[:80]!r}")
            values = list(values) if isinstance(values, list | tuple | set) else [values]
            if not values:
                continue
            typed = _typed_values(name, values)
            if not typed:
                return _match_nothing()
            target = f"{name}.keyword" if field_type(name) == "text" else name
            filters.append({"terms": {target: typed}})
        if query.text is not None:
            if not query.text.split():
                raise QueryError("empty search text")
            must.append({"multi_match": {"query": query.text,
                                         "fields": list(mappings.EVENT_TEXT_FIELDS),
                                         "type": "cross_fields", "operator": "and"}})
        if not filters and not must:
            return {"match_all": {}}
        return {"bool": {"filter": filters, "must": must}}

    def search_events(self, query: EventQuery) -> Page[Event]:
        self._ready_or_raise()
        order = "desc" if query.descending else "asc"
        limit = max(1, min(int(query.limit), 10000))
        body: dict[str, Any] = {
            "query": self._event_query(query), "size": limit + 1,
            "sort": [{"@timestamp": {"order": order}}, {"event.id": {"order": order}}],
            "track_total_hits": False,
        }
        if query.after:
            stamp, last_id = _decode_cursor(query.after, 2)
            if not isinstance(stamp, int) or not isinstance(last_id, str):
                raise QueryError(f"invalid cursor {query.after[:40]!r}")
            body["search_after"] = [stamp, last_id]
        hits = self._hits(self._events, body)
        items = [_strip_seq(h["_source"]) for h in hits[:limit]]
        cursor = None
        if len(hits) > limit:
            cursor = _encode_cursor(*hits[limit - 1]["sort"])
        return Page(items, cursor)

    def search_dsl(self, query: Mapping[str, Any], page_size: int = 100,
                   limit: int | None = None, *, case_insensitive: bool = True
                   ) -> Iterator[Event]:
        """Every event matching a query-DSL body (``{"query": ...}``), oldest first.

        For hunts: the query comes from pySigma's backends, not from people. Pages
        are small because stored events can be large (script blocks, raw XML). Its
        ``query_string`` field references go to the case-insensitive ``.ci`` twins
        (Sigma's string matching; see caseless.py) unless ``case_insensitive`` is off.
        """
        self._ready_or_raise()
        if case_insensitive:
            query = caseless_dsl(query)
        for sent, event in enumerate(self._dsl_pages(query, page_size, None), 1):
            yield event
            if limit is not None and sent >= limit:
                return

    def search_dsl_each(self, queries: Sequence[Mapping[str, Any]], page_size: int = 100, *,
                        case_insensitive: bool = True, at_once: int = MSEARCH_QUERIES
                        ) -> Iterator[tuple[int, Event]]:
        """``(query number, event)`` for every event each query matches: what
        :meth:`search_dsl` gives for each query in turn.

        The first pages of ``at_once`` queries are asked in one ``_msearch``, which
        the cluster runs side by side on its search threads: a hunt of thousands of
        rules is thousands of small searches, and one at a time leaves all but one
        core of the node idle.
        """
        self._ready_or_raise()
        prepared = [caseless_dsl(q) if case_insensitive else q for q in queries]
        header = orjson.dumps({"index": self._events, "ignore_unavailable": True,
                               "allow_no_indices": True})
        step = max(1, at_once)
        for start in range(0, len(prepared), step):
            chunk = prepared[start:start + step]
            payload = bytearray()
            for query in chunk:
                payload += header + b"\n" + orjson.dumps(self._dsl_body(query, page_size, None)) \
                    + b"\n"
            answer = self._req("POST", "/_msearch", bytes(payload), ndjson=True)
            for number, (query, response) in enumerate(zip(chunk, answer["responses"],
                                                           strict=True), start):
                if "error" in response:
                    raise self._translate(ClusterError(
                        int(response.get("status", 500)),
                        error_reason(response, "search failed"), response))
                hits = response["hits"]["hits"]
                for hit in hits:
                    yield number, _strip_seq(hit["_source"])
                if len(hits) == page_size:
                    for event in self._dsl_pages(query, page_size, hits[-1]["sort"]):
                        yield number, event

    @staticmethod
    def _dsl_body(query: Mapping[str, Any], page_size: int, after: list[Any] | None
                  ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "query": query.get("query", {"match_all": {}}), "size": page_size,
            "sort": [{"@timestamp": {"order": "asc"}}, {"event.id": {"order": "asc"}}],
            "track_total_hits": False}
        if after is not None:
            body["search_after"] = after
        return body

    def _dsl_pages(self, query: Mapping[str, Any], page_size: int, after: list[Any] | None
                   ) -> Iterator[Event]:
        """The events of ``query`` (already made caseless) after the sort key ``after``."""
        while True:
            hits = self._hits(self._events, self._dsl_body(query, page_size, after))
            for hit in hits:
                yield _strip_seq(hit["_source"])
            if len(hits) < page_size:
                return
            after = hits[-1]["sort"]

    def count_events(self, query: EventQuery) -> int:
        self._ready_or_raise()
        answer = self._req("POST", f"/{self._events}/_count",
                           {"query": self._event_query(query)},
                           params={"ignore_unavailable": "true", "allow_no_indices": "true"})
        return int(answer["count"])

    def get_events(self, ids: Sequence[str]) -> list[Event]:
        self._ready_or_raise()
        wanted = list(dict.fromkeys(str(i) for i in ids))
        found: dict[str, Event] = {}
        for start in range(0, len(wanted), 1000):
            chunk = wanted[start:start + 1000]
            for hit in self._hits(self._events, {"query": {"ids": {"values": chunk}},
                                                 "size": len(chunk)}):
                found[hit["_id"]] = _strip_seq(hit["_source"])
        return [found[i] for i in wanted if i in found]

    def top_terms(self, field_name: str, query: EventQuery | None = None,
                  size: int = 10) -> list[TermCount]:
        self._ready_or_raise()
        if not is_valid_field_name(field_name):
            raise QueryError(f"invalid field name {field_name[:80]!r}")
        target = f"{field_name}.keyword" if field_type(field_name) == "text" else field_name
        body = {"query": self._event_query(query or EventQuery()), "size": 0,
                "aggs": {"top": {"terms": {"field": target, "size": max(1, min(size, 10000)),
                                           "order": [{"_count": "desc"}, {"_key": "asc"}]}}}}
        answer = self._search(self._events, body)
        buckets = answer.get("aggregations", {}).get("top", {}).get("buckets", [])
        return [TermCount(b.get("key_as_string", b["key"]) if field_type(field_name) in
                          ("date", "boolean") else b["key"], int(b["doc_count"]))
                for b in buckets]

    def date_histogram(self, query: EventQuery, interval: timedelta) -> list[Bucket]:
        self._ready_or_raise()
        step_ms = int(interval.total_seconds() * 1000)
        if step_ms <= 0:
            raise QueryError("the histogram interval must be at least a millisecond")
        body = {"query": self._event_query(query), "size": 0,
                "aggs": {"h": {"date_histogram": {"field": "@timestamp",
                                                  "fixed_interval": f"{step_ms}ms",
                                                  "min_doc_count": 1}}}}
        answer = self._search(self._events, body)
        buckets = answer.get("aggregations", {}).get("h", {}).get("buckets", [])
        return [Bucket(datetime.fromtimestamp(int(b["key"]) / 1000, UTC), int(b["doc_count"]))
                for b in buckets]

    def tail_events(self, cursor: str | None, limit: int = 1000) -> tuple[list[Event], str]:
        self._ready_or_raise()
        after = 0
        if cursor:
            try:
                after = int(cursor)
            except ValueError:
                raise QueryError(f"invalid tail cursor {cursor[:40]!r}") from None
        watermark = self._watermark()
        if watermark <= after + 1:
            return [], str(after)
        # everything below the watermark was acknowledged; make it visible
        self._req("POST", f"/{self._events}/_refresh",
                  params={"ignore_unavailable": "true", "allow_no_indices": "true"})
        body = {"query": {"range": {mappings.SEQ_FIELD: {"gt": after, "lt": watermark}}},
                "size": max(1, min(limit, 10000)),
                "sort": [{mappings.SEQ_FIELD: {"order": "asc"}}], "track_total_hits": False}
        hits = self._hits(self._events, body)
        if not hits:
            return [], str(after)
        last = int(hits[-1]["sort"][0])
        return [_strip_seq(h["_source"]) for h in hits], str(last)

    def tail_start(self) -> str:
        self._ready_or_raise()
        return str(self._watermark() - 1)

    # ---------------------------------------------------------------- alerts
    def _alert_from(self, hit: Mapping[str, Any]) -> Alert:
        r = hit["_source"]
        return Alert(
            id=r["id"], rule_id=r["rule_id"], rule_name=r["rule_name"],
            severity=Severity(r["severity"]), status=AlertStatus(r["status"]),
            group_key=r["group_key"], first_seen=_dt(r["first_seen"]) or datetime.min,
            last_seen=_dt(r["last_seen"]) or datetime.min,
            created_at=_dt(r["created_at"]) or datetime.min,
            updated_at=_dt(r["updated_at"]) or datetime.min, version=_version(hit),
            source=r["source"], count=int(r["count"]), assignee=r.get("assignee"),
            event_ids=r.get("event_ids", []), tags=r.get("tags", []),
            dataset=r.get("dataset"), description=r.get("description", ""),
            fields=r.get("fields", {}), matched_fields=r.get("matched_fields", []),
            host=r.get("host"), user=r.get("user"), source_ip=r.get("source_ip"),
            destination_ip=r.get("destination_ip"), resolution=r.get("resolution"),
            case_id=r.get("case_id"), acknowledged_at=_dt(r.get("acknowledged_at")),
            resolved_at=_dt(r.get("resolved_at")),
        )

    @staticmethod
    def _alert_search_text(doc: Mapping[str, Any]) -> str:
        parts = [doc.get("rule_name"), doc.get("rule_id"), doc.get("host"), doc.get("user"),
                 doc.get("description"),
                 orjson.dumps({"event_ids": doc.get("event_ids", []),
                               "tags": doc.get("tags", []), "fields": doc.get("fields", {}),
                               "matched_fields": doc.get("matched_fields", [])},
                              default=str).decode()]
        return "\n".join(str(p) for p in parts if p).lower()[:8000]

    def _alert_hit(self, alert_id: str) -> dict[str, Any] | None:
        return self._get(self._ix("alerts"), alert_id)

    def get_alert(self, alert_id: str) -> Alert:
        self._ready_or_raise()
        hit = self._alert_hit(alert_id)
        if hit is None:
            raise NotFoundError("alert", alert_id)
        return self._alert_from(hit)

    def record_alerts(self, alerts: Sequence[NewAlert],
                      window: timedelta) -> list[tuple[Alert, bool]]:
        """Folds a batch in one ``_mget`` of the group pointers (and one of their
        alerts) and one ``_bulk``; groups the batch cannot settle on its own (an older
        alert that may take a late event, a writer that got there first) go through
        :meth:`_record_one`, each in its order."""
        self._ready_or_raise()
        window_us = int(window.total_seconds() * 1_000_000)
        out: list[tuple[Alert, bool] | None] = [None] * len(alerts)
        slow = self._record_batch(alerts, window_us, out) if alerts else []
        for i in sorted(slow):
            out[i] = self._record_retrying(alerts[i], window_us)
        return [r for r in out if r is not None]

    def _record_retrying(self, draft: NewAlert, window_us: int) -> tuple[Alert, bool]:
        for attempt in range(100):
            try:
                return self._record_one(draft, window_us)
            except _Retry:
                time.sleep(random.random() * 0.005 * min(attempt + 1, 10))
        raise StoreError(f"alert group {draft.group_key!r}: too many concurrent "
                         "writers, gave up folding")

    def _mget(self, index: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Found documents by id, read in real time (with their seq_no/primary_term)."""
        if not ids:
            return {}
        answer = self._req("POST", f"/{index}/_mget", {"ids": list(ids)})
        return {d["_id"]: d for d in answer["docs"] if d.get("found")}

    def _record_batch(self, alerts: Sequence[NewAlert], window_us: int,
                      out: list[tuple[Alert, bool] | None]) -> list[int]:
        """Record what the batch settles by itself into ``out``; the indices of drafts
        left for the one-by-one path."""
        alerts_ix, groups_ix = self._ix("alerts"), self._ix("alert-groups")
        by_group: dict[str, list[int]] = {}
        for i, draft in enumerate(alerts):
            by_group.setdefault(_key(draft.group_key), []).append(i)
        pointers = self._mget(groups_ix, list(by_group))
        current = self._mget(alerts_ix, sorted({p["_source"]["alert_id"]
                                                for p in pointers.values()}))
        slow: list[int] = []
        plans: list[_GroupPlan] = []
        now = _now_us()
        for gid, members in by_group.items():
            plan = self._plan_group(gid, members, alerts, pointers.get(gid), current,
                                    window_us, now)
            if plan is None:
                slow.extend(members)
            else:
                plans.append(plan)
        if not plans:
            return slow
        payload = bytearray()
        owners: list[tuple[_GroupPlan, str | None]] = []  # per bulk item: plan, alert id
        for plan in plans:
            for doc_id, doc, cas in plan.writes:
                action: dict[str, Any] = {"_index": alerts_ix, "_id": doc_id}
                if cas is not None:
                    action.update(cas)
                payload += orjson.dumps({"index" if cas else "create": action}) + b"\n"
                payload += orjson.dumps(doc, default=str) + b"\n"
                owners.append((plan, doc_id))
            if plan.pointer is not None:
                action = {"_index": groups_ix, "_id": plan.gid}
                if plan.pointer_cas is not None:
                    action.update(plan.pointer_cas)
                payload += orjson.dumps({"index" if plan.pointer_cas else "create": action})
                payload += b"\n" + orjson.dumps(plan.pointer) + b"\n"
                owners.append((plan, None))
        try:
            answer = self.client.request_retrying(
                "POST", "/_bulk", bytes(payload), ndjson=True, params=_ALERT_BULK_PARAMS,
                attempts=self.attempts, base_delay=self.retry_delay,
                max_delay=self.max_retry_delay)
        except ClusterError as exc:
            raise self._translate(exc) from None
        versions: dict[str, dict[str, Any]] = {}
        failed: set[int] = set()
        for (plan, owner), item in zip(owners, answer["items"], strict=True):
            info = next(iter(item.values()))
            if int(info.get("status", 500)) >= 300:
                failed.add(id(plan))
            elif owner is not None:
                versions[owner] = {"_seq_no": info["_seq_no"],
                                    "_primary_term": info["_primary_term"]}
        undo: list[str] = []
        for plan in plans:
            if id(plan) in failed:
                # another writer got there first (or the item was refused): alerts this
                # batch created for the group go, and its drafts take the one-by-one path
                undo.extend(doc_id for doc_id, _doc, cas in plan.writes
                            if cas is None and doc_id in versions)
                slow.extend(plan.members)
                continue
            # each draft answers with its alert as the batch left it (as the embedded
            # store does), so every returned version is one the cluster has
            final = {doc_id: doc for doc_id, doc, _cas in plan.writes}
            for i, (doc_id, created) in zip(plan.members, plan.results, strict=True):
                out[i] = self._alert_from({"_source": final[doc_id],
                                           **versions[doc_id]}), created
        for doc_id in undo:
            with contextlib.suppress(ClusterError):
                self.client.request("DELETE", f"/{alerts_ix}/_doc/{quote_id(doc_id)}")
        return slow

    def _plan_group(self, gid: str, members: list[int], alerts: Sequence[NewAlert],
                    pointer: dict[str, Any] | None, current: Mapping[str, dict[str, Any]],
                    window_us: int, now: int) -> _GroupPlan | None:
        """The writes that record one group's drafts, or None when the group needs the
        one-by-one path: its open alert exists but cannot take every draft (an older
        alert may), or its pointer leads nowhere."""
        plan = _GroupPlan(gid, members)
        existing = current.get(pointer["_source"]["alert_id"]) if pointer else None
        if pointer is not None and window_us > 0:
            if existing is None:
                return None
            doc = dict(existing["_source"])
            for i in members:
                ts = _us(alerts[i].timestamp) or now
                if not self._foldable(doc, ts, window_us):
                    return None
                doc = self._folded(doc, alerts[i], ts, now)
                plan.results.append((doc["id"], False))
            plan.writes.append((doc["id"], doc, {"if_seq_no": existing["_seq_no"],
                                                 "if_primary_term": existing["_primary_term"]}))
            return plan
        # a new group (or no folding at all): new alerts, later drafts folding into them
        newest: dict[str, Any] | None = None
        created: dict[str, dict[str, Any]] = {}
        for i in members:
            draft = alerts[i]
            ts = _us(draft.timestamp) or now
            if window_us > 0 and newest is not None and self._foldable(newest, ts, window_us):
                newest = self._folded(newest, draft, ts, now)
                plan.results.append((newest["id"], False))
            else:
                alert_id = uuid.uuid4().hex
                newest = self.new_alert_doc(alert_id, draft, ts, now)
                plan.results.append((alert_id, True))
            created[newest["id"]] = newest
        plan.writes.extend((doc_id, doc, None) for doc_id, doc in created.items())
        assert newest is not None
        plan.pointer = {"group_key": alerts[members[0]].group_key, "alert_id": newest["id"]}
        if pointer is not None:
            plan.pointer_cas = {"if_seq_no": pointer["_seq_no"],
                                "if_primary_term": pointer["_primary_term"]}
        return plan

    def _folded(self, doc: Mapping[str, Any], draft: NewAlert, ts: int, now: int
                ) -> dict[str, Any]:
        """A copy of an alert document with one more draft folded in."""
        out = dict(doc)
        merged = list(dict.fromkeys(list(out.get("event_ids", [])) + draft.event_ids))
        out["event_ids"] = merged[:MAX_ALERT_EVENT_IDS]
        out["count"] = int(out["count"]) + max(1, len(draft.event_ids))
        out["first_seen"] = min(int(out["first_seen"]), ts)
        out["last_seen"] = max(int(out["last_seen"]), ts)
        out["updated_at"] = now
        out["search_text"] = self._alert_search_text(out)
        return out

    @staticmethod
    def _foldable(src: Mapping[str, Any], ts: int, window_us: int) -> bool:
        return (src["status"] in _OPEN and int(src["last_seen"]) >= ts - window_us
                and int(src["first_seen"]) <= ts + window_us)

    def _record_one(self, draft: NewAlert, window_us: int) -> tuple[Alert, bool]:
        alerts, groups = self._ix("alerts"), self._ix("alert-groups")
        ts = _us(draft.timestamp) or _now_us()
        gid = _key(draft.group_key)
        group = self._get(groups, gid)
        target: dict[str, Any] | None = None
        if window_us > 0 and group is not None:
            hit = self._alert_hit(group["_source"]["alert_id"])
            if hit is not None and self._foldable(hit["_source"], ts, window_us):
                target = hit
            else:
                # an older alert of the group may still take a late event
                older = self._hits(alerts, {
                    "query": {"bool": {"filter": [
                        {"term": {"group_key": draft.group_key}},
                        {"terms": {"status": _OPEN}},
                        {"range": {"last_seen": {"gte": ts - window_us}}},
                        {"range": {"first_seen": {"lte": ts + window_us}}}]}},
                    "sort": [{"last_seen": "desc"}], "size": 1,
                    "seq_no_primary_term": True})
                if older:
                    target = older[0]
        now = _now_us()
        if target is not None:
            doc = self._folded(target["_source"], draft, ts, now)
            written = self._write(alerts, doc["id"], doc, cas={
                "if_seq_no": target["_seq_no"], "if_primary_term": target["_primary_term"]})
            if written is None:
                raise _Retry()
            return self._alert_from({"_source": doc, "_seq_no": written["_seq_no"],
                                     "_primary_term": written["_primary_term"]}), False
        alert_id = uuid.uuid4().hex
        doc = self.new_alert_doc(alert_id, draft, ts, now)
        written = self._write(alerts, alert_id, doc, create=True)
        if written is None:
            raise _Retry()
        pointer = {"group_key": draft.group_key, "alert_id": alert_id}
        moved = self._write(groups, gid, pointer, create=group is None, cas=None if group is None
                            else {"if_seq_no": group["_seq_no"],
                                  "if_primary_term": group["_primary_term"]})
        if moved is None:
            # another writer raised or moved the group meanwhile: fold into theirs
            with contextlib.suppress(ClusterError):
                self.client.request("DELETE", f"/{alerts}/_doc/{alert_id}")
            raise _Retry()
        return self._alert_from({"_source": doc, "_seq_no": written["_seq_no"],
                                 "_primary_term": written["_primary_term"]}), True

    def new_alert_doc(self, alert_id: str, draft: NewAlert, ts: int, now: int
                      ) -> dict[str, Any]:
        """The stored form of a new alert (also used to bulk-load benchmark data)."""
        f = draft.fields
        doc = {
            "id": alert_id, "rule_id": draft.rule_id, "rule_name": draft.rule_name,
            "severity": draft.severity.value, "severity_rank": draft.severity.rank,
            "status": AlertStatus.NEW.value, "group_key": draft.group_key,
            "first_seen": ts, "last_seen": ts, "created_at": now, "updated_at": now,
            "source": draft.source, "count": max(1, len(draft.event_ids)),
            "assignee": None, "dataset": draft.dataset,
            "host": _scalar(f.get("host.name")), "user": _scalar(f.get("user.name")),
            "source_ip": _scalar(f.get("source.ip")),
            "destination_ip": _scalar(f.get("destination.ip")),
            "case_id": None, "resolution": None, "acknowledged_at": None,
            "resolved_at": None,
            "event_ids": list(dict.fromkeys(draft.event_ids))[:MAX_ALERT_EVENT_IDS],
            "tags": list(draft.tags), "fields": f, "matched_fields": list(draft.matched_fields),
            "description": draft.description,
        }
        doc["search_text"] = self._alert_search_text(doc)
        return doc

    def update_alert(self, alert_id: str, expected_version: str, change: AlertChange) -> Alert:
        self._ready_or_raise()
        alerts = self._ix("alerts")
        hit = self._alert_hit(alert_id)
        if hit is None:
            raise NotFoundError("alert", alert_id)
        current = _version(hit)
        cas = _cas(expected_version)
        if cas is None or current != str(expected_version):
            raise ConflictError("alert", alert_id, str(expected_version), current)
        doc = dict(hit["_source"])
        now = _now_us()
        old_case = doc.get("case_id")
        if change.status is not None and change.status.value != doc["status"]:
            doc["status"] = change.status.value
            if change.status != AlertStatus.NEW and doc.get("acknowledged_at") is None:
                doc["acknowledged_at"] = now
            if not change.status.is_open:
                doc["resolved_at"] = now
            elif doc.get("resolved_at") is not None:
                doc["resolved_at"] = None
        if change.unassign:
            doc["assignee"] = None
        elif change.assignee is not None:
            doc["assignee"] = change.assignee
        if change.severity is not None:
            doc["severity"] = change.severity.value
            doc["severity_rank"] = change.severity.rank
        if change.resolution is not None:
            doc["resolution"] = change.resolution
        if change.case_id is not None:
            doc["case_id"] = change.case_id or None
        doc["updated_at"] = now
        doc["search_text"] = self._alert_search_text(doc)
        written = self._write(alerts, alert_id, doc, cas=cas)
        if written is None:
            latest = self._alert_hit(alert_id)
            raise ConflictError("alert", alert_id, str(expected_version),
                                _version(latest) if latest else "deleted")
        if doc.get("case_id") != old_case:
            if old_case:
                self._case_alert_ids(old_case, remove=[alert_id])
            if doc.get("case_id"):
                self._case_alert_ids(doc["case_id"], add=[alert_id])
        return self._alert_from({"_source": doc, "_seq_no": written["_seq_no"],
                                 "_primary_term": written["_primary_term"]})

    def _alert_filter(self, flt: AlertFilter | None) -> dict[str, Any]:
        if flt is None:
            return {"match_all": {}}
        filters: list[dict[str, Any]] = []

        def any_of(column: str, values: Sequence[Any]) -> None:
            if values:
                filters.append({"terms": {column: [str(getattr(v, "value", v))
                                                   for v in values]}})

        any_of("status", flt.statuses)
        any_of("severity", flt.severities)
        any_of("rule_id", flt.rule_ids)
        any_of("host", flt.hosts)
        any_of("user", flt.users)
        any_of("source_ip", flt.source_ips)
        any_of("destination_ip", flt.destination_ips)
        any_of("source", flt.sources)
        unassigned = {"bool": {"must_not": {"exists": {"field": "assignee"}}}}
        if flt.assignees and flt.unassigned:
            filters.append({"bool": {"should": [
                {"terms": {"assignee": [str(a) for a in flt.assignees]}}, unassigned],
                "minimum_should_match": 1}})
        elif flt.assignees:
            any_of("assignee", flt.assignees)
        elif flt.unassigned:
            filters.append(unassigned)
        if flt.case_id is not None:
            filters.append({"term": {"case_id": flt.case_id}})
        if flt.start is not None:
            filters.append({"range": {"last_seen": {"gte": _us(flt.start)}}})
        if flt.end is not None:
            filters.append({"range": {"first_seen": {"lt": _us(flt.end)}}})
        if flt.text:
            filters.append({"wildcard": {"search_text": {
                "value": f"*{_escape_wildcard(flt.text.lower())}*"}}})
        return {"bool": {"filter": filters}} if filters else {"match_all": {}}

    def list_alerts(self, flt: AlertFilter | None = None, sort: str = "last_seen",
                    descending: bool = True, limit: int = 50,
                    after: str | None = None) -> Page[Alert]:
        self._ready_or_raise()
        if sort not in ALERT_SORTS:
            raise QueryError(f"cannot sort alerts by {sort!r}; use one of "
                             f"{', '.join(ALERT_SORTS)}")
        column = _ALERT_SORT_COLUMNS[sort]
        order = "desc" if descending else "asc"
        limit = max(1, min(int(limit), 1000))
        body: dict[str, Any] = {"query": self._alert_filter(flt), "size": limit + 1,
                                "sort": [{column: order}, {"id": order}],
                                "_source": {"excludes": ["search_text"]},
                                "seq_no_primary_term": True, "track_total_hits": False}
        if after:
            value, last_id = _decode_cursor(after, 2)
            body["search_after"] = [value, last_id]
        hits = self._hits(self._ix("alerts"), body)
        items = [self._alert_from(h) for h in hits[:limit]]
        cursor = _encode_cursor(*hits[limit - 1]["sort"]) if len(hits) > limit else None
        return Page(items, cursor)

    def count_alerts(self, flt: AlertFilter | None = None, by: str = "status") -> dict[str, int]:
        self._ready_or_raise()
        column = _ALERT_COLUMNS.get(by)
        if column is None:
            raise QueryError(f"cannot count alerts by {by!r}; use one of "
                             f"{', '.join(_ALERT_COLUMNS)}")
        body = {"query": self._alert_filter(flt), "size": 0,
                "aggs": {"by": {"terms": {"field": column, "size": 10000, "missing": ""}}}}
        answer = self._search(self._ix("alerts"), body)
        return {str(b["key"]): int(b["doc_count"])
                for b in answer.get("aggregations", {}).get("by", {}).get("buckets", [])}

    def alert_histogram(self, flt: AlertFilter | None, interval: timedelta) -> list[Bucket]:
        self._ready_or_raise()
        step = int(interval.total_seconds() * 1_000_000)
        if step <= 0:
            raise QueryError("the histogram interval must be positive")
        body = {"query": self._alert_filter(flt), "size": 0,
                "aggs": {"h": {"histogram": {"field": "first_seen", "interval": step,
                                             "min_doc_count": 1}}}}
        answer = self._search(self._ix("alerts"), body)
        return [Bucket(_dt(int(b["key"])) or datetime.min, int(b["doc_count"]))
                for b in answer.get("aggregations", {}).get("h", {}).get("buckets", [])]

    # ---------------------------------------------------------------- cases
    def _case_from(self, hit: Mapping[str, Any]) -> Case:
        r = hit["_source"]
        return Case(
            id=r["id"], title=r["title"], description=r.get("description", ""),
            severity=Severity(r["severity"]), tlp=r["tlp"], status=CaseStatus(r["status"]),
            created_by=r["created_by"], created_at=_dt(r["created_at"]) or datetime.min,
            updated_at=_dt(r["updated_at"]) or datetime.min, version=_version(hit),
            assignee=r.get("assignee"), alert_ids=list(r.get("alert_ids", [])),
            tasks=[CaseTask(**t) for t in r.get("tasks", [])],
            observables=[Observable(**o) for o in r.get("observables", [])],
            tags=list(r.get("tags", [])), closed_at=_dt(r.get("closed_at")),
            extra=dict(r.get("extra", {})),
        )

    @staticmethod
    def _case_search_text(doc: Mapping[str, Any]) -> str:
        return f"{doc.get('title', '')}\n{doc.get('description', '')}".lower()[:8000]

    def _link_alerts(self, case_id: str, alert_ids: Sequence[str]) -> None:
        alerts = self._ix("alerts")
        for alert_id in alert_ids:
            for _ in range(100):
                hit = self._alert_hit(alert_id)
                if hit is None:
                    raise NotFoundError("alert", alert_id)
                doc = dict(hit["_source"])
                old = doc.get("case_id")
                doc["case_id"] = case_id
                doc["updated_at"] = _now_us()
                if self._write(alerts, alert_id, doc, cas={
                        "if_seq_no": hit["_seq_no"],
                        "if_primary_term": hit["_primary_term"]}) is not None:
                    if old and old != case_id:
                        self._case_alert_ids(old, remove=[alert_id])
                    break
            else:
                raise StoreError(f"alert {alert_id}: too many concurrent changes")

    def _case_alert_ids(self, case_id: str, add: Sequence[str] = (),
                        remove: Sequence[str] = ()) -> dict[str, Any] | None:
        """Change a case's alert list (conditional write, retried); the new hit."""
        cases = self._ix("cases")
        for _ in range(100):
            hit = self._get(cases, case_id)
            if hit is None:
                return None
            doc = dict(hit["_source"])
            ids = [i for i in doc.get("alert_ids", []) if i not in set(remove)]
            doc["alert_ids"] = list(dict.fromkeys([*ids, *add]))
            doc["updated_at"] = _now_us()
            written = self._write(cases, case_id, doc, cas={
                "if_seq_no": hit["_seq_no"], "if_primary_term": hit["_primary_term"]})
            if written is not None:
                return {"_source": doc, "_seq_no": written["_seq_no"],
                        "_primary_term": written["_primary_term"]}
        raise StoreError(f"case {case_id}: too many concurrent changes")

    def create_case(self, case: NewCase) -> Case:
        self._ready_or_raise()
        for alert_id in case.alert_ids:
            if self._alert_hit(alert_id) is None:
                raise NotFoundError("alert", alert_id)
        now = _now_us()
        case_id = datetime.now(UTC).strftime("C%Y%m%d-") + uuid.uuid4().hex[:8]
        doc: dict[str, Any] = {
            "id": case_id, "title": case.title, "description": case.description,
            "severity": case.severity.value, "tlp": case.tlp, "status": CaseStatus.OPEN.value,
            "created_by": case.created_by, "created_at": now, "updated_at": now,
            "assignee": case.assignee, "closed_at": None,
            "alert_ids": list(dict.fromkeys(case.alert_ids)),
            "tasks": [asdict(t) for t in case.tasks],
            "observables": [asdict(o) for o in case.observables],
            "tags": list(case.tags), "extra": {},
        }
        doc["search_text"] = self._case_search_text(doc)
        if self._write(self._ix("cases"), case_id, doc, create=True) is None:
            raise ConflictError("case", case_id, "new", "existing")
        self._link_alerts(case_id, case.alert_ids)
        return self.get_case(case_id)

    def get_case(self, case_id: str) -> Case:
        self._ready_or_raise()
        hit = self._get(self._ix("cases"), case_id)
        if hit is None:
            raise NotFoundError("case", case_id)
        return self._case_from(hit)

    def update_case(self, case_id: str, expected_version: str, change: CaseChange) -> Case:
        self._ready_or_raise()
        cases = self._ix("cases")
        hit = self._get(cases, case_id)
        if hit is None:
            raise NotFoundError("case", case_id)
        current = _version(hit)
        cas = _cas(expected_version)
        if cas is None or current != str(expected_version):
            raise ConflictError("case", case_id, str(expected_version), current)
        doc = dict(hit["_source"])
        now = _now_us()
        doc["updated_at"] = now
        for name in ("title", "description", "tlp"):
            value = getattr(change, name)
            if value is not None:
                doc[name] = value
        if change.severity is not None:
            doc["severity"] = change.severity.value
        if change.status is not None:
            doc["status"] = change.status.value
            closed = change.status in (CaseStatus.RESOLVED, CaseStatus.CLOSED)
            doc["closed_at"] = (doc.get("closed_at") or now) if closed else None
        if change.unassign:
            doc["assignee"] = None
        elif change.assignee is not None:
            doc["assignee"] = change.assignee
        if change.tasks is not None:
            doc["tasks"] = [asdict(t) for t in change.tasks]
        if change.observables is not None:
            doc["observables"] = [asdict(o) for o in change.observables]
        if change.tags is not None:
            doc["tags"] = list(change.tags)
        if change.extra is not None:
            doc["extra"] = dict(change.extra)
        doc["search_text"] = self._case_search_text(doc)
        written = self._write(cases, case_id, doc, cas=cas)
        if written is None:
            latest = self._get(cases, case_id)
            raise ConflictError("case", case_id, str(expected_version),
                                _version(latest) if latest else "deleted")
        return self._case_from({"_source": doc, "_seq_no": written["_seq_no"],
                                "_primary_term": written["_primary_term"]})

    def add_alerts_to_case(self, case_id: str, alert_ids: Sequence[str]) -> Case:
        self._ready_or_raise()
        if self._get(self._ix("cases"), case_id) is None:
            raise NotFoundError("case", case_id)
        self._link_alerts(case_id, alert_ids)
        hit = self._case_alert_ids(case_id, add=alert_ids)
        if hit is None:
            raise NotFoundError("case", case_id)
        return self._case_from(hit)

    def list_cases(self, flt: CaseFilter | None = None, limit: int = 50,
                   after: str | None = None) -> Page[Case]:
        self._ready_or_raise()
        filters: list[dict[str, Any]] = []
        if flt is not None:
            if flt.statuses:
                filters.append({"terms": {"status": [s.value for s in flt.statuses]}})
            if flt.severities:
                filters.append({"terms": {"severity": [s.value for s in flt.severities]}})
            if flt.assignees:
                filters.append({"terms": {"assignee": [str(a) for a in flt.assignees]}})
            if flt.text:
                filters.append({"wildcard": {"search_text": {
                    "value": f"*{_escape_wildcard(flt.text.lower())}*"}}})
        limit = max(1, min(int(limit), 1000))
        body: dict[str, Any] = {"query": {"bool": {"filter": filters}}, "size": limit + 1,
                                "sort": [{"created_at": "desc"}, {"id": "desc"}],
                                "seq_no_primary_term": True, "track_total_hits": False}
        if after:
            created, last_id = _decode_cursor(after, 2)
            body["search_after"] = [created, last_id]
        hits = self._hits(self._ix("cases"), body)
        items = [self._case_from(h) for h in hits[:limit]]
        cursor = _encode_cursor(*hits[limit - 1]["sort"]) if len(hits) > limit else None
        return Page(items, cursor)

    def add_comment(self, target_type: str, target_id: str, author: str, body: str) -> Comment:
        self._ready_or_raise()
        comment = Comment(uuid.uuid4().hex, target_type, target_id, author, body,
                          _dt(self._recorded()) or datetime.now(UTC))
        self._write(self._ix("comments"), comment.id, {
            "id": comment.id, "target_type": target_type, "target_id": target_id,
            "author": author, "body": body, "created_at": _us(comment.created_at)},
            create=True)
        return comment

    def list_comments(self, target_type: str, target_id: str) -> list[Comment]:
        self._ready_or_raise()
        hits = self._hits(self._ix("comments"), {
            "query": {"bool": {"filter": [{"term": {"target_type": target_type}},
                                          {"term": {"target_id": target_id}}]}},
            "sort": [{"created_at": "asc"}, {"id": "asc"}], "size": 10000})
        return [Comment(r["id"], r["target_type"], r["target_id"], r["author"], r["body"],
                        _dt(r["created_at"]) or datetime.min)
                for r in (h["_source"] for h in hits)]

    # ---------------------------------------------------------------- people
    @staticmethod
    def _user_doc(user: User) -> dict[str, Any]:
        doc = asdict(user)
        doc.pop("version", None)
        doc["role"] = user.role.value
        for key in ("created_at", "locked_until", "last_login"):
            if doc.get(key) is not None:
                doc[key] = doc[key].isoformat()
        return {"username": user.username, "doc": doc}

    @staticmethod
    def _user_from(hit: Mapping[str, Any]) -> User:
        doc = dict(hit["_source"]["doc"])
        doc["role"] = Role(doc["role"])
        for key in ("created_at", "locked_until", "last_login"):
            if doc.get(key):
                doc[key] = datetime.fromisoformat(doc[key])
        doc["version"] = _version(hit)
        return User(**doc)

    def create_user(self, user: User) -> User:
        self._ready_or_raise()
        if self._write(self._ix("users"), user.username, self._user_doc(user),
                       create=True) is None:
            raise ConflictError("user", user.username, "new", "existing")
        return self.get_user(user.username)

    def get_user(self, username: str) -> User:
        self._ready_or_raise()
        hit = self._get(self._ix("users"), username)
        if hit is None:
            raise NotFoundError("user", username)
        return self._user_from(hit)

    def update_user(self, user: User) -> User:
        self._ready_or_raise()
        hit = self._get(self._ix("users"), user.username)
        if hit is None:
            raise NotFoundError("user", user.username)
        cas = _cas(user.version)
        if cas is None or _version(hit) != str(user.version):
            raise ConflictError("user", user.username, str(user.version), _version(hit))
        if self._write(self._ix("users"), user.username, self._user_doc(user),
                       cas=cas) is None:
            raise ConflictError("user", user.username, str(user.version), "newer")
        return self.get_user(user.username)

    def list_users(self) -> list[User]:
        self._ready_or_raise()
        self._req("POST", f"/{self._ix('users')}/_refresh")
        hits = self._hits(self._ix("users"), {"sort": [{"username": "asc"}], "size": 10000,
                                              "seq_no_primary_term": True})
        return [self._user_from(h) for h in hits]

    @staticmethod
    def _token_from(src: Mapping[str, Any]) -> ApiToken:
        d = src["doc"]
        return ApiToken(id=d["id"], username=d["username"], name=d["name"],
                        token_hash=d["token_hash"], created_at=_dt(d["created_at"]) or
                        datetime.min, expires_at=_dt(d.get("expires_at")),
                        last_used=_dt(d.get("last_used")), revoked=bool(d.get("revoked")))

    def add_api_token(self, token: ApiToken) -> ApiToken:
        self._ready_or_raise()
        tokens = self._ix("tokens")
        token_id = token.id or uuid.uuid4().hex
        if self._write(tokens, "hash-" + _key(token.token_hash),
                       {"kind": "hash", "id": token_id}, create=True) is None:
            raise ConflictError("api token", token_id, "new", "existing")
        doc = {"kind": "token", "id": token_id, "username": token.username,
               "token_hash": token.token_hash, "created_at": _us(token.created_at),
               "doc": {"id": token_id, "username": token.username, "name": token.name,
                       "token_hash": token.token_hash, "created_at": _us(token.created_at),
                       "expires_at": _us(token.expires_at), "last_used": _us(token.last_used),
                       "revoked": token.revoked}}
        if self._write(tokens, token_id, doc, create=True) is None:
            raise ConflictError("api token", token_id, "new", "existing")
        token.id = token_id
        return token

    def find_api_token(self, token_hash: str) -> ApiToken | None:
        self._ready_or_raise()
        pointer = self._get(self._ix("tokens"), "hash-" + _key(token_hash))
        if pointer is None:
            return None
        hit = self._get(self._ix("tokens"), pointer["_source"]["id"])
        return self._token_from(hit["_source"]) if hit else None

    def list_api_tokens(self, username: str | None = None) -> list[ApiToken]:
        self._ready_or_raise()
        self._req("POST", f"/{self._ix('tokens')}/_refresh")
        filters: list[dict[str, Any]] = [{"term": {"kind": "token"}}]
        if username is not None:
            filters.append({"term": {"username": username}})
        hits = self._hits(self._ix("tokens"), {"query": {"bool": {"filter": filters}},
                                               "sort": [{"created_at": "asc"}], "size": 10000})
        return [self._token_from(h["_source"]) for h in hits]

    def _change_token(self, token_id: str, changes: Mapping[str, Any], missing_ok: bool) -> None:
        tokens = self._ix("tokens")
        for _ in range(100):
            hit = self._get(tokens, token_id)
            if hit is None or hit["_source"].get("kind") != "token":
                if missing_ok:
                    return
                raise NotFoundError("api token", token_id)
            doc = dict(hit["_source"])
            doc["doc"] = {**doc["doc"], **changes}
            if self._write(tokens, token_id, doc, cas={
                    "if_seq_no": hit["_seq_no"],
                    "if_primary_term": hit["_primary_term"]}) is not None:
                return
        raise StoreError(f"api token {token_id}: too many concurrent changes")

    def revoke_api_token(self, token_id: str) -> None:
        self._ready_or_raise()
        self._change_token(token_id, {"revoked": True}, missing_ok=False)

    def touch_api_token(self, token_id: str, when: datetime) -> None:
        self._ready_or_raise()
        self._change_token(token_id, {"last_used": _us(when)}, missing_ok=True)

    # ---------------------------------------------------------------- audit
    def append_audit(self, entry: AuditEntry) -> AuditEntry:
        self._ready_or_raise()
        entry.id = entry.id or uuid.uuid4().hex
        doc = {"id": entry.id, "recorded": self._recorded(), "at": _us(entry.at),
               "actor": entry.actor, "action": entry.action, "target_type": entry.target_type,
               "target_id": entry.target_id, "before": entry.before, "after": entry.after,
               "address": entry.address}
        if self._write(self._ix("audit"), entry.id, orjson.loads(
                orjson.dumps(doc, default=str)), create=True) is None:
            raise ConflictError("audit entry", entry.id, "new", "existing")
        return entry

    def list_audit(self, flt: AuditFilter | None = None, limit: int = 100,
                   after: str | None = None) -> Page[AuditEntry]:
        self._ready_or_raise()
        filters: list[dict[str, Any]] = []
        if flt is not None:
            for column in ("actor", "action", "target_type", "target_id"):
                value = getattr(flt, column)
                if value is not None:
                    filters.append({"term": {column: value}})
            span: dict[str, Any] = {}
            if flt.start is not None:
                span["gte"] = _us(flt.start)
            if flt.end is not None:
                span["lt"] = _us(flt.end)
            if span:
                filters.append({"range": {"at": span}})
        limit = max(1, min(int(limit), 1000))
        body: dict[str, Any] = {"query": {"bool": {"filter": filters}}, "size": limit + 1,
                                "sort": [{"recorded": "desc"}, {"id": "desc"}],
                                "track_total_hits": False}
        if after:
            recorded, last_id = _decode_cursor(after, 2)
            body["search_after"] = [recorded, last_id]
        hits = self._hits(self._ix("audit"), body)
        items = [AuditEntry(actor=r["actor"], action=r["action"], target_type=r["target_type"],
                            target_id=r["target_id"], at=_dt(r["at"]) or datetime.min,
                            before=r.get("before"), after=r.get("after"),
                            address=r.get("address"), id=r["id"])
                 for r in (h["_source"] for h in hits[:limit])]
        cursor = _encode_cursor(*hits[limit - 1]["sort"]) if len(hits) > limit else None
        return Page(items, cursor)

    # ---------------------------------------------------------------- the rest
    def get_checkpoint(self, name: str) -> dict[str, Any] | None:
        self._ready_or_raise()
        hit = self._get(self._ix("checkpoints"), _key(name))
        return dict(hit["_source"]["state"]) if hit else None

    def set_checkpoint(self, name: str, state: Mapping[str, Any]) -> None:
        self._ready_or_raise()
        self._write(self._ix("checkpoints"), _key(name), {
            "name": name, "state": orjson.loads(orjson.dumps(dict(state), default=str)),
            "updated_at": _now_us()})

    def list_checkpoints(self) -> dict[str, dict[str, Any]]:
        self._ready_or_raise()
        self._req("POST", f"/{self._ix('checkpoints')}/_refresh")
        hits = self._hits(self._ix("checkpoints"), {"sort": [{"name": "asc"}], "size": 10000})
        return {h["_source"]["name"]: dict(h["_source"]["state"]) for h in hits}

    def add_suppression(self, suppression: Suppression) -> Suppression:
        self._ready_or_raise()
        suppression.id = suppression.id or uuid.uuid4().hex
        self._write(self._ix("suppressions"), suppression.id, {
            "id": suppression.id, "rule_id": suppression.rule_id, "field": suppression.field,
            "value": suppression.value, "reason": suppression.reason,
            "created_by": suppression.created_by, "created_at": _us(suppression.created_at),
            "expires_at": _us(suppression.expires_at)})
        return suppression

    def list_suppressions(self, rule_id: str | None = None) -> list[Suppression]:
        self._ready_or_raise()
        filters: list[dict[str, Any]] = [{"bool": {"should": [
            {"bool": {"must_not": {"exists": {"field": "expires_at"}}}},
            {"range": {"expires_at": {"gt": _now_us()}}}], "minimum_should_match": 1}}]
        if rule_id is not None:
            filters.append({"terms": {"rule_id": [rule_id, "*"]}})
        hits = self._hits(self._ix("suppressions"), {
            "query": {"bool": {"filter": filters}},
            "sort": [{"created_at": "asc"}, {"id": "asc"}], "size": 10000})
        return [Suppression(id=r["id"], rule_id=r["rule_id"], field=r["field"],
                            value=r["value"], reason=r.get("reason", ""),
                            created_by=r["created_by"],
                            created_at=_dt(r["created_at"]) or datetime.min,
                            expires_at=_dt(r.get("expires_at")))
                for r in (h["_source"] for h in hits)]

    def delete_suppression(self, suppression_id: str) -> None:
        self._ready_or_raise()
        try:
            self.client.request("DELETE", f"/{self._ix('suppressions')}/_doc/"
                                f"{quote_id(suppression_id)}")
        except ClusterError as exc:
            if exc.status == 404:
                raise NotFoundError("suppression", suppression_id) from None
            raise self._translate(exc) from None

    def add_dead_letters(self, letters: Iterable[DeadLetter]) -> int:
        self._ready_or_raise()
        payload = bytearray()
        count = 0
        index = self._ix("dead-letters")
        for letter in letters:
            raw = bytes(letter.original[:MAX_DEAD_LETTER_BYTES])
            letter_id = uuid.uuid4().hex
            payload += orjson.dumps({"create": {"_index": index, "_id": letter_id}})
            payload += b"\n" + orjson.dumps({
                "id": letter_id, "recorded": self._recorded(), "source": letter.source,
                "position": letter.position, "reason": letter.reason[:2000],
                "original_b64": base64.b64encode(raw).decode(),
                "received": _us(letter.received)}) + b"\n"
            count += 1
        if not count:
            return 0
        answer = self._req("POST", "/_bulk", bytes(payload), ndjson=True)
        if answer.get("errors"):
            failed = [i for i in answer["items"] if int(i["create"]["status"]) >= 300]
            raise StoreError(f"{len(failed)} dead letters could not be stored: "
                             f"{failed[0]['create'].get('error')}")
        return count

    def list_dead_letters(self, limit: int = 100, after: str | None = None,
                          source: str | None = None) -> Page[StoredDeadLetter]:
        self._ready_or_raise()
        filters: list[dict[str, Any]] = []
        if source is not None:
            filters.append({"term": {"source": source}})
        limit = max(1, min(int(limit), 1000))
        body: dict[str, Any] = {"query": {"bool": {"filter": filters}}, "size": limit + 1,
                                "sort": [{"recorded": "desc"}, {"id": "desc"}],
                                "track_total_hits": False}
        if after:
            recorded, last_id = _decode_cursor(after, 2)
            body["search_after"] = [recorded, last_id]
        hits = self._hits(self._ix("dead-letters"), body)
        items = [StoredDeadLetter(r.get("id", h["_id"]), DeadLetter(
            r["source"], r["position"], r.get("reason", ""),
            base64.b64decode(r.get("original_b64", "")), _dt(r["received"]) or datetime.min))
            for h, r in ((h, h["_source"]) for h in hits[:limit])]
        cursor = _encode_cursor(*hits[limit - 1]["sort"]) if len(hits) > limit else None
        return Page(items, cursor)

    def count_dead_letters(self) -> int:
        self._ready_or_raise()
        return int(self._req("POST", f"/{self._ix('dead-letters')}/_count")["count"])

    def get_setting(self, key: str) -> Any:
        self._ready_or_raise()
        hit = self._get(self._ix("settings"), _key(key))
        return hit["_source"].get("value") if hit else None

    def set_setting(self, key: str, value: Any) -> None:
        self._ready_or_raise()
        index = self._ix("settings")
        if value is None:
            try:
                self.client.request("DELETE", f"/{index}/_doc/{_key(key)}")
            except ClusterError as exc:
                if exc.status != 404:
                    raise self._translate(exc) from None
            return
        self._write(index, _key(key), {"key": key, "value": orjson.loads(
            orjson.dumps(value, default=str))})

    def update_setting(self, key: str, change: Callable[[Any], Any]) -> Any:
        self._ready_or_raise()
        index, doc_id = self._ix("settings"), _key(key)
        for _ in range(_SETTING_ATTEMPTS):
            hit = self._get(index, doc_id)
            value = change(hit["_source"].get("value") if hit else None)
            cas = {"if_seq_no": hit["_seq_no"], "if_primary_term": hit["_primary_term"]} \
                if hit else None
            try:
                if value is None:
                    if hit is None:
                        return None
                    self.client.request("DELETE", f"/{index}/_doc/{doc_id}", params=cas)
                    return None
                stored = orjson.loads(orjson.dumps(value, default=str))
                self._put(index, doc_id, {"key": key, "value": stored}, create=hit is None,
                          cas=cas)
                return stored
            except ClusterError as exc:
                # 409: another writer came first (404: it removed the setting); read again
                if exc.status not in (404, 409):
                    raise self._translate(exc) from None
            time.sleep(random.random() * 0.01)
        raise ConflictError("setting", key, "latest", "changed by another writer "
                            f"{_SETTING_ATTEMPTS} times in a row")


class _Unreachable(Exception):
    """The cluster could not take these events within the retries."""

    def __init__(self, reason: str, events: list[Event],
                 partial: InsertResult | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.events = events
        #: what was stored before the cluster went away
        self.partial = partial or InsertResult()


def spool_path(base: Path, spool_dir: str) -> Path:
    path = Path(spool_dir).expanduser()
    return path if path.is_absolute() else base / path
