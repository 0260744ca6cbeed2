"""The streaming detector: alerts, suppressions, bad rules, the cache, the ingest pipeline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from collectors.base import Batch
from detection.sigma.engine import SigmaDetector
from detection.sigma.ruleset import compile_texts, load_ruleset
from govsoc.pipeline import Pipeline, build_detectors
from store.base import Severity, Suppression
from tests.detection.sigma.helpers import detector, rule_text, sysmon_event

WHOAMI = rule_text("sel:\n    Image|endswith: '\\whoami.exe'\ncondition: sel",
                   title="Whoami execution", level="high")


def test_alert_carries_rule_and_event() -> None:
    det = detector(WHOAMI)
    event = sysmon_event(1, n=7, Image="C:\\Windows\\System32\\whoami.exe", User="CORP\\bob")
    (alert,) = det.detect([event, sysmon_event(1, n=8, Image="C:\\x\\notepad.exe")])
    assert alert.rule_id == "5d0b1e2a-0000-4000-8000-000000000001"
    assert alert.rule_name == "Whoami execution"
    assert alert.severity is Severity.HIGH
    assert alert.tags == ["attack.execution", "attack.t1059.001"]
    assert alert.event_ids == [event["event"]["id"]]
    assert alert.fields["winlog.event_data.Image"].endswith("whoami.exe")
    assert alert.matched_fields == ["winlog.event_data.Image"]
    assert alert.dataset == "windows.sysmon_operational"
    assert "host=ws01" in alert.group_key
    assert alert.timestamp == datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def test_suppression_by_rule_and_field() -> None:
    det = detector(WHOAMI)
    noisy = sysmon_event(1, Image="C:\\Windows\\System32\\whoami.exe",
                         ParentImage="C:\\Tools\\inventory.exe")
    other = sysmon_event(1, n=2, Image="C:\\Windows\\System32\\whoami.exe",
                         ParentImage="C:\\Windows\\cmd.exe")
    now = datetime.now(UTC)
    det.set_suppressions([Suppression(det.rules[0].rule_id,
                                      "winlog.event_data.ParentImage",
                                      "c:\\tools\\inventory.exe", "admin", now)])
    alerts = det.detect([noisy, other])
    assert [a.event_ids for a in alerts] == [[other["event"]["id"]]]
    det.set_suppressions([Suppression("*", "host.name", "WS01", "admin", now,
                                      expires_at=now - timedelta(seconds=1))])
    assert len(det.detect([noisy, other])) == 2  # expired: no longer honoured


def test_bad_rules_are_reported_and_the_others_load(tmp_path: Path) -> None:
    (tmp_path / "good.yml").write_text(WHOAMI)
    (tmp_path / "bad_yaml.yml").write_text("title: x\ndetection: [unclosed\n")
    (tmp_path / "bad_modifier.yml").write_text(rule_text(
        "sel:\n    Image|nosuchmodifier: 'x'\ncondition: sel",
        rule_id="5d0b1e2a-0000-4000-8000-000000000002"))
    (tmp_path / "bad_regex.yml").write_text(rule_text(
        "sel:\n    Image|re: '(unclosed'\ncondition: sel",
        rule_id="5d0b1e2a-0000-4000-8000-000000000003"))
    (tmp_path / "bad_condition.yml").write_text(rule_text(
        "sel:\n    Image: 'x'\ncondition: sel and nothere",
        rule_id="5d0b1e2a-0000-4000-8000-000000000004"))
    ruleset = load_ruleset([tmp_path, tmp_path / "missing"])
    assert [r.title for r in ruleset.rules] == ["Whoami execution"]
    errors = {Path(p.path).name: p for p in ruleset.errors}
    assert set(errors) == {"bad_yaml.yml", "bad_modifier.yml", "bad_regex.yml",
                           "bad_condition.yml", "missing"}
    assert errors["bad_yaml.yml"].line == 2
    assert "nosuchmodifier" in errors["bad_modifier.yml"].message
    assert errors["bad_modifier.yml"].line is not None


def test_compiled_rules_are_cached_by_content(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "r.yml").write_text(WHOAMI)
    cache = tmp_path / "cache"
    first = load_ruleset([rules], cache_dir=cache)
    second = load_ruleset([rules], cache_dir=cache)
    assert (first.cached_files, second.cached_files) == (0, 1)
    event = sysmon_event(1, Image="C:\\whoami.exe")
    assert SigmaDetector(second).match_event(event)
    (rules / "r.yml").write_text(WHOAMI.replace("whoami.exe", "hostname.exe"))
    third = load_ruleset([rules], cache_dir=cache)
    assert third.cached_files == 0
    assert not SigmaDetector(third).match_event(event)


def test_pipeline_raises_and_folds_alerts(config, tmp_path: Path) -> None:
    from store import open_store

    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "whoami.yml").write_text(WHOAMI)
    config.values["detection"]["sigma_rules"] = [str(rules)]
    store = open_store(config)
    try:
        detectors = build_detectors(config, store)
        pipeline = Pipeline(store, detectors, alert_window=timedelta(hours=1))
        events = [sysmon_event(1, n=i, Image="C:\\Windows\\System32\\whoami.exe")
                  for i in range(3)]
        pipeline.submit(Batch(events=events, rejected=[], checkpoint=None))
        pipeline.submit(Batch(events=events, rejected=[], checkpoint=None))  # redelivered
        page = store.list_alerts()
        assert len(page.items) == 1
        assert page.items[0].count == 3
        assert page.items[0].rule_name == "Whoami execution"
    finally:
        store.close()


def test_compile_texts_keeps_problem_locations() -> None:
    ruleset = compile_texts(["title: t\nlogsource: {product: windows}\ndetection:\n"
                             "    sel: {Image|endswith: x}\n    condition: sel or other\n"])
    assert ruleset.errors and ruleset.errors[0].line is not None


def test_rules_found_by_field_value_regex_and_both_selections() -> None:
    """Rules the prefilter finds by a field's value, by a regular expression without a
    literal, by two rare characters, or only where both of their selections hold."""
    by_value = rule_text("sel:\n    OriginalFileName: 'Cmd.Exe'\n    CommandLine|contains: ' /q'\n"
                         "condition: sel", rule_id="5d0b1e2a-0000-4000-8000-0000000000a1")
    by_regex = rule_text("sel:\n    CommandLine|re: '\\s[a-fA-F0-9]{16}\\s[0-9]{4}'\n"
                         "condition: sel", rule_id="5d0b1e2a-0000-4000-8000-0000000000a2")
    by_carets = rule_text("sel:\n    CommandLine|contains: '^^'\ncondition: sel",
                          rule_id="5d0b1e2a-0000-4000-8000-0000000000a3")
    det = detector(by_value, by_regex, by_carets)

    def fired(**data: str) -> set[str]:
        return {a.rule_id[-2:] for a in det.detect([sysmon_event(1, **data)])}

    assert fired(OriginalFileName="CMD.EXE", CommandLine="cmd.exe /Q /c dir") == {"a1"}
    # the literal occurs, but in another field than the value the rule needs
    assert fired(OriginalFileName="whoami.exe", Image="C:\\cmd.exe",
                 CommandLine="cmd.exe /q") == set()
    assert fired(CommandLine="run 0123456789abcdef 2024 now") == {"a2"}
    assert fired(CommandLine="run 0123456789abcdeg 2024 now") == set()
    assert fired(CommandLine="c^^m^^d /c whoami") == {"a3"}
    assert fired(CommandLine="c^m^d /c whoami") == set()
