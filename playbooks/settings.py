"""Configuration sections of the playbook engine, its actions, SLA clocks and reports.

Registered with the one config loader at import time, so ``govsoc.yml`` is
validated in one place:

.. code-block:: yaml

    playbooks:
      smtp: {host: mail.example.gov.vn, port: 587, sender: soc@example.gov.vn, starttls: true}
      webhooks:
        disable_account: {url: "https://idm.local/hooks/disable"}
        isolate_host: {url: "https://edr.local/hooks/isolate"}
      firewall: {api_url: "https://fw.local/api/block", never_block: ["10.0.0.0/8"]}
      inventory: {path: /etc/govsoc/assets.yml}
      intel: {paths: [/etc/govsoc/intel/bad-ips.txt]}
    reports:
      unit: {name: "Sở Thông tin và Truyền thông tỉnh ...", phone: ..., email: ...}
"""

from __future__ import annotations

from typing import Any

from govsoc.config import DEFAULTS, Config, register_section

_STR_OR_NULL = {"type": ["string", "null"]}
_STRINGS = {"type": "array", "items": {"type": "string"}}

SMTP_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "host": _STR_OR_NULL,
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "sender": {"type": "string"},
        "starttls": {"type": "boolean"},
        "ssl": {"type": "boolean"},
        "username": _STR_OR_NULL,
        "password": _STR_OR_NULL,
        "timeout": {"type": "number", "exclusiveMinimum": 0},
        "default_recipients": _STRINGS,
    },
}
SMTP_DEFAULTS: dict[str, Any] = {
    "host": None, "port": 25, "sender": "govsoc@localhost", "starttls": False, "ssl": False,
    "username": None, "password": None, "timeout": 20, "default_recipients": []}

WEBHOOK_SCHEMA = {
    "type": "object", "additionalProperties": False, "required": ["url"],
    "properties": {
        "url": {"type": "string", "pattern": "^https?://"},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}},
        "timeout": {"type": "number", "exclusiveMinimum": 0},
        "verify_tls": {"type": "boolean"},
    },
}
WEBHOOKS_SCHEMA = {"type": "object", "additionalProperties": WEBHOOK_SCHEMA}

FIREWALL_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {
        # the approved output: a directory the firewall host loads rules from
        "output_dir": {"type": "string"},
        "formats": {"type": "array", "items": {"enum": ["nftables", "iptables"]}},
        "table": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_]{0,31}$"},
        "api_url": _STR_OR_NULL,
        "api_token": _STR_OR_NULL,
        "api_timeout": {"type": "number", "exclusiveMinimum": 0},
        "never_block": _STRINGS,
    },
}
FIREWALL_DEFAULTS = {"output_dir": "firewall", "formats": ["nftables", "iptables"],
                     "table": "govsoc", "api_url": None, "api_token": None, "api_timeout": 15,
                     "never_block": ["127.0.0.0/8", "::1/128"]}

SLA_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {sev: {
        "type": "object", "additionalProperties": False,
        "properties": {"acknowledge_minutes": {"type": "integer", "minimum": 1},
                       "resolve_minutes": {"type": "integer", "minimum": 1}},
    } for sev in ("informational", "low", "medium", "high", "critical")},
}
SLA_DEFAULTS = {
    "critical": {"acknowledge_minutes": 15, "resolve_minutes": 240},
    "high": {"acknowledge_minutes": 60, "resolve_minutes": 1440},
    "medium": {"acknowledge_minutes": 240, "resolve_minutes": 4320},
    "low": {"acknowledge_minutes": 1440, "resolve_minutes": 10080},
    "informational": {"acknowledge_minutes": 4320, "resolve_minutes": 20160},
}

UNIT_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {k: {"type": "string"} for k in (
        "name", "name_en", "parent", "address", "contact_name", "contact_title", "phone",
        "email", "recipient", "recipient_en", "system_name", "security_level", "system_owner")},
}
UNIT_DEFAULTS = {
    "name": "Trung tâm Tích hợp dữ liệu tỉnh", "name_en": "Provincial Data Integration Centre",
    "parent": "", "address": "", "contact_name": "", "contact_title": "", "phone": "",
    "email": "",
    "recipient": "Cơ quan điều phối quốc gia về ứng cứu sự cố an toàn thông tin mạng",
    "recipient_en": "National incident response coordinating agency",
    "system_name": "", "security_level": "", "system_owner": "",
}


def _register() -> None:
    if "smtp" in DEFAULTS.get("playbooks", {}):
        return
    register_section("playbooks.smtp", SMTP_SCHEMA, SMTP_DEFAULTS)
    register_section("playbooks.webhooks", WEBHOOKS_SCHEMA, {})
    register_section("playbooks.firewall", FIREWALL_SCHEMA, FIREWALL_DEFAULTS)
    register_section("playbooks.inventory", {
        "type": "object", "additionalProperties": False,
        "properties": {"path": _STR_OR_NULL}}, {"path": None})
    register_section("playbooks.intel", {
        "type": "object", "additionalProperties": False,
        "properties": {"paths": _STRINGS}}, {"paths": []})
    register_section("playbooks.approver_roles", _STRINGS, ["manager", "admin"])
    register_section("playbooks.notify_approvers", {"type": "boolean"}, False)
    register_section("playbooks.yara_rules", _STRINGS, ["builtin"])
    register_section("playbooks.sla", SLA_SCHEMA, SLA_DEFAULTS)
    register_section("reports", {
        "type": "object", "additionalProperties": False,
        "properties": {"unit": UNIT_SCHEMA, "language": {"enum": ["vi", "en"]},
                       "chromium": {"type": "string"}}},
        {"unit": UNIT_DEFAULTS, "language": "vi", "chromium": "chromium"})


_register()


def section(config: Config, key: str) -> dict[str, Any]:
    """A section with its defaults filled in (for configs loaded before registration)."""
    node: Any = DEFAULTS
    for part in key.split("."):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    merged = dict(node) if isinstance(node, dict) else {}
    merged.update(config.section(key))
    return merged
