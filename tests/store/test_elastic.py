"""What only the search-cluster store has: index layout, per-item bulk failures,
retries on 429/5xx, the on-disk spool, the tail under concurrent writers,
retention. Real nodes (tests/cluster.py); faults come from a real proxy."""

from __future__ import annotations

import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from govsoc.events import event_id, new_event
from store.base import AlertChange, EventQuery
from store.elastic import connect_for_tests
from store.elastic.mappings import event_properties
from tests.store.elastic_support import ENGINES, T0, FaultProxy, cluster_url, new_prefix, synth

pytestmark = pytest.mark.cluster


@pytest.fixture(params=ENGINES)
def engine(request):
    return request.param


@pytest.fixture
def url(engine):
    return cluster_url(engine)


@pytest.fixture
def store(engine, url, tmp_path):
    s = connect_for_tests(engine, url, prefix=new_prefix(), spool_dir=str(tmp_path / "spool"))
    yield s
    s.drop_all()
    s.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_index_layout_per_dataset_and_month(store):
    events = list(synth(0, 3, "nginx.access")) + list(synth(0, 2, "Network/DNS"))
    late = new_event("nginx.access", datetime(2026, 10, 31, 23, 59, tzinfo=UTC))
    late["event"]["id"] = event_id("layout", 1)
    store.insert_events([*events, late])
    store.refresh()
    names = sorted(r["index"] for r in store.client.request(
        "GET", f"/_cat/indices/{store.prefix}-events-*", params={"format": "json"}))
    assert names == [f"{store.prefix}-events-network_dns-2026.11",
                     f"{store.prefix}-events-nginx.access-2026.10",
                     f"{store.prefix}-events-nginx.access-2026.11"]
    mapping = store.client.request("GET", f"/{names[-1]}/_mapping")[names[-1]]["mappings"]
    props = mapping["properties"]
    assert props["@timestamp"]["type"] == "date_nanos"
    assert props["source"]["properties"]["ip"]["type"] == "ip"
    assert props["event"]["properties"]["original"]["fields"]["text"]["type"] == "text"
    assert props["host"]["properties"]["name"]["fields"]["ci"]["normalizer"]


def test_case_insensitive_subfield_matches_any_case(store):
    event = new_event("winlog.test", T0, process__command_line="C:\\Windows\\System32\\"
                      "WindowsPowerShell\\v1.0\\PowerShell.EXE -NoP -Enc AAAA")
    event["event"]["id"] = event_id("ci", 1)
    store.insert_events([event])
    store.refresh()
    hits = list(store.search_dsl({"query": {"wildcard": {
        "process.command_line.ci": {"value": "*powershell.exe -nop*"}}}}))
    assert [h["event"]["id"] for h in hits] == [event["event"]["id"]]
    # the exact keyword stays exact (filters, aggregations)
    assert not list(store.search_dsl({"query": {"term": {
        "process.command_line": "c:\\windows\\system32\\windowspowershell\\v1.0\\"
                                "powershell.exe -nop -enc aaaa"}}}))


def test_many_queries_at_once_give_what_each_gives_alone(store):
    from govsoc.errors import QueryError

    store.insert_events(list(synth(0, 25, "nginx.access")))
    store.refresh()
    queries = [{"query": {"term": {"host.name": f"web{h}"}}} for h in range(7)]
    queries.append({"query": {"match_all": {}}})  # more hits than a page: it is paged on
    alone = [[e["event"]["id"] for e in store.search_dsl(q, page_size=4)] for q in queries]
    together: list[list[str]] = [[] for _ in queries]
    for number, event in store.search_dsl_each(queries, page_size=4, at_once=3):
        together[number].append(event["event"]["id"])
    assert together == alone
    assert len(alone[-1]) == 25 and sum(map(len, alone[:-1])) == 25
    with pytest.raises(QueryError, match="refused"):
        list(store.search_dsl_each([{"query": {"match_all": {}}},
                                    {"query": {"range": {"@timestamp": {"gte": "not a date"}}}}]))


