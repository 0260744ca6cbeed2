"""QUIC handshakes: the TLS ClientHello and ServerHello inside Initial packets.

QUIC (RFC 9000) carries its TLS 1.3 handshake in CRYPTO frames of encrypted UDP
packets. Initial packets are encrypted with keys anyone can derive from the
Destination Connection ID of the client's first Initial (RFC 9001 section 5.2), so a
sensor can read the hellos the way Zeek and Suricata do:

- recognise long-header packets (:func:`looks_like_quic`) and read their header
  (version, connection IDs, token, length), including several packets coalesced in
  one datagram;
- derive the client's and the server's Initial secrets (HKDF-SHA256 with the
  version's salt; QUIC version 2, RFC 9369, has its own salt, its own ``quicv2``
  labels and other packet type bits), remove header protection (the AES-ECB mask of
  a ciphertext sample) and decrypt the payload (AES-128-GCM);
- walk the frames an Initial may carry (PADDING, PING, ACK, CRYPTO,
  CONNECTION_CLOSE), reassemble the CRYPTO stream of each side by offset (a large
  ClientHello spans several packets, and Chrome splits and reorders it), and hand
  the complete hello messages to :mod:`collectors.network.tls`'s parsers.

Versions 1 and 2 and IETF drafts 23 to 34 (what deployed clients spoke before
RFC 9000; draft-29 lingers in C2 frameworks built on old QUIC libraries) are
decrypted; older drafts, mvfst, Google QUIC and greased versions are recognised
and named (Zeek's ``quic.log`` names) but not decrypted.

Bad input costs one counted reason (:data:`REASONS`), never an exception out of
:meth:`QuicConnection.datagram`; memory per connection is bounded by
:data:`MAX_CRYPTO_BYTES` of CRYPTO data per side and work by
:data:`MAX_DATAGRAMS` datagrams and :data:`MAX_DECRYPT_FAILURES` failed decryptions.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

from collectors.network.tls import (
    HELLO_RETRY_REQUEST,
    ClientHello,
    ServerHello,
    TlsError,
    parse_client_hello,
    parse_server_hello,
)

QUIC_V1 = 0x00000001
QUIC_V2 = 0x6B3343CF

#: CRYPTO bytes kept per side: a ClientHello is a few KiB (post-quantum key shares
#: included), a ServerHello under 200 bytes
MAX_CRYPTO_BYTES = 64 * 1024
#: out-of-order CRYPTO chunks held per side
MAX_CRYPTO_CHUNKS = 128
#: datagrams examined per connection before the handshake must have been read
MAX_DATAGRAMS = 32
#: failed decryptions per connection before it is given up
MAX_DECRYPT_FAILURES = 4
#: datagrams watched after both hellos for the client's first 1-RTT packet
MAX_AFTER_HELLO = 8
#: the shortest datagram worth a look: a long header with empty connection IDs,
#: a one-byte packet number and the authentication tag
MIN_LONG_HEADER = 21

#: every reason a connection may report, with what it means
REASONS = {
    "quic_truncated": "a packet shorter than its header or its Length field says",
    "quic_bad_header": "a long header with impossible connection ID lengths or varints",
    "quic_decrypt_failed": "an Initial packet whose authentication tag does not verify",
    "quic_bad_frame": "a frame an Initial packet may not carry, or a truncated frame",
    "quic_crypto_too_large": "CRYPTO data beyond the per-side limit (huge offsets)",
    "quic_crypto_gap": "the connection ended with CRYPTO data missing before a hello",
    "quic_bad_handshake": "a handshake message that is not the expected hello",
    "tls_malformed": "a hello the TLS parser could not read",
    "quic_no_handshake": "the datagram or failure budget ran out before the hellos",
    "quic_unsupported_version": "a version that is recognised but not decrypted",
}
#: reasons that describe traffic the sensor does not decrypt rather than damage
OUT_OF_SCOPE = frozenset({"quic_unsupported_version"})


@dataclass(frozen=True)
class VersionSchedule:
    """What differs between QUIC versions for Initial packets."""

    salt: bytes
    label: bytes          # prefix of the key, iv and hp labels
    initial: int          # long-header packet type bits of each packet kind
    zero_rtt: int
    handshake: int
    retry: int


def _schedule_v1_style(salt: str) -> VersionSchedule:
    return VersionSchedule(bytes.fromhex(salt), b"quic", initial=0, zero_rtt=1, handshake=2,
                           retry=3)


_V1 = _schedule_v1_style("38762cf7f55934b34d179ae6a4c80cadccbb7f0a")
#: IETF drafts 23-28 and 29-32 (draft-ietf-quic-tls section 5.2 of each): their own
#: salts, otherwise version 1's labels and packet types; drafts 33 and 34 use
#: version 1's salt. Earlier drafts changed more than the salt and are only named.
_DRAFT_23 = _schedule_v1_style("c3eef712c72ebb5a11a7d2432bb46365bef9f502")
_DRAFT_29 = _schedule_v1_style("afbfec289993d24c9e9786f19c6111e04390a899")

SCHEDULES = {
    QUIC_V1: _V1,
    QUIC_V2: VersionSchedule(bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9"),
                             b"quicv2", initial=1, zero_rtt=2, handshake=3, retry=0),
    **{0xFF000000 | draft: _DRAFT_23 for draft in range(23, 29)},
    **{0xFF000000 | draft: _DRAFT_29 for draft in range(29, 33)},
    **{0xFF000000 | draft: _V1 for draft in (33, 34)},
}


class QuicError(Exception):
    """One packet that cannot be read; ``reason`` is a key of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def is_quic_version(version: int) -> bool:
    """A version some QUIC implementation uses (version negotiation's 0 excluded)."""
    if version in SCHEDULES:
        return True
    top = version >> 8
    return (top == 0xFF0000                                  # IETF drafts
            or version & 0xFFFFFFF0 == 0xFACEB000           # mvfst
            or version & 0x0F0F0F0F == 0x0A0A0A0A           # greased, RFC 9000 15
            or (top >> 8 in (0x5130, 0x5430)                 # Google "Q0nn", "T0nn"
                and 0x30 <= (top & 0xFF) <= 0x39 and 0x30 <= (version & 0xFF) <= 0x39))


