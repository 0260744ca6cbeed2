"""Small captures built with scapy for the network collector's tests."""

from __future__ import annotations

from pathlib import Path

from scapy.layers.dns import DNS, DNSQR, DNSRR
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw
from scapy.utils import wrpcap

CLIENT = "10.0.0.5"
SERVER = "192.0.2.10"
#: explicit addresses: without them scapy tries to resolve MACs over the network
MACS = {"src": "02:00:00:00:00:01", "dst": "02:00:00:00:00:02"}


def tcp_session(client: str, server: str, sport: int, dport: int,
                requests: list[tuple[bytes, bytes]], t0: float = 1_700_000_000.0,
                close: bool = True, segment: int = 0) -> list:
    """A full TCP session: handshake, request/response exchanges, FIN close.

    ``segment`` > 0 splits every payload into segments of that size.
    """
    pkts = []
    t = t0
    cseq, sseq = 1000, 5000

    def add(pkt, dt=0.001):
        nonlocal t
        t += dt
        pkt.time = t
        pkts.append(pkt)

    e = Ether(src="00:00:00:00:00:01", dst="00:00:00:00:00:02")
    c2s = lambda **kw: e / IP(src=client, dst=server) / TCP(sport=sport, dport=dport, **kw)  # noqa: E731
    s2c = lambda **kw: e / IP(src=server, dst=client) / TCP(sport=dport, dport=sport, **kw)  # noqa: E731
    add(c2s(flags="S", seq=cseq))
    add(s2c(flags="SA", seq=sseq, ack=cseq + 1))
    cseq += 1
    sseq += 1
    add(c2s(flags="A", seq=cseq, ack=sseq))
    for request, response in requests:
        for side, data in ((0, request), (1, response)):
            if not data:
                continue
            parts = [data[i:i + segment] for i in range(0, len(data), segment)] if segment \
                else [data]
            for part in parts:
                if side == 0:
                    add(c2s(flags="PA", seq=cseq, ack=sseq) / Raw(part))
                    cseq += len(part)
                else:
                    add(s2c(flags="PA", seq=sseq, ack=cseq) / Raw(part))
                    sseq += len(part)
    if close:
        add(c2s(flags="FA", seq=cseq, ack=sseq))
        add(s2c(flags="FA", seq=sseq, ack=cseq + 1))
        add(c2s(flags="A", seq=cseq + 1, ack=sseq + 1))
    return pkts


def dns_exchange(client: str, server: str, name: str, answer: str, qid: int,
                 t: float, sport: int = 33333) -> list:
    q = Ether(**MACS) / IP(src=client, dst=server) / UDP(sport=sport, dport=53) / DNS(
        id=qid, rd=1, qd=DNSQR(qname=name))
    r = Ether(**MACS) / IP(src=server, dst=client) / UDP(sport=53, dport=sport) / DNS(
        id=qid, qr=1, rd=1, ra=1, qd=DNSQR(qname=name),
        an=DNSRR(rrname=name, type="A", rdata=answer, ttl=300))
    q.time = t
    r.time = t + 0.01
    return [q, r]


def icmp_echo(client: str, server: str, t: float) -> list:
    a = Ether(**MACS) / IP(src=client, dst=server) / ICMP(type=8, id=1, seq=1) / Raw(b"ping")
    b = Ether(**MACS) / IP(src=server, dst=client) / ICMP(type=0, id=1, seq=1) / Raw(b"ping")
    a.time = t
    b.time = t + 0.001
    return [a, b]


def write(path: Path, packets: list) -> Path:
    wrpcap(str(path), sorted(packets, key=lambda p: float(p.time)))
    return path


def write_snapped(path: Path, packets: list, snaplen: int) -> Path:
    """A pcap whose records keep only the first ``snaplen`` bytes of each frame."""
    import struct

    with open(path, "wb") as fh:
        fh.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1))
        for pkt in sorted(packets, key=lambda p: float(p.time)):
            raw = bytes(pkt)
            ts = float(pkt.time)
            fh.write(struct.pack("<IIII", int(ts), int((ts % 1) * 1e6), min(len(raw), snaplen),
                                 len(raw)))
            fh.write(raw[:snaplen])
    return path
