"""The store fixture: every contract test runs against every engine.

``sqlite`` always runs. ``opensearch`` and ``elasticsearch`` run against a real
node on loopback started by ``deploy/search-cluster`` (see tests/cluster.py);
they are skipped with the reason when Java/Maven or the engine is unavailable.
Set GOVSOC_TEST_ENGINES (comma-separated) to choose engines.
"""

from __future__ import annotations

import os
import uuid

import pytest

ENGINES = [e.strip() for e in os.environ.get(
    "GOVSOC_TEST_ENGINES", "sqlite,opensearch,elasticsearch").split(",") if e.strip()]


def _elastic_store(engine: str):
    try:
        from tests.cluster import ClusterUnavailable, ensure_cluster
    except ImportError as exc:
        pytest.skip(f"{engine}: cluster helper unavailable ({exc})")
    try:
        url = ensure_cluster(engine)
    except ClusterUnavailable as exc:
        pytest.skip(f"{engine}: {exc}")
    try:
        from store.elastic import connect_for_tests
    except ImportError as exc:
        pytest.skip(f"{engine}: store.elastic not available ({exc})")
    return connect_for_tests(engine, url, prefix=f"t{uuid.uuid4().hex[:10]}")


@pytest.fixture(params=[pytest.param(e, marks=[] if e == "sqlite" else [pytest.mark.cluster])
                        for e in ENGINES])
def store(request, tmp_path):
    engine = request.param
    if engine == "sqlite":
        from store.sqlite import SQLiteStore

        s = SQLiteStore(tmp_path / "govsoc.db")
    else:
        s = _elastic_store(engine)
    yield s
    drop = getattr(s, "drop_all", None)
    if drop is not None:
        drop()
    s.close()
