"""Selective packet decoding: link, IP and transport headers straight from raw bytes.

Full dissection (scapy's ``Ether(raw)``) costs about 300 µs a packet; a sensor has a
few µs. This module reads only the header fields the flow table and the protocol
parsers need, with ``struct.unpack_from`` on the captured bytes, and hands back the
transport payload as a slice.

:func:`decode` returns a :data:`Decoded` tuple, or a reason string (one of
:data:`DECODE_REASONS`) naming why the packet could not be decoded. A reason is a
counted outcome, not an exception: bad packets are normal input on a wire.
"""

from __future__ import annotations

from struct import Struct, unpack_from
from typing import NamedTuple

# link types (https://www.tcpdump.org/linktypes.html)
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_PPP = 9
LINKTYPE_RAW = 101
LINKTYPE_C_HDLC = 104
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_LINUX_SLL2 = 276
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229

SUPPORTED_LINKTYPES = frozenset({
    LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_PPP, LINKTYPE_RAW, LINKTYPE_C_HDLC,
    LINKTYPE_LOOP, LINKTYPE_LINUX_SLL, LINKTYPE_LINUX_SLL2, LINKTYPE_IPV4, LINKTYPE_IPV6,
})

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_GRE = 47
PROTO_ICMPV6 = 58

# TCP flags
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10

#: every reason :func:`decode` may give for a packet it could not decode
DECODE_REASONS = (
    "truncated_link_header", "unsupported_ethertype", "truncated_ip_header",
    "bad_ip_version", "bad_ip_header_length", "truncated_transport_header",
    "bad_tcp_header_length", "unsupported_ip_protocol", "unsupported_linktype",
    "tunnel_too_deep",
)

_IPV6_EXT_HEADERS = frozenset({0, 43, 60, 51})  # hop-by-hop, routing, dest options, AH
_IPV6_FRAGMENT = 44


class Decoded(NamedTuple):
    """The header fields of one IP packet that the collector uses."""

    proto: int        # IP protocol number (6 TCP, 17 UDP, 1/58 ICMP, others)
    src: bytes        # 4 or 16 address bytes
    dst: bytes
    sport: int        # ICMP: type
    dport: int        # ICMP: code
    flags: int        # TCP flags, 0 otherwise
    seq: int
    ack: int
    payload: bytes    # transport payload as captured (may be shorter than on the wire)
    ip_len: int       # IP total length from the header (on-the-wire size)
    payload_len: int  # transport payload length per the headers (on-the-wire size)
    vlan: int         # outermost VLAN id, -1 when untagged
    window: int


class Fragment(NamedTuple):
    """One fragment of an IP datagram, for :mod:`collectors.network.defrag`."""

    version: int      # 4 or 6
    src: bytes
    dst: bytes
    ident: int        # identification (IPv4 16 bits, IPv6 32 bits)
    proto: int        # IPv4 protocol; IPv6 next header after the fragment header
    offset: int       # in bytes
    more: bool        # more fragments follow
    data: bytes       # fragment payload as captured
    wire_len: int     # fragment payload length per the headers
    vlan: int


# Ethernet + 20-byte IPv4 header + the first 20 bytes of the transport header, in one
# unpack: the shape of most packets on a wire. Fields: ethertype, version/IHL, total
# length, fragment word, protocol, source, destination, then TCP's ports, sequence,
# acknowledgment, offset/flags and window (UDP uses the ports only).
_ETH_IPV4_L4 = Struct("!12xHBxH2xHxB2x4s4sHHIIHH").unpack_from
_new_tuple = tuple.__new__


