"""Benchmark: the search-cluster store on a 1-node cluster on this machine.

1. Bulk ingest of ``--events`` (default 1,000,000) synthetic ECS events
   (``bench/ecs_synth.py``) through ``ElasticStore.insert_events`` in batches of
   ``--batch``: events/s, and the node's JVM heap (used / max) after the run.
   Peer, same run, same events, same index template: the client library's own
   bulk helper (``elasticsearch.helpers.bulk`` / ``opensearchpy.helpers.bulk``)
   with plain ``index`` actions — what the store's idempotent ``create`` with
   sequence numbers, per-item handling and dead letters costs on top.
2. The alert queue with ``--alerts`` (default 100,000) alerts: the first ``--recorded``
   (default 2,000) are
   recorded through ``record_alerts`` (alerts/s reported), the rest bulk-loaded in
   the same stored form; then ``--queries`` runs of each console query — open
   queue newest first, queue filtered by severity, page 2 by cursor, text search,
   counts by status — p50/p95/max ms. Goal: p95 < 300 ms.

    python bench/bench_elastic.py [--engine opensearch|elasticsearch] [--url URL]
                                  [--events 1000000] [--alerts 100000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from ecs_synth import synth_events  # noqa: E402

from govsoc.events import event_id  # noqa: E402
from store.base import AlertFilter, AlertStatus, NewAlert, Severity  # noqa: E402
from store.elastic import connect_for_tests  # noqa: E402
from store.elastic.store import ElasticStore, _now_us  # noqa: E402


def events(n: int, seed: int) -> Iterator[dict[str, Any]]:
    for i, event in enumerate(synth_events(n, seed)):
        event["event"]["id"] = event_id(f"bench:{seed}", i)
        yield event


def batches(n: int, size: int, seed: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for event in events(n, seed):
        batch.append(event)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def heap(store: ElasticStore) -> str:
    stats = store.client.request("GET", "/_nodes/stats/jvm")
    parts = []
    for node in stats["nodes"].values():
        mem = node["jvm"]["mem"]
        parts.append(f"{node['name']}: heap {mem['heap_used_in_bytes'] >> 20} MiB used of "
                     f"{mem['heap_max_in_bytes'] >> 20} MiB")
    return "; ".join(parts)


def ingest_store(store: ElasticStore, n: int, size: int) -> tuple[float, int]:
    stored = 0
    start = time.perf_counter()
    for batch in batches(n, size, 1):
        stored += store.insert_events(batch).stored
    store.refresh()
    return time.perf_counter() - start, stored


def ingest_peer(store: ElasticStore, n: int, size: int) -> float:
    """The client library's bulk helper into an index shaped by the same template."""
    if store.engine == "elasticsearch":
        from elasticsearch import Elasticsearch
        from elasticsearch.helpers import bulk

        client: Any = Elasticsearch(list(store.client.settings.urls), request_timeout=120)
    else:
        from opensearchpy import OpenSearch
        from opensearchpy.helpers import bulk

        client = OpenSearch(list(store.client.settings.urls), timeout=120)
    index = f"{store.prefix}-events-peer-2026.11"

    def actions() -> Iterator[dict[str, Any]]:
        for event in events(n, 2):
            yield {"_op_type": "index", "_index": index, "_id": event["event"]["id"],
                   "_source": event}

    start = time.perf_counter()
    bulk(client, actions(), chunk_size=size, max_chunk_bytes=8 << 20, refresh=True)
    elapsed = time.perf_counter() - start
    client.close()
    return elapsed


RULES = [("r-webshell", "Webshell execution"), ("r-brute", "SSH brute force"),
         ("r-psenc", "Encoded PowerShell"), ("r-scan", "Port scan"),
         ("r-dns", "DNS tunnelling"), ("r-lsass", "LSASS access")]
SEVERITIES = list(Severity)


def draft(i: int) -> NewAlert:
    rule_id, name = RULES[i % len(RULES)]
    return NewAlert(rule_id=rule_id, rule_name=name, severity=SEVERITIES[i % 5],
                    group_key=f"{rule_id}:host{i % 500}:{i}",
                    timestamp=datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=i * 20),
                    event_ids=[event_id("bench-alert", i)], tags=["attack.t1059"],
                    fields={"host.name": f"host{i % 500}", "source.ip": f"10.2.{i % 200}.7",
                            "user.name": f"user{i % 90}"})


