"""HTTP/2 over cleartext TCP: streams reported as HTTP transactions, and
DNS-over-HTTPS (RFC 8484) read from them."""

from __future__ import annotations

import base64
import struct

import pytest
from hpack import Encoder
from scapy.layers.dns import DNS, DNSQR, DNSRR

from govsoc.events import get_field, validate_event
from tests.collectors.network import pcapgen
from tests.collectors.network.test_collector import by_dataset, ingest
from tests.conftest import corpus_path

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack("!I", len(payload))[1:] + bytes([kind, flags]) + \
        struct.pack("!I", stream) + payload


def settings() -> bytes:
    return frame(4, 0, 0, struct.pack("!HI", 3, 100))


def test_doh_post_and_get_over_h2c_are_dns_and_http_events(tmp_path):
    client, server = Encoder(), Encoder()
    query = bytes(DNS(id=0, rd=1, qd=DNSQR(qname="intake.example.gov", qtype="A")))
    answer = bytes(DNS(id=0, qr=1, rd=1, ra=1, qd=DNSQR(qname="intake.example.gov"),
                       an=DNSRR(rrname="intake.example.gov", rdata="198.51.100.20")))
    get_query = bytes(DNS(id=0, rd=1, qd=DNSQR(qname="mail.example.gov", qtype="MX")))
    param = base64.urlsafe_b64encode(get_query).rstrip(b"=").decode()
    post_headers = client.encode([(":method", "POST"), (":scheme", "http"),
                                  (":authority", "doh.example.gov"), (":path", "/dns-query"),
                                  ("content-type", "application/dns-message"),
                                  ("user-agent", "doh-test/1.0")])
    # the header block is split over HEADERS and CONTINUATION; the body is padded
    request = PREFACE + settings() + frame(1, 0, 1, post_headers[:10]) + \
        frame(9, 0x4, 1, post_headers[10:]) + \
        frame(0, 0x1 | 0x8, 1, bytes([3]) + query + b"\x00\x00\x00")
    get_headers = client.encode([(":method", "GET"), (":scheme", "http"),
                                 (":authority", "doh.example.gov"),
                                 (":path", f"/dns-query?dns={param}"),
                                 ("accept", "application/dns-message")])
    request += frame(1, 0x4 | 0x1, 3, get_headers)
    response = settings() + frame(1, 0x4, 1, server.encode(
        [(":status", "200"), ("content-type", "application/dns-message")])) + \
        frame(0, 0x1, 1, answer) + \
        frame(1, 0x4 | 0x1, 3, server.encode([(":status", "404")]))
    pkts = pcapgen.tcp_session(pcapgen.CLIENT, pcapgen.SERVER, 41000, 8053,
                               [(request, response)], segment=50)
    events, rejected, _ = ingest(pcapgen.write(tmp_path / "doh.pcap", pkts))
    assert not rejected
    for event in events:
        validate_event(event)
    http = by_dataset(events, "network.http")
    assert [get_field(e, "http.request.method") for e in http] == ["POST", "GET"]
    post = http[0]
    assert get_field(post, "http.version") == "2"
    assert get_field(post, "url.domain") == "doh.example.gov"
    assert get_field(post, "url.path") == "/dns-query"
    assert get_field(post, "user_agent.original") == "doh-test/1.0"
    assert get_field(post, "http.response.status_code") == 200
    assert get_field(http[1], "http.response.status_code") == 404
    dns = {get_field(e, "dns.question.name"): e for e in by_dataset(events, "network.dns")}
    assert set(dns) == {"intake.example.gov", "mail.example.gov"}
    answered = dns["intake.example.gov"]
    assert get_field(answered, "dns.type") == "answer"
    assert get_field(answered, "dns.resolved_ip") == ["198.51.100.20"]
    assert get_field(dns["mail.example.gov"], "dns.question.type") == "MX"
    assert get_field(dns["mail.example.gov"], "dns.type") == "query"


def test_undecodable_header_block_is_counted_and_the_rest_survives(tmp_path):
    bad = PREFACE + settings() + frame(1, 0x4 | 0x1, 1, b"\xff\xff\xff\xff\xff\xff")
    h2 = pcapgen.tcp_session(pcapgen.CLIENT, pcapgen.SERVER, 41001, 8080, [(bad, b"")])
    after = pcapgen.dns_exchange(pcapgen.CLIENT, "192.0.2.53", "after.example.gov",
                                 "198.51.100.4", 5, 1_700_000_010.0)
    events, rejected, source = ingest(pcapgen.write(tmp_path / "bad-h2.pcap", h2 + after))
    assert source.problems["http_malformed"] == 1
    assert any("header block does not decode" in r.reason for r in rejected)
    assert any(get_field(e, "dns.question.name") == "after.example.gov"
               for e in by_dataset(events, "network.dns"))
    assert by_dataset(events, "network.connection")


@pytest.mark.corpus
def test_suricata_doh_capture():
    """Firefox resolving over DNS-over-HTTPS on h2c (suricata-verify
    dns-over-http2-post): the NS query for example.com and its answer."""
    path = corpus_path("pcaps", "suricata-verify", "tests", "dns-over-http2-post",
                       "dns_over_https_POST.pcap")
    events, rejected, _ = ingest(path)
    assert not rejected
    dns = by_dataset(events, "network.dns")
    (ns,) = [e for e in dns if get_field(e, "dns.question.type") == "NS"]
    assert get_field(ns, "dns.question.name") == "example.com"
    assert "b.iana-servers.net" in [a["data"] for a in get_field(ns, "dns.answers")]
    assert len(dns) == len(by_dataset(events, "network.http")) > 10


def test_upgrade_to_h2c_goes_on_as_http2(tmp_path):
    client, server = Encoder(), Encoder()
    upgrade = (b"GET /index HTTP/1.1\r\nHost: up.example.gov\r\nUpgrade: h2c\r\n"
               b"Connection: Upgrade, HTTP2-Settings\r\n"
               b"HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n")
    switched = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n" \
        + settings() + frame(1, 0x4, 1, server.encode([(":status", "200")])) + \
        frame(0, 0x1, 1, b"hello")
    second = PREFACE + settings() + frame(1, 0x4 | 0x1, 3, client.encode(
        [(":method", "GET"), (":scheme", "http"), (":authority", "up.example.gov"),
         (":path", "/second")]))
    answer = frame(1, 0x4 | 0x1, 3, server.encode([(":status", "204")]))
    pkts = pcapgen.tcp_session(pcapgen.CLIENT, pcapgen.SERVER, 41500, 80,
                               [(upgrade, switched), (second, answer)])
    events, rejected, _ = ingest(pcapgen.write(tmp_path / "upgrade.pcap", pkts))
    assert not rejected
    seen = {(get_field(e, "http.version"), get_field(e, "url.original"),
             get_field(e, "http.response.status_code"))
            for e in by_dataset(events, "network.http")}
    # the upgraded request is answered on stream 1, the next request on stream 3
    assert seen == {("1.1", "/index", 101), ("2", "/index", 200), ("2", "/second", 204)}
    (upgraded,) = [e for e in by_dataset(events, "network.http")
                   if get_field(e, "http.response.status_code") == 200]
    assert get_field(upgraded, "url.domain") == "up.example.gov"
    assert get_field(upgraded, "http.request.method") == "GET"
    assert get_field(upgraded, "http.response.body.bytes") == 5
    ids = [get_field(e, "event.id") for e in events]
    assert len(ids) == len(set(ids))
