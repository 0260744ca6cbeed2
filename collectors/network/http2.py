"""HTTP/2 over cleartext TCP (h2c, RFC 9113): frames, header blocks, streams.

:class:`Http2Connection` is fed the in-order bytes of each side of a connection
that opened with the client connection preface (prior knowledge, or after an
``Upgrade: h2c``) and returns each stream as an
:class:`~collectors.network.http.HttpTransaction` once both sides ended it, so
HTTP/2 requests are reported like HTTP/1.x ones (``http.version`` ``2``), and
DNS-over-HTTPS messages (``application/dns-message`` bodies, RFC 8484) can be
read from them.

Header blocks are decoded with the ``hpack`` library (python-hyper's RFC 7541
implementation: static and dynamic tables, Huffman coding); each direction keeps
its own decoder, as the dynamic table is per direction. Bounded: frames larger
than :data:`MAX_FRAME`, more than :data:`MAX_STREAMS` open streams, bodies past
``max_body`` (kept truncated), and a header block that does not decode make the
side raise :class:`Http2Error` and stop being parsed.
"""

from __future__ import annotations

from struct import unpack_from

from hpack import Decoder, HPACKError

from collectors.network.http import HttpError, HttpTransaction

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_FRAME = 1 << 20        # buffered per side at most; peers rarely go past 16 KiB
MAX_STREAMS = 1024         # streams open at once on one connection
MAX_HEADER_BLOCK = 1 << 18

DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
END_STREAM, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x4, 0x8, 0x20


#: HTTP/1.1 headers that only asked for the upgrade, not part of the request itself
_UPGRADE_HEADERS = frozenset({"upgrade", "connection", "http2-settings"})


class Http2Error(HttpError):
    """A side of an HTTP/2 connection that cannot be parsed further."""


class _Stream:
    __slots__ = ("ended", "tx")

    def __init__(self, ts: float) -> None:
        self.tx = HttpTransaction(ts, version="2")
        self.ended = [False, False]  # request side, response side


class _Side:
    __slots__ = ("block", "block_end", "block_stream", "buf", "dead", "decoder", "preface")

    def __init__(self, preface: bool) -> None:
        self.buf = bytearray()
        self.decoder = Decoder()
        self.preface = preface  # the client connection preface is still to come
        self.block = bytearray()  # a header block continued in CONTINUATION frames
        self.block_stream = 0
        self.block_end = False  # END_STREAM was set on the HEADERS that opened it
        self.dead = False  # parsing stopped after an error


def looks_like_h2(data: bytes) -> bool:
    """The first bytes of an h2c client: the connection preface."""
    return len(data) >= 14 and PREFACE.startswith(data[:len(PREFACE)])


