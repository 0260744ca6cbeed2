"""The compiled type check never accepts what the field-by-field walk rejects."""

from __future__ import annotations

import copy
import itertools
import random
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from govsoc.errors import EventValidationError
from govsoc.events import FIELDS, set_field, validate_event
from govsoc.fastcheck import types_certainly_valid

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from ecs_synth import synth_events

BASE: dict[str, Any] = {"@timestamp": "2026-11-23T08:00:00.000000Z",
                        "event": {"kind": "event", "dataset": "test.sample", "id": "x1"}}

VALUES: list[Any] = [
    "text", "12", "-7", "--3", "", "²", "1.5", "true", 7, -1, 2**63, 1.5, 0.0, True, False,
    None, [], ["a", "b"], [1, 2], ["12", 3], [1.5], [True], [None], ["a", None], [[1]],
    [{"a": 1}], {}, {"a": 1}, {"a": {"b": [1]}},
]


def walk_accepts(doc: dict[str, Any]) -> bool:
    try:
        validate_event(copy.deepcopy(doc))
    except EventValidationError:
        return False
    return True


def test_never_more_lenient_than_the_walk_on_any_registered_field() -> None:
    names = [*sorted(FIELDS), "winlog.event_data.Image", "labels.team", "govsoc.note",
             "source", "winlog.event_data", "unregistered.thing"]
    compared = fast_accepted = 0
    for name, value in itertools.product(names, VALUES):
        if name in ("@timestamp", "event.kind", "event.dataset", "event.id"):
            continue
        doc = copy.deepcopy(BASE)
        set_field(doc, name, copy.deepcopy(value))
        fast = types_certainly_valid(orjson.dumps(doc))
        compared += 1
        if fast:
            fast_accepted += 1
            assert walk_accepts(doc), f"{name}={value!r} passed the compiled check only"
    # the check is useful, not just safe: most shapes are decided without the walk
    assert compared > 5000 and fast_accepted > compared // 3


def test_random_mixtures_agree() -> None:
    rng = random.Random(7)
    names = sorted(FIELDS)
    for _ in range(3000):
        doc = copy.deepcopy(BASE)
        for name in rng.sample(names, 6):
            if name not in ("@timestamp", "event.kind", "event.dataset", "event.id"):
                set_field(doc, name, copy.deepcopy(rng.choice(VALUES)))
        if types_certainly_valid(orjson.dumps(doc)):
            assert walk_accepts(doc), orjson.dumps(doc)


@pytest.mark.parametrize("raw", [
    b'{"source.ip": {"x": 1}}',
    b'{"source": {"geo.city_name": {"x": 1}}}',
    b'{"so\\u0075rce": {"port": "abc"}}',
    b'{"source": {"port": 1}, "source": {"port": "abc"}}',
    b'{"event": {"severity": "12\\u00b2"}}',
])
def test_dotted_escaped_and_repeated_keys_go_the_python_way(raw: bytes) -> None:
    assert types_certainly_valid(raw) is False


def test_ordinary_events_are_decided_without_the_walk() -> None:
    events = list(synth_events(2000))
    plain = [e for e in events if "winlog" not in e]
    assert plain
    assert all(types_certainly_valid(orjson.dumps(e)) for e in plain)
