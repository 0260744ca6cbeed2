"""Case-insensitive hunts: Lucene ``query_string`` field references moved to ``.ci``.

Sigma matches strings case-insensitively; pySigma's Lucene backends write
``field:*value*`` into ``query_string`` queries, which on a plain ``keyword`` field
are case-sensitive. Every keyword field of the event template has a ``.ci`` twin
with a lowercase normalizer, and both engines normalise wildcard, prefix and term
queries on it, so pointing the field references at the twin makes the cluster
answer as the streaming matcher does. Regular expressions (``field:/re/``) keep
the original field: Sigma regexes are case-sensitive. Fields that are not keyword
fields of the registry (numbers, addresses, unknown names) are left alone.

The rewrite walks the query text token by token: escaped characters (``\\:``) and
quoted phrases are copied as they are, so only real field references change.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from govsoc.events import field_type

_FIELD = re.compile(r"([A-Za-z_@][\w.@-]*):")
_BOUNDARY = frozenset(" \t\n(+-!")


def caseless_field(name: str) -> str:
    if name.endswith((".ci", ".text", ".keyword")):
        return name
    return f"{name}.ci" if field_type(name) == "keyword" else name


def caseless_query_string(text: str) -> str:
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "\\":
            out.append(text[i:i + 2])
            i += 2
            continue
        if char == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(text[i:j + 1])
            i = j + 1
            continue
        if i == 0 or text[i - 1] in _BOUNDARY:
            match = _FIELD.match(text, i)
            if match:
                name = match.group(1)
                regex = match.end() < n and text[match.end()] == "/"
                out.append((name if regex else caseless_field(name)) + ":")
                i = match.end()
                continue
        out.append(char)
        i += 1
    return "".join(out)


def caseless_dsl(query: Any) -> Any:
    """A copy of a query-DSL body with every ``query_string`` made case-insensitive."""
    if isinstance(query, Mapping):
        out: dict[str, Any] = {}
        for key, value in query.items():
            if key == "query_string" and isinstance(value, Mapping):
                rewritten = dict(value)
                if isinstance(rewritten.get("query"), str):
                    rewritten["query"] = caseless_query_string(rewritten["query"])
                if isinstance(rewritten.get("default_field"), str):
                    rewritten["default_field"] = caseless_field(rewritten["default_field"])
                out[key] = rewritten
            else:
                out[key] = caseless_dsl(value)
        return out
    if isinstance(query, list):
        return [caseless_dsl(v) for v in query]
    return query
