"""The national incident report (Decision 05/2017/QĐ-TTg, Circular 20/2017/TT-BTTTT).

A government unit notifies the national coordinating agency within 5 days of
discovering an incident and files a final report within 5 days of finishing the
response. Three kinds are built from a case: ``notification`` (thông báo sự cố),
``initial`` (báo cáo ban đầu) and ``final`` (báo cáo kết thúc ứng cứu).

Fields are pre-filled from the case, its alerts, its observables, the playbook runs
on it and the reporting unit in ``reports.unit``. People edit them before export:
the edited fields are kept on the case (``Case.extra["incident_reports"][kind]``)
and win over the pre-filled ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from govsoc.config import Config
from govsoc.errors import ConflictError, GovsocError, NotFoundError
from govsoc.events import utcnow
from playbooks.model import PHASE_TITLES
from playbooks.reports.render import ReportError, render_html, write_report
from playbooks.settings import section

KINDS = ("notification", "initial", "final")

TITLES = {
    "notification": ("THÔNG BÁO SỰ CỐ AN TOÀN THÔNG TIN MẠNG",
                     "Cyber security incident notification"),
    "initial": ("BÁO CÁO BAN ĐẦU SỰ CỐ AN TOÀN THÔNG TIN MẠNG",
                "Initial cyber security incident report"),
    "final": ("BÁO CÁO KẾT THÚC ỨNG CỨU SỰ CỐ AN TOÀN THÔNG TIN MẠNG",
              "Final incident response report"),
}

#: the fields people may edit, in the order of the form
EDITABLE = (
    "unit_name", "unit_address", "recipient", "system_name", "system_owner", "security_level",
    "affected_hosts", "incident_title", "incident_type", "severity", "discovered_at",
    "occurred_at", "response_started_at", "response_ended_at", "description", "impact",
    "indicators", "measures", "support_requested", "contact_name", "contact_title",
    "contact_phone", "contact_email", "status_text",
)

_INCIDENT_TYPES = [
    # (tag or technique fragment, Vietnamese, English)
    ("t1505.003", "Tấn công cài webshell", "Webshell installation"),
    ("webshell", "Tấn công cài webshell", "Webshell installation"),
    ("t1491", "Tấn công thay đổi giao diện", "Website defacement"),
    ("defacement", "Tấn công thay đổi giao diện", "Website defacement"),
    ("t1498", "Tấn công từ chối dịch vụ", "Denial of service"),
    ("t1499", "Tấn công từ chối dịch vụ", "Denial of service"),
    ("ddos", "Tấn công từ chối dịch vụ", "Denial of service"),
    ("t1110", "Tấn công dò mật khẩu", "Password guessing (brute force)"),
    ("brute", "Tấn công dò mật khẩu", "Password guessing (brute force)"),
    ("t1566", "Thư điện tử lừa đảo", "Phishing"),
    ("phishing", "Thư điện tử lừa đảo", "Phishing"),
    ("t1048", "Rò rỉ dữ liệu", "Data exfiltration"),
    ("exfiltration", "Rò rỉ dữ liệu", "Data exfiltration"),
    ("t1071", "Mã độc kết nối máy chủ điều khiển", "Malware command and control"),
    ("c2", "Mã độc kết nối máy chủ điều khiển", "Malware command and control"),
    ("malware", "Nhiễm mã độc", "Malware infection"),
    ("t1078", "Chiếm đoạt tài khoản", "Account compromise"),
    ("t1136", "Chiếm đoạt tài khoản", "Account compromise"),
    ("account", "Chiếm đoạt tài khoản", "Account compromise"),
]

_SEVERITY_VI = {"informational": "Thông tin", "low": "Thấp", "medium": "Trung bình",
                "high": "Cao", "critical": "Nghiêm trọng"}


@dataclass
class IncidentReport:
    case_id: str
    kind: str
    fields: dict[str, Any]
    #: names of the fields a person changed (shown as edited)
    edited: list[str] = field(default_factory=list)
    generated_at: datetime = field(default_factory=utcnow)

    @property
    def due(self) -> datetime | None:
        """Deadline: 5 days after discovery (notification, initial) or after the response."""
        key = "response_ended_at" if self.kind == "final" else "discovered_at"
        value = self.fields.get(key)
        if not value:
            return None
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return None
        return moment + timedelta(days=5)


def _incident_type(tags: list[str]) -> tuple[str, str]:
    text = " ".join(t.lower() for t in tags)
    for needle, vi, en in _INCIDENT_TYPES:
        if needle in text:
            return vi, en
    return "Sự cố an toàn thông tin mạng khác", "Other cyber security incident"


def _measures(store: Any, case: Any) -> list[dict[str, str]]:
    """What the playbook runs on the case did: finished actions and tasks, by phase."""
    from playbooks.runs import DONE, SUCCEEDED, RunRepository

    measures: list[dict[str, str]] = []
    repository = RunRepository(store)
    for entry in (case.extra or {}).get("playbook_runs") or []:
        if not isinstance(entry, dict) or not entry.get("id"):
            continue
        try:
            run = repository.get(str(entry["id"]))
        except GovsocError:
            continue
        if run.dry_run:
            continue
        for phase_doc in run.playbook.get("phases", []):
            phase = phase_doc["phase"]
            for raw in phase_doc["steps"]:
                record = run.steps.get(raw["id"])
                if record is None or record.status not in (DONE, SUCCEEDED):
                    continue
                detail = ""
                if record.task and record.task.get("notes"):
                    detail = str(record.task["notes"])
                elif isinstance(record.output, dict) and record.output.get("blocked"):
                    detail = ", ".join(record.output["blocked"])
                measures.append({"phase_vi": PHASE_TITLES[phase]["vi"],
                                 "phase_en": PHASE_TITLES[phase]["en"],
                                 "vi": raw["title"]["vi"], "en": raw["title"]["en"],
                                 "at": record.finished_at or "", "detail": detail})
    return measures


def _affected_asset(config: Config, hosts: list[str], ips: list[str]) -> dict[str, Any]:
    """The inventory entry of the first affected host or address (system, unit, level)."""
    from playbooks.actions.enrich import load_inventory

    path = section(config, "playbooks.inventory").get("path")
    if not path:
        return {}
    try:
        assets = load_inventory(path)
    except GovsocError:
        return {}
    wanted = {h.lower() for h in hosts} | set(ips)
    for asset in assets:
        names = {str(asset.get("name", "")).lower()} | {
            str(h).lower() for h in asset.get("hostnames") or []}
        if names & wanted or {str(i) for i in asset.get("ips") or []} & wanted:
            return asset
    return {}


def prefill(store: Any, config: Config, case_id: str, kind: str) -> dict[str, Any]:
    """The report's fields as the records give them, before any edit."""
    case = store.get_case(case_id)
    alerts = []
    for alert_id in case.alert_ids[:500]:
        try:
            alerts.append(store.get_alert(alert_id))
        except NotFoundError:
            continue
    unit = section(config, "reports.unit")
    tags = list(case.tags) + [t for a in alerts for t in a.tags]
    type_vi, type_en = _incident_type(tags)
    first_seen = min((a.first_seen for a in alerts), default=None)
    detected = min((a.created_at for a in alerts), default=case.created_at)
    hosts = sorted({a.host for a in alerts if a.host} |
                   {o.value for o in case.observables if o.type == "host"})
    indicators = []
    seen: set[tuple[str, str]] = set()
    for obs in case.observables:
        if (obs.type, obs.value) not in seen:
            seen.add((obs.type, obs.value))
            indicators.append({"type": obs.type, "value": obs.value})
    for alert in alerts:
        if alert.source_ip and ("ip", alert.source_ip) not in seen:
            seen.add(("ip", alert.source_ip))
            indicators.append({"type": "ip", "value": alert.source_ip})
    measures = _measures(store, case)
    asset = _affected_asset(config, hosts, [a.destination_ip for a in alerts if a.destination_ip]
                            + [o.value for o in case.observables if o.type == "ip"])
    rules = sorted({a.rule_name for a in alerts})
    description = case.description or ""
    if not description and rules:
        description = "Phát hiện bởi quy tắc / detected by rules: " + "; ".join(rules)
    status_text = {"open": "Đang xử lý / being handled",
                   "in_progress": "Đang xử lý / being handled",
                   "resolved": "Đã khắc phục / resolved",
                   "closed": "Đã kết thúc ứng cứu / response finished"}[case.status.value]
    return {
        "unit_name": unit.get("name", ""), "unit_name_en": unit.get("name_en", ""),
        "unit_address": unit.get("address", ""),
        "recipient": unit.get("recipient", ""), "recipient_en": unit.get("recipient_en", ""),
        "system_name": asset.get("system") or unit.get("system_name", ""),
        "system_owner": asset.get("unit") or unit.get("system_owner") or unit.get("name", ""),
        "security_level": str(asset.get("security_level") or unit.get("security_level", "")),
        "affected_hosts": ", ".join(hosts),
        "incident_title": case.title, "incident_type": f"{type_vi} / {type_en}",
        "severity": f"{_SEVERITY_VI[case.severity.value]} / {case.severity.value}",
        "occurred_at": first_seen.isoformat() if first_seen else "",
        "discovered_at": detected.isoformat(),
        "response_started_at": case.created_at.isoformat(),
        "response_ended_at": case.closed_at.isoformat() if case.closed_at else "",
        "description": description,
        "impact": "",
        "indicators": indicators,
        "measures": measures,
        "support_requested": "",
        "contact_name": unit.get("contact_name", ""),
        "contact_title": unit.get("contact_title", ""),
        "contact_phone": unit.get("phone", ""), "contact_email": unit.get("email", ""),
        "status_text": status_text,
        "case_id": case.id, "tlp": case.tlp,
        "alert_count": len(alerts), "rules": rules,
    }


