"""Carved payloads: HTTP bodies cut from reassembled streams, with their hashes,
and the small interface through which they reach a scanner.

The network collector builds a :class:`CarvedPayload` for every non-empty HTTP
request or response body and calls :meth:`PayloadSink.accept` on the configured
sink. The YARA engine implements :class:`PayloadSink`; anything else that wants the
bodies (a directory writer, a test) can too. A sink must not block for long (it
runs inside the capture loop) and must not keep a reference to ``data`` longer
than it needs: bodies are up to ``max_body`` bytes each (4 MiB by default).

The payload names the HTTP event it came from (``event_id``), so a scanner's
alert can point back at the request, the connection and the hosts.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class CarvedPayload:
    """One body carved from a network stream."""

    data: bytes             # the body, content-encoding (gzip/deflate) removed
    md5: str
    sha1: str
    sha256: str
    size: int               # bytes on the wire (after de-chunking, before decoding)
    truncated: bool         # cut by the size limit or by a capture gap
    direction: str          # "request" or "response"
    event_id: str           # event.id of the network.http event it belongs to
    community_id: str       # network.community_id of the connection
    source_ip: str
    destination_ip: str
    url: str                # url.original of the request, "" when unknown
    mime_type: str          # declared Content-Type, without parameters
    timestamp: str          # ISO 8601, when the transaction started


@runtime_checkable
class PayloadSink(Protocol):
    """Receives carved payloads (the YARA engine implements this)."""

    def accept(self, payload: CarvedPayload) -> None:
        """Take one payload; exceptions are counted by the collector, not fatal."""
        ...


def hashes(data: bytes) -> tuple[str, str, str]:
    """(md5, sha1, sha256) hex digests of ``data``."""
    return (hashlib.md5(data, usedforsecurity=False).hexdigest(),
            hashlib.sha1(data, usedforsecurity=False).hexdigest(),
            hashlib.sha256(data).hexdigest())


class DirectorySink:
    """Writes each distinct payload once to ``directory/<sha256>`` (for analysts)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self.written = 0

    def accept(self, payload: CarvedPayload) -> None:
        path = os.path.join(self.directory, payload.sha256)
        if os.path.exists(path):
            return
        tmp = path + ".part"
        with open(tmp, "wb") as fh:
            fh.write(payload.data)
        os.replace(tmp, path)
        self.written += 1
