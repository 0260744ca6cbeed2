"""EVTX conformance against real logs: every corpus file reads without a crash or a
lost record, and SigmaHQ's regression data agrees with the JSON rendering shipped
beside each ``.evtx``."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from collectors.evtx import CHUNK_SIZE, HEADER_BLOCK, EvtxStats, iter_evtx_paths, read_evtx
from collectors.windows.winlog import event_data_fields, user_data_fields
from govsoc.events import validate_event
from tests.conftest import corpus_path

pytestmark = pytest.mark.corpus

CORPORA = (("evtx-attack-samples",), ("hayabusa-sample-evtx",), ("sigma", "regression_data"))


def _records_in_chunk_headers(path: Path) -> int:
    """How many records the file's chunk headers announce (an oracle independent of
    the parser: first and last record number of every chunk)."""
    raw = path.read_bytes()
    total = 0
    for offset in range(HEADER_BLOCK, len(raw) - CHUNK_SIZE + 1, CHUNK_SIZE):
        if raw[offset:offset + 8] != b"ElfChnk\x00":
            continue
        first, last = struct.unpack_from("<QQ", raw, offset + 8)
        if last >= first:
            total += last - first + 1
    return total


@pytest.mark.parametrize("parts", CORPORA, ids=["/".join(p) for p in CORPORA])
def test_every_file_reads_without_crash_or_loss(parts):
    files = list(iter_evtx_paths([corpus_path(*parts)]))
    assert len(files) > 100
    events = rejected = expected = 0
    datasets: set[str] = set()
    for path in files:
        stats = EvtxStats()
        for batch in read_evtx(path, stats=stats):
            rejected += len(batch.rejected)
            for event in batch.events:
                validate_event(event, str(path))
                datasets.add(event["event"]["dataset"])
            events += len(batch.events)
        expected += _records_in_chunk_headers(path)
        assert stats.records == stats.events + stats.rejected
    assert rejected == 0
    assert events == expected
    assert "windows.security" in datasets or "windows.sysmon_operational" in datasets


def _json_objects(path: Path) -> list[dict]:
    """The concatenated pretty-printed JSON objects of a regression ``.json`` file."""
    text = path.read_text(encoding="utf-8-sig")
    decoder = json.JSONDecoder()
    objects, index = [], 0
    while True:
        while index < len(text) and text[index].isspace():
            index += 1
        if index >= len(text):
            return objects
        obj, index = decoder.raw_decode(text, index)
        objects.append(obj)


def test_regression_data_agrees_with_the_shipped_json_rendering():
    root = corpus_path("sigma", "regression_data")
    files = list(iter_evtx_paths([root]))
    assert len(files) == 202
    fields = exact = trailing_space = other = events_compared = 0
    differences = []
    for path in files:
        expected = _json_objects(path.with_suffix(".json"))
        events = [e for batch in read_evtx(path) for e in batch.events]
        assert len(events) == len(expected), path
        by_record = {str(o["Event"]["System"]["EventRecordID"]): o["Event"] for o in expected}
        assert {e["winlog"]["record_id"] for e in events} == set(by_record), path
        for event in events:
            want = by_record[event["winlog"]["record_id"]]
            system = want["System"]
            event_id = system["EventID"]
            event_id = event_id["#text"] if isinstance(event_id, dict) else event_id
            assert event["winlog"]["event_id"] == str(event_id)
            assert event["event"]["code"] == str(event_id)
            assert event["winlog"]["channel"] == system["Channel"]
            assert event["winlog"]["computer_name"] == system["Computer"]
            assert event["winlog"]["provider_name"] == system["Provider"]["#attributes"]["Name"]
            events_compared += 1
            got = event["winlog"].get("event_data", {})
            wanted = event_data_fields(want.get("EventData"))
            user_data = user_data_fields(want.get("UserData"))
            if user_data:
                assert event["winlog"]["user_data"] == user_data
            for name, value in wanted.items():
                fields += 1
                ours = got.get(name)
                if ours == value:
                    exact += 1
                elif isinstance(ours, str) and ours.rstrip() == value:
                    # the shipped rendering trims trailing blanks; Windows and our
                    # reader keep them (a command line ending in a space)
                    trailing_space += 1
                else:
                    other += 1
                    differences.append((path.name, name, value, ours))
    print(f"\nregression_data: {events_compared} events, {fields} EventData fields: "
          f"{exact} identical, {trailing_space} differ only by trailing blanks the "
          f"shipped JSON trimmed, {other} other: {differences}")
    assert events_compared >= 202
    # the one other difference seen is letter case the shipped JSON changed by hand
    assert other <= 2, differences
    assert all(str(ours).lower() == str(value).lower() for _, _, value, ours in differences)
    assert exact / fields > 0.97


def test_reader_gives_what_record_to_event_gives_key_for_key():
    """read_evtx maps the parsed records it owns in place (no copies); every corpus
    record must still come out exactly as record_to_event makes it from the same
    record, values and key order alike."""
    import evtx
    import orjson

    from collectors.evtx import record_to_event

    compared = 0
    for parts in CORPORA:
        for path in iter_evtx_paths([corpus_path(*parts)]):
            fast = [e for batch in read_evtx(path) for e in batch.events]
            reference = []
            for record in evtx.PyEvtxParser(str(path), number_of_threads=1).records_json():
                data = record["data"]
                reference.append(record_to_event(orjson.loads(data), original=data,
                                                 source=str(path),
                                                 position=record["event_record_id"]))
            assert len(fast) == len(reference), path
            for ours, want in zip(fast, reference, strict=True):
                assert ours == want, (path, ours["winlog"]["record_id"])
                assert orjson.dumps(ours) == orjson.dumps(want), path
            compared += len(fast)
    assert compared > 8000
