"""The JSON API under ``/api/v1``: alerts, cases and event search, for scripts and
other systems. Requests carry an API token (``Authorization: Bearer gsk_...``)
that a user creates on their account page; the token acts with its user's role.
The OpenAPI description is served at ``/api/v1/openapi.json``.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from flask import Blueprint, abort, g, jsonify, request

from console import audit
from console.alerts import TRANSITIONS, WorkflowError, apply_change, workflow_change
from console.app import csrf, get_store
from console.observables import from_alerts
from console.openapi import openapi_document
from console.permissions import Permission, requires
from console.queries import FilterError, alert_query, case_filter, event_query
from govsoc.errors import ConflictError, NotFoundError, QueryError
from govsoc.events import utcnow
from govsoc.passwords import token_hash
from store.base import NewCase, Severity

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

#: how often a token's "last used" time is written
TOUCH_EVERY = timedelta(minutes=1)
PUBLIC = {"api.openapi"}


def problem(status: int, message: str, **extra: Any) -> Any:
    return jsonify(error=message, status=status, **extra), status


@bp.before_request
def authenticate() -> Any:
    if request.endpoint in PUBLIC:
        return None
    header = request.headers.get("Authorization", "")
    scheme, _sep, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return problem(401, "an API token is required: Authorization: Bearer <token>")
    store = get_store()
    token = store.find_api_token(token_hash(secret.strip()))
    now = utcnow()
    if token is None or token.revoked or (token.expires_at and token.expires_at <= now):
        return problem(401, "the API token is unknown, revoked or expired")
    try:
        user = store.get_user(token.username)
    except NotFoundError:
        return problem(401, "the API token's user no longer exists")
    if user.disabled:
        return problem(401, "the API token's user is disabled")
    if token.last_used is None or now - token.last_used > TOUCH_EVERY:
        store.touch_api_token(token.id, now)
    g.api_user = user
    g.api_token = token
    return None


def as_json(record: Any) -> Any:
    return audit.snapshot(record)


@bp.errorhandler(NotFoundError)
def not_found(error: NotFoundError) -> Any:
    return problem(404, str(error))


@bp.errorhandler(FilterError)
def bad_filter(error: FilterError) -> Any:
    return problem(400, str(error))


@bp.errorhandler(QueryError)
def bad_query(error: QueryError) -> Any:
    return problem(400, str(error))


@bp.route("/openapi.json")
def openapi() -> Any:
    return jsonify(openapi_document())


@bp.route("/whoami")
def whoami() -> Any:
    user = g.api_user
    return jsonify(username=user.username, role=str(user.role), token=g.api_token.name)


@bp.route("/alerts")
@requires(Permission.ALERTS_VIEW)
def list_alerts() -> Any:
    query = alert_query(request.args, me=g.api_user.username)
    page = get_store().list_alerts(query.filter, sort=query.sort, descending=query.descending,
                                   limit=query.limit, after=query.after)
    return jsonify(items=[as_json(a) for a in page.items], next_cursor=page.next_cursor)


@bp.route("/alerts/counts")
@requires(Permission.ALERTS_VIEW)
def count_alerts() -> Any:
    by = request.args.get("by", "status")
    if by not in ("status", "severity", "rule_id", "host", "source"):
        return problem(400, "by: one of status, severity, rule_id, host, source")
    query = alert_query(request.args, me=g.api_user.username)
    return jsonify(get_store().count_alerts(query.filter, by=by))


@bp.route("/alerts/<alert_id>")
@requires(Permission.ALERTS_VIEW)
def get_alert(alert_id: str) -> Any:
    alert = get_store().get_alert(alert_id)
    body = as_json(alert)
    body["next_statuses"] = [s.value for s in TRANSITIONS.get(alert.status, ())]
    return jsonify(body)


def _json_body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        abort(400, "the request body must be a JSON object")
    return body


@bp.route("/alerts/<alert_id>", methods=["PATCH"])
@requires(Permission.ALERTS_TRIAGE)
def patch_alert(alert_id: str) -> Any:
    body = _json_body()
    version = body.get("version")
    if not isinstance(version, str) or not version:
        return problem(400, "version: the version of the alert you read is required")
    alert = get_store().get_alert(alert_id)
    form = {k: str(v) for k, v in body.items()
            if k in ("status", "severity", "resolution") and v is not None}
    if "assignee" in body:
        form["assignee"] = "" if body["assignee"] is None else str(body["assignee"])
    try:
        change = workflow_change(alert, form)
    except WorkflowError as exc:
        return problem(422, str(exc))
    try:
        updated = apply_change(alert, version, change)
    except ConflictError as exc:
        current = get_store().get_alert(alert_id)
        return problem(409, str(exc), current=as_json(current))
    return jsonify(as_json(updated))


@bp.route("/alerts/<alert_id>/comments", methods=["GET"])
@requires(Permission.ALERTS_VIEW)
def alert_comments(alert_id: str) -> Any:
    get_store().get_alert(alert_id)
    return jsonify(items=[as_json(c) for c in get_store().list_comments("alert", alert_id)])


@bp.route("/alerts/<alert_id>/comments", methods=["POST"])
@requires(Permission.ALERTS_TRIAGE)
def add_alert_comment(alert_id: str) -> Any:
    alert = get_store().get_alert(alert_id)
    text = str(_json_body().get("body", "")).strip()
    if not text:
        return problem(400, "body: a comment cannot be empty")
    note = get_store().add_comment("alert", alert.id, g.api_user.username, text[:20000])
    audit.record("alert.comment", "alert", alert.id, after={"comment": note.id, "body": note.body})
    return jsonify(as_json(note)), 201


@bp.route("/cases")
@requires(Permission.CASES_VIEW)
def list_cases() -> Any:
    limit_text = request.args.get("limit", "50")
    limit = max(1, min(int(limit_text), 200)) if limit_text.isdigit() else 50
    page = get_store().list_cases(case_filter(request.args), limit=limit,
                                  after=request.args.get("after") or None)
    return jsonify(items=[as_json(c) for c in page.items], next_cursor=page.next_cursor)


@bp.route("/cases/<case_id>")
@requires(Permission.CASES_VIEW)
def get_case(case_id: str) -> Any:
    return jsonify(as_json(get_store().get_case(case_id)))


@bp.route("/cases", methods=["POST"])
@requires(Permission.CASES_EDIT)
def create_case() -> Any:
    body = _json_body()
    title = str(body.get("title", "")).strip()[:300]
    if not title:
        return problem(400, "title: required")
    ids = body.get("alert_ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        return problem(400, "alert_ids: a list of alert ids")
    store = get_store()
    alerts = [store.get_alert(i) for i in ids[:200]]
    try:
        severity = Severity(body.get("severity", "medium"))
    except ValueError:
        return problem(400, "severity: one of " + ", ".join(s.value for s in Severity))
    from console.cases import TLP_LEVELS

    tlp = str(body.get("tlp", "amber"))
    if tlp not in TLP_LEVELS:
        return problem(400, "tlp: one of " + ", ".join(TLP_LEVELS))
    case = store.create_case(NewCase(
        title=title, created_by=g.api_user.username,
        description=str(body.get("description", ""))[:20000], severity=severity, tlp=tlp,
        alert_ids=[a.id for a in alerts], observables=from_alerts(alerts)))
    audit.record("case.create", "case", case.id, after=case)
    return jsonify(as_json(case)), 201


@bp.route("/events")
@requires(Permission.EVENTS_SEARCH)
def search_events() -> Any:
    query = event_query(request.args)
    page = get_store().search_events(query)
    return jsonify(items=page.items, next_cursor=page.next_cursor)


@bp.route("/events/count")
@requires(Permission.EVENTS_SEARCH)
def count_events() -> Any:
    query = dataclasses.replace(event_query(request.args), after=None)
    return jsonify(count=get_store().count_events(query))