def test_template_is_generated_from_the_registry():
    from govsoc.events import FIELDS

    for engine in ("elasticsearch", "opensearch"):
        props = event_properties(engine)
        for name, spec in FIELDS.items():
            node = props
            parts = name.split(".")
            for part in parts[:-1]:
                node = node[part]["properties"]
            leaf = node[parts[-1]]
            if "properties" in leaf:
                continue  # registered both as a leaf and as a parent (kept an object)
            if spec.type == "flattened":
                assert leaf["type"] == ("flattened" if engine == "elasticsearch"
                                        else "flat_object")
            elif name != "@timestamp":
                assert leaf["type"] == spec.type, name


def test_mapping_conflict_sends_only_that_event_to_dead_letters(store):
    good = list(synth(0, 5))
    bad = next(synth(5, 6))
    bad["host"] = "web-flat"  # host is an object in the template: the cluster refuses it
    result = store.insert_events([*good, bad])
    assert (result.stored, result.rejected, result.duplicates) == (5, 1, 0)
    assert bad["event"]["id"] not in result.new_ids
    store.refresh()
    assert store.count_events(EventQuery()) == 5
    letters = store.list_dead_letters().items
    assert len(letters) == 1
    assert letters[0].letter.position == bad["event"]["id"]
    assert "host" in letters[0].letter.reason
    assert b'"host":"web-flat"' in letters[0].letter.original


def test_bulk_retries_429_and_503(engine, url, tmp_path):
    answers = iter([429, 503])
    lock = threading.Lock()

    def plan(method: str, path: str) -> int | None:
        if path.startswith("/_bulk"):
            with lock:
                return next(answers, None)
        return None

    proxy = FaultProxy(url, plan)
    s = connect_for_tests(engine, proxy.url, prefix=new_prefix(),
                          spool_dir=str(tmp_path / "spool"), retry_delay=0.05)
    try:
        result = s.insert_events(list(synth(0, 50)))
        assert result.stored == 50
        assert [st for m, p, st in proxy.seen if p.startswith("/_bulk")] == [429, 503, 200]
        assert not s.spool.pending()
        s.refresh()
        assert s.count_events(EventQuery()) == 50
    finally:
        s.drop_all()
        s.close()
        proxy.close()


def test_spool_while_unreachable_then_replay_in_order(engine, url, tmp_path):
    prefix = new_prefix()
    spool = str(tmp_path / "spool")
    up = connect_for_tests(engine, url, prefix=prefix, spool_dir=spool)
    try:
        up.insert_events(list(synth(0, 10)))
        down = connect_for_tests(engine, f"http://127.0.0.1:{_free_port()}", prefix=prefix,
                                 spool_dir=spool, attempts=2, retry_delay=0.01)
        first = down.insert_events(list(synth(10, 30)))
        second = down.insert_events(list(synth(30, 40)))
        assert first.stored == 20 and second.stored == 10
        assert len(down.spool.segments()) == 2
        down.close()
        # the cluster is back: the spool goes first, then the new batch
        after = up.insert_events(list(synth(40, 45)) + list(synth(25, 26)))
        assert after.stored == 5 and after.duplicates == 1
        assert not up.spool.pending()
        up.refresh()
        assert up.count_events(EventQuery()) == 45
        tail, _cursor = up.tail_events(None, 100)
        numbers = [e["event"]["sequence"] for e in tail]
        assert numbers == list(range(45))
    finally:
        up.drop_all()
        up.close()


def test_spool_is_bounded(engine, tmp_path):
    s = connect_for_tests(engine, f"http://127.0.0.1:{_free_port()}", prefix=new_prefix(),
                          spool_dir=str(tmp_path / "spool"), attempts=1,
                          spool_max_bytes=20_000)
    from govsoc.errors import StoreUnavailableError

    s.insert_events(list(synth(0, 20)))
    with pytest.raises(StoreUnavailableError, match=r"spool .* is full"):
        s.insert_events(list(synth(20, 200)))
    assert len(s.spool.segments()) == 1
    s.close()


