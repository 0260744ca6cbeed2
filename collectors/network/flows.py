"""Connection tracking with Zeek's conn.log semantics, in bounded memory.

A :class:`Flow` is one connection (TCP, UDP, ICMP or another IP protocol) between
an originator and a responder. The :class:`FlowTable` finds the flow of each
packet in either direction, keeps per-side packet and byte counts, the TCP
endpoint states and Zeek's ``history`` letters, and hands finished flows back to
the caller:

- when both sides closed or one reset (after ``close_delay`` seconds, so the last
  ACKs still count), and when a new SYN reuses the ports of a closed connection;
- after ``idle_timeout`` seconds without packets (per transport; ``attempt_idle``
  for a SYN nobody answered, so scans and floods do not fill the table);
- after ``max_duration`` seconds: the record is emitted and the connection
  continues as a new record, so a live sensor reports long connections;
- when the table holds ``max_flows`` flows, the least recently created is
  emitted first; and at the end of input (:meth:`FlowTable.flush`).

Memory is therefore bounded by the number of active flows, not by capture size.

Connection states (``network.connection.state``), as Zeek defines them:

====== =====================================================================
S0     SYN seen, no reply
S1     established, not terminated
SF     normal establishment and termination (UDP: both sides sent)
REJ    connection attempt rejected (RST answering the SYN)
S2     established, originator sent FIN, nothing from the responder after
S3     established, responder sent FIN, nothing from the originator after
RSTO   established, originator aborted with RST
RSTR   responder sent RST
RSTOS0 originator sent SYN then RST, never saw the SYN-ACK
RSTRH  responder sent SYN-ACK then RST, never saw the originator's SYN
SH     originator sent SYN then FIN, never saw the SYN-ACK (half-open)
SHR    responder sent SYN-ACK then FIN, never saw the SYN (UDP: only responder sent)
OTH    no SYN seen, midstream traffic (UDP: nothing recognisable)
====== =====================================================================
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from collectors.network.decode import (
    ACK,
    FIN,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    RST,
    SYN,
    Decoded,
)

# TCP endpoint states, after Zeek's TCP_Endpoint
INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET = range(7)

#: UDP ports that identify the server side when the first packet seen is a reply
LIKELY_SERVER_PORTS = frozenset({53, 67, 69, 88, 123, 137, 138, 161, 162, 389, 443, 500, 514,
                                 1812, 1813, 3478, 4500, 5060, 5353, 5355})

# ICMP request/reply pairs map onto one flow, as Zeek does (type ↔ counterpart)
_ICMP_COUNTERPART = {8: 0, 0: 8, 13: 14, 14: 13, 15: 16, 16: 15, 17: 18, 18: 17,
                     10: 9, 9: 10}
_ICMP6_COUNTERPART = {128: 129, 129: 128, 133: 134, 134: 133, 135: 136, 136: 135,
                      130: 131, 131: 130}
_ICMP_REQUESTS = frozenset({8, 13, 15, 17, 10, 128, 133, 135, 130})

_RSTOS0 = re.compile(r"\^?S[^HAFGIQ]*R.*")

FlowKey = tuple[bytes, int, bytes, int, int]


def _is_group_address(addr: bytes) -> bool:
    if len(addr) == 4:
        return addr == b"\xff\xff\xff\xff" or 224 <= addr[0] <= 239
    return addr[0] == 0xFF


class Flow:
    """One connection: endpoints, counters, TCP state and the protocol parser on it."""

    __slots__ = (
        "app",
        "closed_at",
        "community_id",
        "event_parts",
        "history",
        "index",
        "key",
        "last",
        "missed_bytes",
        "orig_bytes",
        "orig_ip_bytes",
        "orig_pkts",
        "orig_state",
        "orig_top",
        "probes",
        "proto",
        "resp_bytes",
        "resp_ip_bytes",
        "resp_pkts",
        "resp_state",
        "resp_top",
        "service",
        "start",
        "vlan",
    )

    def __init__(self, key: FlowKey, ts: float, vlan: int, index: int) -> None:
        self.key = key
        self.proto = key[4]
        self.start = ts
        self.last = ts
        self.orig_pkts = 0
        self.resp_pkts = 0
        self.orig_ip_bytes = 0
        self.resp_ip_bytes = 0
        self.orig_bytes = 0  # payload bytes by sequence range (retransmissions once)
        self.resp_bytes = 0
        self.orig_state = INACTIVE
        self.resp_state = INACTIVE
        self.history = ""
        #: the protocol parser; None until decided, False when none applies
        self.app: Any = None
        self.vlan = vlan
        self.index = index
        self.orig_top = -1  # highest sequence number seen + 1, per side
        self.resp_top = -1
        self.closed_at = 0.0
        self.probes = 0
        self.missed_bytes = 0
        self.service = ""
        self.community_id = ""  # computed once, when the first event needs it
        #: addresses as text and the network fields every event of the flow repeats
        self.event_parts: Any = None

    @property
    def terminated(self) -> bool:
        os_, rs = self.orig_state, self.resp_state
        return os_ == RESET or rs == RESET or (os_ == CLOSED and rs == CLOSED)

    def conn_state(self) -> str:
        """Zeek's conn_state of this flow (see the module documentation)."""
        os_, rs = self.orig_state, self.resp_state
        if self.proto == PROTO_TCP:
            o_inactive = os_ in (INACTIVE, PARTIAL)
            r_inactive = rs in (INACTIVE, PARTIAL)
            if rs == RESET:
                if os_ in (SYN_SENT, SYN_ACK_SENT) or (
                        os_ == RESET and self.orig_bytes == 0 and self.resp_bytes == 0):
                    return "REJ"
                return "RSTRH" if o_inactive else "RSTR"
            if os_ == RESET:
                if r_inactive:
                    return "RSTOS0" if _RSTOS0.fullmatch(self.history) else "OTH"
                return "RSTO"
            if rs == CLOSED and os_ == CLOSED:
                return "SF"
            if os_ == CLOSED:
                return "SH" if r_inactive else "S2"
            if rs == CLOSED:
                return "SHR" if o_inactive else "S3"
            if os_ == SYN_SENT and rs == INACTIVE:
                return "S0"
            if os_ == ESTABLISHED and rs == ESTABLISHED:
                return "S1"
            return "OTH"
        if self.orig_pkts:
            return "SF" if self.resp_pkts else "S0"
        return "SHR" if self.resp_pkts else "OTH"


