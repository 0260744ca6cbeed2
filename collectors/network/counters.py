"""Per-source and per-destination counters for scan and flood detection.

Counted over fixed windows of capture time (``window`` seconds):

- port scan: distinct destination ports a source opened connections to; host
  sweep: distinct destination hosts;
- SYN flood: TCP SYNs a destination received minus the SYN-ACKs and RSTs it sent,
  i.e. handshakes left half-open (a scan of closed ports is answered with RSTs);
- fragment anomalies: fragmented datagrams a source sent that reassembly refused
  (conflicting overlaps, oversize, bad lengths: evasion or Teardrop-style attacks,
  never normal traffic, so one is enough to report).

At the end of each window a ``network.scan`` event is produced for every source or
destination over a threshold (``event.action`` ``port_scan``, ``host_scan``,
``syn_flood`` or ``fragment_anomaly``), carrying the ``scan.*`` counts, so Sigma
rules can alert on them or apply their own thresholds. Sets stop growing at twice
the threshold, and the number of tracked addresses is capped, so a spoofed flood
cannot exhaust memory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class ScanFinding:
    """One counter over its threshold in one window."""

    action: str               # port_scan | host_scan | syn_flood
    address: bytes            # the scanner (port/host scan) or the target (SYN flood)
    window_start: float
    window_seconds: int
    distinct_ports: int = 0
    distinct_hosts: int = 0
    syn_count: int = 0
    sample_ports: tuple[int, ...] = ()
    fragment_anomalies: int = 0


class ScanCounters:
    def __init__(self, on_finding: Callable[[ScanFinding], None], *, window: int = 60,
                 port_threshold: int = 100, host_threshold: int = 50,
                 syn_threshold: int = 1000, max_tracked: int = 100_000) -> None:
        self.on_finding = on_finding
        self.window = window
        self.port_threshold = port_threshold
        self.host_threshold = host_threshold
        self.syn_threshold = syn_threshold
        self.max_tracked = max_tracked
        self.window_start = -1.0
        self.ports: dict[bytes, int | set[int]] = {}
        self.hosts: dict[bytes, bytes | set[bytes]] = {}
        self.half_open: dict[bytes, int] = {}
        self.fragment_anomalies: dict[bytes, int] = {}

    def _roll(self, ts: float) -> None:
        start = ts - ts % self.window
        if self.window_start < 0:
            self.window_start = start
        elif start > self.window_start:
            self.close_window()
            self.window_start = start

    def new_flow(self, src: bytes, dst: bytes, dport: int, ts: float) -> None:
        """A connection attempt from ``src`` to ``dst:dport``."""
        if ts - self.window_start >= self.window or self.window_start < 0:
            self._roll(ts)
        # most sources talk to one port of one host in a window: that single value is
        # kept as it is, and becomes a set only when a second one shows up
        ports = self.ports.get(src)
        if ports is None:
            if len(self.ports) >= self.max_tracked:
                return
            self.ports[src] = dport
            self.hosts[src] = dst
            return
        if isinstance(ports, int):
            if ports != dport:
                self.ports[src] = {ports, dport}
        elif len(ports) < 2 * self.port_threshold:
            ports.add(dport)
        hosts = self.hosts[src]
        if isinstance(hosts, bytes):
            if hosts != dst:
                self.hosts[src] = {hosts, dst}
        elif len(hosts) < 2 * self.host_threshold:
            hosts.add(dst)

    def syn(self, dst: bytes, ts: float) -> None:
        """A SYN (without ACK) sent to ``dst``."""
        if ts - self.window_start >= self.window or self.window_start < 0:
            self._roll(ts)
        count = self.half_open.get(dst)
        if count is None:
            if len(self.half_open) >= self.max_tracked:
                return
            count = 0
        self.half_open[dst] = count + 1

    def syn_ack(self, src: bytes) -> None:
        """A SYN-ACK (or RST) sent by ``src``: one handshake it answered."""
        count = self.half_open.get(src)
        if count:
            self.half_open[src] = count - 1

    def fragment_anomaly(self, src: bytes, ts: float) -> None:
        """A fragmented datagram from ``src`` refused as ambiguous or malformed."""
        if ts - self.window_start >= self.window or self.window_start < 0:
            self._roll(ts)
        count = self.fragment_anomalies.get(src)
        if count is None and len(self.fragment_anomalies) >= self.max_tracked:
            return
        self.fragment_anomalies[src] = (count or 0) + 1

    def close_window(self) -> None:
        """Report what crossed a threshold in the current window and start afresh."""
        start = self.window_start
        for src, seen_ports in self.ports.items():
            seen_hosts = self.hosts[src]
            ports = [seen_ports] if isinstance(seen_ports, int) else sorted(seen_ports)
            hosts = 1 if isinstance(seen_hosts, bytes) else len(seen_hosts)
            if len(ports) >= self.port_threshold:
                action = "port_scan"
            elif hosts >= self.host_threshold:
                action = "host_scan"
            else:
                continue
            self.on_finding(ScanFinding(action, src, start, self.window,
                                        distinct_ports=len(ports), distinct_hosts=hosts,
                                        sample_ports=tuple(ports[:20])))
        for dst, count in self.half_open.items():
            if count >= self.syn_threshold:
                self.on_finding(ScanFinding("syn_flood", dst, start, self.window,
                                            syn_count=count))
        for src, count in self.fragment_anomalies.items():
            self.on_finding(ScanFinding("fragment_anomaly", src, start, self.window,
                                        fragment_anomalies=count))
        self.ports.clear()
        self.hosts.clear()
        self.half_open.clear()
        self.fragment_anomalies.clear()
