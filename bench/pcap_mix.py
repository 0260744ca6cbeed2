"""A deterministic mixed capture for the network benchmarks, built with scapy.

Sessions are built once per variant with scapy (Ether/IP/TCP/UDP/ICMP/DNS layers,
hand-built TLS hellos and SSH banners as payload), then replayed many times with
the client address and port rewritten in place, so a few hundred thousand packets
take seconds to write. The mix, by packets: HTTP/1.1 exchanges with bodies, TLS
handshakes followed by encrypted records, DNS queries and answers, SSH sessions,
bulk transfers on an unrecognised port, ICMP echoes, NTP, and a port scan answered
with RSTs. The output is a classic pcap; the same arguments give the same bytes.

Usage: ``python bench/pcap_mix.py OUT.pcap [--packets N]``.
"""

from __future__ import annotations

import argparse
import random
import struct
from collections.abc import Iterator

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

SERVER_NET = "198.51.100."
Template = list[tuple[float, bool, bytes]]  # (time offset, from client, frame)


def _tls_client_hello(sni: str, rng: random.Random) -> bytes:
    def ext(kind: int, body: bytes) -> bytes:
        return struct.pack("!HH", kind, len(body)) + body
    name = sni.encode()
    exts = (ext(0, struct.pack("!HBH", len(name) + 3, 0, len(name)) + name)
            + ext(10, struct.pack("!H", 6) + struct.pack("!HHH", 29, 23, 24))
            + ext(11, b"\x01\x00")
            + ext(13, struct.pack("!H", 6) + struct.pack("!HHH", 0x0403, 0x0804, 0x0401))
            + ext(16, b"\x00\x0c\x02h2\x08http/1.1")
            + ext(43, b"\x04\x03\x04\x03\x03"))
    ciphers = [0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0x009E]
    body = (b"\x03\x03" + bytes(rng.getrandbits(8) for _ in range(32)) + b"\x00"
            + struct.pack("!H", 2 * len(ciphers)) + b"".join(struct.pack("!H", c)
                                                             for c in ciphers)
            + b"\x01\x00" + struct.pack("!H", len(exts)) + exts)
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x01" + struct.pack("!H", len(hs)) + hs


def _tls_server_hello(rng: random.Random) -> bytes:
    exts = struct.pack("!HHH", 43, 2, 0x0304)
    body = (b"\x03\x03" + bytes(rng.getrandbits(8) for _ in range(32)) + b"\x00"
            + struct.pack("!H", 0x1301) + b"\x00" + struct.pack("!H", len(exts)) + exts)
    hs = b"\x02" + struct.pack("!I", len(body))[1:] + body
    return b"\x16\x03\x03" + struct.pack("!H", len(hs)) + hs + b"\x14\x03\x03\x00\x01\x01"


def _tcp_session(client: str, server: str, sport: int, dport: int,
                 exchanges: list[tuple[bytes, list[bytes]]], mss: int = 1400) -> Template:
    """Handshake, request/response exchanges (responses split at mss), FIN close."""
    out: Template = []
    t = 0.0
    cseq, sseq = 1000, 9000
    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")

    def c2s(flags: str, payload: bytes = b"") -> None:
        nonlocal t, cseq
        t += 0.0004
        pkt = eth / IP(src=client, dst=server) / TCP(sport=sport, dport=dport, flags=flags,
                                                       seq=cseq, ack=sseq)
        out.append((t, True, bytes(pkt / Raw(payload)) if payload else bytes(pkt)))
        cseq += len(payload) + (1 if "S" in flags or "F" in flags else 0)

    def s2c(flags: str, payload: bytes = b"") -> None:
        nonlocal t, sseq
        t += 0.0004
        pkt = eth / IP(src=server, dst=client) / TCP(sport=dport, dport=sport, flags=flags,
                                                       seq=sseq, ack=cseq)
        out.append((t, False, bytes(pkt / Raw(payload)) if payload else bytes(pkt)))
        sseq += len(payload) + (1 if "S" in flags or "F" in flags else 0)

    c2s("S")
    s2c("SA")
    c2s("A")
    for request, responses in exchanges:
        if request:
            c2s("PA", request)
        for response in responses:
            for i in range(0, len(response), mss):
                s2c("PA" if i + mss >= len(response) else "A", response[i:i + mss])
            c2s("A")
    c2s("FA")
    s2c("FA")
    c2s("A")
    return out