def icmp_ports(kind: int, code: int, v6: bool) -> tuple[int, int]:
    """The (orig port, resp port) Zeek gives an ICMP message: type and counterpart."""
    table = _ICMP6_COUNTERPART if v6 else _ICMP_COUNTERPART
    counterpart = table.get(kind)
    if counterpart is not None:
        return kind, counterpart
    return kind, code


class FlowTable:
    """Active flows, keyed both ways, with expiry.

    ``on_finish(flow)`` is called for every flow that ends (in the order they
    end); ``on_new(flow)`` for every flow created (the scan counters use it).
    """

    def __init__(self, on_finish: Callable[[Flow], None],
                 on_new: Callable[[Flow], None] | None = None, *,
                 tcp_idle: float = 300.0, udp_idle: float = 60.0, other_idle: float = 60.0,
                 max_duration: float = 3600.0, close_delay: float = 5.0,
                 max_flows: int = 250_000, sweep_interval: float = 5.0,
                 attempt_idle: float = 30.0) -> None:
        self.flows: dict[FlowKey, tuple[Flow, bool]] = {}
        self.on_finish = on_finish
        self.on_new = on_new
        self.tcp_idle = tcp_idle
        self.udp_idle = udp_idle
        self.other_idle = other_idle
        self.max_duration = max_duration
        self.close_delay = close_delay
        self.attempt_idle = attempt_idle
        self.max_flows = max_flows
        self.sweep_interval = sweep_interval
        self.next_sweep = 0.0
        self.count = 0  # flows created, the index of the next one
        #: active flows by index, oldest first (one entry a flow: the sweep's list)
        self.live: dict[int, Flow] = {}

    @property
    def active(self) -> int:
        """Flows being tracked."""
        return len(self.live)

    def lookup(self, ts: float, d: Decoded) -> tuple[Flow, bool]:
        """The flow of packet ``d`` (created when new) and whether it came from the
        originator. Updates counters and TCP state."""
        proto, src, dst, sport, dport, flags = d[:6]
        if proto in (PROTO_ICMP, PROTO_ICMPV6):
            sport, dport = icmp_ports(sport, dport, proto == PROTO_ICMPV6)
        key = (src, sport, dst, dport, proto)
        entry = self.flows.get(key)
        if entry is None:
            flow, is_orig = self._create(ts, d, key, sport, dport)
        else:
            flow, is_orig = entry
            if flags & 0x12 == SYN and proto == PROTO_TCP and is_orig and flow.terminated:
                # a new connection reusing the ports of a finished one
                self._finish(flow)
                flow, is_orig = self._create(ts, d, key, sport, dport)
        if ts > flow.last:
            flow.last = ts
        if is_orig:
            flow.orig_pkts += 1
            flow.orig_ip_bytes += d.ip_len
        else:
            flow.resp_pkts += 1
            flow.resp_ip_bytes += d.ip_len
        if proto == PROTO_TCP:
            if flags & 0x07 or flow.orig_state != ESTABLISHED or \
                    flow.resp_state != ESTABLISHED:
                self._tcp(flow, is_orig, d, ts)
            else:
                # most segments: no SYN, FIN or RST on an established connection,
                # so only the byte count and one history letter can change
                plen = d.payload_len
                if plen:
                    top = flow.orig_top if is_orig else flow.resp_top
                    if top < 0:
                        top = d.seq
                    rel = (d.seq + plen - top) & 0xFFFFFFFF
                    if rel == 0 or rel > 0x7FFFFFFF:
                        mark = "T" if is_orig else "t"
                    else:
                        top = (top + rel) & 0xFFFFFFFF
                        mark = "D" if is_orig else "d"
                    if is_orig:
                        flow.orig_top = top
                        if mark == "D":
                            flow.orig_bytes += rel
                    else:
                        flow.resp_top = top
                        if mark == "d":
                            flow.resp_bytes += rel
                elif flags & ACK:
                    mark = "A" if is_orig else "a"
                else:
                    mark = ""
                if mark and mark not in flow.history:
                    flow.history += mark
        else:
            if is_orig:
                flow.orig_bytes += d.payload_len
            else:
                flow.resp_bytes += d.payload_len
            if proto == PROTO_UDP and d.payload_len:
                mark = "D" if is_orig else "d"  # Zeek marks UDP payload too
                if mark not in flow.history:
                    flow.history += mark
        if ts >= self.next_sweep:
            self.sweep(ts)
        return flow, is_orig

    def _create(self, ts: float, d: Decoded, key: FlowKey, sport: int,
                dport: int) -> tuple[Flow, bool]:
        proto = d.proto
        flip = False
        if proto == PROTO_TCP:
            flip = d.flags & (SYN | ACK) == (SYN | ACK)
        elif proto == PROTO_UDP:
            # a packet to a broadcast or multicast address is never the reply
            flip = sport in LIKELY_SERVER_PORTS and dport not in LIKELY_SERVER_PORTS and \
                not _is_group_address(d.dst)
        elif proto in (PROTO_ICMP, PROTO_ICMPV6):
            # a reply seen first: the originator is the other side
            flip = sport not in _ICMP_REQUESTS and sport != dport and (
                (_ICMP6_COUNTERPART if proto == PROTO_ICMPV6 else _ICMP_COUNTERPART)
                .get(sport) == dport)
        rkey = (key[2], key[3], key[0], key[1], proto)
        if flip:
            flow = Flow(rkey, ts, d.vlan, self.count)
            flow.history = "^"
        else:
            flow = Flow(key, ts, d.vlan, self.count)
        self.count += 1
        self.live[flow.index] = flow
        self.flows[flow.key] = (flow, True)
        self.flows[(flow.key[2], flow.key[3], flow.key[0], flow.key[1], proto)] = (flow, False)
        if len(self.live) > self.max_flows:
            self._evict_oldest()
        if self.on_new is not None:
            self.on_new(flow)
        return flow, not flip

    def _tcp(self, flow: Flow, is_orig: bool, d: Decoded, ts: float) -> None:
        flags = d.flags
        plen = d.payload_len
        history = flow.history
        if is_orig:
            state = flow.orig_state
            peer = flow.resp_state
            top = flow.orig_top
        else:
            state = flow.resp_state
            peer = flow.orig_state
            top = flow.resp_top
        letters = ""
        if flags & RST:
            state = RESET
            letters = "R"
        elif flags & SYN:
            if flags & ACK:
                letters = "H"
                if peer in (SYN_SENT, PARTIAL):
                    state = ESTABLISHED
                    peer = ESTABLISHED
                elif state == INACTIVE:
                    state = SYN_ACK_SENT
            else:
                letters = "S"
                if state == INACTIVE:
                    state = SYN_SENT
            top = (d.seq + 1) & 0xFFFFFFFF
        else:
            if state == INACTIVE:
                # the ACK completing a handshake whose SYN was not captured
                if peer == SYN_ACK_SENT and flags & ACK:
                    state = peer = ESTABLISHED
                else:
                    state = PARTIAL
            elif state == SYN_ACK_SENT and flags & ACK and peer != INACTIVE:
                state = ESTABLISHED
            if flags & FIN:
                letters = "F"
            elif plen == 0 and flags & ACK:
                letters = "A"
        if plen:
            seq = (d.seq + 1) & 0xFFFFFFFF if flags & SYN else d.seq
            if top < 0:
                top = seq
            # a segment wholly below the highest byte seen is a retransmission
            rel = (seq + plen - top) & 0xFFFFFFFF
            if rel == 0 or rel > 0x7FFFFFFF:
                letters += "T"
            else:
                # bytes are counted by sequence range, as Zeek does: a segment that
                # arrives ahead of a missing one also accounts for the hole
                top = (top + rel) & 0xFFFFFFFF
                if is_orig:
                    flow.orig_bytes += rel
                else:
                    flow.resp_bytes += rel
                letters += "D"
        if flags & FIN:
            state = CLOSED if state != RESET else state
            if "F" not in letters:
                letters += "F"
        for letter in letters:
            mark = letter if is_orig else letter.lower()
            if mark not in history:
                history += mark
        flow.history = history
        if is_orig:
            flow.orig_state = state
            flow.resp_state = peer
            flow.orig_top = top
        else:
            flow.resp_state = state
            flow.orig_state = peer
            flow.resp_top = top
        if flow.closed_at == 0.0 and (state == RESET or (state == CLOSED and peer == CLOSED)):
            flow.closed_at = ts

    def sweep(self, now: float) -> None:
        """Finish flows that are idle, too long, or closed for longer than the delay."""
        self.next_sweep = now + self.sweep_interval
        tcp_idle, udp_idle, other_idle = self.tcp_idle, self.udp_idle, self.other_idle
        attempt_idle = self.attempt_idle
        started_before = now - self.max_duration
        closed_before = now - self.close_delay
        done = []
        for flow in self.live.values():
            proto = flow.proto
            if proto == PROTO_TCP:
                if flow.resp_state == INACTIVE and flow.orig_state == SYN_SENT:
                    idle = attempt_idle  # an unanswered attempt (scans, floods)
                else:
                    idle = tcp_idle
            elif proto == PROTO_UDP:
                idle = udp_idle
            else:
                idle = other_idle
            closed_at = flow.closed_at
            if now - flow.last > idle or flow.start < started_before or (
                    closed_at and closed_at < closed_before):
                done.append(flow)
        for flow in done:
            self._finish(flow)

    def _evict_oldest(self) -> None:
        self._finish(next(iter(self.live.values())))

    def _finish(self, flow: Flow) -> None:
        if self.live.pop(flow.index, None) is flow:
            key = flow.key
            del self.flows[key]
            del self.flows[(key[2], key[3], key[0], key[1], key[4])]
        self.on_finish(flow)

    def flush(self) -> None:
        """Finish every flow (end of input)."""
        for flow in list(self.live.values()):
            self._finish(flow)
