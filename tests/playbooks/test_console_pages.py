"""The playbook and report pages of the console, driven through the Flask test client
with a real store: start a suggested playbook on a case, work its checklist, approve
as a manager, edit and export the national incident report."""

from __future__ import annotations

import re

import pytest

from tests.console.conftest import csrf_token, sign_in
from tests.playbooks.conftest import raise_alert


@pytest.fixture
def console_app(users, pb_config):
    from console import BLUEPRINT_MODULES, create_app

    if "console.playbooks" not in BLUEPRINT_MODULES:
        pytest.skip("the console does not register the playbooks blueprint")
    from werkzeug.security import generate_password_hash

    for name in ("ana", "minh", "quan"):
        user = users.get_user(name)
        user.password_hash = generate_password_hash("pw-" + name, method="scrypt:4096:8:1")
        users.update_user(user)
    return create_app(pb_config, users, {"TESTING": True})


class Client:
    def __init__(self, app, username):
        self.client = app.test_client()
        assert sign_in(self.client, username, "pw-" + username).status_code == 302
        self.token = csrf_token(self.client, "/account")

    def get(self, path, **kw):
        return self.client.get(path, **kw)

    def post(self, path, data=None, **kw):
        return self.client.post(path, data={"csrf_token": self.token, **(data or {})}, **kw)


def text(response) -> str:
    return response.get_data(as_text=True)


def settle(app, run_id: str, timeout: float = 20):
    """Wait until the worker carrying the run on has stopped (the page refreshes until then)."""
    import time

    from playbooks.runs import RunRepository

    repository = RunRepository(app.extensions["govsoc.store"])
    deadline = time.monotonic() + timeout
    while True:
        run = repository.get(run_id)
        if run.status != "running" and run.executor is None:
            return run
        assert time.monotonic() < deadline, f"run {run_id} still {run.status}"
        time.sleep(0.05)


def test_run_a_suggested_playbook_from_the_case_page(console_app, users, http_receiver):
    from store.base import NewCase

    alert = raise_alert(users, rule_id="web-webshell-exec", rule_name="Webshell exec",
                        severity="critical", tags=["attack.t1505.003"],
                        fields={"source.ip": "198.51.100.7", "host.name": "portal-web-01"})
    case = users.create_case(NewCase(title="Webshell <b>cổng</b>", created_by="ana",
                                     alert_ids=[alert.id]))
    ana = Client(console_app, "ana")
    page = text(ana.get(f"/cases/{case.id}"))
    suggestions = re.search(r'data-testid="playbook-suggestions">(.*?)</ul>', page, re.S)
    assert suggestions and "Webshell trên Cổng thông tin điện tử" in suggestions.group(1)

    response = ana.post(f"/playbooks/case/{case.id}/start", {"playbook_id": "webshell-portal"})
    assert response.status_code == 302
    run_url = response.headers["Location"]
    run_id = run_url.split("id=")[1]
    settle(console_app, run_id)
    page = text(ana.get(run_url))
    assert 'data-testid="run-status">chờ người xử lý' in page
    assert 'data-testid="step-verify" data-status="waiting_task"' in page
    assert "198.51.100.7" in page  # the enrichment output is shown

    # a task needing evidence is refused without it, then done
    refused = ana.post("/playbooks/step", {"run_id": run_id, "step_id": "verify"})
    assert refused.status_code == 409
    done = ana.post("/playbooks/step", {"run_id": run_id, "step_id": "verify",
                                        "notes": "đã xác minh", "evidence": "shell.aspx\nlog"})
    assert done.status_code == 302
    settle(console_app, run_id)
    page = text(ana.get(run_url))
    assert 'data-testid="step-block-attacker" data-status="waiting_approval"' in page
    assert 'data-testid="approve-block-attacker"' not in page  # an analyst may not approve

    # the manager sees it waiting and approves it
    minh = Client(console_app, "minh")
    waiting = text(minh.get("/playbooks/approvals"))
    assert f'data-testid="approval-{run_id}-block-attacker"' in waiting
    denied = ana.post("/playbooks/decide", {"run_id": run_id, "step_id": "block-attacker",
                                            "decision": "approve"})
    assert denied.status_code == 403
    approved = minh.post("/playbooks/decide", {"run_id": run_id, "step_id": "block-attacker",
                                               "decision": "approve", "comment": "ok"})
    assert approved.status_code == 302
    settle(console_app, run_id)
    assert [c["json"]["address"] for c in http_receiver.calls_to("/fw/block")] == \
        ["198.51.100.7/32"]
    page = text(minh.get(run_url))
    assert 'data-testid="step-block-attacker" data-status="succeeded"' in page
    # the case page lists the run
    assert f'data-testid="case-run-{run_id}"' in text(ana.get(f"/cases/{case.id}"))
    # the playbooks page shows the library and the run under way
    index = text(ana.get("/playbooks"))
    assert f'data-testid="run-{run_id}"' in index
    assert index.count("<tr><td><a href=\"/playbooks/show?id=") == 9


