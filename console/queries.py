"""Reading filters from a request: query-string arguments to ``AlertFilter``,
``CaseFilter`` and ``EventQuery``, shared by the pages and the API.

Every value is checked against what it may be (a status, a severity, an IP
address, a time) and handed to the store as a value, never as query text, so a
filter cannot change the shape of the store's query.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from govsoc.events import is_valid_field_name, parse_timestamp, utcnow
from store.base import (
    ALERT_SORTS,
    AlertFilter,
    AlertStatus,
    CaseFilter,
    CaseStatus,
    EventQuery,
    Severity,
)

MAX_TEXT = 200
MAX_VALUES = 20
#: relative ranges offered by the queue ("24h" = the last 24 hours)
RANGES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7),
          "30d": timedelta(days=30)}


class FilterError(ValueError):
    """A filter value is not acceptable; the message names the argument."""


class Args:
    """Read access to ``request.args`` or any mapping of lists."""

    def __init__(self, source: Any) -> None:
        self.source = source

    def all(self, name: str) -> list[str]:
        if hasattr(self.source, "getlist"):
            raw = self.source.getlist(name)
        else:
            value = self.source.get(name, [])
            raw = value if isinstance(value, list) else [value]
        values: list[str] = []
        for item in raw:
            for part in str(item).split(","):
                part = part.strip()
                if part and part not in values:
                    values.append(part[:MAX_TEXT])
        if len(values) > MAX_VALUES:
            raise FilterError(f"{name}: at most {MAX_VALUES} values")
        return values

    def one(self, name: str) -> str | None:
        values = self.all(name) if name not in ("q", "text") else [
            str(v).strip()[:MAX_TEXT] for v in self._raw(name) if str(v).strip()]
        return values[0] if values else None

    def _raw(self, name: str) -> list[Any]:
        if hasattr(self.source, "getlist"):
            return list(self.source.getlist(name))
        value = self.source.get(name, [])
        return value if isinstance(value, list) else [value]


def _enum_values(enum: Any, name: str, values: Sequence[str]) -> list[Any]:
    out = []
    for value in values:
        try:
            out.append(enum(value))
        except ValueError:
            raise FilterError(f"{name}: unknown value {value!r}") from None
    return out


def _ips(name: str, values: Sequence[str]) -> list[str]:
    for value in values:
        try:
            ipaddress.ip_address(value)
        except ValueError:
            raise FilterError(f"{name}: {value!r} is not an IP address") from None
    return list(values)


def _time(name: str, value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_timestamp(value)
    except (ValueError, OverflowError, OSError):
        raise FilterError(f"{name}: {value!r} is not a time (ISO 8601)") from None


@dataclass
class AlertQuery:
    """A queue request: the filter, the sort and the page position."""

    filter: AlertFilter
    sort: str = "last_seen"
    descending: bool = True
    after: str | None = None
    limit: int = 50
    range: str = ""


def alert_query(source: Any, me: str | None = None) -> AlertQuery:
    args = Args(source)
    statuses = args.all("status")
    if statuses == ["open"]:
        status_values: list[Any] = [s for s in AlertStatus if s.is_open]
    else:
        status_values = _enum_values(AlertStatus, "status", statuses)
    assignees = args.all("assignee")
    unassigned = "(none)" in assignees
    assignees = [a for a in assignees if a != "(none)"]
    if me:
        assignees = [me if a == "(me)" else a for a in assignees]
    start = _time("start", args.one("start"))
    end = _time("end", args.one("end"))
    range_name = args.one("range") or ""
    if range_name:
        if range_name not in RANGES:
            raise FilterError(f"range: one of {', '.join(RANGES)}")
        start = utcnow() - RANGES[range_name]
    if start and end and start > end:
        raise FilterError("start: must be before end")
    flt = AlertFilter(
        statuses=status_values,
        severities=_enum_values(Severity, "severity", args.all("severity")),
        rule_ids=args.all("rule"), hosts=args.all("host"), users=args.all("user"),
        source_ips=_ips("source_ip", args.all("source_ip")),
        destination_ips=_ips("destination_ip", args.all("destination_ip")),
        assignees=assignees, unassigned=unassigned, sources=args.all("source"),
        case_id=args.one("case"), start=start, end=end, text=args.one("q"))
    sort = args.one("sort") or "last_seen"
    if sort not in ALERT_SORTS:
        raise FilterError(f"sort: one of {', '.join(ALERT_SORTS)}")
    order = args.one("order") or "desc"
    if order not in ("asc", "desc"):
        raise FilterError("order: asc or desc")
    try:
        limit = int(args.one("limit") or 50)
    except ValueError:
        raise FilterError("limit: a number") from None
    return AlertQuery(flt, sort, order == "desc", args.one("after"), max(1, min(limit, 200)),
                      range_name)


def case_filter(source: Any) -> CaseFilter:
    args = Args(source)
    return CaseFilter(statuses=_enum_values(CaseStatus, "status", args.all("status")),
                      severities=_enum_values(Severity, "severity", args.all("severity")),
                      assignees=args.all("assignee"), text=args.one("q"))


def event_query(source: Any) -> EventQuery:
    """Event search: ``q`` free text, ``dataset``, ``start``/``end``, ``after``, ``limit``
    and ``field.name=value`` conditions on registered fields."""
    args = Args(source)
    filters: dict[str, list[str]] = {}
    keys = source.keys() if isinstance(source, Mapping) or hasattr(source, "keys") else []
    for key in keys:
        if key.startswith("field."):
            name = key[len("field."):]
            if not is_valid_field_name(name):
                raise FilterError(f"{key}: not a known event field")
            filters[name] = args.all(key)
    try:
        limit = int(args.one("limit") or 100)
    except ValueError:
        raise FilterError("limit: a number") from None
    start, end = _time("start", args.one("start")), _time("end", args.one("end"))
    if start and end and start > end:
        raise FilterError("start: must be before end")
    return EventQuery(start=start, end=end, datasets=args.all("dataset"), filters=filters,
                      text=args.one("q"), limit=max(1, min(limit, 500)), after=args.one("after"))


def page_url(endpoint: str, args: Any, cursor: str | None) -> str | None:
    """The URL of the next page: the same arguments with ``after`` set to ``cursor``."""
    from urllib.parse import urlencode

    from flask import url_for

    if not cursor:
        return None
    items = args.items(multi=True) if hasattr(args, "items") else []
    pairs = [(k, v) for k, v in items if k != "after"]
    pairs.append(("after", cursor))
    return url_for(endpoint) + "?" + urlencode(pairs)
