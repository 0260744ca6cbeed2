"""The Store contract: what every storage engine offers the rest of govsoc.

Two engines implement it: ``store.sqlite`` (embedded default) and
``store.elastic`` (Elasticsearch 8 / OpenSearch 2). Both pass the same contract
test suite (``tests/store``). Records are plain dataclasses; versions are opaque
strings used for optimistic concurrency; cursors are opaque strings for keyset
pagination.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Generic, TypeVar

from govsoc.events import DeadLetter, Event

T = TypeVar("T")


class Severity(StrEnum):
    INFORMATIONAL = "informational"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _SEVERITY_RANK[self]

    @classmethod
    def parse(cls, value: str | None) -> Severity:
        """Severity from a rule level or meta value; unknown levels read as medium."""
        if not value:
            return cls.MEDIUM
        text = str(value).strip().lower()
        return _SEVERITY_ALIASES.get(text, cls.MEDIUM)


_SEVERITY_RANK = {Severity.INFORMATIONAL: 0, Severity.LOW: 1, Severity.MEDIUM: 2,
                  Severity.HIGH: 3, Severity.CRITICAL: 4}
_SEVERITY_ALIASES = {s.value: s for s in Severity} | {
    "info": Severity.INFORMATIONAL, "informational": Severity.INFORMATIONAL,
    "warning": Severity.MEDIUM, "moderate": Severity.MEDIUM, "severe": Severity.HIGH,
}


class AlertStatus(StrEnum):
    NEW = "new"
    ACKNOWLEDGED = "acknowledged"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    FALSE_POSITIVE = "false_positive"

    @property
    def is_open(self) -> bool:
        return self not in (AlertStatus.RESOLVED, AlertStatus.FALSE_POSITIVE)


OPEN_ALERT_STATUSES = tuple(s for s in AlertStatus if s.is_open)


class CaseStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"


class Role(StrEnum):
    ANALYST = "analyst"
    DETECTION_ENGINEER = "detection_engineer"
    MANAGER = "manager"
    ADMIN = "admin"


@dataclass
class Page(Generic[T]):
    """One page of a keyset-paginated listing."""

    items: list[T]
    #: pass as ``after`` to get the next page; None when this is the last page
    next_cursor: str | None = None
    total: int | None = None


# ---------------------------------------------------------------- events

@dataclass
class EventQuery:
    """A search over stored events. All conditions are ANDed.

    ``filters`` maps a dotted field name to the values it may have (exact match,
    any of them). ``text`` is a free-text search over the text fields of the
    field registry (``event.original``, ``message``, command lines, names...).
    """

    start: datetime | None = None
    end: datetime | None = None
    datasets: Sequence[str] = ()
    filters: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    text: str | None = None
    limit: int = 100
    after: str | None = None
    #: newest first when True
    descending: bool = True


@dataclass
class InsertResult:
    """Outcome of a batch insert."""

    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    #: ids of the events that were new (in input order)
    new_ids: list[str] = field(default_factory=list)

    def add(self, other: InsertResult) -> None:
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.rejected += other.rejected
        self.new_ids.extend(other.new_ids)


@dataclass
class TermCount:
    value: Any
    count: int


@dataclass
class Bucket:
    start: datetime
    count: int


# ---------------------------------------------------------------- alerts

@dataclass
class NewAlert:
    """What detection raises; the store folds repeats by ``group_key``."""

    rule_id: str
    rule_name: str
    severity: Severity
    group_key: str
    #: event time of the (latest) matching event
    timestamp: datetime
    source: str = "sigma"
    event_ids: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    dataset: str | None = None
    description: str = ""
    #: selected dotted fields of the matching event (and the ones that matched)
    fields: dict[str, Any] = field(default_factory=dict)
    #: names of the fields the rule tested, for highlighting
    matched_fields: list[str] = field(default_factory=list)


@dataclass
class Alert:
    id: str
    rule_id: str
    rule_name: str
    severity: Severity
    status: AlertStatus
    group_key: str
    first_seen: datetime
    last_seen: datetime
    created_at: datetime
    updated_at: datetime
    version: str
    source: str = "sigma"
    count: int = 1
    assignee: str | None = None
    event_ids: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    dataset: str | None = None
    description: str = ""
    fields: dict[str, Any] = field(default_factory=dict)
    matched_fields: list[str] = field(default_factory=list)
    host: str | None = None
    user: str | None = None
    source_ip: str | None = None
    destination_ip: str | None = None
    resolution: str | None = None
    case_id: str | None = None
    acknowledged_at: datetime | None = None
    resolved_at: datetime | None = None


#: Largest number of event ids an alert keeps (the count goes on).
MAX_ALERT_EVENT_IDS = 100

ALERT_SORTS = ("last_seen", "first_seen", "severity", "count", "created_at")


@dataclass
class AlertFilter:
    statuses: Sequence[AlertStatus] = ()
    severities: Sequence[Severity] = ()
    rule_ids: Sequence[str] = ()
    hosts: Sequence[str] = ()
    users: Sequence[str] = ()
    source_ips: Sequence[str] = ()
    destination_ips: Sequence[str] = ()
    assignees: Sequence[str] = ()
    #: match alerts with no assignee
    unassigned: bool = False
    sources: Sequence[str] = ()
    case_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    text: str | None = None


@dataclass
class AlertChange:
    """Fields to change on an alert; None leaves a field as it is."""

    status: AlertStatus | None = None
    assignee: str | None = None
    #: set True to clear the assignee
    unassign: bool = False
    severity: Severity | None = None
    resolution: str | None = None
    case_id: str | None = None


# ---------------------------------------------------------------- cases

@dataclass
class CaseTask:
    title: str
    done: bool = False
    owner: str | None = None
    notes: str = ""


@dataclass
class Observable:
    type: str  # ip, domain, url, hash, user, host, file
    value: str
    source_alert_id: str | None = None


@dataclass
class NewCase:
    title: str
    created_by: str
    description: str = ""
    severity: Severity = Severity.MEDIUM
    tlp: str = "amber"
    assignee: str | None = None
    alert_ids: list[str] = field(default_factory=list)
    tasks: list[CaseTask] = field(default_factory=list)
    observables: list[Observable] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)


@dataclass
class Case:
    id: str
    title: str
    description: str
    severity: Severity
    tlp: str
    status: CaseStatus
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: str
    assignee: str | None = None
    alert_ids: list[str] = field(default_factory=list)
    tasks: list[CaseTask] = field(default_factory=list)
    observables: list[Observable] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    closed_at: datetime | None = None
    #: free-form data other components attach (playbook runs, report drafts)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class CaseChange:
    title: str | None = None
    description: str | None = None
    severity: Severity | None = None
    tlp: str | None = None
    status: CaseStatus | None = None
    assignee: str | None = None
    unassign: bool = False
    tasks: list[CaseTask] | None = None
    observables: list[Observable] | None = None
    tags: list[str] | None = None
    extra: dict[str, Any] | None = None


@dataclass
class CaseFilter:
    statuses: Sequence[CaseStatus] = ()
    severities: Sequence[Severity] = ()
    assignees: Sequence[str] = ()
    text: str | None = None


@dataclass
class Comment:
    id: str
    target_type: str  # "alert" | "case"
    target_id: str
    author: str
    body: str
    created_at: datetime


# ---------------------------------------------------------------- people

@dataclass
class User:
    username: str
    password_hash: str
    role: Role
    created_at: datetime
    version: str = ""
    display_name: str = ""
    email: str = ""
    language: str = "vi"
    timezone: str = "Asia/Ho_Chi_Minh"
    disabled: bool = False
    failed_logins: int = 0
    locked_until: datetime | None = None
    last_login: datetime | None = None


@dataclass
class ApiToken:
    id: str
    username: str
    name: str
    #: sha256 hex of the secret; the secret itself is shown once and never stored
    token_hash: str
    created_at: datetime
    expires_at: datetime | None = None
    last_used: datetime | None = None
    revoked: bool = False


@dataclass
class AuditEntry:
    actor: str
    action: str
    target_type: str
    target_id: str
    at: datetime
    before: Any = None
    after: Any = None
    address: str | None = None
    id: str = ""


@dataclass
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass
class Suppression:
    """An exception: alerts of ``rule_id`` whose event has ``field`` == ``value``
    are not raised. ``rule_id`` "*" applies to every rule."""

    rule_id: str
    field: str
    value: str
    created_by: str
    created_at: datetime
    reason: str = ""
    expires_at: datetime | None = None
    id: str = ""


@dataclass
class StoredDeadLetter:
    id: str
    letter: DeadLetter


# ---------------------------------------------------------------- the contract

class Store(abc.ABC):
    """Everything govsoc keeps. Engines raise only :mod:`govsoc.errors` exceptions."""

    engine: str = "abstract"

    # events -------------------------------------------------------------
    @abc.abstractmethod
    def insert_events(self, events: Sequence[Event]) -> InsertResult:
        """Store validated events by their ``event.id``; a known id is a duplicate."""

    @abc.abstractmethod
    def search_events(self, query: EventQuery) -> Page[Event]:
        """Events matching ``query``, ordered by ``@timestamp`` then id."""

    @abc.abstractmethod
    def count_events(self, query: EventQuery) -> int: ...

    @abc.abstractmethod
    def get_events(self, ids: Sequence[str]) -> list[Event]:
        """Events with the given ids (unknown ids are left out), in the given order."""

    @abc.abstractmethod
    def top_terms(self, field_name: str, query: EventQuery | None = None,
                  size: int = 10) -> list[TermCount]: ...

    @abc.abstractmethod
    def date_histogram(self, query: EventQuery, interval: timedelta) -> list[Bucket]: ...

    @abc.abstractmethod
    def tail_events(self, cursor: str | None, limit: int = 1000) -> tuple[list[Event], str]:
        """Events stored after ``cursor`` in storage order, and the cursor after them.

        ``None`` starts from the beginning. Consumers keep the cursor as a
        checkpoint to resume without missing or repeating events.
        """

    def tail_start(self) -> str:
        """A cursor positioned after everything stored now (to follow new events)."""
        cursor: str | None = None
        while True:
            events, cursor = self.tail_events(cursor, 5000)
            if not events:
                return cursor

    # alerts -------------------------------------------------------------
    @abc.abstractmethod
    def record_alerts(self, alerts: Sequence[NewAlert],
                      window: timedelta) -> list[tuple[Alert, bool]]:
        """Create alerts, or fold each into the open alert with the same group key
        whose last event is within ``window`` (count +1, last-seen moved, event id
        added). Returns each stored alert and True when it was created."""

    @abc.abstractmethod
    def get_alert(self, alert_id: str) -> Alert: ...

    @abc.abstractmethod
    def update_alert(self, alert_id: str, expected_version: str, change: AlertChange) -> Alert:
        """Apply ``change`` if the alert is still at ``expected_version``; otherwise
        raise :class:`~govsoc.errors.ConflictError`."""

    @abc.abstractmethod
    def list_alerts(self, flt: AlertFilter | None = None, sort: str = "last_seen",
                    descending: bool = True, limit: int = 50,
                    after: str | None = None) -> Page[Alert]: ...

    @abc.abstractmethod
    def count_alerts(self, flt: AlertFilter | None = None,
                     by: str = "status") -> dict[str, int]:
        """Alert counts grouped by ``status``, ``severity``, ``rule_id``, ``host``
        or ``source``."""

    @abc.abstractmethod
    def alert_histogram(self, flt: AlertFilter | None, interval: timedelta) -> list[Bucket]:
        """Alerts per time bucket of ``first_seen``."""

    # cases & comments ---------------------------------------------------
    @abc.abstractmethod
    def create_case(self, case: NewCase) -> Case:
        """Create a case; its alerts are linked to it."""

    @abc.abstractmethod
    def get_case(self, case_id: str) -> Case: ...

    @abc.abstractmethod
    def update_case(self, case_id: str, expected_version: str, change: CaseChange) -> Case: ...

    @abc.abstractmethod
    def add_alerts_to_case(self, case_id: str, alert_ids: Sequence[str]) -> Case: ...

    @abc.abstractmethod
    def list_cases(self, flt: CaseFilter | None = None, limit: int = 50,
                   after: str | None = None) -> Page[Case]:
        """Cases, newest first."""

    @abc.abstractmethod
    def add_comment(self, target_type: str, target_id: str, author: str,
                    body: str) -> Comment: ...

    @abc.abstractmethod
    def list_comments(self, target_type: str, target_id: str) -> list[Comment]:
        """Comments oldest first."""

    # people -------------------------------------------------------------
    @abc.abstractmethod
    def create_user(self, user: User) -> User:
        """Raise ConflictError when the username exists."""

    @abc.abstractmethod
    def get_user(self, username: str) -> User: ...

    @abc.abstractmethod
    def update_user(self, user: User) -> User:
        """Write ``user`` if it is still at ``user.version``; returns the new record."""

    @abc.abstractmethod
    def list_users(self) -> list[User]: ...

    @abc.abstractmethod
    def add_api_token(self, token: ApiToken) -> ApiToken: ...

    @abc.abstractmethod
    def find_api_token(self, token_hash: str) -> ApiToken | None: ...

    @abc.abstractmethod
    def list_api_tokens(self, username: str | None = None) -> list[ApiToken]: ...

    @abc.abstractmethod
    def revoke_api_token(self, token_id: str) -> None: ...

    @abc.abstractmethod
    def touch_api_token(self, token_id: str, when: datetime) -> None: ...

    # audit --------------------------------------------------------------
    @abc.abstractmethod
    def append_audit(self, entry: AuditEntry) -> AuditEntry:
        """Append an entry; entries are never changed or removed."""

    @abc.abstractmethod
    def list_audit(self, flt: AuditFilter | None = None, limit: int = 100,
                   after: str | None = None) -> Page[AuditEntry]:
        """Entries newest first."""

    # checkpoints, suppressions, dead letters, settings -------------------
    @abc.abstractmethod
    def get_checkpoint(self, name: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def set_checkpoint(self, name: str, state: Mapping[str, Any]) -> None: ...

    @abc.abstractmethod
    def list_checkpoints(self) -> dict[str, dict[str, Any]]: ...

    @abc.abstractmethod
    def add_suppression(self, suppression: Suppression) -> Suppression: ...

    @abc.abstractmethod
    def list_suppressions(self, rule_id: str | None = None) -> list[Suppression]:
        """Active suppressions (not expired), for ``rule_id`` and for every rule."""

    @abc.abstractmethod
    def delete_suppression(self, suppression_id: str) -> None: ...

    @abc.abstractmethod
    def add_dead_letters(self, letters: Iterable[DeadLetter]) -> int: ...

    @abc.abstractmethod
    def list_dead_letters(self, limit: int = 100, after: str | None = None,
                          source: str | None = None) -> Page[StoredDeadLetter]:
        """Dead letters newest first."""

    @abc.abstractmethod
    def count_dead_letters(self) -> int: ...

    @abc.abstractmethod
    def get_setting(self, key: str) -> Any:
        """A JSON value kept under ``key`` (rule states, preferences), or None."""

    @abc.abstractmethod
    def set_setting(self, key: str, value: Any) -> None: ...

    @abc.abstractmethod
    def update_setting(self, key: str, change: Callable[[Any], Any]) -> Any:
        """Replace the value under ``key`` by ``change(current value or None)`` in one
        atomic step, so a concurrent writer's update is never lost: two analysts
        disabling two rules at once both see their rule disabled. ``change`` may be
        called again with a newer value and must have no other effect. A result of
        None removes the setting. Returns the value stored."""

    # lifecycle ------------------------------------------------------------
    def refresh(self) -> None:
        """Make every write so far visible to searches.

        A no-op where writes are visible at once (SQLite); a search-index refresh on
        near-real-time engines.
        """
        return None

    @abc.abstractmethod
    def schema_version(self) -> int: ...

    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
