"""The alert queue and triage: filters, counts, paging, the alert page, the
workflow with its conflicts, bulk actions, suppress similar, and the audit trail."""

from __future__ import annotations

import re
from datetime import timedelta

from govsoc.events import utcnow
from store.base import AlertChange, AlertFilter, AlertStatus, AuditFilter, Severity

from .conftest import make_alert, store_event


def rows(html: str) -> list[str]:
    return re.findall(r'<tr data-alert-id="([0-9a-f]+)"', html)


def test_queue_shows_open_alerts_by_default_with_counts(analyst, store):
    fresh = make_alert(store, rule_name="Fresh one")
    closed = make_alert(store, rule_name="Closed one")
    store.update_alert(closed.id, closed.version, AlertChange(status=AlertStatus.RESOLVED))
    page = analyst.get("/alerts").get_data(as_text=True)
    assert rows(page) == [fresh.id]
    assert 'data-testid="count-new">1<' in page
    assert 'data-testid="count-resolved">1<' in page
    everything = analyst.get("/alerts?status=").get_data(as_text=True)
    assert set(rows(everything)) == {fresh.id, closed.id}


def test_queue_filters(analyst, store):
    a = make_alert(store, severity=Severity.CRITICAL, rule_id="r-a",
                   fields={"host.name": "db01", "source.ip": "10.1.1.1", "user.name": "u1"})
    b = make_alert(store, severity=Severity.LOW, rule_id="r-b",
                   fields={"host.name": "web02", "source.ip": "10.2.2.2", "user.name": "u2"})
    assert rows(analyst.get("/alerts?severity=critical").get_data(as_text=True)) == [a.id]
    assert rows(analyst.get("/alerts?rule=r-b").get_data(as_text=True)) == [b.id]
    assert rows(analyst.get("/alerts?host=web02").get_data(as_text=True)) == [b.id]
    assert rows(analyst.get("/alerts?source_ip=10.1.1.1").get_data(as_text=True)) == [a.id]
    assert rows(analyst.get("/alerts?user=u2").get_data(as_text=True)) == [b.id]
    assert rows(analyst.get("/alerts?assignee=(none)").get_data(as_text=True)) != []
    assert rows(analyst.get("/alerts?assignee=(me)").get_data(as_text=True)) == []
    bad = analyst.get("/alerts?source_ip=not-an-ip")
    assert bad.status_code == 400 and "not an IP address" in bad.get_data(as_text=True)
    assert analyst.get("/alerts?sort=id;drop").status_code == 400
    assert analyst.get("/alerts?status=bogus").status_code == 400


def test_queue_time_range_and_free_text(analyst, store):
    old = make_alert(store, rule_name="Old", when=utcnow() - timedelta(days=3))
    new = make_alert(store, rule_name="Brand new thing")
    in_day = rows(analyst.get("/alerts?range=24h").get_data(as_text=True))
    assert new.id in in_day and old.id not in in_day
    found = rows(analyst.get("/alerts?status=&q=Brand").get_data(as_text=True))
    assert found == [new.id]


def test_queue_keyset_paging(analyst, store):
    made = [make_alert(store, when=utcnow() - timedelta(minutes=i)) for i in range(7)]
    first = analyst.get("/alerts?limit=3").get_data(as_text=True)
    seen = rows(first)
    assert len(seen) == 3
    url = re.search(r'href="([^"]+)" data-testid="next-page"', first).group(1)
    while url:
        page = analyst.get(url.replace("&amp;", "&")).get_data(as_text=True)
        seen += rows(page)
        match = re.search(r'href="([^"]+)" data-testid="next-page"', page)
        url = match.group(1) if match else None
    assert sorted(seen) == sorted(a.id for a in made)
    assert len(seen) == len(set(seen))


def test_updates_endpoint_reports_new_alerts(analyst, store):
    before = utcnow()
    fresh = make_alert(store)
    data = analyst.get("/alerts/updates", query_string={"status": "open",
                                                     "since": before.isoformat()}).get_json()
    assert [a["id"] for a in data["alerts"]] == [fresh.id]
    assert data["counts"]["new"] == 1
    later = analyst.get("/alerts/updates", query_string={"status": "open",
                                                      "since": data["now"]}).get_json()
    assert later["alerts"] == []


def test_alert_page_shows_rule_fields_events_related_and_attack(analyst, store):
    when = utcnow() - timedelta(minutes=10)
    alert = make_alert(store, when=when, fields={"host.name": "dc01", "user.name": "eve",
                                                 "source.ip": "10.3.3.3"},
                       matched=["user.name"])
    related = store_event(store, when + timedelta(minutes=2), 900001, **{
        "host.name": "dc01", "message": "a neighbour on the same host"})
    page = analyst.get(f"/alerts/{alert.id}").get_data(as_text=True)
    assert "a neighbour on the same host" in page
    assert "host.name=dc01" in page
    assert related["event"]["id"] not in alert.event_ids
    assert 'href="https://attack.mitre.org/techniques/T1059/001/"' in page
    assert '<mark class="matched">user.name</mark>' in page
    assert 'data-testid="event-json"' in page


