"""A compiled type check of raw JSON events against the field registry.

:func:`govsoc.events.validate_event` walks every key of an event in Python; at
ingest rates that walk costs more than parsing and storing together. This module
compiles the registry once into a tree of msgspec types and checks the raw bytes
of a line in C. The check is only ever *stricter* than the Python walk: when it
answers ``True`` the walk would find nothing, so it can be skipped; when it
answers ``False`` (an unusual but maybe valid shape, a digit string in a number
field, a dotted key, a wrong type) the caller runs the walk, which accepts the
document or names the offending field exactly as before.
"""

from __future__ import annotations

import functools
import operator
from typing import Any

import msgspec
import re2

from govsoc.events import DYNAMIC_FIELDS, FIELDS

#: A key spelled with a dot or an escape anywhere in the document (``"source.ip":``):
#: such documents are expanded into nested form by the Python path first.
_DOTTED_KEY = re2.compile(rb'[.\\](?:[^"\\]|\\.)*"\s*:')

# Python types each registry type accepts, narrowed where the walk is lenient in a
# way a msgspec type cannot say (digit strings in integer fields, booleans in float
# fields): those shapes go the Python way.
_SCALARS: dict[str, tuple[Any, ...]] = {
    "long": (int,),
    "integer": (int,),
    "float": (float,),
    "double": (float,),
    "boolean": (bool,),
    "keyword": (str, int, float, bool),
    "text": (str,),
    "ip": (str,),
    "date": (str, int, float),
}


def _leaf_type(type_: str) -> Any:
    if type_ == "object":
        return dict[str, Any] | list[Any] | None
    if type_ == "flattened":
        return dict[str, Any] | list[Any] | str | None
    scalar = _SCALARS.get(type_)
    if scalar is None:  # a type the walk does not check
        return Any
    one: Any = functools.reduce(operator.or_, scalar)
    return one | list.__class_getitem__(one | None) | None


def _registry_tree() -> dict[str, Any]:
    """Nested names of the registry; a leaf is its type name. A registered object
    field keeps its type even when names below it are registered too, as the walk
    does not look inside it."""
    tree: dict[str, Any] = {}

    def parent_of(parts: list[str]) -> dict[str, Any] | None:
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                return None  # below a registered leaf
        return node

    for name, spec in FIELDS.items():
        parts = name.split(".")
        parent = parent_of(parts)
        if parent is not None:
            parent[parts[-1]] = spec.type
    for family in DYNAMIC_FIELDS:
        parts = family.prefix.rstrip(".").split(".")
        parent = parent_of(parts)
        if parent is not None and parts[-1] not in parent:
            parent[parts[-1]] = ("dynamic", family.type)
    return tree


def _struct(node: dict[str, Any], path: tuple[str, ...], counter: list[int]) -> Any:
    fields: list[tuple[str, Any, Any]] = []
    for key, sub in node.items():
        if isinstance(sub, dict):
            kind: Any = _struct(sub, (*path, key), counter) | None
        elif isinstance(sub, tuple):
            kind = dict.__class_getitem__((str, _leaf_type(sub[1]))) | None
        else:
            kind = _leaf_type(sub)
        counter[0] += 1
        fields.append((f"f{counter[0]}", kind, msgspec.field(default=None, name=key)))
    return msgspec.defstruct("Shape_" + "_".join(path or ("event",)), fields,
                             forbid_unknown_fields=False)


@functools.cache
def _decoder() -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(_struct(_registry_tree(), (), [0]))


def types_certainly_valid(data: bytes) -> bool:
    """True when the JSON object in ``data`` has no dotted keys and every registered
    field in it has a value of its type (what ``validate_event``'s walk checks).

    False means "not known": the Python walk decides."""
    if _DOTTED_KEY.search(data) is not None:
        return False
    try:
        _decoder().decode(data)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return False
    return True
