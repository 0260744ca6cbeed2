"""The OpenAPI 3.1 description of the JSON API (``/api/v1/openapi.json``).

Schemas of the records are generated from the Store contract's dataclasses, so the
description follows the records when a field is added.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from datetime import datetime
from enum import Enum
from functools import cache
from typing import Any

from store.base import ALERT_SORTS, Alert, AlertStatus, Case, CaseStatus, Comment, Severity

API_VERSION = "1.0.0"


def _schema_of(annotation: Any) -> dict[str, Any]:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        parts = [_schema_of(a) for a in args if a is not type(None)]
        schema = parts[0] if len(parts) == 1 else {"anyOf": parts}
        if type(None) in args:
            schema = {"anyOf": [schema, {"type": "null"}]}
        return schema
    if origin is list:
        return {"type": "array", "items": _schema_of(args[0]) if args else {}}
    if origin is dict:
        return {"type": "object"}
    if isinstance(annotation, type):
        if issubclass(annotation, Enum):
            return {"type": "string", "enum": [m.value for m in annotation]}
        if issubclass(annotation, bool):
            return {"type": "boolean"}
        if issubclass(annotation, int):
            return {"type": "integer"}
        if issubclass(annotation, float):
            return {"type": "number"}
        if issubclass(annotation, str):
            return {"type": "string"}
        if issubclass(annotation, datetime):
            return {"type": "string", "format": "date-time"}
        if dataclasses.is_dataclass(annotation):
            return {"$ref": f"#/components/schemas/{annotation.__name__}"}
    return {}


def _record_schema(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    props = {f.name: _schema_of(hints[f.name]) for f in dataclasses.fields(cls)
             if f.name not in ("password_hash", "token_hash")}
    required = [f.name for f in dataclasses.fields(cls)
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    return {"type": "object", "properties": props, "required": required}


def _param(name: str, where: str, description: str, schema: dict[str, Any] | None = None,
           required: bool = False, many: bool = False) -> dict[str, Any]:
    base = schema or {"type": "string"}
    return {"name": name, "in": where, "description": description, "required": required,
            "schema": {"type": "array", "items": base} if many else base,
            **({"style": "form", "explode": True} if many else {})}


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _page(item: str) -> dict[str, Any]:
    return {"type": "object", "properties": {
        "items": {"type": "array", "items": _ref(item) if item else {"type": "object"}},
        "next_cursor": {"type": ["string", "null"],
                        "description": "pass as `after` for the next page"}}}


_ERRORS = {str(code): {"description": text, **_json(_ref("Error"))} for code, text in (
    (400, "Bad request (a filter or body field is invalid; the message names it)"),
    (401, "Missing, unknown, revoked or expired API token"),
    (403, "The token's user lacks the permission"), (404, "No such record"))}

_ALERT_FILTERS = [
    _param("status", "query", "Alert status, or `open` for every open status",
           {"type": "string", "enum": [*(s.value for s in AlertStatus), "open"]}, many=True),
    _param("severity", "query", "Severity", {"type": "string",
                                             "enum": [s.value for s in Severity]}, many=True),
    _param("rule", "query", "Rule id", many=True),
    _param("host", "query", "Host name", many=True),
    _param("user", "query", "User name", many=True),
    _param("source_ip", "query", "Source IP address", many=True),
    _param("destination_ip", "query", "Destination IP address", many=True),
    _param("assignee", "query", "Assignee; `(none)` for unassigned", many=True),
    _param("source", "query", "Detection source (sigma, yara...)", many=True),
    _param("start", "query", "First seen at or after (ISO 8601)",
           {"type": "string", "format": "date-time"}),
    _param("end", "query", "First seen before (ISO 8601)",
           {"type": "string", "format": "date-time"}),
    _param("q", "query", "Free text"),
]


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document (built once)."""
    schemas: dict[str, Any] = {"Error": {"type": "object", "properties": {
        "error": {"type": "string"}, "status": {"type": "integer"},
        "current": {"description": "on 409: the record as it is now"}},
        "required": ["error", "status"]}}
    from store.base import CaseTask, Observable

    for cls in (Alert, Case, CaseTask, Observable, Comment):
        schemas[cls.__name__] = _record_schema(cls)
    schemas["AlertPatch"] = {"type": "object", "required": ["version"], "properties": {
        "version": {"type": "string", "description": "the version of the alert you read"},
        "status": {"type": "string", "enum": [s.value for s in AlertStatus]},
        "assignee": {"type": ["string", "null"], "description": "null to unassign"},
        "severity": {"type": "string", "enum": [s.value for s in Severity]},
        "resolution": {"type": "string",
                       "description": "reason; required when closing as false_positive"}}}
    schemas["NewCase"] = {"type": "object", "required": ["title"], "properties": {
        "title": {"type": "string"}, "description": {"type": "string"},
        "severity": {"type": "string", "enum": [s.value for s in Severity]},
        "tlp": {"type": "string", "enum": ["clear", "green", "amber", "amber+strict", "red"]},
        "alert_ids": {"type": "array", "items": {"type": "string"}}}}
    alert_id = _param("alert_id", "path", "Alert id", required=True)
    case_id = _param("case_id", "path", "Case id", required=True)
    paging = [_param("after", "query", "Cursor from the previous page's `next_cursor`"),
              _param("limit", "query", "Page size", {"type": "integer", "minimum": 1,
                                                      "maximum": 200})]
    paths: dict[str, Any] = {
        "/alerts": {"get": {
            "summary": "List alerts (keyset pagination)", "operationId": "listAlerts",
            "tags": ["alerts"],
            "parameters": [*_ALERT_FILTERS, *paging,
                           _param("sort", "query", "Sort key",
                                  {"type": "string", "enum": list(ALERT_SORTS)}),
                           _param("order", "query", "Order",
                                  {"type": "string", "enum": ["asc", "desc"]})],
            "responses": {"200": {"description": "A page of alerts", **_json(_page("Alert"))},
                          **_ERRORS}}},
        "/alerts/counts": {"get": {
            "summary": "Count alerts grouped by a key", "operationId": "countAlerts",
            "tags": ["alerts"],
            "parameters": [*_ALERT_FILTERS, _param(
                "by", "query", "Grouping", {"type": "string", "enum": [
                    "status", "severity", "rule_id", "host", "source"]})],
            "responses": {"200": {"description": "Counts by value", **_json(
                {"type": "object", "additionalProperties": {"type": "integer"}})}, **_ERRORS}}},
        "/alerts/{alert_id}": {
            "get": {"summary": "One alert", "operationId": "getAlert", "tags": ["alerts"],
                    "parameters": [alert_id],
                    "responses": {"200": {"description": "The alert", **_json(_ref("Alert"))},
                                  **_ERRORS}},
            "patch": {"summary": "Triage an alert (status, assignee, severity, resolution)",
                      "operationId": "updateAlert", "tags": ["alerts"],
                      "parameters": [alert_id],
                      "requestBody": {"required": True, **_json(_ref("AlertPatch"))},
                      "responses": {
                          "200": {"description": "The updated alert", **_json(_ref("Alert"))},
                          "409": {"description": "The alert changed since `version`; "
                                                 "`current` holds it as it is now",
                                  **_json(_ref("Error"))},
                          "422": {"description": "The workflow does not allow the change",
                                  **_json(_ref("Error"))}, **_ERRORS}}},
        "/alerts/{alert_id}/comments": {
            "get": {"summary": "Comments on an alert, oldest first",
                    "operationId": "listAlertComments", "tags": ["alerts"],
                    "parameters": [alert_id],
                    "responses": {"200": {"description": "Comments",
                                          **_json(_page("Comment"))}, **_ERRORS}},
            "post": {"summary": "Comment on an alert", "operationId": "addAlertComment",
                     "tags": ["alerts"], "parameters": [alert_id],
                     "requestBody": {"required": True, **_json({
                         "type": "object", "required": ["body"],
                         "properties": {"body": {"type": "string"}}})},
                     "responses": {"201": {"description": "The comment",
                                           **_json(_ref("Comment"))}, **_ERRORS}}},
        "/cases": {
            "get": {"summary": "List cases, newest first", "operationId": "listCases",
                    "tags": ["cases"],
                    "parameters": [
                        _param("status", "query", "Case status", {
                            "type": "string", "enum": [s.value for s in CaseStatus]}, many=True),
                        _param("severity", "query", "Severity", many=True),
                        _param("assignee", "query", "Assignee", many=True),
                        _param("q", "query", "Free text"), *paging],
                    "responses": {"200": {"description": "A page of cases",
                                          **_json(_page("Case"))}, **_ERRORS}},
            "post": {"summary": "Create a case from alerts", "operationId": "createCase",
                     "tags": ["cases"],
                     "requestBody": {"required": True, **_json(_ref("NewCase"))},
                     "responses": {"201": {"description": "The case", **_json(_ref("Case"))},
                                   **_ERRORS}}},
        "/cases/{case_id}": {"get": {
            "summary": "One case", "operationId": "getCase", "tags": ["cases"],
            "parameters": [case_id],
            "responses": {"200": {"description": "The case", **_json(_ref("Case"))},
                          **_ERRORS}}},
        "/events": {"get": {
            "summary": "Search stored events (ECS documents), newest first",
            "operationId": "searchEvents", "tags": ["events"],
            "parameters": [
                _param("q", "query", "Free text over the text fields"),
                _param("dataset", "query", "event.dataset", many=True),
                _param("start", "query", "@timestamp at or after",
                       {"type": "string", "format": "date-time"}),
                _param("end", "query", "@timestamp before",
                       {"type": "string", "format": "date-time"}),
                {"name": "field.{name}", "in": "query", "required": False,
                 "description": "Exact match on an ECS field, e.g. `field.source.ip=10.0.0.5`",
                 "schema": {"type": "string"}},
                *paging],
            "responses": {"200": {"description": "A page of events", **_json(_page(""))},
                          **_ERRORS}}},
        "/events/count": {"get": {
            "summary": "Count stored events matching a search", "operationId": "countEvents",
            "tags": ["events"],
            "parameters": [_param("q", "query", "Free text"),
                           _param("dataset", "query", "event.dataset", many=True)],
            "responses": {"200": {"description": "The count", **_json({
                "type": "object", "properties": {"count": {"type": "integer"}}})},
                **_ERRORS}}},
        "/whoami": {"get": {
            "summary": "The token's user and role", "operationId": "whoami", "tags": ["auth"],
            "responses": {"200": {"description": "User", **_json({"type": "object"})},
                          **_ERRORS}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "govsoc API", "version": API_VERSION,
                 "description": "Alerts, cases and event search. Authenticate with an API "
                                "token created on the console's account page."},
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearerToken": []}],
        "tags": [{"name": "alerts"}, {"name": "cases"}, {"name": "events"}, {"name": "auth"}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "bearerToken": {"type": "http", "scheme": "bearer",
                            "description": "An API token (gsk_...)"}}},
    }
