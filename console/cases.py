"""Cases: create from alerts, add more later, edit the summary (with conflict
detection), the task checklist, observables, comments and the timeline.

A case page ends with sections other areas contribute: each entry of
:data:`CASE_SECTIONS` is a template included with ``case`` in its context. The
playbook runs section reads ``case.extra["playbook_runs"]``; the playbooks area
registers its own section (with run buttons) by appending its template here.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from console import audit
from console.app import get_store
from console.observables import TYPES, from_alerts, merge
from console.permissions import Permission, requires
from console.queries import FilterError, case_filter, page_url
from govsoc.errors import ConflictError, NotFoundError
from govsoc.events import parse_timestamp
from store.base import (
    Alert,
    AuditFilter,
    Case,
    CaseChange,
    CaseStatus,
    CaseTask,
    NewCase,
    Observable,
    Severity,
)

bp = Blueprint("cases", __name__, url_prefix="/cases")

TLP_LEVELS = ("clear", "green", "amber", "amber+strict", "red")
#: templates included at the end of a case page (see module docstring)
CASE_SECTIONS: list[str] = ["cases/_playbook_runs.html"]
MAX_ALERTS_PER_CASE_FORM = 200
#: events of the case's alerts shown on its timeline
TIMELINE_EVENTS_PER_ALERT = 5
TIMELINE_EVENTS = 200


def case_status_label(status: str) -> str:
    labels = {"open": _("Open"), "in_progress": _("In progress"), "resolved": _("Resolved"),
              "closed": _("Closed")}
    return labels.get(status, status)


@bp.app_template_global()
def case_status_name(status: str) -> str:
    return case_status_label(str(status))


def _alerts(ids: list[str]) -> list[Alert]:
    store = get_store()
    found = []
    for alert_id in ids[:MAX_ALERTS_PER_CASE_FORM]:
        try:
            found.append(store.get_alert(alert_id))
        except NotFoundError:
            continue
    return found


@bp.route("")
@requires(Permission.CASES_VIEW)
def index() -> Any:
    args = request.args if request.args else MultiDict()
    try:
        flt = case_filter(args)
    except FilterError as exc:
        flash(str(exc), "error")
        return render_template("cases/index.html", page=None, args=args,
                               statuses=list(CaseStatus)), 400
    page = get_store().list_cases(flt, limit=50, after=args.get("after") or None)
    next_url = page_url("cases.index", args, page.next_cursor)
    return render_template("cases/index.html", page=page, args=args,
                           statuses=list(CaseStatus), next_url=next_url)


@bp.route("/new")
@requires(Permission.CASES_EDIT)
def new() -> Any:
    alerts = _alerts(request.args.getlist("alert"))
    severity = max((a.severity for a in alerts), key=lambda s: s.rank, default=Severity.MEDIUM)
    names = list(dict.fromkeys(a.rule_name for a in alerts))
    title = "; ".join(names)[:200]
    return render_template("cases/new.html", alerts=alerts, title=title, severity=severity,
                           severities=list(Severity), tlps=TLP_LEVELS)


def _severity(value: str, default: Severity = Severity.MEDIUM) -> Severity:
    try:
        return Severity(value)
    except ValueError:
        return default


@bp.route("", methods=["POST"])
@requires(Permission.CASES_EDIT)
def create() -> Any:
    form = request.form
    title = form.get("title", "").strip()[:300]
    alerts = _alerts(form.getlist("alert"))
    if not title:
        flash(_("A case needs a title."), "error")
        return render_template("cases/new.html", alerts=alerts, title="",
                               severity=_severity(form.get("severity", "")),
                               severities=list(Severity), tlps=TLP_LEVELS), 400
    tlp = form.get("tlp", "amber")
    case = get_store().create_case(NewCase(
        title=title, created_by=current_user.username,
        description=form.get("description", "").strip()[:20000],
        severity=_severity(form.get("severity", "")),
        tlp=tlp if tlp in TLP_LEVELS else "amber",
        assignee=current_user.username,
        alert_ids=[a.id for a in alerts], observables=from_alerts(alerts)))
    audit.record("case.create", "case", case.id, after=case)
    for alert in alerts:
        audit.record("alert.case", "alert", alert.id, {"case_id": alert.case_id},
                     {"case_id": case.id})
    flash(_("Case created."), "ok")
    return redirect(url_for("cases.detail", case_id=case.id), 303)


def _timeline(case: Case, alerts: list[Alert]) -> list[tuple[Any, str, Any]]:
    store = get_store()
    items: list[tuple[Any, str, Any]] = []
    event_ids: list[str] = []
    for alert in alerts:
        items.append((alert.first_seen, "alert", alert))
        event_ids.extend(alert.event_ids[:TIMELINE_EVENTS_PER_ALERT])
    for event in store.get_events(event_ids[:TIMELINE_EVENTS]):
        try:
            items.append((parse_timestamp(event.get("@timestamp")), "event", event))
        except ValueError:
            continue
    for entry in store.list_audit(AuditFilter(target_type="case", target_id=case.id),
                                  limit=300).items:
        items.append((entry.at, "audit", entry))
    for note in store.list_comments("case", case.id):
        items.append((note.created_at, "comment", note))
    items.sort(key=lambda item: item[0])
    return items


def render_case(case: Case, status: int = 200, conflict: bool = False) -> Any:
    from console.alerts import _users_for_assignment

    alerts = _alerts(case.alert_ids)
    return render_template(
        "cases/detail.html", case=case, alerts=alerts, timeline=_timeline(case, alerts),
        severities=list(Severity), statuses=list(CaseStatus), tlps=TLP_LEVELS,
        users=_users_for_assignment(), observable_types=TYPES, conflict=conflict,
        sections=CASE_SECTIONS), status


@bp.route("/<case_id>")
@requires(Permission.CASES_VIEW)
def detail(case_id: str) -> Any:
    return render_case(get_store().get_case(case_id))


def _save(case: Case, version: str, change: CaseChange, action: str) -> Any:
    """Write a change at the version the person saw; on conflict show the case as it is."""
    store = get_store()
    try:
        updated = store.update_case(case.id, version, change)
    except ConflictError:
        flash(_("Someone else changed this case while you were looking at it. "
                "This is the case as it is now; your change was not saved."), "conflict")
        return render_case(store.get_case(case.id), 409, conflict=True)
    before, after = audit.changed_fields(case, updated)
    audit.record(action, "case", case.id, before, after)
    return redirect(url_for("cases.detail", case_id=case.id), 303)


@bp.route("/<case_id>/edit", methods=["POST"])
@requires(Permission.CASES_EDIT)
def edit(case_id: str) -> Any:
    case = get_store().get_case(case_id)
    form = request.form
    change = CaseChange()
    title = form.get("title", "").strip()[:300]
    if title and title != case.title:
        change.title = title
    description = form.get("description")
    if description is not None and description.strip() != case.description:
        change.description = description.strip()[:20000]
    severity = _severity(form.get("severity", ""), case.severity)
    if severity != case.severity:
        change.severity = severity
    tlp = form.get("tlp", case.tlp)
    if tlp in TLP_LEVELS and tlp != case.tlp:
        change.tlp = tlp
    try:
        status = CaseStatus(form.get("status", case.status))
    except ValueError:
        abort(400)
    if status != case.status:
        change.status = status
    assignee = form.get("assignee")
    if assignee is not None and assignee != (case.assignee or ""):
        if assignee:
            change.assignee = assignee
        else:
            change.unassign = True
    if change == CaseChange():
        return redirect(url_for("cases.detail", case_id=case.id), 303)
    return _save(case, form.get("version", ""), change, "case.update")


@bp.route("/<case_id>/alerts", methods=["POST"])
@requires(Permission.CASES_EDIT)
def add_alerts(case_id: str) -> Any:
    store = get_store()
    case = store.get_case(case_id)
    ids = [i for raw in request.form.getlist("alert") for i in raw.replace(",", " ").split()]
    alerts = [a for a in _alerts(ids) if a.id not in case.alert_ids]
    if not alerts:
        flash(_("No new alerts to add."), "error")
        return redirect(url_for("cases.detail", case_id=case.id), 303)
    updated = store.add_alerts_to_case(case.id, [a.id for a in alerts])
    audit.record("case.add_alerts", "case", case.id, {"alert_ids": case.alert_ids},
                 {"alert_ids": updated.alert_ids})
    for alert in alerts:
        audit.record("alert.case", "alert", alert.id, {"case_id": alert.case_id},
                     {"case_id": case.id})
    observables = merge(updated.observables, from_alerts(alerts))
    if len(observables) != len(updated.observables):
        for _attempt in range(3):
            try:
                store.update_case(case.id, updated.version,
                                  CaseChange(observables=observables))
                break
            except ConflictError:
                updated = store.get_case(case.id)
                observables = merge(updated.observables, from_alerts(alerts))
    flash(_("%(n)d alerts added to the case.", n=len(alerts)), "ok")
    return redirect(url_for("cases.detail", case_id=case.id), 303)


@bp.route("/<case_id>/tasks", methods=["POST"])
@requires(Permission.CASES_EDIT)
def tasks(case_id: str) -> Any:
    """Add a task (``title``) or tick/untick one (``toggle`` = its index)."""
    case = get_store().get_case(case_id)
    current = [dataclasses.replace(t) for t in case.tasks]
    toggle = request.form.get("toggle")
    if toggle is not None:
        try:
            index = int(toggle)
            current[index].done = not current[index].done
        except (ValueError, IndexError):
            abort(400)
    else:
        title = request.form.get("title", "").strip()[:500]
        if not title:
            flash(_("A task needs a title."), "error")
            return redirect(url_for("cases.detail", case_id=case.id), 303)
        current.append(CaseTask(title=title, owner=request.form.get("owner") or None))
    return _save(case, request.form.get("version", ""), CaseChange(tasks=current), "case.tasks")


@bp.route("/<case_id>/observables", methods=["POST"])
@requires(Permission.CASES_EDIT)
def observables(case_id: str) -> Any:
    case = get_store().get_case(case_id)
    kind = request.form.get("type", "")
    value = request.form.get("value", "").strip()[:2048]
    if kind not in TYPES or not value:
        flash(_("An observable needs a type and a value."), "error")
        return redirect(url_for("cases.detail", case_id=case.id), 303)
    merged = merge(case.observables, [Observable(kind, value)])
    return _save(case, request.form.get("version", ""), CaseChange(observables=merged),
                 "case.observables")


@bp.route("/<case_id>/comment", methods=["POST"])
@requires(Permission.CASES_EDIT)
def comment(case_id: str) -> Any:
    case = get_store().get_case(case_id)
    body = request.form.get("body", "").strip()
    if not body:
        flash(_("A comment cannot be empty."), "error")
        return redirect(url_for("cases.detail", case_id=case.id), 303)
    note = get_store().add_comment("case", case.id, current_user.username, body[:20000])
    audit.record("case.comment", "case", case.id, after={"comment": note.id, "body": note.body})
    return redirect(url_for("cases.detail", case_id=case.id) + "#timeline", 303)
