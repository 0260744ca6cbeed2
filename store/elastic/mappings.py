"""Index layout and mappings of the search-cluster store, generated from the field registry.

Index names (``P`` is ``store.index_prefix``):

- ``P-events-<dataset>-<YYYY.MM>`` (or ``-<YYYY.MM.DD>`` with ``store.index_period:
  day``): events, one index per dataset and period of ``@timestamp``, all shaped
  by the composable template ``P-events``. An event's index is a function of its
  own fields, so a redelivered event lands where it was first stored and
  ``op_type=create`` on ``_id = event.id`` turns it into a duplicate.
- ``P-alerts``, ``P-alert-groups`` (group key → open alert, read in real time),
  ``P-cases``, ``P-comments``, ``P-users``, ``P-tokens``, ``P-audit``,
  ``P-checkpoints``, ``P-suppressions``, ``P-dead-letters``, ``P-settings``,
  ``P-state`` (schema version, event sequence counter).

The event template maps every registry field by its type: ``keyword`` (with
``ignore_above`` so one huge value cannot reject an event), ``ip``, ``date``,
``long``... ``@timestamp`` is ``date_nanos`` so the microseconds of the event
model order events as the SQLite engine does. Fields with ``text=True`` get a
``.text`` sub-field (standard analyzer) for free-text search, and every keyword
field a ``.ci`` sub-field with a lowercase normalizer for case-insensitive
matching (Sigma's default) — a normalizer needs only the server's own
``lowercase`` filter, not the ``wildcard`` field type OpenSearch lacks nor the
analysis-common module a bare Elasticsearch node lacks. ``flattened`` registry
fields become ``flattened`` on Elasticsearch and ``flat_object`` on OpenSearch.
"""

from __future__ import annotations

from typing import Any

from govsoc.events import DYNAMIC_FIELDS, FIELDS, FieldType

#: Longest keyword value indexed; longer values stay in ``_source`` only.
KEYWORD_IGNORE_ABOVE = 8191
#: Lowercase normalizer for the ``.ci`` sub-fields.
NORMALIZER = "govsoc_lowercase"
#: The store's own per-event sequence (storage order for ``tail_events``).
SEQ_FIELD = "govsoc.seq"

EVENT_TEXT_FIELDS: tuple[str, ...] = tuple(
    (f.name if f.type == "text" else f"{f.name}.text") for f in FIELDS.values() if f.text)

CONFIG_INDICES = ("alerts", "alert-groups", "cases", "comments", "users", "tokens", "audit",
                  "checkpoints", "suppressions", "dead-letters", "settings", "state")


def _keyword(text: bool) -> dict[str, Any]:
    # the twin is only searched (term, prefix, wildcard), never sorted or aggregated:
    # no doc values to build at ingest
    sub: dict[str, Any] = {"ci": {"type": "keyword", "normalizer": NORMALIZER,
                                  "ignore_above": KEYWORD_IGNORE_ABOVE, "doc_values": False}}
    if text:
        sub["text"] = {"type": "text"}
    return {"type": "keyword", "ignore_above": KEYWORD_IGNORE_ABOVE, "fields": sub}


def field_mapping(type_: FieldType, engine: str, *, text: bool = False) -> dict[str, Any]:
    """The mapping of one registry field on ``engine``."""
    if type_ == "keyword":
        return _keyword(text)
    if type_ == "text":
        return {"type": "text", "fields": {"keyword": {"type": "keyword",
                                                       "ignore_above": KEYWORD_IGNORE_ABOVE}}}
    if type_ == "flattened":
        return {"type": "flattened"} if engine == "elasticsearch" else {"type": "flat_object"}
    if type_ == "object":
        return {"type": "object"}
    return {"type": type_}


def _insert(properties: dict[str, Any], dotted: str, mapping: dict[str, Any]) -> None:
    parts = dotted.split(".")
    node = properties
    for part in parts[:-1]:
        child = node.setdefault(part, {"properties": {}})
        if "properties" not in child:
            # a field registered both as a leaf and as a parent (dns.answers): keep it an
            # object, its leaf mapping would conflict with its children
            child.clear()
            child["properties"] = {}
        node = child["properties"]
    leaf = parts[-1]
    if leaf in node and "properties" in node[leaf]:
        return
    node[leaf] = mapping


def event_properties(engine: str) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for f in sorted(FIELDS.values(), key=lambda f: f.name.count(".")):
        if f.name == "@timestamp":
            props["@timestamp"] = {"type": "date_nanos"}
            continue
        _insert(props, f.name, field_mapping(f.type, engine, text=f.text))
    _insert(props, SEQ_FIELD, {"type": "long"})
    return props


def event_dynamic_templates(engine: str) -> list[dict[str, Any]]:
    templates: list[dict[str, Any]] = []
    for family in DYNAMIC_FIELDS:
        templates.append({family.prefix.rstrip(".").replace(".", "_"): {
            "path_match": family.prefix + "*", "match_mapping_type": "string",
            "mapping": field_mapping(family.type, engine)}})
    # any other string from a source is a keyword (with its case-insensitive twin)
    templates.append({"strings": {"match_mapping_type": "string",
                                  "mapping": _keyword(False)}})
    return templates


