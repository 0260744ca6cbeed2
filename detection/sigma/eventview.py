"""The matcher's view of an event: flat field names to lower-cased and raw values.

Computed once per event and shared by every rule that looks at it, so each
field value is lower-cased once, not once per rule. ``text`` joins the
lower-cased values for the literal prefilter; for a Windows event it is
:func:`windows_text` (every event-data value and the message, joined and
lower-cased in one call) plus the named fields outside the event data.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
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


def _parent_walk(lines: list[str], number: int, parent: tuple[str, ...]) -> str:
    """Append the lookups down to ``parent`` and the test that it is an object;
    return the variable holding it."""
    node = "event"
    for depth, step in enumerate(parent):
        var = f"p{number}_{depth}"
        lines.append(f"    {var} = {node}.get({step!r}) if {node}.__class__ is dict else None")
        node = var
    lines.append(f"    if {node}.__class__ is dict:")
    return node


class FieldPlan:
    """Builds the view of only the fields a route's rules name.

    Flattening a whole event costs more than most rules; when no rule of the
    route searches keywords (which look at every field), the view holds just
    the named fields, read straight from their parent objects. The text it
    returns joins only the fields outside ``winlog.event_data``: the event
    data is searched whole through :func:`windows_text`.
    """

    def __init__(self, fields: Iterable[str], raw_only: bool = False,
                 index: Mapping[str, tuple[dict[str, int] | None, dict[str, int] | None]]
                 | None = None) -> None:
        #: field → (value → atom number, file name → atom number): looked up as the
        #: view reads the field, the numbers of the atoms that hold collected in ``hits``
        self.index = dict(index or {})
        groups: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        for name in sorted(set(fields)):
            if name.startswith("winlog.event_data."):
                parent: tuple[str, ...] = ("winlog", "event_data")
                key = name[len("winlog.event_data."):]
            else:
                *head, key = name.split(".")
                parent = tuple(head)
            groups.setdefault(parent, []).append((key, name))
        self.groups = [(parent, tuple(members)) for parent, members in groups.items()]
        self.view = self._generate_raw() if raw_only else self._generate()

    def _generate_raw(self) -> Any:
        """A reader of just the raw values: ``view(event) -> raw``."""
        lines = ["def view(event):", "    raw = {}"]
        for number, (parent, members) in enumerate(self.groups):
            node = _parent_walk(lines, number, parent)
            for key, name in members:
                lines += [f"        v = {node}.get({key!r})",
                          "        if v is not None and v.__class__ is not dict:",
                          f"            raw[{name!r}] = v"]
        lines.append("    return raw")
        namespace: dict[str, Any] = {}
        exec(compile("\n".join(lines), "<field reader>", "exec"), namespace)  # noqa: S102
        return namespace["view"]

    def _generate(self) -> Any:
        """The view as straight-line code: one lookup per field, no loops."""
        lines = ["def view(event):", "    raw = {}", "    low = {}", "    parts = []",
                 "    add = parts.append", "    hits = set()", "    hit = hits.add"]
        namespace: dict[str, Any] = {"_other": _add_other, "_SEP": _SEP,
                                     "_index_other": _index_other}
        for number, (parent, members) in enumerate(self.groups):
            add = "add" if parent != ("winlog", "event_data") else "_skip"
            node = _parent_walk(lines, number, parent)
            for key, name in members:
                equal, file_name = self.index.get(name, (None, None))
                equal_var = file_var = "None"
                lookups: list[str] = []
                if equal:
                    equal_var = f"_eq_{len(namespace)}"
                    namespace[equal_var] = equal
                    lookups += [f"                h = {equal_var}.get(lv)",
                                "                if h is not None:",
                                "                    hit(h)"]
                if file_name:
                    file_var = f"_fn_{len(namespace)}"
                    namespace[file_var] = file_name
                    lookups += [f"                h = {file_var}.get(lv.rpartition('\\\\')[2])",
                                "                if h is not None:",
                                "                    hit(h)"]
                lines += [
                    f"        v = {node}.get({key!r})",
                    "        if v is not None:",
                    f"            raw[{name!r}] = v",
                    "            if v.__class__ is str:",
                    "                lv = v.lower()",
                    f"                low[{name!r}] = lv",
                    *([f"                {add}(lv)"] if add == "add" else []),
                    *lookups,
                    "            else:",
                    f"                _other({name!r}, v, low, "
                    f"{'parts' if add == 'add' else 'None'})",
                ]
                if lookups:
                    lines.append(f"                _index_other(low[{name!r}], {equal_var}, "
                                 f"{file_var}, hits)")
        lines.append("    return low, raw, _SEP.join(parts), hits")
        exec(compile("\n".join(lines), "<field plan>", "exec"), namespace)  # noqa: S102
        return namespace["view"]


def _index_other(value: Any, equal: dict[str, int] | None, file_name: dict[str, int] | None,
                 hits: set[int]) -> None:
    """Index lookups for a value that is not a string (an array: every element)."""
    for element in value if value.__class__ is tuple else (value,):
        if equal is not None and element in equal:
            hits.add(equal[element])
        if file_name is not None:
            number = file_name.get(element.rpartition("\\")[2])
            if number is not None:
                hits.add(number)


def _add_other(name: str, value: Any, low: dict[str, Any], parts: list[str] | None) -> None:
    lv = _lower(value)
    low[name] = lv
    if parts is None:
        return
    if lv.__class__ is tuple:
        parts.extend(lv)
    else:
        parts.append(lv)


def _texts(values: Iterable[Any]) -> Iterator[str]:
    for value in values:
        if value.__class__ is str:
            yield value
        elif value is None:
            continue
        elif value.__class__ is dict:
            yield from _texts(value.values())
        elif value.__class__ is list or value.__class__ is tuple:
            yield from _texts(value)
        else:
            yield _lower_scalar(value)


def windows_text(data: dict[str, Any], message: Any) -> str:
    """The lower-cased text of a Windows event's data values and message."""
    try:
        text = _SEP.join(data.values())
    except TypeError:  # a number or an array among the values
        text = _SEP.join(_texts(data.values()))
    if message.__class__ is str:
        text = text + _SEP + message
    return text.lower()


