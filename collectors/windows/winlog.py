"""One Windows event record (XML rendered as JSON) → an ECS event with ``winlog.*``.

The input is the shape the ``evtx`` package, ``evtx_dump`` and SigmaHQ's
regression data use: ``{"Event": {"System": {...}, "EventData": {...}}}`` where
XML attributes sit under ``"#attributes"`` and element text under ``"#text"``.

What lands where (the rules the rest of govsoc relies on):

* ``winlog.event_data.<Name>`` holds every ``<Data Name="...">`` exactly as
  Windows names it (``CommandLine``, ``TargetUserName``, ``LogonType``...), so a
  Sigma rule on ``CommandLine`` reads ``winlog.event_data.CommandLine``. Values
  become strings the way Winlogbeat delivers them: numbers in decimal, booleans
  ``true``/``false``, an empty element ``""``; an array value stays a list of
  strings. Nothing is renamed, trimmed or dropped (Elastic's own pipelines drop
  ``"-"`` values; Sigma rules test for them, so we keep them).
* Unnamed ``<Data>`` elements (classic providers such as ``Windows PowerShell``
  400/600/800) become ``param1``..``paramN`` as Winlogbeat names them, and the
  whole list is also kept under ``Data``, the name Sigma's classic PowerShell
  rules use (``Data|contains``).
* ``<UserData>`` payloads (1102 and 104 log cleared, for instance) are kept in
  ``winlog.user_data`` with the element name in ``xml_name`` (Winlogbeat's
  layout), *and* their leaves are copied into ``winlog.event_data`` unless a
  name is already taken, so Sigma's field names work the same for both payload
  styles.
* ``event.dataset`` comes from the channel: :func:`dataset_for_channel`.
* ``event.original`` is the record's JSON rendering as the reader received it
  (cheaper than the XML and just as complete).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from hashlib import blake2b
from typing import Any

import orjson

from govsoc.errors import ParseError
from govsoc.events import Event, format_timestamp, parse_timestamp

MODULE = "windows"

#: Datasets of the channels detection routes on; other channels follow the rule
#: in :func:`dataset_for_channel`.
CHANNEL_DATASETS: dict[str, str] = {
    "security": "windows.security",
    "system": "windows.system",
    "application": "windows.application",
    "setup": "windows.setup",
    "windows powershell": "windows.powershell",
    "forwardedevents": "windows.forwarded",
    "microsoft-windows-sysmon/operational": "windows.sysmon_operational",
    "microsoft-windows-powershell/operational": "windows.powershell_operational",
    "linux-sysmon/operational": "sysmon_linux.log",
}

_NON_WORD = re.compile(r"[^a-z0-9]+")
_dataset_cache: dict[str, str] = {}


def dataset_for_channel(channel: str) -> str:
    """``event.dataset`` for a Windows channel.

    Known channels use the names of Elastic's Windows integration
    (``windows.security``, ``windows.sysmon_operational``...). Any other channel
    becomes ``windows.`` + the channel lower-cased without a leading
    ``Microsoft-Windows-``, runs of other characters turned into ``_``:
    ``Microsoft-Windows-TaskScheduler/Operational`` →
    ``windows.taskscheduler_operational``.
    """
    known = _dataset_cache.get(channel)
    if known is not None:
        return known
    key = channel.strip().lower()
    dataset = CHANNEL_DATASETS.get(key)
    if dataset is None:
        if key.startswith("microsoft-windows-"):
            key = key[len("microsoft-windows-"):]
        slug = _NON_WORD.sub("_", key).strip("_")[:80] or "unknown"
        dataset = f"windows.{slug}"
    if len(_dataset_cache) < 4096:
        _dataset_cache[channel] = dataset
    return dataset


_LEVELS = {0: "information", 1: "critical", 2: "error", 3: "warning", 4: "information",
           5: "verbose"}

# Standard keyword bits (winmeta.xml); the top byte holds per-provider channel bits
# that only the provider's manifest can name.
_KEYWORD_BITS = (
    (0x10000000000000, "Audit Failure"),
    (0x20000000000000, "Audit Success"),
    (0x80000000000000, "Classic"),
    (0x40000000000000, "Correlation Hint"),
    (0x08000000000000, "SQM"),
    (0x04000000000000, "WDI Diag"),
    (0x02000000000000, "WDI Context"),
    (0x01000000000000, "Response Time"),
)
_keywords_cache: dict[str, list[str]] = {}


def keyword_names(mask: str) -> list[str]:
    """The names of the standard keywords in a ``0x...`` mask (as Winlogbeat names
    them), followed by the mask itself: Sigma rules test the mask
    (``Keywords: '0x8010000000000000'``), Elastic's queries the names. The
    provider's own keyword bits would need its manifest; the mask keeps them."""
    names = _keywords_cache.get(mask)
    if names is not None:
        return names
    try:
        value = int(mask, 16) if mask.lower().startswith("0x") else int(mask)
    except ValueError:
        return [mask]
    names = [name for bit, name in _KEYWORD_BITS if value & bit] + [mask]
    if len(_keywords_cache) < 1024:
        _keywords_cache[mask] = names
    return names