def analysis() -> dict[str, Any]:
    return {"normalizer": {NORMALIZER: {"type": "custom", "filter": ["lowercase"]}}}


def event_template(prefix: str, engine: str, *, shards: int, replicas: int,
                   refresh_interval: str, lifecycle: dict[str, Any] | None = None
                   ) -> dict[str, Any]:
    """The composable index template for ``P-events-*``.

    ``refresh_interval: auto`` leaves the setting out: the engine then refreshes a
    shard every second while it is searched and not at all while it is only
    written (a search of an idle shard refreshes it first), so a sensor that only
    ingests builds few large segments instead of one small segment a second.
    """
    settings: dict[str, Any] = {
        "number_of_shards": shards, "number_of_replicas": replicas,
        "mapping": {"total_fields": {"limit": 10000}, "ignore_malformed": True},
        "analysis": analysis(),
    }
    if refresh_interval != "auto":
        settings["refresh_interval"] = refresh_interval
    if lifecycle:
        settings.update(lifecycle)
    return {
        "index_patterns": [f"{prefix}-events-*"],
        "priority": 200,
        "template": {
            "settings": settings,
            "mappings": {"date_detection": False,
                         "dynamic_templates": event_dynamic_templates(engine),
                         "properties": event_properties(engine)},
        },
        "_meta": {"managed_by": "govsoc", "what": "events, one index per dataset and period"},
    }


_KW = {"type": "keyword"}
_LONG = {"type": "long"}
_BOOL = {"type": "boolean"}
_OFF = {"type": "object", "enabled": False}
_CI_TEXT = {"type": "keyword", "ignore_above": 32000}

#: Mappings of the other indices (timestamps as epoch microseconds, like SQLite).
CONFIG_MAPPINGS: dict[str, dict[str, Any]] = {
    "alerts": {
        "id": _KW, "rule_id": _KW, "rule_name": _KW, "severity": _KW, "severity_rank": _LONG,
        "status": _KW, "group_key": _KW, "first_seen": _LONG, "last_seen": _LONG,
        "created_at": _LONG, "updated_at": _LONG, "source": _KW, "count": _LONG,
        "assignee": _KW, "dataset": _KW, "host": _KW, "user": _KW, "source_ip": _KW,
        "destination_ip": _KW, "case_id": _KW, "resolution": _KW,
        "acknowledged_at": _LONG, "resolved_at": _LONG, "search_text": _CI_TEXT,
        "event_ids": _KW, "tags": _KW, "description": _OFF, "fields": _OFF,
        "matched_fields": _OFF,
    },
    "alert-groups": {"group_key": _KW, "alert_id": _KW},
    "cases": {
        "id": _KW, "title": _KW, "description": _OFF, "severity": _KW, "tlp": _KW,
        "status": _KW, "created_by": _KW, "created_at": _LONG, "updated_at": _LONG,
        "assignee": _KW, "closed_at": _LONG, "alert_ids": _KW, "tags": _KW,
        "search_text": _CI_TEXT, "tasks": _OFF, "observables": _OFF, "extra": _OFF,
    },
    "comments": {"id": _KW, "target_type": _KW, "target_id": _KW, "author": _KW,
                 "body": _OFF, "created_at": _LONG},
    "users": {"username": _KW, "doc": _OFF},
    "tokens": {"kind": _KW, "id": _KW, "username": _KW, "token_hash": _KW,
               "created_at": _LONG, "doc": _OFF},
    "audit": {"id": _KW, "recorded": _LONG, "at": _LONG, "actor": _KW, "action": _KW,
              "target_type": _KW, "target_id": _KW, "before": _OFF, "after": _OFF,
              "address": _KW},
    "checkpoints": {"name": _KW, "state": _OFF, "updated_at": _LONG},
    "suppressions": {"id": _KW, "rule_id": _KW, "field": _KW, "value": _KW, "reason": _OFF,
                     "created_by": _KW, "created_at": _LONG, "expires_at": _LONG},
    "dead-letters": {"id": _KW, "recorded": _LONG, "source": _KW, "position": _KW, "reason": _OFF,
                     "original_b64": _OFF, "received": _LONG},
    "settings": {"key": _KW, "value": _OFF},
    "state": {"doc": _OFF},
}


#: Index sort of the indices whose usual listing is newest first: the queue's first
#: page then reads only the top of each segment instead of sorting every match.
INDEX_SORTS: dict[str, tuple[list[str], list[str]]] = {
    "alerts": (["last_seen", "id"], ["desc", "desc"]),
    "audit": (["recorded", "id"], ["desc", "desc"]),
    "dead-letters": (["recorded", "id"], ["desc", "desc"]),
}


def config_index_body(name: str, *, shards: int, replicas: int) -> dict[str, Any]:
    settings: dict[str, Any] = {"number_of_shards": shards, "number_of_replicas": replicas}
    if name in INDEX_SORTS:
        fields, orders = INDEX_SORTS[name]
        settings["sort.field"] = fields
        settings["sort.order"] = orders
    return {"settings": settings,
            "mappings": {"dynamic": False, "properties": CONFIG_MAPPINGS[name]}}
