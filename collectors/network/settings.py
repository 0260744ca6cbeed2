"""The ``inputs.network`` configuration section: limits and thresholds of the sensor.

```yaml
inputs:
  network:
    tcp_idle: 300          # seconds without packets before a TCP connection is reported
    udp_idle: 60
    other_idle: 60         # ICMP and other IP protocols
    max_duration: 3600     # a longer connection is reported and continues as a new record
    max_flows: 250000      # active connections kept; the oldest is reported beyond that
    max_body: 4194304      # bytes of an HTTP body carved and hashed
    max_pending: 262144    # out-of-order bytes buffered per TCP direction
    scan_window: 60        # seconds per scan/flood counting window
    scan_port_threshold: 100
    scan_host_threshold: 50
    syn_flood_threshold: 1000
    fragment_timeout: 30   # seconds an IP datagram waits for its missing fragments
    max_fragments: 100     # fragments of one datagram
    max_fragmented_datagrams: 4096   # datagrams awaiting fragments; the oldest goes first
    max_fragment_bytes: 16777216     # bytes held in fragments altogether
```
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from collectors.network.sensor import SensorSettings
from govsoc.config import Config, register_section

_DEFAULTS = SensorSettings()

SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {
        f.name: ({"type": "integer", "minimum": 1} if isinstance(getattr(_DEFAULTS, f.name), int)
                 else {"type": "number", "exclusiveMinimum": 0})
        for f in fields(SensorSettings)
    },
}

DEFAULTS: dict[str, Any] = {f.name: getattr(_DEFAULTS, f.name) for f in fields(SensorSettings)}

register_section("inputs.network", SCHEMA, DEFAULTS)


def sensor_settings(config: Config) -> SensorSettings:
    """The sensor settings of a loaded configuration."""
    section = config.section("inputs.network") or {}
    values = {f.name: section[f.name] for f in fields(SensorSettings) if f.name in section}
    return SensorSettings(**values)
