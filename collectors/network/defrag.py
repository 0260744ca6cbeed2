"""IPv4 and IPv6 fragment reassembly, in bounded memory.

:func:`collectors.network.decode.decode` hands a fragment back as a
:class:`~collectors.network.decode.Fragment`; :meth:`Defragmenter.add` keeps it
with the other fragments of its datagram (keyed by addresses, identification and,
for IPv4, protocol, as RFC 791 and RFC 8200 define) and returns the whole IP
datagram once every byte from offset 0 to the end given by the last fragment has
arrived. The caller decodes that datagram like any captured IP packet, so DNS or
HTTP carried in fragments is read like the rest.

Bounds (a fragment flood must not exhaust memory):

- a datagram waits at most ``timeout`` seconds of capture time for its missing
  fragments (``fragment_timeout``);
- at most ``max_fragments`` fragments a datagram (``fragment_limit``), at most
  ``max_datagrams`` datagrams and ``max_bytes`` bytes pending altogether: past
  either cap the oldest datagram is dropped (``fragment_limit``);
- a datagram larger than 65,535 bytes (IPv4's "ping of death", or an IPv6 one
  without a jumbo option) is refused (``fragment_oversize``).

Overlaps: a fragment that covers bytes already received with *the same* bytes is a
retransmission and is harmless. One that carries *different* bytes for the same
offsets is ambiguous — stacks disagree on which copy wins (first, last, BSD-right),
which is how fragment-overlap evasion (Teardrop, Ptacek & Newsham) hides a payload
from a sensor — so the datagram is refused rather than guessed at
(``fragment_overlap``), and later fragments of it are dropped too until it times
out. So are two last fragments that disagree on the datagram's length, and a
fragment past the announced end (``fragment_overlap``). Refusals are reported to
the caller through ``on_suspicious(reason, fragment, ts)``, which the sensor turns
into ``network.scan`` anomaly counts per source.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from struct import pack

from collectors.network.decode import Fragment

MAX_DATAGRAM = 65_535
#: reasons :meth:`Defragmenter.add` may count; the first three are suspicious
SUSPICIOUS = ("fragment_overlap", "fragment_oversize", "fragment_bad_length")
REASONS = (*SUSPICIOUS, "fragment_timeout", "fragment_limit", "fragment_truncated")

FragmentKey = tuple[int, bytes, bytes, int, int]


class PendingDatagram:
    """The fragments of one datagram received so far."""

    __slots__ = ("captured_short", "end", "first_ts", "parts", "poisoned", "proto", "size",
                 "vlan")

    def __init__(self, ts: float, proto: int, vlan: int) -> None:
        self.first_ts = ts
        self.proto = proto
        self.vlan = vlan
        self.parts: list[tuple[int, bytes]] = []  # (offset, bytes), in arrival order
        self.end = -1          # datagram payload length, once the last fragment came
        self.size = 0          # bytes held
        self.poisoned = False  # refused: later fragments are dropped
        self.captured_short = False  # a fragment was cut by the snap length


class Defragmenter:
    """Pending datagrams of one capture, reassembled as their fragments arrive."""

    def __init__(self, *, timeout: float = 30.0, max_fragments: int = 100,
                 max_datagrams: int = 4096, max_bytes: int = 16 << 20,
                 problems: Counter[str] | None = None,
                 on_suspicious: Callable[[str, Fragment, float], None] | None = None) -> None:
        self.timeout = timeout
        self.max_fragments = max_fragments
        self.max_datagrams = max_datagrams
        self.max_bytes = max_bytes
        self.on_suspicious = on_suspicious
        self.pending: dict[FragmentKey, PendingDatagram] = {}  # oldest first
        self.bytes = 0
        #: reason → count (the sensor passes its own problem counter)
        self.problems: Counter[str] = problems if problems is not None else Counter()
        self.fragments = 0
        self.reassembled = 0

    def add(self, frag: Fragment, ts: float) -> bytes | None:
        """Take one fragment; the reassembled IP datagram when it completes one."""
        self.fragments += 1
        self.expire(ts)
        key = (frag.version, frag.src, frag.dst, frag.ident,
               frag.proto if frag.version == 4 else 0)
        dgram = self.pending.get(key)
        if dgram is None:
            if len(self.pending) >= self.max_datagrams:
                self._drop_oldest("fragment_limit")
            dgram = self.pending[key] = PendingDatagram(ts, frag.proto, frag.vlan)
        if dgram.poisoned:
            return None
        data = frag.data
        start = frag.offset
        stop = start + frag.wire_len
        if stop > MAX_DATAGRAM - (20 if frag.version == 4 else 0):
            self._refuse(key, dgram, "fragment_oversize", frag, ts)
            return None
        if frag.more and frag.wire_len % 8:
            # only the last fragment may end off an 8-byte boundary (RFC 791, RFC 8200)
            self._refuse(key, dgram, "fragment_bad_length", frag, ts)
            return None
        if len(data) < frag.wire_len:
            dgram.captured_short = True
        if frag.offset == 0 and frag.version == 6:
            dgram.proto = frag.proto  # the next header of the first fragment counts
        if not frag.more:
            if dgram.end >= 0 and dgram.end != stop:
                self._refuse(key, dgram, "fragment_overlap", frag, ts)
                return None
            if any(offset + len(held) > stop for offset, held in dgram.parts):
                self._refuse(key, dgram, "fragment_overlap", frag, ts)
                return None
            dgram.end = stop
        if dgram.end >= 0 and stop > dgram.end:
            self._refuse(key, dgram, "fragment_overlap", frag, ts)
            return None
        stop = start + len(data)
        duplicate = False
        for offset, held in dgram.parts:
            lo = max(offset, start)
            hi = min(offset + len(held), stop)
            if lo >= hi:
                continue
            if held[lo - offset:hi - offset] != data[lo - start:hi - start]:
                self._refuse(key, dgram, "fragment_overlap", frag, ts)
                return None
            if lo == start and hi == stop:
                duplicate = True  # a retransmitted copy: nothing new in it
        if not duplicate and data:
            if len(dgram.parts) >= self.max_fragments:
                self.problems["fragment_limit"] += 1
                self._forget(key)
                return None
            dgram.parts.append((start, data))
            dgram.size += len(data)
            self.bytes += len(data)
            while self.bytes > self.max_bytes and self.pending:
                self._drop_oldest("fragment_limit")
            if key not in self.pending:
                return None
        if dgram.end < 0:
            return None
        payload = self._assemble(dgram)
        if payload is None:
            return None
        self._forget(key)
        if dgram.captured_short:
            self.problems["fragment_truncated"] += 1
            return None
        self.reassembled += 1
        if frag.version == 4:
            return pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), frag.ident, 0, 64,
                        dgram.proto, 0, frag.src, frag.dst) + payload
        return pack("!IHBB16s16s", 0x60000000, len(payload), dgram.proto, 64,
                    frag.src, frag.dst) + payload

    @staticmethod
    def _assemble(dgram: PendingDatagram) -> bytes | None:
        """The payload when the parts cover 0..end without a hole, else None."""
        reached = 0
        pieces = []
        for offset, held in sorted(dgram.parts, key=lambda p: p[0]):
            if offset > reached:
                return None
            tail = offset + len(held)
            if tail > reached:
                pieces.append(held[reached - offset:])
                reached = tail
        if reached < dgram.end:
            return None
        return b"".join(pieces)

    def _refuse(self, key: FragmentKey, dgram: PendingDatagram, reason: str,
                frag: Fragment, ts: float) -> None:
        self.problems[reason] += 1
        self.bytes -= dgram.size
        dgram.size = 0
        dgram.parts = []
        dgram.poisoned = True
        if self.on_suspicious is not None:
            self.on_suspicious(reason, frag, ts)

    def _forget(self, key: FragmentKey) -> None:
        dgram = self.pending.pop(key)
        self.bytes -= dgram.size

    def _drop_oldest(self, reason: str) -> None:
        key = next(iter(self.pending))
        if not self.pending[key].poisoned:
            self.problems[reason] += 1
        self._forget(key)

    def expire(self, now: float) -> None:
        """Drop datagrams that waited longer than the timeout."""
        pending = self.pending
        limit = now - self.timeout
        while pending:
            key = next(iter(pending))
            if pending[key].first_ts >= limit:
                return
            if not pending[key].poisoned:
                self.problems["fragment_timeout"] += 1
            self._forget(key)

    def flush(self) -> None:
        """End of input: what is still incomplete never will be."""
        for dgram in self.pending.values():
            if not dgram.poisoned:
                self.problems["fragment_timeout"] += 1
        self.pending.clear()
        self.bytes = 0
