"""Look further: a hunt over stored events, and a YARA scan of files on disk."""

from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

from govsoc.errors import ActionError, GovsocError
from govsoc.events import get_field, utcnow
from playbooks.actions.base import Action, ActionContext
from playbooks.settings import section

BUILTIN_YARA = Path(__file__).resolve().parents[2] / "rules" / "yara"


class Hunt(Action):
    name = "hunt"
    description = "Search stored events (field filters, free text) over a recent window."
    params_schema: ClassVar[dict[str, Any]] = {
        "type": "object", "additionalProperties": False,
        "properties": {
            "filters": {"type": "object", "additionalProperties": {
                "anyOf": [{"type": ["string", "number", "boolean"]}, {"type": "array"}]}},
            "datasets": {"type": "array", "items": {"type": "string"}},
            "text": {"type": ["string", "null"]},
            "hours": {"type": "number", "exclusiveMinimum": 0, "maximum": 24 * 366},
            "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
        },
    }

    def _query(self, params: dict[str, Any]) -> Any:
        from store.base import EventQuery

        filters = {}
        for name, value in (params.get("filters") or {}).items():
            values = value if isinstance(value, list) else [value]
            values = [v for v in values if v not in (None, "")]
            if values:
                filters[name] = values
        if not filters and not params.get("text"):
            return None
        return EventQuery(start=utcnow() - timedelta(hours=float(params.get("hours", 24 * 7))),
                          datasets=list(params.get("datasets") or []), filters=filters,
                          text=params.get("text") or None,
                          limit=int(params.get("limit", 50)))

    def plan(self, params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        query = self._query(params)
        if query is None:
            return {"skipped": "no observable to hunt for"}
        return {"would_search": {"filters": query.filters, "datasets": list(query.datasets),
                                 "text": query.text, "since": query.start.isoformat()}}

    def run(self, params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        query = self._query(params)
        if query is None:
            # the alert carried no observable to look for: nothing to search, not an error
            return {"matches": 0, "skipped": "no observable to hunt for"}
        try:
            total = ctx.store.count_events(query)
            page = ctx.store.search_events(query)
        except GovsocError as exc:
            raise ActionError(self.name, f"the search failed: {exc}") from None
        return {
            "matches": total,
            "event_ids": [get_field(e, "event.id") for e in page.items],
            "hosts": sorted({str(h) for e in page.items
                             if (h := get_field(e, "host.name")) is not None}),
            "first": min((str(get_field(e, "@timestamp")) for e in page.items), default=None),
            "last": max((str(get_field(e, "@timestamp")) for e in page.items), default=None),
        }


class SigmaHunt(Action):
    name = "sigma_hunt"
    description = ("Run Sigma rules (the configured ones by default) over the stored events of "
                   "a recent window: the same matcher as streaming detection.")
    params_schema: ClassVar[dict[str, Any]] = {
        "type": "object", "additionalProperties": False,
        "properties": {
            "rules": {"type": "array", "items": {"type": "string"}},
            "rule_ids": {"type": "array", "items": {"type": "string"}},
            "hours": {"type": "number", "exclusiveMinimum": 0, "maximum": 24 * 366},
            "limit": {"type": "integer", "minimum": 1, "maximum": 10000},
        },
    }

    def _rules(self, params: dict[str, Any], ctx: ActionContext) -> list[str]:
        return list(params.get("rules") or ctx.config.get("detection.sigma_rules")
                    or ["builtin"])

    def plan(self, params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        return {"would_hunt_with": self._rules(params, ctx),
                "rule_ids": params.get("rule_ids") or "all",
                "hours": params.get("hours", 24 * 7)}

    def run(self, params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        from detection.sigma.engine import SigmaDetector
        from detection.sigma.hunt import hunt_store

        try:
            detector = SigmaDetector.from_paths(
                self._rules(params, ctx), cache_dir=str(ctx.config.data_path("cache/sigma")))
        except GovsocError as exc:
            raise ActionError(self.name, f"cannot load the Sigma rules: {exc}") from None
        wanted = set(params.get("rule_ids") or [])
        limit = int(params.get("limit", 1000))
        since = utcnow() - timedelta(hours=float(params.get("hours", 24 * 7)))
        by_rule: dict[str, dict[str, Any]] = {}
        hosts: set[str] = set()
        event_ids: list[str] = []
        total = 0
        for detection in hunt_store(detector, ctx.store, since=since):
            if time.monotonic() > ctx.deadline:
                raise ActionError(self.name, f"timed out after {total} detections")
            if wanted and detection.rule_id not in wanted:
                continue
            total += 1
            entry = by_rule.setdefault(detection.rule_id, {
                "rule_id": detection.rule_id, "rule_name": detection.rule_name,
                "level": detection.level, "count": 0})
            entry["count"] += 1
            host = get_field(detection.event, "host.name")
            if host is not None:
                hosts.add(str(host))
            if len(event_ids) < limit:
                event_ids.append(str(get_field(detection.event, "event.id")))
        return {"detections": total, "rules": sorted(by_rule.values(),
                                                     key=lambda r: -r["count"]),
                "hosts": sorted(hosts), "event_ids": event_ids}


def _rule_files(entries: list[str]) -> dict[str, str]:
    files: dict[str, str] = {}
    for entry in entries:
        base = BUILTIN_YARA if entry == "builtin" else Path(entry)
        paths = [base] if base.is_file() else sorted(
            p for p in base.rglob("*") if p.suffix in (".yar", ".yara"))
        for path in paths:
            files[f"r{len(files)}_{path.stem}"] = str(path)
    return files


class YaraScan(Action):
    name = "yara_scan"
    description = "Scan a file or directory with YARA rules (the shipped ones by default)."
    params_schema: ClassVar[dict[str, Any]] = {
        "type": "object", "additionalProperties": False, "required": ["path"],
        "properties": {
            "path": {"type": "string", "minLength": 1},
            "rules": {"type": "array", "items": {"type": "string"}},
            "max_file_mb": {"type": "number", "exclusiveMinimum": 0, "maximum": 1024},
            "max_files": {"type": "integer", "minimum": 1, "maximum": 1000000},
        },
    }

    def plan(self, params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        rules = params.get("rules") or section(ctx.config, "playbooks").get("yara_rules") \
            or ["builtin"]
        return {"would_scan": params["path"], "rule_files": len(_rule_files(list(rules)))}

    def run(self, params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        import yara

        rules_cfg = params.get("rules") or ctx.config.get("playbooks.yara_rules") or ["builtin"]
        files = _rule_files(list(rules_cfg))
        if not files:
            raise ActionError(self.name, f"no YARA rule files found in {rules_cfg}")
        try:
            rules = yara.compile(filepaths=files)
        except yara.Error as exc:
            raise ActionError(self.name, f"the YARA rules do not compile: {exc}") from None
        target = Path(params["path"])
        if not target.exists():
            raise ActionError(self.name, f"{target} does not exist")
        cap = float(params.get("max_file_mb", 64)) * 1024 * 1024
        max_files = int(params.get("max_files", 100000))
        matches: list[dict[str, Any]] = []
        scanned = skipped = 0
        errors: list[str] = []
        walker = [target] if target.is_file() else (
            Path(root) / name for root, _, names in os.walk(target) for name in sorted(names))
        for path in walker:
            if scanned >= max_files:
                errors.append(f"stopped after {max_files} files (max_files)")
                break
            if time.monotonic() > ctx.deadline:
                raise ActionError(self.name, f"timed out after scanning {scanned} files",
                                  retryable=False)
            try:
                if not path.is_file() or path.stat().st_size > cap:
                    skipped += 1
                    continue
                found = rules.match(str(path), timeout=max(1, int(ctx.remaining(60))))
            except (yara.Error, OSError) as exc:
                errors.append(f"{path}: {exc}")
                continue
            scanned += 1
            for match in found:
                matches.append({"file": str(path), "rule": match.rule,
                                "tags": list(match.tags), "meta": dict(match.meta)})
        return {"scanned": scanned, "skipped": skipped, "matches": matches,
                "matched_files": sorted({m["file"] for m in matches}), "errors": errors[:50]}