def load_alerts(store: ElasticStore, n: int, recorded: int) -> float:
    recorded = min(recorded, n)
    start = time.perf_counter()
    for lo in range(0, recorded, 100):
        store.record_alerts([draft(i) for i in range(lo, min(recorded, lo + 100))],
                            timedelta(hours=1))
    rate = recorded / (time.perf_counter() - start)
    statuses = [AlertStatus.NEW] * 6 + [AlertStatus.ACKNOWLEDGED, AlertStatus.IN_PROGRESS,
                                        AlertStatus.RESOLVED, AlertStatus.FALSE_POSITIVE]
    index = store._ix("alerts")
    now = _now_us()
    for lo in range(recorded, n, 5000):
        payload = bytearray()
        for i in range(lo, min(n, lo + 5000)):
            d = draft(i)
            alert_id = uuid.uuid4().hex
            doc = store.new_alert_doc(alert_id, d, int(d.timestamp.timestamp() * 1e6), now)
            doc["status"] = statuses[i % len(statuses)].value
            doc["assignee"] = f"analyst{i % 7}" if i % 3 else None
            payload += orjson.dumps({"create": {"_index": index, "_id": alert_id}}) + b"\n"
            payload += orjson.dumps(doc) + b"\n"
        store.client.request("POST", "/_bulk", bytes(payload), ndjson=True)
    store.refresh()
    return rate


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, float, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(0.95 * (len(times) - 1))], times[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", default="opensearch",
                        choices=["opensearch", "elasticsearch"])
    parser.add_argument("--url", help="an existing cluster (default: the test cluster)")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--recorded", type=int, default=2000,
                        help="alerts recorded through record_alerts (the rest bulk-loaded)")
    parser.add_argument("--keep", action="store_true", help="keep the indices afterwards")
    opts = parser.parse_args()
    url = opts.url
    if url is None:
        from tests.cluster import ensure_cluster

        url = ensure_cluster(opts.engine)
    store = connect_for_tests(opts.engine, url, prefix=f"bench{uuid.uuid4().hex[:6]}")
    try:
        print(f"{opts.engine} at {url}; {opts.events:,} events, batches of {opts.batch}")
        elapsed, stored = ingest_store(store, opts.events, opts.batch)
        print(f"govsoc ElasticStore.insert_events : {opts.events / elapsed:>9,.0f} events/s "
              f"({elapsed:.1f} s, {stored:,} stored)")
        print(f"  after: {heap(store)}")
        peer = ingest_peer(store, opts.events, opts.batch)
        print(f"peer: client bulk helper (index)  : {opts.events / peer:>9,.0f} events/s "
              f"({peer:.1f} s)")
        print(f"  after: {heap(store)}")

        rate = load_alerts(store, opts.alerts, opts.recorded)
        print(f"record_alerts (new groups)        : {rate:>9,.0f} alerts/s; "
              f"{opts.alerts:,} alerts loaded")
        rnd = random.Random(3)
        queue = AlertFilter(statuses=[AlertStatus.NEW, AlertStatus.ACKNOWLEDGED,
                                      AlertStatus.IN_PROGRESS])
        first = store.list_alerts(queue, limit=50)
        queries: dict[str, Callable[[], Any]] = {
            "open queue, newest first (50)": lambda: store.list_alerts(queue, limit=50),
            "queue, high+critical on a host": lambda: store.list_alerts(AlertFilter(
                statuses=queue.statuses, severities=[Severity.HIGH, Severity.CRITICAL],
                hosts=[f"host{rnd.randrange(500)}"]), limit=50),
            "queue page 2 (cursor)": lambda: store.list_alerts(queue, limit=50,
                                                               after=first.next_cursor),
            "queue sorted by severity": lambda: store.list_alerts(queue, sort="severity",
                                                                  limit=50),
            "text search 'powershell'": lambda: store.list_alerts(
                AlertFilter(text="powershell"), limit=50),
            "counts by status": lambda: store.count_alerts(by="status"),
            "counts by rule, unassigned": lambda: store.count_alerts(
                AlertFilter(unassigned=True), by="rule_id"),
        }
        print(f"alert queue queries over {opts.alerts:,} alerts ({opts.queries} runs each):")
        for name, fn in queries.items():
            p50, p95, worst = timed(fn, opts.queries)
            print(f"  {name:<34} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  max {worst:7.1f} ms")
    finally:
        if not opts.keep:
            store.drop_all()
        store.close()


if __name__ == "__main__":
    main()
