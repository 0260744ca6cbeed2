"""Security of the console: CSRF on every form, security headers and a CSP without
inline script, attacker-controlled event fields rendered inert, filters that
cannot inject into the store's queries, sign-in lockout and session handling."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from console.app import CSP
from store.base import AlertStatus, AuditFilter

from .conftest import XSS, make_alert, sign_in

TEMPLATES = Path(__file__).resolve().parents[2] / "console" / "templates"
STATIC = Path(__file__).resolve().parents[2] / "console" / "static"


def test_security_headers_on_every_response(analyst, app):
    for path in ("/", "/alerts", "/login", "/static/css/console.css", "/nope"):
        response = analyst.get(path)
        headers = response.headers
        assert headers["Content-Security-Policy"] == CSP, path
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["Referrer-Policy"] == "same-origin"
    assert "script-src 'self'" in CSP and "unsafe-inline" not in CSP
    assert "unsafe-eval" not in CSP and "frame-ancestors 'none'" in CSP
    assert analyst.get("/alerts").headers["Cache-Control"] == "no-store"


def test_session_cookie_flags(app, config):
    client = app.test_client()
    response = sign_in(client, "ana")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    from console import create_app
    from govsoc.config import load_config

    secure_cfg = load_config(None, data_dir=config.data_dir,
                             env={"GOVSOC_CONSOLE_SECURE_COOKIES": "true"})
    secure_app = create_app(secure_cfg, app.extensions["govsoc.store"], {"TESTING": True})
    assert secure_app.config["SESSION_COOKIE_SECURE"] is True


def test_no_inline_script_or_style_in_templates():
    for path in TEMPLATES.rglob("*.html"):
        text = path.read_text(encoding="utf-8")
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag or 'type="application/json"' in tag, (path, tag)
        assert not re.search(r"\son[a-z]+\s*=", text), path  # no event-handler attributes
        assert " style=" not in text and "<style" not in text, path


def test_no_external_resources_anywhere():
    """Closed networks: no CDN, no external fonts, in templates, CSS and our scripts."""
    for path in [*TEMPLATES.rglob("*.html"), *STATIC.rglob("*.css"), *STATIC.glob("js/*.js")]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(?:src|href)\s*=\s*[\"']?(https?:)?//", text), path
        assert not re.search(r"url\(\s*[\"']?(https?:)?//", text), path
        assert "@import" not in text and "fonts.googleapis" not in text, path


def test_csrf_is_required_on_every_form_post(app, analyst, store):
    alert = make_alert(store)
    token_free = analyst.client  # the raw client posts without a token
    for path in (f"/alerts/{alert.id}/update", f"/alerts/{alert.id}/comment", "/alerts/bulk",
                 "/cases", "/logout", "/language", "/account/tokens",
                 f"/alerts/{alert.id}/suppress"):
        response = token_free.post(path, data={"version": alert.version,
                                               "status": "acknowledged", "body": "x"})
        assert response.status_code == 400, path
    assert store.get_alert(alert.id).status == AlertStatus.NEW
    assert store.list_comments("alert", alert.id) == []
    # a token from another session is refused too
    other = app.test_client()
    sign_in(other, "dee")
    response = other.post(f"/alerts/{alert.id}/update",
                          data={"csrf_token": analyst.token, "version": alert.version,
                                "status": "acknowledged"})
    assert response.status_code == 400


def payload_inert(html: str) -> None:
    """None of the planted payloads appears as markup; each appears escaped."""
    for marker in ("<img src=x", "<script>window.__xss", "<svg onload", "<iframe",
                   "<b>rule</b>", "<u>bob</u>"):
        assert marker not in html, marker


@pytest.mark.parametrize("field", sorted(XSS))
def test_xss_payload_fields_are_escaped_on_the_alert_page(analyst, xss_alert, field):
    html = analyst.get(f"/alerts/{xss_alert.id}").get_data(as_text=True)
    payload_inert(html)
    escaped = XSS[field].replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    assert escaped.replace('"', "&#34;") in html or escaped.replace('"', "&quot;") in html


def test_xss_payloads_inert_in_queue_case_dashboard_and_audit(admin, store, xss_alert):
    payload_inert(admin.get("/alerts").get_data(as_text=True))
    payload_inert(admin.get("/alerts?status=&q=script").get_data(as_text=True))
    response = admin.post("/cases", data={"title": '<script>alert("t")</script>',
                                          "alert": [xss_alert.id]})
    case_page = admin.get(response.headers["Location"]).get_data(as_text=True)
    payload_inert(case_page)
    assert '<script>alert("t")' not in case_page
    dashboard = admin.get("/").get_data(as_text=True)
    payload_inert(dashboard)
    # the chart data block is JSON that cannot close its element
    block = re.search(r'<script type="application/json" id="dashboard-data">(.*?)</script>',
                      dashboard, re.S).group(1)
    assert "<" not in block
    payload_inert(admin.get("/admin/audit").get_data(as_text=True))
    updates = admin.get("/alerts/updates?status=open")
    assert updates.mimetype == "application/json"


def test_event_json_is_served_as_json(analyst, xss_alert):
    response = analyst.get(f"/alerts/{xss_alert.id}/event/0.json")
    assert response.mimetype == "application/json"
    assert response.get_json()["host"]["name"] == XSS["host.name"]


INJECTIONS = ["' OR '1'='1", "x'); DROP TABLE alerts; --", '" OR 1=1 --', "*", "%",
              "host.name:*", 'NEAR("a" "b")', "\\", "\x00", "a\" OR \"1"]


@pytest.mark.parametrize("payload", INJECTIONS)
def test_filters_cannot_inject(analyst, store, payload):
    make_alert(store, fields={"host.name": "web01"})
    for name in ("host", "rule", "user", "assignee", "q"):
        response = analyst.get("/alerts", query_string={"status": "", name: payload})
        assert response.status_code in (200, 400), (name, payload)
        if name != "q":
            # an exact-match filter with a hostile value matches nothing
            assert 'data-alert-id="' not in response.get_data(as_text=True), (name, payload)
    assert store.count_alerts(None)["new"] == 1  # nothing was dropped or changed
    events = analyst.get("/api/v1/events", query_string={"q": payload})
    assert events.status_code == 401  # the API wants a token, never a cookie


def test_event_field_filter_names_are_checked(app, store):
    from govsoc.events import utcnow
    from govsoc.passwords import token_hash
    from store.base import ApiToken

    store.add_api_token(ApiToken(id="t1", username="ana", name="t",
                                 token_hash=token_hash("gsk_a"), created_at=utcnow()))
    client = app.test_client()
    headers = {"Authorization": "Bearer gsk_a"}
    bad = client.get("/api/v1/events", query_string={"field.host.name') OR 1=1 --": "x"},
                     headers=headers)
    assert bad.status_code == 400
    for payload in INJECTIONS:
        ok = client.get("/api/v1/events", query_string={"q": payload, "field.host.name": payload},
                        headers=headers)
        assert ok.status_code in (200, 400), payload


def test_lockout_after_repeated_failures(app, store):
    client = app.test_client()
    for _ in range(5):
        assert sign_in(client, "ana", "wrong password!").status_code == 401
    locked = sign_in(client, "ana")  # right password, but locked now
    assert locked.status_code == 401
    # before sign-in the page speaks the default language, Vietnamese
    assert "tài khoản bị khoá tạm thời" in locked.get_data(as_text=True)
    assert store.get_user("ana").locked_until is not None
    assert store.list_audit(AuditFilter(action="login.failed")).items
    # an unknown name gets the same answer as a wrong password
    unknown = sign_in(app.test_client(), "nobody-here", "whatever12345")
    assert unknown.status_code == 401
    assert "Sai tên đăng nhập hoặc mật khẩu" in unknown.get_data(as_text=True)


def test_password_or_role_change_ends_other_sessions(login, admin, store):
    session = login("ana")
    assert session.get("/alerts").status_code == 200
    admin.post("/admin/users/ana", data={"action": "role", "role": "manager"})
    assert session.get("/alerts").status_code == 302  # sent to sign in again


def test_disabled_user_is_signed_out(login, admin, store):
    session = login("dee")
    admin.post("/admin/users/dee", data={"action": "disable"})
    assert session.get("/").status_code == 302
    assert sign_in(session.client, "dee").status_code == 401


def test_sign_in_redirect_stays_on_site(app):
    client = app.test_client()
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True)).group(1)
    response = client.post("/login", data={"username": "ana", "password": "correct horse battery",
                                           "csrf_token": token, "next": "//evil.example/x"})
    assert response.headers["Location"] == "/"


def test_logout(analyst):
    response = analyst.post("/logout")
    assert response.status_code == 302
    assert analyst.get("/alerts").status_code == 302


def test_one_address_cannot_guess_name_after_name(config, store):
    from console import create_app
    from console.auth import MAX_FAILURES_PER_ADDRESS

    assert MAX_FAILURES_PER_ADDRESS == 20
    # a lower limit keeps the test short; the counting is the same
    app = create_app(config, store, {"TESTING": True, "SIGNIN_FAILURES_PER_ADDRESS": 4})
    client = app.test_client()
    for n in range(4):
        assert sign_in(client, f"guess{n}", "wrong password!").status_code == 401
    throttled = sign_in(client, "max")  # right password, but this address must wait
    assert throttled.status_code == 429
    assert store.get_user("max").last_login is None
    assert store.list_audit(AuditFilter(action="login.throttled")).items
