"""Batches and their building: the garbage collector is paused only while a
collector builds a batch."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from collectors.base import Batch, built_without_gc
from collectors.lines import RawLine
from collectors.textlog import line_batches
from govsoc.events import Event


@pytest.fixture(autouse=True)
def _collector_enabled() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_the_collector_is_paused_while_a_batch_is_built_and_runs_while_it_is_held() -> None:
    seen_inside: list[bool] = []

    def build() -> Iterator[Batch]:
        for _ in range(3):
            seen_inside.append(gc.isenabled())
            yield Batch()

    for _batch in built_without_gc(build()):
        assert gc.isenabled()
    assert seen_inside == [False, False, False]
    assert gc.isenabled()


def test_an_error_while_building_leaves_the_collector_running() -> None:
    def build() -> Iterator[Batch]:
        yield Batch()
        raise ValueError("bad record")

    batches = built_without_gc(build())
    next(batches)
    with pytest.raises(ValueError):
        next(batches)
    assert gc.isenabled()


def test_a_collector_somebody_else_disabled_stays_disabled() -> None:
    gc.disable()
    for _batch in built_without_gc(iter([Batch(), Batch()])):
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_abandoning_the_batches_closes_the_collector() -> None:
    closed: list[bool] = []

    def build() -> Iterator[Batch]:
        try:
            while True:
                yield Batch()
        finally:
            closed.append(True)

    batches = built_without_gc(build())
    next(batches)
    batches.close()  # type: ignore[attr-defined]
    assert closed == [True]


def test_line_events_are_built_with_the_collector_paused() -> None:
    states: list[bool] = []

    def parse(text: str, line: RawLine) -> Event:
        states.append(gc.isenabled())
        return {"@timestamp": "2026-01-01T00:00:00Z",
                "event": {"kind": "event", "dataset": "test.lines"}, "message": text}

    lines = [RawLine(n, n * 10, b"line %d" % n, False, 10) for n in range(1, 6)]
    events = [e for b in line_batches(lines, parse, "src", "/var/log/x", batch_size=2)
              for e in b.events]
    assert [e["message"] for e in events] == [f"line {n}" for n in range(1, 6)]
    assert states == [False] * 5
    assert gc.isenabled()
