"""Helpers for the search-cluster store tests: a cluster per engine, a fault-injecting
HTTP proxy in front of a real node, and a deterministic event generator."""

from __future__ import annotations

import http.client
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

import pytest

from govsoc.events import event_id, new_event

ENGINES = [e.strip() for e in os.environ.get(
    "GOVSOC_TEST_ENGINES", "opensearch,elasticsearch").split(",")
    if e.strip() in ("opensearch", "elasticsearch")]

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def cluster_url(engine: str, nodes: int = 1, port: int | None = None) -> str:
    try:
        from tests.cluster import ClusterUnavailable, ensure_cluster
    except ImportError as exc:  # pragma: no cover
        pytest.skip(f"cluster helper unavailable: {exc}")
    try:
        return ensure_cluster(engine, nodes=nodes, port=port)
    except ClusterUnavailable as exc:
        pytest.skip(f"{engine}: {exc.reason}")


def new_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


def synth(start: int, stop: int, dataset: str = "fault.web") -> Iterator[dict]:
    """Events number start..stop-1 of a deterministic stream (ids from the number)."""
    for i in range(start, stop):
        event = new_event(dataset, T0 + timedelta(milliseconds=i), host__name=f"web{i % 7}",
                          source__ip=f"10.1.{(i >> 8) & 255}.{i & 255}",
                          message=f"request {i}", event__sequence=i)
        event["event"]["id"] = event_id(f"fault:{dataset}", i)
        yield event


class FaultProxy:
    """A real HTTP proxy to a node that can answer chosen requests with an error.

    ``plan(method, path)`` returns a status to answer instead of forwarding, or
    None to forward. ``seen`` lists what was answered how.
    """

    def __init__(self, target: str, plan: Callable[[str, str], int | None]) -> None:
        parsed = urlparse(target)
        host, port = parsed.hostname or "127.0.0.1", parsed.port or 9200
        self.plan = plan
        self.seen: list[tuple[str, str, int]] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return None

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else None
                status = proxy.plan(self.command, self.path)
                if status is not None:
                    payload = (b'{"error":{"type":"injected","reason":"fault injected by the '
                               b'test proxy"},"status":%d}' % status)
                    proxy.seen.append((self.command, self.path, status))
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                conn = http.client.HTTPConnection(host, port, timeout=60)
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("host", "connection", "content-length")}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                proxy.seen.append((self.command, self.path, resp.status))
                self.send_response(resp.status)
                for key, value in resp.getheaders():
                    if key.lower() not in ("content-length", "connection",
                                           "transfer-encoding"):
                        self.send_header(key, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