class Http2Connection:
    """The streams of one HTTP/2 connection."""

    def __init__(self, max_body: int = 1 << 20, client_preface: bool = True) -> None:
        self.max_body = max_body
        self.sides = {True: _Side(client_preface), False: _Side(False)}
        self.streams: dict[int, _Stream] = {}
        self.done: list[HttpTransaction] = []

    def feed(self, is_orig: bool, data: bytes, ts: float) -> list[HttpTransaction]:
        side = self.sides[is_orig]
        if side.dead:
            return []
        try:
            self._feed(side, is_orig, data, ts)
        except Http2Error:
            side.dead = True
            side.buf.clear()
            raise
        out, self.done = self.done, []
        return out

    def continue_upgrade(self, request: HttpTransaction) -> None:
        """The connection was upgraded from HTTP/1.1 (``Upgrade: h2c``): the request
        sent before the upgrade is stream 1, half-closed by the client, and the
        server answers it there (RFC 7540 section 3.2; RFC 9113 deprecates the
        upgrade, yet servers still accept it)."""
        stream = _Stream(request.ts)
        tx = stream.tx
        tx.method, tx.uri = request.method, request.uri
        tx.request_headers = {k: v for k, v in request.request_headers.items()
                              if k not in _UPGRADE_HEADERS}
        tx.request_body = request.request_body
        tx.request_bytes = request.request_bytes
        stream.ended[0] = True
        self.streams[1] = stream

    def gap(self, is_orig: bool) -> None:
        """Bytes of this side were never captured: frame boundaries are lost."""
        side = self.sides[is_orig]
        side.dead = True
        side.buf.clear()

    @property
    def dead(self) -> bool:
        return self.sides[True].dead and self.sides[False].dead

    def _feed(self, side: _Side, is_orig: bool, data: bytes, ts: float) -> None:
        buf = side.buf
        buf += data
        if side.preface:
            if len(buf) < len(PREFACE):
                return
            if not buf.startswith(PREFACE):
                raise Http2Error("no HTTP/2 connection preface")
            del buf[:len(PREFACE)]
            side.preface = False
        while len(buf) >= 9:
            length = (buf[0] << 16) | (buf[1] << 8) | buf[2]
            if length > MAX_FRAME:
                raise Http2Error(f"frame of {length} bytes")
            if len(buf) < 9 + length:
                break
            kind, flags = buf[3], buf[4]
            stream = unpack_from("!I", buf, 5)[0] & 0x7FFFFFFF
            payload = bytes(buf[9:9 + length])
            del buf[:9 + length]
            self._frame(side, is_orig, kind, flags, stream, payload, ts)

    def close(self) -> list[HttpTransaction]:
        """End of the connection: streams still open are reported as they stand."""
        out = self.done + [s.tx for s in self.streams.values()]
        self.done = []
        self.streams.clear()
        return out

    # -- frames ----------------------------------------------------------------------------
    def _frame(self, side: _Side, is_orig: bool, kind: int, flags: int, stream_id: int,
               payload: bytes, ts: float) -> None:
        if kind == DATA and stream_id:
            body = _unpad(payload, flags)
            stream = self._stream(stream_id, ts)
            tx = stream.tx
            target = tx.request_body if is_orig else tx.response_body
            target.append(body, self.max_body)
            if flags & END_STREAM:
                self._end(stream_id, stream, is_orig, ts)
        elif kind == HEADERS and stream_id:
            fragment = _unpad(payload, flags)
            if flags & PRIORITY_FLAG:
                fragment = fragment[5:]
            side.block = bytearray(fragment)
            side.block_stream = stream_id
            side.block_end = bool(flags & END_STREAM)
            if flags & END_HEADERS:
                self._headers(side, is_orig, ts)
        elif kind == CONTINUATION and stream_id == side.block_stream and side.block_stream:
            if len(side.block) + len(payload) > MAX_HEADER_BLOCK:
                raise Http2Error("header block too long")
            side.block += payload
            if flags & END_HEADERS:
                self._headers(side, is_orig, ts)
        elif kind == RST_STREAM and stream_id in self.streams:
            self.done.append(self.streams.pop(stream_id).tx)
        elif kind == PUSH_PROMISE:
            # the promised request's headers change the decoder's table: decode them
            fragment = _unpad(payload, flags)[4:]
            self._decode(side, fragment)

    def _headers(self, side: _Side, is_orig: bool, ts: float) -> None:
        stream_id = side.block_stream
        headers = self._decode(side, bytes(side.block))
        side.block = bytearray()
        side.block_stream = 0
        stream = self._stream(stream_id, ts)
        tx = stream.tx
        size = sum(len(k) + len(v) + 2 for k, v in headers)
        if is_orig:
            fields = tx.request_headers
            for name, value in headers:
                if name == ":method":
                    tx.method = value
                elif name == ":path":
                    tx.uri = value
                elif name == ":authority":
                    fields.setdefault("host", value)
                elif not name.startswith(":"):
                    fields[name] = value
            tx.request_bytes += size
            tx.request_body.encoding = fields.get("content-encoding", "").lower()
        else:
            fields = tx.response_headers
            for name, value in headers:
                if name == ":status":
                    if value.isdigit() and len(value) == 3:
                        tx.status = int(value)
                elif not name.startswith(":"):
                    fields[name] = value
            if tx.status is not None and tx.status >= 200:
                tx.has_response = True
                tx.response_version = "2"
            tx.response_bytes += size
            tx.response_body.encoding = fields.get("content-encoding", "").lower()
        if side.block_end:
            self._end(stream_id, stream, is_orig, ts)

    def _decode(self, side: _Side, block: bytes) -> list[tuple[str, str]]:
        try:
            pairs = side.decoder.decode(block, raw=True)
        except (HPACKError, ValueError, IndexError) as exc:
            raise Http2Error(f"header block does not decode: {exc}") from exc
        return [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in pairs]

    def _stream(self, stream_id: int, ts: float) -> _Stream:
        stream = self.streams.get(stream_id)
        if stream is None:
            if len(self.streams) >= MAX_STREAMS:
                oldest = next(iter(self.streams))
                self.done.append(self.streams.pop(oldest).tx)
            stream = self.streams[stream_id] = _Stream(ts)
        return stream

    def _end(self, stream_id: int, stream: _Stream, is_orig: bool, ts: float) -> None:
        stream.ended[0 if is_orig else 1] = True
        if not is_orig:
            stream.tx.end_ts = ts
        if stream.ended[0] and stream.ended[1]:
            self.done.append(self.streams.pop(stream_id).tx)


def _unpad(payload: bytes, flags: int) -> bytes:
    if flags & PADDED:
        if not payload or payload[0] >= len(payload):
            raise Http2Error("padding longer than the frame")
        return payload[1:len(payload) - payload[0]]
    return payload
