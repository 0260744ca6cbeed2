"""deploy/search-cluster, 3 OpenSearch nodes: kill -9 one, the rest serve, it rejoins."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.cluster import ClusterUnavailable, cluster_command, ensure_cluster, stop_cluster

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

PORT = 19250  # transport 19350..19352


def _req(method: str, url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url, data=data, method=method, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="module")
def three_nodes():
    try:
        url = ensure_cluster("opensearch", nodes=3, port=PORT, fresh=True)
    except ClusterUnavailable as exc:
        pytest.skip(exc.reason)
    yield url
    stop_cluster("opensearch", nodes=3, port=PORT)


def test_kill_and_restart_a_node(three_nodes):
    url = three_nodes
    _req(
        "PUT",
        url + "/faults",
        {
            "settings": {
                "number_of_shards": 3,
                "number_of_replicas": 1,
                "index.unassigned.node_left.delayed_timeout": "0s",
            }
        },
    )
    _req("PUT", url + "/faults/_doc/1?refresh=true", {"message": "before"})
    _req("GET", url + "/_cluster/health/faults?wait_for_status=green&timeout=60s")

    cluster_command("opensearch", 3, PORT, "kill-node", "3")
    health = _req(
        "GET", url + "/_cluster/health?wait_for_nodes=2&wait_for_status=yellow&timeout=60s"
    )
    assert health["number_of_nodes"] == 2 and not health["timed_out"]
    assert _req("GET", url + "/faults/_doc/1")["_source"]["message"] == "before"
    _req("PUT", url + "/faults/_doc/2?refresh=true", {"message": "during"})

    cluster_command("opensearch", 3, PORT, "restart-node", "3")
    health = _req(
        "GET", url + "/_cluster/health?wait_for_nodes=3&wait_for_status=green&timeout=120s"
    )
    assert health["number_of_nodes"] == 3 and health["status"] == "green"
    assert _req("GET", url + "/faults/_count")["count"] == 2
    _req("DELETE", url + "/faults")
