"""TCP stream reassembly for one direction of a connection, in bounded memory.

:meth:`TcpStream.add` takes a segment (sequence number, payload as captured, its
length on the wire) and returns the bytes that became deliverable in order, as a
list of ``bytes`` chunks and ``int`` gap sizes (bytes that were never captured).
Retransmitted and overlapping bytes are delivered once (first copy wins, as most
stacks do). Out-of-order segments wait in a buffer of at most ``max_pending``
bytes; when it overflows the missing range is declared a gap and delivery goes on,
so a lossy capture cannot make memory grow.
"""

from __future__ import annotations

MASK = 0xFFFFFFFF
HALF = 0x7FFFFFFF
_NOTHING: list[bytes | int] = []


class TcpStream:
    __slots__ = ("delivered", "gaps", "max_pending", "next_seq", "pending", "pending_bytes")

    def __init__(self, max_pending: int = 256 * 1024) -> None:
        self.next_seq = -1
        self.pending: dict[int, tuple[bytes, int]] = {}
        self.pending_bytes = 0
        self.max_pending = max_pending
        self.delivered = 0
        self.gaps = 0

    def syn(self, seq: int) -> None:
        """The side's SYN: data starts at seq + 1."""
        if self.next_seq < 0:
            self.next_seq = (seq + 1) & MASK

    def add(self, seq: int, payload: bytes, wire_len: int) -> list[bytes | int]:
        if wire_len <= 0:
            return _NOTHING
        if self.next_seq < 0:
            self.next_seq = seq
        rel = (seq - self.next_seq) & MASK
        if rel > HALF:  # starts before what was delivered: trim the old part
            behind = (self.next_seq - seq) & MASK
            if behind >= wire_len:
                return _NOTHING
            payload = payload[behind:]
            wire_len -= behind
            rel = 0
        if rel:
            old = self.pending.get(seq)
            if old is None or old[1] < wire_len:
                if old is not None:
                    self.pending_bytes -= len(old[0])
                self.pending[seq] = (payload, wire_len)
                self.pending_bytes += len(payload)
            if self.pending_bytes > self.max_pending:
                return self._skip_gap()
            return _NOTHING
        out: list[bytes | int] = []
        self._deliver(out, payload, wire_len)
        if self.pending:
            self._drain(out)
        return out

    def _deliver(self, out: list[bytes | int], payload: bytes, wire_len: int) -> None:
        if payload:
            out.append(payload)
            self.delivered += len(payload)
        if wire_len > len(payload):  # cut by the snap length
            out.append(wire_len - len(payload))
            self.gaps += wire_len - len(payload)
        self.next_seq = (self.next_seq + wire_len) & MASK

    def _drain(self, out: list[bytes | int]) -> None:
        progress = True
        while progress and self.pending:
            progress = False
            for seq in list(self.pending):
                rel = (seq - self.next_seq) & MASK
                if rel == 0 or rel > HALF:
                    payload, wire_len = self.pending.pop(seq)
                    self.pending_bytes -= len(payload)
                    if rel:
                        behind = (self.next_seq - seq) & MASK
                        if behind >= wire_len:
                            progress = True
                            continue
                        payload = payload[behind:]
                        wire_len -= behind
                    self._deliver(out, payload, wire_len)
                    progress = True

    def _skip_gap(self) -> list[bytes | int]:
        nearest = min(self.pending, key=lambda s: (s - self.next_seq) & MASK)
        gap = (nearest - self.next_seq) & MASK
        out: list[bytes | int] = [gap]
        self.gaps += gap
        self.next_seq = nearest
        self._drain(out)
        return out

    def flush(self) -> list[bytes | int]:
        """Everything still buffered, in order, with the gaps between (end of flow)."""
        out: list[bytes | int] = []
        while self.pending:
            out.extend(self._skip_gap())
        return out
