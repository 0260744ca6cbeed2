"""``govsoc rules``, ``govsoc hunt`` and ``govsoc detect`` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import corpus_path

GOVSOC = [sys.executable, "-m", "govsoc"]

RULE = """title: Encoded PowerShell
id: 7f1b2c3d-0000-4000-8000-0000000000a1
level: high
tags:
    - attack.execution
    - attack.t1059.001
logsource:
    product: windows
    category: process_creation
detection:
    sel:
        Image|endswith: '\\\\powershell.exe'
        CommandLine|contains|windash: ' -enc'
    condition: sel
"""


WHOAMI = """title: Whoami Execution
id: 7f1b2c3d-0000-4000-8000-0000000000a2
level: medium
tags:
    - attack.discovery
    - attack.t1033
logsource:
    product: windows
    category: process_creation
detection:
    sel:
        Image|endswith: '\\whoami.exe'
    condition: sel
"""


def run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSOC_")}
    return subprocess.run(GOVSOC + args, cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=300)


def test_rules_check_reports_file_and_line_and_fails(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "good.yml").write_text(RULE)
    (rules / "bad.yml").write_text(RULE.replace("|windash", "|nosuch"))
    result = run(["rules", "check", str(rules)], tmp_path)
    assert result.returncode == 1
    assert f"{rules / 'bad.yml'}:" in result.stderr and "nosuch" in result.stderr
    assert "1 rules compiled" in result.stdout
    listed = run(["rules", "list", str(rules / "good.yml"), "--format", "jsonl"], tmp_path)
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["rule"]["id"] == "7f1b2c3d-0000-4000-8000-0000000000a1"
    assert "sysmon" in row["route"]


@pytest.mark.corpus
def test_hunt_over_evtx_files_without_a_store(tmp_path: Path) -> None:
    evtx = corpus_path("evtx-attack-samples")
    (tmp_path / "rule.yml").write_text(WHOAMI)
    result = run(["hunt", "--rules", str(tmp_path / "rule.yml"), str(evtx),
                  "--format", "jsonl"], tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows, result.stderr
    for row in rows:
        assert row["rule"] == {"id": "7f1b2c3d-0000-4000-8000-0000000000a2",
                               "name": "Whoami Execution", "level": "medium"}
        assert row["tags"] == ["attack.discovery", "attack.t1033"]
        assert row["log"]["file"]["path"].endswith(".evtx")
        assert row["event"]["winlog"]["event_data"]["Image"].lower().endswith("\\whoami.exe")
    assert not (tmp_path / "govsoc-data" / "govsoc.db").exists()
    table = run(["hunt", "--rules", str(tmp_path / "rule.yml"), str(evtx), "--format", "csv"],
                tmp_path)
    assert table.stdout.count("Whoami Execution") == len(rows)


@pytest.mark.corpus
def test_ingest_then_hunt_store_and_detect(tmp_path: Path) -> None:
    evtx = corpus_path("evtx-attack-samples", "Privilege Escalation")
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "rule.yml").write_text(WHOAMI)
    (tmp_path / "govsoc.yml").write_text(f"detection:\n  sigma_rules: ['{rules}']\n")
    ingest = run(["ingest", "evtx", str(evtx), "--no-detect"], tmp_path)
    assert ingest.returncode == 0, ingest.stderr
    files = run(["hunt", str(evtx), "--format", "jsonl"], tmp_path)
    stored = run(["hunt", "--since", "36500d", "--format", "jsonl"], tmp_path)
    assert stored.returncode == 0, stored.stderr
    ids = sorted(json.loads(x)["event"]["event"]["id"] for x in stored.stdout.splitlines())
    assert ids and ids == sorted(json.loads(x)["event"]["event"]["id"]
                                 for x in files.stdout.splitlines())
    detect = run(["detect"], tmp_path)
    assert detect.returncode == 0, detect.stderr
    alerts = run(["alerts", "list", "--format", "jsonl"], tmp_path)
    names = {json.loads(x)["rule_name"] for x in alerts.stdout.splitlines()}
    assert names == {"Whoami Execution"}
    again = run(["detect"], tmp_path)  # the checkpoint: nothing is examined twice
    assert "0 events examined" in again.stderr


def test_rules_test_says_whether_it_fired(tmp_path: Path) -> None:
    rule = tmp_path / "rule.yml"
    rule.write_text(RULE)
    events = tmp_path / "events.jsonl"
    hit = {"@timestamp": "2026-11-23T01:00:00Z",
           "event": {"kind": "event", "dataset": "windows.sysmon_operational"},
           "winlog": {"channel": "Microsoft-Windows-Sysmon/Operational", "event_id": "1",
                      "event_data": {"Image": "C:\\Windows\\powershell.exe",
                                     "CommandLine": "powershell /enc SQBFAFgA"}}}
    miss = json.loads(json.dumps(hit))
    miss["winlog"]["event_data"]["CommandLine"] = "powershell -File x.ps1"
    events.write_text(json.dumps(hit) + "\n" + json.dumps(miss) + "\n")
    result = run(["rules", "test", str(rule), "--events", str(events), "--format", "jsonl"],
                 tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    only_miss = tmp_path / "miss.jsonl"
    only_miss.write_text(json.dumps(miss) + "\n")
    result = run(["rules", "test", str(rule), "--events", str(only_miss)], tmp_path)
    assert result.returncode == 1
