"""The alert queue and triage: filters, counts, bulk actions, the alert page and its
workflow (status, assignment, severity override, comments, suppress similar).

Every change carries the version of the alert the person saw; when someone else
changed it meanwhile the store raises ``ConflictError`` and the person sees the
alert as it is now, with a conflict message, instead of overwriting silently.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from flask import Blueprint, abort, flash, g, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup
from werkzeug.datastructures import MultiDict

from console import audit
from console.app import get_store
from console.attack import attack_links
from console.permissions import Permission, can, requires
from console.queries import FilterError, alert_query, page_url
from console.rulebook import rule_source
from govsoc.errors import ConflictError, NotFoundError
from govsoc.events import flatten, get_field, utcnow
from store.base import (
    Alert,
    AlertChange,
    AlertFilter,
    AlertStatus,
    AuditFilter,
    EventQuery,
    Severity,
    Suppression,
)

bp = Blueprint("alerts", __name__, url_prefix="/alerts")

#: the workflow: from each status, where an alert may go next
TRANSITIONS: dict[AlertStatus, tuple[AlertStatus, ...]] = {
    AlertStatus.NEW: (AlertStatus.ACKNOWLEDGED, AlertStatus.IN_PROGRESS, AlertStatus.RESOLVED,
                      AlertStatus.FALSE_POSITIVE),
    AlertStatus.ACKNOWLEDGED: (AlertStatus.IN_PROGRESS, AlertStatus.RESOLVED,
                               AlertStatus.FALSE_POSITIVE),
    AlertStatus.IN_PROGRESS: (AlertStatus.RESOLVED, AlertStatus.FALSE_POSITIVE),
    # a closed alert may be reopened for more work
    AlertStatus.RESOLVED: (AlertStatus.IN_PROGRESS,),
    AlertStatus.FALSE_POSITIVE: (AlertStatus.IN_PROGRESS,),
}

#: related events: how far around the alert to look, and how many to show per pivot
RELATED_WINDOW = timedelta(minutes=15)
#: the windows a person may choose on the alert page (minutes, ``?window=``)
RELATED_WINDOWS = (5, 15, 60, 240)
RELATED_LIMIT = 25
#: pivots from an alert to related events: alert attribute -> event fields
PIVOTS = (("host", ("host.name",)), ("user", ("user.name",)),
          ("source_ip", ("source.ip", "destination.ip")),
          ("destination_ip", ("source.ip", "destination.ip")))


class WorkflowError(ValueError):
    """A change the workflow does not allow (message is for people)."""


def _labels() -> tuple[dict[str, str], dict[str, str]]:
    """Status and severity names in the viewer's language, built once per request."""
    cached = getattr(g, "_alert_labels", None)
    if cached is None:
        cached = g._alert_labels = (
            {"new": _("New"), "acknowledged": _("Acknowledged"),
             "in_progress": _("In progress"), "resolved": _("Resolved"),
             "false_positive": _("False positive")},
            {"informational": _("Informational"), "low": _("Low"), "medium": _("Medium"),
             "high": _("High"), "critical": _("Critical")})
    return cached


def status_label(status: str) -> str:
    return _labels()[0].get(status, status)


def severity_label(severity: str) -> str:
    return _labels()[1].get(severity, severity)


@bp.app_template_global()
def alert_status_label(status: str) -> str:
    return status_label(str(status))


@bp.app_template_global()
def severity_name(severity: str) -> str:
    return severity_label(str(severity))


def _users_for_assignment() -> list[str]:
    from console.permissions import role_has

    return sorted(u.username for u in get_store().list_users()
                  if not u.disabled and role_has(u.role, Permission.ALERTS_TRIAGE))


# ---------------------------------------------------------------- the queue

@bp.route("")
@requires(Permission.ALERTS_VIEW)
def queue() -> Any:
    store = get_store()
    args = request.args
    if not args:
        # the working view: open alerts, newest first
        args = MultiDict({"status": "open"})
    try:
        query = alert_query(args, me=current_user.username)
    except FilterError as exc:
        flash(str(exc), "error")
        return render_template("alerts/queue.html", page=None, counts={}, args=args,
                               statuses=list(AlertStatus), severities=list(Severity),
                               users=[], sorts=_sorts()), 400
    page = store.list_alerts(query.filter, sort=query.sort, descending=query.descending,
                             limit=query.limit, after=query.after)
    counts = status_counts(query.filter)
    return render_template("alerts/queue.html", page=page, counts=counts, args=args,
                           query=query, statuses=list(AlertStatus), severities=list(Severity),
                           users=_users_for_assignment(), sorts=_sorts(),
                           next_url=page_url("alerts.queue", args, page.next_cursor),
                           now=utcnow())


