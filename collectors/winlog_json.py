"""Windows events exported as JSON (or XML) lines → the same ECS events EVTX gives.

Recognised shapes, one record per line:

* **Winlogbeat / Elastic Agent** (ECS with a ``winlog`` object, nested or with
  dotted keys): kept as shipped; ``winlog.event_id`` becomes a string,
  ``event.code``, ``event.dataset`` (from the channel, by the one rule of
  :func:`~collectors.windows.winlog.dataset_for_channel`), ``event.module``,
  ``host.name`` and ``event.id`` are filled in, ``winlog.event_data`` values
  become strings, and data fields Elastic's ingest pipelines moved out of
  ``winlog.event_data`` into ECS (``process.executable`` for ``Image``…) are
  put back under their Windows names so Sigma rules find them. Events the
  shipper left unmapped get the ECS enrichment of :mod:`collectors.windows.ecs`.
* **Flattened NXLog / Logstash** (OTRF Security-Datasets, "Mordor"): ``EventID``,
  ``Channel``, ``Hostname``, ``SourceName``… and the event data side by side at
  the top level.
* **Azure Monitor / Log Analytics** ``SecurityEvent``, ``WindowsEvent`` and
  ``Event`` rows: ``Computer``, ``EventID``, ``Channel`` and ``EventData`` as an
  XML or JSON string.
* **Sysmon for Linux** through syslog (Log Analytics ``Syslog`` rows, or any
  record whose program is ``sysmon``): the ``<Event>`` XML in the message.
* **XML** lines (``<Event xmlns=…>…</Event>``, as ``wevtutil qe /f:xml`` and
  Sysmon for Linux write them) and **evtx_dump JSON** (``{"Event": {...}}``).

Raw shapes keep the line as ``event.original``; ECS exports are already events.
:func:`windows_record_event` answers ``None`` for anything else, so generic ECS
lines go on through :mod:`collectors.jsonl` untouched.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ElementTree
import zipfile
from collections.abc import Iterator
from typing import IO, Any, BinaryIO, cast

import orjson
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as defused_fromstring

from collectors.base import DEFAULT_BATCH_SIZE, Batch
from collectors.windows.ecs import enrich
from collectors.windows.winlog import (
    _dataset_cache,
    data_text,
    dataset_for_channel,
    record_identity,
    winlog_event,
)
from govsoc.errors import ParseError, RecordError
from govsoc.events import (
    DeadLetter,
    Event,
    event_id,
    format_timestamp,
    parse_timestamp,
    validate_event,
)

__all__ = ["read_winlog_json", "windows_record_event", "xml_to_record"]

# --- XML → the XML-as-JSON record shape ---------------------------------------------

_NAMESPACE = re.compile(r"^\{[^}]*\}")
_FORBIDDEN_XML = ("<!DOCTYPE", "<!ENTITY")
_BARE_AMPERSAND = re.compile(r"&(?!(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#x[0-9A-Fa-f]+);)")


def _local(tag: str) -> str:
    return _NAMESPACE.sub("", tag) if tag.startswith("{") else tag


def _element_value(element: ElementTree.Element) -> Any:
    """An element the way the evtx package renders it: text, or attributes and
    children under ``#attributes`` and their names."""
    children = list(element)
    attrs = {_local(k): v for k, v in element.attrib.items()}
    if not children:
        text = element.text if element.text is not None else None
        if attrs:
            node: dict[str, Any] = {"#attributes": attrs}
            if text is not None and text.strip():
                node["#text"] = text
            return node
        return text
    node = {"#attributes": attrs} if attrs else {}
    for child in children:
        node[_local(child.tag)] = _element_value(child)
    return node


def _event_data(element: ElementTree.Element) -> dict[str, Any]:
    out: dict[str, Any] = {}
    unnamed: list[Any] = []
    for child in element:
        tag = _local(child.tag)
        name = child.attrib.get("Name")
        if tag == "Data" and name is None:
            unnamed.append(child.text or "")
        elif tag == "Data":
            out[name] = child.text or ""  # type: ignore[index]
        else:
            out[tag] = child.text or ""
    if unnamed:
        out["Data"] = {"#text": unnamed if len(unnamed) > 1 else unnamed[0]}
    return out


