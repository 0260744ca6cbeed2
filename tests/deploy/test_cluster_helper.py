"""tests/cluster.py without starting anything: skips cleanly, refuses bad input."""

from __future__ import annotations

import shutil

import pytest

from tests import cluster
from tests.cluster import ClusterUnavailable, ensure_cluster


@pytest.mark.parametrize("missing", ["java", "mvn"])
def test_missing_tool_is_unavailable(monkeypatch, missing):
    real_which = shutil.which
    monkeypatch.setattr(cluster.shutil, "which", lambda t: None if t == missing else real_which(t))
    # a loopback port where nothing listens, so nothing is reused
    with pytest.raises(ClusterUnavailable, match=missing):
        ensure_cluster("opensearch", port=1)


def test_unknown_engine_is_an_error():
    with pytest.raises(ValueError):
        ensure_cluster("solr")


def test_state_dir_is_per_engine_size_and_port(monkeypatch, tmp_path):
    monkeypatch.setenv("GOVSOC_TEST_CLUSTER_DIR", str(tmp_path))
    monkeypatch.delenv("GOVSOC_TEST_OPENSEARCH_PORT", raising=False)
    assert cluster.state_dir("opensearch") == tmp_path / "opensearch-1n-19200"
    assert cluster.state_dir("elasticsearch", 3, 9400) == tmp_path / "elasticsearch-3n-9400"
