"""The ``govsoc playbooks`` and ``govsoc report`` commands, run as a person runs them."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import yaml

GOVSOC = [sys.executable, "-m", "govsoc"]


def govsoc(args, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GOVSOC_")}
    return subprocess.run(GOVSOC + args, cwd=cwd, capture_output=True, text=True, env=env,
                          timeout=180)


@pytest.fixture
def workdir(tmp_path):
    (tmp_path / "govsoc.yml").write_text(yaml.safe_dump({
        "playbooks": {"firewall": {"never_block": ["10.0.0.0/8"]},
                      "smtp": {"default_recipients": ["soc@tinh.gov.vn"]}},
        "reports": {"unit": {"name": "Sở Thông tin và Truyền thông tỉnh Thử Nghiệm",
                             "security_level": "3"}},
    }, allow_unicode=True), encoding="utf-8")
    return tmp_path


@pytest.fixture
def seeded(workdir):
    """Users and a webshell alert in the working directory's store."""
    import playbooks.settings  # noqa: F401
    from govsoc.config import load_config
    from store import open_store
    from store.base import NewAlert, Role, Severity, User

    config = load_config(workdir / "govsoc.yml", data_dir=workdir / "govsoc-data", env={})
    with open_store(config) as store:
        for name, role in (("ana", Role.ANALYST), ("minh", Role.MANAGER)):
            store.create_user(User(username=name, password_hash="x", role=role,
                                   created_at=datetime.now(UTC)))
        [(alert, _)] = store.record_alerts([NewAlert(
            rule_id="web-webshell-exec", rule_name="Webshell command execution",
            severity=Severity.CRITICAL, group_key="ws", timestamp=datetime.now(UTC),
            tags=["attack.t1505.003"], fields={"source.ip": "198.51.100.7",
                                               "host.name": "portal-web-01"})],
            timedelta(hours=1))
    return alert.id


def test_check_list_show(workdir, tmp_path):
    res = govsoc(["playbooks", "check"], workdir)
    assert res.returncode == 0, res.stderr
    assert "9 valid, 0 invalid" in res.stdout
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.yml").write_text("id: x\nversion: one\n", encoding="utf-8")
    res = govsoc(["playbooks", "check", str(bad)], workdir)
    assert res.returncode == 1
    assert f"error  {bad / 'x.yml'}:2: version: 'one' is not of type 'integer'" in res.stdout

    res = govsoc(["playbooks", "list", "--format", "jsonl"], workdir)
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert len(rows) == 9
    webshell = next(r for r in rows if r["id"] == "webshell-portal")
    assert webshell["name"] == "Webshell trên Cổng thông tin điện tử"
    assert webshell["phases"][0] == "detection_analysis"

    res = govsoc(["playbooks", "show", "webshell-portal", "--lang", "en"], workdir)
    assert "Containment" in res.stdout
    assert "block_ip needs approval" in res.stdout
    res = govsoc(["playbooks", "show", "nope"], workdir)
    assert res.returncode == 1 and "no playbook with id 'nope'" in res.stderr


@pytest.mark.slow
def test_run_approve_and_report(workdir, seeded, tmp_path):
    res = govsoc(["playbooks", "suggest", "--alert", seeded], workdir)
    assert res.stdout.startswith("webshell-portal")
    res = govsoc(["playbooks", "run", "webshell-portal", "--alert", seeded, "--as", "ana",
                  "--format", "jsonl"], workdir)
    assert res.returncode == 0, res.stderr
    run = json.loads(res.stdout)
    assert run["status"] == "waiting" and run["steps"]["verify"]["status"] == "waiting_task"
    run_id, case_id = run["id"], run["case_id"]

    res = govsoc(["playbooks", "done", run_id, "verify", "--evidence", "shell.aspx",
                  "--notes", "đã xác minh", "--as", "ana"], workdir)
    assert res.returncode == 0, res.stderr
    assert "block-attacker" in res.stdout and "waiting_approval" in res.stdout
    res = govsoc(["playbooks", "approvals", "--as", "minh", "--format", "jsonl"], workdir)
    [pending] = [json.loads(line) for line in res.stdout.splitlines()]
    assert pending["step"] == "block-attacker" and pending["inputs"]["ip"] == ["198.51.100.7"]
    res = govsoc(["playbooks", "approve", run_id, "block-attacker", "--as", "ana"], workdir)
    assert res.returncode == 1 and "may not approve" in res.stderr
    res = govsoc(["playbooks", "approve", run_id, "block-attacker", "--as", "minh"], workdir)
    assert res.returncode == 0, res.stderr
    nft = workdir / "govsoc-data" / "playbook-outputs" / "firewall" / "govsoc-block.nft"
    assert "198.51.100.7" in nft.read_text()
    res = govsoc(["playbooks", "runs", "--format", "jsonl"], workdir)
    assert json.loads(res.stdout.splitlines()[0])["id"] == run_id

    # the national report: fields shown, edited, exported
    res = govsoc(["report", "incident", case_id, "--kind", "initial", "--dump-fields"], workdir)
    fields = yaml.safe_load(res.stdout)
    assert fields["security_level"] == "3" and fields["affected_hosts"] == "portal-web-01"
    edits = tmp_path / "edits.yml"
    edits.write_text(yaml.safe_dump({"support_requested": "Hỗ trợ phân tích mã độc"},
                                    allow_unicode=True), encoding="utf-8")
    out = tmp_path / "initial.html"
    res = govsoc(["report", "incident", case_id, "--kind", "initial", "--format", "html",
                  "-o", str(out), "--set", "impact=Gián đoạn 2 giờ", "--fields", str(edits),
                  "--as", "ana"], workdir)
    assert res.returncode == 0, res.stderr
    assert "edited: impact, support_requested" in res.stdout
    html = out.read_text(encoding="utf-8")
    assert "BÁO CÁO BAN ĐẦU SỰ CỐ AN TOÀN THÔNG TIN MẠNG" in html
    assert "Gián đoạn 2 giờ" in html and "Hỗ trợ phân tích mã độc" in html
    res = govsoc(["report", "incident", case_id, "--kind", "initial", "--set", "case_id=x"],
                 workdir)
    assert res.returncode == 1 and "cannot be edited" in res.stderr
    res = govsoc(["report", "incident", "C-missing", "--kind", "final", "--format", "html"],
                 workdir)
    assert res.returncode == 1 and "C-missing" in res.stderr

    if shutil.which("chromium") and shutil.which("pdftotext"):
        pdf = tmp_path / "notification.pdf"
        res = govsoc(["report", "incident", case_id, "--kind", "notification", "-o", str(pdf)],
                     workdir)
        assert res.returncode == 0, res.stderr
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True,
                              text=True).stdout
        assert "THÔNG BÁO SỰ CỐ AN TOÀN THÔNG TIN MẠNG" in " ".join(text.split())

    today = datetime.now(UTC)
    summary = tmp_path / "summary.html"
    res = govsoc(["report", "summary", "--from", (today - timedelta(days=1)).isoformat(),
                  "--to", (today + timedelta(hours=1)).isoformat(), "--format", "html",
                  "--lang", "en", "-o", str(summary)], workdir)
    assert res.returncode == 0, res.stderr
    assert "1 alerts, 1 cases opened" in res.stdout
    assert "Webshell command execution" in summary.read_text(encoding="utf-8")
    res = govsoc(["report", "metrics"], workdir)
    assert res.returncode == 0 and "MTTD" in res.stdout