def test_tail_sees_every_event_once_with_concurrent_writers(store):
    total_per_writer, writers = 1500, 3
    seen: list[str] = []
    done = threading.Event()

    def write(w: int) -> None:
        for start in range(0, total_per_writer, 100):
            store.insert_events(list(synth(w * 100_000 + start,
                                           w * 100_000 + start + 100, f"tail.w{w}")))

    def follow() -> None:
        cursor = None
        while True:
            finished = done.is_set()
            events, cursor = store.tail_events(cursor, 400)
            seen.extend(e["event"]["id"] for e in events)
            if finished and not events:
                return

    follower = threading.Thread(target=follow)
    follower.start()
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    follower.join(timeout=120)
    assert len(seen) == total_per_writer * writers == len(set(seen))


def test_retention_sweep_deletes_whole_expired_periods(store):
    old = new_event("retention.test", datetime(2025, 1, 15, tzinfo=UTC))
    old["event"]["id"] = event_id("retention", 1)
    recent = list(synth(0, 3, "retention.test"))
    store.insert_events([old, *recent])
    deleted = store.sweep_retention(now=datetime(2026, 11, 23, tzinfo=UTC))
    assert deleted == [f"{store.prefix}-events-retention.test-2025.01"]
    store.refresh()
    assert store.count_events(EventQuery()) == 3
    assert store.sweep_retention(now=datetime(2026, 11, 23, tzinfo=UTC)) == []
    # a period ends with its last day: not yet expired the day before
    assert store.sweep_retention(now=datetime(2026, 11, 30, tzinfo=UTC) +
                                 timedelta(days=store.retention_days - 1)) == []


def test_open_store_from_config_and_environment(engine, url, tmp_path):
    from govsoc.config import load_config
    from store import open_store

    prefix = new_prefix()
    config_file = tmp_path / "govsoc.yml"
    config_file.write_text(f"store:\n  index_prefix: {prefix}\n  replicas: 0\n"
                           "  index_period: day\n", encoding="utf-8")
    config = load_config(config_file, data_dir=str(tmp_path / "data"), env={
        "GOVSOC_STORE_ENGINE": engine, "GOVSOC_STORE_URL": url})
    s = open_store(config)
    try:
        assert s.engine == engine and s.prefix == prefix
        event = next(synth(0, 1, "config.test"))
        assert s.insert_events([event]).stored == 1
        assert s.event_index(event) == f"{prefix}-events-config.test-2026.11.20"
        assert s.spool.directory == tmp_path / "data" / "spool"
    finally:
        s.drop_all()
        s.close()


def test_large_insert_goes_in_concurrent_chunks_in_order(engine, url, tmp_path):
    # 64 KiB chunks: 3,000 events take many bulk requests, two at a time
    s = connect_for_tests(engine, url, prefix=new_prefix(), spool_dir=str(tmp_path / "spool"),
                          batch_bytes=64 << 10)
    try:
        events = list(synth(0, 3000, "chunks.test"))
        result = s.insert_events(events)
        assert (result.stored, result.duplicates, result.rejected) == (3000, 0, 0)
        assert result.new_ids == [e["event"]["id"] for e in events]
        again = s.insert_events(events[1000:2000] + list(synth(3000, 3010, "chunks.test")))
        assert (again.stored, again.duplicates) == (10, 1000)
        s.refresh()
        assert s.count_events(EventQuery()) == 3010
        tail, _cursor = s.tail_events(None, 5000)
        assert [e["event"]["sequence"] for e in tail] == list(range(3010))
    finally:
        s.drop_all()
        s.close()


