"""Linux audit logs (raw ``audit.log``) → ECS ``auditd.log`` events.

Two layers:

* :func:`parse_record` reads one record line (``type=SYSCALL msg=audit(…): …``)
  into an :class:`AuditRecord` whose ``data`` is normalised the way
  ``ausearch -i`` and Elastic's go-libaudit do it: hex-encoded values decoded,
  ``res``/``success`` as ``result``, unset ids (4294967295) as ``unset``, SELinux
  contexts split, ``arch``/``syscall`` numbers named, failed ``exit`` codes as
  errno names, socket addresses decoded, rule keys moved to ``keys``. The
  go-libaudit ``.golden`` files are the oracle for this layer.
* :class:`AuditEventParser` joins the records of one event (same timestamp and
  serial) into a single ECS event: ``process.*``, ``user.*``, ``file.*``,
  ``source.*``/``destination.*``, ``event.category/type/outcome`` and
  ``auditd.*``. An event is complete at its ``EOE`` record, when
  :data:`MAX_PENDING_RECORDS` records of other events followed it, or at the end
  of the input. Its id comes from the offset of its first record, so re-reading
  from a checkpoint that lies inside a half-joined event repeats nothing.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import re
import signal
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from collectors.auditd_syscalls import ARCHES
from collectors.lines import RawLine
from govsoc.errors import ParseError
from govsoc.events import Event, event_id, format_timestamp

DATASET = "auditd.log"
MODULE = "auditd"

#: Records of other events after which a pending event is taken as complete.
MAX_PENDING_RECORDS = 64

_HEADER = re.compile(
    r"(?:node=(?P<node>\S+) )?type=(?P<type>[A-Z0-9_]+|UNKNOWN\[\d+\]) "
    r"msg=audit\((?P<sec>\d{1,12})\.(?P<ms>\d{1,3}):(?P<seq>\d{1,20})\):? ?")
_KV = re.compile(r"""([A-Za-z0-9_\-]+)=("[^"]*"?|'[^']*'?|\S*)""")
_HEX = re.compile(r"^(?:[0-9A-Fa-f]{2})+$")
_AVC = re.compile(r"avc:\s+(?P<result>\w+)\s+\{\s*(?P<perms>[^}]*?)\s*\}\s+for\s+")
_OLD_NEW = re.compile(r"\b(old|new) (auid|ses)=")

#: values that may be hex-encoded by the kernel (untrusted strings)
_HEX_FIELDS = frozenset({
    "acct", "cmd", "comm", "cwd", "data", "dir", "exe", "file", "grp", "name", "new-group",
    "new-user", "old-group", "old-user", "path", "proctitle", "vm", "watch", "ocomm",
    "new_group", "new_user", "old_group", "old_user",
})
_UNSET = "4294967295"
_UNSET_FIELDS = frozenset({"auid", "ses", "old-auid", "loginuid", "sauid"})
_RESULT = {"success": "success", "yes": "success", "1": "success", "failed": "fail",
           "fail": "fail", "no": "fail", "0": "fail"}
_CONTEXT_PARTS = ("user", "role", "domain", "level", "category")


@dataclass
class AuditRecord:
    """One record (line) of an audit event."""

    type: str
    timestamp: datetime
    sequence: int
    data: dict[str, str]
    raw: str
    keys: list[str] = field(default_factory=list)
    node: str | None = None


def _decode_hex(value: str, nul_as_space: bool = False) -> str:
    raw = bytes.fromhex(value)
    if nul_as_space:
        raw = raw.rstrip(b"\x00").replace(b"\x00", b" ")
    return raw.decode("utf-8", "backslashreplace")


