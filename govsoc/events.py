"""The event model: ECS events as nested dicts, and the one registry of their fields.

Every component speaks Elastic Common Schema (ECS) field names. An event is a plain
nested ``dict`` (``{"source": {"ip": "10.0.0.1"}}``); dotted names
(``"source.ip"``) address fields through :func:`get_field` and :func:`set_field`.

:data:`FIELDS` is the single registry of every field govsoc uses, with its type.
The SQLite columns and the Elasticsearch/OpenSearch index template are generated
from it; fields ECS lacks are marked ``ecs=False`` and documented here.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast

from govsoc.errors import EventValidationError

Event = dict[str, Any]

FieldType = Literal[
    "keyword", "text", "ip", "date", "long", "integer", "float", "double", "boolean",
    "object", "flattened",
]


@dataclass(frozen=True)
class Field:
    """One field of the event model."""

    name: str
    type: FieldType
    description: str = ""
    ecs: bool = True
    #: also full-text searchable (ES: a ``.text`` sub-field; SQLite: the text index)
    text: bool = False


@dataclass(frozen=True)
class DynamicFields:
    """A family of fields under a prefix whose names come from the source.

    ``winlog.event_data.*`` keeps Windows event data with the names Windows gave
    them, so Sigma's Windows field names map onto it one to one.
    """

    prefix: str
    type: FieldType
    description: str = ""
    ecs: bool = True


def _f(name: str, type_: FieldType, description: str = "", *, ecs: bool = True,
       text: bool = False) -> Field:
    return Field(name, type_, description, ecs, text)


_FIELD_LIST: tuple[Field, ...] = (
    _f("@timestamp", "date", "When the event happened (UTC, ISO 8601)."),
    _f("message", "text", "Human-readable message of the event.", text=True),
    _f("tags", "keyword"),
    _f("labels", "object"),
    # event.*
    _f("event.id", "keyword", "Deterministic id: hash of source identity and position."),
    _f("event.kind", "keyword"),
    _f("event.category", "keyword"),
    _f("event.type", "keyword"),
    _f("event.action", "keyword"),
    _f("event.outcome", "keyword"),
    _f("event.dataset", "keyword"),
    _f("event.module", "keyword"),
    _f("event.provider", "keyword"),
    _f("event.code", "keyword"),
    _f("event.severity", "long"),
    _f("event.original", "keyword", "The raw record as received.", text=True),
    _f("event.ingested", "date"),
    _f("event.created", "date"),
    _f("event.start", "date"),
    _f("event.end", "date"),
    _f("event.duration", "long", "Nanoseconds."),
    _f("event.reason", "keyword"),
    _f("event.sequence", "long"),
    # agent / observer / host / log
    _f("agent.type", "keyword"),
    _f("agent.name", "keyword"),
    _f("agent.version", "keyword"),
    _f("observer.name", "keyword"),
    _f("observer.hostname", "keyword"),
    _f("observer.type", "keyword"),
    _f("observer.ip", "ip"),
    _f("observer.ingress.interface.name", "keyword"),
    _f("host.name", "keyword", text=True),
    _f("host.hostname", "keyword"),
    _f("host.domain", "keyword"),
    _f("host.ip", "ip"),
    _f("host.os.family", "keyword"),
    _f("host.os.type", "keyword"),
    _f("log.file.path", "keyword"),
    _f("log.offset", "long"),
    _f("log.level", "keyword"),
    _f("log.logger", "keyword"),
    _f("log.syslog.facility.code", "long"),
    _f("log.syslog.facility.name", "keyword"),
    _f("log.syslog.severity.code", "long"),
    _f("log.syslog.severity.name", "keyword"),
    _f("log.syslog.priority", "long"),
    _f("log.syslog.hostname", "keyword"),
    _f("log.syslog.appname", "keyword"),
    _f("log.syslog.procid", "keyword"),
    _f("log.syslog.msgid", "keyword"),
    _f("log.syslog.version", "keyword"),
    _f("log.syslog.structured_data", "flattened"),
    _f("log.source.address", "keyword"),
    # network endpoints
    _f("source.ip", "ip"),
    _f("source.port", "long"),
    _f("source.address", "keyword"),
    _f("source.domain", "keyword"),
    _f("source.mac", "keyword"),
    _f("source.bytes", "long"),
    _f("source.packets", "long"),
    _f("source.user.name", "keyword"),
    _f("source.geo.country_iso_code", "keyword"),
    _f("destination.ip", "ip"),
    _f("destination.port", "long"),
    _f("destination.address", "keyword"),
    _f("destination.domain", "keyword"),
    _f("destination.mac", "keyword"),
    _f("destination.bytes", "long"),
    _f("destination.packets", "long"),
    _f("destination.user.name", "keyword"),
    _f("client.ip", "ip"),
    _f("client.port", "long"),
    _f("server.ip", "ip"),
    _f("server.port", "long"),
    _f("network.transport", "keyword"),
    _f("network.protocol", "keyword"),
    _f("network.application", "keyword"),
    _f("network.type", "keyword"),
    _f("network.iana_number", "keyword"),
    _f("network.direction", "keyword"),
    _f("network.community_id", "keyword"),
    _f("network.bytes", "long"),
    _f("network.packets", "long"),
    _f("network.vlan.id", "keyword"),
    # connection state (Zeek conn.log semantics; ECS has no field for these)
    _f("network.connection.state", "keyword",
       "Zeek conn_state: S0, S1, SF, REJ, S2, S3, RSTO, RSTR, RSTOS0, RSTRH, SH, SHR, "
       "OTH.", ecs=False),
    _f("network.connection.history", "keyword", "Zeek history string.", ecs=False),
    _f("network.connection.missed_bytes", "long", "Bytes lost to capture gaps (Zeek).",
       ecs=False),
    _f("network.connection.orig_bytes", "long",
       "Payload bytes the originator sent (Zeek orig_bytes; retransmissions once).",
       ecs=False),
    _f("network.connection.resp_bytes", "long",
       "Payload bytes the responder sent (Zeek resp_bytes).", ecs=False),
    # ICMP (ECS lacks these)
    _f("icmp.type", "long", "ICMP type.", ecs=False),
    _f("icmp.code", "long", "ICMP code.", ecs=False),
    # per-source counters for scan and flood detection (ECS lacks these)
    _f("scan.distinct_ports", "long", "Distinct destination ports in the window.", ecs=False),
    _f("scan.distinct_hosts", "long", "Distinct destination hosts in the window.",
       ecs=False),
    _f("scan.syn_count", "long", "TCP SYNs without completion in the window.", ecs=False),
    _f("scan.window_seconds", "long", "Length of the counting window.", ecs=False),
    _f("scan.sample_ports", "long", "Up to 20 of the destination ports counted.",
       ecs=False),
    _f("scan.fragment_anomalies", "long",
       "Fragmented datagrams from the source refused by reassembly in the window "
       "(conflicting overlaps, oversize, bad fragment lengths).", ecs=False),
    # dns
    _f("dns.id", "keyword"),
    _f("dns.type", "keyword"),
    _f("dns.op_code", "keyword"),
    _f("dns.response_code", "keyword"),
    _f("dns.header_flags", "keyword"),
    _f("dns.question.name", "keyword", text=True),
    _f("dns.question.type", "keyword"),
    _f("dns.question.class", "keyword"),
    _f("dns.question.registered_domain", "keyword"),
    _f("dns.question.subdomain", "keyword"),
    _f("dns.question.top_level_domain", "keyword"),
    _f("dns.answers", "object"),
    _f("dns.answers.name", "keyword"),
    _f("dns.answers.type", "keyword"),
    _f("dns.answers.class", "keyword"),
    _f("dns.answers.data", "keyword"),
    _f("dns.answers.ttl", "long"),
    _f("dns.resolved_ip", "ip"),
    # url / http / user agent
    _f("url.original", "keyword", text=True),
    _f("url.full", "keyword"),
    _f("url.domain", "keyword"),
    _f("url.path", "keyword"),
    _f("url.query", "keyword"),
    _f("url.scheme", "keyword"),
    _f("url.port", "long"),
    _f("url.extension", "keyword"),
    _f("http.version", "keyword"),
    _f("http.request.method", "keyword"),
    _f("http.request.referrer", "keyword"),
    _f("http.request.mime_type", "keyword"),
    _f("http.request.bytes", "long"),
    _f("http.request.body.bytes", "long"),
    _f("http.request.body.content", "keyword"),
    _f("http.response.status_code", "long"),
    _f("http.response.mime_type", "keyword"),
    _f("http.response.bytes", "long"),
    _f("http.response.body.bytes", "long"),
    _f("http.response.body.content", "keyword"),
    _f("user_agent.original", "keyword", text=True),
    # tls / ssh
    _f("tls.version", "keyword"),
    _f("tls.version_protocol", "keyword"),
    _f("tls.cipher", "keyword"),
    _f("tls.established", "boolean"),
    _f("tls.next_protocol", "keyword"),
    _f("tls.client.server_name", "keyword"),
    _f("tls.client.ja3", "keyword"),
    _f("tls.client.supported_ciphers", "keyword"),
    _f("tls.server.ja3s", "keyword"),
    _f("tls.server.subject", "keyword"),
    _f("tls.server.issuer", "keyword"),
    _f("tls.client.ja4", "keyword", "JA4 client fingerprint.", ecs=False),
    _f("tls.client.alpn", "keyword", "ALPN protocols offered by the client.", ecs=False),
    _f("quic.version", "keyword",
       "QUIC version of the Initial packets, as Zeek names it: 1, quicv2, draft-NN, "
       "unknown-<hex>.", ecs=False),
    _f("quic.client_initial_dcid", "keyword",
       "Destination connection ID of the client's first Initial packet (hex); the "
       "Initial keys derive from it.", ecs=False),
    _f("quic.client_scid", "keyword", "Source connection ID the client chose (hex).",
       ecs=False),
    _f("quic.server_scid", "keyword", "Source connection ID the server chose (hex).",
       ecs=False),
    _f("ssh.client.software", "keyword", "SSH client version string.", ecs=False),
    _f("ssh.server.software", "keyword", "SSH server version string.", ecs=False),
    _f("ssh.client.proto_version", "keyword", "SSH protocol version the client announced.",
       ecs=False),
    _f("ssh.client.software_version", "keyword",
       "Software part of the client identification string.", ecs=False),
    _f("ssh.server.proto_version", "keyword", "SSH protocol version the server announced.",
       ecs=False),
    _f("ssh.server.software_version", "keyword",
       "Software part of the server identification string.", ecs=False),
    # user / group
    _f("user.name", "keyword", text=True),
    _f("user.id", "keyword"),
    _f("user.domain", "keyword"),
    _f("user.full_name", "keyword"),
    _f("user.email", "keyword"),
    _f("user.roles", "keyword"),
    _f("user.target.name", "keyword"),
    _f("user.target.id", "keyword"),
    _f("user.target.domain", "keyword"),
    _f("user.changes.name", "keyword"),
    _f("user.effective.name", "keyword"),
    _f("user.effective.id", "keyword"),
    _f("user.effective.domain", "keyword"),
    _f("group.name", "keyword"),
    _f("group.id", "keyword"),
    _f("group.domain", "keyword"),
    # process
    _f("process.pid", "long"),
    _f("process.entity_id", "keyword"),
    _f("process.name", "keyword"),
    _f("process.executable", "keyword"),
    _f("process.command_line", "keyword", text=True),
    _f("process.args", "keyword"),
    _f("process.working_directory", "keyword"),
    _f("process.title", "keyword"),
    _f("process.hash.md5", "keyword"),
    _f("process.hash.sha1", "keyword"),
    _f("process.hash.sha256", "keyword"),
    _f("process.pe.original_file_name", "keyword"),
    _f("process.pe.description", "keyword"),
    _f("process.pe.product", "keyword"),
    _f("process.pe.company", "keyword"),
    _f("process.pe.file_version", "keyword"),
    _f("process.pe.imphash", "keyword"),
    _f("process.parent.pid", "long"),
    _f("process.parent.entity_id", "keyword"),
    _f("process.parent.name", "keyword"),
    _f("process.parent.executable", "keyword"),
    _f("process.parent.command_line", "keyword"),
    _f("process.thread.id", "long"),
    _f("process.exit_code", "long"),
    # file / registry
    _f("file.path", "keyword", text=True),
    _f("file.name", "keyword"),
    _f("file.directory", "keyword"),
    _f("file.extension", "keyword"),
    _f("file.size", "long"),
    _f("file.owner", "keyword"),
    _f("file.uid", "keyword"),
    _f("file.group", "keyword"),
    _f("file.mode", "keyword"),
    _f("file.mtime", "date"),
    _f("file.ctime", "date"),
    _f("file.type", "keyword"),
    _f("file.mime_type", "keyword"),
    _f("file.hash.md5", "keyword"),
    _f("file.hash.sha1", "keyword"),
    _f("file.hash.sha256", "keyword"),
    _f("file.pe.imphash", "keyword"),
    _f("file.target_path", "keyword"),
    _f("registry.path", "keyword"),
    _f("registry.key", "keyword"),
    _f("registry.value", "keyword"),
    _f("registry.hive", "keyword"),
    _f("registry.data.strings", "keyword"),
    _f("registry.data.type", "keyword"),
    # service / dll / threat / rule
    _f("service.name", "keyword"),
    _f("service.type", "keyword"),
    _f("dll.path", "keyword"),
    _f("dll.name", "keyword"),
    _f("dll.hash.md5", "keyword"),
    _f("dll.hash.sha1", "keyword"),
    _f("dll.hash.sha256", "keyword"),
    _f("dll.pe.imphash", "keyword"),
    _f("dll.pe.original_file_name", "keyword"),
    _f("rule.id", "keyword"),
    _f("rule.name", "keyword"),
    _f("rule.ruleset", "keyword"),
    _f("rule.description", "keyword"),
    # YARA matches (ECS has only rule.*; the per-rule detail has no ECS home)
    _f("yara.matches", "flattened",
       "YARA rules that matched a file or payload: rule, namespace, tags, meta and "
       "string matches with offsets (capped).", ecs=False),
    _f("threat.technique.id", "keyword"),
    _f("threat.tactic.name", "keyword"),
    # Windows
    _f("winlog.channel", "keyword"),
    _f("winlog.provider_name", "keyword"),
    _f("winlog.provider_guid", "keyword"),
    _f("winlog.event_id", "keyword"),
    _f("winlog.record_id", "keyword"),
    _f("winlog.computer_name", "keyword"),
    _f("winlog.task", "keyword"),
    _f("winlog.opcode", "keyword"),
    _f("winlog.keywords", "keyword"),
    _f("winlog.version", "long"),
    _f("winlog.process.pid", "long"),
    _f("winlog.process.thread.id", "long"),
    _f("winlog.user.identifier", "keyword"),
    _f("winlog.user.name", "keyword"),
    _f("winlog.user.domain", "keyword"),
    _f("winlog.activity_id", "keyword"),
    _f("winlog.related_activity_id", "keyword"),
    _f("winlog.qualifiers", "keyword", "Qualifiers of a classic event id (the high word).",
       ecs=False),
    _f("winlog.logon.id", "keyword"),
    _f("winlog.logon.type", "keyword"),
    _f("winlog.user_data", "flattened"),
    # auditd
    _f("auditd.sequence", "long"),
    _f("auditd.result", "keyword"),
    _f("auditd.session", "keyword"),
    _f("auditd.summary.actor.primary", "keyword"),
    _f("auditd.summary.actor.secondary", "keyword"),
    _f("auditd.summary.object.primary", "keyword"),
    _f("auditd.summary.object.type", "keyword"),
    _f("auditd.summary.how", "keyword"),
    _f("auditd.data", "flattened"),
    _f("auditd.paths", "flattened"),
    _f("auditd.message_type", "keyword"),
)

#: Every fixed field, by dotted name.
FIELDS: dict[str, Field] = {f.name: f for f in _FIELD_LIST}

#: Field families whose leaf names come from the source.
DYNAMIC_FIELDS: tuple[DynamicFields, ...] = (
    DynamicFields("winlog.event_data.", "keyword",
                  "Windows event data, names as Windows delivers them."),
    DynamicFields("labels.", "keyword"),
    DynamicFields("govsoc.", "keyword", "govsoc's own annotations.", ecs=False),
)

REQUIRED_FIELDS: tuple[str, ...] = ("@timestamp", "event.kind", "event.dataset")

EVENT_KINDS = frozenset(
    {"alert", "asset", "enrichment", "event", "metric", "state", "pipeline_error", "signal"}
)

_FIELD_NAME = re.compile(r"^@?[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


_TYPE_CACHE: dict[str, FieldType | None] = {}


def field_type(name: str) -> FieldType | None:
    """The registered type of a dotted field name, or None when unknown."""
    try:
        return _TYPE_CACHE[name]
    except KeyError:
        pass
    found: FieldType | None = None
    known = FIELDS.get(name)
    if known is not None:
        found = known.type
    else:
        for family in DYNAMIC_FIELDS:
            if name.startswith(family.prefix):
                found = family.type
                break
    if len(_TYPE_CACHE) > 50_000:  # attacker-chosen names must not grow it forever
        _TYPE_CACHE.clear()
    _TYPE_CACHE[name] = found
    return found


def is_valid_field_name(name: str) -> bool:
    """True when ``name`` is a syntactically safe dotted field name."""
    return bool(_FIELD_NAME.match(name)) and ".." not in name and not name.endswith(".")


_MISSING = object()


def get_field(event: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """Value of the dotted field ``name`` in ``event``, or ``default``.

    A flat key holding the rest of a dotted name (``{"source.ip": ...}``) is found
    too, as exports from some tools mix both spellings.
    """
    node: Any = event
    parts = name.split(".")
    for i, part in enumerate(parts):
        if type(node) is not dict and not isinstance(node, Mapping):
            return default
        nxt = node.get(part, _MISSING)
        if nxt is _MISSING:
            if i == len(parts) - 1:
                return default
            flat = node.get(".".join(parts[i:]), _MISSING)
            return default if flat is _MISSING else flat
        node = nxt
    return node


def set_field(event: Event, name: str, value: Any) -> None:
    """Set the dotted field ``name``, creating intermediate objects."""
    parts = name.split(".")
    node = event
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def set_fields(event: Event, values: Mapping[str, Any]) -> Event:
    """Set every dotted field of ``values`` that is not None; returns ``event``."""
    for name, value in values.items():
        if value is not None:
            set_field(event, name, value)
    return event


def flatten(event: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted-name view of a nested event (lists are kept as values)."""
    out: dict[str, Any] = {}
    for key, value in event.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def iter_leaves(event: Mapping[str, Any]) -> Iterator[tuple[str, Any]]:
    """Dotted name and value of every scalar leaf (list members included)."""
    stack: list[tuple[str, Any]] = [("", event)]
    while stack:
        prefix, node = stack.pop()
        if isinstance(node, Mapping):
            for key, value in node.items():
                stack.append((f"{prefix}{key}" if not prefix else f"{prefix}.{key}", value))
        elif isinstance(node, list):
            for item in node:
                stack.append((prefix, item))
        else:
            yield prefix, node


