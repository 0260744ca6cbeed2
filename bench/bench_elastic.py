"""Benchmark: the search-cluster store on a 1-node cluster on this machine.

1. Bulk ingest of ``--events`` (default 1,000,000) synthetic ECS events
   (``bench/ecs_synth.py``, generated before the clock starts) through
   ``ElasticStore.insert_events`` in batches of ``--batch``, after ``--warmup``
   events through both sides (a fresh node first compiles): events/s (median of
   ``--runs``), the client process's CPU time and the node's CPU time per event
   (the machine is shared: CPU time says what the work costs when wall time is
   stretched by other processes), and the node's JVM heap.
   Peer, same run, same events, same index template: the client library's own
   bulk helper (``elasticsearch.helpers.bulk`` / ``opensearchpy.helpers.bulk``)
   with plain ``index`` actions — what the store's idempotent ``create`` with
   sequence numbers, per-item handling and dead letters costs on top.
2. The alert queue with ``--alerts`` (default 100,000) alerts: the first ``--recorded``
   (default 2,000) are recorded through ``record_alerts`` in batches of 100 new
   groups (alerts/s reported, with one-alert-at-a-time recording as the peer), the
   rest bulk-loaded in the same stored form; then ``--queries`` runs of each
   console query — open queue newest first, queue filtered by severity, page 2 by
   cursor, text search, counts by status — p50/p95/max ms. Goal: p95 < 300 ms.

Without ``--url`` the benchmark starts its own node the way a sensor runs one
(``deploy/search-cluster start --jvm production --heap 2g``: G1 and the optimising
JIT) on a private port and stops it at the end.

    python bench/bench_elastic.py [--engine opensearch|elasticsearch] [--url URL]
                                  [--heap 2g] [--events 1000000] [--runs 3]
                                  [--warmup 50000]
                                  [--alerts 100000]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
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


def heap(store: ElasticStore) -> str:
    stats = store.client.request("GET", "/_nodes/stats/jvm")
    parts = []
    for node in stats["nodes"].values():
        mem = node["jvm"]["mem"]
        parts.append(f"{node['name']}: heap {mem['heap_used_in_bytes'] >> 20} MiB used of "
                     f"{mem['heap_max_in_bytes'] >> 20} MiB")
    return "; ".join(parts)


def jvm(store: ElasticStore) -> str:
    info = store.client.request("GET", "/_nodes/jvm")
    parts = []
    for node in info["nodes"].values():
        j = node["jvm"]
        args = [a for a in j.get("input_arguments", [])
                if a.startswith(("-Xmx", "-XX:+Use", "-XX:TieredStopAtLevel"))]
        parts.append(f"{node['name']}: {j.get('vm_name', '?')} {j.get('version', '?')}, "
                     f"collectors {','.join(j.get('gc_collectors', []))}, {' '.join(args)}")
    return "; ".join(parts)


def node_cpu(store: ElasticStore) -> float:
    """CPU seconds the cluster's node processes have used so far."""
    stats = store.client.request("GET", "/_nodes/stats/process")
    return sum(n["process"]["cpu"]["total_in_millis"]
               for n in stats["nodes"].values()) / 1000


@dataclass
class Run:
    wall: float
    client_cpu: float
    node_cpu: float


def measured(store: ElasticStore, fn: Callable[[], Any]) -> Run:
    n0, c0, w0 = node_cpu(store), time.process_time(), time.perf_counter()
    fn()
    store.refresh()
    w1, c1, n1 = time.perf_counter(), time.process_time(), node_cpu(store)
    return Run(w1 - w0, c1 - c0, n1 - n0)


def ingest_store(store: ElasticStore, data: list[dict[str, Any]], size: int) -> Run:
    stored = 0

    def run() -> None:
        nonlocal stored
        for lo in range(0, len(data), size):
            stored += store.insert_events(data[lo:lo + size]).stored

    result = measured(store, run)
    if stored != len(data):
        raise SystemExit(f"stored {stored} of {len(data)} events")
    return result


def ingest_peer(store: ElasticStore, data: list[dict[str, Any]], size: int) -> Run:
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
        for event in data:
            yield {"_op_type": "index", "_index": index, "_id": event["event"]["id"],
                   "_source": event}

    try:
        return measured(store, lambda: bulk(client, actions(), chunk_size=size,
                                            max_chunk_bytes=8 << 20))
    finally:
        client.close()


def line(name: str, n: int, r: Run) -> str:
    return (f"{name} {n / r.wall:,.0f}/s, CPU/event client {r.client_cpu / n * 1e6:.1f} us "
            f"node {r.node_cpu / n * 1e6:.1f} us")


def summary(name: str, n: int, runs: list[Run]) -> str:
    rate = statistics.median(n / r.wall for r in runs)
    client = statistics.median(r.client_cpu for r in runs) / n * 1e6
    node = statistics.median(r.node_cpu for r in runs) / n * 1e6
    return (f"{name:<36}: {rate:>9,.0f} events/s (median of {len(runs)}: "
            f"{', '.join(f'{n / r.wall:,.0f}' for r in runs)}); CPU per event: client "
            f"{client:.1f} us, node {node:.1f} us -> {2e6 / (client + node):,.0f} events/s "
            f"if both cores were the benchmark's")


