"""Report pages: the managers' periodic summary (HTML or PDF) and the national incident
report of a case — pre-filled, edited here (the edits are kept on the case and
audited), exported as printable HTML or PDF."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from console.app import get_config, get_store
from console.i18n import current_language
from console.permissions import Permission, requires
from govsoc.errors import GovsocError, NotFoundError

bp = Blueprint("reports", __name__, url_prefix="/reports")

#: the report documents carry their own inline styles and no scripts
REPORT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; " \
             "form-action 'none'; frame-ancestors 'self'"
PERIODS = {"day": timedelta(days=1), "week": timedelta(days=7), "month": timedelta(days=30)}

LABELS: dict[str, tuple[str, str]] = {
    "reports": ("Báo cáo", "Reports"),
    "summary": ("Báo cáo định kỳ", "Periodic report"),
    "period": ("Kỳ báo cáo", "Period"), "day": ("Ngày", "Day"), "week": ("Tuần", "Week"),
    "month": ("Tháng", "Month"), "custom": ("Tùy chọn", "Custom"),
    "from": ("Từ", "From"), "to": ("Đến", "To"), "language": ("Ngôn ngữ", "Language"),
    "open_html": ("Xem (HTML)", "View (HTML)"), "download_pdf": ("Tải PDF", "Download PDF"),
    "incident": ("Báo cáo sự cố gửi cơ quan điều phối quốc gia",
                 "National incident report"),
    "incident_note": ("Thông báo trong 5 ngày kể từ khi phát hiện; báo cáo kết thúc trong 5 "
                      "ngày kể từ khi kết thúc ứng cứu (QĐ 05/2017/QĐ-TTg, TT 20/2017/TT-BTTTT).",
                      "Notify within 5 days of discovery; final report within 5 days of the end "
                      "of the response (Decision 05/2017/QĐ-TTg, Circular 20/2017/TT-BTTTT)."),
    "notification": ("Thông báo sự cố", "Notification"),
    "initial": ("Báo cáo ban đầu", "Initial report"),
    "final": ("Báo cáo kết thúc", "Final report"),
    "case": ("Hồ sơ", "Case"), "cases": ("Hồ sơ gần đây", "Recent cases"),
    "save": ("Lưu chỉnh sửa", "Save the edits"), "saved": ("Đã lưu bản nháp.", "Draft saved."),
    "edited": ("đã chỉnh sửa", "edited"), "due": ("Hạn gửi", "Due by"),
    "bad_time": ("Thời gian không hợp lệ", "Not a valid time"),
    "sla": ("Theo dõi SLA", "SLA clocks"),
    "sla_note": ("Cảnh báo và hồ sơ đang mở so với thời hạn tiếp nhận và xử lý theo mức độ.",
                 "Open alerts and cases against the time allowed to acknowledge and resolve "
                 "them, by severity."),
    "breached": ("Quá hạn", "Breached"), "left": ("Còn lại", "Time left"),
    "ack_due": ("Hạn tiếp nhận", "Acknowledge by"), "resolve_due": ("Hạn xử lý", "Resolve by"),
    "alerts": ("Cảnh báo đang mở", "Open alerts"), "open_cases": ("Hồ sơ đang mở", "Open cases"),
    "rule": ("Quy tắc", "Rule"), "severity": ("Mức độ", "Severity"),
    "exported": ("đã xuất", "exported"), "overdue": ("quá hạn", "overdue"),
    "indicators_help": ("Mỗi dòng: loại giá trị (ví dụ: ip 198.51.100.7)",
                        "One a line: type value (e.g. ip 198.51.100.7)"),
}

FIELD_LABELS: dict[str, tuple[str, str]] = {
    "unit_name": ("Tên đơn vị", "Unit"), "unit_address": ("Địa chỉ", "Address"),
    "recipient": ("Nơi nhận", "Recipient"),
    "system_name": ("Tên hệ thống thông tin", "Information system"),
    "system_owner": ("Chủ quản hệ thống", "System owner"),
    "security_level": ("Cấp độ an toàn hệ thống", "Security level"),
    "affected_hosts": ("Máy chủ/thiết bị bị ảnh hưởng", "Affected hosts"),
    "incident_title": ("Tên sự cố", "Title"), "incident_type": ("Loại sự cố", "Type"),
    "severity": ("Mức độ", "Severity"), "discovered_at": ("Thời điểm phát hiện", "Discovered"),
    "occurred_at": ("Thời điểm xảy ra", "Occurred"),
    "response_started_at": ("Bắt đầu ứng cứu", "Response started"),
    "response_ended_at": ("Kết thúc ứng cứu", "Response finished"),
    "description": ("Mô tả sự cố", "Description"), "impact": ("Ảnh hưởng, thiệt hại", "Impact"),
    "indicators": ("Dấu hiệu nhận biết (IOC)", "Indicators"),
    "measures": ("Biện pháp đã thực hiện", "Measures taken"),
    "support_requested": ("Đề nghị hỗ trợ", "Support requested"),
    "contact_name": ("Người liên hệ", "Contact person"),
    "contact_title": ("Chức vụ", "Position"), "contact_phone": ("Điện thoại", "Phone"),
    "contact_email": ("Thư điện tử", "E-mail"), "status_text": ("Tình trạng", "Status"),
}
_LONG_FIELDS = {"description", "impact", "indicators", "measures", "support_requested"}


def t(key: str) -> str:
    vi, en = LABELS.get(key) or FIELD_LABELS.get(key) or (key, key)
    return en if current_language() == "en" else vi


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {"rp_t": t, "sla_clock": sla_clock}


def sla_clock(record: Any) -> Any:
    """The SLA clock of an alert or a case, for any template (queue, dashboard):
    ``{% set clock = sla_clock(alert) %}{% if clock.breached %}…``."""
    from playbooks.sla import alert_clock, case_clock, sla_targets

    targets = sla_targets(get_config())
    now = datetime.now(UTC)
    if hasattr(record, "rule_id"):
        return alert_clock(record, targets, now)
    return case_clock(record, targets, now)


def _kind() -> str:
    from playbooks.reports.incident import KINDS

    kind = request.values.get("kind", "notification")
    if kind not in KINDS:
        abort(400, f"kind must be one of {', '.join(KINDS)}")
    return kind


def _document(html: str, fmt: str, filename: str) -> Any:
    """The report as a page of its own (HTML) or a PDF download."""
    import tempfile
    from pathlib import Path

    from playbooks.reports.render import html_to_pdf

    if fmt == "pdf":
        with tempfile.TemporaryDirectory(prefix="govsoc-report-") as work:
            target = html_to_pdf(html, Path(work) / "report.pdf",
                                 get_config().get("reports.chromium"))
            data = target.read_bytes()
        return Response(data, mimetype="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="{filename}.pdf"'})
    response = Response(html, mimetype="text/html")
    response.headers["Content-Security-Policy"] = REPORT_CSP
    return response


@bp.route("")
@requires(Permission.REPORTS_VIEW)
def index() -> Any:
    from playbooks.reports.incident import filing_status

    store = get_store()
    now = datetime.now(UTC)
    cases = [(case, filing_status(store, case)) for case in store.list_cases(None, limit=50).items]
    return render_template("reports/index.html", cases=cases, now=now,
                           today=now.date().isoformat(),
                           week_ago=(now - timedelta(days=7)).date().isoformat(),
                           language=current_language())


def _time(text: str, end_of_day: bool = False) -> datetime:
    from zoneinfo import ZoneInfo

    from govsoc.events import parse_timestamp

    text = text.strip()
    if len(text) == 10:
        day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
        return (day + timedelta(days=1) if end_of_day else day).astimezone(UTC)
    return parse_timestamp(text)


@bp.route("/sla")
@requires(Permission.ALERTS_VIEW)
def sla() -> Any:
    """Open alerts and cases with their SLA clocks, breached ones first."""
    from playbooks.sla import alert_clock, case_clock, sla_targets
    from store.base import OPEN_ALERT_STATUSES, AlertFilter, CaseFilter, CaseStatus

    store = get_store()
    now = datetime.now(UTC)
    targets = sla_targets(get_config())
    alerts = store.list_alerts(AlertFilter(statuses=list(OPEN_ALERT_STATUSES)), limit=500).items
    cases = store.list_cases(CaseFilter(statuses=[CaseStatus.OPEN, CaseStatus.IN_PROGRESS]),
                             limit=500).items
    alert_rows = [(a, alert_clock(a, targets, now)) for a in alerts]
    case_rows = [(c, case_clock(c, targets, now)) for c in cases]
    alert_rows.sort(key=lambda row: (not row[1].breached, row[1].remaining(now) or timedelta()))
    case_rows.sort(key=lambda row: (not row[1].breached, row[1].remaining(now) or timedelta()))
    return render_template("reports/sla.html", alert_rows=alert_rows, case_rows=case_rows,
                           now=now)


@bp.route("/summary")
@requires(Permission.REPORTS_VIEW)
def summary() -> Any:
    from playbooks.reports.summary import build_summary, render_summary_html

    args = request.args
    try:
        end = _time(args["to"], end_of_day=True) if args.get("to") else datetime.now(UTC)
        period = PERIODS.get(args.get("period", "week"), PERIODS["week"])
        start = _time(args["from"]) if args.get("from") else end - period
    except ValueError:
        abort(400, t("bad_time"))
    language = str(args["lang"]) if args.get("lang") in ("vi", "en") else current_language()
    try:
        report = build_summary(get_store(), get_config(), start, end, language)
    except GovsocError as exc:
        abort(400, str(exc))
    return _document(render_summary_html(report), args.get("format", "html"),
                     f"govsoc-summary-{start:%Y%m%d}-{end:%Y%m%d}")


@bp.route("/incident/<case_id>")
@requires(Permission.REPORTS_VIEW)
def incident(case_id: str) -> Any:
    from playbooks.reports.incident import EDITABLE, build_incident_report

    kind = _kind()
    try:
        report = build_incident_report(get_store(), get_config(), case_id, kind)
    except NotFoundError:
        abort(404)
    fields = []
    for name in EDITABLE:
        value = report.fields.get(name)
        if name == "indicators" and isinstance(value, list):
            value = "\n".join(f"{i.get('type', '')} {i.get('value', '')}" if isinstance(i, dict)
                              else str(i) for i in value)
        elif name == "measures" and isinstance(value, list):
            value = "\n".join(f"[{m.get('phase_vi', '')}] {m.get('vi', '')}"
                              + (f" — {m['detail']}" if m.get("detail") else "")
                              for m in value if isinstance(m, dict))
        fields.append({"name": name, "label": t(name), "value": value or "",
                       "long": name in _LONG_FIELDS, "edited": name in report.edited})
    return render_template("reports/incident.html", report=report, kind=kind, fields=fields,
                           case_id=case_id, kinds=("notification", "initial", "final"))


@bp.route("/incident/<case_id>", methods=["POST"])
@requires(Permission.REPORTS_VIEW)
def save_incident(case_id: str) -> Any:
    from playbooks.reports.incident import EDITABLE, build_incident_report, save_incident_draft

    kind = _kind()
    try:
        current = build_incident_report(get_store(), get_config(), case_id, kind)
    except NotFoundError:
        abort(404)
    changes: dict[str, Any] = {}
    for name in EDITABLE:
        if name not in request.form:
            continue
        value: Any = request.form[name].replace("\r\n", "\n").strip()
        if name == "indicators":
            value = [{"type": kind_, "value": rest.strip()} for kind_, _, rest in
                     (line.strip().partition(" ") for line in value.splitlines() if line.strip())]
            if value == current.fields.get("indicators"):
                continue
        elif name == "measures":
            # the pre-filled measures come from the playbook runs; only a change replaces them
            original = request.form.get("measures_original", "").replace("\r\n", "\n").strip()
            if value == original:
                continue
        elif value == (current.fields.get(name) or ""):
            continue
        changes[name] = value
    if changes:
        save_incident_draft(get_store(), case_id, kind, changes, str(current_user.username))
    flash(t("saved"), "success")
    return redirect(url_for("reports.incident", case_id=case_id, kind=kind))


@bp.route("/incident/<case_id>/export")
@requires(Permission.REPORTS_VIEW)
def export_incident(case_id: str) -> Any:
    from playbooks.reports.incident import (
        build_incident_report,
        record_export,
        render_incident_html,
    )

    kind = _kind()
    fmt = "pdf" if request.args.get("format") == "pdf" else "html"
    try:
        report = build_incident_report(get_store(), get_config(), case_id, kind)
    except NotFoundError:
        abort(404)
    response = _document(render_incident_html(report), fmt,
                         f"govsoc-incident-{case_id}-{kind}")
    record_export(get_store(), case_id, kind, fmt, str(current_user.username))
    return response