def _sockaddr(value: str, data: dict[str, str]) -> None:
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        data["saddr"] = value
        return
    if len(raw) < 2:
        data["saddr"] = value
        return
    family = int.from_bytes(raw[:2], "little")
    if family == 2 and len(raw) >= 8:
        data["family"] = "ipv4"
        data["port"] = str(int.from_bytes(raw[2:4], "big"))
        data["addr"] = str(ipaddress.IPv4Address(raw[4:8]))
    elif family == 10 and len(raw) >= 24:
        data["family"] = "ipv6"
        data["port"] = str(int.from_bytes(raw[2:4], "big"))
        data["addr"] = str(ipaddress.IPv6Address(raw[8:24]))
    elif family == 1:
        data["family"] = "unix"
        path = raw[2:].split(b"\x00", 1)[0]
        if path:
            data["path"] = path.decode("utf-8", "backslashreplace")
        else:
            data["saddr"] = value
    elif family == 16:
        data["family"] = "netlink"
        data["saddr"] = value
    else:
        data["family"] = str(family)
        data["saddr"] = value


def _add(data: dict[str, str], keys: list[str], record_type: str, key: str, value: str) -> None:
    if value.startswith('"'):
        value = value[1:-1] if value.endswith('"') and len(value) > 1 else value[1:]
        quoted = True
    else:
        quoted = False
        # old kernels separate fields with ", " and close the message with ")"
        value = value.rstrip(",")
        if key in ("res", "success"):
            value = value.rstrip(")")
        if value.endswith('"'):
            value = value[:-1]
    if value in ("?", "(null)", ""):
        return
    if key == "key":
        if not quoted and _HEX.match(value):
            keys.extend(k for k in _decode_hex(value).split("\x01") if k)
        elif value != "(null)":
            keys.append(value)
        return
    if key in ("res", "success", "result"):
        data["result"] = _RESULT.get(value.lower(), value)
        return
    if key in ("subj", "obj") and ":" in value:
        for part, item in zip(_CONTEXT_PARTS, value.split(":", 4), strict=False):
            data[f"{key}_{part}"] = item
        return
    if key == "saddr" and record_type == "SOCKADDR":
        _sockaddr(value, data)
        return
    if not quoted and _HEX.match(value) and (
            key in _HEX_FIELDS or (record_type == "EXECVE" and key[:1] == "a"
                                   and key[1:].isdigit())):
        value = _decode_hex(value, nul_as_space=key == "proctitle")
    elif key in _UNSET_FIELDS and value == _UNSET:
        value = "unset"
    elif key == "sig" and value.isdigit():
        with contextlib.suppress(ValueError):
            value = signal.Signals(int(value)).name
    data[key] = value


def parse_record(text: str, source: str = "", position: str | int = "") -> AuditRecord:
    """One raw audit record line; raises :class:`ParseError` naming the problem."""
    m = _HEADER.match(text)
    if m is None:
        raise ParseError("not an audit record (expected 'type=... msg=audit(sec.ms:serial):')",
                         source, position)
    record_type = m.group("type")
    stamp = datetime.fromtimestamp(int(m.group("sec")) + int(m.group("ms").ljust(3, "0"))
                                   / 1000, UTC)
    body = text[m.end():]
    # ENRICHED format: the interpreted copies after the group separator are not needed
    body = body.split("\x1d", 1)[0]
    data: dict[str, str] = {}
    keys: list[str] = []
    avc = _AVC.match(body)
    if avc:
        data["seresult"] = avc.group("result")
        data["seperms"] = ",".join(avc.group("perms").split())
        body = body[avc.end():]
    if "old auid=" in body or "new auid=" in body or "old ses=" in body:
        body = _OLD_NEW.sub(r"\1_\2=", body)
    for key, value in _KV.findall(body):
        if key == "msg" and value.startswith("'"):
            inner = value[1:-1] if value.endswith("'") else value[1:]
            for k2, v2 in _KV.findall(inner):
                _add(data, keys, record_type, k2, v2)
        else:
            _add(data, keys, record_type, key, value)
    arch = data.get("arch")
    table: dict[int, str] | None = None
    if arch is not None and arch.lower() in ARCHES:
        data["arch"], table = ARCHES[arch.lower()]
    syscall = data.get("syscall")
    if table and syscall is not None and syscall.isdigit() and int(syscall) in table:
        data["syscall"] = table[int(syscall)]
    exit_code = data.get("exit")
    if data.get("result") == "fail" and exit_code and exit_code.startswith("-") \
            and exit_code[1:].isdigit():
        data["exit"] = errno.errorcode.get(int(exit_code[1:]), exit_code)
    return AuditRecord(record_type, stamp, int(m.group("seq")), data, text, keys,
                       m.group("node"))