def keyword_text(event: Mapping[str, Any]) -> str:
    """The lower-cased text of :func:`keyword_view`, built without the dictionaries."""
    winlog = event.get("winlog")
    data = winlog.get("event_data") if winlog.__class__ is dict else None
    if data.__class__ is not dict:
        return build_view(event, frozenset())[2]
    text = _SEP.join(_texts(data.values()))
    message = event.get("message")
    if message.__class__ is str:
        text = text + _SEP + message
    return text.lower()


def keyword_view(event: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], str]:
    """What a keyword (field-less) search looks at: the event's own payload.

    For Windows events that is the event data (every ``winlog.event_data``
    value, which the collector also fills from ``UserData``) and the message;
    the ECS fields derived from them would only repeat those values. Any other
    event is searched whole, including its raw text (``event.original``), since
    a keyword in a web or syslog rule means "anywhere in the line".
    """
    winlog = event.get("winlog")
    data = winlog.get("event_data") if winlog.__class__ is dict else None
    if data.__class__ is not dict:
        return build_view(event, frozenset())
    raw: dict[str, Any] = {}
    _flatten("winlog.event_data.", data, raw)
    message = event.get("message")
    if message is not None:
        raw["message"] = message
    low: dict[str, Any] = {}
    parts: list[str] = []
    for name, value in raw.items():
        if value is None:
            continue
        lv = _lower(value)
        low[name] = lv
        if lv.__class__ is tuple:
            parts.extend(lv)
        else:
            parts.append(lv)
    return low, raw, _SEP.join(parts)
