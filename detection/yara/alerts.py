"""Turning YARA results into what the rest of govsoc triages: an ECS event per
matched file or payload (``event.dataset`` ``yara.match``) and a ``NewAlert``
linked to it.

One alert stands for one file (or payload) content: it carries every rule that
matched, is named after the most severe one, and its group key is the path and
SHA-256, so scanning the same unchanged file again folds into the open alert
while a changed file raises a new one.

Severity comes from rule meta: an explicit ``severity``/``level``/``threat_level``
word wins; otherwise signature-base's 0-100 ``score`` is mapped (see
:func:`rule_severity`); rules with neither are medium.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from detection.yara.scanner import FileResult, RuleMatch
from govsoc.events import (
    Event,
    event_id,
    format_timestamp,
    get_field,
    new_event,
    parse_timestamp,
    set_fields,
)
from store.base import NewAlert, Severity, Suppression

DATASET = "yara.match"
SOURCE = "yara"

#: lowest signature-base score of each severity (THOR's "alert" starts at 80 and
#: its rules put most webshells at 70, which a portal's SOC treats as high)
_SCORE_FLOORS = ((90, Severity.CRITICAL), (70, Severity.HIGH), (50, Severity.MEDIUM),
                 (0, Severity.LOW))
_WORD_KEYS = ("severity", "level", "threat_level")


def rule_severity(meta: Mapping[str, Any]) -> Severity:
    """Severity of a rule from its meta."""
    for key in _WORD_KEYS:
        value = meta.get(key)
        if isinstance(value, str) and value.strip():
            return Severity.parse(value)
    score = meta.get("score")
    if isinstance(score, str) and score.strip().isdigit():
        score = int(score)
    if isinstance(score, int) and not isinstance(score, bool):
        for floor, severity in _SCORE_FLOORS:
            if score >= floor:
                return severity
    return Severity.MEDIUM


def most_severe(matches: Sequence[RuleMatch]) -> RuleMatch:
    return max(matches, key=lambda m: (rule_severity(m.meta).rank, _score(m.meta)))


def _score(meta: Mapping[str, Any]) -> int:
    score = meta.get("score")
    return score if isinstance(score, int) and not isinstance(score, bool) else 0


def match_records(matches: Sequence[RuleMatch]) -> list[dict[str, Any]]:
    """The ``yara.matches`` value: one JSON-ready record per rule."""
    return [{
        "rule": m.rule,
        "namespace": m.namespace,
        "tags": list(m.tags),
        "meta": {k: v for k, v in m.meta.items() if isinstance(v, str | int | float | bool)},
        "severity": rule_severity(m.meta).value,
        "strings": [{"identifier": s.identifier, "offset": s.offset, "data": s.data}
                    for s in m.strings],
        "strings_dropped": m.strings_dropped,
        **({"member": m.member} if m.member else {}),
    } for m in matches]


def file_fields(result: FileResult) -> dict[str, Any]:
    """The ECS ``file.*`` fields of a scanned file."""
    name = os.path.basename(result.path)
    fields: dict[str, Any] = {
        "file.path": result.path,
        "file.name": name,
        "file.directory": os.path.dirname(result.path),
        "file.size": result.size,
        "file.hash.md5": result.md5 or None,
        "file.hash.sha1": result.sha1 or None,
        "file.hash.sha256": result.sha256 or None,
        "file.owner": result.owner or None,
        "file.uid": str(result.uid) if result.uid is not None else None,
        "file.mode": f"{result.mode & 0o7777:04o}" if result.mode is not None else None,
        "file.mtime": format_timestamp(result.mtime) if result.mtime else None,
    }
    extension = os.path.splitext(name)[1].lstrip(".").lower()
    if extension:
        fields["file.extension"] = extension
    return {k: v for k, v in fields.items() if v is not None}


def match_event(result: FileResult, seen_at: datetime | None = None,
                extra: Mapping[str, Any] | None = None) -> Event:
    """The ECS event recording that ``result`` matched (searchable by file and rule)."""
    seen_at = seen_at or datetime.now(UTC)
    matches = result.matches
    event = new_event(DATASET, seen_at, kind="alert", module="yara")
    top = most_severe(matches)
    set_fields(event, {
        "event.id": event_id(f"yara:{result.path}", result.sha256 or result.md5),
        "event.category": ["file", "malware"],
        "event.type": ["info"],
        "event.outcome": "success",
        "event.severity": rule_severity(top.meta).rank,
        "rule.name": [m.rule for m in matches],
        "rule.ruleset": sorted({m.namespace for m in matches}),
        "tags": sorted({tag for m in matches for tag in m.tags}) or None,
        "message": f"YARA: {result.path} matched {', '.join(m.rule for m in matches)}",
        "yara.matches": match_records(matches),
    })
    set_fields(event, file_fields(result))
    if extra:
        set_fields(event, dict(extra))
    if event.get("tags") is None:
        event.pop("tags", None)
    return event


def alert_for(result: FileResult, event: Event) -> NewAlert:
    """The alert for a matched file, linked to its ``yara.match`` event."""
    return alert_from_event(event)


_ALERT_FIELDS = ("file.path", "file.name", "file.directory", "file.extension", "file.size",
                 "file.owner", "file.uid", "file.mode", "file.mtime", "file.hash.md5",
                 "file.hash.sha1", "file.hash.sha256", "file.mime_type", "rule.name",
                 "yara.matches", "source.ip", "destination.ip", "url.original",
                 "network.community_id", "host.name")


def alert_from_event(event: Event) -> NewAlert:
    """The alert a ``yara.match`` event stands for (everything is in the event)."""
    records = list(get_field(event, "yara.matches") or [])
    if not records:
        raise ValueError("a yara.match event without yara.matches")

    def weight(record: Mapping[str, Any]) -> tuple[int, int]:
        return (Severity.parse(record.get("severity")).rank, _score(record.get("meta", {})))

    top = max(records, key=weight)
    others = [r["rule"] for r in records if r is not top]
    description = str(top.get("meta", {}).get("description", "")) or \
        f"YARA rule {top['rule']} matched"
    if others:
        description += f" (also: {', '.join(others)})"
    fields = {k: v for k in _ALERT_FIELDS if (v := get_field(event, k)) is not None}
    path = get_field(event, "file.path") or ""
    digest = get_field(event, "file.hash.sha256") or ""
    return NewAlert(
        rule_id=f"yara:{top['rule']}",
        rule_name=str(top["rule"]),
        severity=Severity.parse(top.get("severity")),
        group_key=f"yara|{path}|{digest}",
        timestamp=parse_timestamp(event["@timestamp"]),
        source=SOURCE,
        event_ids=[event["event"]["id"]],
        tags=sorted({"yara", *(tag for r in records for tag in r.get("tags", []))}),
        dataset=DATASET,
        description=description,
        fields=fields,
        matched_fields=["file.path", "file.hash.sha256", "rule.name"],
    )


def alerts_for(results: Sequence[FileResult], seen_at: datetime | None = None
               ) -> tuple[list[Event], list[NewAlert]]:
    """Events and alerts for the matched ``results`` (skipped/clean ones are left out)."""
    events: list[Event] = []
    alerts: list[NewAlert] = []
    for result in results:
        if not result.matches:
            continue
        event = match_event(result, seen_at)
        events.append(event)
        alerts.append(alert_for(result, event))
    return events, alerts


def unsuppressed(alerts: Sequence[NewAlert], suppressions: Sequence[Suppression],
                 now: datetime | None = None) -> list[NewAlert]:
    """The alerts no suppression (rule, or ``*``, and field == value) silences."""
    now = now or datetime.now(UTC)
    active = [s for s in suppressions if s.expires_at is None or s.expires_at > now]
    kept = []
    for alert in alerts:
        silenced = False
        for rule in active:
            if rule.rule_id not in ("*", alert.rule_id):
                continue
            value = alert.fields.get(rule.field)
            values = value if isinstance(value, list) else [value]
            if rule.value in [str(v) for v in values if v is not None]:
                silenced = True
                break
        if not silenced:
            kept.append(alert)
    return kept
