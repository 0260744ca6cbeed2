"""DNS messages (RFC 1035 and successors): header, question, answers.

:func:`parse_dns` reads one message (the UDP payload, or one length-prefixed
message of a TCP stream) and returns a :class:`DnsMessage`, or raises
:class:`DnsError` with the reason. Name compression pointers are followed with a
hop limit, so a pointer loop is an error, not a hang.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from struct import unpack_from

from govsoc.errors import ParseError

QTYPES = {
    1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 10: "NULL", 12: "PTR", 13: "HINFO", 15: "MX",
    16: "TXT", 17: "RP", 18: "AFSDB", 24: "SIG", 25: "KEY", 28: "AAAA", 29: "LOC", 33: "SRV",
    35: "NAPTR", 36: "KX", 37: "CERT", 39: "DNAME", 41: "OPT", 43: "DS", 44: "SSHFP",
    46: "RRSIG", 47: "NSEC", 48: "DNSKEY", 50: "NSEC3", 51: "NSEC3PARAM", 52: "TLSA",
    64: "SVCB", 65: "HTTPS", 99: "SPF", 249: "TKEY", 250: "TSIG", 251: "IXFR", 252: "AXFR",
    255: "ANY", 256: "URI", 257: "CAA",
}
CLASSES = {1: "IN", 3: "CH", 4: "HS", 254: "NONE", 255: "ANY"}
RCODES = {0: "NOERROR", 1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED",
          6: "YXDOMAIN", 7: "YXRRSET", 8: "NXRRSET", 9: "NOTAUTH", 10: "NOTZONE"}
OPCODES = {0: "QUERY", 1: "IQUERY", 2: "STATUS", 4: "NOTIFY", 5: "UPDATE"}
MAX_NAME = 1025  # longer names are cut (and marked), as resolvers refuse them anyway
MAX_RECORDS = 256


class DnsError(ParseError):
    """A DNS message that cannot be read."""


@dataclass
class DnsAnswer:
    name: str
    type: str
    dns_class: str
    ttl: int
    data: str


@dataclass
class DnsMessage:
    id: int
    is_response: bool
    opcode: str
    rcode: str
    flags: list[str]
    qname: str | None = None
    qtype: str | None = None
    qclass: str | None = None
    answers: list[DnsAnswer] = field(default_factory=list)
    authorities: list[DnsAnswer] = field(default_factory=list)
    name_truncated: bool = False


def type_name(code: int) -> str:
    return QTYPES.get(code, f"TYPE{code}")


def _read_name(msg: bytes, off: int) -> tuple[str, int, bool]:
    """The name at ``off``, the offset after it, and whether it was cut short."""
    labels: list[str] = []
    length = 0
    end = -1
    hops = 0
    truncated = False
    n = len(msg)
    while True:
        if off >= n:
            raise DnsError("name runs past the end of the message")
        size = msg[off]
        if size == 0:
            off += 1
            break
        if size & 0xC0 == 0xC0:
            if off + 1 >= n:
                raise DnsError("truncated compression pointer")
            if end < 0:
                end = off + 2
            hops += 1
            if hops > 64:
                raise DnsError("compression pointer loop")
            off = ((size & 0x3F) << 8) | msg[off + 1]
            continue
        if size & 0xC0:
            raise DnsError(f"unsupported label type 0x{size & 0xC0:02x}")
        label = msg[off + 1:off + 1 + size]
        if len(label) < size:
            raise DnsError("label runs past the end of the message")
        off += 1 + size
        if not truncated:
            text = label.decode("ascii", "backslashreplace")
            if "." in text:
                text = text.replace(".", "\\.")
            if length + len(text) + 1 > MAX_NAME:
                truncated = True
                text = text[:max(MAX_NAME - length, 0)]
            labels.append(text)
            length += len(text) + 1
    name = ".".join(labels)
    if truncated:
        name = name[:MAX_NAME]
    return (name or "."), (end if end >= 0 else off), truncated


def _rdata(msg: bytes, off: int, rdlen: int, rtype: int) -> str:
    raw = msg[off:off + rdlen]
    if rtype == 1 and rdlen == 4:
        return socket.inet_ntop(socket.AF_INET, raw)
    if rtype == 28 and rdlen == 16:
        return socket.inet_ntop(socket.AF_INET6, raw)
    if rtype in (2, 5, 12, 39):
        return _read_name(msg, off)[0]
    if rtype == 15 and rdlen >= 3:
        return _read_name(msg, off + 2)[0]
    if rtype == 33 and rdlen >= 7:
        return _read_name(msg, off + 6)[0]
    if rtype == 6:
        mname, nxt, _ = _read_name(msg, off)
        rname, _, _ = _read_name(msg, nxt)
        return f"{mname} {rname}"
    if rtype in (16, 99):
        parts = []
        i = 0
        while i < len(raw):
            size = raw[i]
            parts.append(raw[i + 1:i + 1 + size].decode("utf-8", "backslashreplace"))
            i += 1 + size
        return " ".join(parts)
    return raw.hex()


def _record(msg: bytes, off: int) -> tuple[DnsAnswer, int]:
    name, off, _ = _read_name(msg, off)
    if off + 10 > len(msg):
        raise DnsError("resource record header runs past the end of the message")
    rtype, rclass, ttl, rdlen = unpack_from("!HHIH", msg, off)
    off += 10
    if off + rdlen > len(msg):
        raise DnsError("resource record data runs past the end of the message")
    try:
        data = _rdata(msg, off, rdlen, rtype)
    except DnsError:
        data = msg[off:off + rdlen].hex()
    return DnsAnswer(name, type_name(rtype), CLASSES.get(rclass, str(rclass)), ttl, data), \
        off + rdlen


def parse_dns(msg: bytes) -> DnsMessage:
    """Read one DNS message; raises :class:`DnsError` on a malformed one.

    Records after the first malformed answer are dropped, but what was read
    before it is kept (a truncated response still names its question).
    """
    if len(msg) < 12:
        raise DnsError(f"message shorter than the 12-byte header ({len(msg)} bytes)")
    ident, flags, qd, an, ns, _ar = unpack_from("!HHHHHH", msg, 0)
    if qd > 64:
        raise DnsError(f"implausible question count {qd}")
    names = []
    if flags & 0x8000:
        names.append("QR")
    for bit, name in ((0x0400, "AA"), (0x0200, "TC"), (0x0100, "RD"), (0x0080, "RA"),
                      (0x0020, "AD"), (0x0010, "CD")):
        if flags & bit:
            names.append(name)
    message = DnsMessage(ident, bool(flags & 0x8000), OPCODES.get((flags >> 11) & 0xF,
                         str((flags >> 11) & 0xF)), RCODES.get(flags & 0xF, str(flags & 0xF)),
                         names)
    off = 12
    for i in range(qd):
        name, off, truncated = _read_name(msg, off)
        if off + 4 > len(msg):
            raise DnsError("question runs past the end of the message")
        qtype, qclass = unpack_from("!HH", msg, off)
        off += 4
        if i == 0:
            message.qname = name
            message.qtype = type_name(qtype)
            message.qclass = CLASSES.get(qclass & 0x7FFF, str(qclass))
            message.name_truncated = truncated
    try:
        for _ in range(min(an, MAX_RECORDS)):
            record, off = _record(msg, off)
            message.answers.append(record)
        for _ in range(min(ns, MAX_RECORDS)):
            record, off = _record(msg, off)
            message.authorities.append(record)
    except DnsError:
        if not message.answers and message.qname is None:
            raise
    return message
