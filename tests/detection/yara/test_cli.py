"""``govsoc scan`` and ``govsoc yara rules`` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

GOVSOC = [sys.executable, "-m", "govsoc"]
SHELL = "<?php\n$f = $_GET['f'];\n$f($_POST['c']);\n"


def run(args, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSOC_")}
    return subprocess.run(GOVSOC + args, cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=120)


def test_scan_jsonl_and_record(tmp_path):
    www = tmp_path / "www"
    (www / "uploads").mkdir(parents=True)
    (www / "uploads" / "avatar.php").write_text(SHELL)
    (www / "index.php").write_text("<?php echo 'Xin chao';\n")
    os.mkfifo(www / "pipe")
    res = run(["scan", str(www), "--format", "jsonl", "--record"], tmp_path)
    assert res.returncode == 1, res.stderr  # something matched
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(rows) == 1
    row = rows[0]
    assert row["file"]["path"] == str(www / "uploads" / "avatar.php")
    assert len(row["file"]["hash"]["sha256"]) == 64 and row["file"]["hash"]["md5"]
    assert row["rule"]["name"] == ["GOVSOC_Webshell_PHP_Dynamic_Call_On_Input"]
    assert row["event"]["dataset"] == "yara.match"
    assert "2 scanned" in res.stderr and "not a regular file" in res.stderr
    assert "alerts: 1 new" in res.stderr
    listed = run(["alerts", "list", "--format", "jsonl"], tmp_path)
    alerts = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [a["rule_id"] for a in alerts] == ["yara:GOVSOC_Webshell_PHP_Dynamic_Call_On_Input"]
    assert alerts[0]["source"] == "yara"


def test_rules_report_names_file_and_line(tmp_path):
    rules = tmp_path / "myrules"
    rules.mkdir()
    (rules / "ok.yar").write_text('rule fine { strings: $a = "zz" condition: $a }\n')
    (rules / "bad.yar").write_text('rule bad {\n condition: nosuch }\n')
    res = run(["yara", "rules", "--rules", str(rules), "--format", "jsonl"], tmp_path)
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert [(r["file"]["path"], r["line"]) for r in rows] == [(str(rules / "bad.yar"), 2)]
    assert "nosuch" in rows[0]["reason"]
    table = run(["scan", str(rules), "--rules", str(rules), "--no-default-rules"], tmp_path)
    assert table.returncode == 1
    assert '["fine"]' in table.stdout and "1 matched" in table.stderr
    assert "bad.yar:2" in table.stderr


def test_scan_of_clean_files_exits_zero(tmp_path):
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.php").write_text("<?php echo 'Xin chao';\n")
    res = run(["scan", str(www)], tmp_path)
    assert res.returncode == 0, res.stderr
    assert "1 scanned" in res.stderr and ", 0 matched" in res.stderr
    assert res.stdout.strip() == "(nothing)"
