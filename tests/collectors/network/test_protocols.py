"""Connection states, scan counters, TLS fingerprints and community ids."""

from __future__ import annotations

import socket
import struct

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from collectors.network.community_id import community_id
from collectors.network.tls import TlsConnection, is_grease
from govsoc.events import get_field
from tests.collectors.network import pcapgen
from tests.collectors.network.test_collector import by_dataset, ingest

ETH = Ether(**pcapgen.MACS)


def _tcp(src, dst, sport, dport, flags, t, seq=1):
    pkt = ETH / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags, seq=seq,
                                          ack=1 if "A" in flags else 0)
    pkt.time = t
    return pkt


def test_connection_states_follow_zeek(tmp_path):
    c, s = pcapgen.CLIENT, pcapgen.SERVER
    t = 1_700_000_000.0
    pkts = [
        _tcp(c, s, 1001, 80, "S", t),                    # S0: nobody answers
        _tcp(c, s, 1002, 81, "S", t), _tcp(s, c, 81, 1002, "RA", t + 0.1),  # REJ
        _tcp(c, s, 1003, 82, "S", t), _tcp(s, c, 82, 1003, "SA", t + 0.1),
        _tcp(c, s, 1003, 82, "A", t + 0.2), _tcp(c, s, 1003, 82, "R", t + 0.3),  # RSTO
        _tcp(c, s, 1004, 83, "A", t), _tcp(s, c, 83, 1004, "A", t + 0.1),  # OTH
    ]
    events, _, _ = ingest(pcapgen.write(tmp_path / "states.pcap", pkts))
    states = {get_field(e, "destination.port"): get_field(e, "network.connection.state")
              for e in by_dataset(events, "network.connection")}
    assert states == {80: "S0", 81: "REJ", 82: "RSTO", 83: "OTH"}


def test_port_scan_produces_a_scan_event(tmp_path):
    t = 1_700_000_000.0
    pkts = []
    for i, port in enumerate(range(1, 151)):
        pkts.append(_tcp("203.0.113.66", pcapgen.SERVER, 55555, port, "S", t + i * 0.01))
        pkts.append(_tcp(pcapgen.SERVER, "203.0.113.66", port, 55555, "RA", t + i * 0.01 + 0.001))
    events, _, _ = ingest(pcapgen.write(tmp_path / "scan.pcap", pkts))
    (scan,) = by_dataset(events, "network.scan")
    assert get_field(scan, "event.action") == "port_scan"
    assert get_field(scan, "source.ip") == "203.0.113.66"
    assert get_field(scan, "scan.distinct_ports") == 150
    assert get_field(scan, "scan.window_seconds") == 60
    states = {get_field(e, "network.connection.state")
              for e in by_dataset(events, "network.connection")}
    assert states == {"REJ"}


def _client_hello(sni: bytes, ciphers: list[int], exts: list[tuple[int, bytes]]) -> bytes:
    ext_bytes = b"".join(struct.pack("!HH", k, len(v)) + v for k, v in exts)
    body = (b"\x03\x03" + b"\x00" * 32 + b"\x00" + struct.pack("!H", 2 * len(ciphers)) +
            b"".join(struct.pack("!H", c) for c in ciphers) + b"\x01\x00" +
            struct.pack("!H", len(ext_bytes)) + ext_bytes)
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def test_tls_fingerprints_skip_grease_and_follow_their_definitions():
    sni = b"portal.example.gov"
    exts = [(0x0A0A, b""),
            (0, struct.pack("!HBH", len(sni) + 3, 0, len(sni)) + sni),
            (10, b"\x00\x06\x1a\x1a\x00\x1d\x00\x17"),
            (11, b"\x01\x00"),
            (13, b"\x00\x04\x04\x03\x08\x04"),
            (16, b"\x00\x03\x02h2"),
            (43, b"\x04\x03\x04\x03\x03")]
    hello = _client_hello(sni, [0x2A2A, 0x1301, 0xC02F], exts)
    tls = TlsConnection()
    # split across two segments: the record is reassembled
    tls.feed(True, hello[:20], 1.0)
    tls.feed(True, hello[20:], 1.1)
    client = tls.client
    assert client is not None and client.server_name == "portal.example.gov"
    assert client.alpn == ["h2"]
    assert client.ja3_string() == "771,4865-49199,0-10-11-13-16-43,29-23,0"
    assert is_grease(0x2A2A) and not is_grease(0x1301)
    import hashlib

    ja4 = client.ja4()
    ciphers_hash = hashlib.sha256(b"1301,c02f").hexdigest()[:12]
    exts_hash = hashlib.sha256(b"000a,000b,000d,002b_0403,0804").hexdigest()[:12]
    assert ja4 == f"t13d0206h2_{ciphers_hash}_{exts_hash}"


def test_community_id_matches_the_specification_example():
    src = socket.inet_aton("128.232.110.120")
    dst = socket.inet_aton("66.35.250.204")
    assert community_id(src, 34855, dst, 80, 6) == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
    assert community_id(dst, 80, src, 34855, 6) == "1:LQU9qZlK+B5F3KDmev6m5PMibrg="


def test_idle_flows_are_emitted_while_the_capture_runs_and_the_table_stays_bounded():
    from collectors.network.decode import LINKTYPE_ETHERNET
    from collectors.network.sensor import NetworkSensor, SensorSettings

    sensor = NetworkSensor("test", settings=SensorSettings(udp_idle=30.0, max_flows=50))
    t = 1_700_000_000.0
    first = pcapgen.dns_exchange(pcapgen.CLIENT, "192.0.2.53", "a.example.gov", "192.0.2.1",
                                 1, t)
    for pkt in first:
        sensor.packet(float(pkt.time), LINKTYPE_ETHERNET, bytes(pkt))
    assert not any(e["event"]["dataset"] == "network.connection" for e in sensor.events)
    # ten minutes later, other traffic: the first exchange is long idle and is reported
    later = pcapgen.dns_exchange(pcapgen.CLIENT, "192.0.2.53", "b.example.gov", "192.0.2.1",
                                 2, t + 600, sport=40000)
    for pkt in later:
        sensor.packet(float(pkt.time), LINKTYPE_ETHERNET, bytes(pkt))
    conns = [e for e in sensor.events if e["event"]["dataset"] == "network.connection"]
    assert [get_field(e, "source.port") for e in conns] == [33333]
    # many short flows: never more than max_flows active at once
    for i in range(200):
        pkt = _tcp(f"10.9.{i // 250}.{i % 250}", pcapgen.SERVER, 2000, 80, "S", t + 601 + i / 1000)
        sensor.packet(float(pkt.time), LINKTYPE_ETHERNET, bytes(pkt))
        assert sensor.flows.active <= 50
    sensor.flush()
    assert sensor.flows.active == 0
    conns = [e for e in sensor.events if e["event"]["dataset"] == "network.connection"]
    assert len(conns) == 202