def post_update(session, alert, **form):
    return session.post(f"/alerts/{alert.id}/update", data={"version": alert.version, **form})


def test_workflow_new_acknowledged_in_progress_resolved(analyst, store):
    alert = make_alert(store)
    assert post_update(analyst, alert, status="acknowledged", assignee="(me)").status_code == 303
    alert = store.get_alert(alert.id)
    assert alert.status == AlertStatus.ACKNOWLEDGED and alert.assignee == "ana"
    assert alert.acknowledged_at is not None
    assert post_update(analyst, alert, status="in_progress").status_code == 303
    alert = store.get_alert(alert.id)
    assert post_update(analyst, alert, status="resolved", resolution="patched").status_code == 303
    alert = store.get_alert(alert.id)
    assert alert.status == AlertStatus.RESOLVED and alert.resolution == "patched"
    assert alert.resolved_at is not None
    # a resolved alert cannot jump back to new
    refused = post_update(analyst, alert, status="new")
    assert refused.status_code == 400
    assert store.get_alert(alert.id).status == AlertStatus.RESOLVED


def test_false_positive_needs_a_reason(analyst, store):
    alert = make_alert(store)
    refused = post_update(analyst, alert, status="false_positive")
    assert refused.status_code == 400
    assert "needs a reason" in refused.get_data(as_text=True)
    assert post_update(analyst, alert, status="false_positive",
                       resolution="backup job").status_code == 303
    alert = store.get_alert(alert.id)
    assert alert.status == AlertStatus.FALSE_POSITIVE and alert.resolution == "backup job"


def test_severity_override_and_unassign(analyst, store):
    alert = make_alert(store, severity=Severity.LOW)
    post_update(analyst, alert, severity="critical", assignee="dee")
    alert = store.get_alert(alert.id)
    assert alert.severity == Severity.CRITICAL and alert.assignee == "dee"
    post_update(analyst, alert, assignee="")
    assert store.get_alert(alert.id).assignee is None
    assert post_update(analyst, store.get_alert(alert.id), assignee="nosuchuser").status_code \
        == 400


def test_two_analysts_editing_the_same_alert_conflict(login, store):
    first, second = login("ana"), login("dee")
    alert = make_alert(store)
    # both opened the alert page at the same version
    version = re.search(r'name="version" value="([^"]+)"',
                        second.get(f"/alerts/{alert.id}").get_data(as_text=True)).group(1)
    assert post_update(first, alert, status="acknowledged", assignee="(me)").status_code == 303
    response = second.post(f"/alerts/{alert.id}/update",
                           data={"version": version, "status": "false_positive",
                                 "resolution": "looks fine"})
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "Someone else changed this alert" in page
    current = store.get_alert(alert.id)
    assert current.status == AlertStatus.ACKNOWLEDGED and current.assignee == "ana"
    assert current.resolution is None
    # the page shows the alert as it is now, with the new version to retry from
    assert f'name="version" value="{current.version}"' in page


def test_comments_appear_in_history_and_audit(analyst, store):
    alert = make_alert(store)
    analyst.post(f"/alerts/{alert.id}/comment", data={"body": "checked the <b>proxy</b> logs"})
    page = analyst.get(f"/alerts/{alert.id}").get_data(as_text=True)
    assert "checked the &lt;b&gt;proxy&lt;/b&gt; logs" in page
    assert store.list_comments("alert", alert.id)[0].author == "ana"
    entries = store.list_audit(AuditFilter(target_type="alert", target_id=alert.id)).items
    assert [e.action for e in entries] == ["alert.comment"]


def test_every_change_is_audited_with_before_after_and_address(analyst, store):
    alert = make_alert(store)
    post_update(analyst, alert, status="acknowledged", severity="critical")
    entry = store.list_audit(AuditFilter(action="alert.update")).items[0]
    assert entry.actor == "ana" and entry.target_id == alert.id
    assert entry.before["status"] == "new" and entry.after["status"] == "acknowledged"
    assert entry.before["severity"] == "high" and entry.after["severity"] == "critical"
    assert entry.address == "127.0.0.1"
    assert entry.at is not None