def status_counts(flt: AlertFilter) -> dict[str, int] | None:
    """Alerts per status under the other conditions of ``flt``.

    None for a free-text search: counting every text match by status costs the
    store a full-text scan of all alerts (seconds at 100,000 alerts), while the
    page itself needs only its first matches.
    """
    if flt.text:
        return None
    return get_store().count_alerts(dataclasses.replace(flt, statuses=()), by="status")


def _sorts() -> list[tuple[str, str]]:
    return [("last_seen", _("Last seen")), ("first_seen", _("First seen")),
            ("severity", _("Severity")), ("count", _("Count")), ("created_at", _("Created"))]


@bp.route("/updates")
@requires(Permission.ALERTS_VIEW)
def updates() -> Any:
    """New alerts since a moment, and the status counts, for the queue's live refresh."""
    try:
        query = alert_query(request.args, me=current_user.username)
    except FilterError as exc:
        return jsonify(error=str(exc)), 400
    since_text = request.args.get("since", "")
    store = get_store()
    # new alerts are found by creation time without the status condition (which would
    # keep the store from walking its creation-time order), then checked here
    page = store.list_alerts(dataclasses.replace(query.filter, statuses=()),
                             sort="created_at", descending=True, limit=20)
    wanted = set(query.filter.statuses)
    from console.i18n import show_time
    from govsoc.events import parse_timestamp

    try:
        since = parse_timestamp(since_text) if since_text else None
    except ValueError:
        return jsonify(error="since: not a time"), 400
    fresh = [a for a in page.items if (since is None or a.created_at > since)
             and (not wanted or a.status in wanted)]
    counts = status_counts(query.filter)
    return jsonify(
        now=utcnow().isoformat(),
        counts=counts,
        alerts=[{"id": a.id, "url": url_for("alerts.detail", alert_id=a.id),
                 "rule_name": a.rule_name, "severity": str(a.severity),
                 "severity_label": severity_label(str(a.severity)),
                 "status": str(a.status), "status_label": status_label(str(a.status)),
                 "host": a.host or "", "user": a.user or "", "source_ip": a.source_ip or "",
                 "count": a.count, "assignee": a.assignee or "",
                 "last_seen": show_time(a.last_seen), "version": a.version}
                for a in fresh])


# ---------------------------------------------------------------- one alert

def related_window() -> timedelta:
    try:
        minutes = int(request.args.get("window", ""))
    except ValueError:
        return RELATED_WINDOW
    return timedelta(minutes=minutes) if minutes in RELATED_WINDOWS else RELATED_WINDOW


def _related_events(alert: Alert, window: timedelta) -> list[dict[str, Any]]:
    store = get_store()
    start = alert.first_seen - window
    end = alert.last_seen + window
    own = set(alert.event_ids)
    seen: set[str] = set()
    related: list[dict[str, Any]] = []
    for attribute, fields in PIVOTS:
        value = getattr(alert, attribute)
        if not value:
            continue
        for field_name in fields:
            page = store.search_events(EventQuery(start=start, end=end,
                                                  filters={field_name: [value]},
                                                  limit=RELATED_LIMIT))
            for event in page.items:
                event_id = get_field(event, "event.id")
                if event_id in own or event_id in seen:
                    continue
                seen.add(event_id)
                related.append({"pivot": f"{field_name}={value}", "event": event})
    related.sort(key=lambda r: str(get_field(r["event"], "@timestamp") or ""), reverse=True)
    return related[:100]


def _history(alert_id: str) -> list[Any]:
    store = get_store()
    entries = store.list_audit(AuditFilter(target_type="alert", target_id=alert_id),
                               limit=200).items
    comments = store.list_comments("alert", alert_id)
    timeline: list[tuple[Any, str, Any]] = [(e.at, "audit", e) for e in entries]
    timeline += [(c.created_at, "comment", c) for c in comments]
    timeline.sort(key=lambda item: item[0])
    return timeline


