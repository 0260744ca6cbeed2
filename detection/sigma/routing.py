"""Logsource routing: which events a rule can see.

A Sigma rule names a logsource (product / category / service); an event has a
dataset and, for Windows, a channel and an event id. Routing sends each event
only to the rules of its logsource, so a Sysmon process-creation event never
reaches a DNS rule. The same routing becomes a query filter when hunting.

Windows tables come from pySigma's own pipelines (``sigma.pipelines.common``
for service → channel, ``sigma.pipelines.sysmon`` for category → Sysmon event
id, ``sigma.pipelines.windows`` for the PowerShell categories), so the
taxonomy is the one SigmaHQ's rules are written against.

Process creation is logged twice over on Windows: by Sysmon (event 1) and by
the Security log's audit (event 4688). pySigma's ``windows_audit`` pipeline
reads a ``process_creation`` rule against 4688 with some fields renamed
(``Image`` is ``NewProcessName``, ``ParentImage`` is ``ParentProcessName``...);
:data:`AUDIT_CATEGORIES` takes the event id and the renames from that
pipeline, routing sends 4688 to those rules too, and :func:`field_aliases`
tells the matcher which fields stand for which on such events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, cast

from sigma.pipelines.common import windows_logsource_mapping
from sigma.pipelines.sysmon.sysmon import sysmon_generic_logsource_eventid_mapping
from sigma.pipelines.windows.windows import (
    generic_logsource_to_windows_audit_event_mapping,
    windows_audit_pipeline,
    windows_generic_category_channel_mapping,
)

SYSMON_CHANNEL = "microsoft-windows-sysmon/operational"
SECURITY_CHANNEL = "security"
WINDOWS_DATA = "winlog.event_data."


def _audit_field_names() -> dict[str, str]:
    """Sigma field → Security audit event field, from pySigma's windows_audit pipeline."""
    for item in windows_audit_pipeline().items:
        if item.identifier == "windows_audit_fieldmappings":
            mapping = getattr(item.transformation, "mapping", {})
            return {str(k): str(v) for k, v in mapping.items() if isinstance(v, str)}
    return {}


#: Sigma categories the Security log's audit events also carry:
#: category → (channel, event ids, Sigma field → the audit event's field)
AUDIT_CATEGORIES: dict[str, tuple[str, frozenset[str], dict[str, str]]] = {
    "process_creation": (
        SECURITY_CHANNEL,
        frozenset({str(cast(Any, generic_logsource_to_windows_audit_event_mapping)
                       ["process_creation"]["EventID"])}),
        _audit_field_names()),
}

LINUX_DATASETS = ("system.auth", "syslog", "auditd.log", "sysmon_linux.log")
WEB_DATASETS = ("apache.access", "nginx.access", "iis.access")
NETWORK_DATASETS = ("network.connection", "network.dns", "network.http", "network.tls",
                    "network.ssh", "network.icmp", "network.scan")

#: (product, category or service) → datasets, for the non-Windows logsources.
DATASET_ROUTES: dict[tuple[str | None, str], tuple[str, ...]] = {
    ("linux", "auth"): ("system.auth",),
    ("linux", "sshd"): ("system.auth",),
    ("linux", "sudo"): ("system.auth",),
    ("linux", "su"): ("system.auth",),
    ("linux", "syslog"): ("syslog", "system.auth"),
    ("linux", "auditd"): ("auditd.log",),
    ("linux", "process_creation"): ("auditd.log", "sysmon_linux.log"),
    ("linux", "network_connection"): ("sysmon_linux.log",),
    ("linux", "file_event"): ("sysmon_linux.log",),
    ("linux", "file_create"): ("sysmon_linux.log",),
    (None, "webserver"): WEB_DATASETS,
    ("apache", "webserver"): ("apache.access",),
    ("nginx", "webserver"): ("nginx.access",),
    ("windows", "webserver"): ("iis.access",),
    (None, "apache"): ("apache.access", "apache.error"),
    (None, "nginx"): ("nginx.access",),
    (None, "iis"): ("iis.access",),
    (None, "proxy"): ("network.http",),
    (None, "dns"): ("network.dns",),
    (None, "firewall"): ("network.connection",),
    (None, "network_connection"): ("network.connection",),
    ("zeek", "conn"): ("network.connection",),
    ("zeek", "dns"): ("network.dns",),
    ("zeek", "http"): ("network.http",),
    ("zeek", "ssl"): ("network.tls",),
    ("zeek", "x509"): ("network.tls",),
    ("zeek", "ssh"): ("network.ssh",),
}

