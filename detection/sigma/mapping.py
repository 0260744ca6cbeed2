"""Field mapping: Sigma's field names onto govsoc's ECS events, as pySigma pipelines.

One mapping serves the streaming matcher, the SQLite scan and the
Elasticsearch/OpenSearch hunt, so all three read a rule the same way.

``govsoc`` (the default) is the mapping for the events our collectors produce:

- Windows: the EVTX collector keeps event data under ``winlog.event_data.*``
  with the names Windows gave them, which are Sigma's Windows names, so a
  Windows field ``X`` maps to ``winlog.event_data.X``; the system fields map
  onto ``winlog.*`` (``EventID`` → ``winlog.event_id``, ``Channel`` →
  ``winlog.channel``, ``Provider_Name``, ``Computer``...).
- web servers, proxies, DNS, firewalls, Zeek logs and Linux: W3C / Zeek /
  auditd names onto the ECS fields our web, network and Linux collectors fill.

Logsources are *not* turned into query conditions here: routing
(:mod:`detection.sigma.routing`) sends each event only to the rules of its
logsource, and a hunt turns the same routing into a query filter.

``ecs_windows`` (pySigma's Elasticsearch pipeline for Winlogbeat's ECS layout)
is offered for hunting in clusters whose Windows data was shipped by
Winlogbeat rather than by govsoc.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import (
    FieldMappingTransformation,
    WildcardPlaceholderTransformation,
)
from sigma.processing.transformations.base import FieldMappingTransformationBase

from govsoc.errors import ConfigError

WINDOWS_SYSTEM_FIELDS: dict[str, str] = {
    "EventID": "winlog.event_id",
    "Channel": "winlog.channel",
    "Provider_Name": "winlog.provider_name",
    "Provider": "winlog.provider_name",
    "Computer": "winlog.computer_name",
    "ComputerName": "winlog.computer_name",
    "EventRecordID": "winlog.record_id",
    "Level": "log.level",
    "Task": "winlog.task",
    "Opcode": "winlog.opcode",
    "Keywords": "winlog.keywords",
    "Version": "winlog.version",
    "Security_UserID": "winlog.user.identifier",
}

#: Windows Defender writes its event data with spaces in the names ("Source Name");
#: Sigma's rules name them without ("SourceName").
DEFENDER_DATA_NAMES = (
    "Product Name", "Product Version", "Detection ID", "Detection Time", "Threat ID",
    "Threat Name", "Severity ID", "Severity Name", "Category ID", "Category Name",
    "Status Code", "Status Description", "Source ID", "Source Name", "Process Name",
    "Detection User", "Origin ID", "Origin Name", "Execution ID", "Execution Name",
    "Type ID", "Type Name", "Pre Execution Status", "Action ID", "Action Name",
    "Error Code", "Error Description", "Post Clean Status", "Additional Actions ID",
    "Additional Actions String", "Remediation User", "Security intelligence Version",
    "Engine Version", "Signature Version", "New Value", "Old Value", "Feature Name",
    "Feature ID", "Scan ID", "Scan Type ID", "Scan Type Name", "Scan Parameters",
    "Scan Parameters ID", "Scan Resources", "Domain", "User", "SID", "Previous Engine Version",
    "Current Engine Version", "Previous Signature Version", "Current Signature Version",
)
DEFENDER_FIELDS: dict[str, str] = {
    name.replace(" ", ""): f"winlog.event_data.{name}" for name in DEFENDER_DATA_NAMES
    if " " in name
}

#: W3C extended log / webserver and proxy taxonomy.
WEB_FIELDS: dict[str, str] = {
    "c-uri": "url.original",
    "cs-uri": "url.original",
    "c-uri-query": "url.query",
    "cs-uri-query": "url.query",
    "c-uri-stem": "url.path",
    "cs-uri-stem": "url.path",
    "c-uri-extension": "url.extension",
    "cs-method": "http.request.method",
    "cs-referrer": "http.request.referrer",
    "cs-referer": "http.request.referrer",
    "cs-user-agent": "user_agent.original",
    "c-useragent": "user_agent.original",
    "cs-host": "url.domain",
    "r-dns": "url.domain",
    "sc-status": "http.response.status_code",
    "cs-version": "http.version",
    "c-ip": "source.ip",
    "src_ip": "source.ip",
    "dst_ip": "destination.ip",
    "cs-bytes": "http.request.bytes",
    "sc-bytes": "http.response.bytes",
    "cs-username": "user.name",
    "cs-mime-type": "http.request.mime_type",
}

DNS_FIELDS: dict[str, str] = {
    "query": "dns.question.name",
    "QueryName": "dns.question.name",
    "answer": "dns.answers.data",
    "record_type": "dns.question.type",
    "QueryType": "dns.question.type",
    "response-code": "dns.response_code",
    "rcode_name": "dns.response_code",
    "src_ip": "source.ip",
    "dst_ip": "destination.ip",
}

FIREWALL_FIELDS: dict[str, str] = {
    "src_ip": "source.ip",
    "dst_ip": "destination.ip",
    "src_port": "source.port",
    "dst_port": "destination.port",
    "action": "event.action",
    "protocol": "network.transport",
}

ZEEK_FIELDS: dict[str, str] = {
    "id.orig_h": "source.ip",
    "id.orig_p": "source.port",
    "id.resp_h": "destination.ip",
    "id.resp_p": "destination.port",
    "proto": "network.transport",
    "service": "network.protocol",
    "conn_state": "network.connection.state",
    "history": "network.connection.history",
    "orig_bytes": "source.bytes",
    "resp_bytes": "destination.bytes",
    "orig_pkts": "source.packets",
    "resp_pkts": "destination.packets",
    "duration": "event.duration",
    "query": "dns.question.name",
    "qtype_name": "dns.question.type",
    "rcode_name": "dns.response_code",
    "answers": "dns.answers.data",
    "host": "url.domain",
    "uri": "url.original",
    "method": "http.request.method",
    "user_agent": "user_agent.original",
    "status_code": "http.response.status_code",
    "referrer": "http.request.referrer",
    "server_name": "tls.client.server_name",
    "ja3": "tls.client.ja3",
    "ja3s": "tls.server.ja3s",
    "version": "tls.version",
    "cipher": "tls.cipher",
    "client": "ssh.client.software",
    "server": "ssh.server.software",
}

LINUX_PROCESS_FIELDS: dict[str, str] = {
    "Image": "process.executable",
    "CommandLine": "process.command_line",
    "ParentImage": "process.parent.executable",
    "ParentCommandLine": "process.parent.command_line",
    "CurrentDirectory": "process.working_directory",
    "ProcessId": "process.pid",
    "ParentProcessId": "process.parent.pid",
    "User": "user.name",
    "LogonId": "auditd.session",
    "TargetFilename": "file.path",
    "DestinationIp": "destination.ip",
    "DestinationPort": "destination.port",
    "DestinationHostname": "destination.domain",
    "SourceIp": "source.ip",
    "SourcePort": "source.port",
}

AUDITD_FIELDS: dict[str, str] = {
    "type": "auditd.message_type",
    "exe": "process.executable",
    "comm": "process.name",
    "pid": "process.pid",
    "ppid": "process.parent.pid",
    "uid": "user.id",
    "auid": "auditd.summary.actor.primary",
    "key": "tags",
    "name": "file.path",
    "cwd": "process.working_directory",
    "proctitle": "process.title",
    "res": "event.outcome",
}

AUTH_FIELDS: dict[str, str] = {
    "user": "user.name",
    "src_ip": "source.ip",
    "host": "host.name",
}


@dataclass
class WindowsEventDataTransformation(FieldMappingTransformationBase):
    """``X`` → ``winlog.event_data.X`` for every Windows field not mapped already.

    A mapped name always has a dot (``winlog.event_id``); Windows event data
    names never do. Written as a field-name mapping so pySigma applies it to
    field references (``fieldref``) and correlation fields too.
    """

    prefix: str = "winlog.event_data."

    def apply_field_name(self, field: str | None) -> str | None:
        if field is None or "." in field:
            return field
        return self.prefix + field


def _mapping_item(identifier: str, mapping: Mapping[str, str],
                  **logsource: str) -> ProcessingItem:
    return ProcessingItem(
        identifier=identifier,
        transformation=FieldMappingTransformation(
            {k: v for k, v in mapping.items()}),
        rule_conditions=[LogsourceCondition(**logsource)],
    )


def govsoc_pipeline() -> ProcessingPipeline:
    """Sigma field names onto the events govsoc's collectors produce."""
    items: list[ProcessingItem] = [
        # %placeholders% no one defined must still match something sensible: anything
        ProcessingItem(identifier="govsoc_placeholders",
                       transformation=WildcardPlaceholderTransformation()),
        _mapping_item("govsoc_windows_system", WINDOWS_SYSTEM_FIELDS, product="windows"),
        _mapping_item("govsoc_windows_defender", DEFENDER_FIELDS, product="windows",
                      service="windefend"),
        ProcessingItem(identifier="govsoc_windows_event_data",
                       transformation=WindowsEventDataTransformation(),
                       rule_conditions=[LogsourceCondition(product="windows")]),
    ]
    for category in ("webserver", "proxy"):
        items.append(_mapping_item(f"govsoc_{category}", WEB_FIELDS, category=category))
    items.append(_mapping_item("govsoc_dns", DNS_FIELDS, category="dns"))
    items.append(_mapping_item("govsoc_firewall", FIREWALL_FIELDS, category="firewall"))
    items.append(_mapping_item("govsoc_zeek", ZEEK_FIELDS, product="zeek"))
    for category in ("process_creation", "network_connection", "file_event"):
        items.append(_mapping_item(f"govsoc_linux_{category}", LINUX_PROCESS_FIELDS,
                                   product="linux", category=category))
    items.append(_mapping_item("govsoc_auditd", AUDITD_FIELDS, product="linux",
                               service="auditd"))
    for service in ("auth", "sshd", "sudo"):
        items.append(_mapping_item(f"govsoc_linux_{service}", AUTH_FIELDS, product="linux",
                                   service=service))
    return ProcessingPipeline(name="govsoc ECS field mapping", priority=20, items=items)


