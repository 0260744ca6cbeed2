"""The JSON API: tokens, alerts, cases, event search, conflicts, the OpenAPI document."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from govsoc.events import utcnow
from store.base import AlertStatus

from .conftest import make_alert


@pytest.fixture
def token(analyst):
    """A token created the way a person does it: on the account page."""
    analyst.post("/account/tokens", data={"name": "soar", "days": "30"})
    page = analyst.get("/account").get_data(as_text=True)
    secret = re.search(r'data-testid="new-token">([^<]+)<', page).group(1)
    # shown once only
    assert secret not in analyst.get("/account").get_data(as_text=True)
    return secret


@pytest.fixture
def api(app, token):
    client = app.test_client()

    def call(method, path, **kwargs):
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return client.open(f"/api/v1{path}", method=method, headers=headers, **kwargs)
    return call


def test_token_is_stored_hashed(store, token):
    (stored,) = store.list_api_tokens("ana")
    assert stored.token_hash != token and token not in repr(stored)
    assert stored.expires_at is not None


def test_whoami_and_last_used(api, store):
    body = api("GET", "/whoami").get_json()
    assert body == {"username": "ana", "role": "analyst", "token": "soar"}
    assert store.list_api_tokens("ana")[0].last_used is not None


def test_bad_tokens_are_refused(app, store, token, analyst):
    client = app.test_client()
    assert client.get("/api/v1/alerts").status_code == 401
    assert client.get("/api/v1/alerts",
                      headers={"Authorization": "Bearer gsk_wrong"}).status_code == 401
    assert client.get("/api/v1/alerts",
                      headers={"Authorization": f"Basic {token}"}).status_code == 401
    (stored,) = store.list_api_tokens("ana")
    analyst.post(f"/account/tokens/{stored.id}/revoke")
    assert client.get("/api/v1/alerts",
                      headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_expired_token_is_refused(app, store):
    from govsoc.passwords import token_hash
    from store.base import ApiToken

    store.add_api_token(ApiToken(id="old", username="ana", name="old",
                                 token_hash=token_hash("gsk_old"),
                                 created_at=utcnow() - timedelta(days=10),
                                 expires_at=utcnow() - timedelta(days=1)))
    response = app.test_client().get("/api/v1/alerts",
                                     headers={"Authorization": "Bearer gsk_old"})
    assert response.status_code == 401


def test_list_filter_and_page_alerts(api, store):
    made = [make_alert(store, when=utcnow() - timedelta(minutes=i)) for i in range(5)]
    first = api("GET", "/alerts?limit=2").get_json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    seen = [a["id"] for a in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = api("GET", "/alerts", query_string={"limit": 2, "after": cursor}).get_json()
        seen += [a["id"] for a in page["items"]]
        cursor = page["next_cursor"]
    assert sorted(seen) == sorted(a.id for a in made)
    assert api("GET", "/alerts?severity=critical").get_json()["items"] == []
    assert api("GET", "/alerts?severity=bogus").status_code == 400
    assert api("GET", "/alerts/counts?by=status").get_json() == {"new": 5}
    assert api("GET", "/alerts/counts?by=evil").status_code == 400


def test_patch_alert_with_conflict(api, store):
    alert = make_alert(store)
    body = api("PATCH", f"/alerts/{alert.id}", json={
        "version": alert.version, "status": "acknowledged", "assignee": "ana"}).get_json()
    assert body["status"] == "acknowledged" and body["assignee"] == "ana"
    stale = api("PATCH", f"/alerts/{alert.id}", json={"version": alert.version,
                                                      "status": "resolved"})
    assert stale.status_code == 409
    assert stale.get_json()["current"]["status"] == "acknowledged"
    assert store.get_alert(alert.id).status == AlertStatus.ACKNOWLEDGED
    assert api("PATCH", f"/alerts/{alert.id}", json={
        "version": body["version"], "status": "new"}).status_code == 422
    assert api("PATCH", f"/alerts/{alert.id}", json={"status": "resolved"}).status_code == 400
    assert api("PATCH", f"/alerts/{alert.id}", data="not json",
               content_type="application/json").status_code == 400
    assert api("GET", "/alerts/ffff").status_code == 404


def test_comments_and_cases(api, store):
    a, b = make_alert(store), make_alert(store)
    assert api("POST", f"/alerts/{a.id}/comments", json={"body": "seen"}).status_code == 201
    assert api("GET", f"/alerts/{a.id}/comments").get_json()["items"][0]["body"] == "seen"
    created = api("POST", "/cases", json={"title": "From SOAR", "alert_ids": [a.id, b.id],
                                          "severity": "high"})
    assert created.status_code == 201
    case = created.get_json()
    assert sorted(case["alert_ids"]) == sorted([a.id, b.id])
    assert api("GET", f"/cases/{case['id']}").get_json()["title"] == "From SOAR"
    assert [c["id"] for c in api("GET", "/cases").get_json()["items"]] == [case["id"]]
    assert api("POST", "/cases", json={"title": ""}).status_code == 400
    assert api("POST", "/cases", json={"title": "x", "alert_ids": "a"}).status_code == 400


def test_event_search(api, store):
    make_alert(store, fields={"host.name": "srv-api", "source.ip": "10.7.7.7"})
    found = api("GET", "/events", query_string={"field.host.name": "srv-api"}).get_json()
    assert [e["host"]["name"] for e in found["items"]] == ["srv-api"]
    assert api("GET", "/events/count", query_string={
        "field.source.ip": "10.7.7.7"}).get_json() == {"count": 1}
    assert api("GET", "/events?start=yesterday").status_code == 400


def test_openapi_document_describes_every_api_route(app):
    doc = app.test_client().get("/api/v1/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    assert doc["components"]["securitySchemes"]["bearerToken"]["scheme"] == "bearer"
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api.") or rule.endpoint == "api.openapi":
            continue
        path = re.sub(r"<(?:[a-z]+:)?(\w+)>", r"{\1}", rule.rule[len("/api/v1"):])
        assert path in doc["paths"], path
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in doc["paths"][path], (method, path)
    alert = doc["components"]["schemas"]["Alert"]
    assert alert["properties"]["status"]["enum"] == [s.value for s in AlertStatus]
    assert "password_hash" not in str(doc)
    # every $ref resolves
    refs = set(re.findall(r"#/components/schemas/(\w+)", str(doc)))
    assert refs <= set(doc["components"]["schemas"])
