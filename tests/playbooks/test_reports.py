"""Reports rendered for real: HTML, and PDF printed by Chromium, checked by their text
(pdftotext) and by their rendered pages (pdftoppm)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from playbooks.reports.incident import (
    build_incident_report,
    render_incident_html,
    save_incident_draft,
    write_incident_report,
)
from playbooks.reports.render import ReportError
from playbooks.reports.summary import build_summary, render_summary_html, write_summary
from tests.playbooks.conftest import raise_alert

needs_pdf_tools = pytest.mark.skipif(
    not (shutil.which("chromium") and shutil.which("pdftotext") and shutil.which("pdftoppm")),
    reason="PDF checks need Debian's chromium and poppler-utils (pdftotext, pdftoppm)")


def pdf_text(path: Path) -> str:
    """The PDF's text in reading order, with line breaks and runs of spaces as one space."""
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, check=True,
                          text=True).stdout
    return " ".join(text.split())


def page_ink(path: Path, out_dir: Path) -> list[float]:
    """Share of non-white pixels on each rendered page."""
    prefix = out_dir / path.stem
    subprocess.run(["pdftoppm", "-r", "40", "-gray", str(path), str(prefix)], check=True)
    shares = []
    for page in sorted(out_dir.glob(f"{path.stem}*.pgm")):
        data = page.read_bytes()
        # binary PGM: "P5\n<w> <h>\n<max>\n" then one byte per pixel
        header_end = 0
        for _ in range(3):
            header_end = data.index(b"\n", header_end) + 1
        pixels = data[header_end:]
        shares.append(sum(1 for b in pixels if b < 200) / len(pixels))
    return shares


@pytest.fixture
def incident_case(engine, users):
    """A webshell case worked by the shipped playbook up to the containment."""
    alert = raise_alert(users, rule_id="web-webshell-exec", rule_name="Webshell command execution",
                        severity="critical", tags=["attack.t1505.003"], dataset="iis.access",
                        fields={"source.ip": "198.51.100.7", "host.name": "portal-web-01",
                                "destination.ip": "10.10.1.15"})
    run = engine.start("webshell-portal", actor="ana", alert_id=alert.id)
    run = engine.complete_task(run.id, "verify", "ana", notes="shell.aspx trong /upload",
                               evidence=["sha256:ab"])
    run = engine.decide(run.id, "block-attacker", "minh", approve=True)
    return users.get_case(run.case_id)


def test_incident_report_is_prefilled_from_the_case(users, pb_config, incident_case):
    report = build_incident_report(users, pb_config, incident_case.id, "notification")
    f = report.fields
    assert f["unit_name"] == "Sở Thông tin và Truyền thông tỉnh Thử Nghiệm"
    # the affected server is in the asset inventory: its system, unit and level are used
    assert f["system_name"] == "Cổng thông tin điện tử tỉnh" and f["security_level"] == "3"
    assert f["system_owner"] == "Trung tâm Tích hợp dữ liệu"
    assert f["affected_hosts"] == "portal-web-01"
    assert f["incident_type"].startswith("Tấn công cài webshell")
    assert {"type": "ip", "value": "198.51.100.7"} in f["indicators"]
    measures = [m["en"] for m in f["measures"]]
    assert "Verify the webshell (file, process, access log)" in measures
    assert "Block the attacking addresses on the firewall" in measures
    assert report.due is not None
    discovered = datetime.fromisoformat(f["discovered_at"])
    assert report.due - discovered == timedelta(days=5)


def test_edits_are_kept_on_the_case_and_win(users, pb_config, incident_case):
    save_incident_draft(users, incident_case.id, "initial",
                        {"impact": "Cổng gián đoạn 2 giờ", "support_requested": "Phân tích mã độc"},
                        "ana")
    save_incident_draft(users, incident_case.id, "initial", {"impact": "Gián đoạn 3 giờ"}, "minh")
    report = build_incident_report(users, pb_config, incident_case.id, "initial")
    assert report.fields["impact"] == "Gián đoạn 3 giờ"
    assert report.fields["support_requested"] == "Phân tích mã độc"
    assert report.edited == ["impact", "support_requested"]
    # other kinds keep their own drafts
    assert build_incident_report(users, pb_config, incident_case.id, "final").edited == []
    with pytest.raises(ReportError, match="cannot be edited"):
        save_incident_draft(users, incident_case.id, "initial", {"case_id": "x"}, "ana")
    from store.base import AuditFilter

    edits = users.list_audit(AuditFilter(action="report.incident.edit")).items
    assert [e.actor for e in edits] == ["minh", "ana"]


def test_incident_html_escapes_attacker_text(users, pb_config, incident_case):
    save_incident_draft(users, incident_case.id, "notification",
                        {"description": "<script>alert(1)</script>"}, "ana")
    html = render_incident_html(build_incident_report(users, pb_config, incident_case.id,
                                                      "notification"))
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html
    assert "THÔNG BÁO SỰ CỐ AN TOÀN THÔNG TIN MẠNG" in html


