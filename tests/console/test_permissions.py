"""Every console route and every API endpoint, for every role: allowed roles get
through, the others get 403; anonymous requests are sent to sign in (or 401 on the API)."""

from __future__ import annotations

import re

import pytest

from console.permissions import ROLE_PERMISSIONS, Permission, role_has
from govsoc.events import utcnow
from govsoc.passwords import token_hash
from store.base import ApiToken, NewCase, Role, Suppression

from .conftest import ROLES, make_alert

#: views every signed-in user may use (their own account, language, sign-out)
OPEN_TO_ALL = {"auth.account", "auth.preferences", "auth.change_password", "auth.logout",
               "auth.set_language", "auth.login", "static", "health"}


@pytest.fixture
def records(store):
    alert = make_alert(store)
    case = store.create_case(NewCase(title="c", created_by="root", alert_ids=[]))
    suppression = store.add_suppression(Suppression(
        rule_id="rule-1", field="host.name", value="x", created_by="root",
        created_at=utcnow()))
    token = store.add_api_token(ApiToken(id="tok1", username="root", name="t",
                                         token_hash=token_hash("gsk_root"),
                                         created_at=utcnow()))
    return {"alert_id": alert.id, "case_id": case.id, "username": "ana",
            "token_id": token.id, "suppression_id": suppression.id, "rule_id": "rule-1",
            "index": 0}


def console_routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") or rule.endpoint in ("static",):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule, method


def build(rule, values) -> str:
    path = rule.rule
    for name in rule.arguments:
        path = re.sub(rf"<(?:[a-z]+:)?{name}>", str(values[name]), path)
    return path


def test_every_console_view_declares_a_permission(app):
    missing = [rule.endpoint for rule, _m in console_routes(app)
               if rule.endpoint not in OPEN_TO_ALL
               and not hasattr(app.view_functions[rule.endpoint], "required_permission")
               and not hasattr(getattr(app.view_functions[rule.endpoint], "__wrapped__", None),
                               "required_permission")]
    assert missing == []


def test_every_permission_is_held_by_admin_and_roles_differ():
    assert ROLE_PERMISSIONS[Role.ADMIN] == frozenset(Permission)
    assert len({ROLE_PERMISSIONS[r] for r in Role}) == len(Role)
    assert not role_has(Role.MANAGER, Permission.ALERTS_TRIAGE)
    assert not role_has(Role.ANALYST, Permission.USERS_MANAGE)
    assert role_has(Role.DETECTION_ENGINEER, Permission.RULES_EDIT)
    assert not role_has(Role.ANALYST, Permission.RULES_EDIT)


def required(app, endpoint: str):
    view = app.view_functions[endpoint]
    return getattr(view, "required_permission", None) or getattr(
        getattr(view, "__wrapped__", None), "required_permission", None)


@pytest.mark.parametrize("username", sorted(ROLES))
def test_console_permission_matrix(app, login, records, username):
    session = login(username)
    role = ROLES[username]
    checked = 0
    for rule, method in console_routes(app):
        if rule.endpoint in ("auth.logout", "auth.login"):
            continue
        path = build(rule, records)
        response = session.get(path) if method == "GET" else session.post(path, data={})
        permission = required(app, rule.endpoint)
        allowed = permission is None or role_has(role, permission)
        where = f"{method} {path} as {role}"
        assert response.status_code < 500, where
        if allowed:
            assert response.status_code != 403, where
        else:
            assert response.status_code == 403, where
        checked += 1
    assert checked > 30


def test_anonymous_requests_go_to_sign_in(app, records):
    client = app.test_client()
    for rule, method in console_routes(app):
        if rule.endpoint in OPEN_TO_ALL:
            continue
        path = build(rule, records)
        response = client.get(path) if method == "GET" else client.post(path)
        # posts without a session fail CSRF first (400); pages redirect to sign in
        assert response.status_code in (302, 400), f"{method} {path}"
        if response.status_code == 302:
            assert "/login" in response.headers["Location"]


API_CALLS = [
    ("GET", "/api/v1/alerts", None, Permission.ALERTS_VIEW),
    ("GET", "/api/v1/alerts/counts", None, Permission.ALERTS_VIEW),
    ("GET", "/api/v1/alerts/{alert_id}", None, Permission.ALERTS_VIEW),
    ("PATCH", "/api/v1/alerts/{alert_id}", {"version": "0"}, Permission.ALERTS_TRIAGE),
    ("GET", "/api/v1/alerts/{alert_id}/comments", None, Permission.ALERTS_VIEW),
    ("POST", "/api/v1/alerts/{alert_id}/comments", {"body": "x"}, Permission.ALERTS_TRIAGE),
    ("GET", "/api/v1/cases", None, Permission.CASES_VIEW),
    ("GET", "/api/v1/cases/{case_id}", None, Permission.CASES_VIEW),
    ("POST", "/api/v1/cases", {"title": "from api"}, Permission.CASES_EDIT),
    ("GET", "/api/v1/events", None, Permission.EVENTS_SEARCH),
    ("GET", "/api/v1/events/count", None, Permission.EVENTS_SEARCH),
]


def test_api_matrix_covers_every_api_route(app):
    documented = {(m, p.split("?")[0]) for m, p, _b, _perm in API_CALLS}
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api.") or rule.endpoint in ("api.openapi",
                                                                      "api.whoami"):
            continue
        path = re.sub(r"<(?:[a-z]+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (method, path) in documented, (method, path)


@pytest.mark.parametrize("username", sorted(ROLES))
def test_api_permission_matrix(app, store, records, username):
    secret = f"gsk_test_{username}"
    store.add_api_token(ApiToken(id=f"t-{username}", username=username, name="matrix",
                                 token_hash=token_hash(secret), created_at=utcnow()))
    client = app.test_client()
    role = ROLES[username]
    for method, template, body, permission in API_CALLS:
        path = template.format(**records)
        response = client.open(path, method=method, json=body,
                               headers={"Authorization": f"Bearer {secret}"})
        where = f"{method} {path} as {role}"
        assert response.status_code < 500, where
        if role_has(role, permission):
            assert response.status_code != 403, where
        else:
            assert response.status_code == 403, where
        anonymous = client.open(path, method=method, json=body)
        assert anonymous.status_code == 401
