"""The audit trail of the console: one entry for every change, with who, what,
before and after, when and from which address."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from enum import Enum
from typing import Any

from flask import g, request
from flask_login import current_user

from console.app import get_store
from govsoc.events import utcnow
from store.base import AuditEntry

#: fields never written to the audit trail
_SECRET_FIELDS = {"password_hash", "token_hash", "password"}


def snapshot(value: Any) -> Any:
    """A JSON-ready copy of a record (dataclass, enum, datetime) without secrets."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: snapshot(getattr(value, f.name)) for f in dataclasses.fields(value)
                if f.name not in _SECRET_FIELDS}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): snapshot(v) for k, v in value.items() if k not in _SECRET_FIELDS}
    if isinstance(value, list | tuple):
        return [snapshot(v) for v in value]
    return value


def actor_name() -> str:
    api_user = getattr(g, "api_user", None)
    if api_user is not None:
        return f"{api_user.username} (api)"
    if current_user.is_authenticated:
        return str(current_user.username)
    return "(anonymous)"


def record(action: str, target_type: str, target_id: str, before: Any = None,
           after: Any = None, actor: str | None = None) -> AuditEntry:
    """Append an audit entry for a change made by the current request."""
    entry = AuditEntry(actor=actor or actor_name(), action=action, target_type=target_type,
                       target_id=str(target_id), at=utcnow(), before=snapshot(before),
                       after=snapshot(after), address=request.remote_addr if request else None)
    return get_store().append_audit(entry)


def changed_fields(before: Any, after: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The fields that differ between two records, as (before, after) mappings."""
    old, new = snapshot(before), snapshot(after)
    keys = [k for k in new if old.get(k) != new.get(k) and k not in ("version", "updated_at")]
    return {k: old.get(k) for k in keys}, {k: new.get(k) for k in keys}