# -- joining records into events ---------------------------------------------------

#: record type → (event.category, event.type)
_CATEGORIES: dict[str, tuple[list[str], list[str]]] = {
    "USER_LOGIN": (["authentication", "session"], ["start"]),
    "USER_LOGOUT": (["session"], ["end"]),
    "USER_AUTH": (["authentication"], ["info"]),
    "USER_ACCT": (["authentication"], ["info"]),
    "USER_ERR": (["authentication"], ["info"]),
    "CRED_ACQ": (["authentication"], ["info"]),
    "CRED_DISP": (["authentication"], ["info"]),
    "CRED_REFR": (["authentication"], ["info"]),
    "USER_START": (["session"], ["start"]),
    "USER_END": (["session"], ["end"]),
    "LOGIN": (["authentication"], ["start"]),
    "ADD_USER": (["iam"], ["user", "creation"]),
    "DEL_USER": (["iam"], ["user", "deletion"]),
    "ADD_GROUP": (["iam"], ["group", "creation"]),
    "DEL_GROUP": (["iam"], ["group", "deletion"]),
    "USER_MGMT": (["iam"], ["user", "change"]),
    "USER_CHAUTHTOK": (["iam"], ["user", "change"]),
    "CHUSER_ID": (["iam"], ["user", "change"]),
    "GRP_MGMT": (["iam"], ["group", "change"]),
    "GRP_CHAUTHTOK": (["iam"], ["group", "change"]),
    "ROLE_ASSIGN": (["iam"], ["user", "change"]),
    "USER_CMD": (["process"], ["start"]),
    "EXECVE": (["process"], ["start"]),
    "CONFIG_CHANGE": (["configuration"], ["change"]),
    "MAC_POLICY_LOAD": (["configuration"], ["change"]),
    "MAC_STATUS": (["configuration"], ["change"]),
    "SERVICE_START": (["process"], ["start"]),
    "SERVICE_STOP": (["process"], ["end"]),
    "DAEMON_START": (["process"], ["start"]),
    "DAEMON_END": (["process"], ["end"]),
    "AVC": (["intrusion_detection"], ["denied"]),
    "SELINUX_ERR": (["intrusion_detection"], ["denied"]),
    "ANOM_ABEND": (["process"], ["end"]),
    "ANOM_PROMISCUOUS": (["network"], ["change"]),
    "ANOM_LOGIN_FAILURES": (["authentication"], ["info"]),
    "ANOM_EXEC": (["process"], ["start"]),
    "KERNEL_OTHER": (["driver"], ["info"]),
}
_SYSCALL_CATEGORIES: dict[str, tuple[list[str], list[str]]] = {
    "execve": (["process"], ["start"]), "execveat": (["process"], ["start"]),
    "connect": (["network"], ["connection", "start"]),
    "accept": (["network"], ["connection", "start"]),
    "accept4": (["network"], ["connection", "start"]),
    "bind": (["network"], ["start"]),
    "open": (["file"], ["access"]), "openat": (["file"], ["access"]),
    "creat": (["file"], ["creation"]), "unlink": (["file"], ["deletion"]),
    "unlinkat": (["file"], ["deletion"]), "rename": (["file"], ["change"]),
    "renameat": (["file"], ["change"]), "renameat2": (["file"], ["change"]),
    "chmod": (["file"], ["change"]), "fchmod": (["file"], ["change"]),
    "fchmodat": (["file"], ["change"]), "chown": (["file"], ["change"]),
    "fchown": (["file"], ["change"]), "fchownat": (["file"], ["change"]),
    "truncate": (["file"], ["change"]), "ftruncate": (["file"], ["change"]),
    "init_module": (["driver"], ["change"]), "finit_module": (["driver"], ["change"]),
    "delete_module": (["driver"], ["change"]), "kill": (["process"], ["end"]),
    "tkill": (["process"], ["end"]), "tgkill": (["process"], ["end"]),
    "ptrace": (["process"], ["access"]), "setuid": (["iam"], ["change"]),
    "setgid": (["iam"], ["change"]), "setreuid": (["iam"], ["change"]),
    "setresuid": (["iam"], ["change"]), "mount": (["file"], ["change"]),
}