PRODUCT_DATASETS: dict[str, tuple[str, ...]] = {
    "linux": LINUX_DATASETS,
    "zeek": NETWORK_DATASETS,
    "apache": ("apache.access", "apache.error"),
    "nginx": ("nginx.access",),
}

#: Extra Windows categories pySigma's pipelines leave out: (channel, event ids).
EXTRA_WINDOWS_CATEGORIES: dict[str, list[tuple[str, frozenset[str] | None]]] = {
    "antivirus": [("microsoft-windows-windows defender/operational",
                   frozenset({"1006", "1007", "1008", "1009", "1015", "1116", "1117"}))],
}


def _ids(value: Any) -> frozenset[str]:
    values = value if isinstance(value, list | tuple) else [value]
    return frozenset(str(v) for v in values)


def _channels(service: Any) -> list[str]:
    value: Any = windows_logsource_mapping.get(str(service))
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    return [v.lower() for v in values]


@dataclass(frozen=True)
class RouteSpec:
    """The events a rule may see."""

    #: (channel lower-cased or None for any, event ids or None for any)
    windows: tuple[tuple[str | None, frozenset[str] | None], ...] = ()
    datasets: frozenset[str] = frozenset()
    #: no routing information understood: the rule sees every event
    everything: bool = False

    def accepts(self, key: EventKey) -> bool:
        if self.everything:
            return True
        dataset, channel, eid = key
        if dataset in self.datasets:
            return True
        if channel is None:
            return False
        for want_channel, want_ids in self.windows:
            if (want_channel is None or want_channel == channel) and (
                    want_ids is None or eid in want_ids):
                return True
        return False

    def without(self, other: RouteSpec) -> RouteSpec:
        """This route less the Windows channel/id pairs of ``other``."""
        return RouteSpec(windows=tuple(w for w in self.windows if w not in other.windows),
                         datasets=self.datasets, everything=self.everything)

    def describe(self) -> str:
        parts = [f"{c or '*'}:{','.join(sorted(i)) if i is not None else '*'}"
                 for c, i in self.windows]
        parts += sorted(self.datasets)
        return "everything" if self.everything else " | ".join(parts) or "nothing"


def audit_route(product: str | None, category: str | None) -> RouteSpec | None:
    """The Security audit events a Windows category also covers (4688 for
    process_creation; see AUDIT_CATEGORIES), or None."""
    category = (category or "").lower()
    if (product or "").lower() != "windows" or category not in AUDIT_CATEGORIES:
        return None
    channel, ids, _ = AUDIT_CATEGORIES[category]
    return RouteSpec(windows=((channel, ids),))


#: (event.dataset, lower-cased winlog.channel, winlog.event_id as text)
EventKey = tuple[str | None, str | None, str | None]


def event_key(raw: dict[str, Any]) -> EventKey:
    """The routing key of an event from its flat raw values."""
    channel = raw.get("winlog.channel")
    eid = raw.get("winlog.event_id")
    return (raw.get("event.dataset"), channel.lower() if isinstance(channel, str) else None,
            None if eid is None else str(eid))


def route_for(product: str | None, category: str | None, service: str | None,
              event_ids: Iterable[str] | None = None) -> RouteSpec:
    """The route of a logsource, narrowed to ``event_ids`` when the detection
    itself requires one of them."""
    spec = _route_for(product, category, service)
    if event_ids is None or not spec.windows:
        return spec
    wanted = frozenset(event_ids)
    narrowed = tuple((channel, wanted if ids is None else ids & wanted)
                     for channel, ids in spec.windows)
    return RouteSpec(windows=narrowed, datasets=spec.datasets, everything=spec.everything)


