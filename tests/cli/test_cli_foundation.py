"""End to end: the govsoc command in a temporary directory, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

GOVSOC = [sys.executable, "-m", "govsoc"]


def run(args, cwd, stdin=None, env=None):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSOC_")}
    full_env.update(env or {})
    return subprocess.run(GOVSOC + args, cwd=cwd, input=stdin, capture_output=True,
                          text=True, env=full_env, timeout=120)


def write_events(path: Path, n: int, start: int = 0) -> None:
    with path.open("w") as out:
        for i in range(start, start + n):
            out.write(json.dumps({
                "@timestamp": f"2026-11-23T10:{i // 60 % 60:02d}:{i % 60:02d}Z",
                "event": {"kind": "event", "dataset": "system.auth" if i % 2 else "apache.access",
                          "action": "ssh_login_failed" if i % 2 else "request"},
                "source.ip": f"203.0.113.{i % 7}", "host": {"name": "portal01"},
                "user": {"name": "root"}, "message": f"event {i}"}) + "\n")


def test_init_ingest_search_alerts(tmp_path):
    res = run(["init", "--password-stdin"], tmp_path, stdin="correct horse battery\n")
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "govsoc-data" / "govsoc.db").exists()

    events = tmp_path / "events.jsonl"
    write_events(events, 100)
    res = run(["ingest", "jsonl", str(events)], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "stored 100  duplicates 0  rejected 0" in res.stdout

    res = run(["ingest", "jsonl", str(events)], tmp_path)
    assert "stored 0  duplicates 100  rejected 0" in res.stdout

    res = run(["search", "--dataset", "system.auth", "--format", "jsonl", "--limit", "500"],
              tmp_path)
    lines = [json.loads(x) for x in res.stdout.splitlines()]
    assert len(lines) == 50
    assert all(e["event"]["dataset"] == "system.auth" for e in lines)
    assert lines[0]["source"]["ip"].startswith("203.0.113.")  # dotted keys were nested

    res = run(["search", "-q", "event 42", "--format", "jsonl"], tmp_path)
    assert [json.loads(x)["message"] for x in res.stdout.splitlines()] == ["event 42"]

    res = run(["search", "-f", "source.ip=203.0.113.3", "--format", "csv",
               "--columns", "@timestamp,source.ip"], tmp_path)
    rows = res.stdout.strip().splitlines()
    assert rows[0] == "@timestamp,source.ip" and len(rows) == 1 + 14

    res = run(["alerts", "list", "--format", "jsonl"], tmp_path)
    assert res.returncode == 0 and res.stdout == ""


def test_bad_input_is_dead_lettered_and_the_rest_kept(tmp_path):
    path = tmp_path / "mixed.jsonl"
    big = b'{"message": "' + b"A" * (10 * 1024 * 1024) + b'"}\n'
    with path.open("wb") as out:
        out.write(b'{"@timestamp":"2026-11-23T10:00:00Z","event":{"kind":"event",'
                  b'"dataset":"x"}}\n')
        out.write(b"{not json\n")
        out.write(b'{"event":{"kind":"event","dataset":"x"}}\n')  # no @timestamp
        out.write(b'{"@timestamp":"2026-11-23T10:00:00Z","event":{"kind":"event",'
                  b'"dataset":"x"},"source":{"port":"high"}}\n')
        out.write(b'{"@timestamp":"2026-11-23T10:00:00Z","event":{"kind":"event",'
                  b'"dataset":"x"},"message":"caf\xe9"}\n')  # Latin-1, not UTF-8
        out.write(big)
        out.write(b"[1, 2, 3]\n")
        out.write(b'{"@timestamp":"2026-11-23T10:00:01Z","event":{"kind":"event",'
                  b'"dataset":"x"}}\n')
    res = run(["ingest", "jsonl", str(path)], tmp_path)
    assert res.returncode == 3, res.stdout + res.stderr
    assert "stored 2  duplicates 0  rejected 6" in res.stdout
    res = run(["deadletters", "list", "--format", "jsonl", "--limit", "10"], tmp_path)
    letters = [json.loads(x) for x in res.stdout.splitlines()]
    by_line = {int(x["position"]): x["reason"] for x in letters}
    assert set(by_line) == {2, 3, 4, 5, 6, 7}
    assert "invalid JSON" in by_line[2]
    assert "@timestamp" in by_line[3]
    assert "source.port" in by_line[4]
    assert "UTF-8" in by_line[5]
    assert "longer than" in by_line[6]
    assert "JSON object" in by_line[7]
    assert all(x["source"] == str(path.resolve()) for x in letters)


def test_missing_file_and_bad_config_fail_clearly(tmp_path):
    res = run(["ingest", "jsonl", str(tmp_path / "nope.jsonl")], tmp_path)
    assert res.returncode == 3 and "nope.jsonl" in res.stderr
    (tmp_path / "govsoc.yml").write_text("store:\n  engien: sqlite\n")
    res = run(["config", "check"], tmp_path)
    assert res.returncode == 1
    assert "store.engien" in res.stderr and "did you mean 'engine'" in res.stderr


def test_corrupted_store_is_reported(tmp_path):
    data = tmp_path / "govsoc-data"
    data.mkdir()
    (data / "govsoc.db").write_bytes(b"garbage" * 1000)
    res = run(["search"], tmp_path)
    assert res.returncode == 1
    assert "govsoc.db" in res.stderr and "recover" in res.stderr


@pytest.mark.parametrize("args", [["--help"], ["search", "--help"], ["ingest", "--help"]])
def test_help(tmp_path, args):
    assert run(args, tmp_path).returncode == 0
