"""One thin adapter over the ``elasticsearch`` 8 and ``opensearch-py`` 2 clients.

Both engines speak the same REST API for everything the store does (documents
with ``if_seq_no``/``if_primary_term``, ``_bulk``, ``_search`` with query DSL,
``_count``, index templates, ``_refresh``); they differ in their client
libraries' calling conventions and exception classes, and in index lifecycle
management (ILM vs ISM, see ``retention.py``). So the store talks REST through
:meth:`SearchClient.request` and this module is the only place that knows
which client library is underneath. Connection handling (TLS verification, CA,
basic auth, API key, several URLs) is the client libraries' own.

Errors come out as :class:`ClusterError` with the HTTP status (0 when the
cluster could not be reached at all), so callers decide what is retryable.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import orjson

from govsoc.errors import StoreError

log = logging.getLogger("govsoc.store.elastic")

#: Statuses worth retrying: too many requests, and the server-side 5xx family.
RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Connections kept per node (the console's threads and parallel index creation).
POOL_SIZE = 16


class ClusterError(StoreError):
    """A request to the cluster failed; ``status`` 0 means it was not reachable."""

    def __init__(self, status: int, reason: str, body: Any = None) -> None:
        self.status = status
        self.reason = reason
        self.body = body
        super().__init__(f"search cluster answered {status or 'nothing'}: {reason}")

    @property
    def retryable(self) -> bool:
        return self.status == 0 or self.status in RETRYABLE_STATUSES


@dataclass
class ConnectionSettings:
    """How to reach the cluster (``store.*`` keys of govsoc.yml)."""

    urls: Sequence[str]
    username: str | None = None
    password: str | None = None
    api_key: str | None = None
    ca_certs: str | None = None
    verify_certs: bool = True
    timeout: float = 30.0


def quote_id(doc_id: str) -> str:
    """A document id or index name as one URL path segment."""
    return quote(doc_id, safe="")


def error_reason(body: Any, fallback: str) -> str:
    if isinstance(body, Mapping):
        err = body.get("error")
        if isinstance(err, Mapping):
            root = err.get("root_cause") or []
            first = root[0] if root and isinstance(root[0], Mapping) else err
            return f"{first.get('type', 'error')}: {first.get('reason', '')}"[:2000]
        if isinstance(err, str):
            return err[:2000]
    return fallback[:2000]


class SearchClient:
    """REST requests to an Elasticsearch 8 or OpenSearch 2 cluster."""

    def __init__(self, engine: str, settings: ConnectionSettings) -> None:
        if engine not in ("elasticsearch", "opensearch"):
            raise ValueError(f"unknown search engine {engine!r}")
        self.engine = engine
        self.settings = settings
        self._call: Callable[[str, str, Mapping[str, Any] | None, Any, Mapping[str, str]], Any]
        if engine == "elasticsearch":
            self._call = self._es_client(settings)
        else:
            self._call = self._os_client(settings)

    # ----------------------------------------------------------- the two libraries
    def _es_client(self, s: ConnectionSettings) -> Callable[..., Any]:
        import elastic_transport
        import elasticsearch

        kwargs: dict[str, Any] = {"request_timeout": s.timeout, "max_retries": 0,
                                  "retry_on_timeout": False, "verify_certs": s.verify_certs,
                                  "connections_per_node": POOL_SIZE}
        if s.ca_certs:
            kwargs["ca_certs"] = s.ca_certs
        if s.api_key:
            kwargs["api_key"] = s.api_key
        elif s.username:
            kwargs["basic_auth"] = (s.username, s.password or "")
        client = elasticsearch.Elasticsearch(list(s.urls), **kwargs)
        self._closer = client.close

        def call(method: str, path: str, params: Mapping[str, Any] | None, body: Any,
                 headers: Mapping[str, str]) -> Any:
            try:
                resp = client.perform_request(method, path, params=params, headers=headers,
                                              body=body)
            except elasticsearch.ApiError as exc:
                raise ClusterError(exc.meta.status, error_reason(exc.body, str(exc)),
                                   exc.body) from None
            except (elastic_transport.TransportError, OSError) as exc:
                raise ClusterError(0, str(exc)) from None
            return resp.body

        return call

    def _os_client(self, s: ConnectionSettings) -> Callable[..., Any]:
        import opensearchpy

        kwargs: dict[str, Any] = {"timeout": s.timeout, "max_retries": 0,
                                  "retry_on_timeout": False, "verify_certs": s.verify_certs,
                                  "pool_maxsize": POOL_SIZE}
        if any(u.startswith("https:") for u in s.urls):
            kwargs["use_ssl"] = True
        if s.ca_certs:
            kwargs["ca_certs"] = s.ca_certs
        if s.api_key:
            kwargs["headers"] = {"authorization": f"ApiKey {s.api_key}"}
        elif s.username:
            kwargs["http_auth"] = (s.username, s.password or "")
        client = opensearchpy.OpenSearch(list(s.urls), **kwargs)
        self._closer = client.close

        def call(method: str, path: str, params: Mapping[str, Any] | None, body: Any,
                 headers: Mapping[str, str]) -> Any:
            try:
                return client.transport.perform_request(method, path, params=params,
                                                        body=body, headers=headers)
            except opensearchpy.TransportError as exc:
                status = exc.status_code if isinstance(exc.status_code, int) else 0
                raise ClusterError(status, error_reason(exc.info, str(exc)),
                                   exc.info) from None
            except OSError as exc:
                raise ClusterError(0, str(exc)) from None

        return call

    # ----------------------------------------------------------- requests
    def request(self, method: str, path: str, body: Any = None, *,
                params: Mapping[str, Any] | None = None,
                ndjson: bool = False) -> Any:
        """One REST call; the JSON answer as Python objects. Raises ClusterError."""
        headers = {"accept": "application/json"}
        payload: Any = None
        if body is not None:
            if ndjson:
                headers["content-type"] = "application/x-ndjson"
                payload = body
            else:
                headers["content-type"] = "application/json"
                payload = body if isinstance(body, bytes) else orjson.dumps(body)
        clean = {k: (str(v).lower() if isinstance(v, bool) else v)
                 for k, v in (params or {}).items() if v is not None}
        return self._call(method, path, clean or None, payload, headers)

    def request_retrying(self, method: str, path: str, body: Any = None, *,
                         params: Mapping[str, Any] | None = None, ndjson: bool = False,
                         attempts: int = 5, base_delay: float = 0.2,
                         max_delay: float = 5.0) -> Any:
        """Like :meth:`request`, retrying 429, 5xx and unreachable with jittered back-off."""
        delay = base_delay
        for attempt in range(1, attempts + 1):
            try:
                return self.request(method, path, body, params=params, ndjson=ndjson)
            except ClusterError as exc:
                if not exc.retryable or attempt == attempts:
                    raise
                log.debug("retrying %s %s after %s (attempt %d)", method, path, exc, attempt)
                time.sleep(delay * (0.5 + random.random()))
                delay = min(max_delay, delay * 2)
        raise AssertionError("unreachable")

    def get_or_none(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET that answers None for 404."""
        try:
            return self.request("GET", path, params=params)
        except ClusterError as exc:
            if exc.status == 404:
                return None
            raise

    def close(self) -> None:
        self._closer()
