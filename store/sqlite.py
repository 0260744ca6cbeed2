"""The embedded SQLite engine: one file, WAL, no server — govsoc's default store.

Events are kept as JSON documents with the fields dashboards and the console filter
on most promoted to indexed columns; other fields are reached with SQLite's JSON
functions. A full-text index (FTS5) covers the registry's text fields. Each thread
gets its own connection; writes run in ``BEGIN IMMEDIATE`` transactions so several
processes (the service and a CLI command) can share the file.
"""

from __future__ import annotations

import base64
import contextlib
import os
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from govsoc.errors import (
    ConflictError,
    NotFoundError,
    QueryError,
    StoreCorruptError,
    StoreError,
    StoreUnavailableError,
)
from govsoc.events import (
    FIELDS,
    DeadLetter,
    Event,
    field_type,
    get_field,
    is_valid_field_name,
    timestamp_micros,
)
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

#: Event fields kept as indexed columns (the rest live in the JSON document).
PROMOTED: dict[str, str] = {
    "event.dataset": "dataset",
    "host.name": "host",
    "user.name": "user_name",
    "source.ip": "source_ip",
    "destination.ip": "destination_ip",
    "event.code": "code",
}

#: Text fields fed to the full-text index, from the field registry.
TEXT_FIELDS: tuple[str, ...] = tuple(f.name for f in FIELDS.values() if f.text)
_TEXT_PATHS: tuple[tuple[str, ...], ...] = tuple(tuple(n.split(".")) for n in TEXT_FIELDS)

