"""Per-source and per-destination counters for scan and flood detection.

Counted over fixed windows of capture time (``window`` seconds):

- port scan: distinct destination (host, port) pairs a source opened connections
  to; host sweep: distinct destination hosts;
- SYN flood: TCP SYNs a destination received minus the SYN-ACKs it sent, i.e.
  handshakes left half-open.

At the end of each window a ``network.scan`` event is produced for every source or
destination over a threshold (``event.action`` ``port_scan``, ``host_scan`` or
``syn_flood``), carrying the ``scan.*`` counts, so Sigma rules can alert on them or
apply their own thresholds. Sets stop growing at twice the threshold, and the
number of tracked addresses is capped, so a spoofed flood cannot exhaust memory.
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
        self.targets: dict[bytes, set[tuple[bytes, int]]] = {}
        self.hosts: dict[bytes, set[bytes]] = {}
        self.half_open: dict[bytes, int] = {}

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
        targets = self.targets.get(src)
        if targets is None:
            if len(self.targets) >= self.max_tracked:
                return
            targets = self.targets[src] = set()
            self.hosts[src] = set()
        if len(targets) < 2 * self.port_threshold:
            targets.add((dst, dport))
        hosts = self.hosts[src]
        if len(hosts) < 2 * self.host_threshold:
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
        """A SYN-ACK sent by ``src``: one handshake it answered."""
        count = self.half_open.get(src)
        if count:
            self.half_open[src] = count - 1

    def close_window(self) -> None:
        """Report what crossed a threshold in the current window and start afresh."""
        start = self.window_start
        for src, targets in self.targets.items():
            ports = {port for _, port in targets}
            hosts = self.hosts[src]
            if len(ports) >= self.port_threshold:
                self.on_finding(ScanFinding("port_scan", src, start, self.window,
                                            distinct_ports=len(ports),
                                            distinct_hosts=len(hosts),
                                            sample_ports=tuple(sorted(ports)[:20])))
            elif len(hosts) >= self.host_threshold:
                self.on_finding(ScanFinding("host_scan", src, start, self.window,
                                            distinct_ports=len(ports),
                                            distinct_hosts=len(hosts),
                                            sample_ports=tuple(sorted(ports)[:20])))
        for dst, count in self.half_open.items():
            if count >= self.syn_threshold:
                self.on_finding(ScanFinding("syn_flood", dst, start, self.window,
                                            syn_count=count))
        self.targets.clear()
        self.hosts.clear()
        self.half_open.clear()
