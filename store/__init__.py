"""Storage: the Store contract and its engines (embedded SQLite, Elasticsearch/OpenSearch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from govsoc.errors import ConfigError

if TYPE_CHECKING:
    from govsoc.config import Config
    from store.base import Store


def open_store(config: Config) -> Store:
    """Open the engine the configuration names (``store.engine``)."""
    engine = config.store_engine
    if engine == "sqlite":
        from store.sqlite import SQLiteStore

        return SQLiteStore(config.sqlite_path)
    if engine in ("elasticsearch", "opensearch"):
        try:
            from store.elastic import open_elastic_store
        except ImportError as exc:  # pragma: no cover - engine module missing
            raise ConfigError("store.engine", f"{engine} engine unavailable: {exc}") from exc
        return open_elastic_store(config)
    raise ConfigError("store.engine", f"unknown engine {engine!r}")
