"""Linux authentication logs (auth.log, secure) → ECS ``system.auth`` events.

The lines are syslog lines (see :mod:`collectors.syslog_parse`); this module reads
what sshd, PAM, sudo, su and the shadow tools (useradd, groupadd, usermod,
userdel, passwd) say in them. :func:`interpret_auth` is also called by the syslog
receiver, so an sshd message that arrives over the network becomes the same event
as the same line read from ``/var/log/auth.log`` — brute force is detected either
way.

``event.action`` vocabulary (detection rules rely on it):

=========================  ==============================================  =======
action                     message                                         outcome
=========================  ==============================================  =======
ssh_login                  sshd ``Accepted <method> for U from IP``        success
ssh_login_failed           sshd ``Failed <method> for [invalid user] U``   failure
ssh_invalid_user           sshd ``Invalid user U from IP``                 failure
ssh_max_auth_exceeded      ``Too many authentication failures`` / maximum  failure
ssh_reverse_mapping_failed ``POSSIBLE BREAK-IN ATTEMPT!``                  failure
ssh_no_identification      ``Did not receive identification string``       failure
ssh_disconnect             ``Received disconnect`` / ``Disconnected from``
ssh_connection_closed      ``Connection closed by``
authentication_failure     PAM ``authentication failure; ... rhost=``      failure
authentication_failures    PAM ``N more authentication failures``          failure
user_unknown               PAM ``check pass; user unknown``                failure
session_opened             PAM ``session opened for user U``               success
session_closed             PAM ``session closed for user U``               success
sudo                       sudo ``U : TTY=... ; USER=R ; COMMAND=C``       success
sudo_failed                sudo ``U : N incorrect password attempts`` etc.  failure
su / su_failed             su ``Successful su`` / ``FAILED su``            both
useradd / userdel          shadow tools ``new user:``, ``delete user``     success
groupadd / groupdel        ``new group:``, ``group added``, ``removed group``  success
usermod                    ``add 'U' to group 'G'``, ``change user``      success
password_changed           ``password changed for U``                      success
root_login                 ``ROOT LOGIN ON tty``                           success
=========================  ==============================================  =======

A line of an auth file that matches none of these is still a ``system.auth``
event (with the syslog fields and no action), never dropped.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from collectors.lines import RawLine
from collectors.syslog_parse import FACILITIES, SEVERITIES, SyslogMessage, SyslogParser
from govsoc.events import Event, format_timestamp

DATASET = "system.auth"
MODULE = "system"

#: programs whose messages are authentication events wherever they come from
AUTH_PROGRAMS = frozenset({
    "sshd", "sudo", "su", "useradd", "userdel", "usermod", "groupadd", "groupdel",
    "groupmod", "gpasswd", "passwd", "chpasswd", "chage", "login", "systemd-logind",
    "polkitd", "pkexec", "newusers", "unix_chkpwd", "dropbear",
})

_AUTH = ["authentication"]
_IAM = ["iam"]
_SESSION = ["session"]

#: action → (category, type, outcome)
ACTIONS: dict[str, tuple[list[str], list[str], str | None]] = {
    "ssh_login": (["authentication", "session"], ["start"], "success"),
    "ssh_login_failed": (_AUTH, ["start"], "failure"),
    "ssh_invalid_user": (_AUTH, ["start"], "failure"),
    "ssh_max_auth_exceeded": (_AUTH, ["denied"], "failure"),
    "ssh_reverse_mapping_failed": (["network"], ["connection"], "failure"),
    "ssh_no_identification": (["network"], ["connection"], "failure"),
    "ssh_disconnect": (["network", "session"], ["end"], None),
    "ssh_connection_closed": (["network"], ["end"], None),
    "authentication_failure": (_AUTH, ["info"], "failure"),
    "authentication_failures": (_AUTH, ["info"], "failure"),
    "user_unknown": (_AUTH, ["info"], "failure"),
    "session_opened": (_SESSION, ["start"], "success"),
    "session_closed": (_SESSION, ["end"], "success"),
    "sudo": (["process"], ["start"], "success"),
    "sudo_failed": (["process", "authentication"], ["denied"], "failure"),
    "su": (["authentication", "session"], ["start"], "success"),
    "su_failed": (_AUTH, ["start"], "failure"),
    "useradd": (_IAM, ["user", "creation"], "success"),
    "userdel": (_IAM, ["user", "deletion"], "success"),
    "groupadd": (_IAM, ["group", "creation"], "success"),
    "groupdel": (_IAM, ["group", "deletion"], "success"),
    "usermod": (_IAM, ["user", "change"], "success"),
    "password_changed": (_IAM, ["user", "change"], "success"),
    "root_login": (["authentication", "session"], ["start"], "success"),
}

_IP = r"(?P<ip>[0-9A-Fa-f:.]+|[A-Za-z0-9.\-]+)"
_PORT = r"(?: port (?P<port>\d+))?"

_Matcher = tuple[re.Pattern[str], str]

_SSHD: list[_Matcher] = [
    (re.compile(r"Accepted (?P<method>\S+) for (?P<user>.+?) from " + _IP + _PORT), "ssh_login"),
    (re.compile(r"Failed (?P<method>\S+) for (?P<invalid>invalid user )?(?P<user>.*?) from "
                + _IP + _PORT), "ssh_login_failed"),
    (re.compile(r"Invalid user (?P<user>.*?) from " + _IP + _PORT), "ssh_invalid_user"),
    (re.compile(r"(?:error: )?maximum authentication attempts exceeded for "
                r"(?:invalid user )?(?P<user>.*?) from " + _IP + _PORT),
     "ssh_max_auth_exceeded"),
    (re.compile(r"Disconnecting(?: (?:invalid|authenticating) user (?P<user2>\S+) "
                r"(?P<ip2>\S+) port \d+)?: Too many authentication failures(?: for "
                r"(?:invalid user )?(?P<user>\S+))?"), "ssh_max_auth_exceeded"),
    (re.compile(r"reverse mapping checking getaddrinfo for (?P<domain>\S+) \[" + _IP
                + r"\] failed"), "ssh_reverse_mapping_failed"),
    (re.compile(r"Did not receive identification string from " + _IP + _PORT),
     "ssh_no_identification"),
    (re.compile(r"(?:error: )?Received disconnect from " + _IP + _PORT + r":"),
     "ssh_disconnect"),
    (re.compile(r"Disconnected from (?:(?:invalid|authenticating) user (?P<user>\S+) |user "
                r"(?P<user2>\S+) )?" + _IP + _PORT), "ssh_disconnect"),
    (re.compile(r"Connection closed by (?:(?:invalid|authenticating) user (?P<user>\S+) )?"
                + _IP + _PORT), "ssh_connection_closed"),
]

_PAM: list[_Matcher] = [
    (re.compile(r"(?:pam_unix\((?P<service>[^:)]+):auth\): )?authentication failure; "
                r"logname=(?P<logname>\S*) uid=(?P<uid>\d*) euid=\d* tty=(?P<tty>\S*) "
                r"ruser=(?P<ruser>\S*) rhost=(?P<ip>\S*)(?:\s+user=(?P<user>\S+))?"),
     "authentication_failure"),
    (re.compile(r"PAM (?P<count>\d+) more authentication failures?; logname=\S* uid=\d* "
                r"euid=\d* tty=\S* ruser=\S* rhost=(?P<ip>\S*)(?:\s+user=(?P<user>\S+))?"),
     "authentication_failures"),
    (re.compile(r"(?:pam_unix\((?P<service>[^:)]+):auth\): )?check pass; user unknown"),
     "user_unknown"),
    (re.compile(r"(?:pam_unix\((?P<service>[^:)]+):session\): )?session opened for user "
                r"(?P<user>[^\s(]+)(?:\(uid=\d+\))?(?: by (?P<by>[^\s(]*)\(uid=(?P<uid>\d+)\))?"),
     "session_opened"),
    (re.compile(r"(?:pam_unix\((?P<service>[^:)]+):session\): )?session closed for user "
                r"(?P<user>[^\s(]+)"), "session_closed"),
    (re.compile(r"(?:pam_unix\((?P<service>[^:)]+):chauthtok\): )?password changed for "
                r"(?P<user>\S+)"), "password_changed"),
]

_SUDO = re.compile(
    r"\s*(?P<user>\S+) : (?:(?P<problem>[^;]*?) ; )?TTY=(?P<tty>\S*) ; PWD=(?P<pwd>.*?) ; "
    r"USER=(?P<target>\S+) ;(?: GROUP=(?P<group>\S+) ;)?(?: TSID=\S+ ;)?(?: ENV=.*? ;)?"
    r" COMMAND=(?P<command>.*)$")
_SUDO_PROBLEM = re.compile(r"\s*(?P<user>\S+) : (?P<problem>.*?)(?: ;|$)")

_SU: list[_Matcher] = [
    (re.compile(r"Successful su for (?P<target>\S+) by (?P<user>\S+)"), "su"),
    (re.compile(r"FAILED su for (?P<target>\S+) by (?P<user>\S+)"), "su_failed"),
    (re.compile(r"\((?:to )?(?P<target>[^)\s]+)\) (?P<user>\S+) on (?P<tty>\S+)"), "su"),
    (re.compile(r"(?P<ok>[+-]) (?P<tty>\S+) (?P<user>[^-\s]+)-(?P<target>\S+)"), "su"),
]

_SHADOW: list[_Matcher] = [
    (re.compile(r"new user: name=(?P<target>[^,]+), UID=(?P<uid>\d+), GID=(?P<gid>\d+)"),
     "useradd"),
    (re.compile(r"new group: name=(?P<group>[^,]+), GID=(?P<gid>\d+)"), "groupadd"),
    (re.compile(r"group added to \S+: name=(?P<group>[^,]+)(?:, GID=(?P<gid>\d+))?"),
     "groupadd"),
    (re.compile(r"delete user '(?P<target>[^']+)'"), "userdel"),
    (re.compile(r"(?:removed group|group '?)(?P<group>[^' ]+)'? (?:removed|owned by)"),
     "groupdel"),
    (re.compile(r"add '(?P<target>[^']+)' to (?:shadow )?group '(?P<group>[^']+)'"), "usermod"),
    (re.compile(r"change user '(?P<target>[^']+)'"), "usermod"),
    (re.compile(r"password (?:for '(?P<target>[^']+)' )?changed(?: for (?P<user>\S+))?"),
     "password_changed"),
]

_ROOT_LOGIN = re.compile(r"ROOT LOGIN +ON (?P<tty>\S+)(?: FROM (?P<ip>\S+))?")
_REPEATED = re.compile(r"message repeated (\d+) times: \[ ?(.*?) ?\]$")
_PAM_PREFIX = re.compile(r"pam_\w+\(")


def program_family(appname: str | None) -> str | None:
    """The auth program an app name belongs to (``sshd(pam_unix)`` → ``sshd``)."""
    if not appname:
        return None
    base = appname.split("(", 1)[0].rsplit("/", 1)[-1]
    return base if base in AUTH_PROGRAMS else None


def claims(msg: SyslogMessage) -> bool:
    """True when a syslog message is an authentication message."""
    return program_family(msg.appname) is not None or bool(_PAM_PREFIX.match(msg.message))


def _match(matchers: list[_Matcher], text: str) -> tuple[re.Match[str], str] | None:
    for pattern, action in matchers:
        m = pattern.match(text) if action != "ssh_reverse_mapping_failed" else \
            pattern.search(text)
        if m:
            return m, action
    return None


def _is_ip(text: str) -> bool:
    if not text:
        return False
    if ":" in text:
        return all(c in "0123456789abcdefABCDEF:." for c in text) and text.count(":") >= 2
    parts = text.split(".")
    return len(parts) == 4 and all(p.isdigit() and int(p) < 256 for p in parts)


def _set_source(event: Event, host: str | None, port: str | None = None) -> None:
    if not host:
        return
    source: dict[str, object] = {"address": host}
    if _is_ip(host):
        source["ip"] = host
    else:
        source["domain"] = host
    if port:
        source["port"] = int(port)
    event["source"] = source


def interpret_auth(msg: SyslogMessage, event: Event) -> str | None:
    """Fill ``event`` from an authentication message; returns the action or None."""
    family = program_family(msg.appname)
    text = msg.message
    repeated = _REPEATED.match(text)
    if repeated:
        text = repeated.group(2)
        event.setdefault("tags", []).append(f"repeated:{repeated.group(1)}")
    found: tuple[re.Match[str], str] | None = None
    if family in ("sshd", "dropbear"):
        found = _match(_SSHD, text)
    if found is None and family == "sudo":
        return _sudo(text, event)
    if found is None and family == "su":
        found = _match(_SU, text)
        if found is not None and found[0].groupdict().get("ok") == "-":
            found = (found[0], "su_failed")
    if found is None and family in ("useradd", "userdel", "usermod", "groupadd", "groupdel",
                                    "groupmod", "gpasswd", "passwd", "chpasswd", "newusers"):
        found = _match(_SHADOW, text)
    if found is None:
        found = _match(_PAM, text)
    if found is None and family == "login":
        m = _ROOT_LOGIN.match(text)
        if m:
            found = (m, "root_login")
    if found is None:
        return None
    m, action = found
    groups = {k: v for k, v in m.groupdict().items() if v}
    if action == "root_login":
        groups["user"] = "root"
    _apply(event, action, groups)
    return action


def _apply(event: Event, action: str, groups: dict[str, str]) -> None:
    category, type_, outcome = ACTIONS[action]
    ev = event["event"]
    ev["action"] = action
    ev["category"] = list(category)
    ev["type"] = list(type_)
    if outcome:
        ev["outcome"] = outcome
    user = groups.get("user") or groups.get("user2")
    target = groups.get("target")
    if action in ("useradd", "userdel", "usermod") and target:
        event["user"] = {"name": target, "target": {"name": target}}
        if groups.get("uid"):
            event["user"]["id"] = groups["uid"]
    elif user:
        event["user"] = {"name": user}
        if target:
            event["user"]["target"] = {"name": target}
        if action in ("su",) and target:
            event["user"]["effective"] = {"name": target}
    elif target:
        event["user"] = {"target": {"name": target}}
    if groups.get("group") or (groups.get("gid") and action.startswith("group")):
        group: dict[str, str] = {}
        if groups.get("group"):
            group["name"] = groups["group"]
        if groups.get("gid"):
            group["id"] = groups["gid"]
        event["group"] = group
    _set_source(event, groups.get("ip") or groups.get("ip2"), groups.get("port"))
    if groups.get("domain") and "source" in event:
        event["source"]["domain"] = groups["domain"]
    method = groups.get("method")
    if method:
        event.setdefault("labels", {})["auth_method"] = method
    if groups.get("invalid"):
        event.setdefault("labels", {})["invalid_user"] = "true"
    if groups.get("count"):
        event.setdefault("labels", {})["failures"] = groups["count"]


def _sudo(text: str, event: Event) -> str | None:
    m = _SUDO.match(text)
    if m:
        problem = (m.group("problem") or "").strip()
        action = "sudo_failed" if problem else "sudo"
        groups = {"user": m.group("user"), "target": m.group("target")}
        _apply(event, action, groups)
        event["user"]["effective"] = {"name": m.group("target")}
        event["process"]["command_line"] = m.group("command")
        event["process"]["working_directory"] = m.group("pwd")
        if problem:
            event["event"]["reason"] = problem
        return action
    m2 = _SUDO_PROBLEM.match(text)
    if m2 and ("incorrect password" in text or "NOT in sudoers" in text
               or "not allowed" in text):
        _apply(event, "sudo_failed", {"user": m2.group("user")})
        event["event"]["reason"] = m2.group("problem").strip()
        return "sudo_failed"
    found = _match(_PAM, text)
    if found:
        _apply(event, found[1], {k: v for k, v in found[0].groupdict().items() if v})
        return found[1]
    return None


_PRIORITIES: dict[int, tuple[str, dict[str, Any], dict[str, Any]]] = {
    pri: (SEVERITIES[pri & 7], {"code": pri >> 3, "name": FACILITIES[pri >> 3]},
          {"code": pri & 7, "name": SEVERITIES[pri & 7]})
    for pri in range(len(FACILITIES) * 8)
}


def syslog_fields(msg: SyslogMessage, event: Event) -> None:
    """The syslog header fields every syslog-derived event carries."""
    syslog: dict[str, Any] = {}
    log: dict[str, Any] = {}
    priority = msg.priority
    if priority is not None:
        level, facility, severity = _PRIORITIES[priority]
        # copies: events must not share mutable objects
        syslog["priority"] = priority
        syslog["facility"] = dict(facility)
        syslog["severity"] = dict(severity)
        log["level"] = level
    hostname = msg.hostname
    if hostname:
        syslog["hostname"] = hostname
        event["host"] = {"hostname": hostname, "name": hostname}
    appname = msg.appname
    if appname:
        syslog["appname"] = appname
    if msg.procid:
        syslog["procid"] = msg.procid
    if msg.msgid:
        syslog["msgid"] = msg.msgid
    if msg.version:
        syslog["version"] = msg.version
    if msg.structured_data:
        syslog["structured_data"] = msg.structured_data
    if syslog:
        log["syslog"] = syslog
    if log:
        event["log"] = log
    if appname:
        process: dict[str, Any] = {"name": appname.split("(", 1)[0]}
        procid = msg.procid
        if procid and procid.isdigit():
            process["pid"] = int(procid)
        event["process"] = process
    else:
        event["process"] = {}


_STAMPS: dict[datetime, str] = {}


def stamp_text(moment: datetime) -> str:
    """format_timestamp with a small cache: log lines share their second."""
    text = _STAMPS.get(moment)
    if text is None:
        if len(_STAMPS) > 4096:
            _STAMPS.clear()
        text = _STAMPS[moment] = format_timestamp(moment)
    return text


def auth_event(msg: SyslogMessage, original: str) -> Event:
    """A ``system.auth`` event for one authentication message."""
    event: Event = {"@timestamp": stamp_text(msg.timestamp),
                    "event": {"kind": "event", "dataset": DATASET, "module": MODULE,
                              "original": original},
                    "message": msg.message}
    syslog_fields(msg, event)
    interpret_auth(msg, event)
    if not event["process"]:
        del event["process"]
    return event


class AuthLogParser:
    """Line parser for auth.log / secure files (a :class:`~collectors.lines.LineParser`)."""

    dataset = DATASET

    def __init__(self, timezone: str | None = None, reference: datetime | None = None) -> None:
        self.syslog = SyslogParser(timezone, reference or datetime.now(UTC))

    def __call__(self, text: str, line: RawLine) -> Event | None:
        if not text.strip():
            return None
        msg = self.syslog.parse(text, position=f"line {line.number}")
        return auth_event(msg, text)