def data_text(value: Any) -> Any:
    """A data value as Winlogbeat delivers it: a string (lists stay lists of strings)."""
    if type(value) is str:
        return value
    if isinstance(value, list):
        return [_scalar_text(item) for item in value]
    if isinstance(value, dict) and "#text" in value:
        return data_text(value["#text"])
    return _scalar_text(value)


def _scalar_text(value: Any) -> str:
    if type(value) is str:
        return value
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict) and "#text" in value and not isinstance(value["#text"], list):
        return _scalar_text(value["#text"])
    if isinstance(value, dict | list):
        # an element with attributes only, or nested elements: its JSON rendering
        inner = {k: v for k, v in value.items() if k != "#attributes"} \
            if isinstance(value, dict) else value
        return orjson.dumps(inner, default=str).decode() if inner else ""
    return str(value)


_NO_ATTRIBUTES: dict[str, Any] = {}


def _attributes(node: Any) -> dict[str, Any]:
    if type(node) is dict:
        attrs = node.get("#attributes")
        if type(attrs) is dict:
            return attrs
    return _NO_ATTRIBUTES


def event_data_fields(section: Any, reuse: bool = False) -> dict[str, Any]:
    """``winlog.event_data`` from an ``EventData`` (or ``ProcessingErrorData``) node.

    With ``reuse`` the node itself is turned into the result (its values replaced
    by their text), which spares a copy when the caller owns the parsed record.
    """
    if type(section) is not dict:
        if section is None:
            return {}
        # <EventData>text</EventData>
        return {"param1": data_text(section)}
    out = section if reuse else dict(section)
    unnamed: Any = _NOTHING
    for name, value in section.items():
        if type(value) is str and name != "Data":
            continue
        if name == "Data" or name == "#text":
            unnamed = value
        elif type(value) is int:
            out[name] = str(value)
        elif name != "#attributes":
            out[name] = data_text(value)
    out.pop("#attributes", None)
    if unnamed is not _NOTHING:
        out.pop("#text", None)
        if type(unnamed) is dict:
            unnamed = unnamed.get("#text", unnamed)
        items = unnamed if type(unnamed) is list else [unnamed]
        texts = [_scalar_text(item) for item in items]
        for i, text in enumerate(texts, 1):
            out.setdefault(f"param{i}", text)
        out["Data"] = texts if len(texts) != 1 else texts[0]
    return out


_NOTHING = object()


def _flatten_user_data(node: Mapping[str, Any], into: dict[str, Any]) -> None:
    for name, value in node.items():
        if name == "#attributes":
            continue
        if isinstance(value, dict) and "#text" not in value:
            _flatten_user_data(value, into)
        elif name not in into:
            into[name] = data_text(value)


def user_data_fields(section: Any) -> dict[str, Any] | None:
    """``winlog.user_data`` (Winlogbeat's layout: the payload's children plus
    ``xml_name``) from a ``UserData`` node."""
    if not isinstance(section, Mapping) or not section:
        return None
    out: dict[str, Any] = {}
    for name, value in section.items():
        if name == "#attributes":
            continue
        out["xml_name"] = name
        if isinstance(value, Mapping):
            for key, item in value.items():
                if key != "#attributes":
                    out[key] = data_text(item)
        else:
            out["#text"] = data_text(value)
    return out or None


_INT64 = 1 << 63


