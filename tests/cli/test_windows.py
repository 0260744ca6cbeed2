"""``govsoc ingest evtx`` and ``govsoc ingest winlog-json`` as a user runs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import corpus_path

GOVSOC = [sys.executable, "-m", "govsoc"]


def run(args, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSOC_")}
    return subprocess.run(GOVSOC + args, cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.mark.corpus
def test_ingest_evtx_directory_stores_once_and_counts_dead_letters(tmp_path):
    source = corpus_path("evtx-attack-samples", "Credential Access")
    logs = tmp_path / "logs"
    shutil.copytree(source, logs / "copy")
    damaged = logs / "copy" / "nested" / "cut.evtx"
    damaged.parent.mkdir()
    raw = corpus_path("evtx-attack-samples", "Privilege Escalation",
                      "Sysmon_UACME_64.evtx").read_bytes()
    damaged.write_bytes(raw[: 4096 + 65536 + 3000])

    first = run(["ingest", "evtx", str(logs), "--no-detect"], tmp_path)
    assert first.returncode == 3, first.stderr  # the cut-off chunk is a dead letter
    assert "rejected 1" in first.stdout
    assert "windows.sysmon_operational" in first.stdout
    assert "windows.security" in first.stdout
    stored = int(first.stdout.split("stored ")[1].split()[0].replace(",", ""))
    assert stored > 200

    again = run(["ingest", "evtx", str(logs / "copy"), "--no-detect"], tmp_path)
    assert f"duplicates {stored:,}" in again.stdout
    assert "stored 0" in again.stdout


@pytest.mark.corpus
def test_print_events_writes_ecs_json_lines_and_stores_nothing(tmp_path):
    path = corpus_path("evtx-attack-samples", "Privilege Escalation", "Sysmon_UACME_64.evtx")
    res = run(["ingest", "evtx", "--print-events", str(path)], tmp_path)
    assert res.returncode == 0, res.stderr
    events = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(events) == 530
    assert all(e["event"]["dataset"] == "windows.sysmon_operational" for e in events)
    assert "530 events, 0 rejected" in res.stderr
    assert not (tmp_path / "govsoc-data").exists()


def test_missing_path_is_reported_not_a_crash(tmp_path):
    res = run(["ingest", "evtx", str(tmp_path / "missing.evtx"), "--no-detect"], tmp_path)
    assert res.returncode == 3
    assert "cannot open EVTX file" in res.stdout
    empty = tmp_path / "empty-dir"
    empty.mkdir()
    res = run(["ingest", "evtx", str(empty)], tmp_path)
    assert res.returncode == 2 and "no .evtx files" in res.stderr


@pytest.mark.corpus
def test_ingest_winlog_json_reads_zipped_exports(tmp_path):
    archive = corpus_path("security-datasets", "datasets", "atomic", "windows",
                          "credential_access", "host", "cmd_lsass_memory_dumpert_syscalls.zip")
    res = run(["ingest", "winlog-json", str(archive), "--no-detect"], tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "windows.sysmon_operational" in res.stdout
    assert "rejected 0" in res.stdout
    not_windows = tmp_path / "app.jsonl"
    not_windows.write_text('{"msg": "hello"}\n', encoding="utf-8")
    res = run(["ingest", "winlog-json", str(not_windows), "--print-events"], tmp_path)
    assert res.returncode == 3
    assert "not a Windows event record" in res.stderr