def decode(linktype: int, data: bytes) -> Decoded | Fragment | str:
    """Decode one captured frame of ``linktype``: its headers, a fragment to
    reassemble, or a reason string when it cannot be decoded."""
    if linktype == 1 and len(data) >= 54:
        (etype, vihl, total, frag, proto, src, dst, sport, dport, seq, ack, offflags,
         window) = _ETH_IPV4_L4(data)
        if etype == 0x0800 and vihl == 0x45 and not frag & 0x3FFF:
            end = 14 + total
            if end > len(data):
                end = len(data)
            if proto == 6 and total >= 40:
                hlen = (offflags >> 12) * 4
                if hlen >= 20:
                    plen = total - 20 - hlen
                    return _new_tuple(Decoded, (
                        6, src, dst, sport, dport, offflags & 0x3F, seq, ack,
                        data[34 + hlen:end], total, plen if plen > 0 else 0, -1, window))
            elif proto == 17 and total >= 28:
                return _new_tuple(Decoded, (
                    17, src, dst, sport, dport, 0, 0, 0, data[42:end], total, total - 28,
                    -1, 0))
    vlan = -1
    if linktype == LINKTYPE_ETHERNET:
        if len(data) < 14:
            return "truncated_link_header"
        etype = (data[12] << 8) | data[13]
        off = 14
        while etype == 0x8100 or etype == 0x88A8 or etype == 0x9100:
            if len(data) < off + 4:
                return "truncated_link_header"
            if vlan < 0:
                vlan = ((data[off] << 8) | data[off + 1]) & 0x0FFF
            etype = (data[off + 2] << 8) | data[off + 3]
            off += 4
        if etype == 0x0800:
            return _ipv4(data, off, vlan, 0)
        if etype == 0x86DD:
            return _ipv6(data, off, vlan, 0)
        if etype == 0x8864:  # PPPoE session
            if len(data) < off + 8:
                return "truncated_link_header"
            return _ppp_payload(data, off + 6, vlan)
        return "unsupported_ethertype"
    if linktype in (LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6):
        if not data:
            return "truncated_ip_header"
        version = data[0] >> 4
        if version == 4:
            return _ipv4(data, 0, vlan, 0)
        if version == 6:
            return _ipv6(data, 0, vlan, 0)
        return "bad_ip_version"
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if len(data) < 4:
            return "truncated_link_header"
        family = unpack_from("<I", data, 0)[0]
        if family > 0xFFFF:  # written in the other byte order
            family = unpack_from(">I", data, 0)[0]
        if family == 2:
            return _ipv4(data, 4, vlan, 0)
        if family in (10, 24, 28, 30):  # AF_INET6 on Linux, BSDs, macOS
            return _ipv6(data, 4, vlan, 0)
        return "unsupported_ethertype"
    if linktype == LINKTYPE_LINUX_SLL:
        if len(data) < 16:
            return "truncated_link_header"
        etype = (data[14] << 8) | data[15]
        return _by_ethertype(data, 16, etype, vlan)
    if linktype == LINKTYPE_LINUX_SLL2:
        if len(data) < 20:
            return "truncated_link_header"
        etype = (data[0] << 8) | data[1]
        return _by_ethertype(data, 20, etype, vlan)
    if linktype == LINKTYPE_C_HDLC:
        if len(data) < 4:
            return "truncated_link_header"
        etype = (data[2] << 8) | data[3]
        return _by_ethertype(data, 4, etype, vlan)
    if linktype == LINKTYPE_PPP:
        return _ppp_payload(data, 0, vlan)
    return "unsupported_linktype"


def decode_datagram(datagram: bytes, vlan: int = -1) -> Decoded | Fragment | str:
    """Decode a bare IP datagram (one reassembled from fragments)."""
    if not datagram:
        return "truncated_ip_header"
    if datagram[0] >> 4 == 4:
        return _ipv4(datagram, 0, vlan, 0)
    return _ipv6(datagram, 0, vlan, 0)


def _by_ethertype(data: bytes, off: int, etype: int, vlan: int) -> Decoded | Fragment | str:
    if etype == 0x0800:
        return _ipv4(data, off, vlan, 0)
    if etype == 0x86DD:
        return _ipv6(data, off, vlan, 0)
    return "unsupported_ethertype"


def _ppp_payload(data: bytes, off: int, vlan: int) -> Decoded | Fragment | str:
    if len(data) < off + 2:
        return "truncated_link_header"
    if data[off] == 0xFF and data[off + 1] == 0x03:  # HDLC address/control
        off += 2
        if len(data) < off + 2:
            return "truncated_link_header"
    # the protocol field is one byte when its low bit is set (RFC 1661 compression)
    if data[off] & 1:
        proto = data[off]
        off += 1
    else:
        proto = (data[off] << 8) | data[off + 1]
        off += 2
    if proto == 0x21:
        return _ipv4(data, off, vlan, 0)
    if proto == 0x57:
        return _ipv6(data, off, vlan, 0)
    return "unsupported_ethertype"


def _ipv4(data: bytes, off: int, vlan: int, depth: int) -> Decoded | Fragment | str:
    if len(data) < off + 20:
        return "truncated_ip_header"
    vihl = data[off]
    if vihl >> 4 != 4:
        return "bad_ip_version"
    ihl = (vihl & 0x0F) * 4
    if ihl < 20:
        return "bad_ip_header_length"
    total, ident, frag, proto = unpack_from("!HHH1xB", data, off + 2)
    if total < ihl:
        total = len(data) - off  # TSO captures carry 0 here
    if frag & 0x3FFF:  # MF set or a non-zero offset
        end = off + total
        return Fragment(4, data[off + 12:off + 16], data[off + 16:off + 20], ident, proto,
                        (frag & 0x1FFF) * 8, bool(frag & 0x2000), data[off + ihl:end],
                        total - ihl, vlan)
    src = data[off + 12:off + 16]
    dst = data[off + 16:off + 20]
    start = off + ihl
    end = off + total
    if end > len(data):
        end = len(data)
    return _transport(data, start, end, proto, src, dst, total, total - ihl, vlan, depth)


