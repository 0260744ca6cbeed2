"""The syslog receiver (UDP, TCP, TLS) and syslog messages → ECS events.

:class:`SyslogReceiver` is a :class:`~collectors.base.Source`: listener threads
put raw messages on one bounded queue and :meth:`SyslogReceiver.batches` turns
them into batches in the caller's thread.

* **UDP** cannot push back on a sender, so when the queue is full a datagram is
  dropped and counted (``udp_dropped``); datagrams the kernel dropped because the
  socket buffer overflowed before they were read are counted too
  (``udp_kernel_dropped``, from ``/proc/net/udp``). Both are visible in
  :attr:`SyslogReceiver.counters` and in ``govsoc listen syslog``'s status line.
  The receiver asks for a 32 MB socket buffer with ``SO_RCVBUFFORCE`` when it
  runs privileged; otherwise the kernel caps the request at twice
  ``net.core.rmem_max``, which a busy unprivileged server wants raised.
* **TCP** (and TLS) pushes back instead: a connection's reader waits for room in
  the queue, stops reading its socket, and the sender's TCP window closes.
  Nothing received over TCP is dropped.
* Framing on TCP follows RFC 6587: a frame starting with a digit is
  octet-counted (``LEN SP MSG``), anything else is newline-delimited.

Every message is parsed by :mod:`collectors.syslog_parse`; messages from sshd,
sudo, su, the shadow tools and PAM become ``system.auth`` events through
:mod:`collectors.authlog` (so brute force over syslog is detected), the rest
``syslog`` events. The sender's address is kept in ``log.source.address``. A
message that cannot be read becomes a dead letter naming the sender.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import blake2b
from typing import Any

from collectors.authlog import auth_event, claims, stamp_text, syslog_fields
from collectors.base import DEFAULT_BATCH_SIZE, Batch
from collectors.lines import RawLine
from collectors.syslog_parse import SyslogMessage, SyslogParser
from collectors.textlog import decode_line
from govsoc.errors import GovsocError, RecordError
from govsoc.events import DeadLetter, Event, format_timestamp

log = logging.getLogger("govsoc.collectors.syslog")

DATASET = "syslog"
MODULE = "syslog"
DEFAULT_MAX_MESSAGE_BYTES = 1 << 20
DEFAULT_QUEUE_SIZE = 100_000


def syslog_event(msg: SyslogMessage, original: str) -> Event:
    """The ECS event of one syslog message (``system.auth`` when auth claims it)."""
    if claims(msg):
        event = auth_event(msg, original)
    else:
        event = {"@timestamp": stamp_text(msg.timestamp),
                 "event": {"kind": "event", "dataset": DATASET, "module": MODULE,
                           "original": original},
                 "message": msg.message}
        syslog_fields(msg, event)
        if not event["process"]:
            del event["process"]
    return event


class SyslogLineParser:
    """Line parser for syslog files (``/var/log/syslog``, ``messages``)."""

    dataset = DATASET

    def __init__(self, timezone: str | None = None, reference: datetime | None = None) -> None:
        self.syslog = SyslogParser(timezone, reference or datetime.now(UTC))

    @property
    def reference(self) -> datetime | None:
        return self.syslog.reference

    @reference.setter
    def reference(self, value: datetime | None) -> None:
        self.syslog.reference = value

    def __call__(self, text: str, line: RawLine) -> Event | None:
        if not text.strip():
            return None
        msg = self.syslog.parse(text, position=f"line {line.number}")
        return syslog_event(msg, text)


class SyslogError(GovsocError):
    """A syslog listener cannot start (port in use, bad TLS certificate)."""


@dataclass
class Listener:
    """One listening socket of the receiver."""

    protocol: str  # "udp", "tcp" or "tls"
    host: str = "0.0.0.0"  # noqa: S104 - a syslog server listens on the network
    port: int = 514
    tls_cert: str | None = None
    tls_key: str | None = None


#: one received message: (bytes, sender "ip:port", protocol, receive time, problem or
#: None). A plain tuple rather than a class: the garbage collector stops tracking
#: tuples of plain values, which matters with 100,000 of them queued.
_Received = tuple[bytes, str, str, float, "str | None"]


class MessageQueue:
    """A bounded FIFO of received messages shared by the listener threads."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: collections.deque[_Received] = collections.deque()
        self._cond = threading.Condition()

    def __len__(self) -> int:
        return len(self._items)

    def offer(self, items: list[_Received]) -> int:
        """Add what fits without waiting; returns how many were dropped."""
        with self._cond:
            room = self.capacity - len(self._items)
            take = items if len(items) <= room else items[:max(room, 0)]
            self._items.extend(take)
            self._cond.notify()
        return len(items) - len(take)

    def put(self, item: _Received, stopping: threading.Event) -> bool:
        """Add one item, waiting for room (back-pressure); False when stopping."""
        with self._cond:
            while len(self._items) >= self.capacity:
                if stopping.is_set():
                    return False
                self._cond.wait(0.1)
            self._items.append(item)
            self._cond.notify_all()
        return True

    def take(self, limit: int, timeout: float) -> list[_Received]:
        with self._cond:
            if not self._items:
                self._cond.wait(timeout)
            count = min(limit, len(self._items))
            out = [self._items.popleft() for _ in range(count)]
            if out:
                self._cond.notify_all()
        return out


