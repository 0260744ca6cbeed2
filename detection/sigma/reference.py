"""An independent Sigma implementation to check and measure ours against.

pySigma's SQLite backend (``pysigma-backend-sqlite``, the approach Zircolite
uses) converts each rule to SQL; events are flattened into one SQLite table
(one ``TEXT COLLATE NOCASE`` column per field, as Zircolite builds it) and
every rule's query runs over it. The rules go through the same mapping
pipeline and the same logsource routing (as a WHERE clause) as the streaming
matcher, so any difference in the (rule, event) match sets is a difference in
how a detection is evaluated. Used by the differential test and the benchmark;
needs the ``test`` extra (pysigma-backend-sqlite).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import orjson

from detection.sigma.eventview import build_view
from detection.sigma.loader import parse_rule_text
from detection.sigma.mapping import mapping_pipeline
from detection.sigma.routing import RouteSpec, audit_route, route_for
from govsoc.events import Event

ROUTE_COLUMNS = ("event.dataset", "winlog.channel", "winlog.event_id")


@dataclass
class ReferenceRule:
    rule_id: str
    path: str
    sql: str | None
    #: why the rule could not be converted (None when it was)
    skipped: str | None = None
    fields: list[str] = field(default_factory=list)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _route_sql(spec: RouteSpec) -> str:
    if spec.everything:
        return "1"
    parts: list[str] = []
    if spec.datasets:
        values = ", ".join("'" + d.replace("'", "''") + "'" for d in sorted(spec.datasets))
        parts.append(f'"event.dataset" IN ({values})')
    for channel, ids in spec.windows:
        cond = []
        if channel is not None:
            cond.append(f"lower(\"winlog.channel\") = '{channel.replace(chr(39), chr(39) * 2)}'")
        else:
            cond.append('"winlog.channel" IS NOT NULL')
        if ids is not None:
            cond.append(f'"winlog.event_id" IN ({", ".join(repr(str(i)) for i in sorted(ids))})')
        parts.append("(" + " AND ".join(cond) + ")")
    return "(" + " OR ".join(parts) + ")" if parts else "0"


def convert_rules(paths_and_texts: Iterable[tuple[str, str]],
                  profile: str = "govsoc") -> list[ReferenceRule]:
    """Convert rules with pySigma's SQLite backend through our mapping pipeline."""
    out: list[ReferenceRule] = []
    for path, text in paths_and_texts:
        rule_file = parse_rule_text(text, path)
        for number, rule in enumerate(rule_file.rules):
            spec = route_for(rule.logsource.product, rule.logsource.category,
                             rule.logsource.service)
            rule_id = str(rule.id or rule.title)
            audit = audit_route(rule.logsource.product, rule.logsource.category)
            if audit is not None:
                spec = spec.without(audit)
            try:
                where, fields = _convert(rule, mapping_pipeline(profile))
                parts = [f"({_route_sql(spec)} AND ({where}))"]
                if audit is not None:
                    # the same rule as pySigma's windows_audit pipeline reads it (4688)
                    from sigma.pipelines.windows.windows import windows_audit_pipeline

                    again = parse_rule_text(text, path).rules[number]
                    audit_where, audit_fields = _convert(
                        again, windows_audit_pipeline() + mapping_pipeline(profile))
                    parts.append(f"({_route_sql(audit)} AND ({audit_where}))")
                    fields = sorted({*fields, *audit_fields})
            except Exception as exc:
                out.append(ReferenceRule(rule_id, path, None,
                                         f"{type(exc).__name__}: {str(exc)[:200]}"))
                continue
            sql = f"SELECT rowid FROM logs WHERE {' OR '.join(parts)}"
            out.append(ReferenceRule(rule_id, path, sql, None, fields))
    return out


def _convert(rule: Any, pipeline: Any) -> tuple[str, list[str]]:
    """The WHERE clause pySigma's SQLite backend writes for a rule, and its fields."""
    from sigma.backends.sqlite import sqliteBackend

    backend = sqliteBackend(processing_pipeline=pipeline)
    queries = backend.convert_rule(rule)
    fields = sorted(backend.required_fields(rule)) if hasattr(backend, "required_fields") else []
    where: list[str] = []
    head = "SELECT * FROM logs WHERE "
    for query in queries:
        text_q = str(query)
        if not text_q.startswith(head):
            raise ValueError("unexpected query shape")
        where.append("(" + text_q[len(head):] + ")")
    if not where:
        raise ValueError("unexpected query shape")
    return " OR ".join(where), fields


@lru_cache(maxsize=4096)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


def _regexp(pattern: str, value: Any) -> int:
    if value is None or pattern is None:
        return 0
    compiled = _compiled(pattern)
    return 1 if compiled is not None and compiled.search(str(value)) else 0


def _cell(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple | dict):
        return orjson.dumps(value, default=str).decode()
    if isinstance(value, int | float):
        return str(value)
    return value


class ReferenceDatabase:
    """Events flattened into an in-memory SQLite table, Zircolite style."""

    def __init__(self, columns: Sequence[str]) -> None:
        seen: dict[str, str] = {}
        for name in [*ROUTE_COLUMNS, *columns]:
            seen.setdefault(name.lower(), name)  # SQLite column names ignore case
        self.columns = list(seen.values())
        self.db = sqlite3.connect(":memory:")
        self.db.create_function("regexp", 2, _regexp, deterministic=True)
        cols = ", ".join(f"{_quote(c)} TEXT COLLATE NOCASE" for c in self.columns)
        self.db.execute(f"CREATE TABLE logs ({cols})")
        self.count = 0

    def insert(self, events: Iterable[Event]) -> int:
        names = self.columns
        marks = ", ".join("?" for _ in names)
        sql = f"INSERT INTO logs ({', '.join(_quote(c) for c in names)}) VALUES ({marks})"
        rows = []
        for event in events:
            _, raw, _ = build_view(event, frozenset())
            # a column stands for every spelling of its name (SQLite ignores case)
            folded = {k.lower(): v for k, v in raw.items()}
            rows.append([_cell(folded.get(name.lower())) for name in names])
        self.db.executemany(sql, rows)
        self.count += len(rows)
        return len(rows)

    def run(self, rule: ReferenceRule) -> list[int]:
        """Event numbers (0-based insertion order) the rule's query selects."""
        if rule.sql is None:
            return []
        return [row[0] - 1 for row in self.db.execute(rule.sql)]

    def close(self) -> None:
        self.db.close()
