"""HTTP/1.x over a reassembled TCP stream: requests and responses paired into
transactions, with headers reassembled across segments and bodies carved.

:class:`HttpConnection` is fed the in-order bytes of each side of one connection
(:meth:`feed`) and returns the :class:`HttpTransaction` objects that completed.
Bodies are de-chunked, decompressed when gzip/deflate encoded (bounded), and kept
up to ``max_body`` bytes for the payload sink; a body cut by that limit or by a
gap in the capture is marked ``truncated``.

Bad input (not HTTP, header blocks beyond ``max_header`` bytes, bad chunk sizes)
raises :class:`HttpError` from :meth:`feed`; the side that raised is not parsed
further, what was read before is kept.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

from govsoc.errors import ParseError

METHODS = frozenset({
    b"GET", b"POST", b"HEAD", b"PUT", b"DELETE", b"OPTIONS", b"TRACE", b"CONNECT", b"PATCH",
    b"PROPFIND", b"PROPPATCH", b"MKCOL", b"COPY", b"MOVE", b"LOCK", b"UNLOCK", b"SEARCH",
    b"REPORT", b"MKACTIVITY", b"CHECKOUT", b"MERGE", b"NOTIFY", b"SUBSCRIBE", b"UNSUBSCRIBE",
    b"PURGE", b"LINK", b"UNLINK", b"BPROPFIND", b"RPC_IN_DATA", b"RPC_OUT_DATA",
})
#: the first bytes of a request, to recognise HTTP on any port
REQUEST_PREFIXES = tuple(m + b" " for m in METHODS)
# the URI may hold raw spaces (seen from broken clients); the version ends the line
_REQUEST_LINE = re.compile(rb"^([A-Za-z_\-]{1,32}) +(.*?) *(?: HTTP/(\d+\.\d+))?\s*$")
_STATUS_LINE = re.compile(rb"^HTTP/(\d+\.\d+) +(\d{3})(?: (.*))?$")
_CHUNK_SIZE = re.compile(rb"^\s*([0-9A-Fa-f]+)")


class HttpError(ParseError):
    """A side of an HTTP connection that cannot be parsed further."""


@dataclass
class HttpBody:
    """One request or response body as carved from the stream."""

    size: int = 0  # bytes on the wire (after de-chunking)
    data: bytearray = field(default_factory=bytearray)
    truncated: bool = False
    encoding: str = ""

    def append(self, chunk: bytes | bytearray, limit: int) -> None:
        """Count ``chunk`` and keep what fits under ``limit`` bytes (the rest marks
        the body truncated)."""
        self.size += len(chunk)
        room = limit - len(self.data)
        if room >= len(chunk):
            self.data += chunk
        else:
            if room > 0:
                self.data += chunk[:room]
            self.truncated = True

    def decoded(self, limit: int) -> bytes:
        """The body with gzip/deflate content encoding removed (at most ``limit``)."""
        raw = bytes(self.data)
        if self.encoding in ("gzip", "x-gzip", "deflate"):
            wbits = 47 if "gzip" in self.encoding else 15
            try:
                inflater = zlib.decompressobj(wbits)
                out = inflater.decompress(raw, limit)
                return out
            except zlib.error:
                try:  # raw deflate, as some servers send it
                    return zlib.decompressobj(-15).decompress(raw, limit)
                except zlib.error:
                    return raw
        return raw


@dataclass
class HttpTransaction:
    """One request and its response (either may be missing)."""

    ts: float
    method: str | None = None
    uri: str | None = None
    version: str | None = None
    request_headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None
    reason: str | None = None
    response_version: str | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    request_body: HttpBody = field(default_factory=HttpBody)
    response_body: HttpBody = field(default_factory=HttpBody)
    request_bytes: int = 0
    response_bytes: int = 0
    end_ts: float = 0.0
    has_response: bool = False

    @property
    def host(self) -> str | None:
        return self.request_headers.get("host")


class _Side:
    """Parsing state of one direction."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.state = "headers"  # headers | body | chunk-size | chunk-data | chunk-end |
        #                          trailer | until-close | dead | tunnel
        self.remaining = 0
        self.current: HttpTransaction | None = None
        self.body: HttpBody | None = None
        self.head_bytes = 0
        #: bytes after the switch to another protocol (101, CONNECT), for the next parser
        self.leftover = bytearray()