def render_detail(alert: Alert, status: int = 200, conflict: bool = False) -> Any:
    store = get_store()
    events = store.get_events(alert.event_ids[:20])
    flat_events = [sorted(flatten(e).items()) for e in events]
    return render_template(
        "alerts/detail.html", alert=alert, events=events, flat_events=flat_events,
        related=_related_events(alert, related_window()), history=_history(alert.id),
        window_minutes=int(related_window().total_seconds() // 60),
        window_choices=RELATED_WINDOWS,
        attack=attack_links(alert.tags), rule=rule_source(alert.rule_id, alert.source),
        transitions=TRANSITIONS.get(alert.status, ()), severities=list(Severity),
        users=_users_for_assignment(), matched=set(alert.matched_fields),
        suppress_fields=sorted(alert.fields), conflict=conflict,
        case=_case_of(alert)), status


def _case_of(alert: Alert) -> Any:
    if not alert.case_id:
        return None
    try:
        return get_store().get_case(alert.case_id)
    except NotFoundError:
        return None


@bp.route("/<alert_id>")
@requires(Permission.ALERTS_VIEW)
def detail(alert_id: str) -> Any:
    return render_detail(get_store().get_alert(alert_id))


@bp.route("/<alert_id>/event/<int:index>.json")
@requires(Permission.ALERTS_VIEW)
def event_json(alert_id: str, index: int) -> Any:
    alert = get_store().get_alert(alert_id)
    if index >= len(alert.event_ids):
        abort(404)
    events = get_store().get_events([alert.event_ids[index]])
    if not events:
        abort(404)
    return jsonify(events[0])


def workflow_change(alert: Alert, form: Any) -> AlertChange:
    """The change a triage form asks for, checked against the workflow."""
    change = AlertChange()
    status_text = form.get("status", "")
    if status_text:
        try:
            status = AlertStatus(status_text)
        except ValueError:
            raise WorkflowError(_("Unknown status.")) from None
        if status != alert.status:
            if status not in TRANSITIONS.get(alert.status, ()):
                raise WorkflowError(_("An alert cannot go from %(old)s to %(new)s.",
                                      old=status_label(alert.status),
                                      new=status_label(status)))
            change.status = status
    resolution = form.get("resolution", "").strip()[:2000]
    if change.status == AlertStatus.FALSE_POSITIVE and not resolution:
        raise WorkflowError(_("Closing as a false positive needs a reason."))
    if resolution:
        change.resolution = resolution
    assignee = form.get("assignee")
    if assignee is not None and assignee != "(keep)":
        if assignee == "":
            change.unassign = alert.assignee is not None
        elif assignee == "(me)":
            change.assignee = current_user.username
        else:
            if assignee not in _users_for_assignment():
                raise WorkflowError(_("Unknown user."))
            change.assignee = assignee
        if change.assignee == alert.assignee:
            change.assignee = None
    severity_text = form.get("severity", "")
    if severity_text:
        try:
            severity = Severity(severity_text)
        except ValueError:
            raise WorkflowError(_("Unknown severity.")) from None
        if severity != alert.severity:
            change.severity = severity
    return change


def _is_empty(change: AlertChange) -> bool:
    return change == AlertChange()


def apply_change(alert: Alert, version: str, change: AlertChange) -> Alert:
    """Write ``change`` at ``version`` and audit it (raises ConflictError)."""
    updated = get_store().update_alert(alert.id, version, change)
    before, after = audit.changed_fields(alert, updated)
    audit.record("alert.update", "alert", alert.id, before, after)
    return updated


@bp.route("/<alert_id>/update", methods=["POST"])
@requires(Permission.ALERTS_TRIAGE)
def update(alert_id: str) -> Any:
    store = get_store()
    alert = store.get_alert(alert_id)
    version = request.form.get("version", "")
    try:
        change = workflow_change(alert, request.form)
    except WorkflowError as exc:
        flash(str(exc), "error")
        return render_detail(alert, 400)
    if _is_empty(change):
        flash(_("Nothing to change."), "info")
        return redirect(url_for("alerts.detail", alert_id=alert_id), 303)
    try:
        apply_change(alert, version, change)
    except ConflictError:
        flash(_("Someone else changed this alert while you were looking at it. "
                "This is the alert as it is now; your change was not saved."), "conflict")
        return render_detail(store.get_alert(alert_id), 409, conflict=True)
    flash(_("Alert updated."), "ok")
    return redirect(url_for("alerts.detail", alert_id=alert_id), 303)


@bp.route("/<alert_id>/comment", methods=["POST"])
@requires(Permission.ALERTS_TRIAGE)
def comment(alert_id: str) -> Any:
    alert = get_store().get_alert(alert_id)
    body = request.form.get("body", "").strip()
    if not body:
        flash(_("A comment cannot be empty."), "error")
        return redirect(url_for("alerts.detail", alert_id=alert.id), 303)
    note = get_store().add_comment("alert", alert.id, current_user.username, body[:20000])
    audit.record("alert.comment", "alert", alert.id, after={"comment": note.id, "body": note.body})
    return redirect(url_for("alerts.detail", alert_id=alert.id) + "#history", 303)


@bp.route("/<alert_id>/suppress", methods=["POST"])
@requires(Permission.ALERTS_SUPPRESS)
def suppress(alert_id: str) -> Any:
    """Suppress similar: no more alerts of this rule where ``field`` has this value."""
    alert = get_store().get_alert(alert_id)
    field_name = request.form.get("field", "")
    if field_name not in alert.fields:
        flash(_("Choose a field of this alert."), "error")
        return render_detail(alert, 400)
    value = request.form.get("value", str(alert.fields[field_name]))
    try:
        days = int(request.form.get("days", "0") or 0)
    except ValueError:
        days = 0
    now = utcnow()
    suppression = get_store().add_suppression(Suppression(
        rule_id=alert.rule_id, field=field_name, value=value[:1000],
        created_by=current_user.username, created_at=now,
        reason=request.form.get("reason", "").strip()[:1000],
        expires_at=now + timedelta(days=days) if days > 0 else None))
    audit.record("suppression.create", "suppression", suppression.id, after=suppression)
    audit.record("alert.suppress_similar", "alert", alert.id, after=suppression)
    flash(_("Similar alerts are now suppressed."), "ok")
    return redirect(url_for("alerts.detail", alert_id=alert.id), 303)


# ---------------------------------------------------------------- bulk

def _selected() -> list[tuple[str, str]]:
    """The (id, version) pairs ticked in the queue."""
    pairs = []
    for item in request.form.getlist("selected")[:500]:
        alert_id, _sep, version = item.partition("@")
        if alert_id:
            pairs.append((alert_id, version))
    return pairs


@bp.route("/bulk", methods=["POST"])
@requires(Permission.ALERTS_TRIAGE)
def bulk() -> Any:
    action = request.form.get("action", "")
    selected = _selected()
    back = safe_back()
    if not selected:
        flash(_("Select at least one alert."), "error")
        return redirect(back, 303)
    if action == "case":
        if not can(Permission.CASES_EDIT):
            abort(403)
        return redirect(url_for("cases.new", alert=[a for a, _v in selected]), 303)
    form: dict[str, str] = {}
    if action == "assign":
        form["assignee"] = request.form.get("assignee", "")
    elif action == "status":
        form["status"] = request.form.get("status", "")
    elif action == "false_positive":
        form["status"] = AlertStatus.FALSE_POSITIVE.value
        form["resolution"] = request.form.get("resolution", "")
    else:
        abort(400)
    store = get_store()
    done = conflicts = refused = 0
    for alert_id, version in selected:
        try:
            alert = store.get_alert(alert_id)
            change = workflow_change(alert, form)
            if not _is_empty(change):
                apply_change(alert, version, change)
            done += 1
        except ConflictError:
            conflicts += 1
        except (WorkflowError, NotFoundError) as exc:
            refused += 1
            last_reason = str(exc)
    flash(_("%(done)d alerts changed.", done=done), "ok")
    if conflicts:
        flash(_("%(n)d alerts were changed by someone else meanwhile and were left as they "
                "are; reload and try again.", n=conflicts), "conflict")
    if refused:
        flash(_("%(n)d alerts could not be changed: %(reason)s", n=refused,
                reason=last_reason), "error")
    return redirect(back, 303)


def safe_back() -> str:
    target = request.form.get("back", "")
    if target.startswith("/alerts") and not target.startswith("//"):
        return target
    return url_for("alerts.queue")


@bp.app_template_filter("highlight_field")
def highlight_field(name: str, matched: set[str]) -> Markup:
    """Mark a field name the rule tested (escaped before marking)."""
    text = Markup.escape(name)
    if name in matched:
        return Markup('<mark class="matched">') + text + Markup("</mark>")
    return text
