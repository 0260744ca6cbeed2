"""Payloads carved by the network collector reach YARA through its payload sink."""

from __future__ import annotations

from collectors.network.payloads import CarvedPayload, PayloadSink, hashes
from detection.yara.payloads import YaraPayloadSink
from govsoc.events import get_field, validate_event

RULE = 'rule carved_shell { meta: score = 90 strings: $a = "EVIL-UPLOAD" condition: $a }\n'


def payload(data: bytes) -> CarvedPayload:
    md5, sha1, sha256 = hashes(data)
    return CarvedPayload(data=data, md5=md5, sha1=sha1, sha256=sha256, size=len(data),
                         truncated=False, direction="request", event_id="http-event-1",
                         community_id="1:abc=", source_ip="203.0.113.9",
                         destination_ip="10.0.0.5", url="http://portal.example/upload.php",
                         mime_type="multipart/form-data", timestamp="2026-11-23T10:00:00Z")


def test_sink_implements_the_collectors_protocol(make_scanner):
    matched = []
    sink = YaraPayloadSink(make_scanner({"r.yar": RULE}),
                           on_match=lambda event, alert: matched.append((event, alert)))
    assert isinstance(sink, PayloadSink)
    sink.accept(payload(b"--boundary\r\n<?php EVIL-UPLOAD ?>"))
    sink.accept(payload(b"harmless form post"))
    assert sink.stats.payloads == 2 and sink.stats.matched == 1
    event, alert = matched[0]
    validate_event(event)
    assert get_field(event, "source.ip") == "203.0.113.9"
    assert get_field(event, "url.original") == "http://portal.example/upload.php"
    assert get_field(event, "@timestamp").startswith("2026-11-23T10:00:00")
    assert alert.rule_id == "yara:carved_shell" and alert.severity.value == "critical"
    assert alert.event_ids == [event["event"]["id"], "http-event-1"]
    assert alert.fields["destination.ip"] == "10.0.0.5"


def test_bytes_and_metadata_interface(make_scanner):
    sink = YaraPayloadSink(make_scanner({"r.yar": RULE}))
    alerts = sink.scan(b"xx EVIL-UPLOAD", {"source": {"ip": "198.51.100.1"},
                                          "file": {"name": "a.jsp"}})
    assert len(alerts) == 1 and alerts[0].fields["source.ip"] == "198.51.100.1"
    assert sink.scan(b"nothing", {}) == []