_MIGRATIONS: list[list[str]] = [
    # 1: the initial schema
    [
        """CREATE TABLE events (
            seq INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            ts INTEGER NOT NULL,
            dataset TEXT NOT NULL,
            host TEXT, user_name TEXT, source_ip TEXT, destination_ip TEXT, code TEXT,
            doc TEXT NOT NULL)""",
        "CREATE INDEX events_ts ON events(ts, seq)",
        "CREATE INDEX events_dataset_ts ON events(dataset, ts)",
        "CREATE INDEX events_host_ts ON events(host, ts) WHERE host IS NOT NULL",
        "CREATE INDEX events_user_ts ON events(user_name, ts) WHERE user_name IS NOT NULL",
        "CREATE INDEX events_sip_ts ON events(source_ip, ts) WHERE source_ip IS NOT NULL",
        "CREATE INDEX events_dip_ts ON events(destination_ip, ts) "
        "WHERE destination_ip IS NOT NULL",
        "CREATE VIRTUAL TABLE events_text USING fts5(body, content='', "
        "tokenize='unicode61 remove_diacritics 2')",
        """CREATE TABLE alerts (
            id TEXT PRIMARY KEY,
            rule_id TEXT NOT NULL, rule_name TEXT NOT NULL,
            severity TEXT NOT NULL, severity_rank INTEGER NOT NULL,
            status TEXT NOT NULL, group_key TEXT NOT NULL,
            first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
            created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
            version INTEGER NOT NULL, source TEXT NOT NULL, count INTEGER NOT NULL,
            assignee TEXT, dataset TEXT, host TEXT, user_name TEXT,
            source_ip TEXT, destination_ip TEXT, case_id TEXT, resolution TEXT,
            acknowledged_at INTEGER, resolved_at INTEGER,
            doc TEXT NOT NULL)""",
        "CREATE INDEX alerts_group ON alerts(group_key, last_seen)",
        "CREATE INDEX alerts_last_seen ON alerts(last_seen, id)",
        "CREATE INDEX alerts_first_seen ON alerts(first_seen, id)",
        "CREATE INDEX alerts_created ON alerts(created_at, id)",
        "CREATE INDEX alerts_status_last ON alerts(status, last_seen, id)",
        "CREATE INDEX alerts_rule ON alerts(rule_id, last_seen)",
        "CREATE INDEX alerts_host ON alerts(host) WHERE host IS NOT NULL",
        "CREATE INDEX alerts_case ON alerts(case_id) WHERE case_id IS NOT NULL",
        """CREATE TABLE cases (
            id TEXT PRIMARY KEY, title TEXT NOT NULL, description TEXT NOT NULL,
            severity TEXT NOT NULL, tlp TEXT NOT NULL, status TEXT NOT NULL,
            created_by TEXT NOT NULL, created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL, version INTEGER NOT NULL,
            assignee TEXT, closed_at INTEGER, doc TEXT NOT NULL)""",
        "CREATE INDEX cases_created ON cases(created_at, id)",
        """CREATE TABLE comments (
            id TEXT PRIMARY KEY, target_type TEXT NOT NULL, target_id TEXT NOT NULL,
            author TEXT NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL)""",
        "CREATE INDEX comments_target ON comments(target_type, target_id, created_at)",
        """CREATE TABLE users (
            username TEXT PRIMARY KEY, version INTEGER NOT NULL, doc TEXT NOT NULL)""",
        """CREATE TABLE api_tokens (
            id TEXT PRIMARY KEY, username TEXT NOT NULL, name TEXT NOT NULL,
            token_hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL,
            expires_at INTEGER, last_used INTEGER, revoked INTEGER NOT NULL DEFAULT 0)""",
        """CREATE TABLE audit (
            seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, at INTEGER NOT NULL,
            actor TEXT NOT NULL, action TEXT NOT NULL, target_type TEXT NOT NULL,
            target_id TEXT NOT NULL, before TEXT, after TEXT, address TEXT)""",
        "CREATE INDEX audit_target ON audit(target_type, target_id, seq)",
        "CREATE INDEX audit_actor ON audit(actor, seq)",
        """CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
        """CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END""",
        """CREATE TABLE checkpoints (
            name TEXT PRIMARY KEY, state TEXT NOT NULL, updated_at INTEGER NOT NULL)""",
        """CREATE TABLE suppressions (
            id TEXT PRIMARY KEY, rule_id TEXT NOT NULL, field TEXT NOT NULL,
            value TEXT NOT NULL, reason TEXT NOT NULL, created_by TEXT NOT NULL,
            created_at INTEGER NOT NULL, expires_at INTEGER)""",
        """CREATE TABLE dead_letters (
            seq INTEGER PRIMARY KEY, source TEXT NOT NULL, position TEXT NOT NULL,
            reason TEXT NOT NULL, original BLOB NOT NULL, received INTEGER NOT NULL)""",
        "CREATE INDEX dead_letters_source ON dead_letters(source, seq)",
        "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ],
    # 2: the dashboard's grouped counts and histogram read one covering index over
    # the time range instead of the alert rows
    [
        "CREATE INDEX alerts_dashboard ON alerts(last_seen, status, severity, rule_id, "
        "host, source, first_seen)",
    ],
]

SCHEMA_VERSION = len(_MIGRATIONS)

#: Largest dead-letter original kept, so one giant line cannot bloat the store.
MAX_DEAD_LETTER_BYTES = 1 << 20

_ALERT_COLUMNS = {
    "status": "status", "severity": "severity", "rule_id": "rule_id", "host": "host",
    "source": "source", "assignee": "assignee", "user": "user_name",
    "source_ip": "source_ip", "destination_ip": "destination_ip", "dataset": "dataset",
    "rule_name": "rule_name",
}
_ALERT_SORT_COLUMNS = {
    "last_seen": "last_seen", "first_seen": "first_seen", "severity": "severity_rank",
    "count": "count", "created_at": "created_at",
}


def _us(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def _dt(value: int | None) -> datetime | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value // 1_000_000, UTC).replace(
        microsecond=value % 1_000_000)


def _now_us() -> int:
    return _us(datetime.now(UTC)) or 0


def _encode_cursor(*values: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(values))).decode().rstrip("=")


def _decode_cursor(cursor: str, size: int) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, orjson.JSONDecodeError) as exc:
        raise QueryError(f"invalid cursor {cursor[:40]!r}") from exc
    if not isinstance(values, list) or len(values) != size:
        raise QueryError(f"invalid cursor {cursor[:40]!r}")
    return values


def _json_path(name: str) -> str:
    if not is_valid_field_name(name):
        raise QueryError(f"invalid field name {name[:80]!r}")
    return "$" + "".join(f'."{part}"' for part in name.split("."))


def _text_groups() -> tuple[tuple[str, tuple[tuple[str, ...], ...]], ...]:
    groups: dict[str, list[tuple[str, ...]]] = {}
    for path in _TEXT_PATHS:
        groups.setdefault(path[0], []).append(path[1:])
    return tuple((top, tuple(rests)) for top, rests in groups.items())


#: The text paths grouped by their top-level key, so absent groups cost one lookup.
_TEXT_GROUPS = _text_groups()


def _text_body(event: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for top, rests in _TEXT_GROUPS:
        root = event.get(top)
        if root is None:
            continue
        for rest in rests:
            value: Any = root
            for part in rest:
                value = value.get(part) if type(value) is dict else None
                if value is None:
                    break
            if value is None:
                continue
            if type(value) is str:
                parts.append(value)
            elif isinstance(value, list):
                parts.extend(str(v) for v in value)
            else:
                parts.append(str(value))
    return "\n".join(parts)


def _fts_query(text: str) -> str:
    """Free text as an FTS5 query: each whitespace-separated word a quoted phrase,
    so user input can never be read as FTS syntax."""
    words = [w for w in text.split() if w.strip()]
    if not words:
        raise QueryError("empty search text")
    return " AND ".join('"' + w.replace('"', '""') + '"' for w in words)


def _typed_value(name: str, value: Any) -> Any:
    type_ = field_type(name)
    if type_ in ("long", "integer") and isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            return value
    if type_ in ("float", "double") and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if type_ == "boolean" and isinstance(value, str):
        return 1 if value.lower() == "true" else 0 if value.lower() == "false" else value
    return value


class SQLiteStore(Store):
    """The Store contract on one SQLite file."""

    engine = "sqlite"

    def __init__(self, path: str | os.PathLike[str], *, fulltext: bool = True) -> None:
        self.path = Path(path)
        self.fulltext = fulltext
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailableError(
                f"cannot create the data directory {self.path.parent}: {exc.strerror}; "
                "choose a writable --data-dir") from None
        if not os.access(self.path.parent, os.W_OK):
            raise StoreUnavailableError(
                f"the data directory {self.path.parent} is not writable; "
                "choose a writable --data-dir or fix its permissions")
        self._migrate()

    # connections -----------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA busy_timeout=30000")
            # 16 KiB pages for a new file (an existing one keeps its size): event
            # documents of ~0.5 KiB and six indexes write a fifth less CPU and a third
            # less I/O than with 4 KiB pages (bench/bench_ingest.py)
            conn.execute("PRAGMA page_size=16384")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA cache_size=-65536")
            conn.execute("PRAGMA temp_store=MEMORY")
            conn.execute("PRAGMA mmap_size=67108864")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            text = str(exc)
            if "not a database" in text or "malformed" in text or "corrupt" in text:
                raise StoreCorruptError(
                    f"{self.path} is not a readable SQLite database ({text}). Move it aside "
                    f"and recover what can be saved with `sqlite3 {self.path} .recover`, "
                    "or start with an empty data dir") from None
            raise StoreUnavailableError(f"cannot open {self.path}: {text}") from None
        return conn

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError("the store is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise self._translate(exc) from None
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            try:
                conn.execute("COMMIT")
            except sqlite3.DatabaseError as exc:
                conn.execute("ROLLBACK")
                raise self._translate(exc) from None

    def _translate(self, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        if "malformed" in text or "not a database" in text:
            return StoreCorruptError(f"{self.path} is damaged ({text}); recover it with "
                                     f"`sqlite3 {self.path} .recover`")
        if "readonly" in text or "unable to open" in text or "disk I/O" in text:
            return StoreUnavailableError(f"cannot write {self.path}: {text}")
        if "locked" in text or "busy" in text:
            return StoreUnavailableError(f"{self.path} stayed locked by another writer: {text}")
        return StoreError(f"{self.path}: {text}")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise self._translate(exc) from None

    def _migrate(self) -> None:
        conn = self._conn
        try:
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            if current > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has schema version {current}, newer than this govsoc "
                    f"({SCHEMA_VERSION}); upgrade govsoc")
            if current == SCHEMA_VERSION:
                return
            conn.execute("BEGIN IMMEDIATE")
            current = conn.execute("PRAGMA user_version").fetchone()[0]
            for version in range(current, SCHEMA_VERSION):
                for statement in _MIGRATIONS[version]:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise self._translate(exc) from None

    def schema_version(self) -> int:
        return int(self._query("PRAGMA user_version")[0][0])

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._connections.clear()
        self._closed = True
        self._local = threading.local()

    # events ------------------------------------------------------------------
    def insert_events(self, events: Sequence[Event]) -> InsertResult:
        result = InsertResult()
        if not events:
            return result
        rows: list[tuple[Any, ...]] = []
        texts: list[str] = []
        ids: list[str] = []
        seen: set[str] = set()
        for event in events:
            eid = _event_id_of(event)
            if eid in seen:
                result.duplicates += 1
                continue
            seen.add(eid)
            ids.append(eid)
            ev = event["event"]
            host = event.get("host")
            user = event.get("user")
            src = event.get("source")
            dst = event.get("destination")
            rows.append((
                eid,
                _micros(event["@timestamp"]),
                ev.get("dataset"),
                host.get("name") if type(host) is dict else None,
                _scalar(user.get("name")) if type(user) is dict else None,
                src.get("ip") if type(src) is dict else None,
                dst.get("ip") if type(dst) is dict else None,
                _scalar(ev.get("code")),
                orjson.dumps(event, default=str).decode(),
            ))
            if self.fulltext:
                texts.append(_text_body(event))
        try:
            with self._write() as conn:
                first_seq = conn.execute(
                    "SELECT coalesce(max(seq), 0) + 1 FROM events").fetchone()[0]
                before = conn.total_changes
                conn.executemany(
                    "INSERT OR IGNORE INTO events (id, ts, dataset, host, user_name, source_ip, "
                    "destination_ip, code, doc) VALUES (?,?,?,?,?,?,?,?,?)", rows)
                inserted = conn.total_changes - before
                if inserted == len(rows):
                    result.new_ids = ids
                    seqs: Iterable[int] = range(first_seq, first_seq + len(ids))
                    bodies = texts
                else:
                    # some ids were stored before: find which rows are new, by their seq
                    new_seq = dict(conn.execute(
                        "SELECT id, seq FROM events WHERE seq >= ?", [first_seq]).fetchall())
                    keep = [i for i, eid in enumerate(ids) if eid in new_seq]
                    result.new_ids = [ids[i] for i in keep]
                    seqs = [new_seq[ids[i]] for i in keep]
                    bodies = [texts[i] for i in keep] if self.fulltext else []
                if self.fulltext and result.new_ids:
                    conn.executemany("INSERT INTO events_text (rowid, body) VALUES (?, ?)",
                                     zip(seqs, bodies, strict=True))
        except sqlite3.Error as exc:
            raise self._translate(exc) from None
        result.stored = len(result.new_ids)
        result.duplicates += len(ids) - result.stored
        return result

    def _event_where(self, query: EventQuery) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if query.start is not None:
            clauses.append("e.ts >= ?")
            params.append(_us(query.start))
        if query.end is not None:
            clauses.append("e.ts < ?")
            params.append(_us(query.end))
        if query.datasets:
            clauses.append(f"e.dataset IN ({','.join('?' * len(query.datasets))})")
            params.extend(query.datasets)
        for name, values in query.filters.items():
            values = list(values) if isinstance(values, list | tuple | set) else [values]
            if not values:
                continue
            typed = [_typed_value(name, v) for v in values]
            marks = ",".join("?" * len(typed))
            column = PROMOTED.get(name)
            if column:
                clauses.append(f"e.{column} IN ({marks})")
            else:
                clauses.append("EXISTS (SELECT 1 FROM json_each(e.doc, ?) AS j "
                               f"WHERE j.value IN ({marks}))")
                params.append(_json_path(name))
            params.extend(typed)
        if query.text:
            if self.fulltext:
                clauses.append("e.seq IN (SELECT rowid FROM events_text WHERE events_text "
                               "MATCH ?)")
                params.append(_fts_query(query.text))
            else:
                clauses.append("instr(lower(e.doc), lower(?)) > 0")
                params.append(query.text)
        return clauses, params

    def search_events(self, query: EventQuery) -> Page[Event]:
        clauses, params = self._event_where(query)
        order = "DESC" if query.descending else "ASC"
        if query.after:
            ts, seq = _decode_cursor(query.after, 2)
            clauses.append("(e.ts, e.seq) < (?, ?)" if query.descending else
                           "(e.ts, e.seq) > (?, ?)")
            params.extend([ts, seq])
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        limit = max(1, min(int(query.limit), 10000))
        rows = self._query(f"SELECT e.ts, e.seq, e.doc FROM events e {where} "
                           f"ORDER BY e.ts {order}, e.seq {order} LIMIT ?", [*params, limit + 1])
        items = [orjson.loads(r[2]) for r in rows[:limit]]
        cursor = _encode_cursor(rows[limit - 1][0], rows[limit - 1][1]) \
            if len(rows) > limit else None
        return Page(items, cursor)

    def count_events(self, query: EventQuery) -> int:
        clauses, params = self._event_where(query)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        return int(self._query(f"SELECT count(*) FROM events e {where}", params)[0][0])

    def get_events(self, ids: Sequence[str]) -> list[Event]:
        found: dict[str, Event] = {}
        wanted = list(dict.fromkeys(ids))
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            for row in self._query(
                    f"SELECT id, doc FROM events WHERE id IN ({','.join('?' * len(chunk))})",
                    chunk):
                found[row[0]] = orjson.loads(row[1])
        return [found[i] for i in wanted if i in found]

    def top_terms(self, field_name: str, query: EventQuery | None = None,
                  size: int = 10) -> list[TermCount]:
        clauses, params = self._event_where(query or EventQuery())
        column = PROMOTED.get(field_name)
        where_parts = list(clauses)
        if column:
            expr = f"e.{column}"
            source = "events e"
        else:
            expr = "j.value"
            source = "events e, json_each(e.doc, ?) AS j"
            params = [_json_path(field_name), *params]
        where_parts.append(f"{expr} IS NOT NULL")
        where = f"WHERE {' AND '.join(where_parts)}"
        rows = self._query(f"SELECT {expr} AS v, count(*) AS n FROM {source} {where} "
                           f"GROUP BY v ORDER BY n DESC, v LIMIT ?",
                           [*params, max(1, min(size, 10000))])
        return [TermCount(r[0], int(r[1])) for r in rows]

    def date_histogram(self, query: EventQuery, interval: timedelta) -> list[Bucket]:
        step = int(interval.total_seconds() * 1_000_000)
        if step <= 0:
            raise QueryError("the histogram interval must be positive")
        clauses, params = self._event_where(query)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._query(f"SELECT (e.ts / ?) * ? AS b, count(*) FROM events e {where} "
                           f"GROUP BY b ORDER BY b", [step, step, *params])
        return [Bucket(_dt(int(r[0])) or datetime.min, int(r[1])) for r in rows]

    def tail_events(self, cursor: str | None, limit: int = 1000) -> tuple[list[Event], str]:
        after = 0
        if cursor:
            try:
                after = int(cursor)
            except ValueError:
                raise QueryError(f"invalid tail cursor {cursor[:40]!r}") from None
        rows = self._query("SELECT seq, doc FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                           [after, max(1, limit)])
        if not rows:
            return [], str(after)
        return [orjson.loads(r[1]) for r in rows], str(rows[-1][0])

    def tail_start(self) -> str:
        return str(self._query("SELECT coalesce(max(seq), 0) FROM events")[0][0])

    # alerts --------------------------------------------------------------------
    def record_alerts(self, alerts: Sequence[NewAlert],
                      window: timedelta) -> list[tuple[Alert, bool]]:
        out: list[tuple[Alert, bool]] = []
        window_us = int(window.total_seconds() * 1_000_000)
        open_statuses = [s.value for s in AlertStatus if s.is_open]
        marks = ",".join("?" * len(open_statuses))
        try:
            with self._write() as conn:
                ids: list[tuple[str, bool]] = []
                for draft in alerts:
                    ts = _us(draft.timestamp) or _now_us()
                    row = conn.execute(
                        f"SELECT id, first_seen, last_seen, doc FROM alerts "
                        f"WHERE group_key = ? AND status IN ({marks}) "
                        f"AND last_seen >= ? AND first_seen <= ? "
                        f"ORDER BY last_seen DESC LIMIT 1",
                        [draft.group_key, *open_statuses, ts - window_us, ts + window_us],
                    ).fetchone() if window_us > 0 else None
                    now = _now_us()
                    if row is not None:
                        doc = orjson.loads(row[3])
                        merged = list(dict.fromkeys(doc["event_ids"] + draft.event_ids))
                        doc["event_ids"] = merged[:MAX_ALERT_EVENT_IDS]
                        conn.execute(
                            "UPDATE alerts SET count = count + ?, first_seen = min(first_seen, ?),"
                            " last_seen = max(last_seen, ?), updated_at = ?, "
                            "version = version + 1, doc = ? WHERE id = ?",
                            [max(1, len(draft.event_ids)), ts, ts, now,
                             orjson.dumps(doc).decode(), row[0]])
                        ids.append((row[0], False))
                        continue
                    alert_id = uuid.uuid4().hex
                    f = draft.fields
                    doc = {
                        "event_ids": list(dict.fromkeys(draft.event_ids))[:MAX_ALERT_EVENT_IDS],
                        "tags": draft.tags, "fields": f,
                        "matched_fields": draft.matched_fields,
                        "description": draft.description,
                    }
                    conn.execute(
                        "INSERT INTO alerts (id, rule_id, rule_name, severity, severity_rank, "
                        "status, group_key, first_seen, last_seen, created_at, updated_at, "
                        "version, source, count, dataset, host, user_name, source_ip, "
                        "destination_ip, doc) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        [alert_id, draft.rule_id, draft.rule_name, draft.severity.value,
                         draft.severity.rank, AlertStatus.NEW.value, draft.group_key, ts, ts,
                         now, now, 1, draft.source, max(1, len(draft.event_ids)),
                         draft.dataset, _scalar(f.get("host.name")),
                         _scalar(f.get("user.name")), _scalar(f.get("source.ip")),
                         _scalar(f.get("destination.ip")), orjson.dumps(doc).decode()])
                    ids.append((alert_id, True))
                for alert_id, created in ids:
                    out.append((self._alert_from_row(conn.execute(
                        "SELECT * FROM alerts WHERE id = ?", [alert_id]).fetchone()), created))
        except sqlite3.Error as exc:
            raise self._translate(exc) from None
        return out

    def _alert_from_row(self, row: sqlite3.Row | tuple[Any, ...] | None) -> Alert:
        if row is None:
            raise NotFoundError("alert", "?")
        r = dict(zip(_ALERT_ROW, row, strict=True))
        doc = orjson.loads(r["doc"])
        return Alert(
            id=r["id"], rule_id=r["rule_id"], rule_name=r["rule_name"],
            severity=Severity(r["severity"]), status=AlertStatus(r["status"]),
            group_key=r["group_key"], first_seen=_dt(r["first_seen"]) or datetime.min,
            last_seen=_dt(r["last_seen"]) or datetime.min,
            created_at=_dt(r["created_at"]) or datetime.min,
            updated_at=_dt(r["updated_at"]) or datetime.min, version=str(r["version"]),
            source=r["source"], count=r["count"], assignee=r["assignee"],
            event_ids=doc.get("event_ids", []), tags=doc.get("tags", []),
            dataset=r["dataset"], description=doc.get("description", ""),
            fields=doc.get("fields", {}), matched_fields=doc.get("matched_fields", []),
            host=r["host"], user=r["user_name"], source_ip=r["source_ip"],
            destination_ip=r["destination_ip"], resolution=r["resolution"],
            case_id=r["case_id"], acknowledged_at=_dt(r["acknowledged_at"]),
            resolved_at=_dt(r["resolved_at"]),
        )

    def get_alert(self, alert_id: str) -> Alert:
        rows = self._query("SELECT * FROM alerts WHERE id = ?", [alert_id])
        if not rows:
            raise NotFoundError("alert", alert_id)
        return self._alert_from_row(rows[0])

    def update_alert(self, alert_id: str, expected_version: str, change: AlertChange) -> Alert:
        try:
            with self._write() as conn:
                row = conn.execute("SELECT * FROM alerts WHERE id = ?", [alert_id]).fetchone()
                if row is None:
                    raise NotFoundError("alert", alert_id)
                current = self._alert_from_row(row)
                if current.version != str(expected_version):
                    raise ConflictError("alert", alert_id, str(expected_version), current.version)
                sets: dict[str, Any] = {}
                now = _now_us()
                if change.status is not None and change.status != current.status:
                    sets["status"] = change.status.value
                    if change.status != AlertStatus.NEW and current.acknowledged_at is None:
                        sets["acknowledged_at"] = now
                    if not change.status.is_open:
                        sets["resolved_at"] = now
                    elif current.resolved_at is not None:
                        sets["resolved_at"] = None
                if change.unassign:
                    sets["assignee"] = None
                elif change.assignee is not None:
                    sets["assignee"] = change.assignee
                if change.severity is not None:
                    sets["severity"] = change.severity.value
                    sets["severity_rank"] = change.severity.rank
                if change.resolution is not None:
                    sets["resolution"] = change.resolution
                if change.case_id is not None:
                    sets["case_id"] = change.case_id or None
                sets["updated_at"] = now
                assignments = ", ".join(f"{k} = ?" for k in sets)
                conn.execute(f"UPDATE alerts SET {assignments}, version = version + 1 "
                             f"WHERE id = ?", [*sets.values(), alert_id])
                return self._alert_from_row(
                    conn.execute("SELECT * FROM alerts WHERE id = ?", [alert_id]).fetchone())
        except sqlite3.Error as exc:
            raise self._translate(exc) from None

    def _alert_where(self, flt: AlertFilter | None) -> tuple[list[str], list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if flt is None:
            return clauses, params

        def any_of(column: str, values: Sequence[Any]) -> None:
            if values:
                clauses.append(f"{column} IN ({','.join('?' * len(values))})")
                params.extend(str(getattr(v, "value", v)) for v in values)

        any_of("status", flt.statuses)
        any_of("severity", flt.severities)
        any_of("rule_id", flt.rule_ids)
        any_of("host", flt.hosts)
        any_of("user_name", flt.users)
        any_of("source_ip", flt.source_ips)
        any_of("destination_ip", flt.destination_ips)
        any_of("source", flt.sources)
        if flt.assignees and flt.unassigned:
            clauses.append(f"(assignee IN ({','.join('?' * len(flt.assignees))}) "
                           "OR assignee IS NULL)")
            params.extend(flt.assignees)
        elif flt.assignees:
            any_of("assignee", flt.assignees)
        elif flt.unassigned:
            clauses.append("assignee IS NULL")
        if flt.case_id is not None:
            clauses.append("case_id = ?")
            params.append(flt.case_id)
        if flt.start is not None:
            clauses.append("last_seen >= ?")
            params.append(_us(flt.start))
        if flt.end is not None:
            clauses.append("first_seen < ?")
            params.append(_us(flt.end))
        if flt.text:
            needle = flt.text.lower()
            clauses.append("(instr(lower(rule_name), ?) > 0 OR instr(lower(rule_id), ?) > 0 "
                           "OR instr(lower(coalesce(host, '')), ?) > 0 "
                           "OR instr(lower(coalesce(user_name, '')), ?) > 0 "
                           "OR instr(lower(doc), ?) > 0)")
            params.extend([needle] * 5)
        return clauses, params

    def list_alerts(self, flt: AlertFilter | None = None, sort: str = "last_seen",
                    descending: bool = True, limit: int = 50,
                    after: str | None = None) -> Page[Alert]:
        if sort not in ALERT_SORTS:
            raise QueryError(f"cannot sort alerts by {sort!r}; use one of "
                             f"{', '.join(ALERT_SORTS)}")
        column = _ALERT_SORT_COLUMNS[sort]
        clauses, params = self._alert_where(flt)
        order = "DESC" if descending else "ASC"
        if after:
            value, last_id = _decode_cursor(after, 2)
            clauses.append(f"({column}, id) {'<' if descending else '>'} (?, ?)")
            params.extend([value, last_id])
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        limit = max(1, min(int(limit), 1000))
        rows = self._query(f"SELECT * FROM alerts {where} ORDER BY {column} {order}, id {order} "
                           f"LIMIT ?", [*params, limit + 1])
        items = [self._alert_from_row(r) for r in rows[:limit]]
        cursor = None
        if len(rows) > limit:
            last = dict(zip(_ALERT_ROW, rows[limit - 1], strict=True))
            cursor = _encode_cursor(last[column], last["id"])
        return Page(items, cursor)

    def count_alerts(self, flt: AlertFilter | None = None, by: str = "status") -> dict[str, int]:
        column = _ALERT_COLUMNS.get(by)
        if column is None:
            raise QueryError(f"cannot count alerts by {by!r}; use one of "
                             f"{', '.join(_ALERT_COLUMNS)}")
        clauses, params = self._alert_where(flt)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._query(f"SELECT {column}, count(*) FROM alerts {where} GROUP BY {column} "
                           f"ORDER BY count(*) DESC", params)
        return {("" if r[0] is None else str(r[0])): int(r[1]) for r in rows}

    def alert_histogram(self, flt: AlertFilter | None, interval: timedelta) -> list[Bucket]:
        step = int(interval.total_seconds() * 1_000_000)
        if step <= 0:
            raise QueryError("the histogram interval must be positive")
        clauses, params = self._alert_where(flt)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._query(f"SELECT (first_seen / ?) * ? AS b, count(*) FROM alerts {where} "
                           f"GROUP BY b ORDER BY b", [step, step, *params])
        return [Bucket(_dt(int(r[0])) or datetime.min, int(r[1])) for r in rows]

    # cases ---------------------------------------------------------------------
    def _case_from_row(self, row: Any, conn: sqlite3.Connection | None = None) -> Case:
        r = dict(zip(_CASE_ROW, row, strict=True))
        doc = orjson.loads(r["doc"])
        alert_ids = [a[0] for a in (conn or self._conn).execute(
            "SELECT id FROM alerts WHERE case_id = ? ORDER BY first_seen, id", [r["id"]])]
        return Case(
            id=r["id"], title=r["title"], description=r["description"],
            severity=Severity(r["severity"]), tlp=r["tlp"], status=CaseStatus(r["status"]),
            created_by=r["created_by"], created_at=_dt(r["created_at"]) or datetime.min,
            updated_at=_dt(r["updated_at"]) or datetime.min, version=str(r["version"]),
            assignee=r["assignee"], alert_ids=alert_ids,
            tasks=[CaseTask(**t) for t in doc.get("tasks", [])],
            observables=[Observable(**o) for o in doc.get("observables", [])],
            tags=doc.get("tags", []), closed_at=_dt(r["closed_at"]),
            extra=doc.get("extra", {}),
        )

    @staticmethod
    def _case_doc(tasks: list[CaseTask], observables: list[Observable], tags: list[str],
                  extra: dict[str, Any]) -> str:
        return orjson.dumps({"tasks": [asdict(t) for t in tasks],
                             "observables": [asdict(o) for o in observables],
                             "tags": tags, "extra": extra}, default=str).decode()

    def create_case(self, case: NewCase) -> Case:
        now = _now_us()
        case_id = datetime.now(UTC).strftime("C%Y%m%d-") + uuid.uuid4().hex[:8]
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO cases (id, title, description, severity, tlp, status, "
                    "created_by, created_at, updated_at, version, assignee, doc) "
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    [case_id, case.title, case.description, case.severity.value, case.tlp,
                     CaseStatus.OPEN.value, case.created_by, now, now, 1, case.assignee,
                     self._case_doc(case.tasks, case.observables, case.tags, {})])
                self._link_alerts(conn, case_id, case.alert_ids)
                return self._case_from_row(
                    conn.execute("SELECT * FROM cases WHERE id = ?", [case_id]).fetchone(), conn)
        except sqlite3.Error as exc:
            raise self._translate(exc) from None

    def _link_alerts(self, conn: sqlite3.Connection, case_id: str,
                     alert_ids: Sequence[str]) -> None:
        for alert_id in alert_ids:
            cur = conn.execute("UPDATE alerts SET case_id = ?, version = version + 1, "
                               "updated_at = ? WHERE id = ?", [case_id, _now_us(), alert_id])
            if cur.rowcount == 0:
                raise NotFoundError("alert", alert_id)

    def get_case(self, case_id: str) -> Case:
        rows = self._query("SELECT * FROM cases WHERE id = ?", [case_id])
        if not rows:
            raise NotFoundError("case", case_id)
        return self._case_from_row(rows[0])

    def update_case(self, case_id: str, expected_version: str, change: CaseChange) -> Case:
        try:
            with self._write() as conn:
                row = conn.execute("SELECT * FROM cases WHERE id = ?", [case_id]).fetchone()
                if row is None:
                    raise NotFoundError("case", case_id)
                current = self._case_from_row(row, conn)
                if current.version != str(expected_version):
                    raise ConflictError("case", case_id, str(expected_version), current.version)
                sets: dict[str, Any] = {"updated_at": _now_us()}
                for name in ("title", "description", "tlp"):
                    value = getattr(change, name)
                    if value is not None:
                        sets[name] = value
                if change.severity is not None:
                    sets["severity"] = change.severity.value
                if change.status is not None:
                    sets["status"] = change.status.value
                    closed = change.status in (CaseStatus.RESOLVED, CaseStatus.CLOSED)
                    sets["closed_at"] = (current.closed_at and _us(current.closed_at)) or \
                        _now_us() if closed else None
                if change.unassign:
                    sets["assignee"] = None
                elif change.assignee is not None:
                    sets["assignee"] = change.assignee
                sets["doc"] = self._case_doc(
                    change.tasks if change.tasks is not None else current.tasks,
                    change.observables if change.observables is not None
                    else current.observables,
                    change.tags if change.tags is not None else current.tags,
                    change.extra if change.extra is not None else current.extra)
                assignments = ", ".join(f"{k} = ?" for k in sets)
                conn.execute(f"UPDATE cases SET {assignments}, version = version + 1 "
                             f"WHERE id = ?", [*sets.values(), case_id])
                return self._case_from_row(
                    conn.execute("SELECT * FROM cases WHERE id = ?", [case_id]).fetchone(), conn)
        except sqlite3.Error as exc:
            raise self._translate(exc) from None

    def add_alerts_to_case(self, case_id: str, alert_ids: Sequence[str]) -> Case:
        try:
            with self._write() as conn:
                if conn.execute("SELECT 1 FROM cases WHERE id = ?", [case_id]).fetchone() is None:
                    raise NotFoundError("case", case_id)
                self._link_alerts(conn, case_id, alert_ids)
                conn.execute("UPDATE cases SET version = version + 1, updated_at = ? "
                             "WHERE id = ?", [_now_us(), case_id])
                return self._case_from_row(
                    conn.execute("SELECT * FROM cases WHERE id = ?", [case_id]).fetchone(), conn)
        except sqlite3.Error as exc:
            raise self._translate(exc) from None

    def list_cases(self, flt: CaseFilter | None = None, limit: int = 50,
                   after: str | None = None) -> Page[Case]:
        clauses: list[str] = []
        params: list[Any] = []
        if flt is not None:
            if flt.statuses:
                clauses.append(f"status IN ({','.join('?' * len(flt.statuses))})")
                params.extend(s.value for s in flt.statuses)
            if flt.severities:
                clauses.append(f"severity IN ({','.join('?' * len(flt.severities))})")
                params.extend(s.value for s in flt.severities)
            if flt.assignees:
                clauses.append(f"assignee IN ({','.join('?' * len(flt.assignees))})")
                params.extend(flt.assignees)
            if flt.text:
                clauses.append("(instr(lower(title), ?) > 0 OR instr(lower(description), ?) > 0)")
                params.extend([flt.text.lower()] * 2)
        if after:
            created, last_id = _decode_cursor(after, 2)
            clauses.append("(created_at, id) < (?, ?)")
            params.extend([created, last_id])
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        limit = max(1, min(int(limit), 1000))
        rows = self._query(f"SELECT * FROM cases {where} ORDER BY created_at DESC, id DESC "
                           f"LIMIT ?", [*params, limit + 1])
        items = [self._case_from_row(r) for r in rows[:limit]]
        cursor = None
        if len(rows) > limit:
            last = dict(zip(_CASE_ROW, rows[limit - 1], strict=True))
            cursor = _encode_cursor(last["created_at"], last["id"])
        return Page(items, cursor)

    def add_comment(self, target_type: str, target_id: str, author: str, body: str) -> Comment:
        comment = Comment(uuid.uuid4().hex, target_type, target_id, author, body,
                          datetime.now(UTC))
        try:
            with self._write() as conn:
                conn.execute("INSERT INTO comments VALUES (?,?,?,?,?,?)",
                             [comment.id, target_type, target_id, author, body,
                              _us(comment.created_at)])
        except sqlite3.Error as exc:
            raise self._translate(exc) from None
        return comment

    def list_comments(self, target_type: str, target_id: str) -> list[Comment]:
        rows = self._query("SELECT * FROM comments WHERE target_type = ? AND target_id = ? "
                           "ORDER BY created_at, id", [target_type, target_id])
        return [Comment(r[0], r[1], r[2], r[3], r[4], _dt(r[5]) or datetime.min) for r in rows]

    # people ----------------------------------------------------------------------
    @staticmethod
    def _user_doc(user: User) -> str:
        doc = asdict(user)
        doc.pop("version", None)
        return orjson.dumps(doc, default=str).decode()

    @staticmethod
    def _user_from(doc_text: str, version: int) -> User:
        doc = orjson.loads(doc_text)
        doc["role"] = Role(doc["role"])
        for key in ("created_at", "locked_until", "last_login"):
            if doc.get(key):
                doc[key] = datetime.fromisoformat(doc[key])
        doc["version"] = str(version)
        return User(**doc)

    def create_user(self, user: User) -> User:
        try:
            with self._write() as conn:
                if conn.execute("SELECT 1 FROM users WHERE username = ?",
                                [user.username]).fetchone():
                    raise ConflictError("user", user.username, "new", "existing")
                conn.execute("INSERT INTO users VALUES (?, 1, ?)",
                             [user.username, self._user_doc(user)])
        except sqlite3.Error as exc:
            raise self._translate(exc) from None
        return self.get_user(user.username)

    def get_user(self, username: str) -> User:
        rows = self._query("SELECT doc, version FROM users WHERE username = ?", [username])
        if not rows:
            raise NotFoundError("user", username)
        return self._user_from(rows[0][0], rows[0][1])

    def update_user(self, user: User) -> User:
        try:
            with self._write() as conn:
                row = conn.execute("SELECT version FROM users WHERE username = ?",
                                   [user.username]).fetchone()
                if row is None:
                    raise NotFoundError("user", user.username)
                if str(row[0]) != str(user.version):
                    raise ConflictError("user", user.username, str(user.version), str(row[0]))
                conn.execute("UPDATE users SET doc = ?, version = version + 1 "
                             "WHERE username = ?", [self._user_doc(user), user.username])
        except sqlite3.Error as exc:
            raise self._translate(exc) from None
        return self.get_user(user.username)

    def list_users(self) -> list[User]:
        return [self._user_from(r[0], r[1]) for r in
                self._query("SELECT doc, version FROM users ORDER BY username")]

    def add_api_token(self, token: ApiToken) -> ApiToken:
        token_id = token.id or uuid.uuid4().hex
        try:
            with self._write() as conn:
                conn.execute("INSERT INTO api_tokens VALUES (?,?,?,?,?,?,?,?)",
                             [token_id, token.username, token.name, token.token_hash,
                              _us(token.created_at), _us(token.expires_at),
                              _us(token.last_used), int(token.revoked)])
        except sqlite3.IntegrityError:
            raise ConflictError("api token", token_id, "new", "existing") from None
        except sqlite3.Error as exc:
            raise self._translate(exc) from None
        token.id = token_id
        return token

    @staticmethod
    def _token_from(r: Any) -> ApiToken:
        return ApiToken(id=r[0], username=r[1], name=r[2], token_hash=r[3],
                        created_at=_dt(r[4]) or datetime.min, expires_at=_dt(r[5]),
                        last_used=_dt(r[6]), revoked=bool(r[7]))

    def find_api_token(self, token_hash: str) -> ApiToken | None:
        rows = self._query("SELECT * FROM api_tokens WHERE token_hash = ?", [token_hash])
        return self._token_from(rows[0]) if rows else None

    def list_api_tokens(self, username: str | None = None) -> list[ApiToken]:
        if username is None:
            rows = self._query("SELECT * FROM api_tokens ORDER BY created_at")
        else:
            rows = self._query("SELECT * FROM api_tokens WHERE username = ? ORDER BY created_at",
                               [username])
        return [self._token_from(r) for r in rows]

    def revoke_api_token(self, token_id: str) -> None:
        with self._write() as conn:
            if conn.execute("UPDATE api_tokens SET revoked = 1 WHERE id = ?",
                            [token_id]).rowcount == 0:
                raise NotFoundError("api token", token_id)

    def touch_api_token(self, token_id: str, when: datetime) -> None:
        with self._write() as conn:
            conn.execute("UPDATE api_tokens SET last_used = ? WHERE id = ?", [_us(when), token_id])

    # audit -------------------------------------------------------------------------
    def append_audit(self, entry: AuditEntry) -> AuditEntry:
        entry.id = entry.id or uuid.uuid4().hex
        try:
            with self._write() as conn:
                conn.execute(
                    "INSERT INTO audit (id, at, actor, action, target_type, target_id, before, "
                    "after, address) VALUES (?,?,?,?,?,?,?,?,?)",
                    [entry.id, _us(entry.at), entry.actor, entry.action, entry.target_type,
                     entry.target_id, _json_or_none(entry.before), _json_or_none(entry.after),
                     entry.address])
        except sqlite3.Error as exc:
            raise self._translate(exc) from None
        return entry

    def list_audit(self, flt: AuditFilter | None = None, limit: int = 100,
                   after: str | None = None) -> Page[AuditEntry]:
        clauses: list[str] = []
        params: list[Any] = []
        if flt is not None:
            for column in ("actor", "action", "target_type", "target_id"):
                value = getattr(flt, column)
                if value is not None:
                    clauses.append(f"{column} = ?")
                    params.append(value)
            if flt.start is not None:
                clauses.append("at >= ?")
                params.append(_us(flt.start))
            if flt.end is not None:
                clauses.append("at < ?")
                params.append(_us(flt.end))
        if after:
            (seq,) = _decode_cursor(after, 1)
            clauses.append("seq < ?")
            params.append(seq)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        limit = max(1, min(int(limit), 1000))
        rows = self._query(f"SELECT seq, id, at, actor, action, target_type, target_id, before, "
                           f"after, address FROM audit {where} ORDER BY seq DESC LIMIT ?",
                           [*params, limit + 1])
        items = [AuditEntry(actor=r[3], action=r[4], target_type=r[5], target_id=r[6],
                            at=_dt(r[2]) or datetime.min,
                            before=orjson.loads(r[7]) if r[7] else None,
                            after=orjson.loads(r[8]) if r[8] else None, address=r[9], id=r[1])
                 for r in rows[:limit]]
        cursor = _encode_cursor(rows[limit - 1][0]) if len(rows) > limit else None
        return Page(items, cursor)

    # checkpoints, suppressions, dead letters, settings -------------------------------
    def get_checkpoint(self, name: str) -> dict[str, Any] | None:
        rows = self._query("SELECT state FROM checkpoints WHERE name = ?", [name])
        return orjson.loads(rows[0][0]) if rows else None

    def set_checkpoint(self, name: str, state: Mapping[str, Any]) -> None:
        with self._write() as conn:
            conn.execute("INSERT INTO checkpoints VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE "
                         "SET state = excluded.state, updated_at = excluded.updated_at",
                         [name, orjson.dumps(dict(state), default=str).decode(), _now_us()])

    def list_checkpoints(self) -> dict[str, dict[str, Any]]:
        return {r[0]: orjson.loads(r[1]) for r in
                self._query("SELECT name, state FROM checkpoints ORDER BY name")}

    def add_suppression(self, suppression: Suppression) -> Suppression:
        suppression.id = suppression.id or uuid.uuid4().hex
        with self._write() as conn:
            conn.execute("INSERT INTO suppressions VALUES (?,?,?,?,?,?,?,?)",
                         [suppression.id, suppression.rule_id, suppression.field,
                          suppression.value, suppression.reason, suppression.created_by,
                          _us(suppression.created_at), _us(suppression.expires_at)])
        return suppression

    def list_suppressions(self, rule_id: str | None = None) -> list[Suppression]:
        now = _now_us()
        if rule_id is None:
            rows = self._query("SELECT * FROM suppressions WHERE expires_at IS NULL OR "
                               "expires_at > ? ORDER BY created_at", [now])
        else:
            rows = self._query("SELECT * FROM suppressions WHERE rule_id IN (?, '*') AND "
                               "(expires_at IS NULL OR expires_at > ?) ORDER BY created_at",
                               [rule_id, now])
        return [Suppression(id=r[0], rule_id=r[1], field=r[2], value=r[3], reason=r[4],
                            created_by=r[5], created_at=_dt(r[6]) or datetime.min,
                            expires_at=_dt(r[7])) for r in rows]

    def delete_suppression(self, suppression_id: str) -> None:
        with self._write() as conn:
            if conn.execute("DELETE FROM suppressions WHERE id = ?",
                            [suppression_id]).rowcount == 0:
                raise NotFoundError("suppression", suppression_id)

    def add_dead_letters(self, letters: Iterable[DeadLetter]) -> int:
        rows = [(d.source, d.position, d.reason[:2000], bytes(d.original[:MAX_DEAD_LETTER_BYTES]),
                 _us(d.received)) for d in letters]
        if not rows:
            return 0
        with self._write() as conn:
            conn.executemany("INSERT INTO dead_letters (source, position, reason, original, "
                             "received) VALUES (?,?,?,?,?)", rows)
        return len(rows)

    def list_dead_letters(self, limit: int = 100, after: str | None = None,
                          source: str | None = None) -> Page[StoredDeadLetter]:
        clauses: list[str] = []
        params: list[Any] = []
        if source is not None:
            clauses.append("source = ?")
            params.append(source)
        if after:
            (seq,) = _decode_cursor(after, 1)
            clauses.append("seq < ?")
            params.append(seq)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        limit = max(1, min(int(limit), 1000))
        rows = self._query(f"SELECT * FROM dead_letters {where} ORDER BY seq DESC LIMIT ?",
                           [*params, limit + 1])
        items = [StoredDeadLetter(str(r[0]), DeadLetter(r[1], r[2], r[3], bytes(r[4]),
                                                         _dt(r[5]) or datetime.min))
                 for r in rows[:limit]]
        cursor = _encode_cursor(rows[limit - 1][0]) if len(rows) > limit else None
        return Page(items, cursor)

    def count_dead_letters(self) -> int:
        return int(self._query("SELECT count(*) FROM dead_letters")[0][0])

    def get_setting(self, key: str) -> Any:
        rows = self._query("SELECT value FROM settings WHERE key = ?", [key])
        return orjson.loads(rows[0][0]) if rows else None

    def set_setting(self, key: str, value: Any) -> None:
        with self._write() as conn:
            if value is None:
                conn.execute("DELETE FROM settings WHERE key = ?", [key])
            else:
                conn.execute("INSERT INTO settings VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                             "SET value = excluded.value",
                             [key, orjson.dumps(value, default=str).decode()])

    def update_setting(self, key: str, change: Callable[[Any], Any]) -> Any:
        # BEGIN IMMEDIATE takes the write lock before the read: no writer comes between
        with self._write() as conn:
            rows = conn.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchall()
            value = change(orjson.loads(rows[0][0]) if rows else None)
            if value is None:
                conn.execute("DELETE FROM settings WHERE key = ?", [key])
                return None
            text = orjson.dumps(value, default=str)
            conn.execute("INSERT INTO settings VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                         "SET value = excluded.value", [key, text.decode()])
        return orjson.loads(text)


_ALERT_ROW = ("id", "rule_id", "rule_name", "severity", "severity_rank", "status", "group_key",
              "first_seen", "last_seen", "created_at", "updated_at", "version", "source",
              "count", "assignee", "dataset", "host", "user_name", "source_ip",
              "destination_ip", "case_id", "resolution", "acknowledged_at", "resolved_at",
              "doc")
_CASE_ROW = ("id", "title", "description", "severity", "tlp", "status", "created_by",
             "created_at", "updated_at", "version", "assignee", "closed_at", "doc")


_HOUR_MICROS: dict[str, int] = {}


def _micros(stamp: Any) -> int:
    """Microseconds since the epoch; fast for the canonical ``...T..:..:..ffffffZ``
    (the hour's start is cached, minutes, seconds and fraction added)."""
    if (type(stamp) is str and len(stamp) == 27 and stamp[26] == "Z" and stamp[13] == ":"
            and stamp[16] == ":" and stamp[19] == "."):
        hour = _HOUR_MICROS.get(stamp[:13])
        if hour is None:
            moment = datetime.fromisoformat(stamp[:13]).replace(tzinfo=UTC)
            hour = int(moment.timestamp()) * 1_000_000
            if len(_HOUR_MICROS) > 100_000:
                _HOUR_MICROS.clear()
            _HOUR_MICROS[stamp[:13]] = hour
        minutes, seconds, fraction = stamp[14:16], stamp[17:19], stamp[20:26]
        if (minutes.isdigit() and seconds.isdigit() and fraction.isdigit()
                and minutes < "60" and seconds < "60"):
            return hour + int(minutes) * 60_000_000 + int(seconds) * 1_000_000 + int(fraction)
    return timestamp_micros(stamp)


def _event_id_of(event: Mapping[str, Any]) -> str:
    meta = event.get("event")
    eid = meta.get("id") if type(meta) is dict else get_field(event, "event.id")
    if not eid:
        raise QueryError("an event without event.id cannot be stored")
    return str(eid)


def _scalar(value: Any) -> Any:
    if isinstance(value, list):
        return str(value[0]) if value else None
    return None if value is None else str(value)


def _json_or_none(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, default=str).decode()
