"""The Elasticsearch 8 / OpenSearch 2 store: one code path for both engines.

``open_elastic_store(config)`` opens it from ``store.*`` of govsoc.yml;
``connect_for_tests(engine, url, prefix)`` opens a throw-away layout for tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from store.elastic.client import ClusterError, ConnectionSettings, SearchClient
from store.elastic.store import ElasticStore

if TYPE_CHECKING:
    from govsoc.config import Config

__all__ = ["ClusterError", "ConnectionSettings", "ElasticStore", "SearchClient",
           "connect_for_tests", "open_elastic_store"]


def open_elastic_store(config: Config) -> ElasticStore:
    """The configured cluster store (``store.engine: elasticsearch|opensearch``)."""
    s = config.section("store")
    urls = s.get("url") or "http://127.0.0.1:9200"
    settings = ConnectionSettings(
        urls=[urls] if isinstance(urls, str) else list(urls),
        username=s.get("username"), password=s.get("password"), api_key=s.get("api_key"),
        ca_certs=s.get("ca_certs"), verify_certs=bool(s.get("verify_certs", True)),
        timeout=float(s.get("timeout", 30)))
    client = SearchClient(config.store_engine, settings)
    return ElasticStore(
        client, str(s.get("index_prefix", "govsoc")),
        shards=int(s.get("shards", 1)), replicas=int(s.get("replicas", 1)),
        refresh_interval=str(s.get("refresh_interval", "auto")),
        index_period=str(s.get("index_period", "month")),
        spool_dir=config.data_path(str(s.get("spool_dir", "spool"))),
        spool_max_bytes=int(s.get("spool_max_mb", 1024)) << 20,
        retention_days=int(s.get("retention_days", 90)))


def connect_for_tests(engine: str, url: str | list[str], *, prefix: str,
                      spool_dir: str | None = None, **kwargs: object) -> ElasticStore:
    """A store on a test cluster under its own index prefix (no replicas)."""
    urls = [url] if isinstance(url, str) else list(url)
    client = SearchClient(engine, ConnectionSettings(urls=urls, timeout=120))
    # test clusters share a small heap with other suites: be patient with 429s
    options: dict = {"replicas": 0, "attempts": 8, "retry_delay": 0.2}
    options.update(kwargs)
    return ElasticStore(client, prefix, spool_dir=spool_dir, **options)
