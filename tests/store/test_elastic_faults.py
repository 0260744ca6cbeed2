"""Faults against a real cluster: the node stopped mid-ingest, the ingesting process
killed with SIGKILL, a node of three killed. Each run ends with every event of the
stream present exactly once (``_id`` is the event id, so the count of documents is
the count of distinct events).

These clusters get their own ports (not the shared test cluster's) because the
tests stop and kill nodes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from store.base import AlertFilter, EventQuery
from store.elastic import connect_for_tests
from tests.store.elastic_support import ENGINES, cluster_url, new_prefix, synth
from tests.store.test_contract import new_alert

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
#: separate clusters for the fault tests: (1 node, 3 nodes) per engine
FAULT_PORTS = {"opensearch": (19250, 19260), "elasticsearch": (19450, 19460)}
TOTAL = 200_000
BATCH = 2_000


@pytest.fixture(params=ENGINES)
def engine(request):
    return request.param


def _count(store) -> int:
    store.refresh()
    return store.count_events(EventQuery())


@pytest.mark.timeout(420)
def test_node_stopped_mid_ingest_loses_and_repeats_nothing(engine, tmp_path):
    from tests.cluster import stop_cluster

    port = FAULT_PORTS[engine][0]
    url = cluster_url(engine, port=port)
    store = connect_for_tests(engine, url, prefix=new_prefix(), spool_dir=str(tmp_path / "sp"),
                              attempts=3, retry_delay=0.05)
    stored = 0
    progress = threading.Event()
    failure: list[BaseException] = []

    def ingest(first: int, last: int) -> None:
        nonlocal stored
        try:
            for start in range(first, last, BATCH):
                result = store.insert_events(list(synth(start, min(last, start + BATCH))))
                stored += result.stored
                if stored >= 40_000:
                    progress.set()
        except BaseException as exc:
            failure.append(exc)
            progress.set()

    worker = threading.Thread(target=ingest, args=(0, 150_000))
    worker.start()
    assert progress.wait(180), "ingest made no progress"
    stop_cluster(engine, port=port)           # the node goes away mid-ingest
    worker.join(240)
    assert not failure, failure
    assert store.spool.pending(), "the outage should have spooled batches"
    cluster_url(engine, port=port)            # and comes back
    ingest(150_000, TOTAL)                    # the spool is replayed first, then these
    assert not failure, failure
    assert store.flush_spool()
    assert stored == TOTAL
    try:
        assert _count(store) == TOTAL
        assert store.get_events([next(synth(TOTAL - 1, TOTAL))["event"]["id"]])
    finally:
        store.drop_all()
        store.close()


@pytest.mark.timeout(900)
def test_ingesting_process_killed_and_restarted(engine):
    url = cluster_url(engine)
    prefix = new_prefix()
    store = connect_for_tests(engine, url, prefix=prefix)
    args = [sys.executable, "-m", "tests.store.elastic_ingest_worker", engine, url, prefix,
            str(TOTAL), str(BATCH)]
    try:
        first = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            state = store.get_checkpoint("fault-test:stream")
            if state and state["next"] >= 60_000:
                break
            assert first.poll() is None, "the worker ended before it was killed"
            time.sleep(0.2)
        else:
            pytest.fail("the worker made no progress")
        first.send_signal(signal.SIGKILL)     # mid-batch, without any clean-up
        first.wait(30)
        assert first.returncode == -signal.SIGKILL
        second = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)
        assert second.returncode == 0, second.stderr[-3000:]
        resumed_at = int(second.stdout.split("resuming at ")[1].split()[0])
        assert 60_000 <= resumed_at < TOTAL
        assert _count(store) == TOTAL
    finally:
        store.drop_all()
        store.close()


@pytest.mark.timeout(420)
def test_three_nodes_one_replica_survive_a_killed_node(engine, tmp_path):
    from tests.cluster import cluster_command

    port = FAULT_PORTS[engine][1]
    base = cluster_url(engine, nodes=3, port=port)
    urls = [base, f"http://127.0.0.1:{port + 1}", f"http://127.0.0.1:{port + 2}"]
    store = connect_for_tests(engine, urls, prefix=new_prefix(), spool_dir=str(tmp_path / "sp"),
                              replicas=1, attempts=10, retry_delay=0.2, max_retry_delay=3.0)
    total = 40_000
    answered: list[int] = []
    try:
        store.insert_events(list(synth(0, 10_000)))
        store.record_alerts([new_alert(key=f"k{i}") for i in range(20)], window=_hour())
        cluster_command(engine, 3, port, "kill-node", "2")
        # writes go on, and the console's questions are answered
        for start in range(10_000, total, BATCH):
            result = store.insert_events(list(synth(start, start + BATCH)))
            assert result.stored == BATCH
            answered.append(len(store.list_alerts(AlertFilter(), limit=50).items))
            assert store.search_events(EventQuery(limit=10)).items
        store.record_alerts([new_alert(key="after-kill")], window=_hour())
        assert not store.spool.pending(), "writes should have gone to the cluster, not the spool"
        assert _count(store) == total
        assert answered and all(n == 20 for n in answered)
        cluster_command(engine, 3, port, "restart-node", "2")
        assert _count(store) == total
    finally:
        store.drop_all()
        store.close()


def _hour():
    from datetime import timedelta

    return timedelta(hours=1)
