from __future__ import annotations

from datetime import UTC, datetime

import pytest

from govsoc.errors import EventValidationError
from govsoc.events import (
    FIELDS,
    event_id,
    field_type,
    flatten,
    get_field,
    new_event,
    parse_timestamp,
    set_field,
    validate_event,
)


def test_dotted_get_and_set():
    event: dict = {}
    set_field(event, "source.ip", "10.0.0.1")
    set_field(event, "source.port", 22)
    assert event == {"source": {"ip": "10.0.0.1", "port": 22}}
    assert get_field(event, "source.ip") == "10.0.0.1"
    assert get_field(event, "source.missing", "d") == "d"
    assert get_field({"source.ip": "1.2.3.4"}, "source.ip") == "1.2.3.4"
    assert get_field({"winlog": {"event_data.Image": "x"}}, "winlog.event_data.Image") == "x"
    assert get_field({"a": "scalar"}, "a.b") is None
    assert flatten(event) == {"source.ip": "10.0.0.1", "source.port": 22}


def test_event_id_is_deterministic_and_position_sensitive():
    assert event_id("file:/var/log/auth.log", 10) == event_id("file:/var/log/auth.log", "10")
    assert event_id("file:/var/log/auth.log", 10) != event_id("file:/var/log/auth.log", 11)
    assert event_id("a", "bc") != event_id("ab", "c")
    assert len(event_id("x", 1)) == 32


def test_validation_normalises_timestamp():
    event = validate_event({"@timestamp": "2026-11-23T17:00:00+07:00",
                            "event": {"kind": "event", "dataset": "x"}})
    assert event["@timestamp"] == "2026-11-23T10:00:00.000000Z"
    nanos = validate_event({"@timestamp": "2026-11-23T10:00:00.123456789Z",
                            "event": {"kind": "event", "dataset": "x"}})
    assert nanos["@timestamp"] == "2026-11-23T10:00:00.123456Z"


@pytest.mark.parametrize(("event", "field"), [
    ({"event": {"kind": "event", "dataset": "x"}}, "@timestamp"),
    ({"@timestamp": "2026-01-01T00:00:00Z", "event": {"dataset": "x"}}, "event.kind"),
    ({"@timestamp": "2026-01-01T00:00:00Z", "event": {"kind": "event"}}, "event.dataset"),
    ({"@timestamp": "yesterday", "event": {"kind": "event", "dataset": "x"}}, "@timestamp"),
    ({"@timestamp": "2026-01-01T00:00:00Z", "event": {"kind": "bogus", "dataset": "x"}},
     "event.kind"),
    ({"@timestamp": "2026-01-01T00:00:00Z", "event": {"kind": "event", "dataset": "x"},
      "source": {"port": "not a number"}}, "source.port"),
    ({"@timestamp": "2026-01-01T00:00:00Z", "event": {"kind": "event", "dataset": "x"},
      "source": {"port": True}}, "source.port"),
])
def test_validation_names_the_field(event, field):
    with pytest.raises(EventValidationError) as info:
        validate_event(event, "/data/x.jsonl", 7)
    assert info.value.field == field
    assert "/data/x.jsonl:7" in str(info.value)


def test_validation_rejects_non_objects():
    with pytest.raises(EventValidationError):
        validate_event(["not", "an", "object"])


def test_registry_types_and_dynamic_fields():
    assert field_type("source.ip") == "ip"
    assert field_type("destination.port") == "long"
    assert field_type("winlog.event_data.CommandLine") == "keyword"
    assert field_type("no.such.field") is None
    assert FIELDS["network.connection.state"].ecs is False
    assert all(f.description for f in FIELDS.values() if not f.ecs)


def test_parse_timestamp_spellings():
    expected = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert parse_timestamp("2026-11-23T10:00:00Z") == expected
    assert parse_timestamp(expected.timestamp()) == expected
    assert parse_timestamp(int(expected.timestamp() * 1000)) == expected
    assert parse_timestamp("2026-11-23 10:00:00") == expected
    with pytest.raises(ValueError):
        parse_timestamp(True)


def test_new_event_sets_required_fields():
    event = new_event("system.auth", "2026-11-23T10:00:00Z", original="raw line",
                      source__ip="10.0.0.1")
    assert validate_event(event)["source"]["ip"] == "10.0.0.1"
    assert event["event"]["original"] == "raw line"


def test_the_id_maker_gives_the_ids_event_id_gives():
    from govsoc.events import event_id_maker

    make = event_id_maker("jsonl:/var/log/cổng-dịch-vụ.json")
    for position in (1, 2, "17:3", 10**12):
        assert make(position) == event_id("jsonl:/var/log/cổng-dịch-vụ.json", position)
    assert make(1) != event_id_maker("jsonl:/other")(1)
