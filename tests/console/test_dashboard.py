"""The dashboard's figures, the vendored chart library, and the administration pages."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

from govsoc.events import DeadLetter, utcnow
from store.base import AlertChange, AlertStatus, AuditFilter, Role, Severity

from .conftest import make_alert

VENDOR = Path(__file__).resolve().parents[2] / "console" / "static" / "vendor" / "chartjs"


def test_dashboard_figures_match_the_store(analyst, store):
    make_alert(store, severity=Severity.CRITICAL, rule_id="r-crit", rule_name="Crit rule",
               fields={"host.name": "dc01"})
    for _ in range(2):
        make_alert(store, severity=Severity.LOW, rule_id="r-low", rule_name="Low rule",
                   fields={"host.name": "web01"})
    done = make_alert(store, rule_id="r-low", rule_name="Low rule")
    ack = store.update_alert(done.id, done.version, AlertChange(status=AlertStatus.ACKNOWLEDGED))
    store.update_alert(done.id, ack.version, AlertChange(status=AlertStatus.RESOLVED))
    make_alert(store, when=utcnow() - timedelta(days=20))  # outside 7 days
    data = analyst.get("/dashboard/data.json?range=7d").get_json()
    assert data["total"] == 4 and data["open_alerts"] == 3
    assert data["by_severity"]["critical"] == 1 and data["by_severity"]["low"] == 2
    assert data["top_rules"][0] == {"rule_id": "r-low", "name": "Low rule", "count": 3}
    assert {"host": "web01", "count": 3} in data["top_hosts"]
    assert sum(b["count"] for b in data["histogram"]) == 4
    assert data["response_minutes"]["resolve"]["n"] == 1
    assert analyst.get("/dashboard/data.json?range=30d").get_json()["total"] == 5
    page = analyst.get("/").get_data(as_text=True)
    assert 'data-testid="total-alerts">4<' in page
    assert "/static/vendor/chartjs/chart.umd.min.js" in page


def test_chart_library_is_vendored_with_its_licence(analyst):
    assert (VENDOR / "LICENSE.md").read_text().startswith("The MIT License")
    assert "4.6.1" in (VENDOR / "VERSION").read_text()
    response = analyst.get("/static/vendor/chartjs/chart.umd.min.js")
    assert response.status_code == 200 and b"Chart.js v4.6.1" in response.data[:200]


def test_admin_manages_users(admin, store):
    response = admin.post("/admin/users", data={"username": "newbie", "password": "long enough pw",
                                                "role": "analyst", "language": "en"})
    assert response.status_code == 303
    assert store.get_user("newbie").role == Role.ANALYST
    admin.post("/admin/users/newbie", data={"action": "role", "role": "detection_engineer"})
    assert store.get_user("newbie").role == Role.DETECTION_ENGINEER
    admin.post("/admin/users/newbie", data={"action": "disable"})
    assert store.get_user("newbie").disabled
    admin.post("/admin/users/newbie", data={"action": "enable"})
    assert not store.get_user("newbie").disabled
    # short passwords and odd names are refused
    admin.post("/admin/users", data={"username": "x y", "password": "short", "role": "analyst"})
    assert "x y" not in {u.username for u in store.list_users()}
    actions = [e.action for e in store.list_audit(AuditFilter(target_id="newbie")).items]
    assert {"user.create", "user.role", "user.disable", "user.enable"} <= set(actions)
    created = store.list_audit(AuditFilter(action="user.create")).items[0]
    assert "password_hash" not in str(created.after)


def test_last_admin_keeps_the_role_and_cannot_disable_self(admin, store):
    admin.post("/admin/users/root", data={"action": "role", "role": "analyst"})
    assert store.get_user("root").role == Role.ADMIN
    admin.post("/admin/users/root", data={"action": "disable"})
    assert not store.get_user("root").disabled


def test_audit_log_page_filters(admin, store):
    alert = make_alert(store)
    admin.post(f"/alerts/{alert.id}/comment", data={"body": "hello"})
    page = admin.get("/admin/audit?action=alert.comment").get_data(as_text=True)
    assert "alert.comment" in page and alert.id in page
    assert "alert.comment" not in admin.get("/admin/audit?actor=nobody").get_data(as_text=True)
    assert admin.get("/admin/audit?start=garbage").status_code == 400


def test_dead_letters_page_shows_raw_bytes_escaped(login, store):
    store.add_dead_letters([DeadLetter(source="syslog:udp", position="7",
                                       reason="not a syslog message",
                                       original=b"<script>x</script>\x00\xff")])
    page = login("dee").get("/admin/dead-letters").get_data(as_text=True)
    assert "not a syslog message" in page
    assert "&lt;script&gt;x&lt;/script&gt;\\x00\\xff" in page
    assert "<script>x" not in page


def test_rules_pages_list_hits_and_toggle_state(login, store):
    make_alert(store, rule_id="r-1")
    engineer = login("dee")
    page = engineer.get("/rules").get_data(as_text=True)
    assert 'data-testid="rules"' in page
    suppressions = engineer.get("/rules/suppressions")
    assert suppressions.status_code == 200
    assert re.search(r"<h1>Suppressions</h1>", suppressions.get_data(as_text=True))


def test_dashboard_figures_are_reused_for_a_while(app, analyst, store):
    make_alert(store)
    first = analyst.get("/dashboard/data.json").get_json()
    make_alert(store)
    again = analyst.get("/dashboard/data.json").get_json()
    assert again["computed_at"] == first["computed_at"] and again["total"] == 1
    app.extensions.pop("govsoc.dashboard_cache")
    app.config["DASHBOARD_CACHE_SECONDS"] = 0
    fresh = analyst.get("/dashboard/data.json").get_json()
    assert fresh["total"] == 2


def test_queue_skips_status_counts_for_free_text(analyst, store):
    make_alert(store, rule_name="Needle in the queue")
    page = analyst.get("/alerts?status=&q=Needle").get_data(as_text=True)
    assert "Needle in the queue" in page
    assert 'data-testid="count-new">…<' in page


def test_sla_breaches_flagged_on_queue_and_dashboard(config, store, login):
    # a critical alert must be acknowledged at once here: every open one is past its SLA
    config.values["playbooks"].setdefault("sla", {})["critical"] = {
        "acknowledge_minutes": 0, "resolve_minutes": 0}
    late = make_alert(store, rule_name="Old critical thing", severity=Severity.CRITICAL)
    make_alert(store, rule_id="rule-2", rule_name="Fresh low thing", severity=Severity.LOW)
    session = login("root")
    queue = session.get("/alerts").get_data(as_text=True)
    row = queue.split(f'data-alert-id="{late.id}"', 1)[1].split("</tr>", 1)[0]
    assert 'data-testid="sla-breach"' in row
    assert queue.count('data-testid="sla-breach"') == 1
    dashboard = session.get("/").get_data(as_text=True)
    assert re.search(r'data-testid="sla-breaches"><a[^>]*>1<', dashboard)