def _int(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value if -_INT64 <= value < _INT64 else None
    if isinstance(value, str):
        try:
            number = int(value, 16) if value[:2] in ("0x", "0X") else int(value)
        except ValueError:
            return None
        return number if -_INT64 <= number < _INT64 else None
    return None


_identity_prefixes: dict[tuple[str, str], bytes] = {}


def record_identity(computer: str, channel: str, record_id: str, timestamp: str) -> str:
    """The deterministic ``event.id`` of a Windows event record:
    ``event_id(f"evtx:{computer}:{channel}", f"{record_id}@{timestamp[:23]}")`` with
    the computer and channel lower-cased and the time cut to milliseconds.

    The same record read twice is one event: from two copies of a log (a live file
    and its backup), or from an EVTX file and a Winlogbeat export of the same log
    (Winlogbeat writes milliseconds, hence the cut). The creation time is part of
    the identity because record numbers are not unique on their own: machines
    restored from a snapshot, or lab images cloned under one computer name, write
    different events under the same number.
    """
    key = (computer, channel)
    prefix = _identity_prefixes.get(key)
    if prefix is None:
        # the bytes event_id() hashes: source, a NUL, then the position
        prefix = f"evtx:{computer.lower()}:{channel.lower()}\x00".encode("utf-8",
                                                                          "surrogatepass")
        if len(_identity_prefixes) < 4096:
            _identity_prefixes[key] = prefix
    position = f"{record_id}@{timestamp[:23]}".encode("utf-8", "surrogatepass")
    return blake2b(prefix + position, digest_size=16).hexdigest()


def content_identity(computer: str, channel: str, content: str) -> str:
    """``event.id`` of a record exported without its record number: a digest of its
    content, so the same export read twice stores once and distinct records that
    share a millisecond stay distinct."""
    digest = blake2b(content.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
    return blake2b(f"evtx:{computer.lower()}:{channel.lower()}\x00content:{digest}".encode(
        "utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _text(value: Any) -> str:
    if type(value) is str:
        return value
    return "" if value is None else str(data_text(value))


def winlog_event(record: Mapping[str, Any], original: str | None = None,
                 source: str = "", position: str | int = "", *,
                 reuse: bool = False) -> Event:
    """The ECS event (before per-event-id enrichment) of one XML-as-JSON record.

    With ``reuse`` the record's own ``EventData`` object becomes
    ``winlog.event_data`` (the reader owns the freshly parsed record; callers
    passing their own data get a copy). Raises :class:`ParseError` naming
    ``source`` and ``position`` when the record lacks the parts every Windows
    event has (``System``, a time, an event id).
    """
    root = record.get("Event", record) if type(record) is dict else None
    if type(root) is not dict:
        raise ParseError("not an event record (no Event object)", source, position)
    system = root.get("System")
    if type(system) is not dict:
        raise ParseError("event record without a System section", source, position)

    raw_id = system.get("EventID")
    qualifiers = None
    if type(raw_id) is int:
        code = str(raw_id)
    else:
        if type(raw_id) is dict:
            qualifiers = _attributes(raw_id).get("Qualifiers")
            raw_id = raw_id.get("#text")
        if raw_id is None or raw_id == "" or isinstance(raw_id, dict | list | bool):
            raise ParseError("event record without an EventID", source, position)
        code = str(raw_id)

    try:
        created = system["TimeCreated"]["#attributes"]["SystemTime"]
    except (KeyError, TypeError):
        raise ParseError("event record without TimeCreated/@SystemTime",
                         source, position) from None
    if type(created) is str and len(created) == 27 and created[26] == "Z" \
            and created[19] == ".":
        timestamp = created  # the evtx package's spelling is already ours
    else:
        try:
            timestamp = format_timestamp(parse_timestamp(created))
        except (ValueError, OverflowError, OSError) as exc:
            raise ParseError(f"TimeCreated {created!r} is not a timestamp ({exc})",
                             source, position) from None

    get = system.get
    channel = get("Channel")
    if type(channel) is not str:
        channel = _text(channel)
    computer = get("Computer")
    if type(computer) is not str:
        computer = _text(computer)
    try:
        provider = system["Provider"]["#attributes"]
        provider_name = provider["Name"]
    except (KeyError, TypeError):
        provider = _attributes(get("Provider"))
        provider_name = provider.get("Name") or provider.get("EventSourceName") or ""
    if type(provider_name) is not str:
        provider_name = _text(provider_name)
    record_id = get("EventRecordID")
    record_id = str(record_id) if type(record_id) is int else _text(record_id)

    winlog: dict[str, Any] = {
        "channel": channel,
        "provider_name": provider_name,
        "event_id": code,
        "record_id": record_id,
        "computer_name": computer,
    }
    guid = provider.get("Guid")
    if guid:
        winlog["provider_guid"] = guid if type(guid) is str else _scalar_text(guid)
    if qualifiers is not None:
        winlog["qualifiers"] = str(qualifiers)
    version = get("Version")
    if version is not None:
        version = _int(version)
        if version is not None:
            winlog["version"] = version
    task = get("Task")
    if task is not None:
        winlog["task"] = str(task)
    opcode = get("Opcode")
    if opcode is not None:
        winlog["opcode"] = str(opcode)
    keywords = get("Keywords")
    if type(keywords) is str and keywords:
        # a copy: events must not share mutable lists
        winlog["keywords"] = [*(_keywords_cache.get(keywords) or keyword_names(keywords))]
    correlation = get("Correlation")
    if correlation:
        attrs = _attributes(correlation)
        if attrs.get("ActivityID"):
            winlog["activity_id"] = _scalar_text(attrs["ActivityID"])
        if attrs.get("RelatedActivityID"):
            winlog["related_activity_id"] = _scalar_text(attrs["RelatedActivityID"])
    try:
        execution = system["Execution"]["#attributes"]
    except (KeyError, TypeError):
        execution = None
    if type(execution) is not dict:
        execution = _NO_ATTRIBUTES
    if execution:
        pid = execution.get("ProcessID")
        tid = execution.get("ThreadID")
        if type(pid) is int and type(tid) is int and 0 <= pid < _INT64 and 0 <= tid < _INT64:
            winlog["process"] = {"pid": pid, "thread": {"id": tid}}
        else:
            pid, tid = _int(pid), _int(tid)
            process: dict[str, Any] = {}
            if pid is not None:
                process["pid"] = pid
            if tid is not None:
                process["thread"] = {"id": tid}
            if process:
                winlog["process"] = process
    security = get("Security")
    if security:
        user_sid = _attributes(security).get("UserID")
        if user_sid:
            winlog["user"] = {"identifier": user_sid if type(user_sid) is str
                              else _scalar_text(user_sid)}

    event_data = root.get("EventData")
    data = event_data_fields(event_data, reuse) if event_data is not None else {}
    # beyond #attributes, System and EventData: the rarer sections
    if event_data is None or len(root) > 3:
        user_data_node = root.get("UserData")
        if user_data_node is not None:
            user_data = user_data_fields(user_data_node)
            if user_data is not None:
                winlog["user_data"] = user_data
                _flatten_user_data(user_data_node, data)
                data.pop("xml_name", None)
        errors = root.get("ProcessingErrorData")
        if type(errors) is dict:
            for key, value in event_data_fields(errors).items():
                data.setdefault(key, value)
    if data:
        winlog["event_data"] = data

    event_fields: dict[str, Any] = {
        "kind": "event",
        "module": MODULE,
        "dataset": _dataset_cache.get(channel) or dataset_for_channel(channel),
        "code": code,
        "provider": provider_name,
        "id": record_identity(computer, channel, record_id, timestamp) if record_id
        else content_identity(computer, channel, original if original is not None
                              else repr(record)),
    }
    if original is not None:
        event_fields["original"] = original
    event: Event = {"@timestamp": timestamp, "event": event_fields, "winlog": winlog}
    if computer:
        event["host"] = {"name": computer}
    level = get("Level")
    if level is not None:
        if type(level) is not int:
            level = _int(level) if isinstance(level, str) else None
        if level is not None:
            event["log"] = {"level": _LEVELS.get(level) or str(level)}
    rendering = root.get("RenderingInfo")
    if type(rendering) is dict:
        _apply_rendering(event, winlog, rendering)
    return event


def _apply_rendering(event: Event, winlog: dict[str, Any], rendering: Mapping[str, Any]) -> None:
    """Forwarded events carry the rendered message and names; prefer them."""
    message = rendering.get("Message")
    if isinstance(message, str) and message:
        event["message"] = message
    for key, target in (("Task", "task"), ("Opcode", "opcode")):
        value = rendering.get(key)
        if isinstance(value, str) and value:
            winlog[target] = value
    keywords = rendering.get("Keywords")
    if isinstance(keywords, Mapping):
        names = keywords.get("Keyword")
        if isinstance(names, str):
            winlog["keywords"] = [names]
        elif isinstance(names, list):
            winlog["keywords"] = [str(n) for n in names]
    level = rendering.get("Level")
    if isinstance(level, str) and level:
        event["log"] = {"level": level.lower()}