@dataclass
class ReceiverCounters:
    """What the receiver has seen since it started."""

    received: int = 0
    udp_dropped: int = 0
    #: datagrams the kernel dropped because the socket buffer was full (Linux)
    udp_kernel_dropped: int = 0
    events: int = 0
    auth_events: int = 0
    rejected: int = 0
    invalid_utf8: int = 0
    truncated: int = 0
    framing_errors: int = 0
    tcp_connections: int = 0
    tls_failures: int = 0
    by_protocol: collections.Counter[str] = field(default_factory=collections.Counter)

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "by_protocol"}
        out["by_protocol"] = dict(self.by_protocol)
        return out


class SyslogReceiver:
    """Receives syslog over UDP, TCP and TLS; a long-running :class:`Source`."""

    def __init__(self, listeners: list[Listener], *, name: str = "syslog",
                 timezone: str | None = None, queue_size: int = DEFAULT_QUEUE_SIZE,
                 batch_size: int = DEFAULT_BATCH_SIZE, flush_seconds: float = 0.5,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
                 udp_buffer_bytes: int = 32 << 20) -> None:
        if not listeners:
            raise SyslogError("no syslog listener configured (give a UDP or TCP port)")
        self.name = name
        self.listeners = listeners
        self.parser = SyslogParser(timezone)
        self.queue = MessageQueue(queue_size)
        self.batch_size = batch_size
        self.flush_seconds = flush_seconds
        self.max_message_bytes = max_message_bytes
        self.udp_buffer_bytes = udp_buffer_bytes
        self.counters = ReceiverCounters()
        self._stopping = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._kernel_drops: dict[int, int] = {}
        self._sequence = 0
        self._sources: dict[tuple[str, str], tuple[str, bytes]] = {}
        self._second = -1
        self._reference = datetime.now(UTC)
        self._created = ""
        self._started = False
        #: (protocol, port) actually bound, in listener order (port 0 → the chosen one)
        self.bound: list[tuple[str, int]] = []

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        """Bind every listener and start its thread (idempotent)."""
        if self._started:
            return
        self._started = True
        try:
            for listener in self.listeners:
                self._start_listener(listener)
        except BaseException:
            self.stop()
            raise

    def _start_listener(self, listener: Listener) -> None:
        family = socket.AF_INET6 if ":" in listener.host else socket.AF_INET
        if listener.protocol == "udp":
            sock = socket.socket(family, socket.SOCK_DGRAM)
            _receive_buffer(sock, self.udp_buffer_bytes)
            target: Callable[..., None] = self._udp_loop
            context = None
        elif listener.protocol in ("tcp", "tls"):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            context = None
            if listener.protocol == "tls":
                if not listener.tls_cert:
                    sock.close()
                    raise SyslogError("a TLS syslog listener needs tls_cert (and tls_key)")
                context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                try:
                    context.load_cert_chain(listener.tls_cert, listener.tls_key)
                except (OSError, ssl.SSLError) as exc:
                    sock.close()
                    raise SyslogError(f"cannot load TLS certificate {listener.tls_cert}: "
                                      f"{exc}") from None
            target = self._tcp_accept_loop
        else:
            raise SyslogError(f"unknown syslog protocol {listener.protocol!r} "
                              "(udp, tcp or tls)")
        try:
            sock.bind((listener.host, listener.port))
            if sock.type == socket.SOCK_STREAM:
                sock.listen(128)
        except OSError as exc:
            sock.close()
            raise SyslogError(f"cannot listen on {listener.protocol} {listener.host}:"
                              f"{listener.port}: {exc.strerror or exc}") from None
        sock.settimeout(0.2)
        self._sockets.append(sock)
        self.bound.append((listener.protocol, sock.getsockname()[1]))
        args: tuple[Any, ...] = (sock,) if context is None and listener.protocol == "udp" \
            else (sock, listener.protocol, context)
        thread = threading.Thread(target=target, args=args, daemon=True,
                                  name=f"syslog-{listener.protocol}-{self.bound[-1][1]}")
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        """Stop listening; :meth:`batches` returns after handing out what was queued."""
        self._stopping.set()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()

    # -- listeners ---------------------------------------------------------------
    def _udp_loop(self, sock: socket.socket) -> None:
        limit = self.max_message_bytes
        counters = self.counters
        baseline: dict[int, int] = {}
        next_drop_check = 0.0
        senders: dict[Any, str] = {}
        recvfrom = sock.recvfrom
        self._update_kernel_drops(sock, baseline)
        while not self._stopping.is_set():
            try:
                data, addr = recvfrom(65536)
            except TimeoutError:
                if time.time() >= next_drop_check:
                    next_drop_check = time.time() + 1.0
                    self._update_kernel_drops(sock, baseline)
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                continue
            now = time.time()
            sender = senders.get(addr)
            if sender is None:
                sender = _sender_name(senders, addr)
            batch: list[_Received] = [(data[:limit], sender, "udp", now, None)]
            append = batch.append
            # drain what the kernel already holds without blocking, one queue lock per burst
            sock.setblocking(False)
            try:
                for _ in range(511):
                    data, addr = recvfrom(65536)
                    sender = senders.get(addr)
                    if sender is None:
                        sender = _sender_name(senders, addr)
                    append((data[:limit], sender, "udp", now, None))
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                if self._stopping.is_set():
                    return
            finally:
                with contextlib.suppress(OSError):
                    sock.settimeout(0.2)
            dropped = self.queue.offer(batch)
            with self._lock:
                counters.received += len(batch)
                counters.by_protocol["udp"] += len(batch)
                counters.udp_dropped += dropped
            if now >= next_drop_check:
                next_drop_check = now + 1.0
                self._update_kernel_drops(sock, baseline)

    def _update_kernel_drops(self, sock: socket.socket, baseline: dict[int, int]) -> None:
        try:
            inode = os.fstat(sock.fileno()).st_ino
        except OSError:
            return
        drops = socket_drops(inode)
        if drops is None:
            return
        start = baseline.setdefault(inode, drops)
        with self._lock:
            self._kernel_drops[inode] = drops - start
            self.counters.udp_kernel_dropped = sum(self._kernel_drops.values())

    def _tcp_accept_loop(self, sock: socket.socket, protocol: str,
                         context: ssl.SSLContext | None) -> None:
        while not self._stopping.is_set():
            try:
                conn, addr = sock.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                continue
            with self._lock:
                self.counters.tcp_connections += 1
            thread = threading.Thread(target=self._tcp_connection,
                                      args=(conn, f"{addr[0]}:{addr[1]}", protocol, context),
                                      daemon=True, name=f"syslog-{protocol}-{addr[0]}")
            thread.start()

    def _tcp_connection(self, conn: socket.socket, sender: str, protocol: str,
                        context: ssl.SSLContext | None) -> None:
        stream: socket.socket = conn
        try:
            conn.settimeout(10.0)
            if context is not None:
                try:
                    stream = context.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError) as exc:
                    with self._lock:
                        self.counters.tls_failures += 1
                    self._enqueue((b"", sender, protocol, time.time(),
                                   f"TLS handshake failed: {exc}"))
                    return
            stream.settimeout(0.5)
            framer = StreamFramer(self.max_message_bytes)
            while not self._stopping.is_set():
                try:
                    chunk = stream.recv(65536)
                except TimeoutError:
                    continue
                except (OSError, ssl.SSLError):
                    break
                if not chunk:
                    break
                for frame, problem in framer.feed(chunk):
                    if not self._enqueue((frame, sender, protocol, time.time(), problem)):
                        return
            for frame, problem in framer.close():
                self._enqueue((frame, sender, protocol, time.time(), problem))
        finally:
            with contextlib.suppress(OSError):
                stream.close()

    def _enqueue(self, item: _Received) -> bool:
        ok = self.queue.put(item, self._stopping)
        if ok:
            with self._lock:
                self.counters.received += 1
                self.counters.by_protocol[item[2]] += 1
        return ok

    # -- the source --------------------------------------------------------------
    def batches(self) -> Iterator[Batch]:
        """Batches of parsed messages until :meth:`stop` (then what is left queued)."""
        self.start()
        pending = Batch()
        deadline = time.monotonic() + self.flush_seconds
        while True:
            stopping = self._stopping.is_set()
            items = self.queue.take(self.batch_size - len(pending), 0.05 if not stopping
                                    else 0.0)
            for item in items:
                self._convert(item, pending)
            now = time.monotonic()
            if len(pending) >= self.batch_size or (len(pending) and now >= deadline):
                yield pending
                pending = Batch()
                deadline = now + self.flush_seconds
            elif not len(pending):
                deadline = now + self.flush_seconds
            if stopping and not items:
                if len(pending):
                    yield pending
                return

    def _source(self, protocol: str, sender: str) -> tuple[str, bytes]:
        """The dead-letter source of a sender and the bytes its event ids start with
        (what :func:`~govsoc.events.event_id` hashes before the position)."""
        key = (protocol, sender)
        known = self._sources.get(key)
        if known is None:
            source = f"syslog/{protocol}/{sender}"
            known = (source, source.encode("utf-8", "surrogatepass") + b"\x00")
            if len(self._sources) >= 4096:
                self._sources.clear()
            self._sources[key] = known
        return known

    def _convert(self, item: _Received, batch: Batch) -> None:
        counters = self.counters
        data, sender, protocol, received, problem = item
        self._sequence += 1
        source, id_prefix = self._source(protocol, sender)
        if problem is not None:
            counters.rejected += 1
            if "framing" in problem or "octet count" in problem:
                counters.framing_errors += 1
            if "longer than" in problem:
                counters.truncated += 1
            batch.rejected.append(DeadLetter(source, self._position(item), problem, data))
            return
        payload = data.rstrip(b"\r\n\x00")
        try:
            text, valid = payload.decode("utf-8"), True
        except UnicodeDecodeError:
            text, valid = decode_line(payload)
        second = int(received)
        if second != self._second:
            # the year rule needs no finer reference than the second: parse results
            # (and their formatted times) are cached per second of arrival
            self._second = second
            self._reference = datetime.fromtimestamp(second, UTC)
            self._created = format_timestamp(self._reference)
        try:
            msg = self.parser.parse(text, source, "", self._reference)
        except RecordError as exc:
            counters.rejected += 1
            batch.rejected.append(DeadLetter(source, self._position(item), exc.reason, data))
            return
        event = syslog_event(msg, text)
        ev = event["event"]
        ev["id"] = blake2b(b"%s%.6f/%d" % (id_prefix, received, self._sequence),
                           digest_size=16).hexdigest()
        ev["created"] = self._created
        log_ = event.get("log")
        if log_ is None:
            event["log"] = {"source": {"address": sender}}
        else:
            log_["source"] = {"address": sender}
        if not valid:
            counters.invalid_utf8 += 1
            event.setdefault("tags", []).append("invalid_utf8")
        counters.events += 1
        if ev["dataset"] != DATASET:
            counters.auth_events += 1
        batch.events.append(event)

    def _position(self, item: _Received) -> str:
        return f"{item[2]} message {self._sequence} from {item[1]}"


