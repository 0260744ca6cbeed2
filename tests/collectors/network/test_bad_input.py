"""Damaged captures and hostile payloads: counted by reason, never fatal, and the
rest of the file still processed."""

from __future__ import annotations

import struct

from scapy.layers.inet import IP, UDP, fragment
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

from collectors.network import PcapFileSource
from govsoc.events import get_field
from tests.collectors.network import pcapgen
from tests.collectors.network.test_collector import HTTP_REQ, HTTP_RESP, by_dataset, ingest

ETH = Ether(**pcapgen.MACS)


def _dns_packets(count: int, t0: float = 1_700_000_000.0) -> list:
    pkts = []
    for i in range(count):
        pkts += pcapgen.dns_exchange(pcapgen.CLIENT, "192.0.2.53", f"n{i}.example.gov",
                                     "198.51.100.1", 100 + i, t0 + i, sport=20000 + i)
    return pkts


def test_truncated_file_keeps_what_was_read(tmp_path):
    path = pcapgen.write(tmp_path / "full.pcap", _dns_packets(10))
    data = path.read_bytes()
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(data[: len(data) - 30])  # the last record loses its tail
    events, rejected, source = ingest(cut)
    names = {get_field(e, "dns.question.name") for e in by_dataset(events, "network.dns")}
    assert {f"n{i}.example.gov" for i in range(9)} <= names
    assert source.problems["truncated_file"] == 1
    assert any("truncated_file" in r.reason for r in rejected)


def test_corrupt_record_header_is_skipped_and_reading_resumes(tmp_path):
    path = pcapgen.write(tmp_path / "ok.pcap", _dns_packets(20))
    data = bytearray(path.read_bytes())
    # corrupt the caplen of the 5th record (records are 16 + caplen bytes)
    off = 24
    for _ in range(4):
        caplen = struct.unpack_from("<I", data, off + 8)[0]
        off += 16 + caplen
    struct.pack_into("<I", data, off + 8, 0x7FFFFFF0)
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(bytes(data))
    events, _rejected, source = ingest(bad)
    names = {get_field(e, "dns.question.name") for e in by_dataset(events, "network.dns")}
    assert source.problems["corrupt_record_header"] >= 1
    # everything after the damaged record is still read
    assert {f"n{i}.example.gov" for i in range(3, 20)} <= names


def test_not_a_capture_and_empty_file_are_rejected_with_the_reason(tmp_path):
    text = tmp_path / "notes.pcap"
    text.write_text("this is not a capture\n")
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(b"")
    for path in (text, empty):
        events, rejected, source = ingest(path)
        assert events == []
        assert len(rejected) == 1 and "not a pcap or pcapng file" in rejected[0].reason
        assert source.problems["unreadable_file"] == 1


def test_unknown_link_type_is_counted_and_dead_letters_are_capped(tmp_path):
    path = tmp_path / "odd.pcap"
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 147))
        for i in range(150):
            fh.write(struct.pack("<IIII", 1_700_000_000 + i, 0, 20, 20) + b"\x01" * 20)
    events, rejected, source = ingest(path)
    assert events == []
    assert source.problems["unsupported_linktype"] == 150
    assert 0 < len(rejected) <= 100


def test_snaplen_truncated_http_response_is_reported_as_truncated(tmp_path):
    pkts = pcapgen.tcp_session(pcapgen.CLIENT, pcapgen.SERVER, 40001, 80,
                               [(HTTP_REQ, HTTP_RESP)])
    events, _rejected, _ = ingest(pcapgen.write_snapped(tmp_path / "snap.pcap", pkts, 200))
    (http,) = by_dataset(events, "network.http")
    assert get_field(http, "url.domain") == "portal.example.gov"
    assert get_field(http, "http.response.status_code") == 200
    (conn,) = by_dataset(events, "network.connection")
    assert get_field(conn, "network.connection.missed_bytes") > 0


