"""ECS enrichment of Windows events: what each event id says in ECS terms.

Given an event that already carries ``winlog.*`` (from an EVTX record or a
Winlogbeat export), :func:`enrich` adds ``event.category/type/action/outcome``
and the ECS fields the event's data holds: ``process.*``, ``user.*``,
``source.*``, ``destination.*``, ``network.*``, ``file.*``, ``dll.*``,
``registry.*``, ``dns.*``, ``service.*``, ``group.*``.

The reference is Elastic's own Windows mapping (the Winlogbeat ``security``,
``sysmon`` and ``powershell`` modules and the Windows integration): the same
action names (``logged-in``, ``added-member-to-group``, ``Process creation``...)
and categories, so queries and dashboards written for Elastic work here. Two
deliberate differences: ``winlog.event_data`` is never pruned or renamed (Sigma
rules read it; Elastic's pipelines move fields out of it and drop ``"-"``
values), and registry deletions/creations get ``event.type`` ``deletion`` /
``creation`` instead of Elastic's blanket ``change``.

Handlers are chosen by provider and event id; every handler only reads
``winlog.event_data`` and writes ECS fields, so the table is the whole mapping.

Not produced (yet): ``process.args`` (Windows command-line splitting),
``related.*``, ``*.code_signature.*``, ``network.community_id`` for Sysmon 3,
and the SID-to-name lookups Winlogbeat does on the Windows host itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from typing import Any

from govsoc.events import Event

_EMPTY = frozenset(("", "-", "{00000000-0000-0000-0000-000000000000}"))

Handler = Callable[[Event, dict[str, Any], str], None]


# --- small value helpers ----------------------------------------------------------

def _v(data: Mapping[str, Any], name: str) -> str | None:
    """The data value ``name`` when it carries information."""
    value = data.get(name)
    if value.__class__ is str and value not in _EMPTY:
        return value
    return None


def _sub(node: dict[str, Any], key: str) -> dict[str, Any]:
    child = node.get(key)
    if child is None:
        child = node[key] = {}
    return child


_INT64 = 1 << 63


def _int(value: str | None) -> int | None:
    """A decimal or 0x-hex number that fits an ECS long, or None."""
    if value is None:
        return None
    if value.isdigit():  # the common case: a decimal pid or port
        number = int(value) if len(value) < 20 else _INT64
        return number if number < _INT64 else None
    try:
        number = int(value, 16) if value[:2] in ("0x", "0X") else int(value)
    except ValueError:
        return None
    return number if -_INT64 <= number < _INT64 else None


def basename(path: str) -> str:
    """The last component of a Windows or POSIX path."""
    name = path.rpartition("\\")[2]
    return name.rpartition("/")[2] if "/" in name else name


_ip_cache: dict[str, str | None] = {}


def _ip(value: str | None) -> str | None:
    """A valid IP address (v4-mapped IPv6 unwrapped), or None."""
    if value is None:
        return None
    try:
        return _ip_cache[value]
    except KeyError:
        pass
    address = _parse_ip(value)
    if len(_ip_cache) >= 65536:
        _ip_cache.clear()
    _ip_cache[value] = address
    return address


def _parse_ip(value: str) -> str | None:
    text = value.strip()
    if text.startswith("::ffff:") and "." in text:
        text = text[7:]
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return str(ipaddress.ip_address(text.split("%", 1)[0]))
    except ValueError:
        return None


def _port(value: str | None) -> int | None:
    port = _int(value)
    return port if port is not None and 0 < port < 65536 else None


def parse_hashes(text: str) -> dict[str, str]:
    """``SHA1=..,MD5=..,SHA256=..,IMPHASH=..`` → lower-case names and digests
    (all-zero digests, which Sysmon writes for files it could not read, dropped)."""
    out: dict[str, str] = {}
    for part in text.split(","):
        name, sep, digest = part.partition("=")
        if not sep:
            continue
        digest = digest.strip().lower()
        if digest and digest.strip("0"):
            out[name.strip().lower()] = digest
    return out


_hash_cache: dict[str, tuple[dict[str, str] | None, str | None]] = {}


def _hash_fields(text: str) -> tuple[dict[str, str] | None, str | None]:
    """The ECS ``hash`` object and the imphash of a Sysmon ``Hashes`` value.

    Cached: the same images and DLLs load again and again."""
    found = _hash_cache.get(text)
    if found is None:
        hashes = parse_hashes(text)
        known: dict[str, str] = {k: hashes[k] for k in ("md5", "sha1", "sha256")
                                 if k in hashes}
        found = (known or None, hashes.get("imphash"))
        if len(_hash_cache) >= 16384:
            _hash_cache.clear()
        _hash_cache[text] = found
    return found


def _put_hashes(node: dict[str, Any], text: str | None) -> None:
    if text is None:
        return
    known, imphash = _hash_fields(text)
    if known is not None:
        node["hash"] = dict(known)
    if imphash is not None:
        _sub(node, "pe")["imphash"] = imphash


def split_account(value: str) -> tuple[str | None, str]:
    """``DOMAIN\\name`` → (``DOMAIN``, ``name``); a bare name has no domain."""
    domain, sep, name = value.partition("\\")
    if sep:
        return domain or None, name
    return None, value


def _set_user(event: Event, name: str | None, domain: str | None = None,
              sid: str | None = None, key: str = "user") -> None:
    if name is None and sid is None:
        return
    user = _sub(event, "user")
    node = user if key == "user" else _sub(user, key)
    if name is not None:
        node["name"] = name
    if domain is not None:
        node["domain"] = domain
    if sid is not None:
        node["id"] = sid


def _set_account(event: Event, value: str | None) -> None:
    if value is not None:
        domain, name = split_account(value)
        _set_user(event, name, domain)


def _subject(event: Event, data: Mapping[str, Any]) -> None:
    _set_user(event, _v(data, "SubjectUserName"), _v(data, "SubjectDomainName"),
              _v(data, "SubjectUserSid"))


def _target_user(event: Event, data: Mapping[str, Any], key: str = "user") -> None:
    _set_user(event, _v(data, "TargetUserName"), _v(data, "TargetDomainName"),
              _v(data, "TargetUserSid") or _v(data, "TargetSid"), key)


def _categorise(event: Event, category: tuple[str, ...], type_: tuple[str, ...],
                action: str, outcome: str | None = None) -> None:
    fields = event["event"]
    if category:
        fields["category"] = list(category)
    if type_:
        fields["type"] = list(type_)
    fields["action"] = action
    if outcome is not None:
        fields["outcome"] = outcome


def _file(event: Event, path: str | None) -> None:
    if path is None:
        return
    node = _sub(event, "file")
    node["path"] = path
    name = basename(path)
    node["name"] = name
    if len(name) < len(path):
        node["directory"] = path[: len(path) - len(name) - 1]
    dot = name.rfind(".")
    if 0 < dot < len(name) - 1:
        node["extension"] = name[dot + 1:].lower()


def _process(event: Event, executable: str | None, pid: int | None = None,
             entity_id: str | None = None) -> dict[str, Any]:
    node = _sub(event, "process")
    if executable is not None:
        node["executable"] = executable
        node["name"] = basename(executable)
    if pid is not None:
        node["pid"] = pid
    if entity_id is not None:
        node["entity_id"] = entity_id
    return node


def _source(event: Event, data: Mapping[str, Any], ip_field: str, port_field: str,
            host_field: str | None = None) -> None:
    if ip_field not in data and (host_field is None or host_field not in data):
        return
    ip = _ip(_v(data, ip_field))
    port = _port(_v(data, port_field))
    host = _v(data, host_field) if host_field else None
    if ip is None and port is None and host is None:
        return
    node = _sub(event, "source")
    if ip is not None:
        node["ip"] = ip
    if port is not None:
        node["port"] = port
    if host is not None:
        node["domain"] = host


# --- Sysmon (Windows and Linux) -----------------------------------------------------

_SYSMON: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "1": (("process",), ("start",), "Process creation"),
    "2": (("file",), ("change",), "A process changed a file creation time"),
    "3": (("network",), ("start", "connection", "protocol"), "Network connection"),
    "4": (("process",), ("change",), "Sysmon service state changed"),
    "5": (("process",), ("end",), "Process terminated"),
    "6": (("driver",), ("start",), "Driver loaded"),
    "7": (("process",), ("change",), "Image loaded"),
    "8": (("process",), ("change",), "CreateRemoteThread"),
    "9": (("process",), ("access",), "RawAccessRead"),
    "10": (("process",), ("access",), "ProcessAccess"),
    "11": (("file",), ("creation",), "FileCreate"),
    "12": (("configuration", "registry"), ("change",),
           "RegistryEvent (Object create and delete)"),
    "13": (("configuration", "registry"), ("change",), "RegistryEvent (Value Set)"),
    "14": (("configuration", "registry"), ("change",), "RegistryEvent (Key and Value Rename)"),
    "15": (("file",), ("access",), "FileCreateStreamHash"),
    "16": (("configuration",), ("change",), "ServiceConfigurationChange"),
    "17": (("file",), ("creation",), "PipeEvent (Pipe Created)"),
    "18": (("file",), ("access",), "PipeEvent (Pipe Connected)"),
    "19": (("process",), ("info",), "WmiEvent (WmiEventFilter activity detected)"),
    "20": (("process",), ("change",), "WmiEvent (WmiEventConsumer activity detected)"),
    "21": (("process",), ("access",), "WmiEvent (WmiEventConsumerToFilter activity detected)"),
    "22": (("network",), ("connection", "protocol", "info"), "DNSEvent (DNS query)"),
    "23": (("file",), ("deletion",), "FileDelete (File Delete archived)"),
    "24": ((), ("change",), "ClipboardChange (New content in the clipboard)"),
    "25": (("process",), ("change",), "ProcessTampering (Process image change)"),
    "26": (("file",), ("deletion",), "FileDeleteDetected (File Delete logged)"),
    "27": (("file",), ("creation",), "FileBlockExecutable"),
    "28": (("file",), ("deletion",), "FileBlockShredding"),
    "29": (("file",), ("creation",), "FileExecutableDetected"),
    "255": (("process",), (), "Error"),
}

_REG_TYPES = (("DWORD", "SZ_DWORD"), ("QWORD", "SZ_QWORD"), ("Binary Data", "REG_BINARY"))

# DNS status codes Sysmon reports (Win32 DNS errors) by their RCODE name
_DNS_STATUS = {"0": "NOERROR", "9001": "FORMERR", "9002": "SERVFAIL", "9003": "NXDOMAIN",
               "9004": "NOTIMP", "9005": "REFUSED", "1460": "TIMEOUT",
               "9501": "NOERROR"}  # 9501: no records of the asked type
_DNS_TYPES = {"1": "A", "2": "NS", "5": "CNAME", "6": "SOA", "12": "PTR", "15": "MX",
              "16": "TXT", "28": "AAAA", "33": "SRV", "65": "HTTPS"}


def _sysmon(event: Event, data: dict[str, Any], code: str) -> None:
    known = _SYSMON.get(code)
    if known is not None:
        _categorise(event, *known)
        if code == "27" or code == "255":
            event["event"]["outcome"] = "failure"
    get = data.get
    rule = get("RuleName")
    if rule.__class__ is str and rule not in _EMPTY:
        event["rule"] = {"name": rule}

    # the acting process: the source process of cross-process events
    proc: dict[str, Any] = {}
    if code == "8" or code == "10":
        image, pid = _v(data, "SourceImage"), _int(_v(data, "SourceProcessId"))
        guid = _v(data, "SourceProcessGuid") or _v(data, "SourceProcessGUID")
        thread = _int(_v(data, "SourceThreadId"))
        if thread is not None:
            proc["thread"] = {"id": thread}
        account = _v(data, "SourceUser")
    else:
        image = get("Image")
        if image.__class__ is not str or image in _EMPTY:
            image = _v(data, "Destination")
        pid = _int(_v(data, "ProcessId"))
        guid = _v(data, "ProcessGuid")
        account = _v(data, "User")
    if image is not None:
        proc["executable"] = image
        proc["name"] = basename(image)
    if pid is not None:
        proc["pid"] = pid
    if guid is not None:
        proc["entity_id"] = guid
    if proc:
        event["process"] = proc
    if account is not None:
        _set_account(event, account)

    detail = _SYSMON_DETAILS.get(code)
    if detail is not None:
        detail(event, proc, data, code)


def _sysmon_file(event: Event, proc: dict[str, Any], data: Mapping[str, Any],
                 code: str) -> None:
    _file(event, _v(data, "TargetFilename"))
    hashes = _v(data, "Hashes") or _v(data, "Hash")
    if hashes is not None:
        _put_hashes(_sub(event, "file"), hashes)


def _sysmon_driver(event: Event, proc: dict[str, Any], data: Mapping[str, Any],
                   code: str) -> None:
    _file(event, _v(data, "ImageLoaded"))
    hashes = _v(data, "Hashes")
    if hashes is not None:
        _put_hashes(_sub(event, "file"), hashes)


def _sysmon_image_load(event: Event, proc: dict[str, Any], data: Mapping[str, Any],
                       code: str) -> None:
    path = _v(data, "ImageLoaded")
    if path is None:
        return
    dll: dict[str, Any] = {"path": path, "name": basename(path)}
    _put_hashes(dll, _v(data, "Hashes"))
    original = _v(data, "OriginalFileName")
    if original is not None:
        _sub(dll, "pe")["original_file_name"] = original
    event["dll"] = dll


def _sysmon_pipe(event: Event, proc: dict[str, Any], data: Mapping[str, Any],
                 code: str) -> None:
    pipe = _v(data, "PipeName")
    if pipe is not None:
        event["file"] = {"name": pipe}


def _sysmon_raw_read(event: Event, proc: dict[str, Any], data: Mapping[str, Any],
                     code: str) -> None:
    device = _v(data, "Device")
    if device is not None:
        event["file"] = {"path": device}


def _sysmon_process_hashes(event: Event, proc: dict[str, Any], data: Mapping[str, Any],
                           code: str) -> None:
    if code == "25":
        kind = _v(data, "Type")
        if kind is not None:
            event["message"] = kind
    hashes = _v(data, "Hashes")
    if hashes is not None:
        _put_hashes(_sub(event, "process"), hashes)


_PROCESS_CREATE = (("command_line", "CommandLine"), ("working_directory", "CurrentDirectory"))
_PROCESS_PE = (("original_file_name", "OriginalFileName"), ("description", "Description"),
               ("product", "Product"), ("company", "Company"), ("file_version", "FileVersion"))
_PARENT = (("executable", "ParentImage"), ("entity_id", "ParentProcessGuid"),
           ("command_line", "ParentCommandLine"))


def _copy(data: Mapping[str, Any], node: dict[str, Any],
          pairs: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """Copy the informative data values named in ``pairs`` (ECS key, data name)."""
    get = data.get
    for key, name in pairs:
        value = get(name)
        if value.__class__ is str and value not in _EMPTY:
            node[key] = value
    return node


def _sysmon_process_create(event: Event, proc: dict[str, Any], data: Mapping[str, Any],
                           code: str) -> None:
    _copy(data, proc, _PROCESS_CREATE)
    _put_hashes(proc, _v(data, "Hashes"))
    pe = _copy(data, {}, _PROCESS_PE)
    if pe:
        _sub(proc, "pe").update(pe)
    parent = _copy(data, {}, _PARENT)
    if "executable" in parent:
        parent["name"] = basename(parent["executable"])
    parent_pid = _int(_v(data, "ParentProcessId"))
    if parent_pid is not None:
        parent["pid"] = parent_pid
    if parent:
        proc["parent"] = parent
    logon_id = _v(data, "LogonId")
    if logon_id is not None:
        _sub(event["winlog"], "logon")["id"] = logon_id


def _sysmon_network(event: Event, proc: dict[str, Any], data: Mapping[str, Any],
                    code: str) -> None:
    _source(event, data, "SourceIp", "SourcePort", "SourceHostname")
    dest: dict[str, Any] = {}
    ip = _ip(_v(data, "DestinationIp"))
    if ip is not None:
        dest["ip"] = ip
    port = _port(_v(data, "DestinationPort"))
    if port is not None:
        dest["port"] = port
    host = _v(data, "DestinationHostname")
    if host is not None:
        dest["domain"] = host
    if dest:
        event["destination"] = dest
    network: dict[str, Any] = {}
    transport = _v(data, "Protocol")
    if transport is not None:
        network["transport"] = transport.lower()
    ipv6 = _v(data, "SourceIsIpv6")
    if ipv6 is not None:
        network["type"] = "ipv6" if ipv6 == "true" else "ipv4"
    initiated = _v(data, "Initiated")
    if initiated is not None:
        network["direction"] = "egress" if initiated == "true" else "ingress"
    if network:
        event["network"] = network


def _sysmon_registry(event: Event, proc: dict[str, Any], data: Mapping[str, Any],
                     code: str) -> None:
    target = _v(data, "TargetObject")
    kind = _v(data, "EventType")
    if kind is not None:
        if kind.startswith("Delete"):
            event["event"]["type"] = ["deletion"]
        elif kind == "CreateKey":
            event["event"]["type"] = ["creation"]
    if target is None:
        return
    registry: dict[str, Any] = {"path": target}
    hive, _, rest = target.partition("\\")
    if rest:
        registry["hive"] = hive
        names_value = code == "13" or kind in ("SetValue", "DeleteValue", "CreateValue")
        if names_value:
            key, _, value = rest.rpartition("\\")
            registry["key"] = key
            registry["value"] = value
        else:
            registry["key"] = rest
    details = _v(data, "Details")
    if code == "13" and details is not None:
        data_type = "SZ"
        for prefix, name in _REG_TYPES:
            if details.startswith(prefix):
                data_type = name
                break
        registry["data"] = {"strings": [details], "type": data_type}
    event["registry"] = registry


def _sysmon_dns(event: Event, proc: dict[str, Any], data: Mapping[str, Any],
                code: str) -> None:
    dns: dict[str, Any] = {"type": "query"}
    name = _v(data, "QueryName")
    if name is not None:
        dns["question"] = {"name": name}
    status = _v(data, "QueryStatus")
    if status is not None:
        dns["response_code"] = _DNS_STATUS.get(status, status)
    results = _v(data, "QueryResults")
    if results is not None:
        answers: list[dict[str, Any]] = []
        resolved: list[str] = []
        for item in results.split(";"):
            item = item.strip()
            if not item:
                continue
            if item.startswith("type:"):
                parts = item[5:].split(None, 1)
                if len(parts) == 2:
                    answers.append({"type": _DNS_TYPES.get(parts[0], parts[0]),
                                    "data": parts[1]})
                continue
            ip = _ip(item)
            if ip is not None:
                resolved.append(ip)
                answers.append({"type": "AAAA" if ":" in ip else "A", "data": ip})
        if answers:
            dns["answers"] = answers
        if resolved:
            dns["resolved_ip"] = resolved
    event["dns"] = dns


SysmonDetail = Callable[[Event, dict[str, Any], Mapping[str, Any], str], None]

_SYSMON_DETAILS: dict[str, SysmonDetail] = {
    "1": _sysmon_process_create,
    "2": _sysmon_file, "11": _sysmon_file, "15": _sysmon_file, "23": _sysmon_file,
    "26": _sysmon_file, "27": _sysmon_file, "28": _sysmon_file, "29": _sysmon_file,
    "3": _sysmon_network,
    "6": _sysmon_driver,
    "7": _sysmon_image_load,
    "9": _sysmon_raw_read,
    "12": _sysmon_registry, "13": _sysmon_registry, "14": _sysmon_registry,
    "17": _sysmon_pipe, "18": _sysmon_pipe,
    "22": _sysmon_dns,
    "24": _sysmon_process_hashes, "25": _sysmon_process_hashes,
}


# --- Security log -------------------------------------------------------------------

LOGON_TYPES = {
    "0": "System", "2": "Interactive", "3": "Network", "4": "Batch", "5": "Service",
    "7": "Unlock", "8": "NetworkCleartext", "9": "NewCredentials", "10": "RemoteInteractive",
    "11": "CachedInteractive", "12": "CachedRemoteInteractive", "13": "CachedUnlock",
}

_AUTH = ("authentication",)
_IAM = ("iam",)
_USER_CHANGE = ("user", "change")
_GROUP_CHANGE = ("group", "change")

_SECURITY: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "1100": (("process",), ("end",), "logging-service-shutdown"),
    "1102": (("iam",), ("admin", "change"), "audit-log-cleared"),
    "1104": (("iam",), ("admin",), "logging-full"),
    "4608": (("process",), ("start",), "windows-started-up"),
    "4616": (("configuration",), ("change",), "system-time-changed"),
    "4624": (_AUTH, ("start",), "logged-in"),
    "4625": (_AUTH, ("start",), "logon-failed"),
    "4627": (_AUTH, ("info",), "group-membership-information"),
    "4634": (_AUTH, ("end",), "logged-out"),
    "4647": (_AUTH, ("end",), "logged-out"),
    "4648": (_AUTH, ("start",), "logged-in-explicit"),
    "4656": (("file",), ("access",), "object-handle-requested"),
    "4657": (("configuration", "registry"), ("change",), "registry-value-modified"),
    "4661": (("iam",), ("access",), "object-handle-requested"),
    "4662": (("iam",), ("access",), "object-operation-performed"),
    "4663": (("file",), ("access",), "object-access-attempted"),
    "4672": (_IAM, ("admin",), "logged-in-special"),
    "4673": (_IAM, ("admin",), "privileged-service-called"),
    "4674": (_IAM, ("admin",), "privileged-operation"),
    "4688": (("process",), ("start",), "created-process"),
    "4689": (("process",), ("end",), "exited-process"),
    "4697": (("iam", "configuration"), ("admin", "change"), "service-installed"),
    "4698": (("iam", "configuration"), ("creation", "admin"), "scheduled-task-created"),
    "4699": (("iam", "configuration"), ("deletion", "admin"), "scheduled-task-deleted"),
    "4700": (("iam", "configuration"), ("change", "admin"), "scheduled-task-enabled"),
    "4701": (("iam", "configuration"), ("change", "admin"), "scheduled-task-disabled"),
    "4702": (("iam", "configuration"), ("change", "admin"), "scheduled-task-updated"),
    "4719": (("iam", "configuration"), ("admin", "change"), "changed-audit-config"),
    "4720": (_IAM, ("user", "creation"), "added-user-account"),
    "4722": (_IAM, _USER_CHANGE, "enabled-user-account"),
    "4723": (_IAM, _USER_CHANGE, "changed-password"),
    "4724": (_IAM, _USER_CHANGE, "reset-password"),
    "4725": (_IAM, _USER_CHANGE, "disabled-user-account"),
    "4726": (_IAM, ("user", "deletion"), "deleted-user-account"),
    "4727": (_IAM, ("group", "creation"), "added-group-account"),
    "4728": (_IAM, _GROUP_CHANGE, "added-member-to-group"),
    "4729": (_IAM, _GROUP_CHANGE, "removed-member-from-group"),
    "4730": (_IAM, ("group", "deletion"), "deleted-group-account"),
    "4731": (_IAM, ("group", "creation"), "added-group-account"),
    "4732": (_IAM, _GROUP_CHANGE, "added-member-to-group"),
    "4733": (_IAM, _GROUP_CHANGE, "removed-member-from-group"),
    "4734": (_IAM, ("group", "deletion"), "deleted-group-account"),
    "4735": (_IAM, _GROUP_CHANGE, "modified-group-account"),
    "4737": (_IAM, _GROUP_CHANGE, "modified-group-account"),
    "4738": (_IAM, _USER_CHANGE, "modified-user-account"),
    "4740": (_IAM, _USER_CHANGE, "locked-out-user-account"),
    "4741": (_IAM, ("creation", "admin"), "added-computer-account"),
    "4742": (_IAM, ("change", "admin"), "changed-computer-account"),
    "4743": (_IAM, ("deletion", "admin"), "deleted-computer-account"),
    "4754": (_IAM, ("group", "creation"), "added-group-account"),
    "4755": (_IAM, _GROUP_CHANGE, "modified-group-account"),
    "4756": (_IAM, _GROUP_CHANGE, "added-member-to-group"),
    "4757": (_IAM, _GROUP_CHANGE, "removed-member-from-group"),
    "4758": (_IAM, ("group", "deletion"), "deleted-group-account"),
    "4767": (_IAM, _USER_CHANGE, "unlocked-user-account"),
    "4768": (_AUTH, ("start",), "kerberos-authentication-ticket-requested"),
    "4769": (_AUTH, ("start",), "kerberos-service-ticket-requested"),
    "4770": (_AUTH, ("start",), "kerberos-service-ticket-renewed"),
    "4771": (_AUTH, ("start",), "kerberos-preauth-failed"),
    "4776": (_AUTH, ("start",), "credential-validated"),
    "4778": (_AUTH, ("start",), "session-reconnected"),
    "4779": (_AUTH, ("end",), "session-disconnected"),
    "4781": (_IAM, _USER_CHANGE, "renamed-user-account"),
    "4798": (_IAM, ("user", "info"), "group-membership-enumerated"),
    "4799": (_IAM, ("group", "info"), "user-member-enumerated"),
    "4964": (_AUTH, ("start",), "logged-in-special-group"),
    "5136": (("configuration",), ("change",), "directory-service-object-modified"),
    "5140": (("network", "file"), ("info", "access"), "network-share-object-accessed"),
    "5145": (("network", "file"), ("info", "access"), "network-share-object-access-checked"),
    "5156": (("network",), ("connection", "allowed"), "windows-firewall-connection-permitted"),
    "5157": (("network",), ("connection", "denied"), "windows-firewall-connection-blocked"),
}

# events whose actor is the logged-on (target) user rather than the subject
_TARGET_IS_USER = frozenset(("4624", "4625", "4634", "4647", "4768", "4769", "4770", "4771",
                             "4776", "4778", "4779", "4964"))
_USER_MANAGEMENT = frozenset(("4720", "4722", "4723", "4724", "4725", "4726", "4738", "4740",
                              "4767", "4781", "4798"))
_GROUP_MANAGEMENT = frozenset(("4727", "4728", "4729", "4730", "4731", "4732", "4733", "4734",
                               "4735", "4737", "4754", "4755", "4756", "4757", "4758", "4799"))
_KERBEROS = frozenset(("4768", "4769", "4770", "4771", "4776"))
_TRANSPORTS = {"1": "icmp", "6": "tcp", "17": "udp", "58": "ipv6-icmp"}


def _security(event: Event, data: dict[str, Any], code: str) -> None:
    known = _SECURITY.get(code)
    if known is not None:
        _categorise(event, *known)
    if code in _TARGET_IS_USER:
        _target_user(event, data)
        if "user" not in event and code in _KERBEROS:
            _set_user(event, _v(data, "TargetUserName"), _v(data, "TargetDomainName"))
    else:
        _subject(event, data)

    winlog = event["winlog"]
    logon_id = _v(data, "TargetLogonId") if code in _TARGET_IS_USER else None
    logon_id = logon_id or _v(data, "SubjectLogonId")
    logon_type = _v(data, "LogonType")
    if logon_id is not None or logon_type is not None:
        logon = _sub(winlog, "logon")
        if logon_id is not None:
            logon["id"] = logon_id
        if logon_type is not None:
            logon["type"] = LOGON_TYPES.get(logon_type, logon_type)

    _source(event, data, "IpAddress", "IpPort",
            "Workstation" if code == "4776" else "WorkstationName")

    if code == "4688":
        proc = _process(event, _v(data, "NewProcessName"), _int(_v(data, "NewProcessId")))
        command_line = _v(data, "CommandLine")
        if command_line is not None:
            proc["command_line"] = command_line
        parent: dict[str, Any] = {}
        parent_exe = _v(data, "ParentProcessName")
        if parent_exe is not None:
            parent["executable"] = parent_exe
            parent["name"] = basename(parent_exe)
        parent_pid = _int(_v(data, "ProcessId"))
        if parent_pid is not None:
            parent["pid"] = parent_pid
        if parent:
            proc["parent"] = parent
        effective = _v(data, "TargetUserName")
        if effective is not None:
            _set_user(event, effective, _v(data, "TargetDomainName"),
                      _v(data, "TargetUserSid"), "effective")
    elif code in ("5156", "5157"):
        _security_filtering(event, data)
    else:
        executable = _v(data, "ProcessName")
        pid = _int(_v(data, "ProcessId"))
        if executable is not None or pid is not None:
            proc = _process(event, executable, pid)
            if code == "4689":
                status = _int(_v(data, "Status"))
                if status is not None:
                    proc["exit_code"] = status

    if code == "4648":
        _set_user(event, _v(data, "TargetUserName"), _v(data, "TargetDomainName"),
                  None, "effective")
        server = _v(data, "TargetServerName")
        if server is not None:
            _sub(event, "destination")["domain"] = server
    elif code in _USER_MANAGEMENT:
        _target_user(event, data, "target")
    elif code in _GROUP_MANAGEMENT:
        group = {k: v for k, v in (("name", _v(data, "TargetUserName")),
                                   ("domain", _v(data, "TargetDomainName")),
                                   ("id", _v(data, "TargetSid"))) if v is not None}
        if group:
            event["group"] = group
        member = _v(data, "MemberName")
        member_sid = _v(data, "MemberSid")
        if member is not None or member_sid is not None:
            _set_user(event, _member_name(member) if member else None, None, member_sid,
                      "target")
    elif code in ("4697", "4698", "4699", "4700", "4701", "4702"):
        name = _v(data, "ServiceName") or _v(data, "TaskName")
        if name is not None:
            service: dict[str, Any] = {"name": name}
            kind = _v(data, "ServiceType")
            if kind is not None:
                service["type"] = kind
            event["service"] = service
    elif code == "4769":
        name = _v(data, "ServiceName")
        if name is not None:
            event["service"] = {"name": name}
    elif code in ("4656", "4663", "4658", "4660"):
        obj = _v(data, "ObjectName")
        if obj is not None and _v(data, "ObjectType") == "File":
            _file(event, obj)
    elif code in ("5140", "5145"):
        share = _v(data, "ShareName")
        target = _v(data, "RelativeTargetName")
        if share is not None:
            _file(event, f"{share}\\{target}" if target else share)

    if code in _KERBEROS:
        result = _v(data, "Status")
        if result is not None:
            event["event"]["outcome"] = "success" if _int(result) == 0 else "failure"


def _member_name(member: str) -> str:
    """``CN=John Smith,OU=Staff,DC=example,DC=gov`` → ``John Smith``."""
    if member.upper().startswith("CN="):
        end = member.find(",", 3)
        while end > 0 and member[end - 1] == "\\":
            end = member.find(",", end + 1)
        return member[3:end if end > 0 else len(member)].replace("\\,", ",")
    return member


def _security_filtering(event: Event, data: Mapping[str, Any]) -> None:
    _source(event, data, "SourceAddress", "SourcePort")
    dest = {k: v for k, v in (("ip", _ip(_v(data, "DestAddress"))),
                              ("port", _port(_v(data, "DestPort")))) if v is not None}
    if dest:
        event["destination"] = dest
    network: dict[str, Any] = {}
    protocol = _v(data, "Protocol")
    if protocol is not None:
        network["iana_number"] = protocol
        if protocol in _TRANSPORTS:
            network["transport"] = _TRANSPORTS[protocol]
    direction = _v(data, "Direction")
    if direction in ("%%14592", "Inbound"):
        network["direction"] = "ingress"
    elif direction in ("%%14593", "Outbound"):
        network["direction"] = "egress"
    if network:
        event["network"] = network
    application = _v(data, "Application")
    pid = _int(_v(data, "ProcessID") or _v(data, "ProcessId"))
    if application is not None or pid is not None:
        _process(event, application, pid)


# --- Event log service, Service Control Manager, PowerShell -------------------------

def _eventlog(event: Event, data: dict[str, Any], code: str) -> None:
    if code in ("1102", "104"):
        _categorise(event, ("iam",), ("admin", "change"),
                    "audit-log-cleared" if code == "1102" else "log-cleared")
        _subject(event, data)
        if "user" not in event:
            _set_user(event, _v(data, "SubjectUserName"), _v(data, "SubjectDomainName"))
    elif code == "1100":
        _categorise(event, ("process",), ("end",), "logging-service-shutdown")


def _service_control_manager(event: Event, data: dict[str, Any], code: str) -> None:
    if code == "7045":
        _categorise(event, ("iam", "configuration"), ("admin", "change"), "service-installed")
        service: dict[str, Any] = {}
        name = _v(data, "ServiceName")
        if name is not None:
            service["name"] = name
        kind = _v(data, "ServiceType")
        if kind is not None:
            service["type"] = kind
        if service:
            event["service"] = service
        account = _v(data, "AccountName")
        if account is not None:
            _set_account(event, account)
    elif code in ("7036", "7040"):
        _categorise(event, ("configuration",), ("change",),
                    "service-state-changed" if code == "7036" else "service-start-type-changed")
        name = _v(data, "param1")
        if name is not None:
            event["service"] = {"name": name}
    elif code in ("7030", "7034", "7031", "7023", "7024"):
        _categorise(event, ("process",), ("end",) if code != "7030" else ("info",),
                    "service-failed")
        name = _v(data, "param1")
        if name is not None:
            event["service"] = {"name": name}


_POWERSHELL_OPERATIONAL = {
    "4103": "Executing Pipeline",
    "4104": "Execute a Remote Command",
    "4105": "Starting Command",
    "4106": "Stopping Command",
}


def _powershell_operational(event: Event, data: dict[str, Any], code: str) -> None:
    action = _POWERSHELL_OPERATIONAL.get(code)
    if action is None:
        return
    _categorise(event, ("process",), ("info",), action)
    path = _v(data, "Path")
    if path is not None:
        _file(event, path)
    context = _v(data, "ContextInfo")
    if context is not None:
        _powershell_context(event, _key_values(context))


_POWERSHELL_CLASSIC = {
    "400": (("process",), ("start",), "Engine Lifecycle"),
    "403": (("process",), ("end",), "Engine Lifecycle"),
    "600": (("process",), ("info",), "Provider Lifecycle"),
    "800": (("process",), ("info",), "Pipeline Execution Details"),
}


def _powershell_classic(event: Event, data: dict[str, Any], code: str) -> None:
    known = _POWERSHELL_CLASSIC.get(code)
    if known is None:
        return
    _categorise(event, *known)
    # the last parameter holds "Key=Value" lines (HostApplication, UserId...)
    details = data.get("param3") if code != "800" else data.get("param2")
    if isinstance(details, str):
        _powershell_context(event, _key_values(details))


def _key_values(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep:
            key, sep, value = line.strip().partition(":")
        if sep and key and " " not in key.strip():
            out.setdefault(key.strip(), value.strip())
    return out


def _powershell_context(event: Event, values: Mapping[str, str]) -> None:
    host_application = values.get("HostApplication") or values.get("Host Application")
    if host_application:
        proc = _sub(event, "process")
        proc["command_line"] = host_application
    user = values.get("UserId") or values.get("User")
    if user and "user" not in event:
        _set_account(event, user)


# --- dispatch -----------------------------------------------------------------------

_PROVIDERS: dict[str, Handler] = {
    "Microsoft-Windows-Sysmon": _sysmon,
    "Linux-Sysmon": _sysmon,
    "Microsoft-Windows-Security-Auditing": _security,
    "Microsoft-Windows-Eventlog": _eventlog,
    "Eventlog": _eventlog,
    "Service Control Manager": _service_control_manager,
    "Microsoft-Windows-PowerShell": _powershell_operational,
    "PowerShell": _powershell_classic,
}

def enrich(event: Event) -> Event:
    """Add the ECS fields of ``event``'s provider and event id; returns ``event``.

    Reads ``winlog.provider_name``, ``winlog.event_id``, ``winlog.keywords`` and
    ``winlog.event_data``; unknown providers and event ids keep only the winlog
    fields (plus the outcome the audit keywords give).
    """
    winlog = event.get("winlog")
    if not isinstance(winlog, dict):
        return event
    keywords = winlog.get("keywords")
    if keywords:
        if "Audit Success" in keywords:
            event["event"]["outcome"] = "success"
        elif "Audit Failure" in keywords:
            event["event"]["outcome"] = "failure"
    handler = _PROVIDERS.get(winlog.get("provider_name") or "")
    if handler is not None:
        data = winlog.get("event_data")
        handler(event, data if isinstance(data, dict) else {}, str(winlog.get("event_id", "")))
    return event