def _ipv6(data: bytes, off: int, vlan: int, depth: int) -> Decoded | Fragment | str:
    if len(data) < off + 40:
        return "truncated_ip_header"
    if data[off] >> 4 != 6:
        return "bad_ip_version"
    plen = (data[off + 4] << 8) | data[off + 5]
    nxt = data[off + 6]
    src = data[off + 8:off + 24]
    dst = data[off + 24:off + 40]
    start = off + 40
    remaining = plen
    while nxt in _IPV6_EXT_HEADERS or nxt == _IPV6_FRAGMENT:
        if len(data) < start + 8:
            return "truncated_ip_header"
        if nxt == _IPV6_FRAGMENT:
            frag = (data[start + 2] << 8) | data[start + 3]
            if frag & 0xFFF9:  # offset or M flag: a real fragment
                end = start + max(remaining, 0)
                return Fragment(6, src, dst, unpack_from("!I", data, start + 4)[0],
                                data[start], frag & 0xFFF8, bool(frag & 1),
                                data[start + 8:end], max(remaining - 8, 0), vlan)
            hlen = 8
        elif nxt == 51:
            hlen = (data[start + 1] + 2) * 4
        else:
            hlen = (data[start + 1] + 1) * 8
        nxt = data[start]
        start += hlen
        remaining -= hlen
    end = start + max(remaining, 0)
    if end > len(data):
        end = len(data)
    return _transport(data, start, end, nxt, src, dst, plen + 40, remaining, vlan, depth)


def _transport(data: bytes, start: int, end: int, proto: int, src: bytes, dst: bytes,
               ip_len: int, l4_len: int, vlan: int, depth: int) -> Decoded | Fragment | str:
    if proto == PROTO_TCP:
        if end - start < 20:
            return "truncated_transport_header"
        sport, dport, seq, ack, offflags, window = unpack_from("!HHIIHH", data, start)
        hlen = (offflags >> 12) * 4
        if hlen < 20:
            return "bad_tcp_header_length"
        return Decoded(proto, src, dst, sport, dport, offflags & 0x3F, seq, ack,
                       data[start + hlen:end], ip_len, max(l4_len - hlen, 0), vlan, window)
    if proto == PROTO_UDP:
        if end - start < 8:
            return "truncated_transport_header"
        sport, dport = unpack_from("!HH", data, start)
        return Decoded(proto, src, dst, sport, dport, 0, 0, 0, data[start + 8:end], ip_len,
                       max(l4_len - 8, 0), vlan, 0)
    if proto in (PROTO_ICMP, PROTO_ICMPV6):
        if end - start < 4:
            return "truncated_transport_header"
        return Decoded(proto, src, dst, data[start], data[start + 1], 0, 0, 0,
                       data[start + 4:end], ip_len, max(l4_len - 4, 0), vlan, 0)
    if proto == PROTO_GRE:
        return _gre(data, start, end, src, dst, ip_len, l4_len, vlan, depth)
    if proto == 4 and depth < 3:  # IP in IP
        return _ipv4(data[:end], start, vlan, depth + 1)
    if proto == 41 and depth < 3:  # IPv6 in IP
        return _ipv6(data[:end], start, vlan, depth + 1)
    return Decoded(proto, src, dst, 0, 0, 0, 0, 0, b"", ip_len, l4_len, vlan, 0)


def _gre(data: bytes, start: int, end: int, src: bytes, dst: bytes, ip_len: int,
         l4_len: int, vlan: int, depth: int) -> Decoded | Fragment | str:
    """Decapsulate GRE carrying IP or Ethernet; the outer packet otherwise."""
    if end - start < 4 or depth >= 3:
        return Decoded(PROTO_GRE, src, dst, 0, 0, 0, 0, 0, b"", ip_len, l4_len, vlan, 0)
    flags = data[start]
    etype = (data[start + 2] << 8) | data[start + 3]
    off = start + 4
    if flags & 0x80:  # checksum present
        off += 4
    if flags & 0x20:  # key
        off += 4
    if flags & 0x10:  # sequence number
        off += 4
    if data[start + 1] & 0x07 == 1:  # enhanced GRE (PPTP) carries PPP, not plain IP
        return Decoded(PROTO_GRE, src, dst, 0, 0, 0, 0, 0, b"", ip_len, l4_len, vlan, 0)
    inner = data[:end]
    if etype == 0x0800:
        return _ipv4(inner, off, vlan, depth + 1)
    if etype == 0x86DD:
        return _ipv6(inner, off, vlan, depth + 1)
    if etype == 0x6558 and end - off >= 14:  # transparent Ethernet bridging
        inner_type = (inner[off + 12] << 8) | inner[off + 13]
        return _by_ethertype(inner, off + 14, inner_type, vlan)
    return Decoded(PROTO_GRE, src, dst, 0, 0, 0, 0, 0, b"", ip_len, l4_len, vlan, 0)