@dataclass
class _Pending:
    offset: int
    line_number: int
    records: list[AuditRecord]
    last_index: int


class AuditEventParser:
    """Line parser joining audit records into events (see the module docs).

    Called once per line by :func:`collectors.textlog.line_batches`; returns the
    events completed by that line (often none, as most lines belong to an event
    still being read) and :meth:`finish` returns the rest at the end of the input.
    """

    dataset = DATASET

    def __init__(self, source: str = "") -> None:
        self.source = source
        self._pending: dict[tuple[int, int], _Pending] = {}
        self._index = 0

    def pending_offset(self) -> int | None:
        """Offset of the first line of the oldest event still being joined."""
        if not self._pending:
            return None
        return min(p.offset for p in self._pending.values())

    def __call__(self, text: str, line: RawLine) -> list[Event] | None:
        if not text.strip():
            return None
        record = parse_record(text, position=f"line {line.number}")
        self._index += 1
        key = (int(record.timestamp.timestamp() * 1000), record.sequence)
        pending = self._pending.get(key)
        if pending is None:
            pending = _Pending(line.offset, line.number, [], self._index)
            self._pending[key] = pending
        pending.records.append(record)
        pending.last_index = self._index
        done: list[Event] = []
        if record.type == "EOE":
            del self._pending[key]
            done.append(self._event(pending))
        if len(self._pending) > 1:
            stale = [k for k, p in self._pending.items()
                     if self._index - p.last_index >= MAX_PENDING_RECORDS]
            for k in stale:
                done.append(self._event(self._pending.pop(k)))
        return done or None

    def finish(self) -> list[Event]:
        """Every event still being joined (end of a finite input or an idle file)."""
        events = [self._event(p) for p in sorted(self._pending.values(),
                                                 key=lambda p: p.offset)]
        self._pending.clear()
        return events

    def _event(self, pending: _Pending) -> Event:
        return audit_event([r for r in pending.records if r.type != "EOE"]
                           or pending.records, self.source, pending.offset)


