"""The fast way from an ``evtx``-package record to its ECS event.

:func:`collectors.windows.winlog.winlog_event` followed by
:func:`collectors.windows.ecs.enrich` reads any XML-as-JSON record, whoever
rendered it. Most of what that costs per record is the same for every record of
one kind: the provider, event id, version, level, task, opcode, keywords, channel
and computer of a log repeat record after record, and so does everything derived
from them (``event.dataset``, the keyword names, the log level, the audit
outcome, the enrichment handler). :class:`RecordMapper` works that out once per
such *system shape*, keeps it, and per record only adds what varies: the time,
record number, process, user, event data and the event id.

The output is the reference path's, value for value and key for key: records
whose shape the fast path does not know (``UserData``, ``RenderingInfo``,
qualified event ids, odd types) go the reference way, and so does the first
record of every shape, from whose event the shape is learnt.
"""

from __future__ import annotations

from typing import Any

from collectors.windows.ecs import enrich, enrichment
from collectors.windows.winlog import (
    _INT64,
    _scalar_text,
    event_data_fields,
    record_identity,
    winlog_event,
)
from govsoc.events import Event

__all__ = ["RecordMapper"]

#: winlog fields the shape fixes, in the order the reference path writes them
_SHAPE_WINLOG = ("provider_guid", "qualifiers", "version", "task", "opcode")
_MAX_SHAPES = 8192
_STR = frozenset((str,))


class _Shape:
    """What one system shape fixes, learnt from the first event of that shape."""

    __slots__ = (
        "channel",
        "code",
        "computer",
        "dataset",
        "handler",
        "host",
        "keywords",
        "level",
        "outcome",
        "provider_name",
        "winlog_tail",
    )

    def __init__(self, event: Event) -> None:
        winlog = event["winlog"]
        fields = event["event"]
        self.provider_name: str = winlog["provider_name"]
        self.code: str = winlog["event_id"]
        self.channel: str = winlog["channel"]
        self.computer: str = winlog["computer_name"]
        self.dataset: str = fields["dataset"]
        self.winlog_tail = {k: winlog[k] for k in _SHAPE_WINLOG if k in winlog}
        keywords = winlog.get("keywords")
        self.keywords: tuple[str, ...] | None = tuple(keywords) if keywords else None
        self.host = "host" in event
        log = event.get("log")
        self.level: str | None = log["level"] if log else None
        self.outcome, self.handler = enrichment(self.provider_name, keywords)


class RecordMapper:
    """Maps parsed ``evtx``-package records (``{"Event": ...}``) to ECS events."""

    def __init__(self) -> None:
        self._shapes: dict[tuple[Any, ...], _Shape] = {}

    def event(self, record: Any, original: str, source: str, position: str | int) -> Event:
        """The ECS event of ``record``, the JSON text ``original`` parsed, which the
        caller owns (its ``EventData`` becomes ``winlog.event_data``). Raises what
        :func:`~collectors.windows.winlog.winlog_event` raises for a bad record."""
        root = record.get("Event") if type(record) is dict else None
        if type(root) is not dict or len(root) > 3:
            return self._reference(record, original, source, position)
        system = root.get("System")
        if type(system) is not dict:
            return self._reference(record, original, source, position)
        get = system.get
        try:
            attrs = system["Provider"]["#attributes"]
            key = (attrs["Name"], attrs.get("Guid"), get("EventID"), get("Version"),
                   get("Level"), get("Task"), get("Opcode"), get("Keywords"),
                   get("Channel"), get("Computer"))
            shape = self._shapes[key]
        except (KeyError, TypeError):
            return self._reference(record, original, source, position)

        try:
            created = system["TimeCreated"]["#attributes"]["SystemTime"]
        except (KeyError, TypeError):
            created = None
        record_id = get("EventRecordID")
        if type(created) is not str or len(created) != 27 or created[26] != "Z" \
                or created[19] != "." or type(record_id) is not int \
                or "RenderingInfo" in root:
            return self._reference(record, original, source, position)
        record_id = str(record_id)

        channel = shape.channel
        winlog: dict[str, Any] = {
            "channel": channel,
            "provider_name": shape.provider_name,
            "event_id": shape.code,
            "record_id": record_id,
            "computer_name": shape.computer,
        }
        winlog.update(shape.winlog_tail)
        if shape.keywords is not None:
            winlog["keywords"] = [*shape.keywords]
        correlation = get("Correlation")
        if correlation:
            attrs = correlation.get("#attributes") if type(correlation) is dict else None
            if type(attrs) is dict:
                if attrs.get("ActivityID"):
                    winlog["activity_id"] = _scalar_text(attrs["ActivityID"])
                if attrs.get("RelatedActivityID"):
                    winlog["related_activity_id"] = _scalar_text(attrs["RelatedActivityID"])
        execution = get("Execution")
        if execution is not None:
            try:
                pid = execution["#attributes"]["ProcessID"]
                tid = execution["#attributes"]["ThreadID"]
            except (KeyError, TypeError):
                return self._reference(record, original, source, position)
            if type(pid) is not int or type(tid) is not int or not 0 <= pid < _INT64 \
                    or not 0 <= tid < _INT64:
                return self._reference(record, original, source, position)
            winlog["process"] = {"pid": pid, "thread": {"id": tid}}
        security = get("Security")
        if security:
            attrs = security.get("#attributes") if type(security) is dict else None
            user_sid = attrs.get("UserID") if type(attrs) is dict else None
            if user_sid:
                winlog["user"] = {"identifier": user_sid if type(user_sid) is str
                                  else _scalar_text(user_sid)}

        section = root.get("EventData", _ABSENT)
        if section is _ABSENT:
            return self._reference(record, original, source, position)
        if type(section) is dict and "Data" not in section and "#text" not in section \
                and "#attributes" not in section:
            if section:
                if set(map(type, section.values())) != _STR:
                    section = event_data_fields(section, True)
                winlog["event_data"] = section
        elif section is not None:
            data = event_data_fields(section, True)
            if data:
                winlog["event_data"] = data

        fields: dict[str, Any] = {
            "kind": "event",
            "module": "windows",
            "dataset": shape.dataset,
            "code": shape.code,
            "provider": shape.provider_name,
            "id": record_identity(shape.computer, channel, record_id, created),
            "original": original,
        }
        if shape.outcome is not None:
            fields["outcome"] = shape.outcome
        event: Event = {"@timestamp": created, "event": fields, "winlog": winlog}
        if shape.host:
            event["host"] = {"name": shape.computer}
        if shape.level is not None:
            event["log"] = {"level": shape.level}
        handler = shape.handler
        if handler is not None:
            handler(event, winlog.get("event_data") or {}, shape.code)
        return event

    def _reference(self, record: Any, original: str, source: str,
                   position: str | int) -> Event:
        event = winlog_event(record, original, source, position, reuse=True)
        root = record.get("Event", record)
        system = root["System"]
        get = system.get
        if len(root) <= 3 and "EventData" in root and len(self._shapes) < _MAX_SHAPES:
            # learn the shape (before enrichment adds what depends on the data)
            try:
                attrs = system["Provider"]["#attributes"]
                key = (attrs["Name"], attrs.get("Guid"), get("EventID"), get("Version"),
                       get("Level"), get("Task"), get("Opcode"), get("Keywords"),
                       get("Channel"), get("Computer"))
                hash(key)
            except (KeyError, TypeError):
                pass
            else:
                if type(key[0]) is str and type(key[2]) is int \
                        and "RenderingInfo" not in root:
                    self._shapes[key] = _Shape(event)
        return enrich(event)


_ABSENT = object()
