"""The network sensor: frames in, ECS events out.

:class:`NetworkSensor` runs the per-packet path — selective decoding, the flow
table, protocol detection on the first payload bytes, TCP reassembly for the flows
that carry HTTP, TLS, SSH or DNS, QUIC handshakes on UDP, the scan counters — and
collects the events and dead letters it produces. :mod:`collectors.network.source`
wraps it into batch sources for files and interfaces.

Protocol detection looks at content first (an HTTP request or status line, an SSH
identification string, a TLS handshake record), then at well-known ports (53 DNS,
22 SSH). A TCP flow with no recognisable content in its first
:data:`PROBE_PACKETS` payload packets is not examined further, which is what keeps
bulk transfers cheap; a TLS handshake starting later (STARTTLS) is still found
within that budget.

A UDP flow whose first datagram starts with a QUIC long header of a known version
(the long-header and fixed bits, a plausible length, on any port) goes to
:mod:`collectors.network.quic`: its Initial packets are decrypted and the
ClientHello and ServerHello reported as a ``network.tls`` event with
``network.protocol: quic`` (SNI, ALPN, JA3, JA4 with transport ``q``, JA3S, cipher)
and the ``quic.*`` fields. Once the hellos were read, or the flow's QUIC budget is
spent, its later packets are not looked at.
"""

from __future__ import annotations

import base64
import math
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from collectors.base import gc_paused
from collectors.network.community_id import community_id
from collectors.network.counters import ScanCounters, ScanFinding
from collectors.network.decode import (
    ACK,
    PROTO_ICMP,
    PROTO_ICMPV6,
    PROTO_TCP,
    PROTO_UDP,
    RST,
    SYN,
    Decoded,
    Fragment,
    decode,
    decode_datagram,
)
from collectors.network.defrag import Defragmenter
from collectors.network.dns import DnsMessage, parse_dns
from collectors.network.flows import Flow, FlowTable
from collectors.network.http import HttpConnection, HttpTransaction, looks_like_http
from collectors.network.http2 import Http2Connection, looks_like_h2
from collectors.network.payloads import CarvedPayload, PayloadSink, hashes
from collectors.network.quic import OUT_OF_SCOPE as QUIC_OUT_OF_SCOPE
from collectors.network.quic import QuicConnection, looks_like_quic
from collectors.network.reader import Frame
from collectors.network.reassembly import TcpStream
from collectors.network.ssh import SshConnection, split_banner
from collectors.network.tls import (
    ClientHello,
    ServerHello,
    TlsConnection,
    cipher_name,
    looks_like_tls,
    version_name,
)
from govsoc.errors import ParseError
from govsoc.events import DeadLetter, Event, event_id_maker

PROBE_PACKETS = 16
DNS_PORTS = frozenset({53, 5353, 5355})
SSH_PORTS = frozenset({22, 2222})
#: reasons that describe traffic out of scope rather than damage; counted, not rejected
OUT_OF_SCOPE = frozenset({"unsupported_ethertype", "unsupported_ip_protocol",
                          *QUIC_OUT_OF_SCOPE})
MAX_DEAD_LETTERS_PER_REASON = 100
TRANSPORTS = {PROTO_TCP: "tcp", PROTO_UDP: "udp", PROTO_ICMP: "icmp", PROTO_ICMPV6: "ipv6-icmp",
              47: "gre", 50: "esp", 51: "ah", 132: "sctp", 2: "igmp", 89: "ospf"}


@dataclass
class SensorSettings:
    """Tunables of the sensor (config section ``inputs.network``)."""

    tcp_idle: float = 300.0
    udp_idle: float = 60.0
    other_idle: float = 60.0
    max_duration: float = 3600.0
    max_flows: int = 250_000
    max_body: int = 4 << 20
    max_pending: int = 256 * 1024
    scan_window: int = 60
    scan_port_threshold: int = 100
    scan_host_threshold: int = 50
    syn_flood_threshold: int = 1000
    fragment_timeout: float = 30.0
    max_fragments: int = 100
    max_fragmented_datagrams: int = 4096
    max_fragment_bytes: int = 16 << 20