def start_node(engine: str, heap_size: str, port: int) -> tuple[str, dict[str, str]]:
    env = dict(os.environ)
    env["GOVSOC_CLUSTER_DIR"] = tempfile.mkdtemp(prefix="govsoc-bench-cluster-")
    proc = subprocess.run(
        [str(REPO / "deploy" / "search-cluster"), "start", "--engine", engine, "--port",
         str(port), "--heap", heap_size, "--jvm", "production", "--fresh", "--timeout", "300"],
        env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"could not start the {engine} node:\n{proc.stderr[-3000:]}")
    return proc.stdout.strip().splitlines()[-1], env


def stop_node(env: dict[str, str]) -> None:
    proc = subprocess.run([str(REPO / "deploy" / "search-cluster"), "stop"], env=env,
                          capture_output=True, text=True, check=False)
    if proc.returncode == 0:
        # the node's data (a gigabyte after a full run) is of no further use
        shutil.rmtree(env["GOVSOC_CLUSTER_DIR"], ignore_errors=True)


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


def record_one_by_one(store: ElasticStore, first: int, count: int) -> float:
    """Peer: each new group recorded on its own (a group-pointer read, the alert,
    the pointer: three round trips), the path batches took before folding."""
    window_us = 3600 * 1_000_000
    start = time.perf_counter()
    for i in range(first, first + count):
        store._record_retrying(draft(i), window_us)
    return count / (time.perf_counter() - start)


def load_alerts(store: ElasticStore, n: int, recorded: int) -> tuple[float, float]:
    recorded = min(recorded, n)
    start = time.perf_counter()
    for lo in range(0, recorded, 100):
        store.record_alerts([draft(i) for i in range(lo, min(recorded, lo + 100))],
                            timedelta(hours=1))
    rate = recorded / (time.perf_counter() - start)
    # the peer's alerts stay in the queue: they count toward the n alerts loaded
    single = min(200, max(0, n - recorded))
    peer = record_one_by_one(store, recorded, single) if single else float("nan")
    recorded += single
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
    return rate, peer


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
    parser.add_argument("--url", help="an existing cluster (default: start a node)")
    parser.add_argument("--heap", default="2g", help="heap of the node it starts")
    parser.add_argument("--port", type=int, default=19950, help="port of the node it starts")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=50_000,
                        help="events through both sides before the clock starts")
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--recorded", type=int, default=2000,
                        help="alerts recorded through record_alerts (the rest bulk-loaded)")
    parser.add_argument("--keep", action="store_true", help="keep the indices afterwards")
    opts = parser.parse_args()
    url, node_env = opts.url, None
    # a stopped benchmark still stops the node it started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if url is None:
        url, node_env = start_node(opts.engine, opts.heap, opts.port)
    try:
        bench(opts, url)
    finally:
        if node_env is not None:
            stop_node(node_env)


def bench(opts: argparse.Namespace, url: str) -> None:
    start = time.process_time()
    data = list(events(opts.events, 1))
    gc.freeze()  # the events live to the end: the collector need not walk them
    print(f"{opts.engine} at {url}; {opts.events:,} events generated in "
          f"{time.process_time() - start:.1f} s CPU (not timed), batches of {opts.batch}, "
          f"{opts.runs} runs")
    mine: list[Run] = []
    peers: list[Run] = []
    if opts.warmup:
        # a fresh node spends its first seconds compiling: neither side should pay that
        warm = connect_for_tests(opts.engine, url, prefix=f"warm{uuid.uuid4().hex[:6]}")
        ingest_store(warm, data[:opts.warmup], opts.batch)
        ingest_peer(warm, data[:opts.warmup], opts.batch)
        warm.drop_all()
        warm.close()
    store = None
    for run in range(opts.runs):
        # alternated, each into empty indices, so neither always runs on a warmer node
        store = connect_for_tests(opts.engine, url, prefix=f"bench{uuid.uuid4().hex[:6]}")
        if run == 0:
            print(f"  node: {jvm(store)}")
        mine.append(ingest_store(store, data, opts.batch))
        peers.append(ingest_peer(store, data, opts.batch))
        print(f"  run {run + 1}: {line('store', opts.events, mine[-1])}; "
              f"{line('peer', opts.events, peers[-1])}; after: {heap(store)}", flush=True)
        if run < opts.runs - 1:
            store.drop_all()
            store.close()
    assert store is not None
    print(summary("govsoc ElasticStore.insert_events", opts.events, mine))
    print(summary("peer: client bulk helper (index)", opts.events, peers))
    print(f"  node after ingest: {heap(store)}")
    try:
        store.drop_all()
        store.close()
        del data
        gc.unfreeze()
        gc.collect()
        store = connect_for_tests(opts.engine, url, prefix=f"bench{uuid.uuid4().hex[:6]}")
        rate, peer = load_alerts(store, opts.alerts, opts.recorded)
        print(f"record_alerts (new groups, 100 a call): {rate:>9,.0f} alerts/s; peer, one "
              f"at a time: {peer:,.0f} alerts/s; {opts.alerts:,} alerts loaded")
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