def _parse_xml(text: str) -> ElementTree.Element | Exception:
    try:
        # defusedxml refuses entity and DTD tricks (the input is attacker-controlled)
        return defused_fromstring(text)
    except (ElementTree.ParseError, DefusedXmlException) as exc:
        return exc


def xml_to_record(text: str, source: str = "", position: str | int = "") -> dict[str, Any]:
    """``<Event>…</Event>`` XML → ``{"Event": {"System": ..., "EventData": ...}}``.

    Raises :class:`ParseError` for malformed XML and for documents declaring
    entities (refused, as entity expansion is a denial-of-service vector).
    """
    if any(marker in text for marker in _FORBIDDEN_XML):
        raise ParseError("XML with a DOCTYPE or entity declarations is refused",
                         source, position)
    root = _parse_xml(text)
    if isinstance(root, Exception):
        # Sysmon for Linux writes bare ampersands ("&lt unknown process&gt"); read
        # them as the literal text they are, and give up on anything else
        repaired = _BARE_AMPERSAND.sub("&amp;", text)
        retried = _parse_xml(repaired) if repaired != text else root
        if isinstance(retried, Exception):
            raise ParseError(f"malformed event XML: {root}", source, position) from None
        root = retried
    if _local(root.tag) != "Event":
        raise ParseError(f"XML root is <{_local(root.tag)}>, not <Event>", source, position)
    event: dict[str, Any] = {}
    for section in root:
        name = _local(section.tag)
        if name == "System":
            system: dict[str, Any] = {}
            for child in section:
                tag = _local(child.tag)
                value = _element_value(child)
                if tag == "Security" and isinstance(value, dict):
                    attrs = value.get("#attributes", {})
                    if "UserId" in attrs and "UserID" not in attrs:  # Sysmon for Linux
                        attrs["UserID"] = attrs.pop("UserId")
                system[tag] = value
            event["System"] = system
        elif name == "EventData":
            event["EventData"] = _event_data(section)
        elif name == "UserData":
            event["UserData"] = {_local(child.tag): _element_value(child) for child in section}
        else:
            event[name] = _element_value(section)
    return {"Event": event}


# --- the shapes -----------------------------------------------------------------------

#: Top-level keys of the flattened NXLog/Logstash shape that are not event data.
_FLAT_METADATA = frozenset((
    "SourceName", "ProviderGuid", "Level", "Keywords", "Channel", "Hostname", "TimeCreated",
    "@timestamp", "@version", "EventID", "Message", "Task", "Version", "Opcode",
    "OpcodeValue", "RecordNumber", "ExecutionProcessID", "ThreadID", "EventTime",
    "EventReceivedTime", "SourceModuleName", "SourceModuleType", "SeverityValue", "Severity",
    "Category", "host", "port", "tags", "type", "EventTypeOrignal", "ActivityID",
    "RelatedActivityID", "UserID",
))
#: Keys NXLog adds from its own account lookup; event data of the same name exists
#: (AccountName in 7045), so they count as metadata only in NXLog's records.
_NXLOG_ACCOUNT = frozenset(("AccountName", "AccountType", "Domain"))
_NXLOG_EVENT_TYPES = frozenset(("AUDIT_SUCCESS", "AUDIT_FAILURE", "INFO", "WARNING", "ERROR",
                                "CRITICAL", "VERBOSE"))
_LOG_ANALYTICS_TYPES = frozenset(("SecurityEvent", "WindowsEvent", "Event"))


def _first(doc: dict[str, Any], *names: str) -> Any:
    for name in names:
        value = doc.get(name)
        if value is not None and value != "":
            return value
    return None