def _route_for(product: str | None, category: str | None, service: str | None) -> RouteSpec:
    product = (product or "").lower() or None
    category = (category or "").lower() or None
    service = (service or "").lower() or None
    if product == "windows":
        return _windows_route(category, service)
    if product == "govsoc":
        datasets = {d for d in (service, category) if d}
        return RouteSpec(datasets=frozenset(datasets))
    found: set[str] = set()
    for name in (category, service):
        if name is None:
            continue
        found.update(DATASET_ROUTES.get((product, name), ()))
        if product is None or (product, name) not in DATASET_ROUTES:
            found.update(DATASET_ROUTES.get((None, name), ()))
        if "." in name:  # a dataset named directly
            found.add(name)
    if not found and product in PRODUCT_DATASETS and category is None and service is None:
        found.update(PRODUCT_DATASETS[product])
    if not found and product in PRODUCT_DATASETS:
        found.update(PRODUCT_DATASETS[product])
    if not found:
        if product is None and category is None and service is None:
            return RouteSpec(everything=True)
        # a logsource no collector of ours produces: the rule can never fire here
        return RouteSpec()
    return RouteSpec(datasets=frozenset(found))


def _windows_route(category: str | None, service: str | None) -> RouteSpec:
    entries: list[tuple[str | None, frozenset[str] | None]] = []
    if category:
        if category in sysmon_generic_logsource_eventid_mapping:
            eids = _ids(sysmon_generic_logsource_eventid_mapping[category])
            entries.append((SYSMON_CHANNEL, eids))
            if category in AUDIT_CATEGORIES:
                channel, ids, _ = AUDIT_CATEGORIES[category]
                entries.append((channel, ids))
        elif category in windows_generic_category_channel_mapping:
            info = windows_generic_category_channel_mapping[category]
            for channel in _channels(info["service"]):
                entries.append((channel, _ids(info["EventID"])))
        elif category in EXTRA_WINDOWS_CATEGORIES:
            entries.extend(EXTRA_WINDOWS_CATEGORIES[category])
    if not entries and service:
        entries.extend((channel, None) for channel in _channels(service))
        if not entries:
            # an unknown service is taken as a channel name
            entries.append((service, None))
    if not entries:
        entries.append((None, None))
    return RouteSpec(windows=tuple(entries))


@dataclass
class RouteTable:
    """Rules grouped by the event keys they accept, built lazily per key."""

    specs: list[RouteSpec]
    _cache: dict[EventKey, list[int]] = field(default_factory=dict)

    def rules_for(self, key: EventKey) -> list[int]:
        found = self._cache.get(key)
        if found is None:
            found = [i for i, spec in enumerate(self.specs) if spec.accepts(key)]
            if len(self._cache) > 65536:
                self._cache.clear()
            self._cache[key] = found
        return found

    def datasets(self) -> set[str]:
        return {d for s in self.specs for d in s.datasets}


def windows_query_filter(spec: RouteSpec) -> list[dict[str, Any]]:
    """The route as (channel, event ids) pairs, for building hunt query filters."""
    return [{"channel": c, "event_ids": sorted(i) if i else None} for c, i in spec.windows]


def all_channels() -> Iterable[str]:
    for service in windows_logsource_mapping:
        yield from _channels(service)


def field_aliases(key: EventKey) -> tuple[str, dict[str, str]] | None:
    """For an audit event a Sigma category also covers: the category and, for its
    rules, mapped field → the event's field that stands for it (None otherwise)."""
    _, channel, eid = key
    for category, (audit_channel, ids, names) in AUDIT_CATEGORIES.items():
        if channel == audit_channel and eid in ids:
            return category, {WINDOWS_DATA + sigma: WINDOWS_DATA + name
                              for sigma, name in names.items()}
    return None
