"""End-to-end behaviour of the network collector on small scapy-built captures."""

from __future__ import annotations

import hashlib
from pathlib import Path

from collectors.network import CarvedPayload, PcapFileSource
from govsoc.events import get_field, validate_event
from tests.collectors.network import pcapgen

HTTP_REQ = (b"GET /files/report.pdf?x=1 HTTP/1.1\r\nHost: portal.example.gov:8080\r\n"
            b"User-Agent: test-agent/1.0\r\nAccept: */*\r\n\r\n")
BODY = b"%PDF-1.4 hello body" * 50
HTTP_RESP = (b"HTTP/1.1 200 OK\r\nContent-Type: application/pdf; charset=binary\r\n"
             b"Content-Length: " + str(len(BODY)).encode() + b"\r\n\r\n" + BODY)


class ListSink:
    def __init__(self) -> None:
        self.items: list[CarvedPayload] = []

    def accept(self, payload: CarvedPayload) -> None:
        self.items.append(payload)


def ingest(path: Path, sink=None):
    source = PcapFileSource(str(path), payload_sink=sink)
    events, rejected = [], []
    for batch in source.batches():
        events.extend(batch.events)
        rejected.extend(batch.rejected)
    return events, rejected, source


def by_dataset(events, dataset):
    return [e for e in events if e["event"]["dataset"] == dataset]


def test_http_session_gives_connection_http_event_and_carved_body(tmp_path):
    pkts = pcapgen.tcp_session(pcapgen.CLIENT, pcapgen.SERVER, 40000, 8080,
                               [(HTTP_REQ, HTTP_RESP)], segment=200)
    sink = ListSink()
    events, rejected, _ = ingest(pcapgen.write(tmp_path / "http.pcap", pkts), sink)
    assert not rejected
    for event in events:
        validate_event(event)
        assert event["event"]["module"] == "network"
    (conn,) = by_dataset(events, "network.connection")
    assert get_field(conn, "network.connection.state") == "SF"
    assert get_field(conn, "source.ip") == pcapgen.CLIENT
    assert get_field(conn, "destination.port") == 8080
    assert get_field(conn, "network.protocol") == "http"
    assert get_field(conn, "network.connection.history") == "ShADdFf"  # no bare ACK from the server
    assert get_field(conn, "network.connection.resp_bytes") == len(HTTP_RESP)
    (http,) = by_dataset(events, "network.http")
    assert get_field(http, "http.request.method") == "GET"
    assert get_field(http, "url.domain") == "portal.example.gov"
    assert get_field(http, "url.port") == 8080
    assert get_field(http, "url.path") == "/files/report.pdf"
    assert get_field(http, "url.query") == "x=1"
    assert get_field(http, "url.original") == "/files/report.pdf?x=1"
    assert get_field(http, "user_agent.original") == "test-agent/1.0"
    assert get_field(http, "http.response.status_code") == 200
    assert get_field(http, "http.response.mime_type") == "application/pdf"
    assert get_field(http, "http.response.body.bytes") == len(BODY)
    assert get_field(http, "file.hash.sha256") == hashlib.sha256(BODY).hexdigest()
    assert get_field(http, "network.community_id") == get_field(conn, "network.community_id")
    (payload,) = sink.items
    assert payload.data == BODY and payload.direction == "response"
    assert payload.md5 == hashlib.md5(BODY).hexdigest()
    assert payload.event_id == http["event"]["id"]
    assert payload.url == "/files/report.pdf?x=1" and not payload.truncated


def test_reingesting_gives_the_same_ids(tmp_path):
    pkts = pcapgen.tcp_session(pcapgen.CLIENT, pcapgen.SERVER, 40000, 80,
                               [(HTTP_REQ, HTTP_RESP)])
    path = pcapgen.write(tmp_path / "a.pcap", pkts)
    first = [e["event"]["id"] for e in ingest(path)[0]]
    second = [e["event"]["id"] for e in ingest(path)[0]]
    assert first == second and len(set(first)) == len(first)


def test_dns_query_and_answer_pair_into_one_event(tmp_path):
    pkts = pcapgen.dns_exchange(pcapgen.CLIENT, "192.0.2.53", "mail.example.gov",
                                "198.51.100.7", 4242, 1_700_000_000.0)
    events, rejected, _ = ingest(pcapgen.write(tmp_path / "dns.pcap", pkts))
    assert not rejected
    (dns,) = by_dataset(events, "network.dns")
    assert get_field(dns, "dns.question.name") == "mail.example.gov"
    assert get_field(dns, "dns.question.type") == "A"
    assert get_field(dns, "dns.id") == "4242"
    assert get_field(dns, "dns.type") == "answer"
    assert get_field(dns, "dns.response_code") == "NOERROR"
    assert get_field(dns, "dns.resolved_ip") == ["198.51.100.7"]
    assert get_field(dns, "dns.answers")[0]["ttl"] == 300
    (conn,) = by_dataset(events, "network.connection")
    assert get_field(conn, "network.connection.state") == "SF"
    assert get_field(conn, "network.transport") == "udp"


def test_icmp_echo_is_one_icmp_event(tmp_path):
    pkts = pcapgen.icmp_echo(pcapgen.CLIENT, pcapgen.SERVER, 1_700_000_000.0)
    events, _, _ = ingest(pcapgen.write(tmp_path / "icmp.pcap", pkts))
    (icmp,) = by_dataset(events, "network.icmp")
    assert get_field(icmp, "icmp.type") == 8
    assert get_field(icmp, "source.packets") == 1
    assert get_field(icmp, "destination.packets") == 1
    assert get_field(icmp, "network.community_id").startswith("1:")