def test_cluster_lost_mid_insert_spools_only_what_was_not_stored(engine, url, tmp_path):
    bulks = iter(range(1_000_000))
    lock = threading.Lock()

    def plan(method: str, path: str) -> int | None:
        if path.startswith("/_bulk"):
            with lock:
                # the first two chunks go through, then the node "goes away"
                return 503 if next(bulks) >= 2 else None
        return None

    proxy = FaultProxy(url, plan)
    prefix = new_prefix()
    spool = str(tmp_path / "spool")
    s = connect_for_tests(engine, proxy.url, prefix=prefix, spool_dir=spool,
                          batch_bytes=32 << 10, attempts=2, retry_delay=0.01,
                          spool_replay_interval=0)
    try:
        events = list(synth(0, 2000, "lost.test"))
        result = s.insert_events(events)
        assert result.stored == 2000  # stored or spooled
        spooled = [e for seg in s.spool.segments() for e in s.spool.read(seg)]
        assert 0 < len(spooled) < 2000
        assert [e["event"]["sequence"] for e in spooled] == sorted(
            e["event"]["sequence"] for e in spooled)
    finally:
        s.close()
        proxy.close()
    back = connect_for_tests(engine, url, prefix=prefix, spool_dir=spool)
    try:
        back.refresh()  # replays the spool first
        assert not back.spool.pending()
        assert back.count_events(EventQuery()) == 2000
    finally:
        back.drop_all()
        back.close()


def test_spool_is_replayed_without_a_new_write(engine, url, tmp_path):
    up = True

    def plan(method: str, path: str) -> int | None:
        return None if up else 503

    proxy = FaultProxy(url, plan)
    s = connect_for_tests(engine, proxy.url, prefix=new_prefix(),
                          spool_dir=str(tmp_path / "spool"), attempts=2, retry_delay=0.01,
                          spool_replay_interval=0.2)
    try:
        s.insert_events(list(synth(0, 5)))
        up = False
        assert s.insert_events(list(synth(5, 25))).stored == 20
        assert s.spool.pending()
        up = True
        # nothing more is written: the store's own replayer brings the spool in
        deadline = time.monotonic() + 60
        while s.spool.pending() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not s.spool.pending()
        s.refresh()
        assert s.count_events(EventQuery()) == 25
    finally:
        s.drop_all()
        s.close()
        proxy.close()


def test_alert_batch_folds_as_the_embedded_store_does(store, tmp_path):
    from store.base import NewAlert, Severity
    from store.sqlite import SQLiteStore

    def draft(key: str, minute: int, event: str) -> NewAlert:
        return NewAlert(rule_id="r-1", rule_name="Brute force", severity=Severity.HIGH,
                        group_key=key, timestamp=T0 + timedelta(minutes=minute),
                        event_ids=[event], fields={"host.name": "web1"})

    first = [draft("old", 0, "e0"), draft("late", 0, "e1")]
    batch = [draft("new", 1, "a1"), draft("new", 2, "a2"), draft("old", 3, "e2"),
             draft("late", 200, "e3"), draft("new", 300, "a3"), draft("solo", 4, "s1"),
             draft("old", 5, "e4")]
    embedded = SQLiteStore(tmp_path / "govsoc.db")
    try:
        for s in (store, embedded):
            s.record_alerts(first, timedelta(hours=1))
        expected = embedded.record_alerts(batch, timedelta(hours=1))
        got = store.record_alerts(batch, timedelta(hours=1))

        def shape(rows: list) -> list:
            return [(a.group_key, a.count, sorted(a.event_ids), created) for a, created in rows]

        assert shape(got) == shape(expected)
        # the same alert ids where the embedded store folded into the same alert
        assert (got[0][0].id == got[1][0].id) and got[4][0].id != got[0][0].id
        store.refresh()
        listed = sorted((a.group_key, a.count) for a in store.list_alerts(limit=100).items)
        assert listed == sorted((a.group_key, a.count)
                                for a in embedded.list_alerts(limit=100).items)
        # a later fold continues from what the batch wrote (versions are real)
        (again, created), = store.record_alerts([draft("new", 301, "a4")], timedelta(hours=1))
        assert not created and again.id == got[4][0].id and again.count == 2
        store.update_alert(again.id, again.version, AlertChange(assignee="dave"))
        # no folding: every draft is a new alert
        rows = store.record_alerts([draft("w0", 1, "x"), draft("w0", 1, "y")], timedelta(0))
        assert [created for _a, created in rows] == [True, True]
        assert rows[0][0].id != rows[1][0].id
    finally:
        embedded.close()
