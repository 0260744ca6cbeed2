"""The network collector: pcap/pcapng files and live interfaces → ECS events.

Datasets (``event.module: network``): ``network.connection`` (Zeek conn.log
coverage), ``network.dns``, ``network.http``, ``network.tls`` (TLS over TCP, and
QUIC: the Initial packets are decrypted and their hellos reported with
``network.protocol: quic`` and the ``quic.*`` fields), ``network.ssh``,
``network.icmp`` and ``network.scan`` (per-source scan, SYN-flood and fragment
anomaly counters).
HTTP bodies carved from reassembled streams go to a :class:`PayloadSink`.

Modules: ``reader`` (capture files, live sockets), ``decode`` (header parsing),
``defrag`` (IP fragment reassembly), ``flows`` (connection tracking),
``reassembly`` (TCP streams), ``dns``, ``http``, ``http2`` (h2c streams and
DNS-over-HTTPS), ``tls``, ``quic`` (Initial packet decryption, CRYPTO
reassembly), ``ssh`` (protocol parsers), ``counters`` (scan/flood),
``payloads`` (the sink interface), ``community_id``, ``sensor`` (the per-packet
path and event building) and ``source`` (batch sources for the ingest pipeline).
"""

from collectors.network.payloads import CarvedPayload, DirectorySink, PayloadSink
from collectors.network.sensor import NetworkSensor, SensorSettings
from collectors.network.source import LiveCaptureSource, PcapFileSource

__all__ = [
    "CarvedPayload", "DirectorySink", "LiveCaptureSource", "NetworkSensor", "PayloadSink",
    "PcapFileSource", "SensorSettings",
]