class NetworkSensor:
    """Turns captured frames of one source into ECS events."""

    def __init__(self, source_id: str, source_name: str = "", *,
                 settings: SensorSettings | None = None,
                 payload_sink: PayloadSink | None = None,
                 observer: str | None = None) -> None:
        self.source_id = source_id
        self.source_name = source_name or source_id
        self.settings = settings = settings or SensorSettings()
        self.payload_sink = payload_sink
        self.observer = observer
        self.events: list[Event] = []
        self.rejected: list[DeadLetter] = []
        self.problems: Counter[str] = Counter()
        self.by_dataset: Counter[str] = Counter()
        self.packets = 0
        self.bytes = 0
        self.payloads = 0
        self._ip_text: dict[bytes, str] = {}
        self._event_id = event_id_maker(source_id)
        self._scan_index = 0
        self.counters = ScanCounters(self._scan_finding, window=settings.scan_window,
                                     port_threshold=settings.scan_port_threshold,
                                     host_threshold=settings.scan_host_threshold,
                                     syn_threshold=settings.syn_flood_threshold)
        self.defrag = Defragmenter(timeout=settings.fragment_timeout,
                                   max_fragments=settings.max_fragments,
                                   max_datagrams=settings.max_fragmented_datagrams,
                                   max_bytes=settings.max_fragment_bytes,
                                   problems=self.problems,
                                   on_suspicious=self._suspicious_fragment)
        self.flows = FlowTable(self._flow_finished, self._flow_started,
                               tcp_idle=settings.tcp_idle, udp_idle=settings.udp_idle,
                               other_idle=settings.other_idle,
                               max_duration=settings.max_duration,
                               max_flows=settings.max_flows)
        self._lookup = self.flows.lookup

    # -- the per-packet path ---------------------------------------------------------------
    def packet(self, ts: float, linktype: int, data: bytes) -> None:
        """Process one captured frame (the one-frame case of :meth:`consume`)."""
        self._consume(iter((Frame(ts, linktype, data, len(data)),)), sys.maxsize, sys.maxsize)

    def consume(self, frames: Iterator[Frame], max_events: int,
                max_packets: int = 65536) -> bool:
        """Process frames until ``max_events`` events wait to be taken or
        ``max_packets`` frames went by (True: call again), or the frames ran out
        (False).

        The same path as :meth:`packet`, written out in one loop with its names
        bound locally: a capture file spends most of its time here, and a method
        call and a dozen attribute lookups a packet are a fifth of the budget.

        Python's cyclic garbage collector is paused meanwhile: building events
        allocates containers by the million, which triggers its passes over every
        live object (a fifth of the run), while the sensor creates no reference
        cycles a packet (flows, streams and events are freed by reference counts).
        Collection resumes when the call returns, between batches.
        """
        with gc_paused():
            return self._consume(frames, max_events, max_packets)

    def _consume(self, frames: Iterator[Frame], max_events: int, max_packets: int) -> bool:
        events = self.events
        counters = self.counters
        lookup = self._lookup
        classify = self._classify
        count = 0
        for ts, linktype, data, _wirelen in frames:
            count += 1
            while True:  # one pass; `break` ends this frame's work
                d: Any = decode(linktype, data)
                if d.__class__ is not Decoded:
                    self.packets += count
                    count = 0
                    if d.__class__ is str:
                        self._undecodable(d, data)
                        break
                    d = self._reassemble(d, ts)
                    if d is None:
                        break
                flags = d[5]
                if flags & 0x06 and d[0] == PROTO_TCP:  # SYN or RST
                    if flags & (ACK | RST):
                        counters.syn_ack(d[1])
                    else:
                        counters.syn(d[2], ts)
                flow, is_orig = lookup(ts, d)
                app = flow.app
                if app is False:
                    break
                self.packets += count
                count = 0
                if app is None:
                    if not d.payload:
                        break
                    app = classify(flow, is_orig, d)
                    if app is None or app is False:
                        break
                try:
                    app.packet(self, flow, is_orig, d, ts)
                except Exception as exc:  # a parser bug must cost one flow, not the capture
                    flow.app = False
                    self.reject("parser_failure", f"packet {self.packets}", data,
                                f"{type(exc).__name__}: {exc}")
                break
            if len(events) >= max_events or count >= max_packets:
                self.packets += count
                return True
        self.packets += count
        return False

    def _reassemble(self, frag: Fragment, ts: float) -> Decoded | None:
        """The datagram a fragment completes, decoded (a tunnel's inner datagram may
        be fragmented in turn); None while fragments are missing or when refused."""
        for _depth in range(3):
            datagram = self.defrag.add(frag, ts)
            if datagram is None:
                return None
            d: Any = decode_datagram(datagram, frag.vlan)
            if d.__class__ is Decoded:
                return d
            if d.__class__ is str:
                self._undecodable(d, datagram)
                return None
            frag = d
        return None

    def _suspicious_fragment(self, reason: str, frag: Fragment, ts: float) -> None:
        # the defragmenter counted it
        self.reject(reason, f"packet {self.packets}", frag.data,
                    f"fragment of datagram {frag.ident} from {self.ip(frag.src)} "
                    f"at offset {frag.offset}", counted=True)
        self.counters.fragment_anomaly(frag.src, ts)

    def tick(self, now: float) -> None:
        """Time passes without packets (live capture): expire idle flows."""
        if now >= self.flows.next_sweep:
            self.flows.sweep(now)
            self.defrag.expire(now)

    def flush(self) -> None:
        """End of input: finish every flow and report the last counter window."""
        self.defrag.flush()
        self.flows.flush()
        self.counters.close_window()

    def take(self) -> tuple[list[Event], list[DeadLetter]]:
        """The events and dead letters produced so far (and forget them)."""
        events, rejected = self.events, self.rejected
        self.events, self.rejected = [], []
        return events, rejected

    def _undecodable(self, reason: str, data: bytes) -> None:
        if reason in OUT_OF_SCOPE:  # ARP and the like, often: no position text made
            self.problems[reason] += 1
            return
        self.reject(reason, f"packet {self.packets}", data)

    def reject(self, reason: str, position: str, raw: bytes, detail: str = "", *,
               counted: bool = False) -> None:
        """Count a problem (unless the caller ``counted`` it) and keep the first few
        of each kind as dead letters; traffic out of scope is only counted."""
        if not counted:
            self.problems[reason] += 1
        if reason in OUT_OF_SCOPE:
            return
        count = self.problems[reason]
        if count <= MAX_DEAD_LETTERS_PER_REASON:
            text = f"{reason}: {detail}" if detail else reason
            self.rejected.append(DeadLetter(self.source_name, position, text, bytes(raw[:4096])))

    def _classify(self, flow: Flow, is_orig: bool, d: Decoded) -> Any:
        proto = flow.proto
        payload = d.payload
        app: Any
        if proto == PROTO_TCP:
            if looks_like_h2(payload):
                app = TcpApp(Http2App(self.settings.max_body), self.settings.max_pending)
            elif looks_like_http(payload):
                app = TcpApp(HttpApp(self.settings.max_body), self.settings.max_pending)
            elif payload.startswith(b"SSH-"):
                app = TcpApp(SshApp(), self.settings.max_pending)
            elif looks_like_tls(payload):
                app = TcpApp(TlsApp(), self.settings.max_pending)
            elif flow.key[3] in DNS_PORTS or flow.key[1] in DNS_PORTS:
                app = TcpApp(DnsTcpApp(), self.settings.max_pending)
            elif flow.key[3] in SSH_PORTS or flow.key[1] in SSH_PORTS:
                app = TcpApp(SshApp(), self.settings.max_pending)
            else:
                flow.probes += 1
                if flow.probes >= PROBE_PACKETS:
                    flow.app = False
                return None
        elif proto == PROTO_UDP:
            if flow.key[3] in DNS_PORTS or flow.key[1] in DNS_PORTS:
                app = DnsUdpApp()
            elif payload[0] >= 0xC0 and looks_like_quic(payload):  # a QUIC long header
                app = QuicApp()
            else:
                app = False
        else:
            app = False
        flow.app = app
        return app

    # -- flow lifecycle --------------------------------------------------------------------
    def _flow_started(self, flow: Flow) -> None:
        key = flow.key
        if key[4] == PROTO_TCP or key[4] == PROTO_UDP:
            self.counters.new_flow(key[0], key[2], key[3], flow.start)

    def _flow_finished(self, flow: Flow) -> None:
        app = flow.app
        if app:
            try:
                app.close(self, flow)
            except ParseError as exc:
                self.reject(_reason(exc), f"flow {flow.index}", b"", str(exc))
        proto = flow.proto
        if proto in (PROTO_ICMP, PROTO_ICMPV6):
            event = self._base("network.icmp", flow.start, flow, f"icmp:{flow.index}",
                               ["network"], ["connection", "end"])
            event["icmp"] = {"type": flow.key[1], "code": flow.key[3]
                             if flow.key[3] != _icmp_counterpart(flow.key[1], proto)
                             else 0}
        else:
            event = self._base("network.connection", flow.start, flow, f"conn:{flow.index}",
                               ["network"], ["connection", "end"])
        ev = event["event"]
        ev["start"] = event["@timestamp"]
        ev["end"] = iso_timestamp(flow.last)
        ev["duration"] = round((flow.last - flow.start) * 1e9)
        event["source"]["bytes"] = flow.orig_ip_bytes
        event["source"]["packets"] = flow.orig_pkts
        event["destination"]["bytes"] = flow.resp_ip_bytes
        event["destination"]["packets"] = flow.resp_pkts
        net = event["network"]
        net["bytes"] = flow.orig_ip_bytes + flow.resp_ip_bytes
        net["packets"] = flow.orig_pkts + flow.resp_pkts
        if flow.service:
            net["protocol"] = flow.service
        conn: dict[str, Any] = {"state": flow.conn_state(),
                                "orig_bytes": flow.orig_bytes, "resp_bytes": flow.resp_bytes}
        if flow.history:
            conn["history"] = flow.history
        if flow.missed_bytes:
            conn["missed_bytes"] = flow.missed_bytes
        net["connection"] = conn
        self._emit(event)

    # -- event building --------------------------------------------------------------------
    def ip(self, raw: bytes) -> str:
        text = self._ip_text.get(raw)
        if text is None:
            if len(self._ip_text) > 8192:
                self._ip_text.clear()
            family = socket.AF_INET if len(raw) == 4 else socket.AF_INET6
            text = self._ip_text[raw] = socket.inet_ntop(family, raw)
        return text

    def _base(self, dataset: str, ts: float, flow: Flow, position: str,
              category: list[str], type_: list[str]) -> Event:
        parts = flow.event_parts
        if parts is None:
            parts = flow.event_parts = self._event_parts(flow)
        src_ip, dst_ip, network, sport, dport = parts
        network = network.copy()
        if "vlan" in network:
            network["vlan"] = {"id": str(flow.vlan)}
        event: Event = {
            "@timestamp": iso_timestamp(ts),
            "event": {"kind": "event", "module": "network", "dataset": dataset,
                      "id": self._event_id(position),
                      "category": category, "type": type_},
            "source": {"ip": src_ip} if sport < 0 else {"ip": src_ip, "port": sport},
            "destination": {"ip": dst_ip} if sport < 0 else {"ip": dst_ip, "port": dport},
            "network": network,
        }
        if self.observer:
            event["observer"] = {"name": self.observer, "type": "sensor"}
        return event

    def _event_parts(self, flow: Flow) -> tuple[str, str, dict[str, Any], int, int]:
        """What every event of a flow repeats, worked out once per flow."""
        src, sport, dst, dport, proto = flow.key
        network: dict[str, Any] = {
            "transport": TRANSPORTS.get(proto) or str(proto),
            "iana_number": str(proto),
            "type": "ipv4" if len(src) == 4 else "ipv6",
            "community_id": flow.community_id or self._community_id(flow),
        }
        if flow.vlan >= 0:
            network["vlan"] = {"id": str(flow.vlan)}
        if proto not in (PROTO_TCP, PROTO_UDP):
            sport = dport = -1
        return self.ip(src), self.ip(dst), network, sport, dport

    @staticmethod
    def _community_id(flow: Flow) -> str:
        src, sport, dst, dport, proto = flow.key
        flow.community_id = community_id(src, sport, dst, dport, proto)
        return flow.community_id

    def _emit(self, event: Event) -> None:
        dataset = event["event"]["dataset"]
        counts = self.by_dataset
        counts[dataset] = counts.get(dataset, 0) + 1
        self.events.append(event)

    def dns_event(self, flow: Flow, seq: int, ts: float, query: DnsMessage | None,
                  response: DnsMessage | None) -> None:
        event = self._base("network.dns", ts, flow, f"dns:{flow.index}:{seq}",
                           ["network"], ["protocol"])
        event["network"]["protocol"] = "dns"
        msg = query or response
        assert msg is not None
        dns: dict[str, Any] = {"id": str(msg.id), "op_code": msg.opcode,
                               "type": "answer" if response is not None else "query"}
        if msg.qname is not None:
            dns["question"] = {"name": msg.qname, "type": msg.qtype, "class": msg.qclass}
        if response is not None:
            dns["response_code"] = response.rcode
            dns["header_flags"] = response.flags
            if response.answers:
                dns["answers"] = [{"name": a.name, "type": a.type, "class": a.dns_class,
                                   "ttl": a.ttl, "data": a.data} for a in response.answers]
                resolved = [a.data for a in response.answers if a.type in ("A", "AAAA")]
                if resolved:
                    dns["resolved_ip"] = resolved
            event["event"]["outcome"] = "success" if response.rcode == "NOERROR" \
                else "failure"
        elif query is not None:
            dns["header_flags"] = query.flags
        event["dns"] = dns
        self._emit(event)

    def http_event(self, flow: Flow, seq: int, tx: HttpTransaction) -> None:
        event = self._base("network.http", tx.ts, flow, f"http:{flow.index}:{seq}",
                           ["network", "web"], ["access", "protocol"])
        event["network"]["protocol"] = "http"
        http: dict[str, Any] = {}
        request: dict[str, Any] = {}
        if tx.version:
            http["version"] = tx.version
        if tx.method:
            request["method"] = tx.method
            request["bytes"] = tx.request_bytes + tx.request_body.size
            request["body"] = {"bytes": tx.request_body.size}
            headers = tx.request_headers
            if "referer" in headers:
                request["referrer"] = headers["referer"]
            if "content-type" in headers:
                request["mime_type"] = _mime(headers["content-type"])
            if "user-agent" in headers:
                event["user_agent"] = {"original": headers["user-agent"]}
            event["url"] = _url(tx.uri or "", headers.get("host"),
                                event["destination"].get("port"), tx.method)
            http["request"] = request
        if tx.has_response:
            response: dict[str, Any] = {"bytes": tx.response_bytes + tx.response_body.size,
                                        "body": {"bytes": tx.response_body.size}}
            if tx.status is not None:
                response["status_code"] = tx.status
                event["event"]["outcome"] = "success" if tx.status < 400 else "failure"
            if "content-type" in tx.response_headers:
                response["mime_type"] = _mime(tx.response_headers["content-type"])
            http["response"] = response
            if not tx.version and tx.response_version:
                http["version"] = tx.response_version
        event["http"] = http
        eid = event["event"]["id"]
        for direction, body, headers in (("request", tx.request_body, tx.request_headers),
                                         ("response", tx.response_body, tx.response_headers)):
            if not body.size or not body.data:
                continue
            data = body.decoded(self.settings.max_body)
            md5, sha1, sha256 = hashes(data)
            if direction == "response" or "file" not in event:
                event["file"] = {"size": len(data), "hash": {"md5": md5, "sha1": sha1,
                                                              "sha256": sha256}}
                if "content-type" in headers:
                    event["file"]["mime_type"] = _mime(headers["content-type"])
            if self.payload_sink is not None:
                payload = CarvedPayload(
                    data=data, md5=md5, sha1=sha1, sha256=sha256, size=body.size,
                    truncated=body.truncated, direction=direction, event_id=eid,
                    community_id=event["network"]["community_id"],
                    source_ip=event["source"]["ip"], destination_ip=event["destination"]["ip"],
                    url=(event.get("url") or {}).get("original", ""),
                    mime_type=_mime(headers.get("content-type", "")),
                    timestamp=event["@timestamp"])
                try:
                    self.payload_sink.accept(payload)
                    self.payloads += 1
                except Exception as exc:  # a sink's failure must not stop the capture
                    self.reject("payload_sink_error", f"flow {flow.index}", b"",
                                f"{type(exc).__name__}: {exc}")
        self._emit(event)

    def tls_event(self, flow: Flow, tls: TlsConnection, ts: float) -> None:
        event = self._base("network.tls", ts, flow, f"tls:{flow.index}",
                           ["network"], ["protocol"])
        event["network"]["protocol"] = "tls"
        self._tls_fields(event, tls.client, tls.server, tls.established, "t")
        self._emit(event)

    def quic_event(self, flow: Flow, quic: QuicConnection, ts: float) -> None:
        """A QUIC connection's handshake, in the shape of a TLS one (the hellos
        came from its Initial packets), with the ``quic.*`` fields."""
        event = self._base("network.tls", ts, flow, f"quic:{flow.index}",
                           ["network"], ["protocol"])
        event["network"]["protocol"] = "quic"
        if quic.client is not None or quic.server is not None:
            self._tls_fields(event, quic.client, quic.server, quic.established, "q")
        event["quic"] = quic.fields()
        self._emit(event)

    @staticmethod
    def _tls_fields(event: Event, client: ClientHello | None, server: ServerHello | None,
                    established: bool, transport: str) -> None:
        """``tls.*`` from the hellos; ``transport`` is JA4's (``t`` TCP, ``q`` QUIC)."""
        out: dict[str, Any] = {"established": established}
        version = None
        if server is not None:
            version = server.selected_version or server.version
            out["server"] = {"ja3s": server.ja3s()}
            out["cipher"] = cipher_name(server.cipher)
            if server.alpn:
                out["next_protocol"] = server.alpn
        if client is not None:
            cl: dict[str, Any] = {"ja3": client.ja3(), "ja4": client.ja4(transport)}
            if client.server_name:
                cl["server_name"] = client.server_name
                event["destination"]["domain"] = client.server_name
            if client.alpn:
                cl["alpn"] = client.alpn
            out["client"] = cl
            if version is None:
                version = client.version
        if version is not None:
            out["version_protocol"], out["version"] = version_name(version)
        event["tls"] = out

    def ssh_event(self, flow: Flow, ssh: SshConnection, ts: float) -> None:
        event = self._base("network.ssh", ts, flow, f"ssh:{flow.index}",
                           ["network"], ["protocol"])
        event["network"]["protocol"] = "ssh"
        out: dict[str, Any] = {}
        if ssh.client is not None:
            proto, software, _ = split_banner(ssh.client)
            out["client"] = {"software": ssh.client, "proto_version": proto,
                             "software_version": software}
        if ssh.server is not None:
            proto, software, _ = split_banner(ssh.server)
            out["server"] = {"software": ssh.server, "proto_version": proto,
                             "software_version": software}
        event["ssh"] = out
        self._emit(event)

    def _scan_finding(self, finding: ScanFinding) -> None:
        self._scan_index += 1
        start = finding.window_start
        addr = self.ip(finding.address)
        event: Event = {
            "@timestamp": iso_timestamp(start),
            "event": {"kind": "event", "module": "network", "dataset": "network.scan",
                      "id": self._event_id(f"scan:{finding.action}:{addr}:{start}"),
                      "category": ["network", "intrusion_detection"], "type": ["info"],
                      "action": finding.action,
                      "start": iso_timestamp(start),
                      "end": iso_timestamp(start + finding.window_seconds)},
            "scan": {"distinct_ports": finding.distinct_ports,
                     "distinct_hosts": finding.distinct_hosts,
                     "syn_count": finding.syn_count,
                     "window_seconds": finding.window_seconds},
        }
        if finding.fragment_anomalies:
            event["scan"]["fragment_anomalies"] = finding.fragment_anomalies
        if finding.action == "syn_flood":
            event["destination"] = {"ip": addr}
        else:
            event["source"] = {"ip": addr}
            if finding.sample_ports:
                event["scan"]["sample_ports"] = list(finding.sample_ports)
        self._emit(event)


