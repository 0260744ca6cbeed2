"""Console fixtures: a real SQLite store, the app, one user per role, signed-in
clients, and alerts built from events whose fields carry attacker payloads."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

import pytest
from werkzeug.security import generate_password_hash

from console import create_app
from govsoc.events import event_id, new_event, utcnow
from store import open_store
from store.base import NewAlert, Role, Severity, User

PASSWORD = "correct horse battery"
ROLES = {"ana": Role.ANALYST, "dee": Role.DETECTION_ENGINEER, "max": Role.MANAGER,
         "root": Role.ADMIN}

#: attacker-controlled values planted in event fields
XSS = {
    "host.name": '<img src=x onerror="window.__xss=1">web01',
    "user_agent.original": '"><script>window.__xss=2</script>',
    "process.command_line": "cmd.exe /c \"<svg onload=window.__xss=3>\" & whoami",
    "dns.question.name": "<iframe src=javascript:window.__xss=4>.evil.example",
    "file.name": "invoice<script>window.__xss=5</script>.pdf.exe",
}


@cache
def _password_hash() -> str:
    # scrypt with a smaller work factor keeps the many sign-ins of the suite fast;
    # the parameters travel inside the hash, so sign-in checks it the same way
    return generate_password_hash(PASSWORD, method="scrypt:4096:8:1")


@pytest.fixture
def store(config):
    opened = open_store(config)
    for name, role in ROLES.items():
        opened.create_user(User(username=name, password_hash=_password_hash(), role=role,
                                created_at=utcnow(), display_name=name.title(),
                                language="en"))
    yield opened
    opened.close()


@pytest.fixture
def app(config, store):
    return create_app(config, store, {"TESTING": True})


def csrf_token(client, path: str = "/login") -> str:
    page = client.get(path)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def sign_in(client, username: str, password: str = PASSWORD):
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": csrf_token(client)})


@dataclass
class Session:
    """A signed-in test client that adds the CSRF token to its posts."""

    client: object
    username: str
    token: str

    def get(self, *args, **kwargs):
        return self.client.get(*args, **kwargs)

    def post(self, path, data=None, **kwargs):
        data = dict(data or {})
        data.setdefault("csrf_token", self.token)
        return self.client.post(path, data=data, **kwargs)


@pytest.fixture
def login(app):
    def make(username: str) -> Session:
        client = app.test_client()
        response = sign_in(client, username)
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return Session(client, username, csrf_token(client, "/account"))
    return make


@pytest.fixture
def analyst(login):
    return login("ana")


@pytest.fixture
def admin(login):
    return login("root")


def store_event(store, when: datetime, n: int, **fields) -> dict:
    event = new_event("test.console", when, original=f"record {n}")
    event["event"]["id"] = event_id("tests/console", n)
    for name, value in fields.items():
        node = event
        parts = name.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    store.insert_events([event])
    return event


_counter = iter(range(1, 10_000_000))


def make_alert(store, *, rule_id: str = "rule-1", rule_name: str = "Suspicious thing",
               severity: Severity = Severity.HIGH, when: datetime | None = None,
               fields: dict | None = None, tags: list[str] | None = None,
               matched: list[str] | None = None, source: str = "sigma"):
    """An alert raised on a freshly stored event carrying ``fields``."""
    when = when or utcnow() - timedelta(minutes=5)
    n = next(_counter)
    fields = dict(fields or {"host.name": "web01", "source.ip": "10.0.0.5",
                             "user.name": "alice"})
    event = store_event(store, when, n, **fields)
    alert, created = store.record_alerts([NewAlert(
        rule_id=rule_id, rule_name=rule_name, severity=severity, group_key=f"g{n}",
        timestamp=when, source=source, event_ids=[event["event"]["id"]],
        tags=tags or ["attack.t1059.001", "attack.execution"], dataset="test.console",
        description="Test alert", fields=fields,
        matched_fields=matched or list(fields)[:1])], timedelta(hours=1))[0]
    assert created
    return alert


@pytest.fixture
def xss_alert(store):
    return make_alert(store, rule_name="Payload <b>rule</b>", fields={**XSS,
                      "source.ip": "10.9.9.9", "user.name": "<u>bob</u>"},
                      matched=list(XSS))
