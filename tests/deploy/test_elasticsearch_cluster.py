"""deploy/search-cluster --engine elasticsearch with the official 8.x Python client."""

from __future__ import annotations

import pytest

from tests.cluster import ClusterUnavailable, ensure_cluster, running_engine, stop_cluster

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def es_url():
    try:
        url = ensure_cluster("elasticsearch", nodes=1)
    except ClusterUnavailable as exc:
        pytest.skip(exc.reason)
    yield url
    stop_cluster("elasticsearch", nodes=1)


def test_client_info_bulk_search_and_seq_no(es_url):
    elasticsearch = pytest.importorskip("elasticsearch")
    from elasticsearch import helpers

    assert running_engine(es_url) == "elasticsearch"
    es = elasticsearch.Elasticsearch(es_url, request_timeout=30)
    assert es.ping()
    info = es.info()
    assert info["version"]["number"].startswith("8.")

    index = "govsoc-deploy-es-smoke"
    es.options(ignore_status=404).indices.delete(index=index)
    es.indices.create(
        index=index,
        settings={"number_of_shards": 1, "number_of_replicas": 0},
        mappings={
            "properties": {
                "message": {"type": "text"},
                "host": {"properties": {"name": {"type": "keyword"}}},
                "@timestamp": {"type": "date"},
            }
        },
    )
    try:
        actions = (
            {
                "_index": index,
                "_id": str(i),
                "message": f"failed login attempt {i}",
                "host": {"name": f"portal-{i % 3}"},
                "@timestamp": "2025-01-01T00:00:00Z",
            }
            for i in range(50)
        )
        ok, errors = helpers.bulk(es, actions, refresh="wait_for")
        assert ok == 50 and not errors

        resp = es.search(
            index=index,
            query={
                "bool": {
                    "must": [{"match": {"message": "failed"}}],
                    "filter": [{"term": {"host.name": "portal-1"}}],
                }
            },
            aggs={"hosts": {"terms": {"field": "host.name"}}},
            size=5,
        )
        assert resp["hits"]["total"]["value"] == 17
        assert resp["aggregations"]["hosts"]["buckets"] == [{"key": "portal-1", "doc_count": 17}]

        doc = es.get(index=index, id="7")
        es.index(
            index=index,
            id="7",
            document={"message": "acknowledged"},
            if_seq_no=doc["_seq_no"],
            if_primary_term=doc["_primary_term"],
        )
        with pytest.raises(elasticsearch.ConflictError):
            es.index(
                index=index,
                id="7",
                document={"message": "stale"},
                if_seq_no=doc["_seq_no"],
                if_primary_term=doc["_primary_term"],
            )
    finally:
        es.indices.delete(index=index)
