"""Cases: built from alerts, more alerts added later, summary edits with conflict
detection, tasks, observables, comments, the timeline and the playbook section."""

from __future__ import annotations

import re

from store.base import AuditFilter, CaseChange, CaseStatus, Severity

from .conftest import make_alert


def create_case(session, alerts, title="Intrusion on web01"):
    response = session.post("/cases", data={"title": title, "severity": "high",
                                            "tlp": "red",
                                            "alert": [a.id for a in alerts]})
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    return response.headers["Location"].rsplit("/", 1)[-1]


def test_case_from_two_alerts_links_them_and_extracts_observables(analyst, store):
    a = make_alert(store, fields={"host.name": "web01", "source.ip": "203.0.113.7",
                                  "user.name": "alice",
                                  "file.hash.sha256": "ab" * 32})
    b = make_alert(store, fields={"host.name": "db01", "dns.question.name": "evil.example",
                                  "url.full": "http://evil.example/x", "source.ip": "junk"})
    form = analyst.get(f"/cases/new?alert={a.id}&alert={b.id}").get_data(as_text=True)
    assert a.id in form and b.id in form
    case_id = create_case(analyst, [a, b])
    case = store.get_case(case_id)
    assert sorted(case.alert_ids) == sorted([a.id, b.id])
    assert case.severity == Severity.HIGH and case.tlp == "red"
    assert {store.get_alert(a.id).case_id, store.get_alert(b.id).case_id} == {case_id}
    found = {(o.type, o.value) for o in case.observables}
    assert {("ip", "203.0.113.7"), ("host", "web01"), ("host", "db01"), ("user", "alice"),
            ("hash", "ab" * 32), ("domain", "evil.example"),
            ("url", "http://evil.example/x")} <= found
    # a value that is not an IP address is not an IP observable
    assert ("ip", "junk") not in found
    page = analyst.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "evil.example" in page and 'data-testid="timeline"' in page
    assert store.list_audit(AuditFilter(action="case.create")).items[0].target_id == case_id


def test_add_alerts_later_merges_observables(analyst, store):
    a = make_alert(store)
    case_id = create_case(analyst, [a])
    c = make_alert(store, fields={"host.name": "mail01", "source.ip": "198.51.100.2"})
    response = analyst.post(f"/cases/{case_id}/alerts", data={"alert": c.id})
    assert response.status_code == 303
    case = store.get_case(case_id)
    assert c.id in case.alert_ids
    assert ("host", "mail01") in {(o.type, o.value) for o in case.observables}
    assert store.get_alert(c.id).case_id == case_id


def test_tasks_and_observables_and_comments(analyst, store):
    case_id = create_case(analyst, [make_alert(store)])
    case = store.get_case(case_id)
    analyst.post(f"/cases/{case_id}/tasks", data={"version": case.version,
                                                  "title": "Isolate web01"})
    case = store.get_case(case_id)
    assert [t.title for t in case.tasks] == ["Isolate web01"]
    analyst.post(f"/cases/{case_id}/tasks", data={"version": case.version, "toggle": "0"})
    case = store.get_case(case_id)
    assert case.tasks[0].done
    analyst.post(f"/cases/{case_id}/observables", data={"version": case.version,
                                                        "type": "domain", "value": "c2.example"})
    assert ("domain", "c2.example") in {(o.type, o.value)
                                        for o in store.get_case(case_id).observables}
    analyst.post(f"/cases/{case_id}/comment", data={"body": "Called the web team"})
    page = analyst.get(f"/cases/{case_id}").get_data(as_text=True)
    assert "Called the web team" in page and "Isolate web01" in page


def test_case_edit_conflict_is_shown_not_overwritten(login, store):
    first, second = login("ana"), login("root")
    case_id = create_case(first, [make_alert(store)])
    version = store.get_case(case_id).version
    first.post(f"/cases/{case_id}/edit", data={"version": version, "title": "Renamed",
                                              "status": "in_progress"})
    response = second.post(f"/cases/{case_id}/edit", data={
        "version": version, "title": "Other title", "status": "closed"})
    assert response.status_code == 409
    assert "Someone else changed this case" in response.get_data(as_text=True)
    case = store.get_case(case_id)
    assert case.title == "Renamed" and case.status == CaseStatus.IN_PROGRESS


def test_playbook_runs_section_shows_attached_runs(analyst, store):
    case_id = create_case(analyst, [make_alert(store)])
    case = store.get_case(case_id)
    store.update_case(case_id, case.version, CaseChange(extra={"playbook_runs": [
        {"playbook": "ransomware-<b>containment</b>", "status": "running",
         "started_at": "2026-01-01T00:00:00Z"}]}))
    page = analyst.get(f"/cases/{case_id}").get_data(as_text=True)
    section = re.search(r'data-testid="playbook-runs">(.*?)</section>', page, re.S).group(1)
    assert "ransomware-&lt;b&gt;containment&lt;/b&gt;" in section
    assert "2026-01-01 07:00:00" in section  # shown in the viewer's zone (UTC+7)


def test_case_list_filters_and_needs_title(analyst, store):
    create_case(analyst, [make_alert(store)], title="Phishing wave")
    assert analyst.post("/cases", data={"title": ""}).status_code == 400
    page = analyst.get("/cases?status=open").get_data(as_text=True)
    assert "Phishing wave" in page
    assert "Phishing wave" not in analyst.get("/cases?status=closed").get_data(as_text=True)
    assert analyst.get("/cases?status=bogus").status_code == 400


def test_alert_page_links_its_case(analyst, store):
    alert = make_alert(store)
    case_id = create_case(analyst, [alert], title="Linked case")
    page = analyst.get(f"/alerts/{alert.id}").get_data(as_text=True)
    assert f'href="/cases/{case_id}"' in page and "Linked case" in page


def test_timeline_holds_events_actions_and_comments_in_order(analyst, store):
    from datetime import timedelta

    from govsoc.events import utcnow

    alert = make_alert(store, when=utcnow() - timedelta(hours=2),
                       fields={"host.name": "web01", "message": "first suspicious request"})
    case_id = create_case(analyst, [alert])
    analyst.post(f"/cases/{case_id}/comment", data={"body": "escalated to the web team"})
    page = analyst.get(f"/cases/{case_id}").get_data(as_text=True)
    timeline = re.search(r'data-testid="timeline">(.*?)</ol>', page, re.S).group(1)
    positions = [timeline.index(text) for text in (
        "first suspicious request", "case.create", "escalated to the web team")]
    assert positions == sorted(positions)