def build_templates(rng: random.Random) -> dict[str, list[Template]]:
    client = "10.0.0.1"
    templates: dict[str, list[Template]] = {k: [] for k in
                                            ("http", "tls", "dns", "ssh", "bulk", "icmp", "ntp")}
    for i in range(40):
        host = f"svc{i}.portal.example.gov"
        body = bytes(rng.getrandbits(8) for _ in range(rng.choice((300, 2500, 6000))))
        request = (f"GET /api/v1/records/{i}?page={i % 7} HTTP/1.1\r\nHost: {host}\r\n"
                   f"User-Agent: Mozilla/5.0 (bench {i})\r\nAccept: */*\r\n\r\n").encode()
        response = (b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                    b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        templates["http"].append(_tcp_session(client, f"{SERVER_NET}{10 + i}", 40000, 80,
                                              [(request, [response])]))
        sni = f"app{i}.dichvucong.example.vn"
        app_data = [b"\x17\x03\x03" + struct.pack("!H", 1200) +
                    bytes(rng.getrandbits(8) for _ in range(1200)) for _ in range(3)]
        templates["tls"].append(_tcp_session(
            client, f"{SERVER_NET}{60 + i}", 40000, 443,
            [(_tls_client_hello(sni, rng), [_tls_server_hello(rng)]),
             (app_data[0][:300], app_data[1:])]))
        name = f"host{i}.mail.example.gov"
        q = Ether() / IP(src=client, dst="198.51.100.53") / UDP(sport=40000, dport=53) / DNS(
            id=i, rd=1, qd=DNSQR(qname=name))
        r = Ether() / IP(src="198.51.100.53", dst=client) / UDP(sport=53, dport=40000) / DNS(
            id=i, qr=1, rd=1, ra=1, qd=DNSQR(qname=name),
            an=DNSRR(rrname=name, rdata=f"203.0.113.{i}", ttl=60))
        templates["dns"].append([(0.0, True, bytes(q)), (0.0007, False, bytes(r))])
    for i in range(8):
        blob = [bytes(rng.getrandbits(8) for _ in range(rng.choice((200, 600))))
                for _ in range(4)]
        templates["ssh"].append(_tcp_session(
            client, f"{SERVER_NET}{120 + i}", 40000, 22,
            [(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n", [b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3\r\n"]),
             (blob[0], [blob[1]]), (blob[2], [blob[3]])]))
        chunk = bytes(rng.getrandbits(8) for _ in range(60_000))
        templates["bulk"].append(_tcp_session(client, f"{SERVER_NET}{140 + i}", 40000, 9000,
                                              [(b"\x00\x01fetch", [chunk])]))
        a = Ether() / IP(src=client, dst=f"{SERVER_NET}{160 + i}") / ICMP(id=i, seq=1) / \
            Raw(b"x" * 56)
        b = Ether() / IP(src=f"{SERVER_NET}{160 + i}", dst=client) / ICMP(type=0, id=i,
                                                                          seq=1) / Raw(b"x" * 56)
        templates["icmp"].append([(0.0, True, bytes(a)), (0.0003, False, bytes(b))])
        n1 = Ether() / IP(src=client, dst=f"{SERVER_NET}{170 + i}") / UDP(sport=40000,
                                                                          dport=123) / \
            Raw(b"\x23" + b"\x00" * 47)
        n2 = Ether() / IP(src=f"{SERVER_NET}{170 + i}", dst=client) / UDP(sport=123,
                                                                          dport=40000) / \
            Raw(b"\x24" + b"\x01" * 47)
        templates["ntp"].append([(0.0, True, bytes(n1)), (0.002, False, bytes(n2))])
    return templates


def _replay(template: Template, client_ip: bytes, client_port: int, start: float
            ) -> Iterator[tuple[float, bytes]]:
    port = struct.pack("!H", client_port)
    for offset, from_client, frame in template:
        data = bytearray(frame)
        if from_client:
            data[26:30] = client_ip
            if data[23] in (6, 17):
                data[34:36] = port
        else:
            data[30:34] = client_ip
            if data[23] in (6, 17):
                data[36:38] = port
        yield start + offset, bytes(data)


def _scan(rng: random.Random, start: float, ports: int) -> Iterator[tuple[float, bytes]]:
    scanner, target = "203.0.113.66", f"{SERVER_NET}200"
    syn = bytes(Ether() / IP(src=scanner, dst=target) / TCP(sport=55555, dport=1, flags="S"))
    rst = bytes(Ether() / IP(src=target, dst=scanner) / TCP(sport=1, dport=55555, flags="RA"))
    for i, port in enumerate(rng.sample(range(1, 65535), ports)):
        a = bytearray(syn)
        a[36:38] = struct.pack("!H", port)
        b = bytearray(rst)
        b[34:36] = struct.pack("!H", port)
        yield start + i * 0.0005, bytes(a)
        yield start + i * 0.0005 + 0.0001, bytes(b)


WEIGHTS = (("http", 30), ("tls", 25), ("dns", 20), ("ssh", 4), ("bulk", 6), ("icmp", 8),
           ("ntp", 7))


def write_mix(path: str, packets: int = 200_000, seed: int = 7) -> int:
    """Write the capture; returns the number of packets written."""
    rng = random.Random(seed)
    templates = build_templates(rng)
    kinds = [k for k, w in WEIGHTS for _ in range(w)]
    records: list[tuple[float, bytes]] = []
    t = 1_760_000_000.0
    n = 0
    session = 0
    scan_at = packets // 2
    scanned = False
    while n < packets:
        if not scanned and n >= scan_at:
            scanned = True
            records.extend(_scan(rng, t, 1000))
            n += 2000
            continue
        kind = rng.choice(kinds)
        template = rng.choice(templates[kind])
        session += 1
        client = struct.pack("!BBBB", 10, 1 + (session >> 16) % 200, (session >> 8) & 0xFF,
                             session & 0xFF)
        port = 1024 + session % 60000
        records.extend(_replay(template, client, port, t))
        n += len(template)
        # ~250 new sessions a second: flows overlap, and a 200,000-packet capture spans
        # longer than every idle timeout, so memory reaches its steady state
        t += rng.expovariate(250.0)
    records.sort(key=lambda r: r[0])
    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for ts, data in records:
            sec = int(ts)
            fh.write(struct.pack("<IIII", sec, round((ts - sec) * 1e6) % 1_000_000,
                                 len(data), len(data)))
            fh.write(data)
    return len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out")
    parser.add_argument("--packets", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(write_mix(args.out, args.packets, args.seed), "packets written to", args.out)


if __name__ == "__main__":
    main()