def _system(doc: dict[str, Any], *, channel: Any, provider: Any, event_id_value: Any,
            computer: Any, time_created: Any, record_id: Any = None, level: Any = None,
            keywords: Any = None, task: Any = None, opcode: Any = None, version: Any = None,
            guid: Any = None, user_sid: Any = None, pid: Any = None,
            tid: Any = None) -> dict[str, Any]:
    provider_attrs: dict[str, Any] = {"Name": provider or ""}
    if guid:
        provider_attrs["Guid"] = guid
    system: dict[str, Any] = {
        "Provider": {"#attributes": provider_attrs},
        "EventID": event_id_value,
        "TimeCreated": {"#attributes": {"SystemTime": time_created}},
        "Channel": channel or "",
        "Computer": computer or "",
    }
    for key, value in (("EventRecordID", record_id), ("Level", level),
                       ("Keywords", keywords), ("Task", task), ("Opcode", opcode),
                       ("Version", version)):
        if value is not None and value != "":
            system[key] = int(value) if key == "Level" and str(value).isdigit() else value
    if user_sid:
        system["Security"] = {"#attributes": {"UserID": user_sid}}
    execution = {k: v for k, v in (("ProcessID", pid), ("ThreadID", tid))
                 if v is not None and v != ""}
    if execution:
        system["Execution"] = {"#attributes": execution}
    return system


def _provider_of(channel: Any, code: Any) -> str:
    """The provider of an export that dropped it, from the channel it came through."""
    if not isinstance(channel, str):
        return ""
    if channel.lower() == "security":
        # the event log service itself writes 1100-1108 (log cleared, full, stopped)
        return "Microsoft-Windows-Eventlog" if str(code)[:3] == "110" and \
            len(str(code)) == 4 else "Microsoft-Windows-Security-Auditing"
    if "/" in channel:
        return channel.split("/", 1)[0]
    return ""


def _time_of(value: Any, source: str, line: int) -> str:
    try:
        return format_timestamp(parse_timestamp(value))
    except (ValueError, OverflowError, OSError) as exc:
        raise ParseError(f"time {value!r} is not a timestamp ({exc})", source, line) from None


def _flat_record(doc: dict[str, Any], source: str, line: int) -> dict[str, Any]:
    """The flattened NXLog/Logstash shape → the XML-as-JSON record shape."""
    nxlog = "SourceModuleType" in doc or "EventReceivedTime" in doc
    data: dict[str, Any] = {}
    for key, value in doc.items():
        if key in _FLAT_METADATA or (nxlog and key in _NXLOG_ACCOUNT):
            continue
        if key == "EventType" and isinstance(value, str) and value in _NXLOG_EVENT_TYPES:
            continue
        data[key] = value
    if doc.get("EventTypeOrignal") is not None:  # Security-Datasets renamed the clash
        data["EventType"] = doc["EventTypeOrignal"]
    created = _first(doc, "TimeCreated", "@timestamp", "EventTime")
    if created is None:
        raise ParseError("Windows event without TimeCreated, @timestamp or EventTime",
                         source, line)
    system = _system(
        doc, channel=doc.get("Channel"),
        provider=doc.get("SourceName") or _provider_of(doc.get("Channel"), doc.get("EventID")),
        event_id_value=doc.get("EventID"), computer=doc.get("Hostname"),
        time_created=_time_of(created, source, line), record_id=doc.get("RecordNumber"),
        level=doc.get("Level"), keywords=doc.get("Keywords"), task=doc.get("Task"),
        opcode=_first(doc, "OpcodeValue"), version=doc.get("Version"),
        guid=doc.get("ProviderGuid"), user_sid=doc.get("UserID"),
        pid=doc.get("ExecutionProcessID"), tid=doc.get("ThreadID"))
    record: dict[str, Any] = {"System": system, "EventData": data}
    message = doc.get("Message")
    if isinstance(message, str) and message:
        record["RenderingInfo"] = {"Message": message}
    return {"Event": record}