def version_name(version: int) -> str:
    """The version as Zeek's ``quic.log`` names it."""
    if version == QUIC_V1:
        return "1"
    if version == QUIC_V2:
        return "quicv2"
    if version >> 8 == 0xFF0000:
        return f"draft-{version & 0xFF}"
    if version & 0xFFFFFFF0 == 0xFACEB000:
        return f"mvfst ({version:x})"
    return f"unknown-{version:x}"


def looks_like_quic(payload: bytes) -> bool:
    """A UDP payload that starts with a QUIC long header of a known version: the
    long-header and fixed bits set, a plausible length, a known version."""
    return (len(payload) >= MIN_LONG_HEADER and payload[0] & 0xC0 == 0xC0
            and is_quic_version(int.from_bytes(payload[1:5], "big")))


# -- keys ---------------------------------------------------------------------------------

def hkdf_expand_label(secret: bytes, label: bytes, length: int) -> bytes:
    """TLS 1.3's HKDF-Expand-Label (RFC 8446 section 7.1) with an empty context."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

    full = b"tls13 " + label
    info = length.to_bytes(2, "big") + bytes((len(full),)) + full + b"\x00"
    return HKDFExpand(hashes.SHA256(), length, info).derive(secret)


class PacketKeys:
    """The AEAD key, IV and header protection key of one side's Initial packets."""

    __slots__ = ("_aead", "_mask", "hp", "iv", "key", "secret")

    def __init__(self, secret: bytes, label: bytes) -> None:
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self.secret = secret
        self.key = hkdf_expand_label(secret, label + b" key", 16)
        self.iv = hkdf_expand_label(secret, label + b" iv", 12)
        self.hp = hkdf_expand_label(secret, label + b" hp", 16)
        self._aead = AESGCM(self.key)
        # ECB keeps no state between blocks, so one encryptor serves every sample
        self._mask = Cipher(algorithms.AES(self.hp), modes.ECB()).encryptor()  # noqa: S305

    def mask(self, sample: bytes) -> bytes:
        return self._mask.update(sample)

    def open(self, packet_number: int, header: bytes, ciphertext: bytes) -> bytes:
        """The plaintext; raises QuicError when the tag does not verify."""
        from cryptography.exceptions import InvalidTag

        nonce = (int.from_bytes(self.iv, "big") ^ packet_number).to_bytes(12, "big")
        try:
            return self._aead.decrypt(nonce, ciphertext, header)
        except InvalidTag:
            raise QuicError("quic_decrypt_failed",
                            f"packet {packet_number}: authentication tag mismatch") from None