def _first(records: list[AuditRecord], key: str) -> str | None:
    for record in records:
        value = record.data.get(key)
        if value is not None:
            return value
    return None


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def audit_event(records: list[AuditRecord], source: str, offset: int) -> Event:
    """One ECS event from the records of one audit event."""
    primary = records[0]
    for record in records:
        if record.type in _CATEGORIES or record.type == "SYSCALL":
            primary = record
            break
    by_type: dict[str, list[AuditRecord]] = {}
    for record in records:
        by_type.setdefault(record.type, []).append(record)
    merged: dict[str, str] = {}
    for record in records:
        if record.type in ("PATH", "EXECVE", "PROCTITLE", "SOCKADDR"):
            continue
        for k, v in record.data.items():
            merged.setdefault(k, v)
    ev: dict[str, Any] = {"kind": "event", "dataset": DATASET, "module": MODULE,
                          "id": event_id(source, offset),
                          "original": "\n".join(r.raw for r in records),
                          "sequence": primary.sequence}
    event: Event = {"@timestamp": format_timestamp(primary.timestamp), "event": ev,
                    "log": {"offset": offset}}
    syscall = primary.data.get("syscall") if primary.type == "SYSCALL" else None
    ev["action"] = syscall if syscall else primary.type.lower()
    categories = _CATEGORIES.get(primary.type)
    if categories is None and syscall:
        categories = _SYSCALL_CATEGORIES.get(syscall)
    if categories is None and "EXECVE" in by_type:
        categories = _CATEGORIES["EXECVE"]
    if categories is not None:
        ev["category"], ev["type"] = list(categories[0]), list(categories[1])
    result = primary.data.get("result") or merged.get("result")
    if result in ("success", "fail"):
        ev["outcome"] = "success" if result == "success" else "failure"
    auditd: dict[str, Any] = {"sequence": primary.sequence,
                              "message_type": primary.type.lower(), "data": merged}
    if result:
        auditd["result"] = result
    session = merged.get("ses")
    if session is not None:
        auditd["session"] = session
    if merged.get("auid") and merged["auid"] != "unset":
        auditd["summary"] = {"actor": {"primary": merged["auid"]}}
    paths = [r.data for r in by_type.get("PATH", [])]
    if paths:
        auditd["paths"] = paths
    event["auditd"] = auditd
    keys = [k for r in records for k in r.keys]
    if keys:
        event["tags"] = list(dict.fromkeys(keys))
    if primary.node:
        event["host"] = {"name": primary.node}
    # process
    process: dict[str, Any] = {}
    if (pid := _int(merged.get("pid"))) is not None:
        process["pid"] = pid
    if (ppid := _int(merged.get("ppid"))) is not None:
        process["parent"] = {"pid": ppid}
    if merged.get("exe"):
        process["executable"] = merged["exe"]
    if merged.get("comm"):
        process["name"] = merged["comm"]
    elif merged.get("exe"):
        process["name"] = merged["exe"].rsplit("/", 1)[-1]
    if merged.get("cwd"):
        process["working_directory"] = merged["cwd"]
    execve = by_type.get("EXECVE")
    if execve:
        data = execve[0].data
        args = [data[f"a{i}"] for i in range(len(data)) if f"a{i}" in data]
        if args:
            process["args"] = args
            process["command_line"] = " ".join(args)
    title = by_type.get("PROCTITLE")
    if title and title[0].data.get("proctitle"):
        process["title"] = title[0].data["proctitle"]
        process.setdefault("command_line", title[0].data["proctitle"])
    if primary.type == "USER_CMD" and merged.get("cmd"):
        process["command_line"] = merged["cmd"]
    if process:
        event["process"] = process
    # user
    user: dict[str, Any] = {}
    if merged.get("uid") and merged["uid"] != "unset":
        user["id"] = merged["uid"]
    if merged.get("euid") and merged.get("euid") != merged.get("uid"):
        user["effective"] = {"id": merged["euid"]}
    acct = merged.get("acct")
    if acct:
        user["name"] = acct
    if primary.type in ("ADD_USER", "DEL_USER", "USER_MGMT") and merged.get("id"):
        user["target"] = {"id": merged["id"]}
    if user:
        event["user"] = user
    if merged.get("gid"):
        event["group"] = {"id": merged["gid"]}
    # network
    addr = merged.get("addr")
    if addr:
        source_: dict[str, Any] = {"address": addr}
        try:
            ipaddress.ip_address(addr)
            source_["ip"] = addr
        except ValueError:
            pass
        event["source"] = source_
    sockaddr = by_type.get("SOCKADDR")
    if sockaddr and sockaddr[0].data.get("addr"):
        sd = sockaddr[0].data
        dest: dict[str, Any] = {"address": sd["addr"], "ip": sd["addr"]}
        if sd.get("port", "").isdigit():
            dest["port"] = int(sd["port"])
        event["destination"] = dest
    # file
    for p in paths:
        if p.get("nametype") == "PARENT":
            continue
        if p.get("name"):
            name = p["name"]
            cwd = merged.get("cwd")
            full = name if name.startswith("/") or not cwd else f"{cwd.rstrip('/')}/{name}"
            file: dict[str, Any] = {"path": full, "name": full.rsplit("/", 1)[-1]}
            if p.get("mode"):
                file["mode"] = p["mode"]
            if p.get("ouid"):
                file["uid"] = p["ouid"]
            event["file"] = file
            break
    return event