def _log_analytics_record(doc: dict[str, Any], source: str, line: int) -> dict[str, Any]:
    """A Log Analytics ``SecurityEvent``/``WindowsEvent``/``Event`` row → record shape."""
    raw = doc.get("EventData")
    data: Any = {}
    user_data: Any = None
    if isinstance(raw, str) and raw.strip().startswith("<"):
        text = raw.strip()
        whole = text.startswith(("<Event>", "<Event "))
        wrapped = xml_to_record(text if whole else f"<Event>{text}</Event>",
                                source, line)["Event"]
        data = wrapped.get("EventData", {})
        user_data = wrapped.get("UserData")
    elif isinstance(raw, str) and raw.strip().startswith("{"):
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ParseError(f"EventData is not valid JSON ({exc})", source, line) from None
    elif isinstance(raw, dict):
        data = raw
    created = _first(doc, "TimeCreated", "TimeGenerated")
    if created is None:
        raise ParseError("Log Analytics row without TimeGenerated", source, line)
    system = _system(
        doc, channel=doc.get("Channel"),
        provider=_first(doc, "Provider", "EventSourceName", "Source"),
        event_id_value=doc.get("EventID"), computer=doc.get("Computer"),
        time_created=_time_of(created, source, line),
        record_id=_first(doc, "EventRecordId", "EventRecordID"),
        level=_first(doc, "EventLevel", "Level"), task=doc.get("Task"),
        keywords=doc.get("Keywords"))
    record: dict[str, Any] = {"System": system, "EventData": data}
    if user_data:
        record["UserData"] = user_data
    message = _first(doc, "RenderedDescription", "Message")
    if isinstance(message, str):
        record["RenderingInfo"] = {"Message": message}
    return {"Event": record}


_SYSLOG_MESSAGE_KEYS = ("SyslogMessage", "message")


def _sysmon_syslog_xml(doc: dict[str, Any]) -> str | None:
    """The ``<Event>`` XML of a Sysmon-for-Linux syslog record, when it is one.

    Only records whose program is ``sysmon`` qualify: an ``<Event>`` string inside
    any other log (a URL, a mail subject) is attacker-controlled text, not a
    Windows event."""
    program = doc.get("ProcessName")
    if program is None:
        process = doc.get("process")
        program = process.get("name") if isinstance(process, dict) else None
    if program is None:
        log = doc.get("log")
        syslog = log.get("syslog") if isinstance(log, dict) else None
        program = syslog.get("appname") if isinstance(syslog, dict) else None
    if not isinstance(program, str) or program.lower() != "sysmon":
        return None
    for key in _SYSLOG_MESSAGE_KEYS:
        message = doc.get(key)
        if isinstance(message, str):
            start = message.find("<Event")
            end = message.rfind("</Event>")
            if start >= 0 and end > start:
                return message[start:end + len("</Event>")]
    return None


def _module_and_os(event: Event) -> None:
    """Sysmon for Linux events belong to the Linux host, not to Windows."""
    dataset = event["event"]["dataset"]
    if dataset.startswith("sysmon_linux"):
        event["event"]["module"] = "sysmon_linux"
        host = event.setdefault("host", {})
        host.setdefault("os", {})["type"] = "linux"


def _from_record(record: dict[str, Any], original: str, source: str, line: int) -> Event:
    event = enrich(winlog_event(record, original, source, line, reuse=True))
    _module_and_os(event)
    return event


# --- ECS exports (Winlogbeat, Elastic Agent) -----------------------------------------

# ECS fields Elastic's Sysmon/Security pipelines fill by moving event data out of
# winlog.event_data; put back under the Windows names so Sigma rules find them.
_RESTORE_SYSMON: tuple[tuple[str, str], ...] = (
    ("Image", "process.executable"), ("CommandLine", "process.command_line"),
    ("ProcessId", "process.pid"), ("ProcessGuid", "process.entity_id"),
    ("CurrentDirectory", "process.working_directory"),
    ("ParentImage", "process.parent.executable"),
    ("ParentCommandLine", "process.parent.command_line"),
    ("ParentProcessId", "process.parent.pid"), ("ParentProcessGuid", "process.parent.entity_id"),
    ("OriginalFileName", "process.pe.original_file_name"),
    ("TargetFilename", "file.path"), ("TargetObject", "registry.path"),
    ("QueryName", "dns.question.name"), ("SourceIp", "source.ip"),
    ("SourcePort", "source.port"), ("SourceHostname", "source.domain"),
    ("DestinationIp", "destination.ip"), ("DestinationPort", "destination.port"),
    ("DestinationHostname", "destination.domain"), ("Protocol", "network.transport"),
    ("RuleName", "rule.name"), ("PipeName", "file.name"),
)
_RESTORE_IMAGE_LOAD = (("ImageLoaded", "dll.path"), ("ImageLoaded", "file.path"))
_RESTORE_CROSS_PROCESS = (("SourceImage", "process.executable"),
                          ("SourceProcessId", "process.pid"),
                          ("SourceProcessGuid", "process.entity_id"))


