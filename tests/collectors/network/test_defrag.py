"""IP fragment reassembly: DNS and HTTP carried in fragmented datagrams are decoded;
ambiguous overlaps, oversize and incomplete datagrams are refused, counted and
flagged, and pending fragments stay within their bounds."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP, fragment
from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from collectors.network import NetworkSensor, SensorSettings
from collectors.network.decode import Fragment, decode
from collectors.network.defrag import Defragmenter
from govsoc.events import get_field, validate_event
from tests.collectors.network import pcapgen
from tests.collectors.network.test_collector import by_dataset, ingest

ETH = Ether(**pcapgen.MACS)
T0 = 1_700_000_000.0
NAME = "records.portal.example.gov"


def _timed(packets: list, t0: float = T0, step: float = 0.001) -> list:
    for i, pkt in enumerate(packets):
        pkt.time = t0 + i * step
    return packets


def _big_dns_response(ident: int = 4242) -> IP:
    """A DNS answer of about 3 KiB: too large for one 1500-byte frame."""
    answers = [DNSRR(rrname=NAME, type="TXT", ttl=60, rdata=f"v=record{i};" + "x" * 240)
               for i in range(12)]
    return IP(src="192.0.2.53", dst=pcapgen.CLIENT, id=ident) / UDP(sport=53, dport=33000) / \
        DNS(id=77, qr=1, rd=1, ra=1, qd=DNSQR(qname=NAME, qtype="TXT"), an=answers)


def _dns_query() -> Ether:
    return ETH / IP(src=pcapgen.CLIENT, dst="192.0.2.53") / UDP(sport=33000, dport=53) / \
        DNS(id=77, rd=1, qd=DNSQR(qname=NAME, qtype="TXT"))


def test_fragmented_dns_response_out_of_order_is_reassembled(tmp_path):
    frags = [ETH / f for f in fragment(_big_dns_response(), fragsize=800)]
    assert len(frags) >= 4
    frags = [frags[2], frags[0], *frags[3:], frags[1]]  # arrival out of order
    events, rejected, source = ingest(pcapgen.write(tmp_path / "dns-frag.pcap",
                                                    _timed([_dns_query(), *frags])))
    assert not rejected
    for event in events:
        validate_event(event)
    (dns,) = by_dataset(events, "network.dns")
    assert get_field(dns, "dns.question.name") == NAME
    assert get_field(dns, "dns.type") == "answer"
    answers = get_field(dns, "dns.answers")
    assert len(answers) == 12 and answers[11]["data"].startswith("v=record11;")
    (conn,) = by_dataset(events, "network.connection")
    assert get_field(conn, "network.connection.state") == "SF"
    assert get_field(conn, "destination.packets") == 1  # one datagram, however many fragments
    assert source.sensor.defrag.reassembled == 1
    assert source.sensor.defrag.fragments == len(frags)
    assert not source.sensor.defrag.pending


def test_fragmented_ipv6_dns_query_is_reassembled(tmp_path):
    packet = IPv6(src="2001:db8::5", dst="2001:db8::53") / IPv6ExtHdrFragment(id=0x1234) / \
        UDP(sport=33001, dport=53) / DNS(id=9, rd=1, qd=DNSQR(qname="v6." + NAME),
                                         ar=DNSRR(rrname=".", type="TXT", rdata="p" * 2000))
    frags = [ETH / f for f in fragment6(packet, 1280)]
    assert len(frags) >= 2
    events, rejected, _ = ingest(pcapgen.write(tmp_path / "dns6-frag.pcap",
                                               _timed(frags[::-1])))
    assert not rejected
    (dns,) = by_dataset(events, "network.dns")
    assert get_field(dns, "dns.question.name") == "v6." + NAME
    assert get_field(dns, "source.ip") == "2001:db8::5"
    assert get_field(dns, "network.type") == "ipv6"


def test_http_request_in_fragmented_tcp_segments_is_decoded(tmp_path):
    client, server = pcapgen.CLIENT, pcapgen.SERVER
    request = (b"POST /upload/form HTTP/1.1\r\nHost: intake.example.gov\r\n"
               b"User-Agent: frag-client/2.0\r\nContent-Length: 2000\r\n\r\n" + b"b" * 2000)
    response = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"

    def seg(src, dst, sport, dport, flags, seq, ack, payload=b""):
        pkt = IP(src=src, dst=dst, id=seq & 0xFFFF) / TCP(sport=sport, dport=dport,
                                                           flags=flags, seq=seq, ack=ack)
        return pkt / Raw(payload) if payload else pkt

    pkts = [ETH / seg(client, server, 40100, 80, "S", 100, 0),
            ETH / seg(server, client, 80, 40100, "SA", 900, 101),
            ETH / seg(client, server, 40100, 80, "A", 101, 901)]
    pkts += [ETH / f for f in fragment(seg(client, server, 40100, 80, "PA", 101, 901,
                                           request), fragsize=600)]
    pkts += [ETH / seg(server, client, 80, 40100, "PA", 901, 101 + len(request), response),
             ETH / seg(client, server, 40100, 80, "FA", 101 + len(request),
                       901 + len(response)),
             ETH / seg(server, client, 80, 40100, "FA", 901 + len(response),
                       102 + len(request))]
    events, rejected, _ = ingest(pcapgen.write(tmp_path / "http-frag.pcap", _timed(pkts)))
    assert not rejected
    (http,) = by_dataset(events, "network.http")
    assert get_field(http, "url.path") == "/upload/form"
    assert get_field(http, "url.domain") == "intake.example.gov"
    assert get_field(http, "user_agent.original") == "frag-client/2.0"
    assert get_field(http, "http.response.status_code") == 201
    assert get_field(http, "http.request.body.bytes") == 2000
    (conn,) = by_dataset(events, "network.connection")
    assert get_field(conn, "network.connection.orig_bytes") == len(request)


def test_identical_overlap_is_a_harmless_retransmission(tmp_path):
    frags = [ETH / f for f in fragment(_big_dns_response(), fragsize=800)]
    events, rejected, source = ingest(pcapgen.write(
        tmp_path / "dup.pcap", _timed([_dns_query(), frags[0], frags[1], frags[1].copy(),
                                       frags[0].copy(), *frags[2:]])))
    assert not rejected
    (dns,) = by_dataset(events, "network.dns")
    assert len(get_field(dns, "dns.answers")) == 12
    assert source.problems["fragment_overlap"] == 0


def test_conflicting_overlap_is_refused_counted_and_flagged(tmp_path):
    """Teardrop-style evasion: a second copy of bytes 800.. carries something else.
    Which copy a host keeps depends on its stack, so the sensor decodes neither."""
    frags = [ETH / f for f in fragment(_big_dns_response(), fragsize=800)]
    forged = frags[1].copy()
    forged[IP].remove_payload()
    forged = forged / Raw(b"\x00" * 800)
    forged[IP].proto = 17  # emptying the layer reset it
    del forged[IP].len, forged[IP].chksum
    forged = Ether(bytes(forged))
    assert forged[IP].frag == frags[1][IP].frag and bytes(forged[IP].payload) != \
        bytes(frags[1][IP].payload)
    pkts = _timed([_dns_query(), frags[0], frags[1], forged, *frags[2:]])
    after = pcapgen.dns_exchange(pcapgen.CLIENT, "192.0.2.53", "after.example.gov",
                                 "198.51.100.4", 5, T0 + 1, sport=33002)
    events, rejected, source = ingest(pcapgen.write(tmp_path / "overlap.pcap",
                                                    pkts + after))
    assert source.problems["fragment_overlap"] == 1
    assert any(r.reason.startswith("fragment_overlap") for r in rejected)
    dns = by_dataset(events, "network.dns")
    # the query still goes unanswered; the datagram itself is never decoded
    assert {get_field(e, "dns.type") for e in dns if get_field(e, "dns.id") == "77"} == \
        {"query"}
    assert any(get_field(e, "dns.question.name") == "after.example.gov" for e in dns)
    (flag,) = [e for e in by_dataset(events, "network.scan")
               if get_field(e, "event.action") == "fragment_anomaly"]
    validate_event(flag)
    assert get_field(flag, "source.ip") == "192.0.2.53"
    assert get_field(flag, "scan.fragment_anomalies") == 1
    assert not source.sensor.defrag.pending


def test_partial_overlap_with_different_bytes_is_refused():
    defrag = Defragmenter()
    flagged = []
    defrag.on_suspicious = lambda reason, frag, ts: flagged.append(reason)
    src, dst = b"\x0a\x00\x00\x01", b"\x0a\x00\x00\x02"
    assert defrag.add(Fragment(4, src, dst, 1, 17, 0, True, b"a" * 16, 16, -1), T0) is None
    assert defrag.add(Fragment(4, src, dst, 1, 17, 8, True, b"a" * 4 + b"b" * 12, 16, -1),
                      T0) is None
    # the rest of the datagram does not revive it
    assert defrag.add(Fragment(4, src, dst, 1, 17, 24, False, b"c" * 4, 4, -1), T0) is None
    assert flagged == ["fragment_overlap"]


def test_ping_of_death_and_odd_lengths_are_refused(tmp_path):
    ping = IP(src="203.0.113.9", dst=pcapgen.SERVER, id=31) / ICMP() / Raw(b"\x00" * 1472)
    frags = [ETH / f for f in fragment(ping, fragsize=1480)]
    last = frags[-1].copy()
    last[IP].frag = 8189  # offset 65,512: the datagram would exceed 65,535 bytes
    del last[IP].chksum
    odd = ETH / IP(src="203.0.113.9", dst=pcapgen.SERVER, id=32, flags="MF", proto=17) / \
        Raw(b"x" * 13)  # a non-final fragment must be a multiple of 8 bytes long
    _events, rejected, source = ingest(pcapgen.write(
        tmp_path / "pod.pcap", _timed([frags[0], Ether(bytes(last)), odd])))
    assert source.problems["fragment_oversize"] == 1
    assert source.problems["fragment_bad_length"] == 1
    assert {r.reason.split(":")[0] for r in rejected} >= {"fragment_oversize",
                                                          "fragment_bad_length"}


def test_incomplete_datagram_times_out_and_nothing_is_invented(tmp_path):
    frags = [ETH / f for f in fragment(_big_dns_response(), fragsize=800)]
    missing_middle = [frags[0], *frags[2:]]
    late = [ETH / f for f in fragment(_big_dns_response(ident=4343), fragsize=800)]
    # the second datagram's fragments are a minute apart: longer than the timeout
    pkts = _timed([_dns_query(), *missing_middle]) + _timed(late, T0 + 10, 31.0)
    events, rejected, source = ingest(pcapgen.write(tmp_path / "incomplete.pcap", pkts))
    assert not rejected
    assert [get_field(e, "dns.type") for e in by_dataset(events, "network.dns")] == ["query"]
    assert source.problems["fragment_timeout"] == 1 + len(late)
    assert source.sensor.defrag.reassembled == 0
    assert not source.sensor.defrag.pending


def test_fragment_flood_stays_within_its_bounds():
    settings = SensorSettings(max_fragmented_datagrams=50, max_fragment_bytes=40_000,
                              max_fragments=8)
    sensor = NetworkSensor("flood", settings=settings)
    for i in range(2000):  # first fragments of datagrams that never complete
        pkt = ETH / IP(src="203.0.113.7", dst=pcapgen.SERVER, id=i, flags="MF", proto=17) / \
            Raw(b"f" * 1000)
        sensor.packet(T0 + i * 1e-4, 1, bytes(pkt))
        assert len(sensor.defrag.pending) <= 50
        assert sensor.defrag.bytes <= 40_000
    many = [Fragment(4, b"\x01\x02\x03\x04", b"\x05\x06\x07\x08", 7, 17, 8 * i, True,
                     b"m" * 8, 8, -1) for i in range(20)]
    for frag in many:
        sensor.defrag.add(frag, T0 + 1)
    assert sensor.problems["fragment_limit"] > 0
    assert all(len(d.parts) <= 8 for d in sensor.defrag.pending.values())


def test_unfragmented_packets_are_untouched():
    pkt = ETH / IP(src=pcapgen.CLIENT, dst=pcapgen.SERVER, flags="DF") / UDP(sport=1, dport=2)
    assert not isinstance(decode(1, bytes(pkt)), Fragment | str)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
def test_agrees_with_tshark_on_fragmented_dns(tmp_path):
    """tshark reassembles IP fragments too: the names read from the same fragmented
    capture must match."""
    pkts = []
    for i in range(6):
        name = f"n{i}.frag.example.gov"
        query = IP(src=pcapgen.CLIENT, dst="192.0.2.53", id=100 + i) / \
            UDP(sport=34000 + i, dport=53) / DNS(id=i, rd=1, qd=DNSQR(qname=name),
                                                ar=DNSRR(rrname=".", type="TXT",
                                                         rdata="q" * (600 * i + 100)))
        pkts += [ETH / f for f in fragment(query, fragsize=400 + 8 * i)]
    path = pcapgen.write(tmp_path / "tshark.pcap", _timed(pkts))
    out = subprocess.run(["tshark", "-n", "-r", str(path), "-o", "ip.defragment:TRUE",
                          "-Y", "dns", "-T", "fields", "-e", "dns.qry.name"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    expected = sorted(line for line in out.split() if line)
    events, rejected, _ = ingest(path)
    assert not rejected
    names = sorted(get_field(e, "dns.question.name") for e in by_dataset(events, "network.dns"))
    assert names == expected and len(names) == 6