def build_incident_report(store: Any, config: Config, case_id: str, kind: str) -> IncidentReport:
    if kind not in KINDS:
        raise ReportError(f"unknown incident report kind {kind!r} (one of {', '.join(KINDS)})")
    fields = prefill(store, config, case_id, kind)
    draft = ((store.get_case(case_id).extra or {}).get("incident_reports") or {}).get(kind) or {}
    edited = []
    for name, value in (draft.get("fields") or {}).items():
        if name in EDITABLE and value != fields.get(name):
            fields[name] = value
            edited.append(name)
    return IncidentReport(case_id=case_id, kind=kind, fields=fields, edited=sorted(edited))


def _update_reports(store: Any, case_id: str, kind: str,
                    mutate: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Change the case's record of report ``kind`` with ``mutate(draft)`` (optimistic
    concurrency); returns the record before and after."""
    from store.base import CaseChange

    for _ in range(5):
        case = store.get_case(case_id)
        extra = dict(case.extra or {})
        reports = dict(extra.get("incident_reports") or {})
        before = dict(reports.get(kind) or {})
        after = mutate(dict(before))
        reports[kind] = after
        extra["incident_reports"] = reports
        try:
            store.update_case(case.id, case.version, CaseChange(extra=extra))
        except ConflictError:
            continue
        return before, after
    raise ReportError(f"case {case_id} kept changing while saving the report; try again")


def save_incident_draft(store: Any, case_id: str, kind: str, changes: dict[str, Any],
                        actor: str) -> None:
    """Keep edited fields on the case (merged into earlier edits) and audit the change."""
    from store.base import AuditEntry

    if kind not in KINDS:
        raise ReportError(f"unknown incident report kind {kind!r}")
    unknown = sorted(set(changes) - set(EDITABLE))
    if unknown:
        raise ReportError(f"fields {', '.join(unknown)} cannot be edited; editable: "
                          f"{', '.join(EDITABLE)}")

    def edit(draft: dict[str, Any]) -> dict[str, Any]:
        draft["fields"] = {**(draft.get("fields") or {}), **changes}
        draft["updated_by"] = actor
        draft["updated_at"] = utcnow().isoformat()
        return draft

    before, after = _update_reports(store, case_id, kind, edit)
    store.append_audit(AuditEntry(actor=actor, action="report.incident.edit",
                                  target_type="case", target_id=case_id, at=utcnow(),
                                  before={kind: before.get("fields") or {}},
                                  after={kind: after["fields"]}))


def record_export(store: Any, case_id: str, kind: str, fmt: str, actor: str) -> None:
    """Note on the case that report ``kind`` was exported (the filing deadline is met
    when it is sent; the export is the record govsoc has of that) and audit it."""
    from store.base import AuditEntry

    moment = utcnow().isoformat()

    def mark(draft: dict[str, Any]) -> dict[str, Any]:
        exports = list(draft.get("exports") or [])
        exports.append({"at": moment, "by": actor, "format": fmt})
        draft["exports"] = exports[-20:]
        return draft

    _update_reports(store, case_id, kind, mark)
    store.append_audit(AuditEntry(actor=actor, action="report.incident.export",
                                  target_type="case", target_id=case_id, at=utcnow(),
                                  after={"kind": kind, "format": fmt}))


@dataclass
class Filing:
    """Where one report of a case stands against its 5-day deadline."""

    kind: str
    due: datetime | None
    exported_at: datetime | None

    def overdue(self, now: datetime) -> bool:
        return self.due is not None and self.exported_at is None and now > self.due


def filing_status(store: Any, case: Any) -> list[Filing]:
    """The notification/initial report are due 5 days after discovery (the first alert,
    or the case's creation); the final report 5 days after the case was closed."""
    first_alert = None
    for alert_id in case.alert_ids[:200]:
        try:
            created = store.get_alert(alert_id).created_at
        except NotFoundError:
            continue
        first_alert = created if first_alert is None else min(first_alert, created)
    discovered = first_alert or case.created_at
    reports = (case.extra or {}).get("incident_reports") or {}
    filings = []
    for kind in KINDS:
        base = case.closed_at if kind == "final" else discovered
        exports = (reports.get(kind) or {}).get("exports") or []
        exported = datetime.fromisoformat(exports[0]["at"]) if exports else None
        filings.append(Filing(kind, base + timedelta(days=5) if base else None, exported))
    return filings


def render_incident_html(report: IncidentReport) -> str:
    title_vi, title_en = TITLES[report.kind]
    return render_html("incident.html", r=report, f=report.fields, title_vi=title_vi,
                       title_en=title_en)


def write_incident_report(report: IncidentReport, target: Path, fmt: str, config: Config,
                          timeout: float = 120) -> Path:
    chromium = section(config, "reports").get("chromium")
    return write_report(render_incident_html(report), Path(target), fmt, chromium, timeout)
