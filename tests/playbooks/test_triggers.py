"""The shipped playbooks' triggers against the alerts our own rules raise.

YARA: files written the way attackers write them are scanned with the shipped
rules (rules/yara) and turned into alerts by the detection code, then routed.
Sigma: every shipped rule (rules/sigma) of a kind a playbook covers, as the engine
turns it into an alert (rule id, title, tags), is routed to that playbook.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from playbooks.triggers import matching_playbooks, subject_facts, techniques_of

REPO = Path(__file__).resolve().parents[2]


def test_techniques_are_read_from_sigma_tags():
    assert techniques_of(["attack.persistence", "attack.t1505.003"]) == {"T1505.003", "T1505"}
    assert techniques_of(["attack.T1110"]) == {"T1110"}
    assert techniques_of(["cve.2021-44228", "attack.g0007"]) == set()


def test_a_trigger_needs_every_condition(library):
    brute = library.get("brute-force-ssh-vpn")
    alert = {"rule_id": "x", "rule_name": "r", "tags": ["attack.t1110.001"],
             "severity": "low", "dataset": "sshd"}
    assert matching_playbooks([brute], alert) == [brute]
    # the DNS playbook's dataset trigger needs a high severity
    dns = library.get("dns-exfiltration")
    low = {"rule_id": "y", "rule_name": "r", "tags": [], "severity": "medium", "dataset": "dns"}
    assert matching_playbooks([dns], low) == []
    assert matching_playbooks([dns], {**low, "severity": "critical"}) == [dns]
    assert subject_facts(low)["severity"] == "medium"


@pytest.fixture(scope="module")
def yara_alerts(tmp_path_factory):
    from detection.yara.alerts import alerts_for
    from detection.yara.compiler import builtin_rules_dir, compile_rules
    from detection.yara.scanner import YaraScanner

    if not any(builtin_rules_dir().glob("*.yar")):
        pytest.skip("no shipped YARA rules in rules/yara")
    root = tmp_path_factory.mktemp("wwwroot")
    (root / "upload").mkdir()
    (root / "upload" / "cmd.php").write_text(
        '<?php $f = $_GET["f"]; $f($_POST["c"]); ?>\n', encoding="utf-8")
    (root / "index.html").write_text(
        "<!DOCTYPE html><html><head><title>Hacked by Anonymous</title></head>"
        "<body><h1>Hacked by Anonymous</h1><p>Your security is low</p></body></html>\n",
        encoding="utf-8")
    scanner = YaraScanner(compile_rules([builtin_rules_dir()]))
    results = {}
    for name in ("upload/cmd.php", "index.html"):
        result, _ = scanner.scan_file(str(root / name))
        assert result is not None and result.matches, f"the shipped rules miss {name}"
        _, alerts = alerts_for([result], datetime.now(UTC))
        results[name] = alerts[0]
    return results


def test_a_yara_webshell_alert_starts_the_webshell_playbook(library, yara_alerts):
    alert = yara_alerts["upload/cmd.php"]
    fitting = matching_playbooks(library, alert, "alert")
    assert [p.id for p in fitting] == ["webshell-portal"]
    assert [p.id for p in matching_playbooks(library, alert, "alert", auto_only=True)] == \
        ["webshell-portal"]


def test_a_yara_defacement_alert_starts_the_defacement_playbook(library, yara_alerts):
    alert = yara_alerts["index.html"]
    assert [p.id for p in matching_playbooks(library, alert, "alert", auto_only=True)] == \
        ["web-defacement"]


#: what each kind of Sigma rule is recognised by, and the playbook it must reach
SIGMA_KINDS = {
    "webshell": ({"T1505.003"}, "webshell-portal"),
    "defacement": ({"T1491", "T1491.002"}, "web-defacement"),
    "brute force": ({"T1110", "T1110.001", "T1110.003", "T1110.004"}, "brute-force-ssh-vpn"),
    "new admin / valid accounts": ({"T1136", "T1136.001", "T1136.002", "T1098", "T1078"},
                                   "compromised-account"),
    "dns tunnelling": ({"T1071.004", "T1048", "T1048.003", "T1572"}, "dns-exfiltration"),
    "beaconing": ({"T1071.001", "T1573", "T1571"}, "malware-c2-beaconing"),
    "denial of service": ({"T1498", "T1499"}, "ddos-public-services"),
    "phishing": ({"T1566", "T1566.001", "T1204.002"}, "phishing-attachment"),
    "port scan": ({"T1046", "T1595", "T1595.001"}, "recon-port-scan"),
}


def _sigma_rules() -> list[dict]:
    import yaml

    rules = []
    for path in sorted((REPO / "rules" / "sigma").rglob("*.yml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("id") and doc.get("title"):
                rules.append({"path": path, **doc})
    return rules


def test_every_shipped_sigma_rule_of_a_covered_kind_reaches_its_playbook(library):
    rules = _sigma_rules()
    if not rules:
        pytest.skip("no shipped Sigma rules in rules/sigma yet")
    covered = 0
    for rule in rules:
        techniques = techniques_of(rule.get("tags") or [])
        alert = {"rule_id": str(rule["id"]), "rule_name": rule["title"],
                 "tags": list(rule.get("tags") or []), "severity": rule.get("level", "medium"),
                 "dataset": None}
        fitting = {p.id for p in matching_playbooks(library, alert, "alert")}
        if alert["severity"] in ("informational", "low"):
            # single failed logons, single connections: never a response started by itself
            started = matching_playbooks(library, alert, "alert", auto_only=True)
            assert started == [], f"{rule['title']} would start {[p.id for p in started]}"
        for kind, (wanted, playbook_id) in SIGMA_KINDS.items():
            if techniques & wanted:
                covered += 1
                assert playbook_id in fitting, (
                    f"{rule['path'].name} ({rule['title']}, {kind}) does not reach "
                    f"{playbook_id}; it reaches {sorted(fitting)}")
    assert covered, "no shipped Sigma rule is of a kind the playbooks cover"


def test_a_routine_account_creation_is_suggested_but_not_started(library):
    rule = next((r for r in _sigma_rules() if r["title"].startswith("New Account")), None)
    if rule is None:
        pytest.skip("the shipped 'New Account' Sigma rule is not there")
    alert = {"rule_id": str(rule["id"]), "rule_name": rule["title"], "tags": rule["tags"],
             "severity": rule["level"], "dataset": "windows.security"}
    assert [p.id for p in matching_playbooks(library, alert)] == ["compromised-account"]
    if rule["level"] != "high":
        assert matching_playbooks(library, alert, auto_only=True) == []


@pytest.fixture(scope="module")
def sigma_detector():
    from detection.sigma.engine import SigmaDetector

    return SigmaDetector.from_paths(["builtin"])


def _windows_event(n: int, code: int, channel: str, provider: str, data: dict, **fields):
    from govsoc.events import event_id, new_event

    event = new_event("windows.test", datetime.now(UTC), module="windows", **fields)
    event["event"].update({"id": event_id("tests/playbooks/sigma", n), "code": str(code)})
    event["winlog"] = {"event_id": code, "channel": channel, "provider_name": provider,
                       "event_data": data}
    return event


SIGMA_EVENTS = {
    # a member added to Administrators (Windows Security 4732)
    "new-domain-admin": (lambda: _windows_event(
        1, 4732, "Security", "Microsoft-Windows-Security-Auditing",
        {"TargetUserName": "Administrators", "TargetSid": "S-1-5-32-544",
         "MemberName": "CN=backup_adm", "SubjectUserName": "backup_adm"}, host__name="dc01"),
        "compromised-account"),
    # IIS runs cmd.exe (Sysmon process creation)
    "webshell-exec": (lambda: _windows_event(
        2, 1, "Microsoft-Windows-Sysmon/Operational", "Microsoft-Windows-Sysmon",
        {"Image": "C:\\Windows\\System32\\cmd.exe",
         "ParentImage": "c:\\windows\\system32\\inetsrv\\w3wp.exe",
         "CommandLine": "cmd.exe /c whoami"}, host__name="portal-web-01",
        process__executable="C:\\Windows\\System32\\cmd.exe",
        process__parent__executable="c:\\windows\\system32\\inetsrv\\w3wp.exe",
        process__command_line="cmd.exe /c whoami"),
        "webshell-portal"),
}


@pytest.mark.parametrize("name", sorted(SIGMA_EVENTS))
def test_the_sigma_engines_alert_starts_its_playbook(users, pb_config, library,
                                                     sigma_detector, name):
    """An event goes through the shipped Sigma rules; the alert they raise, recorded in
    the store, auto-starts the playbook through the alert listener."""
    from datetime import timedelta

    from playbooks.automation import PlaybookAutomation

    build, playbook_id = SIGMA_EVENTS[name]
    drafts = sigma_detector.detect([build()])
    assert drafts, f"the shipped Sigma rules raise nothing for {name}"
    automation = PlaybookAutomation(users, pb_config, library)
    automation.start()
    automation(users.record_alerts(drafts, timedelta(hours=1)))
    automation.drain()
    automation.stop()
    runs = [automation.engine.runs.get(r) for r in automation.started_runs]
    assert [r.playbook_id for r in runs] == [playbook_id]
    assert runs[0].status == "waiting" and runs[0].case_id is not None
