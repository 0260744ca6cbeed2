"""Syslog message parsing: RFC 5424, RFC 3164 (BSD) and the file spellings of both.

One function, :func:`parse_syslog`, reads a message with or without its ``<PRI>``
(messages on the wire carry it, lines in ``/var/log/*`` do not) and returns a
:class:`SyslogMessage`. It knows no application: turning an sshd or sudo message
into an authentication event is :mod:`collectors.authlog`'s job.

RFC 3164 timestamps (``Mmm dd hh:mm:ss``) have neither year nor zone. The rule:

* **zone**: the one the caller names (``timezone`` of the input; UTC by default),
  because a BSD-syslog sender writes its local time and only the operator knows it.
* **year**: the latest year that puts the timestamp no more than one day after a
  reference moment. The reference is the receive time for the network receiver and
  the file's modification time for files (no line of a file is written after its
  mtime). So ``Dec 31 23:59`` received on ``Jan 1`` is last year's, and
  ``Jan 1 00:00:01`` received one second before midnight on ``Dec 31`` (a sender
  clock slightly ahead) is next year's. ``Feb 29`` only matches leap years.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from govsoc.errors import ParseError
from govsoc.events import parse_timestamp

FACILITIES = (
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
    "authpriv", "ftp", "ntp", "security", "console", "solaris-cron", "local0", "local1",
    "local2", "local3", "local4", "local5", "local6", "local7",
)
SEVERITIES = ("emergency", "alert", "critical", "error", "warning", "notice",
              "informational", "debug")

_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}

_PRI = re.compile(r"<(\d{1,3})>")
_BSD_STAMP = re.compile(
    r"([A-Za-z]{3}) {1,2}(\d{1,2}) (?:(\d{4}) )?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(?: |$)")
_ISO_STAMP = re.compile(
    r"(\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|z|[+-]\d{2}:?\d{2})?)(?: |$)")
# The usual network message: <PRI>, a BSD timestamp without year or fraction, a
# host name without colons and a "tag[pid]:" (the pieces of _BSD_STAMP, _HOST and
# _TAG). Where it matches, the general path reads the same parts from the line.
_BSD_PLAIN = re.compile(
    r"<(\d{1,3})>(([A-Za-z]{3}) {1,2}(\d{1,2}) (\d{1,2}):(\d{2}):(\d{2}) )"
    r"([A-Za-z0-9_.\-%@/]{1,255}) ([^\s\[\]:]{1,128})(?:\[([^\]\s]{0,64})\])?: ?")
_TAG = re.compile(r"([^\s\[\]:]{1,128})(?:\[([^\]\s]{0,64})\])?: ?")
_HOST = re.compile(r"[A-Za-z0-9_.:\-%@/]{1,255}$")
_SD_PARAM = re.compile(r'\s*([^\s="\]]{1,32})="((?:[^"\\]|\\.)*)"')
_SD_UNESCAPE = re.compile(r'\\(["\\\]])')

#: The most a sender's clock may run ahead of the reference before a BSD timestamp
#: is taken to be from the previous year.
YEAR_SLACK = timedelta(days=1)


@dataclass(slots=True)
class SyslogMessage:
    """The parts of one syslog message."""

    timestamp: datetime
    message: str
    format: str  # "rfc5424", "rfc3164"
    priority: int | None = None
    hostname: str | None = None
    appname: str | None = None
    procid: str | None = None
    msgid: str | None = None
    version: str | None = None
    structured_data: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def facility(self) -> int | None:
        return None if self.priority is None else self.priority >> 3

    @property
    def severity(self) -> int | None:
        return None if self.priority is None else self.priority & 7


@lru_cache(maxsize=64)
def zone(name: str | None) -> tzinfo:
    """The tzinfo of an IANA zone name; None or "UTC" is UTC."""
    if not name or name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def bsd_timestamp(month: int, day: int, hour: int, minute: int, second: int, micro: int,
                  reference: datetime, tz: tzinfo, year: int | None = None) -> datetime:
    """A UTC datetime for a timestamp without a year, by the rule in the module doc."""
    if year is not None:
        return datetime(year, month, day, hour, minute, second, micro, tz).astimezone(UTC)
    limit = reference + YEAR_SLACK
    ref_year = reference.astimezone(tz).year
    for candidate in (ref_year + 1, ref_year, ref_year - 1, ref_year - 2, ref_year - 3,
                      ref_year - 4):
        try:
            moment = datetime(candidate, month, day, hour, minute, second, micro, tz)
        except ValueError:  # Feb 29 outside a leap year
            continue
        if moment <= limit:
            return moment.astimezone(UTC)
    raise ValueError(f"no year fits {month:02d}-{day:02d}")


class SyslogParser:
    """Parses syslog messages; holds the zone and reference for BSD timestamps.

    ``reference`` None means "now" at each call (the network receiver); files pass
    their modification time.
    """

    def __init__(self, timezone: str | None = None, reference: datetime | None = None) -> None:
        self.tz = zone(timezone)
        self.reference = reference
        self._last_stamp: tuple[str, datetime, datetime] | None = None

    def parse(self, text: str, source: str = "", position: str | int = "",
              reference: datetime | None = None) -> SyslogMessage:
        """Parse one message; raises :class:`ParseError` naming what is wrong."""
        plain = _BSD_PLAIN.match(text)
        if plain is not None:
            plain_priority = int(plain.group(1))
            if plain_priority <= 191:
                key, month, day, hour, minute, second = plain.group(2, 3, 4, 5, 6, 7)
                stamp = self._bsd_stamp(key, month, day, None, hour, minute, second, None,
                                        reference, source, position)
                return SyslogMessage(timestamp=stamp, message=text[plain.end():],
                                     format="rfc3164", priority=plain_priority,
                                     hostname=plain.group(8), appname=plain.group(9),
                                     procid=plain.group(10) or None)
        if not text.strip():
            raise ParseError("empty syslog message", source, position)
        pos = 0
        priority = None
        m = _PRI.match(text)
        if m:
            priority = int(m.group(1))
            if priority > 191:
                raise ParseError(f"syslog priority {priority} is out of range (0-191)",
                                 source, position)
            pos = m.end()
            if text.startswith("1 ", pos):
                return self._rfc5424(text, pos + 2, priority, source, position)
        elif text[:1] == "<":
            raise ParseError("syslog message starts with '<' but has no valid <PRI>",
                             source, position)
        return self._rfc3164(text, pos, priority, source, position, reference)

    # RFC 5424 ----------------------------------------------------------------
    def _rfc5424(self, text: str, pos: int, priority: int, source: str,
                 position: str | int) -> SyslogMessage:
        parts = text[pos:].split(" ", 5)
        if len(parts) < 5:
            raise ParseError("RFC 5424 message has fewer than the six header fields",
                             source, position)
        stamp_text, host, app, proc, msgid = parts[:5]
        rest = parts[5] if len(parts) > 5 else ""
        if stamp_text == "-":
            stamp = datetime.now(UTC)
        else:
            try:
                stamp = parse_timestamp(stamp_text)
            except (ValueError, OverflowError):
                raise ParseError(f"unparseable RFC 5424 timestamp {stamp_text[:64]!r}",
                                 source, position) from None
        sd, message = _structured_data(rest, source, position)
        if message.startswith("\ufeff"):
            message = message[1:]
        return SyslogMessage(
            timestamp=stamp, message=message, format="rfc5424", priority=priority,
            hostname=_nil(host), appname=_nil(app), procid=_nil(proc), msgid=_nil(msgid),
            version="1", structured_data=sd)

    # RFC 3164 and file lines -------------------------------------------------
    def _rfc3164(self, text: str, pos: int, priority: int | None, source: str,
                 position: str | int, reference: datetime | None) -> SyslogMessage:
        stamped = True
        m = _BSD_STAMP.match(text, pos)
        if m:
            stamp = self._bsd(m, reference, source, position)
            pos = m.end()
        else:
            m2 = _ISO_STAMP.match(text, pos)
            if m2:
                try:
                    stamp = parse_timestamp(m2.group(1).replace(" ", "T", 1))
                except (ValueError, OverflowError):
                    raise ParseError(f"unparseable timestamp {m2.group(1)!r}", source,
                                     position) from None
                pos = m2.end()
            elif priority is not None:
                # RFC 3164 4.3.2: a relay fills in a missing timestamp with the receive time
                stamp = datetime.now(UTC)
                stamped = False
            else:
                head = text[pos:pos + 32]
                raise ParseError(f"no syslog timestamp at the start of the line ({head!r})",
                                 source, position)
        hostname = None
        rest = text[pos:]
        tag = _TAG.match(rest)
        # without a timestamp there is no header, so no host name to find either
        if stamped and not (tag and tag.group(0).rstrip().endswith(":")):
            space = rest.find(" ")
            first = rest if space < 0 else rest[:space]
            if first and _HOST.match(first):
                hostname = first
                rest = "" if space < 0 else rest[space + 1:]
                tag = _TAG.match(rest)
        appname = procid = None
        if tag and tag.group(0).rstrip().endswith(":"):
            appname, procid = tag.group(1), tag.group(2)
            rest = rest[tag.end():]
        return SyslogMessage(timestamp=stamp, message=rest, format="rfc3164",
                             priority=priority, hostname=hostname, appname=appname,
                             procid=procid or None)

    def _bsd(self, m: re.Match[str], reference: datetime | None, source: str,
             position: str | int) -> datetime:
        return self._bsd_stamp(m.group(0), m.group(1), m.group(2), m.group(3), m.group(4),
                               m.group(5), m.group(6), m.group(7), reference, source,
                               position)

    def _bsd_stamp(self, key: str, month_name: str, day: str, year: str | None, hour: str,
                   minute: str, second: str, fraction: str | None,
                   reference: datetime | None, source: str,
                   position: str | int) -> datetime:
        ref = reference or self.reference or datetime.now(UTC)
        cached = self._last_stamp
        if cached is not None and cached[0] == key and cached[1] == ref:
            return cached[2]
        month = _MONTHS.get(month_name.lower())
        if month is None:
            raise ParseError(f"unparseable timestamp {key.strip()!r}: unknown month",
                             source, position)
        try:
            stamp = bsd_timestamp(month, int(day), int(hour), int(minute), int(second),
                                  int((fraction or "0").ljust(6, "0")),
                                  ref, self.tz, int(year) if year else None)
        except ValueError as exc:
            raise ParseError(f"unparseable timestamp {key.strip()!r}: {exc}", source,
                             position) from None
        self._last_stamp = (key, ref, stamp)
        return stamp


def _nil(value: str) -> str | None:
    return None if value == "-" else value


def _structured_data(rest: str, source: str, position: str | int
                     ) -> tuple[dict[str, dict[str, str]], str]:
    if rest.startswith("-"):
        return {}, rest[2:] if rest.startswith("- ") else rest[1:]
    if not rest.startswith("["):
        raise ParseError("RFC 5424 structured data must be '-' or start with '['",
                         source, position)
    sd: dict[str, dict[str, str]] = {}
    pos = 0
    while pos < len(rest) and rest[pos] == "[":
        end_id = pos + 1
        while end_id < len(rest) and rest[end_id] not in " ]":
            end_id += 1
        sd_id = rest[pos + 1:end_id]
        if not sd_id:
            raise ParseError("RFC 5424 structured data element without an id", source,
                             position)
        params: dict[str, str] = {}
        pos = end_id
        while True:
            m = _SD_PARAM.match(rest, pos)
            if not m:
                break
            params[m.group(1)] = _SD_UNESCAPE.sub(r"\1", m.group(2))
            pos = m.end()
        if pos >= len(rest) or rest[pos] != "]":
            raise ParseError(f"RFC 5424 structured data element [{sd_id[:32]} is not closed",
                             source, position)
        sd[sd_id] = params
        pos += 1
    message = rest[pos:]
    return sd, message[1:] if message.startswith(" ") else message