def _dig(doc: dict[str, Any], dotted: str) -> Any:
    node: Any = doc
    for part in dotted.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def _restore_event_data(event: Event, winlog: dict[str, Any], data: dict[str, Any]) -> None:
    provider = winlog.get("provider_name")
    if provider not in ("Microsoft-Windows-Sysmon", "Linux-Sysmon"):
        return
    code = winlog.get("event_id")
    pairs: tuple[tuple[str, str], ...]
    if code in ("8", "10"):
        pairs = _RESTORE_CROSS_PROCESS
    elif code in ("6", "7"):
        pairs = _RESTORE_IMAGE_LOAD + _RESTORE_SYSMON
    else:
        pairs = _RESTORE_SYSMON
    for name, field in pairs:
        if name in data:
            continue
        value = _dig(event, field)
        if value is not None and not isinstance(value, dict | list):
            data[name] = data_text(value)
    if "User" not in data and code not in ("8", "10"):
        user = event.get("user")
        if isinstance(user, dict) and isinstance(user.get("name"), str):
            domain = user.get("domain")
            data["User"] = f"{domain}\\{user['name']}" if domain else user["name"]
    if "Hashes" not in data:
        hashes = _dig(event, "process.hash") if code == "1" else None
        if isinstance(hashes, dict) and hashes:
            data["Hashes"] = ",".join(f"{k.upper()}={str(v).upper()}"
                                      for k, v in hashes.items())


def _ecs_export(doc: dict[str, Any], source: str, line: int) -> Event:
    """A Winlogbeat / Elastic Agent document, normalised in place."""
    from collectors.jsonl import expand_dotted

    event = expand_dotted(doc)
    winlog = event.get("winlog")
    if not isinstance(winlog, dict):
        raise ParseError("winlog is not an object", source, line)
    code = winlog.get("event_id")
    if code is None:
        code = _dig(event, "event.code")
    if code is None or isinstance(code, dict | list | bool):
        raise ParseError("Windows event without winlog.event_id", source, line)
    code = str(code)
    winlog["event_id"] = code
    channel = winlog.get("channel")
    channel = channel if isinstance(channel, str) else ""
    computer = winlog.get("computer_name")
    computer = computer if isinstance(computer, str) else ""
    if winlog.get("record_id") is not None:
        winlog["record_id"] = str(winlog["record_id"])
    meta = event.get("event")
    if not isinstance(meta, dict):
        meta = event["event"] = {}
    meta.setdefault("kind", "event")
    meta["code"] = code
    meta.setdefault("module", "windows")
    if channel:
        meta["dataset"] = _dataset_cache.get(channel) or dataset_for_channel(channel)
    elif not meta.get("dataset"):
        meta["dataset"] = "windows.unknown"
    if winlog.get("provider_name"):
        meta.setdefault("provider", winlog["provider_name"])
    if computer:
        host = event.get("host")
        if not isinstance(host, dict):
            host = event["host"] = {}
        host.setdefault("name", computer)
    stamp = event.get("@timestamp")
    if stamp is None:
        created = winlog.get("time_created")
        if created is None:
            raise ParseError("Windows event without @timestamp", source, line)
        stamp = event["@timestamp"] = _time_of(created, source, line)
    if not meta.get("id"):
        if winlog.get("record_id") and computer:
            meta["id"] = record_identity(computer, channel, winlog["record_id"],
                                         _time_of(stamp, source, line))
        else:
            meta["id"] = event_id(f"jsonl:{source}", line)
    data = winlog.get("event_data")
    if isinstance(data, dict):
        for key, value in data.items():
            if type(value) is not str:
                data[key] = data_text(value)
    else:
        data = {}
    _restore_event_data(event, winlog, data)
    if data:
        winlog["event_data"] = data
    keywords = winlog.get("keywords")
    if isinstance(keywords, str):
        winlog["keywords"] = [keywords]
    if "category" not in meta:  # the shipper left it unmapped
        enrich(event)
    _module_and_os(event)
    return event


