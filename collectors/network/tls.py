"""TLS handshakes: ClientHello and ServerHello, SNI, ALPN, versions, JA3/JA3S/JA4.

:class:`TlsConnection` is fed the in-order bytes of each side; it reads TLS
records, reassembles handshake messages across records and segments, and stops
reading a side once its hello was parsed (the rest is encrypted). SSLv2-style
ClientHellos are recognised too. The hello parsers serve QUIC as well, which
carries the same handshake messages in CRYPTO frames, without records.

Fingerprints:

- JA3 = md5("version,ciphers,extensions,groups,point formats"), GREASE values removed
  (https://github.com/salesforce/ja3).
- JA3S = md5("version,cipher,extensions") of the ServerHello.
- JA4 (client) per the FoxIO JA4 specification: ``t`` (TCP) or ``q`` (QUIC, whose
  hellos :mod:`collectors.network.quic` decrypts) + version + ``d``/``i`` +
  cipher count + extension count + ALPN first/last character, then the truncated
  sha256 of the sorted ciphers, then of the sorted extensions (SNI and ALPN left
  out) and the signature algorithms.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from struct import unpack_from
from typing import Any

from govsoc.errors import ParseError

MAX_HANDSHAKE = 1 << 17  # a hello larger than this is not a hello

VERSIONS = {0x0200: "2.0", 0x0300: "3.0", 0x0301: "1.0", 0x0302: "1.1", 0x0303: "1.2",
            0x0304: "1.3"}
_JA4_VERSIONS = {0x0304: "13", 0x0303: "12", 0x0302: "11", 0x0301: "10", 0x0300: "s3",
                 0x0200: "s2", 0xFEFF: "d1", 0xFEFD: "d2", 0xFEFC: "d3"}


#: the suites seen on almost every network (IANA names); others come from scapy's
#: full registry, imported only when needed because the import takes most of a second
CIPHER_SUITES = {
    0x1301: "TLS_AES_128_GCM_SHA256",
    0x1302: "TLS_AES_256_GCM_SHA384",
    0x1303: "TLS_CHACHA20_POLY1305_SHA256",
    0x1304: "TLS_AES_128_CCM_SHA256",
    0x1305: "TLS_AES_128_CCM_8_SHA256",
    0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    0xCCA9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    0xC009: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    0xC00A: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    0x009C: "TLS_RSA_WITH_AES_128_GCM_SHA256",
    0x009D: "TLS_RSA_WITH_AES_256_GCM_SHA384",
    0x002F: "TLS_RSA_WITH_AES_128_CBC_SHA",
    0x0035: "TLS_RSA_WITH_AES_256_CBC_SHA",
    0x000A: "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    0xC027: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    0xC028: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    0xC023: "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    0xC024: "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
    0x009E: "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
    0x009F: "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
    0x0033: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
    0x0039: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
    0x003C: "TLS_RSA_WITH_AES_128_CBC_SHA256",
    0x003D: "TLS_RSA_WITH_AES_256_CBC_SHA256",
    0x0067: "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256",
    0x006B: "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
    0xCCAA: "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
    0x0005: "TLS_RSA_WITH_RC4_128_SHA",
    0x0004: "TLS_RSA_WITH_RC4_128_MD5",
    0xC012: "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    0x0016: "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA",
}


def cipher_name(code: int) -> str:
    name = CIPHER_SUITES.get(code)
    if name is None:
        from scapy.layers.tls.crypto.suites import _tls_cipher_suites

        name = CIPHER_SUITES[code] = _tls_cipher_suites.get(code, f"0x{code:04X}")
    return name


#: the ServerHello random that marks a HelloRetryRequest (RFC 8446 section 4.1.3)
HELLO_RETRY_REQUEST = bytes.fromhex(
    "cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")


class TlsError(ParseError):
    """A side of a connection that does not carry a readable TLS handshake."""


def is_grease(value: int) -> bool:
    return (value & 0x0F0F) == 0x0A0A and (value >> 8) == (value & 0xFF)


def version_name(value: int) -> tuple[str, str]:
    """(protocol, version) for ECS ``tls.version_protocol`` / ``tls.version``."""
    if value in VERSIONS:
        return ("ssl" if value <= 0x0300 else "tls"), VERSIONS[value]
    if value >> 8 == 0x7F:  # TLS 1.3 drafts
        return "tls", f"1.3-draft{value & 0xFF}"
    if value in (0xFEFF, 0xFEFD, 0xFEFC):
        return "dtls", {0xFEFF: "1.0", 0xFEFD: "1.2", 0xFEFC: "1.3"}[value]
    return "tls", f"0x{value:04x}"


@dataclass
class ClientHello:
    version: int
    ciphers: list[int]
    extensions: list[int]
    groups: list[int] = field(default_factory=list)
    point_formats: list[int] = field(default_factory=list)
    server_name: str | None = None
    alpn: list[str] = field(default_factory=list)
    supported_versions: list[int] = field(default_factory=list)
    signature_algorithms: list[int] = field(default_factory=list)

    def ja3_string(self) -> str:
        def join(values: list[int]) -> str:
            return "-".join(str(v) for v in values if not is_grease(v))
        return ",".join((str(self.version), join(self.ciphers), join(self.extensions),
                         join(self.groups), join(self.point_formats)))

    def ja3(self) -> str:
        key = ("ja3", self.version, *self.ciphers, -1, *self.extensions, -1, *self.groups, -1,
               *self.point_formats)
        found = _FINGERPRINTS.get(key)
        if found is None:
            found = _remember(key, hashlib.md5(self.ja3_string().encode(),
                                               usedforsecurity=False).hexdigest())
        return found

    def ja4(self, transport: str = "t") -> str:
        key = (transport, self.version, bool(self.server_name), *self.alpn[:1], -1,
               *self.supported_versions, -1, *self.ciphers, -1, *self.extensions, -1,
               *self.signature_algorithms)
        found = _FINGERPRINTS.get(key)
        if found is None:
            found = _remember(key, self._ja4(transport))
        return found

    def _ja4(self, transport: str) -> str:
        versions = [v for v in self.supported_versions if not is_grease(v)]
        top = max(versions) if versions else self.version
        version = _JA4_VERSIONS.get(top, "00")
        ciphers = [c for c in self.ciphers if not is_grease(c)]
        exts = [e for e in self.extensions if not is_grease(e)]
        sni = "d" if self.server_name else "i"
        alpn = "00"
        if self.alpn and self.alpn[0]:
            first = self.alpn[0]
            alpn = first[0] + first[-1]
            if not (first[0].isalnum() and first[-1].isalnum() and first.isascii()):
                raw = first.encode("utf-8", "surrogateescape")
                alpn = f"{raw[0]:02x}"[0] + f"{raw[-1]:02x}"[-1]
        part_a = f"{transport}{version}{sni}{min(len(ciphers), 99):02d}" \
                 f"{min(len(exts), 99):02d}{alpn}"
        part_b = _short_hash(",".join(f"{c:04x}" for c in sorted(ciphers))) if ciphers \
            else "000000000000"
        ext_list = ",".join(f"{e:04x}" for e in sorted(exts) if e not in (0x0000, 0x0010))
        sigs = ",".join(f"{s:04x}" for s in self.signature_algorithms)
        text = f"{ext_list}_{sigs}" if sigs else ext_list
        part_c = _short_hash(text) if exts else "000000000000"
        return f"{part_a}_{part_b}_{part_c}"


@dataclass
class ServerHello:
    version: int
    cipher: int
    extensions: list[int]
    selected_version: int | None = None
    alpn: str | None = None

    def ja3s(self) -> str:
        text = f"{self.version},{self.cipher}," + "-".join(
            str(e) for e in self.extensions if not is_grease(e))
        return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


# A network has few distinct client implementations, so most hellos repeat an
# earlier one's fingerprint inputs: fingerprints are remembered by those inputs.
_FINGERPRINTS: dict[tuple[Any, ...], str] = {}


def _remember(key: tuple[Any, ...], value: str) -> str:
    if len(_FINGERPRINTS) >= 4096:
        _FINGERPRINTS.clear()
    _FINGERPRINTS[key] = value
    return value


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _u16_list(data: bytes, off: int, length: int) -> list[int]:
    return list(unpack_from(f"!{length // 2}H", data, off))


def parse_client_hello(body: bytes) -> ClientHello:
    """Read a ClientHello handshake body (after the 4-byte handshake header)."""
    try:
        version = unpack_from("!H", body, 0)[0]
        off = 34
        off += 1 + body[off]  # session id
        clen = unpack_from("!H", body, off)[0]
        ciphers = _u16_list(body, off + 2, clen)
        off += 2 + clen
        off += 1 + body[off]  # compression methods
        hello = ClientHello(version, ciphers, [])
        if off + 2 > len(body):
            return hello
        ext_end = min(off + 2 + unpack_from("!H", body, off)[0], len(body))
        off += 2
        while off + 4 <= ext_end:
            etype, elen = unpack_from("!HH", body, off)
            data = body[off + 4:off + 4 + elen]
            off += 4 + elen
            hello.extensions.append(etype)
            if etype == 0 and len(data) >= 5 and data[2] == 0:
                size = unpack_from("!H", data, 3)[0]
                hello.server_name = data[5:5 + size].decode("utf-8", "backslashreplace")
            elif etype == 10 and len(data) >= 2:
                hello.groups = _u16_list(data, 2, min(unpack_from("!H", data, 0)[0],
                                                      len(data) - 2))
            elif etype == 11 and data:
                hello.point_formats = list(data[1:1 + data[0]])
            elif etype == 13 and len(data) >= 2:
                hello.signature_algorithms = _u16_list(
                    data, 2, min(unpack_from("!H", data, 0)[0], len(data) - 2))
            elif etype == 16 and len(data) >= 2:
                i = 2
                while i < len(data):
                    size = data[i]
                    hello.alpn.append(data[i + 1:i + 1 + size].decode("utf-8",
                                                                      "backslashreplace"))
                    i += 1 + size
            elif etype == 43 and data:
                hello.supported_versions = _u16_list(data, 1, min(data[0], len(data) - 1))
        return hello
    except (IndexError, ValueError, struct.error) as exc:
        raise TlsError(f"malformed ClientHello ({exc})") from None


def parse_server_hello(body: bytes) -> ServerHello:
    """Read a ServerHello handshake body."""
    try:
        version = unpack_from("!H", body, 0)[0]
        off = 34
        if version >> 8 == 0x7F and (version & 0xFF) < 22:
            # TLS 1.3 drafts before 22 had no session id and no compression method
            cipher = unpack_from("!H", body, off)[0]
            off += 2
        else:
            off += 1 + body[off]
            cipher = unpack_from("!H", body, off)[0]
            off += 3
        hello = ServerHello(version, cipher, [])
        if off + 2 > len(body):
            return hello
        ext_end = min(off + 2 + unpack_from("!H", body, off)[0], len(body))
        off += 2
        while off + 4 <= ext_end:
            etype, elen = unpack_from("!HH", body, off)
            data = body[off + 4:off + 4 + elen]
            off += 4 + elen
            hello.extensions.append(etype)
            if etype == 43 and len(data) >= 2:
                hello.selected_version = unpack_from("!H", data, 0)[0]
            elif etype == 16 and len(data) >= 3:
                hello.alpn = data[3:3 + data[2]].decode("utf-8", "backslashreplace")
        return hello
    except (IndexError, ValueError, struct.error) as exc:
        raise TlsError(f"malformed ServerHello ({exc})") from None


def looks_like_tls(payload: bytes) -> bool:
    """A TLS handshake record (any version) or an SSLv2 ClientHello."""
    if len(payload) >= 6 and payload[0] == 0x16 and payload[1] == 3 and payload[2] <= 4:
        return True
    return len(payload) >= 3 and payload[0] & 0x80 != 0 and payload[2] == 1 \
        and len(payload) >= 5 and payload[3] in (2, 3)


class TlsConnection:
    """The handshake of one TLS connection."""

    def __init__(self) -> None:
        self.client: ClientHello | None = None
        self.server: ServerHello | None = None
        self.established = False
        self._records = {True: bytearray(), False: bytearray()}
        self._handshake = {True: bytearray(), False: bytearray()}
        self._done = {True: False, False: False}
        self.first_ts = 0.0
        self.after_hello = 0  # payloads seen on either side after both hellos

    @property
    def finished(self) -> bool:
        return self._done[True] and self._done[False]

    def feed(self, is_orig: bool, data: bytes, ts: float) -> None:
        """Take the next in-order bytes of one side; raises TlsError on non-TLS."""
        if self._done[is_orig]:
            self.after_hello += 1
            if data[:1] == b"\x17" and self.client is not None and self.server is not None:
                self.established = True
            return
        if not self.first_ts:
            self.first_ts = ts
        buf = self._records[is_orig]
        buf += data
        if len(buf) >= 3 and not self._handshake[is_orig] and buf[0] & 0x80 and buf[2] == 1 \
                and is_orig and self.client is None:
            self._sslv2(bytes(buf))
            return
        while len(buf) >= 5:
            ctype = buf[0]
            length = (buf[3] << 8) | buf[4]
            if buf[1] != 3 or ctype not in (20, 21, 22, 23, 24):
                self._done[is_orig] = True
                buf.clear()
                raise TlsError(f"not a TLS record (type {ctype}, version byte {buf[1:2]!r})")
            if len(buf) < 5 + length:
                if length > MAX_HANDSHAKE:
                    raise TlsError(f"TLS record of {length} bytes")
                return
            payload = bytes(buf[5:5 + length])
            del buf[:5 + length]
            if ctype == 22:
                self._handshake_bytes(is_orig, payload)
                if self._done[is_orig]:
                    # records after the hello in the same segment tell whether the
                    # handshake went on to encryption
                    self._scan_rest(buf)
            elif ctype == 23 or (ctype == 20 and (self.client if is_orig else self.server)):
                # application data, or ChangeCipherSpec after this side's hello: the
                # clear-text part is over (a CCS may also follow a HelloRetryRequest)
                if self.client is not None and self.server is not None:
                    self.established = True
                self._done[is_orig] = True
                buf.clear()
                return
            if self._done[is_orig]:
                buf.clear()
                return

    def _scan_rest(self, buf: bytearray) -> None:
        off = 0
        while off + 5 <= len(buf):
            if buf[off] in (20, 23) and self.client is not None and self.server is not None:
                self.established = True
                return
            off += 5 + ((buf[off + 3] << 8) | buf[off + 4])

    def _handshake_bytes(self, is_orig: bool, payload: bytes) -> None:
        hs = self._handshake[is_orig]
        hs += payload
        while len(hs) >= 4:
            mtype = hs[0]
            length = (hs[1] << 16) | (hs[2] << 8) | hs[3]
            if length > MAX_HANDSHAKE:
                self._done[is_orig] = True
                raise TlsError(f"handshake message of {length} bytes")
            if len(hs) < 4 + length:
                return
            body = bytes(hs[4:4 + length])
            del hs[:4 + length]
            if mtype == 1 and is_orig and self.client is None:
                self.client = parse_client_hello(body)
                self._done[True] = True
                return
            if mtype == 2 and not is_orig and self.server is None:
                if body[2:34] == HELLO_RETRY_REQUEST:
                    continue  # the real ServerHello follows the client's second hello
                self.server = parse_server_hello(body)
                self._done[False] = True
                return

    def _sslv2(self, buf: bytes) -> None:
        length = ((buf[0] & 0x7F) << 8) | buf[1]
        if len(buf) < 2 + length:
            return
        self._done[True] = True
        if len(buf) < 11:
            raise TlsError("truncated SSLv2 ClientHello")
        version, cs_len, _sid_len, _ch_len = unpack_from("!HHHH", buf, 3)
        specs = buf[11:11 + cs_len]
        # SSLv2 cipher specs are 3 bytes; those with a zero first byte are TLS suites
        ciphers = [(specs[i + 1] << 8) | specs[i + 2] for i in range(0, len(specs) - 2, 3)
                   if specs[i] == 0]
        self.client = ClientHello(version, ciphers, [])