def test_retransmitted_and_reordered_segments_reassemble_once(tmp_path):
    pkts = pcapgen.tcp_session(pcapgen.CLIENT, pcapgen.SERVER, 40002, 80,
                               [(HTTP_REQ, HTTP_RESP)], segment=40)
    # request segments are packets 3.. ; swap two and repeat one
    first = 3
    times = [p.time for p in pkts]
    pkts[first + 1], pkts[first + 2] = pkts[first + 2], pkts[first + 1]
    dup = pkts[first].copy()
    pkts.insert(first + 3, dup)
    for p, t in zip(pkts, sorted([*times, times[-1] + 1]), strict=False):
        p.time = t
    path = tmp_path / "reorder.pcap"
    wrpcap(str(path), pkts)
    events, rejected, _ = ingest(path)
    assert not rejected
    (http,) = by_dataset(events, "network.http")
    assert get_field(http, "url.original") == "/files/report.pdf?x=1"
    assert get_field(http, "user_agent.original") == "test-agent/1.0"
    (conn,) = by_dataset(events, "network.connection")
    assert "T" in get_field(conn, "network.connection.history")
    assert get_field(conn, "network.connection.orig_bytes") == len(HTTP_REQ)


def test_ip_fragments_are_reassembled_not_rejected(tmp_path):
    big = ETH / IP(src=pcapgen.CLIENT, dst=pcapgen.SERVER) / UDP(sport=5000, dport=6000) / \
        Raw(b"z" * 3000)
    frags = [ETH / f for f in fragment(big[IP], fragsize=1000)]
    for i, f in enumerate(frags):
        f.time = 1_700_000_000 + i * 0.001
    events, rejected, source = ingest(pcapgen.write(tmp_path / "frag.pcap", frags))
    assert not rejected and not source.problems
    (conn,) = by_dataset(events, "network.connection")
    assert get_field(conn, "source.packets") == 1
    assert get_field(conn, "network.connection.orig_bytes") == 3000


def test_garbage_in_dns_tls_and_http_is_counted_and_the_rest_survives(tmp_path):
    t0 = 1_700_000_000.0
    junk_dns = ETH / IP(src=pcapgen.CLIENT, dst="192.0.2.53") / UDP(sport=999, dport=53) / \
        Raw(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3fabc")
    junk_dns.time = t0
    tls = pcapgen.tcp_session(pcapgen.CLIENT, pcapgen.SERVER, 40003, 443,
                              [(b"\x16\x03\x01\x00\x30\x01\x00\x00\x2c" + b"\xff" * 44, b"")],
                              t0=t0 + 1)
    http = pcapgen.tcp_session(pcapgen.CLIENT, pcapgen.SERVER, 40004, 80,
                               [(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
                                 b"HTTP/1.1 2x\x00\xff garbage\r\n\r\n" + b"\xff" * 40)],
                               t0=t0 + 2)
    good = pcapgen.dns_exchange(pcapgen.CLIENT, "192.0.2.53", "after.example.gov",
                                "198.51.100.9", 7, t0 + 3)
    events, rejected, source = ingest(pcapgen.write(tmp_path / "junk.pcap",
                                                    [junk_dns, *tls, *http, *good]))
    assert source.problems["dns_malformed"] == 1
    assert source.problems["tls_malformed"] >= 1
    assert source.problems["http_malformed"] >= 1
    reasons = " ".join(r.reason for r in rejected)
    assert "dns_malformed" in reasons and "tls_malformed" in reasons
    names = [get_field(e, "dns.question.name") for e in by_dataset(events, "network.dns")]
    assert "after.example.gov" in names
    assert len(by_dataset(events, "network.connection")) == 4


def test_a_hostile_dns_pointer_loop_does_not_hang(tmp_path):
    loop = (b"\x00\x01\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + b"\xc0\x0c" +
            b"\x00\x01\x00\x01")
    pkt = ETH / IP(src="192.0.2.53", dst=pcapgen.CLIENT) / UDP(sport=53, dport=999) / \
        Raw(loop)
    pkt.time = 1_700_000_000.0
    _events, rejected, source = ingest(pcapgen.write(tmp_path / "loop.pcap", [pkt]))
    assert source.problems["dns_malformed"] == 1
    assert "compression pointer loop" in rejected[0].reason


def test_source_is_usable_from_the_pipeline_contract(tmp_path):
    path = pcapgen.write(tmp_path / "d.pcap", _dns_packets(3))
    batches = list(PcapFileSource(str(path), batch_size=2).batches())
    assert sum(len(b.events) for b in batches) == 6  # 3 dns + 3 connections
    assert all(len(b.events) <= 2 for b in batches)