def initial_keys(version: int, dcid: bytes) -> tuple[PacketKeys, PacketKeys]:
    """(client keys, server keys) of a connection whose client's first Initial was
    sent to ``dcid``. HKDF-Extract is one HMAC (RFC 5869 section 2.2)."""
    schedule = SCHEDULES[version]
    initial_secret = hmac.new(schedule.salt, dcid, hashlib.sha256).digest()
    client = hkdf_expand_label(initial_secret, b"client in", 32)
    server = hkdf_expand_label(initial_secret, b"server in", 32)
    return PacketKeys(client, schedule.label), PacketKeys(server, schedule.label)


# -- packets ------------------------------------------------------------------------------

def read_varint(data: bytes, off: int) -> tuple[int, int]:
    """(value, next offset) of the variable-length integer at ``off`` (RFC 9000 16)."""
    if off >= len(data):
        raise IndexError("varint past the end")
    first = data[off]
    size = 1 << (first >> 6)
    end = off + size
    if end > len(data):
        raise IndexError("varint past the end")
    if size == 1:
        return first, end
    return int.from_bytes(data[off:end], "big") & ((1 << (8 * size - 2)) - 1), end


@dataclass
class LongHeader:
    """The clear-text part of one long-header packet."""

    first: int            # first byte, still header-protected
    version: int
    kind: str             # initial, 0rtt, handshake, retry, version_negotiation, other
    dcid: bytes
    scid: bytes
    pn_offset: int        # where the protected packet number starts (Initial/0-RTT/Handshake)
    end: int              # offset just past this packet in the datagram


def parse_long_header(data: bytes, off: int) -> LongHeader:
    """Read the long header at ``off``; raises QuicError on a damaged one."""
    try:
        first = data[off]
        if len(data) < off + 7:
            raise QuicError("quic_truncated", f"{len(data) - off} bytes of long header")
        version = int.from_bytes(data[off + 1:off + 5], "big")
        p = off + 5
        dlen = data[p]
        if dlen > 20 and version in SCHEDULES:
            raise QuicError("quic_bad_header", f"destination connection ID of {dlen} bytes")
        dcid = data[p + 1:p + 1 + dlen]
        p += 1 + dlen
        slen = data[p]
        if slen > 20 and version in SCHEDULES:
            raise QuicError("quic_bad_header", f"source connection ID of {slen} bytes")
        scid = data[p + 1:p + 1 + slen]
        p += 1 + slen
        if len(dcid) != dlen or len(scid) != slen or p > len(data):
            raise QuicError("quic_truncated", "connection IDs cut short")
        if version == 0:
            return LongHeader(first, 0, "version_negotiation", dcid, scid, p, len(data))
        schedule = SCHEDULES.get(version)
        if schedule is None:
            return LongHeader(first, version, "other", dcid, scid, p, len(data))
        ptype = (first >> 4) & 0x03
        if ptype == schedule.retry:
            return LongHeader(first, version, "retry", dcid, scid, p, len(data))
        if ptype == schedule.initial:
            kind = "initial"
            token_len, p = read_varint(data, p)
            p += token_len
        else:
            kind = "handshake" if ptype == schedule.handshake else "0rtt"
        length, p = read_varint(data, p)
    except IndexError:
        raise QuicError("quic_truncated", "long header cut short") from None
    end = p + length
    if end > len(data):
        raise QuicError("quic_truncated",
                        f"Length {length} runs past the datagram ({len(data) - p} left)")
    if length < 20:  # a packet number and a 16-byte sample at the least
        raise QuicError("quic_truncated", f"Length {length} too short for a protected packet")
    return LongHeader(first, version, kind, dcid, scid, p, end)


def decode_packet_number(largest: int, truncated: int, bits: int) -> int:
    """The full packet number from its truncated encoding (RFC 9000 appendix A.3)."""
    expected = largest + 1
    window = 1 << bits
    half = window >> 1
    candidate = (expected & ~(window - 1)) | truncated
    if candidate <= expected - half and candidate < (1 << 62) - window:
        return candidate + window
    if candidate > expected + half and candidate >= window:
        return candidate - window
    return candidate


