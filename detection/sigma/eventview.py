"""The matcher's view of an event: flat field names to lower-cased and raw values.

Computed once per event and shared by every rule that looks at it, so each
field value is lower-cased once, not once per rule. ``text`` joins the
lower-cased values for the literal prefilter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: Fields left out of the view unless a rule names them: large, and never what
#: a rule means when it searches keywords.
BULKY_FIELDS = frozenset({"event.original"})

_SEP = "\x00"


def _flatten(prefix: str, obj: Mapping[str, Any], raw: dict[str, Any]) -> None:
    for key, value in obj.items():
        name = prefix + key
        if value.__class__ is dict:
            _flatten(name + ".", value, raw)
        else:
            raw[name] = value


def _lower(value: Any) -> Any:
    cls = value.__class__
    if cls is str:
        return value.lower()
    if cls is bool:
        return "true" if value else "false"
    if cls is list or cls is tuple:
        return tuple(_lower_scalar(v) for v in value)
    return str(value).lower()


def _lower_scalar(value: Any) -> str:
    if value.__class__ is str:
        return str(value.lower())
    if value.__class__ is bool:
        return "true" if value else "false"
    return str(value).lower()


def build_view(event: Mapping[str, Any], skip: frozenset[str] = BULKY_FIELDS
               ) -> tuple[dict[str, Any], dict[str, Any], str]:
    """``(L, R, text)``: lower-cased values, raw values, and the prefilter text."""
    raw: dict[str, Any] = {}
    _flatten("", event, raw)
    low: dict[str, Any] = {}
    parts: list[str] = []
    for name, value in raw.items():
        if value is None or name in skip:
            continue
        if value.__class__ is str:
            v = value.lower()
            low[name] = v
            parts.append(v)
        else:
            lv = _lower(value)
            low[name] = lv
            if lv.__class__ is tuple:
                parts.extend(lv)
            else:
                parts.append(lv)
    return low, raw, _SEP.join(parts)
