"""Rules pages: upload with the engines' validation, test on recent stored events,
enable/disable, the rule source on the alert page."""

from __future__ import annotations

import pytest

from store.base import AuditFilter

from .conftest import make_alert

SIGMA = """title: Encoded PowerShell in a test dataset
id: 6e3c9a7e-1111-4222-8333-944444444444
status: test
level: high
description: PowerShell started with an encoded command
logsource:
  product: govsoc
  service: test.console
detection:
  sel:
    process.command_line|contains: ' -enc '
  condition: sel
tags:
  - attack.execution
"""
SIGMA_ID = "6e3c9a7e-1111-4222-8333-944444444444"
YARA = 'rule Webshell_eval_b64 {\n  strings: $a = "eval(base64_decode"\n  condition: $a\n}\n'


@pytest.fixture
def engineer(login):
    return login("dee")


def test_check_and_test_a_sigma_rule_on_recent_events(engineer, store):
    make_alert(store, fields={"host.name": "ws1",
                              "process.command_line": "powershell.exe -enc SQBFAFgA"})
    make_alert(store, fields={"host.name": "ws2", "process.command_line": "notepad.exe"})
    response = engineer.post("/rules/upload", data={"language": "sigma", "text": SIGMA,
                                                    "action": "test", "hours": "24"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'data-testid="rule-valid"' in page
    assert "1 of 2 events of the last 24 hours matched." in page
    assert "powershell.exe -enc SQBFAFgA" in page and "notepad.exe" not in page
    # checking does not save
    assert "Encoded PowerShell" not in engineer.get("/rules").get_data(as_text=True)


def test_save_view_disable_and_show_on_alert(engineer, store):
    response = engineer.post("/rules/upload", data={"language": "sigma", "text": SIGMA,
                                                    "action": "save"})
    assert response.status_code == 303
    listing = engineer.get("/rules").get_data(as_text=True)
    assert "Encoded PowerShell in a test dataset" in listing
    view = engineer.get(f"/rules/{SIGMA_ID}/view").get_data(as_text=True)
    assert "process.command_line|contains" in view
    engineer.post(f"/rules/{SIGMA_ID}/state", data={"enabled": "0"})
    assert store.get_setting("rules.disabled") == [SIGMA_ID]
    assert "disabled" in engineer.get(f"/rules/{SIGMA_ID}/view").get_data(as_text=True)
    engineer.post(f"/rules/{SIGMA_ID}/state", data={"enabled": "1"})
    assert store.get_setting("rules.disabled") == []
    actions = [e.action for e in store.list_audit(AuditFilter(target_type="rule")).items]
    assert {"rule.upload", "rule.disable", "rule.enable"} <= set(actions)
    alert = make_alert(store, rule_id=SIGMA_ID)
    detail = engineer.get(f"/alerts/{alert.id}").get_data(as_text=True)
    assert 'data-testid="rule-source"' in detail and "process.command_line|contains" in detail
    run = engineer.get(f"/rules/{SIGMA_ID}/test?hours=24").get_data(as_text=True)
    assert 'data-testid="rule-test-result"' in run


def test_invalid_sigma_rules_show_their_problems(engineer, store):
    broken = SIGMA.replace("condition: sel", "condition: sel and missing")
    response = engineer.post("/rules/upload", data={"language": "sigma", "text": broken,
                                                    "action": "save"})
    assert response.status_code == 400
    assert "missing" in response.get_data(as_text=True)
    yaml_error = engineer.post("/rules/upload", data={"language": "sigma",
                                                      "text": "title: [unclosed\n"})
    assert yaml_error.status_code == 400
    assert "not valid YAML" in yaml_error.get_data(as_text=True)
    assert store.get_setting("rules.custom") is None  # nothing was saved


def test_yara_upload_checks_and_tests(engineer, store):
    from govsoc.events import event_id, format_timestamp, new_event, utcnow

    event = new_event("test.web", "2026-11-23T00:00:00Z",
                      original='<?php eval(base64_decode("ZWNobyAx")); ?>')
    event["@timestamp"] = format_timestamp(utcnow())
    event["event"]["id"] = event_id("yara-test", 1)
    store.insert_events([event])
    response = engineer.post("/rules/upload", data={"language": "yara", "text": YARA,
                                                    "action": "test", "hours": "1"})
    page = response.get_data(as_text=True)
    assert 'data-testid="rule-valid"' in page and "1 of 1 events" in page
    broken = engineer.post("/rules/upload", data={
        "language": "yara", "text": "rule broken {\n strings: $a = \"x\"\n condition: $b }"})
    assert broken.status_code == 400
    text = broken.get_data(as_text=True)
    assert "line 3: undefined string" in text
    saved = engineer.post("/rules/upload", data={"language": "yara", "text": YARA,
                                                 "action": "save"})
    assert saved.headers["Location"].endswith("/rules/yara:Webshell_eval_b64/view")


def test_upload_refuses_binary_and_oversized(engineer):
    from io import BytesIO

    response = engineer.post("/rules/upload", data={
        "language": "yara", "file": (BytesIO(b"\xff\xfe\x00rule"), "x.yar")},
        content_type="multipart/form-data")
    assert response.status_code == 400
    big = engineer.post("/rules/upload", data={"language": "sigma", "text": "x" * 600_000})
    assert big.status_code in (400, 413)


def test_analyst_cannot_upload(analyst):
    assert analyst.post("/rules/upload", data={"language": "sigma", "text": SIGMA,
                                                "action": "save"}).status_code == 403


def test_problem_lines_match_what_the_browser_sent(engineer):
    text = 'rule crlf {\r\n  strings: $a = "x"\r\n\r\n  condition: $nope }\r\n'
    response = engineer.post("/rules/upload", data={"language": "yara", "text": text})
    assert "line 4: undefined string" in response.get_data(as_text=True)