def unprotect(keys: PacketKeys, data: bytes, off: int, hdr: LongHeader,
              largest: int) -> tuple[int, bytes]:
    """(packet number, plaintext payload) of the long-header packet at ``off``."""
    pn_offset = hdr.pn_offset
    sample = data[pn_offset + 4:pn_offset + 20]
    if len(sample) < 16:
        raise QuicError("quic_truncated", "no room for the header protection sample")
    mask = keys.mask(sample)
    first = hdr.first ^ (mask[0] & 0x0F)
    pn_len = (first & 0x03) + 1
    truncated = int.from_bytes(data[pn_offset:pn_offset + pn_len], "big") ^ \
        int.from_bytes(mask[1:1 + pn_len], "big")
    header = bytes((first,)) + data[off + 1:pn_offset] + truncated.to_bytes(pn_len, "big")
    number = decode_packet_number(largest, truncated, 8 * pn_len)
    return number, keys.open(number, header, data[pn_offset + pn_len:hdr.end])


_NOT_PADDING = re.compile(b"[^\x00]")


def crypto_frames(payload: bytes) -> list[tuple[int, bytes]]:
    """The (offset, data) of every CRYPTO frame of a decrypted Initial or Handshake
    payload, in packet order. Raises QuicError on a frame these packets may not
    carry or a truncated one; the frames before it are lost with the packet."""
    out: list[tuple[int, bytes]] = []
    off = 0
    end = len(payload)
    try:
        while off < end:
            ftype = payload[off]
            if ftype == 0x00:  # PADDING: runs of zeros, skipped in one search
                found = _NOT_PADDING.search(payload, off)
                off = found.start() if found else end
            elif ftype == 0x06:  # CRYPTO
                offset, p = read_varint(payload, off + 1)
                length, p = read_varint(payload, p)
                if p + length > end:
                    raise QuicError("quic_bad_frame",
                                    f"CRYPTO frame of {length} bytes, {end - p} left")
                out.append((offset, payload[p:p + length]))
                off = p + length
            elif ftype == 0x01:  # PING
                off += 1
            elif ftype in (0x02, 0x03):  # ACK, ACK with ECN counts
                _largest, p = read_varint(payload, off + 1)
                _delay, p = read_varint(payload, p)
                ranges, p = read_varint(payload, p)
                _first_range, p = read_varint(payload, p)
                for _ in range(min(ranges, end)):  # each range is two varints at least
                    _gap, p = read_varint(payload, p)
                    _length, p = read_varint(payload, p)
                if ftype == 0x03:
                    for _ in range(3):
                        _count, p = read_varint(payload, p)
                off = p
            elif ftype in (0x1C, 0x1D):  # CONNECTION_CLOSE (transport, application)
                _code, p = read_varint(payload, off + 1)
                if ftype == 0x1C:
                    _frame, p = read_varint(payload, p)
                reason_len, p = read_varint(payload, p)
                if p + reason_len > end:
                    raise QuicError("quic_bad_frame", "CONNECTION_CLOSE reason cut short")
                off = p + reason_len
            else:
                raise QuicError("quic_bad_frame",
                                f"frame type 0x{ftype:02x} at byte {off} of an Initial")
    except IndexError:
        raise QuicError("quic_bad_frame", f"frame at byte {off} cut short") from None
    return out


class CryptoStream:
    """One side's CRYPTO data, reassembled by offset in bounded memory."""

    __slots__ = ("data", "pending", "pending_bytes", "read")

    def __init__(self) -> None:
        self.data = bytearray()                 # the contiguous bytes from offset 0
        self.pending: dict[int, bytes] = {}     # chunks beyond a gap, by offset
        self.pending_bytes = 0
        self.read = 0                           # bytes of whole messages taken

    def add(self, offset: int, chunk: bytes) -> None:
        """Take one frame's data; raises QuicError when it would exceed the limits."""
        if not chunk:
            return
        if offset + len(chunk) > MAX_CRYPTO_BYTES:
            raise QuicError("quic_crypto_too_large",
                            f"CRYPTO data up to offset {offset + len(chunk)}")
        have = len(self.data)
        if offset > have:
            held = self.pending.get(offset, b"")
            if len(held) < len(chunk):
                if len(self.pending) >= MAX_CRYPTO_CHUNKS:
                    raise QuicError("quic_crypto_too_large",
                                    f"more than {MAX_CRYPTO_CHUNKS} CRYPTO chunks held")
                # overlapping chunks at nearby offsets must not multiply the limit
                if have + self.pending_bytes + len(chunk) - len(held) > MAX_CRYPTO_BYTES:
                    raise QuicError("quic_crypto_too_large",
                                    f"{self.pending_bytes} CRYPTO bytes held beyond a gap")
                self.pending_bytes += len(chunk) - len(held)
                self.pending[offset] = chunk
            return
        if offset + len(chunk) > have:
            self.data += chunk[have - offset:]
        while self.pending:
            have = len(self.data)
            ready = [o for o in self.pending if o <= have]
            if not ready:
                break
            for o in ready:
                piece = self.pending.pop(o)
                self.pending_bytes -= len(piece)
                if o + len(piece) > len(self.data):
                    self.data += piece[len(self.data) - o:]

    def message(self) -> tuple[int, bytes] | None:
        """The next complete handshake message (type, body), or None while it is
        incomplete; raises QuicError on a length no message within the limit has."""
        data = self.data
        start = self.read
        if len(data) - start < 4:
            return None
        length = int.from_bytes(data[start + 1:start + 4], "big")
        if start + 4 + length > MAX_CRYPTO_BYTES:
            raise QuicError("quic_bad_handshake", f"handshake message of {length} bytes")
        if len(data) - start < 4 + length:
            return None
        self.read = start + 4 + length
        return data[start], bytes(data[start + 4:start + 4 + length])

    @property
    def missing(self) -> bool:
        """Data held beyond a gap that never filled."""
        return bool(self.pending)


