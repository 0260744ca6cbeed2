"""The Store contract, run against every engine (see conftest.py)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from govsoc.errors import ConflictError, NotFoundError, QueryError
from govsoc.events import DeadLetter, event_id, new_event, validate_event
from store.base import (
    AlertChange,
    AlertFilter,
    AlertStatus,
    ApiToken,
    AuditEntry,
    AuditFilter,
    CaseChange,
    CaseFilter,
    CaseStatus,
    CaseTask,
    EventQuery,
    NewAlert,
    NewCase,
    Observable,
    Role,
    Severity,
    Suppression,
    User,
)

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def make_events(n: int, dataset: str = "test.web", start: datetime = T0, **extra):
    events = []
    for i in range(n):
        event = new_event(dataset, start + timedelta(seconds=i),
                          host__name=f"web{i % 3}", source__ip=f"10.0.0.{i % 5}",
                          destination__port=443 if i % 2 else 80,
                          message=f"request number {i} from portal",
                          user__name="alice" if i % 4 == 0 else "bob", **extra)
        event["event"]["id"] = event_id(f"test:{dataset}", i)
        events.append(validate_event(event))
    return events


def new_alert(key: str = "g1", at: datetime = T0, rule: str = "r-1", **kw) -> NewAlert:
    return NewAlert(rule_id=rule, rule_name=kw.pop("name", "Webshell execution"),
                    severity=kw.pop("severity", Severity.HIGH), group_key=key, timestamp=at,
                    event_ids=kw.pop("event_ids", ["e1"]), tags=["attack.t1505.003"],
                    fields=kw.pop("fields", {"host.name": "web1", "source.ip": "10.0.0.9",
                                             "user.name": "www-data"}), **kw)


# ---------------------------------------------------------------- events

def test_insert_is_idempotent(store):
    events = make_events(20)
    first = store.insert_events(events)
    assert first.stored == 20 and first.duplicates == 0
    assert first.new_ids == [e["event"]["id"] for e in events]
    again = store.insert_events(events)
    assert again.stored == 0 and again.duplicates == 20 and again.new_ids == []
    mixed = store.insert_events(make_events(25))
    assert mixed.stored == 5 and mixed.duplicates == 20
    store.refresh()
    assert store.count_events(EventQuery()) == 25
    # the new events of a batch that also held known ones are searchable by text
    hits = store.search_events(EventQuery(text="number 22")).items
    assert [e["message"] for e in hits] == ["request number 22 from portal"]


def test_duplicate_inside_one_batch_is_stored_once(store):
    events = make_events(3)
    result = store.insert_events([*events, events[0]])
    assert result.stored == 3 and result.duplicates == 1


def test_search_by_time_dataset_filters_and_text(store):
    store.insert_events(make_events(30) + make_events(10, dataset="test.dns"))
    store.refresh()
    page = store.search_events(EventQuery(start=T0 + timedelta(seconds=10),
                                          end=T0 + timedelta(seconds=20),
                                          datasets=["test.web"], limit=100))
    assert len(page.items) == 10
    stamps = [e["@timestamp"] for e in page.items]
    assert stamps == sorted(stamps, reverse=True)
    by_host = store.search_events(EventQuery(filters={"host.name": ["web1"]}, limit=100))
    assert {e["host"]["name"] for e in by_host.items} == {"web1"}
    assert store.count_events(EventQuery(filters={"host.name": ["web1"]})) == len(by_host.items)
    port = store.search_events(EventQuery(datasets=["test.web"],
                                          filters={"destination.port": ["443"]}, limit=100))
    assert len(port.items) == 15
    text = store.search_events(EventQuery(text="number 7", limit=100))
    assert {e["message"] for e in text.items} == {"request number 7 from portal"}
    both = store.search_events(EventQuery(filters={"host.name": ["web0", "web2"],
                                                   "user.name": ["alice"]}, limit=100))
    assert both.items and all(e["user"]["name"] == "alice" for e in both.items)


def test_keyset_pagination_visits_every_event_once(store):
    store.insert_events(make_events(57))
    store.refresh()
    seen, cursor = [], None
    while True:
        page = store.search_events(EventQuery(limit=10, after=cursor))
        seen.extend(e["event"]["id"] for e in page.items)
        cursor = page.next_cursor
        if not cursor:
            break
    assert len(seen) == 57 == len(set(seen))
    asc = store.search_events(EventQuery(limit=5, descending=False))
    assert asc.items[0]["@timestamp"] < asc.items[-1]["@timestamp"]


def test_get_events_in_requested_order(store):
    events = make_events(5)
    store.insert_events(events)
    store.refresh()
    ids = [events[3]["event"]["id"], "missing", events[1]["event"]["id"]]
    assert [e["event"]["id"] for e in store.get_events(ids)] == [ids[0], ids[2]]


def test_aggregations(store):
    store.insert_events(make_events(30))
    store.refresh()
    top = store.top_terms("host.name", size=2)
    assert len(top) == 2 and all(t.count == 10 for t in top)
    users = {t.value: t.count for t in store.top_terms("user.name",
                                                       EventQuery(datasets=["test.web"]))}
    assert users == {"alice": 8, "bob": 22}
    buckets = store.date_histogram(EventQuery(), timedelta(seconds=10))
    assert [b.count for b in buckets] == [10, 10, 10]
    assert buckets[0].start == T0


def test_tail_from_checkpoint_sees_each_event_once(store):
    store.insert_events(make_events(12))
    store.refresh()
    got, cursor = [], None
    for _ in range(10):
        events, cursor = store.tail_events(cursor, 5)
        got.extend(events)
        if not events:
            break
    assert len(got) == 12
    store.insert_events(make_events(3, dataset="test.later"))
    store.refresh()
    later, cursor2 = store.tail_events(cursor, 100)
    assert [e["event"]["dataset"] for e in later] == ["test.later"] * 3
    assert store.tail_events(cursor2, 100)[0] == []
    start = store.tail_start()
    assert store.tail_events(start, 10)[0] == []


def test_filters_cannot_inject(store):
    store.insert_events(make_events(5))
    store.refresh()
    evil = "x' OR '1'='1"
    assert store.search_events(EventQuery(filters={"host.name": [evil]})).items == []
    assert store.search_events(EventQuery(text='portal" OR 1=1 --')).items == []
    with pytest.raises(QueryError):
        store.search_events(EventQuery(filters={"host.name') OR 1=1 --": ["a"]}))
    with pytest.raises(QueryError):
        store.search_events(EventQuery(after="not-a-cursor"))
    assert store.count_events(EventQuery()) == 5


# ---------------------------------------------------------------- alerts

def test_alert_folds_repeats_inside_window(store):
    (a, created), = store.record_alerts([new_alert(event_ids=["e1"])], timedelta(hours=1))
    assert created and a.count == 1 and a.status == AlertStatus.NEW
    (b, created), = store.record_alerts(
        [new_alert(at=T0 + timedelta(minutes=30), event_ids=["e2"])], timedelta(hours=1))
    assert not created and b.id == a.id and b.count == 2
    assert b.last_seen == T0 + timedelta(minutes=30) and b.first_seen == T0
    assert b.event_ids == ["e1", "e2"]
    (c, created), = store.record_alerts(
        [new_alert(at=T0 + timedelta(hours=3), event_ids=["e3"])], timedelta(hours=1))
    assert created and c.id != a.id
    (_d, created), = store.record_alerts([new_alert(key="other")], timedelta(hours=1))
    assert created
    store.refresh()
    assert store.count_alerts()["new"] == 3


def test_closed_alert_is_not_folded_into(store):
    (a, _), = store.record_alerts([new_alert()], timedelta(hours=1))
    store.update_alert(a.id, a.version, AlertChange(status=AlertStatus.FALSE_POSITIVE,
                                                    resolution="test traffic"))
    (b, created), = store.record_alerts([new_alert(at=T0 + timedelta(minutes=1))],
                                        timedelta(hours=1))
    assert created and b.id != a.id


def test_alert_update_optimistic_concurrency(store):
    (a, _), = store.record_alerts([new_alert()], timedelta(hours=1))
    b = store.update_alert(a.id, a.version, AlertChange(status=AlertStatus.ACKNOWLEDGED,
                                                        assignee="alice"))
    assert b.status == AlertStatus.ACKNOWLEDGED and b.assignee == "alice"
    assert b.version != a.version and b.acknowledged_at is not None
    with pytest.raises(ConflictError) as info:
        store.update_alert(a.id, a.version, AlertChange(status=AlertStatus.RESOLVED))
    assert a.id in str(info.value)
    assert store.get_alert(a.id).status == AlertStatus.ACKNOWLEDGED
    c = store.update_alert(a.id, b.version, AlertChange(severity=Severity.CRITICAL,
                                                        unassign=True))
    assert c.severity == Severity.CRITICAL and c.assignee is None
    d = store.update_alert(a.id, c.version, AlertChange(status=AlertStatus.RESOLVED))
    assert d.resolved_at is not None
    with pytest.raises(NotFoundError):
        store.update_alert("nope", "1", AlertChange(status=AlertStatus.RESOLVED))


def test_concurrent_updates_only_one_wins(store):
    (a, _), = store.record_alerts([new_alert()], timedelta(hours=1))
    results: list[str] = []

    def worker(name: str) -> None:
        try:
            store.update_alert(a.id, a.version, AlertChange(assignee=name))
            results.append("ok")
        except ConflictError:
            results.append("conflict")

    threads = [threading.Thread(target=worker, args=(f"u{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["conflict"] * 3 + ["ok"]


def test_list_alerts_filters_sort_and_keyset(store):
    drafts = []
    for i in range(35):
        sev = [Severity.LOW, Severity.MEDIUM, Severity.HIGH, Severity.CRITICAL][i % 4]
        drafts.append(new_alert(key=f"k{i}", at=T0 + timedelta(minutes=i), severity=sev,
                                rule=f"r-{i % 3}",
                                fields={"host.name": f"h{i % 2}", "source.ip": "10.1.1.1",
                                        "user.name": "carol"}))
    store.record_alerts(drafts, timedelta(hours=1))
    store.refresh()
    seen, cursor = [], None
    while True:
        page = store.list_alerts(limit=10, after=cursor)
        seen.extend(page.items)
        cursor = page.next_cursor
        if not cursor:
            break
    assert len(seen) == 35 == len({a.id for a in seen})
    assert [a.last_seen for a in seen] == sorted((a.last_seen for a in seen), reverse=True)
    high = store.list_alerts(AlertFilter(severities=[Severity.HIGH, Severity.CRITICAL],
                                         hosts=["h1"]), limit=100).items
    assert high and all(a.severity in (Severity.HIGH, Severity.CRITICAL) and a.host == "h1"
                        for a in high)
    by_sev = store.list_alerts(sort="severity", limit=5).items
    assert all(a.severity == Severity.CRITICAL for a in by_sev)
    assert store.count_alerts(by="rule_id") == {"r-0": 12, "r-1": 12, "r-2": 11}
    recent = store.list_alerts(AlertFilter(start=T0 + timedelta(minutes=30)), limit=100).items
    assert len(recent) == 5
    text = store.list_alerts(AlertFilter(text="WEBSHELL"), limit=100).items
    assert len(text) == 35
    hist = store.alert_histogram(None, timedelta(minutes=10))
    assert sum(b.count for b in hist) == 35


def test_unassigned_filter(store):
    store.record_alerts([new_alert(key="a"), new_alert(key="b")], timedelta(hours=1))
    store.refresh()
    first = store.list_alerts(limit=10).items[0]
    store.update_alert(first.id, first.version, AlertChange(assignee="dave"))
    store.refresh()
    assert len(store.list_alerts(AlertFilter(unassigned=True)).items) == 1
    assert len(store.list_alerts(AlertFilter(assignees=["dave"])).items) == 1


# ---------------------------------------------------------------- cases

def test_cases_link_alerts_and_version(store):
    stored = store.record_alerts([new_alert(key="a"), new_alert(key="b"),
                                  new_alert(key="c")], timedelta(hours=1))
    ids = [a.id for a, _ in stored]
    case = store.create_case(NewCase(
        title="Webshell on portal", created_by="alice", severity=Severity.HIGH,
        alert_ids=ids[:2], tasks=[CaseTask("Isolate web1")],
        observables=[Observable("ip", "10.0.0.9", ids[0])]))
    assert case.status == CaseStatus.OPEN and sorted(case.alert_ids) == sorted(ids[:2])
    assert store.get_alert(ids[0]).case_id == case.id
    case2 = store.add_alerts_to_case(case.id, [ids[2]])
    assert sorted(case2.alert_ids) == sorted(ids)
    updated = store.update_case(case.id, case2.version, CaseChange(
        status=CaseStatus.RESOLVED, tasks=[CaseTask("Isolate web1", done=True, owner="bob")],
        extra={"playbook_runs": ["run-1"]}))
    assert updated.status == CaseStatus.RESOLVED and updated.closed_at is not None
    assert updated.tasks[0].done and updated.extra == {"playbook_runs": ["run-1"]}
    assert updated.observables[0].value == "10.0.0.9"
    with pytest.raises(ConflictError):
        store.update_case(case.id, case.version, CaseChange(title="stale"))
    with pytest.raises(NotFoundError):
        store.get_case("nope")
    store.refresh()
    assert [c.id for c in store.list_cases().items] == [case.id]
    assert store.list_cases(CaseFilter(text="webshell")).items[0].id == case.id


def test_case_pagination(store):
    for i in range(7):
        store.create_case(NewCase(title=f"case {i}", created_by="alice"))
    store.refresh()
    page = store.list_cases(limit=3)
    rest = store.list_cases(limit=10, after=page.next_cursor)
    assert len(page.items) == 3 and len(rest.items) == 4
    assert not {c.id for c in page.items} & {c.id for c in rest.items}


def test_comments_in_order(store):
    store.add_comment("alert", "a1", "alice", "first")
    store.add_comment("alert", "a1", "bob", "<script>x</script>")
    store.add_comment("case", "a1", "bob", "elsewhere")
    store.refresh()
    comments = store.list_comments("alert", "a1")
    assert [c.body for c in comments] == ["first", "<script>x</script>"]


# ---------------------------------------------------------------- people & audit

def test_users_and_tokens(store):
    user = store.create_user(User("alice", "scrypt:hash", Role.ANALYST, T0,
                                  display_name="Alice Nguyễn"))
    with pytest.raises(ConflictError):
        store.create_user(User("alice", "x", Role.ADMIN, T0))
    user.role = Role.MANAGER
    user2 = store.update_user(user)
    assert user2.role == Role.MANAGER and user2.display_name == "Alice Nguyễn"
    with pytest.raises(ConflictError):
        store.update_user(user)  # stale version
    assert [u.username for u in store.list_users()] == ["alice"]
    token = store.add_api_token(ApiToken("", "alice", "ci", "abc123", T0))
    assert store.find_api_token("abc123").username == "alice"
    assert store.find_api_token("nope") is None
    store.touch_api_token(token.id, T0 + timedelta(hours=1))
    store.revoke_api_token(token.id)
    found = store.find_api_token("abc123")
    assert found.revoked and found.last_used == T0 + timedelta(hours=1)
    with pytest.raises(NotFoundError):
        store.get_user("nobody")


def test_audit_is_append_only_and_filtered(store):
    for i in range(5):
        store.append_audit(AuditEntry(actor="alice" if i % 2 else "bob", action="alert.update",
                                      target_type="alert", target_id=f"a{i}",
                                      at=T0 + timedelta(seconds=i),
                                      before={"status": "new"}, after={"status": "resolved"},
                                      address="192.0.2.1"))
    store.refresh()
    page = store.list_audit(limit=3)
    assert [e.target_id for e in page.items] == ["a4", "a3", "a2"]
    rest = store.list_audit(limit=3, after=page.next_cursor)
    assert [e.target_id for e in rest.items] == ["a1", "a0"]
    mine = store.list_audit(AuditFilter(actor="alice")).items
    assert {e.target_id for e in mine} == {"a1", "a3"}
    assert mine[0].after == {"status": "resolved"} and mine[0].address == "192.0.2.1"
    assert not hasattr(store, "delete_audit")


# ---------------------------------------------------------------- the rest

def test_checkpoints(store):
    assert store.get_checkpoint("tail:/var/log/auth.log") is None
    store.set_checkpoint("tail:/var/log/auth.log", {"inode": 5, "offset": 100})
    store.set_checkpoint("tail:/var/log/auth.log", {"inode": 5, "offset": 200})
    assert store.get_checkpoint("tail:/var/log/auth.log") == {"inode": 5, "offset": 200}
    assert store.list_checkpoints() == {"tail:/var/log/auth.log": {"inode": 5, "offset": 200}}


def test_suppressions(store):
    s = store.add_suppression(Suppression("r-1", "host.name", "scanner01", "alice", T0,
                                          reason="vulnerability scanner"))
    store.add_suppression(Suppression("*", "source.ip", "10.9.9.9", "alice", T0))
    store.add_suppression(Suppression("r-2", "user.name", "old", "alice", T0,
                                      expires_at=datetime.now(UTC) - timedelta(days=1)))
    store.refresh()
    assert {x.field for x in store.list_suppressions("r-1")} == {"host.name", "source.ip"}
    assert store.list_suppressions("r-2")[0].rule_id == "*"
    assert len(store.list_suppressions()) == 2
    store.delete_suppression(s.id)
    store.refresh()
    assert len(store.list_suppressions()) == 1
    with pytest.raises(NotFoundError):
        store.delete_suppression(s.id)


def test_dead_letters_keep_raw_bytes(store):
    raw = b"\xff\xfe binary \x00 garbage"
    assert store.add_dead_letters([DeadLetter("/var/log/x.log", "17", "invalid UTF-8", raw),
                                   DeadLetter("udp:10.0.0.1", "", "garbage", b"\x01")]) == 2
    store.refresh()
    assert store.count_dead_letters() == 2
    page = store.list_dead_letters()
    assert page.items[-1].letter.original == raw and page.items[-1].letter.position == "17"
    assert len(store.list_dead_letters(source="udp:10.0.0.1").items) == 1


def test_settings(store):
    assert store.get_setting("rule:abc") is None
    store.set_setting("rule:abc", {"enabled": False})
    assert store.get_setting("rule:abc") == {"enabled": False}
    store.set_setting("rule:abc", None)
    assert store.get_setting("rule:abc") is None


def test_update_setting_reads_changes_and_removes(store):
    assert store.update_setting("rules:disabled", lambda v: None) is None
    assert store.update_setting("rules:disabled", lambda v: (v or []) + ["r-1"]) == ["r-1"]
    assert store.update_setting("rules:disabled", lambda v: [*v, "r-2"]) == ["r-1", "r-2"]
    assert store.get_setting("rules:disabled") == ["r-1", "r-2"]
    assert store.update_setting("rules:disabled", lambda v: None) is None
    assert store.get_setting("rules:disabled") is None


def test_concurrent_setting_updates_lose_nothing(store):
    """Writers adding to one list at the same moment: every addition is kept."""
    errors: list[BaseException] = []

    def writer(name: str) -> None:
        try:
            for i in range(8):
                item = f"{name}-{i}"
                store.update_setting("runs:index", lambda v, item=item: [*(v or []), item])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(f"w{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    kept = store.get_setting("runs:index")
    assert sorted(kept) == sorted(f"w{n}-{i}" for n in range(4) for i in range(8))


def test_schema_version(store):
    assert store.schema_version() >= 1