def test_pages_escape_attacker_text_and_refuse_bad_requests(console_app, users):
    from store.base import NewCase

    alert = raise_alert(users, tags=["attack.t1110.001"],
                        fields={"source.ip": "198.51.100.8",
                                "user.name": "<script>window.__xss=1</script>"})
    case = users.create_case(NewCase(title="t", created_by="ana", alert_ids=[alert.id]))
    ana = Client(console_app, "ana")
    response = ana.post(f"/playbooks/case/{case.id}/start",
                        {"playbook_id": "brute-force-ssh-vpn", "dry_run": "1"})
    settle(console_app, response.headers["Location"].split("id=")[1])
    page = text(ana.get(response.headers["Location"]))
    assert "<script>window.__xss=1</script>" not in page
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in page
    assert ana.get("/playbooks/run?id=nope").status_code == 404
    assert ana.get("/playbooks/show?id=nope").status_code == 404
    assert ana.post("/playbooks/step", {}).status_code == 400
    assert ana.post(f"/playbooks/case/{case.id}/start", {}).status_code == 400
    assert ana.post("/playbooks/case/C-missing/start", {"playbook_id": "x"}).status_code == 404
    no_token = ana.client.post(f"/playbooks/case/{case.id}/start",
                               data={"playbook_id": "brute-force-ssh-vpn"})
    assert no_token.status_code == 400  # CSRF


def test_incident_report_is_edited_and_exported_from_the_console(console_app, users, engine):
    alert = raise_alert(users, rule_id="web-webshell-exec", rule_name="Webshell exec",
                        severity="critical", tags=["attack.t1505.003"],
                        fields={"source.ip": "198.51.100.7", "host.name": "portal-web-01"})
    run = engine.start("webshell-portal", actor="ana", alert_id=alert.id)
    case_id = run.case_id
    minh = Client(console_app, "minh")
    page = text(minh.get(f"/reports/incident/{case_id}?kind=initial"))
    assert 'value="Cổng thông tin điện tử tỉnh"' in page
    assert "ip 198.51.100.7" in page
    saved = minh.post(f"/reports/incident/{case_id}", {
        "kind": "initial", "impact": "Gián đoạn <b>2 giờ</b>",
        "indicators": "ip 198.51.100.7\nurl http://evil.example/x.aspx",
        "system_name": "Cổng thông tin điện tử tỉnh"})
    assert saved.status_code == 302
    page = text(minh.get(f"/reports/incident/{case_id}?kind=initial"))
    assert "Gián đoạn &lt;b&gt;2 giờ&lt;/b&gt;" in page
    from playbooks.reports.incident import build_incident_report

    report = build_incident_report(users, console_app.extensions["govsoc.config"], case_id,
                                   "initial")
    assert report.edited == ["impact", "indicators"]
    assert {"type": "url", "value": "http://evil.example/x.aspx"} in report.fields["indicators"]
    exported = minh.get(f"/reports/incident/{case_id}/export?kind=initial&format=html")
    assert exported.status_code == 200
    assert "default-src 'none'" in exported.headers["Content-Security-Policy"]
    html = text(exported)
    assert "BÁO CÁO BAN ĐẦU SỰ CỐ AN TOÀN THÔNG TIN MẠNG" in html
    assert "http://evil.example/x.aspx" in html and "<b>2 giờ</b>" not in html
    # the reports page shows the initial report as exported, the others with their deadline
    index = text(minh.get("/reports"))
    initial = re.search(rf'data-testid="filing-{case_id}-initial"(.*?)</td>', index, re.S)
    assert initial and "đã xuất" in initial.group(1)
    notification = re.search(rf'data-testid="filing-{case_id}-notification"(.*?)</td>', index,
                             re.S)
    assert notification and "Hạn gửi" in notification.group(1)
    # analysts do not file reports
    ana = Client(console_app, "ana")
    assert ana.get(f"/reports/incident/{case_id}?kind=initial").status_code == 403
    assert minh.get(f"/reports/incident/{case_id}?kind=bogus").status_code == 400
    assert minh.get("/reports/incident/C-missing?kind=final").status_code == 404


@pytest.mark.slow
def test_reports_download_as_pdf(console_app, users, engine):
    import shutil
    import subprocess

    if not (shutil.which("chromium") and shutil.which("pdftotext")):
        pytest.skip("needs Debian's chromium and poppler-utils")
    alert = raise_alert(users, tags=["attack.t1110.001"], fields={"source.ip": "198.51.100.9"})
    run = engine.start("brute-force-ssh-vpn", actor="ana", alert_id=alert.id)
    minh = Client(console_app, "minh")
    pdf = minh.get(f"/reports/incident/{run.case_id}/export?kind=notification&format=pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF")
    summary = minh.get("/reports/summary?period=week&lang=en&format=pdf")
    assert summary.status_code == 200 and summary.data.startswith(b"%PDF")
    out = subprocess.run(["pdftotext", "-", "-"], input=summary.data, capture_output=True)
    assert b"Security operations report" in out.stdout


def test_sla_page_lists_open_alerts_and_cases_with_their_clocks(console_app, users):
    from store.base import NewCase

    alert = raise_alert(users, severity="critical", rule_name="Critical rule",
                        fields={"source.ip": "192.0.2.1"})
    case = users.create_case(NewCase(title="Open case", created_by="ana"))
    ana = Client(console_app, "ana")
    page = text(ana.get("/reports/sla"))
    row = re.search(rf'data-testid="sla-alert-{alert.id}"(.*?)</tr>', page, re.S)
    assert row and "Critical rule" in row.group(1) and "data-breached" not in row.group(0)
    # the clock runs: 15 minutes to acknowledge a critical alert
    assert re.search(r"<td>0h1[45]</td>", row.group(1))
    assert f'data-testid="sla-case-{case.id}"' in page


def test_sla_clock_helper_is_available_to_every_template(console_app, users):
    from datetime import timedelta

    from flask import render_template_string

    alert = raise_alert(users, severity="critical")
    with console_app.test_request_context("/"):
        out = render_template_string(
            "{% set c = sla_clock(alert) %}{{ c.breached }} {{ c.acknowledge_due.isoformat() }}",
            alert=alert)
    assert out.split() == ["False", (alert.created_at + timedelta(minutes=15)).isoformat()]