class HttpConnection:
    """HTTP/1.x transactions of one TCP connection."""

    def __init__(self, max_header: int = 65536, max_body: int = 4 << 20) -> None:
        self.max_header = max_header
        self.max_body = max_body
        self.request = _Side()
        self.response = _Side()
        self.pending: list[HttpTransaction] = []  # requests waiting for a response
        self.done: list[HttpTransaction] = []
        #: the protocol the connection switched to (``Upgrade`` of a 101), lower case
        self.upgrade = ""
        #: the transaction whose answer switched protocols (its request goes on in h2c)
        self.switched: HttpTransaction | None = None

    # -- feeding ---------------------------------------------------------------------------
    def feed(self, is_orig: bool, data: bytes, ts: float) -> list[HttpTransaction]:
        side = self.request if is_orig else self.response
        state = side.state
        if state == "dead":
            return []
        if state == "tunnel":
            if len(side.leftover) < self.max_header:
                side.leftover += data
            return []
        if state == "body" and not side.buf and len(data) < side.remaining:
            # the common case of a body segment: no buffering needed
            self._body_bytes(side, data)
            side.remaining -= len(data)
            return []
        side.buf += data
        try:
            if is_orig:
                self._run(side, ts, self._request_head)
            else:
                self._run(side, ts, self._response_head)
        except HttpError:
            side.state = "dead"
            side.buf.clear()
            raise
        out = self.done
        self.done = []
        return out

    def gap(self, is_orig: bool, size: int) -> None:
        """Bytes of this side were never captured: the body in progress is truncated;
        a gap in a header block ends parsing of this side."""
        side = self.request if is_orig else self.response
        if side.body is not None and side.state in ("body", "chunk-data"):
            side.body.truncated = True
            side.body.size += min(size, side.remaining)
            if side.state == "body" and size <= side.remaining:
                side.remaining -= size
                if side.remaining == 0:
                    self._body_done(side, 0.0, is_orig)
                return
        if side.state not in ("until-close", "tunnel"):
            side.state = "dead"
            side.buf.clear()

    def close(self, ts: float) -> list[HttpTransaction]:
        """End of the connection: everything still open is complete as it stands."""
        for side, is_orig in ((self.request, True), (self.response, False)):
            if side.state == "until-close" and side.current is not None:
                self._body_done(side, ts, is_orig)
            elif side.body is not None and side.current is not None:
                side.body.truncated = True
                self._body_done(side, ts, is_orig)
        out = self.done + self.pending
        self.done = []
        self.pending = []
        return out

    # -- the state machine -----------------------------------------------------------------
    def _run(self, side: _Side, ts: float, head: object) -> None:
        buf = side.buf
        is_orig = side is self.request
        while buf:
            state = side.state
            if state == "headers":
                end = buf.find(b"\r\n\r\n")
                sep = 4
                if end < 0:
                    end = buf.find(b"\n\n")
                    sep = 2
                if end < 0:
                    if is_orig and buf.find(b"\n") >= 0 and not re.search(
                            rb"HTTP/\d", bytes(buf[:buf.find(b"\n")])):
                        # HTTP/0.9: a request line without a version and no headers
                        line_end = buf.find(b"\n")
                        self._request_head(bytes(buf[:line_end]), ts, line_end + 1)
                        del buf[:line_end + 1]
                        continue
                    if len(buf) > self.max_header:
                        raise HttpError(f"header block longer than {self.max_header} bytes")
                    if not is_orig and len(buf) >= 5 and not buf.startswith(b"HTTP/"):
                        self._response_09(side, ts)
                        continue
                    return
                block = bytes(buf[:end])
                del buf[:end + sep]
                if is_orig:
                    self._request_head(block, ts, end + sep)
                else:
                    self._response_head(block, ts, end + sep)
            elif state == "body":
                take = min(side.remaining, len(buf))
                self._body_bytes(side, buf[:take])
                del buf[:take]
                side.remaining -= take
                if side.remaining == 0:
                    self._body_done(side, ts, is_orig)
            elif state == "until-close":
                self._body_bytes(side, buf)
                buf.clear()
            elif state == "chunk-size":
                end = buf.find(b"\n")
                if end < 0:
                    if len(buf) > 1024:
                        raise HttpError("chunk size line longer than 1024 bytes")
                    return
                match = _CHUNK_SIZE.match(bytes(buf[:end]))
                if not match:
                    raise HttpError("bad chunk size line "
                                    f"{bytes(buf[:min(end, 40)])!r}")
                size = int(match.group(1), 16)
                del buf[:end + 1]
                if size == 0:
                    side.state = "trailer"
                else:
                    side.remaining = size
                    side.state = "chunk-data"
            elif state == "chunk-data":
                take = min(side.remaining, len(buf))
                self._body_bytes(side, buf[:take])
                del buf[:take]
                side.remaining -= take
                if side.remaining == 0:
                    side.state = "chunk-end"
            elif state == "chunk-end":
                if len(buf) < 2 and buf[:1] == b"\r":
                    return
                if buf.startswith(b"\r\n"):
                    del buf[:2]
                elif buf.startswith(b"\n"):
                    del buf[:1]
                side.state = "chunk-size"
            elif state == "trailer":
                if buf.startswith(b"\r\n") or buf.startswith(b"\n"):
                    del buf[:2 if buf.startswith(b"\r\n") else 1]
                    self._body_done(side, ts, is_orig)
                    continue
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(buf) > self.max_header:
                        raise HttpError("chunked trailer longer than the header limit")
                    return
                del buf[:end + 4]
                self._body_done(side, ts, is_orig)
            else:  # dead or tunnel
                if state == "tunnel":
                    side.leftover += buf[:self.max_header]
                buf.clear()
                return

    @staticmethod
    def _headers(lines: list[bytes]) -> dict[str, str]:
        headers: dict[str, str] = {}
        for line in lines:
            name, sep, value = line.partition(b":")
            if not sep:
                continue
            key = name.strip().decode("latin-1").lower()
            text = value.strip().decode("utf-8", "backslashreplace")
            if key in headers and key not in ("host",):
                headers[key] = f"{headers[key]}, {text}"
            elif key not in headers:
                headers[key] = text
        return headers

    def _request_head(self, block: bytes, ts: float, size: int) -> None:
        lines = block.replace(b"\r\n", b"\n").split(b"\n")
        while lines and not lines[0].strip():
            lines.pop(0)  # stray CRLFs between pipelined requests
        if not lines:
            return
        match = _REQUEST_LINE.match(lines[0])
        if not match or match.group(1).upper() not in METHODS:
            raise HttpError(f"not an HTTP request line: {lines[0][:60]!r}")
        tx = HttpTransaction(ts=ts, method=match.group(1).decode("ascii"),
                             uri=match.group(2).decode("utf-8", "backslashreplace"),
                             version=(match.group(3) or b"0.9").decode("ascii"))
        tx.request_headers = self._headers(lines[1:])
        tx.request_bytes = size
        self.pending.append(tx)
        side = self.request
        side.current = tx
        length = tx.request_headers.get("content-length")
        if "chunked" in tx.request_headers.get("transfer-encoding", "").lower():
            self._start_body(side, tx.request_body, tx.request_headers, "chunk-size", 0)
        elif length:
            size_ = _content_length(length)
            if size_ > 0:
                self._start_body(side, tx.request_body, tx.request_headers, "body", size_)
            else:
                side.current = None
        else:
            side.current = None
        if tx.method == "CONNECT":
            side.state = "tunnel" if side.state == "headers" else side.state

    def _response_head(self, block: bytes, ts: float, size: int) -> None:
        lines = block.replace(b"\r\n", b"\n").split(b"\n")
        while lines and not lines[0].strip():
            lines.pop(0)
        if not lines:
            return
        match = _STATUS_LINE.match(lines[0].rstrip())
        if not match:
            raise HttpError(f"not an HTTP status line: {lines[0][:60]!r}")
        status = int(match.group(2))
        headers = self._headers(lines[1:])
        if 100 <= status < 200 and status != 101:
            return  # interim response; the final one follows
        tx = self.pending.pop(0) if self.pending else HttpTransaction(ts=ts)
        tx.has_response = True
        tx.status = status
        tx.reason = (match.group(3) or b"").decode("utf-8", "backslashreplace").strip()
        tx.response_version = match.group(1).decode("ascii")
        tx.response_headers = headers
        tx.response_bytes = size
        side = self.response
        side.current = tx
        if status == 101 or (tx.method == "CONNECT" and 200 <= status < 300):
            self.upgrade = headers.get("upgrade", "connect" if status != 101 else "").lower()
            self.switched = tx
            side.state = "tunnel"
            self.request.state = "tunnel"
            self._finish(tx, ts)
            return
        no_body = tx.method == "HEAD" or status in (204, 304)
        length = headers.get("content-length")
        if no_body:
            self._finish(tx, ts)
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._start_body(side, tx.response_body, headers, "chunk-size", 0)
        elif length is not None:
            size_ = _content_length(length)
            if size_ > 0:
                self._start_body(side, tx.response_body, headers, "body", size_)
            else:
                self._finish(tx, ts)
        else:
            self._start_body(side, tx.response_body, headers, "until-close", 0)

    def _response_09(self, side: _Side, ts: float) -> None:
        tx = self.pending.pop(0) if self.pending else HttpTransaction(ts=ts)
        tx.has_response = True
        tx.response_version = "0.9"
        side.current = tx
        self._start_body(side, tx.response_body, {}, "until-close", 0)

    def _start_body(self, side: _Side, body: HttpBody, headers: dict[str, str], state: str,
                    remaining: int) -> None:
        side.body = body
        body.encoding = headers.get("content-encoding", "").lower().strip()
        side.state = state
        side.remaining = remaining

    def _body_bytes(self, side: _Side, chunk: bytes | bytearray) -> None:
        body = side.body
        if body is not None:
            body.append(chunk, self.max_body)

    def _body_done(self, side: _Side, ts: float, is_orig: bool) -> None:
        tx = side.current
        side.body = None
        side.current = None
        if side.state not in ("dead", "tunnel"):
            side.state = "headers"
        if tx is not None and not is_orig:
            self._finish(tx, ts)

    def _finish(self, tx: HttpTransaction, ts: float) -> None:
        tx.end_ts = ts
        self.done.append(tx)
        if self.response.current is tx and self.response.state == "headers":
            self.response.current = None


def _content_length(value: str) -> int:
    text = value.split(",")[0].strip()
    if not text.isdigit():
        raise HttpError(f"bad Content-Length {value[:40]!r}")
    return int(text)


def looks_like_http(payload: bytes) -> bool:
    """True when a payload starts like an HTTP request or response."""
    return payload.startswith(REQUEST_PREFIXES) or payload.startswith(b"HTTP/1.")