def event_id(source: str, position: str | int) -> str:
    """Deterministic id of the record at ``position`` in ``source``.

    The same record delivered twice gets the same id, so stores can drop the
    repeat. 128 bits of BLAKE2b, hex encoded.
    """
    digest = hashlib.blake2b(digest_size=16)
    digest.update(source.encode("utf-8", "surrogatepass"))
    digest.update(b"\x00")
    digest.update(str(position).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def event_id_maker(source: str) -> Callable[[str | int], str]:
    """:func:`event_id` for many positions of one source, hashing the source once."""
    prefix = hashlib.blake2b(digest_size=16)
    prefix.update(source.encode("utf-8", "surrogatepass"))
    prefix.update(b"\x00")

    def make(position: str | int) -> str:
        digest = prefix.copy()
        digest.update(str(position).encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    return make


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a ``Z``: the one timestamp spelling."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(value: Any) -> datetime:
    """A timezone-aware UTC datetime from an ISO 8601 string, epoch number or datetime.

    Raises ValueError on anything else. Naive times are taken as UTC.
    """
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, bool):
        raise ValueError("a boolean is not a timestamp")
    elif isinstance(value, int | float):
        seconds = float(value)
        if seconds > 1e14:  # microseconds
            seconds /= 1e6
        elif seconds > 1e11:  # milliseconds
            seconds /= 1e3
        moment = datetime.fromtimestamp(seconds, UTC)
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise ValueError("empty timestamp")
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            # fromisoformat accepts at most 6 fractional digits (nanoseconds are common)
            match = re.match(r"^(.*?\.\d{6})\d+(.*)$", text)
            if not match:
                raise
            moment = datetime.fromisoformat(match.group(1) + match.group(2))
    else:
        raise ValueError(f"not a timestamp: {type(value).__name__}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def timestamp_micros(value: Any) -> int:
    """Microseconds since the epoch for a timestamp in any accepted spelling."""
    moment = parse_timestamp(value)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def utcnow() -> datetime:
    return datetime.now(UTC)


_TYPE_CHECKS: dict[str, tuple[type, ...]] = {
    "long": (int,),
    "integer": (int,),
    "float": (int, float),
    "double": (int, float),
    "boolean": (bool,),
    "keyword": (str, int, float, bool),
    "text": (str,),
    "ip": (str,),
    "date": (str, int, float),
    "object": (dict, list),
    "flattened": (dict, list, str),
}
_STRING_TYPES = frozenset({"keyword", "text", "ip", "date", "flattened"})
_CONTAINER_TYPES = frozenset({"object", "flattened"})


def _type_ok(value: Any, type_: str) -> bool:
    if type(value) is str and type_ in _STRING_TYPES:
        return True
    allowed = _TYPE_CHECKS.get(type_)
    if allowed is None:
        return True
    values = value if isinstance(value, list) and type_ not in _CONTAINER_TYPES else [value]
    for item in values:
        if item is None:
            continue
        if type_ in ("long", "integer"):
            if isinstance(item, bool):
                return False
            if isinstance(item, str) and item.lstrip("-").isdigit():
                continue
        if not isinstance(item, allowed):
            return False
    return True


_NOT_STRING = frozenset({"long", "integer", "float", "double", "boolean", "object"})
_NUMBER_OK = frozenset({"long", "integer", "float", "double", "keyword", "date"})


def _check_types(node: dict[str, Any], prefix: str, source: str,
                 position: str | int) -> None:
    cache = _TYPE_CACHE
    for key, value in node.items():
        name = prefix + key
        cached = cache.get(name, _MISSING)
        type_ = field_type(name) if cached is _MISSING else cast("FieldType | None", cached)
        kind = type(value)
        if kind is dict:
            if type_ is None:
                _check_types(value, name + ".", source, position)
            elif type_ not in _CONTAINER_TYPES:
                raise EventValidationError(name, f"expected {type_}, got an object",
                                           source, position)
        elif type_ is None:
            continue
        elif kind is str:
            if type_ in _NOT_STRING and not (
                    type_ in ("long", "integer") and value.lstrip("-").isdigit()):
                raise EventValidationError(name, f"expected {type_}, got a string",
                                           source, position)
        elif kind is int:
            if type_ not in _NUMBER_OK:
                raise EventValidationError(name, f"expected {type_}, got an integer",
                                           source, position)
        elif not _type_ok(value, type_):
            raise EventValidationError(name, f"expected {type_}, got {kind.__name__}",
                                       source, position)


def validate_event(event: Any, source: str = "", position: str | int = "", *,
                   types_checked: bool = False) -> Event:
    """Check an event before it is stored; returns it with ``@timestamp`` normalised.

    Raises :class:`EventValidationError` naming the field, the source and the
    position when a required field is missing or a registered field has a value of
    the wrong type. ``types_checked`` skips the walk over every field when the
    caller has already proved the types (``govsoc.fastcheck``).
    """
    if not isinstance(event, dict):
        raise EventValidationError("(event)", f"expected a JSON object, got "
                                   f"{type(event).__name__}", source, position)
    meta = event.get("event")
    if type(meta) is not dict or "@timestamp" not in event:
        for name in REQUIRED_FIELDS:
            value = get_field(event, name)
            if value is None or value == "":
                raise EventValidationError(name, "required field is missing", source,
                                           position)
        raise EventValidationError("event", "expected an object", source, position)
    for name, value in (("@timestamp", event["@timestamp"]), ("event.kind", meta.get("kind")),
                        ("event.dataset", meta.get("dataset"))):
        if value is None or value == "":
            raise EventValidationError(name, "required field is missing", source, position)
    stamp = event["@timestamp"]
    try:
        if type(stamp) is str and len(stamp) == 27 and _CANONICAL.match(stamp):
            datetime.fromisoformat(stamp[:-1])  # already in the one spelling: check only
        else:
            event["@timestamp"] = format_timestamp(parse_timestamp(stamp))
    except (ValueError, OverflowError, OSError) as exc:
        raise EventValidationError("@timestamp", f"not a valid timestamp ({exc})",
                                   source, position) from None
    kind = meta["kind"]
    if kind not in EVENT_KINDS:
        raise EventValidationError("event.kind", f"{kind!r} is not an ECS event kind "
                                   f"({', '.join(sorted(EVENT_KINDS))})", source, position)
    if not types_checked:
        _check_types(event, "", source, position)
    return event


_CANONICAL = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


@dataclass
class DeadLetter:
    """A record that could not be accepted, kept with its reason and its raw bytes."""

    source: str
    position: str
    reason: str
    original: bytes
    received: datetime = field(default_factory=utcnow)

    @classmethod
    def from_error(cls, error: Exception, original: bytes | str, source: str = "",
                   position: str | int = "") -> DeadLetter:
        raw = original.encode("utf-8", "surrogateescape") if isinstance(original, str) \
            else bytes(original)
        src = getattr(error, "source", "") or source
        pos = getattr(error, "position", "") or str(position)
        reason = getattr(error, "reason", None) or str(error)
        return cls(source=src, position=pos, reason=reason, original=raw)


def new_event(dataset: str, timestamp: Any, *, kind: str = "event", original: str | None = None,
              module: str | None = None, **fields: Any) -> Event:
    """Build an event with the required fields set; ``fields`` are dotted names with
    underscores for dots (``source__ip``) or pass a mapping to :func:`set_fields`."""
    event: Event = {"@timestamp": format_timestamp(parse_timestamp(timestamp)),
                    "event": {"kind": kind, "dataset": dataset}}
    if module is not None:
        event["event"]["module"] = module
    if original is not None:
        event["event"]["original"] = original
    for key, value in fields.items():
        if value is not None:
            set_field(event, key.replace("__", "."), value)
    return event


def ensure_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    return [value]


def unique(values: Iterable[Any]) -> list[Any]:
    """Values in first-seen order without repeats."""
    seen: set[Any] = set()
    out: list[Any] = []
    for value in values:
        if value not in seen:
            seen.add(value)
            out.append(value)
    return out
