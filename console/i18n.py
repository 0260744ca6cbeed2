"""Language and time zone per user, and the template filters that show times.

English is the source language of every message; ``translations/vi`` holds the
Vietnamese catalogue (``messages.po`` compiled to ``messages.mo``). A signed-in
user's language and time zone come from their user record; before sign-in the
session remembers the choice, then the browser's preference, then the configured
default.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask, current_app, g, request, session
from flask_babel import format_datetime, get_timezone
from flask_login import current_user

from govsoc.events import parse_timestamp

LANGUAGES: dict[str, str] = {"vi": "Tiếng Việt", "en": "English"}
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"


def select_locale() -> str:
    if current_user.is_authenticated and current_user.record.language in LANGUAGES:
        return str(current_user.record.language)
    chosen = session.get("language")
    if chosen in LANGUAGES:
        return str(chosen)
    default = current_app.config.get("BABEL_DEFAULT_LOCALE", "vi")
    best = request.accept_languages.best_match(list(LANGUAGES)) if request else None
    return best or default


def select_timezone() -> str:
    if current_user.is_authenticated:
        zone = current_user.record.timezone or ""
        if valid_timezone(zone):
            return zone
    return str(current_app.config.get("BABEL_DEFAULT_TIMEZONE") or DEFAULT_TIMEZONE)


def valid_timezone(name: str) -> bool:
    if not name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def current_language() -> str:
    try:
        return select_locale()
    except RuntimeError:
        return "vi"


def _as_datetime(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        return parse_timestamp(value)
    except (ValueError, OverflowError, OSError):
        return None


def viewer_zone() -> ZoneInfo:
    """The viewer's time zone, looked up once per request."""
    zone = getattr(g, "_viewer_zone", None)
    if zone is None:
        zone = g._viewer_zone = ZoneInfo(select_timezone())
    return zone


def show_time(value: Any, pattern: str = "yyyy-MM-dd HH:mm:ss") -> str:
    """A timestamp in the viewer's time zone."""
    moment = _as_datetime(value)
    if moment is None:
        return "" if value is None else str(value)
    if pattern == "yyyy-MM-dd HH:mm:ss":
        # the numeric spelling needs no locale data: skip Babel's formatter, which
        # dominated the time of a page of fifty alerts
        return moment.astimezone(viewer_zone()).strftime("%Y-%m-%d %H:%M:%S")
    return str(format_datetime(moment, pattern))


def iso_time(value: Any) -> str:
    moment = _as_datetime(value)
    return moment.isoformat() if moment else ""


def zone_name() -> str:
    return str(get_timezone())


def install_filters(app: Flask) -> None:
    app.jinja_env.filters["show_time"] = show_time
    app.jinja_env.filters["iso_time"] = iso_time
    app.jinja_env.globals["zone_name"] = zone_name