def _receive_buffer(sock: socket.socket, size: int) -> None:
    """Ask the kernel for a ``size``-byte receive buffer on a UDP socket.

    UDP cannot push back, so this buffer is what absorbs a burst or a moment in
    which the listener thread waits for the interpreter. ``SO_RCVBUFFORCE`` (a
    privileged process, as a syslog server on port 514 usually is; rsyslog does
    the same) goes past the ``net.core.rmem_max`` cap that limits ``SO_RCVBUF``.
    """
    force = getattr(socket, "SO_RCVBUFFORCE", None)
    if force is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, size)
            return
        except OSError:
            pass  # not privileged: the capped request below
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)


def _sender_name(known: dict[Any, str], addr: Any) -> str:
    """``ip:port`` of a datagram's sender, remembered (senders repeat)."""
    name = f"{addr[0]}:{addr[1]}"
    if len(known) >= 4096:
        known.clear()
    known[addr] = name
    return name


class StreamFramer:
    """Splits a TCP byte stream into syslog frames (RFC 6587).

    Octet counting (``LEN SP MSG``) when a frame starts with a digit, else
    newline-delimited. Yields ``(frame, problem)``; ``problem`` is None for a good
    frame, else the reason it is rejected (over-long, bad length).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._buf = bytearray()
        self._skip_to_newline = False
        self._skip_bytes = 0

    def feed(self, chunk: bytes) -> Iterator[tuple[bytes, str | None]]:
        buf = self._buf
        buf += chunk
        while buf:
            if self._skip_bytes:
                n = min(self._skip_bytes, len(buf))
                del buf[:n]
                self._skip_bytes -= n
                continue
            if self._skip_to_newline:
                nl = buf.find(b"\n")
                if nl < 0:
                    buf.clear()
                    return
                del buf[:nl + 1]
                self._skip_to_newline = False
                continue
            if buf[:1].isdigit():
                head = bytes(buf[:11])
                stop = next((i for i, b in enumerate(head) if not 48 <= b <= 57), None)
                if stop is None and len(head) < 11:
                    return  # only digits so far: wait for the rest of the header
                if stop is None or head[stop:stop + 1] != b" ":
                    # a newline-delimited message that starts with a digit (ISO time)
                    if not (yield from self._newline_frame(buf)):
                        return
                    continue
                space = stop
                digits = head[:space]
                length = int(digits)
                if length > self.max_bytes:
                    yield bytes(buf[space + 1:space + 1 + 256]), (
                        f"frame longer than the limit: octet count {length} > "
                        f"{self.max_bytes}")
                    del buf[:space + 1]
                    self._skip_bytes = length
                    continue
                if len(buf) < space + 1 + length:
                    return
                frame = bytes(buf[space + 1:space + 1 + length])
                del buf[:space + 1 + length]
                yield frame, None
            else:
                if not (yield from self._newline_frame(buf)):
                    return

    def _newline_frame(self, buf: bytearray
                       ) -> Generator[tuple[bytes, str | None], None, bool]:
        nl = buf.find(b"\n")
        if nl < 0:
            if len(buf) > self.max_bytes:
                yield bytes(buf[:self.max_bytes]), (
                    f"message longer than the limit of {self.max_bytes} bytes "
                    "(first bytes kept)")
                buf.clear()
                self._skip_to_newline = True
                return True
            return False
        frame = bytes(buf[:nl])
        del buf[:nl + 1]
        if len(frame) > self.max_bytes:
            yield frame[:self.max_bytes], (f"message longer than the limit of "
                                           f"{self.max_bytes} bytes (first bytes kept)")
        elif frame.strip():
            yield frame, None
        return True

    def close(self) -> Iterator[tuple[bytes, str | None]]:
        """The unterminated last frame of a closed connection."""
        if self._buf and not self._skip_bytes and not self._skip_to_newline:
            data = bytes(self._buf)
            self._buf.clear()
            if data.strip():
                yield data[:self.max_bytes], None if len(data) <= self.max_bytes else (
                    f"message longer than the limit of {self.max_bytes} bytes")



def socket_drops(inode: int) -> int | None:
    """Datagrams the kernel dropped for the UDP socket with this inode.

    Linux keeps the count per socket in ``/proc/net/udp`` and ``udp6`` (the last
    column); None where that is not available.
    """
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table, encoding="ascii") as fh:
                next(fh, None)
                for row in fh:
                    fields = row.split()
                    if len(fields) >= 13 and fields[9] == str(inode):
                        return int(fields[12])
        except (OSError, ValueError):
            continue
    return None


# -- configuration: inputs.syslog ------------------------------------------------

LISTENER_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["protocol", "port"],
    "properties": {
        "protocol": {"enum": ["udp", "tcp", "tls"]},
        "host": {"type": "string"},
        "port": {"type": "integer", "minimum": 0, "maximum": 65535},
        "tls_cert": {"type": ["string", "null"]},
        "tls_key": {"type": ["string", "null"]},
        "timezone": {"type": ["string", "null"]},
        "queue_size": {"type": "integer", "minimum": 1},
        "max_message_bytes": {"type": "integer", "minimum": 1024},
    },
}
CONFIG_SCHEMA: dict[str, Any] = {"type": "array", "items": LISTENER_SCHEMA}


def receiver_from_config(listeners: list[dict[str, Any]], *, batch_size: int =
                         DEFAULT_BATCH_SIZE, name: str = "syslog") -> SyslogReceiver:
    """One receiver for the ``inputs.syslog`` listeners of ``govsoc.yml``.

    Zone, queue size and message limit are per receiver: the first listener that
    names one sets it.
    """
    def first(key: str, default: Any) -> Any:
        return next((item[key] for item in listeners if item.get(key) is not None), default)

    return SyslogReceiver(
        [Listener(item["protocol"], item.get("host", "0.0.0.0"), int(item["port"]),  # noqa: S104
                  item.get("tls_cert"), item.get("tls_key")) for item in listeners],
        name=name, timezone=first("timezone", None),
        queue_size=int(first("queue_size", DEFAULT_QUEUE_SIZE)),
        max_message_bytes=int(first("max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES)),
        batch_size=batch_size)


def _register() -> None:
    from govsoc.config import register_section

    register_section("inputs.syslog", CONFIG_SCHEMA, [])


_register()