@needs_pdf_tools
@pytest.mark.slow
def test_incident_report_pdf_reads_right_and_is_not_blank(users, pb_config, incident_case,
                                                         tmp_path, artifacts):
    save_incident_draft(users, incident_case.id, "final",
                        {"impact": "Trang chủ bị gián đoạn 2 giờ"}, "ana")
    report = build_incident_report(users, pb_config, incident_case.id, "final")
    target = write_incident_report(report, tmp_path / "final.pdf", "pdf", pb_config)
    text = pdf_text(target)
    for needle in ("BÁO CÁO KẾT THÚC ỨNG CỨU SỰ CỐ AN TOÀN THÔNG TIN MẠNG",
                   "Final incident response report", "05/2017/QĐ-TTg", "20/2017/TT-BTTTT",
                   "Sở Thông tin và Truyền thông tỉnh Thử Nghiệm", "portal-web-01",
                   "198.51.100.7", "Trang chủ bị gián đoạn 2 giờ", "Trần Thị Bình",
                   "Chặn địa chỉ tấn công trên tường lửa", incident_case.id):
        assert needle in text, needle
    ink = page_ink(target, tmp_path)
    assert ink and all(0.005 < share < 0.5 for share in ink), ink
    shutil.copy(target, artifacts / "incident-final.pdf")


def _history(store):
    """A week of alerts and cases with acknowledgements, resolutions and a breach."""
    from store.base import AlertChange, AlertStatus, CaseChange, CaseStatus, NewCase

    now = datetime.now(UTC)
    alerts = []
    for i, (rule, sev) in enumerate([("ssh-bf", "high"), ("ssh-bf", "high"),
                                     ("webshell", "critical"), ("dns-tunnel", "medium"),
                                     ("port-scan", "low")]):
        alerts.append(raise_alert(store, rule_id=rule, rule_name=f"Rule {rule}", severity=sev,
                                  fields={"source.ip": f"192.0.2.{i}"}, group_key=f"g{i}"))
    first = store.update_alert(alerts[0].id, alerts[0].version,
                               AlertChange(status=AlertStatus.ACKNOWLEDGED))
    store.update_alert(first.id, first.version, AlertChange(status=AlertStatus.RESOLVED))
    store.update_alert(alerts[4].id, alerts[4].version,
                       AlertChange(status=AlertStatus.FALSE_POSITIVE))
    case = store.create_case(NewCase(title="Brute force SSH", created_by="ana",
                                     alert_ids=[alerts[1].id]))
    store.update_case(case.id, case.version, CaseChange(status=CaseStatus.CLOSED))
    return now


def test_summary_counts_and_metrics(users, pb_config):
    now = _history(users)
    report = build_summary(users, pb_config, now - timedelta(days=7), now + timedelta(minutes=1),
                           "vi")
    assert report.alert_count == 5
    assert report.by_severity == {"critical": 1, "high": 2, "medium": 1, "low": 1,
                                  "informational": 0}
    assert report.top_rules[0]["rule_id"] == "ssh-bf" and report.top_rules[0]["alerts"] == 2
    assert report.false_positive_rate == 50.0
    assert len(report.cases_opened) == 1 and len(report.cases_closed) == 1
    assert report.metrics.acknowledged == 2 and report.metrics.resolved == 2
    assert report.metrics.mtta_minutes is not None and report.metrics.mtta_minutes < 1
    # an hour later nobody acknowledged the critical alert: its SLA (15 min) is breached
    later = build_summary(users, pb_config, now - timedelta(days=7), now + timedelta(hours=2),
                          "en", now=now + timedelta(hours=1))
    assert later.ack_breaches.get("critical") == 1
    assert "high" not in later.ack_breaches or later.ack_breaches["high"] <= 1
    html = render_summary_html(later)
    assert "Security operations report" in html and "Rule ssh-bf" in html
    # a period with nothing in it
    empty = build_summary(users, pb_config, now - timedelta(days=60), now - timedelta(days=30))
    assert empty.alert_count == 0 and empty.false_positive_rate is None
    with pytest.raises(ReportError, match="before it starts"):
        build_summary(users, pb_config, now, now - timedelta(days=1))


@needs_pdf_tools
@pytest.mark.slow
@pytest.mark.parametrize("language,title", [("vi", "Báo cáo tình hình an toàn thông tin"),
                                            ("en", "Security operations report")])
def test_summary_pdf_in_both_languages(users, pb_config, tmp_path, artifacts, language, title):
    now = _history(users)
    report = build_summary(users, pb_config, now - timedelta(days=7), now + timedelta(minutes=1),
                           language)
    target = write_summary(report, tmp_path / f"summary-{language}.pdf", "pdf", pb_config)
    text = pdf_text(target)
    assert title in text
    assert "Rule ssh-bf" in text and "MTTR" in text
    ink = page_ink(target, tmp_path)
    assert ink and all(share > 0.005 for share in ink), ink
    shutil.copy(target, artifacts / f"summary-{language}.pdf")


def test_filing_deadlines_follow_discovery_and_closing(users, pb_config, incident_case):
    from playbooks.reports.incident import filing_status, record_export
    from store.base import CaseChange, CaseStatus

    filings = {f.kind: f for f in filing_status(users, users.get_case(incident_case.id))}
    alert = users.get_alert(incident_case.alert_ids[0])
    assert filings["notification"].due == alert.created_at + timedelta(days=5)
    assert filings["final"].due is None  # the response has not finished
    later = alert.created_at + timedelta(days=6)
    assert filings["notification"].overdue(later)
    assert not filings["notification"].overdue(alert.created_at + timedelta(days=4))
    record_export(users, incident_case.id, "notification", "pdf", "minh")
    case = users.get_case(incident_case.id)
    filings = {f.kind: f for f in filing_status(users, case)}
    assert filings["notification"].exported_at is not None
    assert not filings["notification"].overdue(later)
    closed = users.update_case(case.id, case.version, CaseChange(status=CaseStatus.CLOSED))
    final = {f.kind: f for f in filing_status(users, closed)}["final"]
    assert final.due == closed.closed_at + timedelta(days=5)