class QuicConnection:
    """The handshake of one QUIC connection, fed the UDP payloads of both sides.

    Attributes for reporting: ``version`` (of the Initial packets), the
    connection IDs, ``client`` / ``server`` (the parsed hellos), ``established``
    (the client sent a 1-RTT packet after both hellos), ``finished`` (nothing more
    to learn: the caller may stop feeding), and ``issues``: (reason, detail) pairs
    the caller drains after each datagram.

    The client is the side that sent the first Initial packet. Both sides' Initial
    keys come from the Destination Connection ID of that packet, until a Retry or a
    Version Negotiation makes the client start again with another one.
    """

    def __init__(self) -> None:
        self.version: int | None = None
        self.client_initial_dcid: bytes | None = None
        self.client_scid: bytes | None = None
        self.server_scid: bytes | None = None
        self.client: ClientHello | None = None
        self.server: ServerHello | None = None
        self.established = False
        self.finished = False
        self.issues: list[tuple[str, str]] = []
        self.client_is_orig: bool | None = None
        self.datagrams = 0
        self.after_hello = 0
        self.failures = 0
        self.unsupported: int | None = None
        self._keys_dcid: bytes | None = None
        self._server_scid_from_retry = False
        self._keys: dict[int, tuple[PacketKeys, PacketKeys]] = {}
        self._largest = {True: -1, False: -1}  # per side (client: True)
        self._streams: dict[bool, CryptoStream | None] = {True: CryptoStream(),
                                                          False: CryptoStream()}

    @property
    def seen(self) -> bool:
        """A QUIC long header was read on this connection."""
        return self.version is not None or self.unsupported is not None

    def datagram(self, is_orig: bool, data: bytes) -> None:
        """Read one UDP payload of the side ``is_orig``."""
        if self.finished:
            return
        self.datagrams += 1
        if self.client is not None and self.server is not None:
            # both hellos read: only look for the client's first short-header packet
            self.after_hello += 1
            if is_orig == self.client_is_orig and data and not data[0] & 0x80:
                self.established = True
            if self.established or self.after_hello >= MAX_AFTER_HELLO:
                self.finished = True
            return
        off = 0
        while off < len(data) and not self.finished:
            if not data[off] & 0x80:
                if self.client is not None and self.server is not None and \
                        is_orig == self.client_is_orig:
                    self.established = True
                break  # a short-header packet fills the rest of the datagram
            try:
                hdr = parse_long_header(data, off)
            except QuicError as exc:
                self._issue(exc.reason, str(exc))
                break  # where a next coalesced packet would start is unknown
            try:
                self._packet(is_orig, data, off, hdr)
            except QuicError as exc:
                self._issue(exc.reason, str(exc))
                if exc.reason == "quic_decrypt_failed":
                    self.failures += 1
                    if self.failures >= MAX_DECRYPT_FAILURES:
                        self._give_up(f"{self.failures} Initial packets failed to decrypt")
            off = hdr.end
        if self.client is not None and self.server is not None:
            # the rest of the flight is encrypted with keys a sensor cannot have
            self._streams = {True: None, False: None}
        elif not self.finished and self.datagrams >= MAX_DATAGRAMS:
            self._give_up(f"no complete handshake in {self.datagrams} datagrams")

    def _packet(self, is_orig: bool, data: bytes, off: int, hdr: LongHeader) -> None:
        """Read one long-header packet."""
        kind = hdr.kind
        if kind == "version_negotiation":
            # the client starts again with another version and connection ID
            if self.client_is_orig is None:
                self.client_is_orig = not is_orig
            self._restart()
            self.version = None
            self._largest = {True: -1, False: -1}
            self._streams = {True: CryptoStream(), False: CryptoStream()}
            return
        if self.client_is_orig is None:
            self.client_is_orig = is_orig
        from_client = is_orig == self.client_is_orig
        if from_client:
            if self.client_scid is None:
                self.client_scid = hdr.scid
            if self._keys_dcid is None and kind in ("initial", "other"):
                self._keys_dcid = hdr.dcid
                if self.client_initial_dcid is None:
                    self.client_initial_dcid = hdr.dcid
        elif kind == "retry":
            # the client's next Initial goes to the connection ID the Retry chose;
            # the server's own packets, if seen, name the one it then uses
            self.server_scid = hdr.scid
            self._server_scid_from_retry = True
            self._restart()
            return
        elif self.server_scid is None or self._server_scid_from_retry:
            self.server_scid = hdr.scid
            self._server_scid_from_retry = False
        if kind == "other":
            if self.unsupported is None:
                self.unsupported = hdr.version
                self._issue("quic_unsupported_version",
                            f"version {version_name(hdr.version)} is not decrypted")
            if not from_client:
                self.finished = True  # the server took the version: nothing to read
            return
        self.version = hdr.version
        if kind != "initial":
            return  # Handshake and 0-RTT keys come from the TLS key exchange
        stream = self._streams[from_client]
        if stream is None or self._keys_dcid is None:
            return
        keys = self._keys.get(hdr.version)
        if keys is None:
            # a server may answer in another compatible version (RFC 9368): the
            # same connection ID, that version's salt
            keys = self._keys[hdr.version] = initial_keys(hdr.version, self._keys_dcid)
        number, payload = unprotect(keys[0 if from_client else 1], data, off, hdr,
                                    self._largest[from_client])
        if number > self._largest[from_client]:
            self._largest[from_client] = number
        try:
            for offset, chunk in crypto_frames(payload):
                stream.add(offset, chunk)
        finally:
            self._read_hello(from_client, stream)

    def _restart(self) -> None:
        self._keys_dcid = None
        self._keys = {}

    def _read_hello(self, from_client: bool, stream: CryptoStream) -> None:
        while True:
            try:
                found = stream.message()
            except QuicError as exc:
                self._issue(exc.reason, str(exc))
                self._streams[from_client] = None
                return
            if found is None:
                return
            mtype, body = found
            try:
                if from_client and mtype == 1:
                    self.client = parse_client_hello(body)
                elif not from_client and mtype == 2:
                    if body[2:34] == HELLO_RETRY_REQUEST:
                        continue  # the real ServerHello follows the second ClientHello
                    self.server = parse_server_hello(body)
                else:
                    self._issue("quic_bad_handshake",
                                f"handshake message type {mtype} in the "
                                f"{'client' if from_client else 'server'}'s Initial packets")
            except TlsError as exc:
                self._issue("tls_malformed", str(exc))
            self._streams[from_client] = None
            return

    def _issue(self, reason: str, detail: str) -> None:
        self.issues.append((reason, detail))

    def _give_up(self, detail: str) -> None:
        self.finished = True
        if self.client is None and self.unsupported is None:
            self._issue("quic_no_handshake", detail)

    def close(self) -> None:
        """End of the connection: report CRYPTO data left waiting behind a gap."""
        for side, stream in self._streams.items():
            wanted = self.client if side else self.server
            if stream is not None and stream.missing and wanted is None:
                self._issue("quic_crypto_gap",
                            f"{'client' if side else 'server'} CRYPTO data from offset "
                            f"{min(stream.pending)} held, {len(stream.data)} bytes before it")
        self.finished = True

    def fields(self) -> dict[str, Any]:
        """The ``quic.*`` fields of the connection's event."""
        out: dict[str, Any] = {}
        version = self.version if self.version is not None else self.unsupported
        if version is not None:
            out["version"] = version_name(version)
        if self.client_initial_dcid is not None:
            out["client_initial_dcid"] = self.client_initial_dcid.hex()
        if self.client_scid is not None:
            out["client_scid"] = self.client_scid.hex()
        if self.server_scid is not None:
            out["server_scid"] = self.server_scid.hex()
        return out
