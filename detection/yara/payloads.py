"""Scanning payloads carved from network traffic (HTTP bodies, uploaded files).

The network collector hands each carved payload to a sink through
``accept(payload)`` (``collectors.network.payloads.PayloadSink``; the payload
carries the body, the flow's addresses, URL, community id, the id of the HTTP
event it came from and its time). :class:`YaraPayloadSink` implements it without
importing the collector: it reads those attributes. Anything else can call
:meth:`YaraPayloadSink.scan` with ``(bytes, metadata)``, the metadata being ECS
fields (dotted or nested).

For a payload that matched, the sink builds the ECS ``yara.match`` event and the
alert, both carrying the flow's fields and linked to the HTTP event, and hands
them to ``on_match`` (the pipeline stores them); ``scan`` also returns the alerts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

import yara

from detection.yara.alerts import alert_for, match_event
from detection.yara.scanner import TIMEOUT, YARA_ERROR, FileResult, YaraScanner
from govsoc.events import Event, flatten, parse_timestamp
from store.base import NewAlert


class CarvedPayloadLike(Protocol):
    """What the sink reads from a carved payload."""

    data: bytes
    direction: str
    event_id: str
    community_id: str
    source_ip: str
    destination_ip: str
    url: str
    mime_type: str
    timestamp: str


#: Receives the ``yara.match`` event and the alert of a payload that matched.
MatchCallback = Callable[[Event, NewAlert], None]


@dataclass
class PayloadStats:
    payloads: int = 0
    bytes: int = 0
    matched: int = 0
    #: payloads not (fully) scanned, by reason
    failed: dict[str, int] = field(default_factory=dict)


class YaraPayloadSink:
    """Scans carved payloads with YARA (a ``collectors.network`` payload sink).

    Payloads over the size cap are scanned up to the cap. The sink runs inside
    the capture loop, so libyara's per-scan timeout bounds the time it takes.
    """

    def __init__(self, scanner: YaraScanner, on_match: MatchCallback | None = None) -> None:
        self.scanner = scanner
        self.on_match = on_match
        self.stats = PayloadStats()

    def accept(self, payload: CarvedPayloadLike) -> None:
        """Scan one carved payload; a match goes to ``on_match``."""
        metadata: dict[str, Any] = {
            "@timestamp": payload.timestamp or None,
            "source.ip": payload.source_ip or None,
            "destination.ip": payload.destination_ip or None,
            "url.original": payload.url or None,
            "network.community_id": payload.community_id or None,
            "file.mime_type": payload.mime_type or None,
            "event.action": f"http-{payload.direction}-body" if payload.direction else None,
        }
        self.scan(payload.data, metadata, related_event_id=payload.event_id or None)

    def scan(self, data: bytes, metadata: Mapping[str, Any],
             related_event_id: str | None = None) -> list[NewAlert]:
        """Scan ``data``; returns the alert (one, or none when nothing matched)."""
        fields = flatten(metadata)
        name = str(fields.get("file.name") or _url_path(fields.get("url.original")) or "")
        self.stats.payloads += 1
        self.stats.bytes += len(data)
        try:
            matches = self.scanner.scan_payload(data, name)
        except yara.TimeoutError:
            self._failed(TIMEOUT)
            return []
        except yara.Error:
            self._failed(YARA_ERROR)
            return []
        if not matches:
            return []
        self.stats.matched += 1
        scanned = data[: self.scanner.limits.max_file_size]
        sha256 = hashlib.sha256(scanned).hexdigest()
        where = str(fields.get("url.original") or fields.get("network.community_id")
                    or "payload")
        result = FileResult(
            path=str(fields.get("file.path") or f"{where}#sha256={sha256[:16]}"),
            size=len(data), matches=matches,
            md5=hashlib.md5(scanned, usedforsecurity=False).hexdigest(),
            sha1=hashlib.sha1(scanned, usedforsecurity=False).hexdigest(), sha256=sha256)
        seen = fields.get("@timestamp")
        extra = {k: v for k, v in fields.items()
                 if k not in ("@timestamp", "file.path") and v is not None}
        event = match_event(result, parse_timestamp(seen) if seen else datetime.now(UTC),
                            extra)
        alert = alert_for(result, event)
        # the same content sent to the same server is one incident
        alert.group_key = f"yara-payload|{sha256}|{fields.get('destination.ip') or ''}"
        if related_event_id:
            alert.event_ids.append(related_event_id)
        if self.on_match is not None:
            self.on_match(event, alert)
        return [alert]

    def _failed(self, reason: str) -> None:
        self.stats.failed[reason] = self.stats.failed.get(reason, 0) + 1


def _url_path(url: Any) -> str:
    if not url:
        return ""
    try:
        return urlsplit(str(url)).path
    except ValueError:
        return ""