def ecs_windows_pipeline() -> ProcessingPipeline:
    """pySigma's Winlogbeat ECS mapping, for clusters filled by Winlogbeat."""
    from sigma.pipelines.elasticsearch.windows import ecs_windows

    return ProcessingPipeline(
        name="ecs_windows (Winlogbeat layout)", priority=20,
        items=[ProcessingItem(identifier="govsoc_placeholders",
                              transformation=WildcardPlaceholderTransformation()),
               *list(ecs_windows().items)])


PROFILES = {"govsoc": govsoc_pipeline, "ecs_windows": ecs_windows_pipeline}


def mapping_pipeline(profile: str = "govsoc") -> ProcessingPipeline:
    """The pipeline of a mapping profile (``govsoc`` unless hunting a Winlogbeat cluster)."""
    try:
        return PROFILES[profile]()
    except KeyError:
        raise ConfigError("detection.sigma_mapping",
                          f"unknown mapping {profile!r}; one of {', '.join(PROFILES)}") from None


_FIELD_CACHE: dict[tuple[str, str | None, str | None, str | None, str], str] = {}


def map_field(name: str, product: str | None, category: str | None, service: str | None,
              profile: str = "govsoc") -> str:
    """The event field a Sigma field name maps to for a logsource (correlation
    group-by and value fields, which pySigma maps only through rule conditions)."""
    key = (name, product, category, service, profile)
    cached = _FIELD_CACHE.get(key)
    if cached is not None:
        return cached
    from sigma.rule import SigmaRule

    logsource = {k: v for k, v in (("product", product), ("category", category),
                                   ("service", service)) if v}
    rule = SigmaRule.from_dict({
        "title": "field mapping probe", "logsource": logsource or {"product": "any"},
        "detection": {"sel": {f"{name}|exists": True}, "condition": "sel"},
    })
    mapping_pipeline(profile).apply(rule)
    item = rule.detection.detections["sel"].detection_items[0]
    mapped = getattr(item, "field", None) or name
    _FIELD_CACHE[key] = mapped
    return str(mapped)
