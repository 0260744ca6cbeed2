"""Match events and alerts: what the console triages, stored like Sigma's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from detection.yara.alerts import alerts_for, rule_severity, unsuppressed
from govsoc.events import get_field, validate_event
from store.base import Severity, Suppression

RULES = '''
rule webshell_one : webshell php {
  meta: description = "a shell" score = 85
  strings: $a = "EVIL-SHELL"
  condition: $a
}
rule quiet_one {
  meta: severity = "low"
  strings: $a = "EVIL"
  condition: $a
}
'''


def test_rule_severity_from_meta():
    assert rule_severity({"severity": "critical", "score": 10}) == Severity.CRITICAL
    assert rule_severity({"level": "informational"}) == Severity.INFORMATIONAL
    assert rule_severity({"score": 100}) == Severity.CRITICAL
    assert rule_severity({"score": 75}) == Severity.HIGH
    assert rule_severity({"score": 60}) == Severity.MEDIUM
    assert rule_severity({"score": "40"}) == Severity.LOW
    assert rule_severity({"author": "x"}) == Severity.MEDIUM


def test_one_event_and_one_alert_per_matched_file(make_scanner, tmp_path):
    tree = tmp_path / "www"
    tree.mkdir()
    (tree / "up.php").write_text("<?php /* EVIL-SHELL */")
    scanner = make_scanner({"r.yar": RULES})
    results = list(scanner.scan([str(tree)]))
    events, alerts = alerts_for(results, datetime(2026, 11, 23, 10, 0, tzinfo=UTC))
    assert len(events) == len(alerts) == 1
    event = validate_event(events[0])
    alert = alerts[0]
    assert get_field(event, "event.dataset") == "yara.match"
    assert get_field(event, "file.path") == str(tree / "up.php")
    assert get_field(event, "file.extension") == "php"
    assert get_field(event, "file.hash.sha256") == results[0].sha256
    assert sorted(get_field(event, "rule.name")) == ["quiet_one", "webshell_one"]
    assert event["tags"] == ["php", "webshell"]
    assert alert.source == "yara" and alert.dataset == "yara.match"
    assert alert.rule_id == "yara:webshell_one" and alert.severity == Severity.HIGH
    assert alert.event_ids == [event["event"]["id"]]
    assert alert.group_key.endswith(results[0].sha256)
    assert "a shell" in alert.description and "quiet_one" in alert.description
    assert {"yara", "webshell", "php"} <= set(alert.tags)
    matches = {m["rule"]: m for m in alert.fields["yara.matches"]}
    assert matches["webshell_one"]["strings"][0] == {
        "identifier": "$a", "offset": 9, "data": "EVIL-SHELL"}
    assert matches["quiet_one"]["severity"] == "low"
    assert alert.fields["file.owner"] and alert.fields["file.size"] == 22
    # a rescan of the unchanged file gives the same event id and group key
    again_events, again_alerts = alerts_for(list(scanner.scan([str(tree)])))
    assert again_events[0]["event"]["id"] == event["event"]["id"]
    assert again_alerts[0].group_key == alert.group_key


def test_alerts_are_recorded_and_folded_by_the_store(make_scanner, tmp_path, config):
    from store import open_store

    tree = tmp_path / "www"
    tree.mkdir()
    (tree / "a.php").write_text("EVIL-SHELL")
    scanner = make_scanner({"r.yar": RULES})
    store = open_store(config)
    try:
        for _ in range(2):
            events, alerts = alerts_for(list(scanner.scan([str(tree)])))
            store.insert_events(events)
            store.record_alerts(alerts, timedelta(hours=1))
        page = store.list_alerts()
        assert len(page.items) == 1 and page.items[0].count == 2
        assert page.items[0].source == "yara"
        stored = store.get_events(page.items[0].event_ids)
        assert get_field(stored[0], "file.path") == str(tree / "a.php")
    finally:
        store.close()


def test_suppressions_silence_by_rule_and_field(make_scanner, tmp_path):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "a.php").write_text("EVIL-SHELL")
    _, alerts = alerts_for(list(make_scanner({"r.yar": RULES}).scan([str(tmp_path / "w")])))
    now = datetime.now(UTC)
    path = str(tmp_path / "w" / "a.php")
    same = Suppression("yara:webshell_one", "file.path", path, "admin", now)
    other = Suppression("yara:other", "file.path", path, "admin", now)
    expired = Suppression("*", "file.path", path, "admin", now,
                          expires_at=now - timedelta(days=1))
    assert unsuppressed(alerts, [same]) == []
    assert unsuppressed(alerts, [other, expired]) == alerts
