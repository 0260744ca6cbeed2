"""Web server logs → ECS: Apache/nginx access logs (common and combined), IIS W3C
extended logs and the Apache error log.

Each kind is a line parser (see :mod:`collectors.textlog`):

* :class:`AccessLogParser` — NCSA common/combined, ``apache.access`` or
  ``nginx.access`` (the two write the same format; the operator says which
  server wrote the file). Fields after the user agent (nginx's
  ``$http_x_forwarded_for`` and the like) are ignored.
* :class:`IISLogParser` — W3C extended format, ``iis.access``. Columns come from
  the last ``#Fields:`` directive; a file read from a checkpoint past its
  directives is primed with :meth:`IISLogParser.prime`. IIS writes UTC.
* :class:`ApacheErrorLogParser` — ``apache.error``, Apache 2.2 and 2.4 layouts.

An access is ``event.category: web``, ``event.type: access``; the outcome is
``failure`` for status 400 and above (what the client asked for did not happen).

Access logs have a compiled path (``govsoc_weblog``, built from ``native/weblog``;
see :mod:`collectors.native`): :attr:`AccessLogParser.bulk` reads whole runs of
lines of the plain shape (what :data:`_ACCESS_PLAIN` matches and
:meth:`AccessLogParser._plain` reads) inside :func:`collectors.textlog.line_batches`,
event id and ``log.*`` included, and hands every other line (escapes, invalid
UTF-8, over-long lines, odd timestamps, non-ASCII digits or case mapping, anything
else unusual) back to this parser. This Python code stays the reference: both
paths give the same events, dead letters, counters and checkpoints
(``tests/collectors/test_weblog_native.py`` holds them to it), and without the
module or with ``GOVSOC_NATIVE=0`` only the Python path runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, BinaryIO

from collectors.lines import RawLine
from collectors.native import native_module
from collectors.syslog_parse import zone
from collectors.textlog import BulkLineReader
from govsoc.errors import ParseError
from govsoc.events import Event, format_timestamp

# the unrolled form of "(?:[^"\\]|\\.)*": one regex step per run of plain characters
_QUOTED = r'"([^"\\]*(?:\\.[^"\\]*)*)"'
_ACCESS = re.compile(
    r'(\S+) (\S+) (\S+) \[([^\]]{1,64})\] ' + _QUOTED + r' (\d{3}|-) (\d+|-)'
    r'(?: ' + _QUOTED + r' ' + _QUOTED + r')?')
# Tomcat and some proxies do not escape quotes inside the request line (an XSS
# probe in the query string is the usual case): fall back to the first place
# where a status and size follow a closing quote.
_ACCESS_LOOSE = re.compile(
    r'(\S+) (\S+) (\S+) \[([^\]]{1,64})\] "(.*?)" (\d{3}|-) (\d+|-)'
    r'(?: "(.*?)" "(.*)")?\s*$')
# The usual line: no backslash anywhere (so no escapes), a plain "METHOD target
# HTTP/x.y" request. Where it matches, it splits the line exactly as _ACCESS and
# the request split below do, in one regex step.
_REQUEST = re.compile(r'([A-Za-z][A-Za-z0-9_\-]{0,31}) (\S+)(?: HTTP/(\d(?:\.\d)?))?$')
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
_CLF_TIME = re.compile(r'(\d{1,2})/([A-Za-z]{3})/(\d{4}):(\d{2}):(\d{2}):(\d{2})'
                       r'(?: ([+-])(\d{2})(\d{2}))?$')
_ESCAPE = re.compile(r'\\(["\\])')


def _unescape(text: str) -> str:
    return _ESCAPE.sub(r"\1", text) if "\\" in text else text


_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}$")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]{2,45}$")
# The usual line: no backslash anywhere (so no escapes), a plain "METHOD target
# HTTP/x.y" request. Where it matches, it splits the line exactly as _ACCESS and
# the request split do, in one regex step; an IPv4 client (what _is_ip accepts
# without a colon) lands in the first group, any other client in the second.
_ACCESS_PLAIN = re.compile(
    rf'(?:((?:{_OCTET}\.){{3}}{_OCTET})|(\S+)) (\S+) (\S+) \[([^\]]{{1,64}})\] '
    r'"([A-Za-z]+) ([^ "]+) HTTP/(\d(?:\.\d)?)" (\d{3}|-) (\d+|-)(?: "([^"]*)" "([^"]*)")?')


#: the longest client or request target kept in a parser's caches: what repeats is
#: short, and 4,096 kept megabyte-long lines would hold gigabytes
_CACHED_TEXT = 1024


def _is_ip(text: str) -> bool:
    if ":" in text:
        return text.count(":") >= 2 and _IPV6.match(text) is not None
    return _IPV4.match(text) is not None


def _url_fields(target: str, url: dict[str, Any]) -> None:
    url["original"] = target
    path, sep, query = target.partition("?")
    if "://" in path[:12]:
        # absolute-form request target (a proxy request)
        scheme, _, rest = path.partition("://")
        host, slash, path = rest.partition("/")
        url["scheme"] = scheme.lower()
        url["domain"] = host
        path = slash + path
    url["path"] = path
    if sep:
        url["query"] = query
    dot = path.rfind(".")
    if dot > path.rfind("/") and 0 < len(path) - dot - 1 <= 10:
        url["extension"] = path[dot + 1:].lower()


def _outcome(status: int) -> str:
    return "failure" if status >= 400 else "success"


class AccessLogParser:
    """NCSA common / combined access log lines (Apache, nginx)."""

    def __init__(self, server: str = "apache") -> None:
        if server not in ("apache", "nginx"):
            raise ValueError(f"unknown web server {server!r} (apache or nginx)")
        self.module = server
        self.dataset = f"{server}.access"
        self._stamp_cache: dict[str, str] = {}
        # clients and targets repeat line after line: what they give is kept
        self._client_key: dict[str, str] = {}
        self._urls: dict[str, dict[str, Any]] = {}
        native = native_module("weblog")
        #: the compiled reader of plain lines (see the module's docstring), or None;
        #: a subclass reads with its own code
        self.bulk: BulkLineReader | None = (
            native.AccessLines(server)
            if native is not None and type(self) is AccessLogParser else None)

    def _timestamp(self, text: str) -> str:
        cached = self._stamp_cache.get(text)
        if cached is not None:
            return cached
        m = _CLF_TIME.match(text)
        month = _MONTHS.get(m.group(2)) if m else None
        if m is None or month is None:
            raise ParseError(f"unparseable access log timestamp {text[:64]!r}")
        try:
            moment = datetime(int(m.group(3)), month, int(m.group(1)), int(m.group(4)),
                              int(m.group(5)), int(m.group(6)), tzinfo=UTC)
        except ValueError as exc:
            raise ParseError(f"unparseable access log timestamp {text!r}: {exc}") from None
        if m.group(7):
            offset = (int(m.group(8)) * 60 + int(m.group(9))) * 60
            moment = moment.replace(tzinfo=None)
            from datetime import timedelta

            delta = timedelta(seconds=offset)
            moment = (moment - delta if m.group(7) == "+" else moment + delta).replace(
                tzinfo=UTC)
        stamp = format_timestamp(moment)
        if len(self._stamp_cache) > 4096:
            self._stamp_cache.clear()
        self._stamp_cache[text] = stamp
        return stamp

    def __call__(self, text: str, line: RawLine | None = None) -> Event | None:
        if "\\" not in text:
            m = _ACCESS_PLAIN.match(text)
            if m is not None:
                return self._plain(text, m)
        if not text or text.isspace():
            return None
        m = _ACCESS.match(text)
        if m is None:
            m = _ACCESS_LOOSE.match(text)
        if m is None:
            raise ParseError("not an access log line in common or combined format")
        client, _ident, user, stamp, request, status, size, referrer, agent = m.groups()
        event: Event = {
            "@timestamp": self._timestamp(stamp),
            "event": {"kind": "event", "dataset": self.dataset, "module": self.module,
                      "category": ["web"], "type": ["access"], "original": text},
        }
        source: dict[str, Any] = {"address": client}
        if _is_ip(client):
            source["ip"] = client
        else:
            source["domain"] = client
        event["source"] = source
        http: dict[str, Any] = {}
        if "\\" in request:
            request = _unescape(request)
        url: dict[str, Any] = {}
        parts = request.split(" ")
        # the common shape "METHOD target HTTP/x.y" without a regex; the rest by regex
        if len(parts) == 3 and parts[2].startswith("HTTP/") and parts[0].isalpha():
            method, target, version = parts[0], parts[1], parts[2][5:]
        else:
            rm = _REQUEST.match(request)
            method, target, version = (rm.group(1), rm.group(2), rm.group(3)) if rm else (
                None, None, None)
        if method is not None and target is not None:
            http["request"] = {"method": method.upper()}
            _url_fields(target, url)
            if version:
                http["version"] = version
        elif request and request != "-":
            # not an HTTP request line (a TLS hello sent to a plain port, a scanner)
            url["original"] = request
            event["tags"] = ["malformed_request"]
        if url:
            event["url"] = url
        if status != "-":
            code = int(status)
            http["response"] = {"status_code": code}
            event["event"]["outcome"] = "failure" if code >= 400 else "success"
        if size != "-":
            http.setdefault("response", {})["bytes"] = int(size)
        if referrer and referrer != "-":
            http.setdefault("request", {})["referrer"] = _unescape(referrer)
        if http:
            event["http"] = http
        if user != "-":
            event["user"] = {"name": _unescape(user)}
        if agent and agent != "-":
            event["user_agent"] = {"original": _unescape(agent)}
        return event


    def _plain(self, text: str, m: re.Match[str]) -> Event:
        """The event of a line :data:`_ACCESS_PLAIN` matched: what the general
        path makes of it, field for field and in the same order."""
        ipv4, client, _ident, user, stamp, method, target, version, status, size, referrer, \
            agent = m.groups()
        timestamp = self._stamp_cache.get(stamp) or self._timestamp(stamp)
        fields: dict[str, Any] = {"kind": "event", "dataset": self.dataset,
                                  "module": self.module, "category": ["web"],
                                  "type": ["access"], "original": text}
        key: str | None
        if ipv4 is not None:
            client, key = ipv4, "ip"
        else:
            key = self._client_key.get(client)
            if key is None:
                key = "ip" if _is_ip(client) else "domain"
                if len(client) <= _CACHED_TEXT:
                    if len(self._client_key) >= 4096:
                        self._client_key.clear()
                    self._client_key[client] = key
        url = self._urls.get(target)
        if url is None:
            url = {}
            _url_fields(target, url)
            if len(target) <= _CACHED_TEXT:
                if len(self._urls) >= 4096:
                    self._urls.clear()
                self._urls[target] = url
        event: Event = {"@timestamp": timestamp, "event": fields,
                        "source": {"address": client, key: client}, "url": dict(url)}
        request: dict[str, Any] = {"method": method.upper()}
        http: dict[str, Any] = {"request": request, "version": version}
        if status != "-":
            code = int(status)
            http["response"] = {"status_code": code}
            fields["outcome"] = "failure" if code >= 400 else "success"
        if size != "-":
            http.setdefault("response", {})["bytes"] = int(size)
        if referrer and referrer != "-":
            request["referrer"] = referrer
        event["http"] = http
        if user != "-":
            event["user"] = {"name": user}
        if agent and agent != "-":
            event["user_agent"] = {"original": agent}
        return event


#: W3C field → (ECS field, converter)
_IIS_FIELDS: dict[str, tuple[str, str]] = {
    "s-ip": ("destination.ip", "ip"),
    "cs-method": ("http.request.method", "upper"),
    "cs-uri-stem": ("url.path", "str"),
    "cs-uri-query": ("url.query", "str"),
    "s-port": ("destination.port", "int"),
    "cs-username": ("user.name", "str"),
    "c-ip": ("source.ip", "ip"),
    "cs(user-agent)": ("user_agent.original", "plus"),
    "cs(referer)": ("http.request.referrer", "str"),
    "sc-status": ("http.response.status_code", "int"),
    "sc-bytes": ("http.response.bytes", "int"),
    "cs-bytes": ("http.request.bytes", "int"),
    "time-taken": ("event.duration", "ms"),
    "cs-host": ("url.domain", "str"),
    "s-computername": ("host.name", "str"),
    "s-sitename": ("labels.site_name", "str"),
    "cs-version": ("http.version", "version"),
    "sc-substatus": ("labels.sub_status", "str"),
    "sc-win32-status": ("labels.win32_status", "str"),
    "x-forwarded-for": ("labels.forwarded_for", "str"),
}

#: What IIS 7 and later write when nobody changed the logging fields.
IIS_DEFAULT_FIELDS = (
    "date", "time", "s-ip", "cs-method", "cs-uri-stem", "cs-uri-query", "s-port", "cs-username",
    "c-ip", "cs(User-Agent)", "cs(Referer)", "sc-status", "sc-substatus", "sc-win32-status",
    "time-taken")


class IISLogParser:
    """W3C extended log lines as IIS writes them."""

    dataset = "iis.access"
    module = "iis"

    def __init__(self) -> None:
        self.fields: list[str] = []

    def prime(self, stream: BinaryIO, upto: int) -> None:
        """Read the directives before ``upto`` (resuming a file mid-way)."""
        stream.seek(0)
        read = 0
        for raw in stream:
            read += len(raw)
            if read > upto:
                break
            if raw.startswith(b"#Fields:"):
                self._directive(raw.decode("utf-8", "replace").rstrip("\r\n"))
        stream.seek(upto)

    def _directive(self, text: str) -> None:
        if text.startswith("#Fields:"):
            self.fields = [f.lower() for f in text[len("#Fields:"):].split()]

    def __call__(self, text: str, line: RawLine | None = None) -> Event | None:
        if not text or text.isspace():
            return None
        if text.startswith("#"):
            self._directive(text)
            return None
        values = text.split(" ")
        fields = self.fields
        if not fields:
            if len(values) != len(IIS_DEFAULT_FIELDS):
                raise ParseError("W3C log line before any #Fields directive, and its "
                                 f"{len(values)} columns do not match the IIS defaults")
            fields = [f.lower() for f in IIS_DEFAULT_FIELDS]
        if len(values) != len(fields):
            raise ParseError(f"W3C log line has {len(values)} columns, the #Fields directive "
                             f"names {len(fields)}")
        row = dict(zip(fields, values, strict=True))
        date, clock = row.get("date"), row.get("time")
        if not date or not clock:
            raise ParseError("W3C log line without date and time fields")
        try:
            stamp = datetime.fromisoformat(f"{date}T{clock}").replace(tzinfo=UTC)
        except ValueError:
            raise ParseError(f"unparseable W3C timestamp {date!r} {clock!r}") from None
        event: Event = {
            "@timestamp": format_timestamp(stamp),
            "event": {"kind": "event", "dataset": self.dataset, "module": self.module,
                      "category": ["web"], "type": ["access"], "original": text},
        }
        for name, value in row.items():
            target = _IIS_FIELDS.get(name)
            if target is None or value == "-":
                continue
            field, conv = target
            converted: Any = value
            if conv == "int" or conv == "ms":
                if not value.isdigit():
                    raise ParseError(f"W3C field {name} is not a number: {value[:32]!r}")
                converted = int(value) * 1_000_000 if conv == "ms" else int(value)
            elif conv == "upper":
                converted = value.upper()
            elif conv == "plus":
                converted = value.replace("+", " ")
            elif conv == "version":
                converted = value.split("/", 1)[-1]
            elif conv == "ip" and not _is_ip(value):
                field = field.replace(".ip", ".address")
            _set(event, field, converted)
        url = event.get("url")
        if url is not None and "path" in url:
            original = url["path"] + ("?" + url["query"] if "query" in url else "")
            url["original"] = original
            path = url["path"]
            dot = path.rfind(".")
            if dot > path.rfind("/") and 0 < len(path) - dot - 1 <= 10:
                url["extension"] = path[dot + 1:].lower()
        status = event.get("http", {}).get("response", {}).get("status_code")
        if isinstance(status, int):
            event["event"]["outcome"] = _outcome(status)
        source = event.get("source")
        if source is not None and "ip" in source:
            source["address"] = source["ip"]
        return event


def _set(event: Event, dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    node = event
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


_ERROR_LINE = re.compile(
    r'\[(?P<time>[A-Za-z]{3} [A-Za-z]{3} [ \d]\d \d{2}:\d{2}:\d{2}(?:\.\d{1,6})? \d{4})\] '
    r'\[(?:(?P<module>[^:\]]+):)?(?P<level>[a-z0-9]+)\]'
    r'(?: \[pid (?P<pid>\d+)(?::tid (?P<tid>\d+))?\])?'
    r'(?: \[client (?P<client>[^\]]+)\])?'
    r' ?(?P<message>.*)$', re.S)
_ERROR_LEVELS = frozenset({"emerg", "alert", "crit", "error", "warn", "notice", "info",
                           "debug", "trace1", "trace2", "trace3", "trace4", "trace5",
                           "trace6", "trace7", "trace8"})


class ApacheErrorLogParser:
    """Apache error log lines (2.2: ``[date] [level] msg``; 2.4 adds module, pid, client)."""

    dataset = "apache.error"
    module = "apache"

    def __init__(self, timezone: str | None = None) -> None:
        self.tz = zone(timezone)

    def __call__(self, text: str, line: RawLine | None = None) -> Event | None:
        if not text or text.isspace():
            return None
        m = _ERROR_LINE.match(text)
        if m is None:
            raise ParseError("not an Apache error log line ([date] [level] message)")
        level = m.group("level")
        if level not in _ERROR_LEVELS:
            raise ParseError(f"unknown Apache error log level {level!r}")
        stamp_text = " ".join(m.group("time").split())
        try:
            fmt = "%a %b %d %H:%M:%S.%f %Y" if "." in stamp_text else "%a %b %d %H:%M:%S %Y"
            stamp = datetime.strptime(stamp_text, fmt).replace(tzinfo=self.tz)
        except ValueError:
            raise ParseError(f"unparseable Apache error log timestamp {stamp_text!r}") from None
        is_error = level in ("emerg", "alert", "crit", "error")
        event: Event = {
            "@timestamp": format_timestamp(stamp),
            "event": {"kind": "event", "dataset": self.dataset, "module": self.module,
                      "category": ["web"], "type": ["error" if is_error else "info"],
                      "original": text},
            "message": m.group("message"),
            "log": {"level": level},
        }
        if m.group("module"):
            event["log"]["logger"] = m.group("module")
        if m.group("pid"):
            event["process"] = {"pid": int(m.group("pid"))}
            if m.group("tid"):
                event["process"]["thread"] = {"id": int(m.group("tid"))}
        client = m.group("client")
        if client:
            host, port = client, None
            if client.count(":") == 1 or (client.startswith("[") and "]:" in client):
                host, _, port = client.rpartition(":")
                host = host.strip("[]")
            source: dict[str, Any] = {"address": host}
            if _is_ip(host):
                source["ip"] = host
            if port and port.isdigit():
                source["port"] = int(port)
            event["source"] = source
        return event


def detect_kind(first_lines: Iterable[bytes]) -> str:
    """Guess ``iis``, ``apache-error`` or ``access`` from a file's first lines."""
    for raw in first_lines:
        text = raw.strip()
        if not text:
            continue
        if text.startswith((b"#Software: Microsoft", b"#Fields:", b"#Version:")):
            return "iis"
        if _ERROR_LINE.match(text.decode("utf-8", "replace")):
            return "apache-error"
        return "access"
    return "access"