# --- entry points ---------------------------------------------------------------------

def windows_record_event(doc: Any, raw: bytes | str, source: str,
                         line: int) -> Event | None:
    """The ECS event of one JSON document when it is a Windows (or Sysmon for
    Linux) event record in a shape this module knows; ``None`` otherwise.

    Raises :class:`ParseError` naming ``source`` and ``line`` for a record that is
    recognisably a Windows event but is missing what every event has."""
    if not isinstance(doc, dict):
        return None
    try:
        return _windows_record_event(doc, raw, source, line)
    except RecursionError:
        raise ParseError("record nested too deeply", source, line) from None


def _windows_record_event(doc: dict[str, Any], raw: bytes | str, source: str,
                          line: int) -> Event | None:
    if "winlog" in doc or "winlog.event_id" in doc or "winlog.channel" in doc:
        return _ecs_export(doc, source, line)
    inner = doc.get("Event")
    if isinstance(inner, dict) and isinstance(inner.get("System"), dict):
        return _from_record(doc, _text(raw), source, line)
    if "EventID" in doc:
        if doc.get("Type") in _LOG_ANALYTICS_TYPES or "TimeGenerated" in doc:
            return _from_record(_log_analytics_record(doc, source, line), _text(raw),
                                source, line)
        if "Channel" in doc or "SourceName" in doc:
            return _from_record(_flat_record(doc, source, line), _text(raw), source, line)
        return None
    xml = _sysmon_syslog_xml(doc)
    if xml is not None:
        return _from_record(xml_to_record(xml, source, line), _text(raw), source, line)
    return None


def _text(raw: bytes | str) -> str:
    return raw if isinstance(raw, str) else raw.decode("utf-8", "replace")


def _open_members(path: str) -> Iterator[tuple[str, IO[bytes]]]:
    """The file itself, each member of a .zip, or the decompressed .gz."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if not info.is_dir():
                    with archive.open(info) as member:
                        yield f"{path}!{info.filename}", member
        return
    if path.endswith(".gz"):
        import gzip

        with gzip.open(path, "rb") as stream:
            yield path, cast(IO[bytes], stream)
        return
    with open(path, "rb") as plain:
        yield path, plain


def read_winlog_json(path: str | os.PathLike[str], batch_size: int = DEFAULT_BATCH_SIZE,
                     max_line_bytes: int = 4 * 1024 * 1024) -> Iterator[Batch]:
    """Batches of events from a file of Windows event records, one per line (JSON
    in any shape above, or XML); ``.zip`` members and ``.gz`` are read too.

    A line that is not a Windows event record, or is a broken one, becomes a dead
    letter naming the file and line; the other lines go on.
    """
    from collectors.lines import read_lines

    file_path = os.fspath(path)
    batch = Batch(validated=True)
    for source, stream in _open_members(file_path):
        for raw in read_lines(cast(BinaryIO, stream), max_line_bytes):
            data = raw.data.strip()
            if not data:
                continue
            if raw.truncated:
                batch.rejected.append(DeadLetter(
                    source, str(raw.number), f"line longer than {max_line_bytes} bytes",
                    raw.data))
            else:
                try:
                    event = _parse_line(data, source, raw.number)
                    batch.events.append(validate_event(event, source, raw.number))
                except RecordError as exc:
                    batch.rejected.append(DeadLetter.from_error(exc, raw.data))
            if len(batch) >= batch_size:
                yield batch
                batch = Batch(validated=True)
    if len(batch):
        yield batch


def _parse_line(data: bytes, source: str, line: int) -> Event:
    try:
        return _parse_line_unguarded(data, source, line)
    except RecursionError:
        raise ParseError("record nested too deeply", source, line) from None


def _parse_line_unguarded(data: bytes, source: str, line: int) -> Event:
    if data.startswith(b"<"):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ParseError(f"not valid UTF-8 at byte {exc.start}", source, line) from None
        return _from_record(xml_to_record(text, source, line), text, source, line)
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"invalid JSON: {exc}", source, line) from None
    event = windows_record_event(doc, data, source, line)
    if event is None:
        raise ParseError("not a Windows event record (no winlog object, EventID or "
                         "Event.System)", source, line)
    return event