_SECONDS: dict[int, str] = {}


def iso_timestamp(ts: float) -> str:
    """``format_timestamp`` for epoch seconds, with the date part cached per second
    (events of one second share it; strftime per event was a tenth of the run)."""
    sec = math.floor(ts)
    usec = round((ts - sec) * 1e6)
    if usec >= 1_000_000:
        sec += 1
        usec -= 1_000_000
    prefix = _SECONDS.get(sec)
    if prefix is None:
        if len(_SECONDS) > 4096:
            _SECONDS.clear()
        prefix = _SECONDS[sec] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    return f"{prefix}.{usec:06d}Z"


def _reason(exc: ParseError) -> str:
    name = type(exc).__name__
    return {"DnsError": "dns_malformed", "HttpError": "http_malformed",
            "Http2Error": "http_malformed",
            "TlsError": "tls_malformed", "SshError": "ssh_malformed"}.get(name, "malformed")


def _icmp_counterpart(kind: int, proto: int) -> int | None:
    from collectors.network.flows import icmp_ports

    port = icmp_ports(kind, -1, proto == PROTO_ICMPV6)[1]
    return None if port == -1 else port


def _mime(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def _url(uri: str, host: str | None, port: int | None, method: str | None) -> dict[str, Any]:
    url: dict[str, Any] = {"original": uri}
    if uri.startswith(("http://", "https://")):
        scheme, _, rest = uri.partition("://")
        authority, slash, path_q = rest.partition("/")
        host = host or authority
        uri_path = slash + path_q
        url["scheme"] = scheme
    elif method == "CONNECT":
        host = host or uri
        uri_path = ""
    else:
        uri_path = uri
        url["scheme"] = "http"
    path, sep, query = uri_path.partition("?")
    if path:
        url["path"] = path
    if sep:
        url["query"] = query
    if host:
        name, _, host_port = host.rpartition(":") if host.count(":") == 1 else (host, "", "")
        if not name:
            name = host
        url["domain"] = name.strip("[]")
        if host_port.isdigit():
            url["port"] = int(host_port)
        if url.get("scheme") and path:
            url["full"] = f"{url['scheme']}://{host}{uri_path}"
    ext = path.rsplit("/", 1)[-1].rpartition(".")[2] if "." in path.rsplit("/", 1)[-1] else ""
    if ext and len(ext) <= 8 and ext.isalnum():
        url["extension"] = ext.lower()
    return url


# -- protocol handlers attached to flows ----------------------------------------------------

class TcpApp:
    """Reassembles both sides of a TCP flow and feeds a stream protocol handler."""

    __slots__ = ("dead", "handler", "orig", "resp")

    def __init__(self, handler: Any, max_pending: int) -> None:
        self.handler = handler
        self.orig = TcpStream(max_pending)
        self.resp = TcpStream(max_pending)
        self.dead = False

    def packet(self, sensor: NetworkSensor, flow: Flow, is_orig: bool, d: Decoded,
               ts: float) -> None:
        if self.dead:
            return
        stream = self.orig if is_orig else self.resp
        seq = d.seq
        if d.flags & SYN:
            stream.syn(seq)
            seq = (seq + 1) & 0xFFFFFFFF
        if not d.payload_len:
            return
        chunks = stream.add(seq, d.payload, d.payload_len)
        if chunks:
            self._deliver(sensor, flow, is_orig, chunks, ts)

    def _deliver(self, sensor: NetworkSensor, flow: Flow, is_orig: bool,
                 chunks: list[bytes | int], ts: float) -> None:
        handler = self.handler
        for chunk in chunks:
            try:
                if chunk.__class__ is int:
                    flow.missed_bytes += chunk
                    handler.gap(sensor, flow, is_orig, chunk)
                else:
                    handler.feed(sensor, flow, is_orig, chunk, ts)
                    if handler.__class__ is HttpApp and handler.conn.upgrade:
                        handler = self._switch(sensor, flow, handler, ts)
            except ParseError as exc:
                sensor.reject(_reason(exc), f"flow {flow.index}",
                              chunk if isinstance(chunk, bytes) else b"", str(exc))
                if handler.give_up(is_orig):
                    self._retire(sensor, flow, ts)
                    return
        if handler.done():
            self._retire(sensor, flow, ts)

    def _switch(self, sensor: NetworkSensor, flow: Flow, http: HttpApp, ts: float) -> Any:
        """HTTP switched protocols: WebSocket frames are read on, other tunnels
        (CONNECT, h2c) get protocol detection on their first bytes."""
        http.close(sensor, flow, ts)
        conn = http.conn
        handler: Any
        if conn.upgrade == "websocket":
            handler = WebSocketApp()
        elif conn.upgrade == "h2c":
            # the upgraded request is answered on stream 1; event numbers go on
            handler = Http2App(sensor.settings.max_body, first_seq=http.seq,
                               upgraded=conn.switched)
        else:
            handler = TunnelApp()
        self.handler = handler
        for is_orig, side in ((True, conn.request), (False, conn.response)):
            if side.leftover:
                handler.feed(sensor, flow, is_orig, bytes(side.leftover), ts)
                side.leftover.clear()
        return handler

    def _retire(self, sensor: NetworkSensor, flow: Flow, ts: float) -> None:
        """Nothing more to learn from this flow: report, and stop looking at it."""
        self.dead = True
        self.handler.close(sensor, flow, ts)
        flow.app = False

    def close(self, sensor: NetworkSensor, flow: Flow) -> None:
        if self.dead:
            return
        self.dead = True
        for is_orig, stream in ((True, self.orig), (False, self.resp)):
            rest = stream.flush()
            if rest:
                for chunk in rest:
                    try:
                        if isinstance(chunk, int):
                            flow.missed_bytes += chunk
                            self.handler.gap(sensor, flow, is_orig, chunk)
                        else:
                            self.handler.feed(sensor, flow, is_orig, chunk, flow.last)
                    except ParseError as exc:
                        sensor.reject(_reason(exc), f"flow {flow.index}", b"", str(exc))
                        break
        self.handler.close(sensor, flow, flow.last)


class HttpApp:
    __slots__ = ("conn", "seq")

    def __init__(self, max_body: int) -> None:
        self.conn = HttpConnection(max_body=max_body)
        self.seq = 0

    def feed(self, sensor: NetworkSensor, flow: Flow, is_orig: bool, data: bytes,
             ts: float) -> None:
        flow.service = "http"
        for tx in self.conn.feed(is_orig, data, ts):
            sensor.http_event(flow, self.seq, tx)
            self.seq += 1

    def gap(self, sensor: NetworkSensor, flow: Flow, is_orig: bool, size: int) -> None:
        self.conn.gap(is_orig, size)

    def give_up(self, is_orig: bool) -> bool:
        return self.conn.request.state == "dead" and self.conn.response.state == "dead"

    def done(self) -> bool:
        return False

    def close(self, sensor: NetworkSensor, flow: Flow, ts: float) -> None:
        for tx in self.conn.close(ts):
            sensor.http_event(flow, self.seq, tx)
            self.seq += 1


class Http2App:
    """HTTP/2 streams, reported as HTTP transactions; DNS-over-HTTPS streams
    (RFC 8484) are reported as DNS too."""

    __slots__ = ("conn", "seq")

    def __init__(self, max_body: int, first_seq: int = 0,
                 upgraded: HttpTransaction | None = None) -> None:
        self.conn = Http2Connection(max_body=max_body)
        self.seq = first_seq
        if upgraded is not None:
            self.conn.continue_upgrade(upgraded)

    def feed(self, sensor: NetworkSensor, flow: Flow, is_orig: bool, data: bytes,
             ts: float) -> None:
        flow.service = flow.service or "http"
        for tx in self.conn.feed(is_orig, data, ts):
            self._report(sensor, flow, tx)

    def _report(self, sensor: NetworkSensor, flow: Flow, tx: HttpTransaction) -> None:
        seq = self.seq
        self.seq += 1
        sensor.http_event(flow, seq, tx)
        query, response = _doh_messages(sensor, flow, tx)
        if query is not None or response is not None:
            sensor.dns_event(flow, seq, tx.ts, query, response)

    def gap(self, sensor: NetworkSensor, flow: Flow, is_orig: bool, size: int) -> None:
        self.conn.gap(is_orig)

    def give_up(self, is_orig: bool) -> bool:
        return self.conn.dead

    def done(self) -> bool:
        return False

    def close(self, sensor: NetworkSensor, flow: Flow, ts: float) -> None:
        for tx in self.conn.close():
            self._report(sensor, flow, tx)


DNS_MESSAGE = "application/dns-message"


def _doh_messages(sensor: NetworkSensor, flow: Flow, tx: HttpTransaction
                  ) -> tuple[DnsMessage | None, DnsMessage | None]:
    """The DNS query and answer a DNS-over-HTTPS exchange carries (RFC 8484: a POST
    body or a base64url ``dns`` parameter of a GET, answered by a body), if it is one."""
    raw_query = b""
    if _mime(tx.request_headers.get("content-type", "")) == DNS_MESSAGE:
        raw_query = bytes(tx.request_body.data)
    elif tx.method == "GET" and tx.uri and "dns=" in tx.uri:
        param = parse_qs(urlsplit(tx.uri).query).get("dns")
        if param:
            try:
                raw_query = base64.urlsafe_b64decode(param[0] + "=" * (-len(param[0]) % 4))
            except ValueError:
                raw_query = b""
    raw_answer = b""
    if _mime(tx.response_headers.get("content-type", "")) == DNS_MESSAGE:
        raw_answer = bytes(tx.response_body.data)
    messages: list[DnsMessage | None] = []
    for raw in (raw_query, raw_answer):
        msg = None
        if raw:
            try:
                msg = parse_dns(raw)
            except ParseError as exc:
                sensor.reject("dns_malformed", f"flow {flow.index}", raw, str(exc))
        messages.append(msg)
    if messages[0] is not None or messages[1] is not None:
        flow.service = "dns"
    return messages[0], messages[1]


class TunnelApp:
    """Bytes inside a tunnel (HTTP CONNECT, a WebSocket): SSH or TLS, found by content."""

    __slots__ = ("inner", "probes")

    def __init__(self) -> None:
        self.inner: Any = None
        self.probes = 0

    def feed(self, sensor: NetworkSensor, flow: Flow, is_orig: bool, data: bytes,
             ts: float) -> None:
        inner = self.inner
        if inner is None:
            if data.startswith(b"SSH-"):
                inner = self.inner = SshApp()
            elif looks_like_tls(data):
                inner = self.inner = TlsApp()
            else:
                self.probes += 1
                if self.probes >= PROBE_PACKETS:
                    self.inner = False
                return
        if inner:
            inner.feed(sensor, flow, is_orig, data, ts)

    def gap(self, sensor: NetworkSensor, flow: Flow, is_orig: bool, size: int) -> None:
        if self.inner:
            self.inner.gap(sensor, flow, is_orig, size)

    def give_up(self, is_orig: bool) -> bool:
        return bool(self.inner) and self.inner.give_up(is_orig)

    def done(self) -> bool:
        return self.inner is False or (bool(self.inner) and self.inner.done())

    def close(self, sensor: NetworkSensor, flow: Flow, ts: float) -> None:
        if self.inner:
            self.inner.close(sensor, flow, ts)


class WebSocketApp(TunnelApp):
    """WebSocket frames (RFC 6455): unmasked, reassembled, their payload searched for
    a tunnelled protocol (wstunnel and similar carry SSH this way)."""

    __slots__ = ("bufs",)

    MAX_FRAME = 1 << 24

    def __init__(self) -> None:
        super().__init__()
        self.bufs = {True: bytearray(), False: bytearray()}

    def feed(self, sensor: NetworkSensor, flow: Flow, is_orig: bool, data: bytes,
             ts: float) -> None:
        buf = self.bufs[is_orig]
        buf += data
        while len(buf) >= 2:
            opcode = buf[0] & 0x0F
            size = buf[1] & 0x7F
            off = 2
            if size == 126:
                if len(buf) < 4:
                    return
                size = (buf[2] << 8) | buf[3]
                off = 4
            elif size == 127:
                if len(buf) < 10:
                    return
                size = int.from_bytes(buf[2:10], "big")
                off = 10
            if size > self.MAX_FRAME:
                buf.clear()
                raise ParseError(f"WebSocket frame of {size} bytes")
            key = b""
            if buf[1] & 0x80:
                key = bytes(buf[off:off + 4])
                off += 4
            if len(buf) < off + size:
                return
            payload = bytes(buf[off:off + size])
            del buf[:off + size]
            if key and payload:
                mask = (key * (size // 4 + 1))[:size]
                payload = (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")
                           ).to_bytes(size, "big")
            if opcode <= 2 and payload:  # continuation, text, binary
                super().feed(sensor, flow, is_orig, payload, ts)

    def gap(self, sensor: NetworkSensor, flow: Flow, is_orig: bool, size: int) -> None:
        self.bufs[is_orig].clear()  # frame boundaries are lost
        super().gap(sensor, flow, is_orig, size)


class TlsApp:
    __slots__ = ("reported", "tls")

    def __init__(self) -> None:
        self.tls = TlsConnection()
        self.reported = False

    def feed(self, sensor: NetworkSensor, flow: Flow, is_orig: bool, data: bytes,
             ts: float) -> None:
        self.tls.feed(is_orig, data, ts)
        if self.tls.client is not None or self.tls.server is not None:
            flow.service = "tls"

    def gap(self, sensor: NetworkSensor, flow: Flow, is_orig: bool, size: int) -> None:
        self.tls._done[is_orig] = True

    def give_up(self, is_orig: bool) -> bool:
        return self.tls.finished

    def done(self) -> bool:
        # both hellos read, and encrypted records seen (or a few packets went by
        # without them: the handshake is then reported as not established)
        tls = self.tls
        return tls.client is not None and tls.server is not None and (
            tls.established or tls.after_hello > 4)

    def close(self, sensor: NetworkSensor, flow: Flow, ts: float) -> None:
        if not self.reported and (self.tls.client is not None or self.tls.server is not None):
            self.reported = True
            sensor.tls_event(flow, self.tls, self.tls.first_ts or ts)


class SshApp:
    __slots__ = ("first_ts", "reported", "ssh")

    def __init__(self) -> None:
        self.ssh = SshConnection()
        self.first_ts = 0.0
        self.reported = False

    def feed(self, sensor: NetworkSensor, flow: Flow, is_orig: bool, data: bytes,
             ts: float) -> None:
        if not self.first_ts:
            self.first_ts = ts
        self.ssh.feed(is_orig, data, ts)
        if self.ssh.client is not None or self.ssh.server is not None:
            flow.service = "ssh"

    def gap(self, sensor: NetworkSensor, flow: Flow, is_orig: bool, size: int) -> None:
        pass

    def give_up(self, is_orig: bool) -> bool:
        return self.ssh.finished

    def done(self) -> bool:
        return self.ssh.client is not None and self.ssh.server is not None

    def close(self, sensor: NetworkSensor, flow: Flow, ts: float) -> None:
        if not self.reported and (self.ssh.client is not None or self.ssh.server is not None):
            self.reported = True
            sensor.ssh_event(flow, self.ssh, self.first_ts or ts)


class DnsTransactions:
    """Pairs DNS queries with responses by id, within one flow (bounded)."""

    __slots__ = ("pending", "seq")

    MAX_PENDING = 64

    def __init__(self) -> None:
        self.pending: dict[int, tuple[float, DnsMessage]] = {}
        self.seq = 0

    def message(self, sensor: NetworkSensor, flow: Flow, msg: DnsMessage, ts: float) -> None:
        flow.service = "dns"
        if not msg.is_response:
            old = self.pending.pop(msg.id, None)
            if old is not None:  # a repeated id: the earlier query went unanswered
                self._emit(sensor, flow, old[0], old[1], None)
            if len(self.pending) >= self.MAX_PENDING:
                first = next(iter(self.pending))
                qts, query = self.pending.pop(first)
                self._emit(sensor, flow, qts, query, None)
            self.pending[msg.id] = (ts, msg)
            return
        found = self.pending.pop(msg.id, None)
        if found is None:
            self._emit(sensor, flow, ts, None, msg)
        else:
            self._emit(sensor, flow, found[0], found[1], msg)

    def _emit(self, sensor: NetworkSensor, flow: Flow, ts: float, query: DnsMessage | None,
              response: DnsMessage | None) -> None:
        sensor.dns_event(flow, self.seq, ts, query, response)
        self.seq += 1

    def close(self, sensor: NetworkSensor, flow: Flow) -> None:
        for qts, query in self.pending.values():
            self._emit(sensor, flow, qts, query, None)
        self.pending.clear()


class DnsUdpApp(DnsTransactions):
    """DNS over UDP. A response repeats its question, so a query is kept raw and
    parsed only if no response answers it (half the parsing on a normal network)."""

    __slots__ = ("raw_queries",)

    def __init__(self) -> None:
        super().__init__()
        self.raw_queries: dict[int, tuple[float, bytes, int]] = {}

    def packet(self, sensor: NetworkSensor, flow: Flow, is_orig: bool, d: Decoded,
               ts: float) -> None:
        payload = d.payload
        if len(payload) >= 12 and not payload[2] & 0x80:  # QR clear: a query
            qid = (payload[0] << 8) | payload[1]
            if qid in self.raw_queries or len(self.raw_queries) >= self.MAX_PENDING:
                self._parse_queries(sensor, flow)
            self.raw_queries[qid] = (ts, payload, sensor.packets)
            return
        try:
            msg = parse_dns(payload)
        except ParseError as exc:
            sensor.reject("dns_malformed", f"packet {sensor.packets}", payload, str(exc))
            return
        query = self.raw_queries.pop(msg.id, None)
        if query is not None and msg.qname is not None:
            self._emit(sensor, flow, query[0], _question_of(msg), msg)
            flow.service = "dns"
            return
        if query is not None:  # a response without its question: use the query's
            self.raw_queries[msg.id] = query
            self._parse_queries(sensor, flow)
        self.message(sensor, flow, msg, ts)

    def _parse_queries(self, sensor: NetworkSensor, flow: Flow) -> None:
        for ts, payload, number in self.raw_queries.values():
            try:
                msg = parse_dns(payload)
            except ParseError as exc:
                sensor.reject("dns_malformed", f"packet {number}", payload, str(exc))
                continue
            self.message(sensor, flow, msg, ts)
        self.raw_queries.clear()

    def close(self, sensor: NetworkSensor, flow: Flow) -> None:
        self._parse_queries(sensor, flow)
        DnsTransactions.close(self, sensor, flow)


def _question_of(response: DnsMessage) -> DnsMessage:
    """The query as its response repeats it."""
    return DnsMessage(response.id, False, response.opcode, "NOERROR",
                      [f for f in response.flags if f in ("RD", "CD", "AD")],
                      response.qname, response.qtype, response.qclass,
                      name_truncated=response.name_truncated)


class QuicApp:
    """QUIC over UDP: the TLS handshake read from the Initial packets, reported
    once as a ``network.tls`` event; the flow is left alone after that."""

    __slots__ = ("conn", "first_ts", "reported")

    def __init__(self) -> None:
        self.conn = QuicConnection()
        self.first_ts = 0.0
        self.reported = False

    def packet(self, sensor: NetworkSensor, flow: Flow, is_orig: bool, d: Decoded,
               ts: float) -> None:
        conn = self.conn
        if not self.first_ts:
            self.first_ts = ts
        conn.datagram(is_orig, d.payload)
        if conn.issues:
            self._report_issues(sensor, f"packet {sensor.packets}", d.payload)
        if conn.seen:
            flow.service = "quic"
        if conn.finished:
            self.close(sensor, flow)
            flow.app = False

    def _report_issues(self, sensor: NetworkSensor, position: str, raw: bytes) -> None:
        for reason, detail in self.conn.issues:
            sensor.reject(reason, position, raw, detail)
        self.conn.issues.clear()

    def close(self, sensor: NetworkSensor, flow: Flow) -> None:
        if self.reported:
            return
        self.reported = True
        self.conn.close()
        if self.conn.issues:
            self._report_issues(sensor, f"flow {flow.index}", b"")
        if self.conn.seen:
            sensor.quic_event(flow, self.conn, self.first_ts or flow.last)


class DnsTcpApp(DnsTransactions):
    """DNS over TCP: messages behind a two-byte length (RFC 1035 4.2.2)."""

    __slots__ = ("bufs",)

    def __init__(self) -> None:
        super().__init__()
        self.bufs = {True: bytearray(), False: bytearray()}

    def feed(self, sensor: NetworkSensor, flow: Flow, is_orig: bool, data: bytes,
             ts: float) -> None:
        buf = self.bufs[is_orig]
        buf += data
        while len(buf) >= 2:
            size = (buf[0] << 8) | buf[1]
            if len(buf) < 2 + size:
                if len(buf) > 70000:
                    buf.clear()
                return
            raw = bytes(buf[2:2 + size])
            del buf[:2 + size]
            self.message(sensor, flow, parse_dns(raw), ts)

    def gap(self, sensor: NetworkSensor, flow: Flow, is_orig: bool, size: int) -> None:
        self.bufs[is_orig].clear()

    def give_up(self, is_orig: bool) -> bool:
        return False

    def done(self) -> bool:
        return False

    def close(self, sensor: NetworkSensor, flow: Flow, ts: float = 0.0) -> None:
        DnsTransactions.close(self, sensor, flow)


def run_frames(sensor: NetworkSensor, frames: Any,
               on_progress: Callable[[int], None] | None = None) -> None:
    """Feed every frame of an iterable to ``sensor`` (helper for tools and tests)."""
    packet = sensor.packet
    for ts, linktype, data, _wirelen in frames:
        packet(ts, linktype, data)
    sensor.flush()