def test_bulk_assign_status_and_false_positive(analyst, store):
    a, b, c = (make_alert(store) for _ in range(3))
    selected = [f"{x.id}@{x.version}" for x in (a, b)]
    analyst.post("/alerts/bulk", data={"action": "assign", "assignee": "(me)",
                                       "selected": selected})
    assert {store.get_alert(x.id).assignee for x in (a, b)} == {"ana"}
    assert store.get_alert(c.id).assignee is None
    fresh = [store.get_alert(x.id) for x in (a, b)]
    analyst.post("/alerts/bulk", data={"action": "status", "status": "in_progress",
                                       "selected": [f"{x.id}@{x.version}" for x in fresh]})
    assert {store.get_alert(x.id).status for x in (a, b)} == {AlertStatus.IN_PROGRESS}
    analyst.post("/alerts/bulk", data={"action": "false_positive", "resolution": "scanner",
                                       "selected": [f"{c.id}@{c.version}"]})
    assert store.get_alert(c.id).status == AlertStatus.FALSE_POSITIVE


def test_bulk_with_a_stale_version_reports_a_conflict(analyst, store):
    a = make_alert(store)
    stale = a.version
    store.update_alert(a.id, a.version, AlertChange(assignee="dee"))
    response = analyst.post("/alerts/bulk", data={
        "action": "status", "status": "acknowledged", "selected": [f"{a.id}@{stale}"]},
        follow_redirects=True)
    assert "changed by someone else" in response.get_data(as_text=True)
    assert store.get_alert(a.id).status == AlertStatus.NEW


def test_bulk_create_case_goes_to_the_case_form(analyst, store):
    a, b = make_alert(store), make_alert(store)
    response = analyst.post("/alerts/bulk", data={
        "action": "case", "selected": [f"{a.id}@{a.version}", f"{b.id}@{b.version}"]})
    assert response.status_code == 303
    assert f"alert={a.id}" in response.headers["Location"]


def test_suppress_similar_creates_a_suppression(analyst, store):
    alert = make_alert(store, rule_id="noisy-rule")
    response = analyst.post(f"/alerts/{alert.id}/suppress", data={
        "field": "host.name", "reason": "patch server", "days": "7"})
    assert response.status_code == 303
    (suppression,) = store.list_suppressions("noisy-rule")
    assert (suppression.rule_id, suppression.field, suppression.value) == (
        "noisy-rule", "host.name", "web01")
    assert suppression.created_by == "ana" and suppression.expires_at is not None
    assert store.list_audit(AuditFilter(action="suppression.create")).items
    # a field the alert does not have is refused
    assert analyst.post(f"/alerts/{alert.id}/suppress",
                        data={"field": "nope", "reason": "x"}).status_code == 400


def test_manager_sees_but_cannot_triage(login, store):
    alert = make_alert(store)
    manager = login("max")
    page = manager.get(f"/alerts/{alert.id}").get_data(as_text=True)
    assert 'data-testid="triage-form"' not in page
    assert post_update(manager, alert, status="acknowledged").status_code == 403
    assert store.get_alert(alert.id).status == AlertStatus.NEW


def test_unknown_alert_is_404(analyst):
    assert analyst.get("/alerts/0123456789abcdef").status_code == 404


def test_list_filter_reaches_store_unchanged(store):
    # the store contract, used as the console uses it
    make_alert(store, fields={"host.name": "a"})
    assert store.count_alerts(AlertFilter(hosts=["a"]))["new"] == 1


def test_event_search_page(analyst, store):
    from .conftest import XSS

    for n in range(3):
        store_event(store, utcnow() - timedelta(minutes=n), 800000 + n,
                    **{"host.name": f"search-host-{n}", "source.ip": "192.0.2.44",
                       "message": f"searchable message {n}", **({"url.full": XSS["host.name"]}
                                                               if n == 0 else {})})
    page = analyst.get("/events?field_name=source.ip&field_value=192.0.2.44&limit=2")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and html.count("<details>") == 2
    assert 'data-testid="events-next"' in html
    assert "<img src=x" not in html
    text = analyst.get("/events?q=searchable").get_data(as_text=True)
    assert "searchable message 2" in text
    bad = analyst.get("/events?field_name=x')--&field_value=1")
    assert bad.status_code == 400
    assert analyst.get("/events").status_code == 200


def test_related_events_window_can_be_widened(analyst, store):
    when = utcnow() - timedelta(hours=3)
    alert = make_alert(store, when=when, fields={"host.name": "db07"})
    store_event(store, when + timedelta(minutes=40), 800100,
                **{"host.name": "db07", "message": "forty minutes later"})
    assert "forty minutes later" not in analyst.get(f"/alerts/{alert.id}").get_data(
        as_text=True)
    wide = analyst.get(f"/alerts/{alert.id}?window=60").get_data(as_text=True)
    assert "forty minutes later" in wide and "(±60 min)" in wide
    assert "(±15 min)" in analyst.get(f"/alerts/{alert.id}?window=999").get_data(as_text=True)
