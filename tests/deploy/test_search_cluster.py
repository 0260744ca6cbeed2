"""deploy/search-cluster: a 1-node OpenSearch on loopback, over plain HTTP and opensearch-py."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.cluster import ClusterUnavailable, ensure_cluster, running_engine, stop_cluster

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def opensearch_url():
    try:
        url = ensure_cluster("opensearch", nodes=1)
    except ClusterUnavailable as exc:
        pytest.skip(exc.reason)
    yield url
    stop_cluster("opensearch", nodes=1)


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as resp:
        assert resp.status == 200
        return json.loads(resp.read())


def test_health_over_plain_http(opensearch_url):
    assert opensearch_url.startswith("http://127.0.0.1:")
    # shards of indices created a moment ago may still be allocating: wait, bounded
    health = _get(opensearch_url + "/_cluster/health?wait_for_status=yellow&timeout=60s")
    assert health["status"] in ("yellow", "green")
    assert health["number_of_nodes"] == 1
    root = _get(opensearch_url + "/")
    assert root["version"]["distribution"] == "opensearch"
    assert root["version"]["number"].startswith("2.19.")
    assert running_engine(opensearch_url) == "opensearch"


def test_reuses_running_cluster(opensearch_url):
    assert ensure_cluster("opensearch", nodes=1) == opensearch_url


def test_index_and_search_with_opensearch_py(opensearch_url):
    opensearchpy = pytest.importorskip("opensearchpy")
    client = opensearchpy.OpenSearch(opensearch_url, timeout=30)
    index = "govsoc-deploy-smoke"
    if client.indices.exists(index=index):
        client.indices.delete(index=index)
    client.indices.create(
        index=index,
        body={
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": {
                "properties": {"message": {"type": "text"}, "host.name": {"type": "keyword"}}
            },
        },
    )
    try:
        client.index(
            index=index,
            id="1",
            body={"message": "failed password for root", "host.name": "portal-01"},
        )
        client.index(
            index=index,
            id="2",
            body={"message": "accepted publickey", "host.name": "lgsp-02"},
            refresh=True,
        )
        hits = client.search(
            index=index,
            body={
                "query": {
                    "bool": {
                        "must": [{"match": {"message": "failed"}}],
                        "filter": [{"term": {"host.name": "portal-01"}}],
                    }
                }
            },
        )["hits"]
        assert hits["total"]["value"] == 1
        assert hits["hits"][0]["_id"] == "1"

        doc = client.get(index=index, id="1")
        client.index(
            index=index,
            id="1",
            body={"message": "updated"},
            if_seq_no=doc["_seq_no"],
            if_primary_term=doc["_primary_term"],
        )
        with pytest.raises(opensearchpy.exceptions.ConflictError):
            client.index(
                index=index,
                id="1",
                body={"message": "stale"},
                if_seq_no=doc["_seq_no"],
                if_primary_term=doc["_primary_term"],
            )
    finally:
        client.indices.delete(index=index)
