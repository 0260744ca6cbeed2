"""Observables of a case: IPs, domains, URLs, hashes, users, hosts and files taken
from the fields of its alerts."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from store.base import Alert, Observable

#: field-name endings that say what kind of observable a value is
_BY_SUFFIX: tuple[tuple[str, str], ...] = (
    (".ip", "ip"), ("dns.question.name", "domain"), (".domain", "domain"),
    ("dns.question.registered_domain", "domain"), ("tls.client.server_name", "domain"),
    ("url.full", "url"), ("url.original", "url"), (".hash.md5", "hash"),
    (".hash.sha1", "hash"), (".hash.sha256", "hash"), (".hash.sha512", "hash"),
    ("user.name", "user"), ("user.target.name", "user"), ("host.name", "host"),
    ("host.hostname", "host"), ("file.path", "file"), ("file.name", "file"),
    ("process.executable", "file"),
)
TYPES = ("ip", "domain", "url", "hash", "user", "host", "file")
MAX_VALUE = 2048


def kind_of(field_name: str) -> str | None:
    for suffix, kind in _BY_SUFFIX:
        if field_name == suffix.lstrip(".") or field_name.endswith(suffix):
            return kind
    return None


def _values(value: object) -> Iterable[str]:
    items = value if isinstance(value, list) else [value]
    for item in items:
        if item is None or isinstance(item, dict | list):
            continue
        text = str(item).strip()
        if text and text != "-" and len(text) <= MAX_VALUE:
            yield text


def _usable(kind: str, value: str) -> bool:
    if kind == "ip":
        try:
            ipaddress.ip_address(value)
        except ValueError:
            return False
    return True


def from_alert(alert: Alert) -> list[Observable]:
    found: list[Observable] = []
    pairs: list[tuple[str, object]] = [("host.name", alert.host), ("user.name", alert.user),
                                       ("source.ip", alert.source_ip),
                                       ("destination.ip", alert.destination_ip)]
    pairs += list(alert.fields.items())
    for field_name, value in pairs:
        kind = kind_of(field_name)
        if kind is None:
            continue
        for text in _values(value):
            if _usable(kind, text):
                found.append(Observable(kind, text, alert.id))
    return found


def merge(existing: Iterable[Observable], new: Iterable[Observable]) -> list[Observable]:
    """``existing`` plus the new (type, value) pairs, first occurrence kept."""
    out: list[Observable] = []
    seen: set[tuple[str, str]] = set()
    for item in [*existing, *new]:
        key = (item.type, item.value)
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def from_alerts(alerts: Iterable[Alert]) -> list[Observable]:
    out: list[Observable] = []
    for alert in alerts:
        out = merge(out, from_alert(alert))
    return out
