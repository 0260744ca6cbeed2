"""How values from events and records are shown: one line per value, JSON for
structures, a short summary of an event. Everything returned is plain text that
the templates escape; nothing here produces markup."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from flask import Flask

from govsoc.events import get_field

#: fields that summarise an event, in order of preference
SUMMARY_FIELDS = ("message", "process.command_line", "dns.question.name", "url.full",
                  "url.original", "file.path", "user_agent.original", "event.action",
                  "event.original")
MAX_SUMMARY = 300


def display_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list) and all(not isinstance(v, dict | list) for v in value):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


def pretty_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2, default=str, sort_keys=True)


def event_summary(event: Mapping[str, Any]) -> str:
    for name in SUMMARY_FIELDS:
        value = get_field(event, name)
        if value:
            text = display_value(value)
            return text if len(text) <= MAX_SUMMARY else text[:MAX_SUMMARY] + "…"
    return ""


def install_filters(app: Flask) -> None:
    app.jinja_env.filters["display_value"] = display_value
    app.jinja_env.filters["pretty_json"] = pretty_json
    app.jinja_env.filters["event_summary"] = event_summary
