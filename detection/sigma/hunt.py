"""Hunting: the same Sigma rules over history instead of the live stream.

- over files, without a store (offline triage, as Chainsaw/Hayabusa/Zircolite
  do): EVTX through the EVTX collector, JSON/JSON-lines exports through the
  Windows-JSON/ECS reader, text logs through their line parsers;
- over the SQLite store: a scan of stored events with the streaming matcher;
- over Elasticsearch/OpenSearch: each rule converted by pySigma's Lucene
  backend (query DSL, ``dsl_lucene``) through the same mapping pipeline, the
  routing added as a filter, run by the store's search client.

Every detection is the rule (id, name, level, ATT&CK tags) and the matched
event, with ``log.file.path`` when it came from a file.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations.base import DetectionItemTransformation
from sigma.rule import SigmaDetectionItem
from sigma.types import SigmaCasedString, SigmaNumber, SigmaString, SigmaTimestampPart

from collectors.base import Batch
from detection.sigma.engine import SigmaDetector
from detection.sigma.routing import RouteSpec, audit_route, route_for
from govsoc.errors import GovsocError
from govsoc.events import Event, field_type, get_field
from store.base import EventQuery, Store

log = logging.getLogger("govsoc.detection.sigma")

#: Wildcards above which a rule's query is not sent to the cluster as it is (SigmaHQ's
#: vulnerable-driver rule, 4,432 ``*hash*`` terms, takes a 1 GiB node down).
MAX_QUERY_WILDCARDS = 1000

#: File name hints → log kind (see collectors.logformats.FORMATS)
KIND_HINTS = (("auth", "auth"), ("secure", "auth"), ("audit", "auditd"), ("iis", "iis"),
              ("u_ex", "iis"), ("access", "access"), ("error", "apache-error"),
              ("syslog", "syslog"), ("messages", "syslog"))


@dataclass
class Detection:
    """One rule matching one event."""

    rule_id: str
    rule_name: str
    level: str
    tags: list[str]
    event: Event
    path: str | None = None

    def as_row(self) -> dict[str, Any]:
        """The JSON line: the rule, its level and tags, and the matched event (ECS names)."""
        row: dict[str, Any] = {
            "@timestamp": self.event.get("@timestamp"),
            "rule": {"id": self.rule_id, "name": self.rule_name, "level": self.level},
            "tags": self.tags,
            "event": self.event,
        }
        path = self.path or get_field(self.event, "log.file.path")
        if path:
            row["log"] = {"file": {"path": path}}
        return row


def guess_kind(path: Path) -> str:
    name = path.name.lower()
    for hint, kind in KIND_HINTS:
        if hint in name:
            return kind
    return "syslog"


def read_any(path: Path, kind: str | None = None) -> Iterator[Batch]:
    """Batches of events from one file of any kind govsoc reads."""
    suffix = path.suffix.lower()
    if suffix == ".evtx":
        from collectors.evtx import read_evtx

        yield from read_evtx(path)
    elif suffix in (".json", ".jsonl", ".ndjson", ".zip"):
        from collectors.winlog_json import read_winlog_json

        yield from read_winlog_json(path)
    else:
        from collectors.logformats import read_log_file

        yield from read_log_file(str(path), kind or guess_kind(path))


#: Files a directory walk picks up (a file named explicitly is always read).
HUNT_SUFFIXES = frozenset({".evtx", ".json", ".jsonl", ".ndjson", ".log", ".txt"})


def expand_paths(paths: Iterable[str | Path]) -> Iterator[Path]:
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*")
                              if p.is_file() and p.suffix.lower() in HUNT_SUFFIXES)
        elif path.exists():
            yield path
        else:
            raise GovsocError(f"{path}: no such file or directory")


def _detections(detector: SigmaDetector, events: Iterable[Event],
                path: str | None) -> Iterator[Detection]:
    for event, hits in detector.iter_matches(events):
        for n in hits:
            rule = detector.rules[n]
            yield Detection(rule.rule_id, rule.title, rule.level, list(rule.tags), event, path)


def hunt_files(detector: SigmaDetector, paths: Iterable[str | Path], *, kind: str | None = None,
               since: datetime | None = None,
               rejected: list[Any] | None = None) -> Iterator[Detection]:
    """Detections over files (directories walked); bad records go to ``rejected``."""
    for path in expand_paths(paths):
        for batch in read_any(path, kind):
            if rejected is not None:
                rejected.extend(batch.rejected)
            events = batch.events
            if since is not None:
                events = [e for e in events if _after(e, since)]
            yield from _detections(detector, events, str(path))


def _after(event: Event, since: datetime) -> bool:
    from govsoc.events import parse_timestamp

    try:
        return parse_timestamp(event.get("@timestamp")) >= since
    except (ValueError, TypeError):
        return True


def hunt_store(detector: SigmaDetector, store: Store, *, since: datetime | None = None,
               until: datetime | None = None, page_size: int = 2000) -> Iterator[Detection]:
    """Detections over stored events: query DSL on a cluster, a matcher scan on SQLite."""
    if store.engine in ("elasticsearch", "opensearch") and hasattr(store, "search_dsl"):
        yield from hunt_cluster(detector, store, since=since, until=until)
        return
    datasets = sorted(_datasets(detector))
    after: str | None = None
    while True:
        page = store.search_events(EventQuery(start=since, end=until, datasets=datasets,
                                              limit=page_size, after=after, descending=False))
        yield from _detections(detector, page.items, None)
        if not page.next_cursor:
            return
        after = page.next_cursor


def _datasets(detector: SigmaDetector) -> set[str]:
    """Datasets the rules can see; empty when some rule sees Windows or everything."""
    out: set[str] = set()
    for spec in detector.specs:
        if spec.everything or spec.windows:
            return set()
        out |= spec.datasets
    return out


@dataclass
class CaseInsensitiveFields(DetectionItemTransformation):
    """String tests on keyword fields go to their ``.ci`` twin (lower-case normalizer,
    see store.elastic.mappings) with lower-cased values: Sigma compares strings
    case-insensitively, a keyword field does not."""

    def apply_detection_item(self, detection_item: SigmaDetectionItem) -> None:
        name = detection_item.field
        if not name or name.endswith(".ci") or field_type(name) != "keyword":
            return None
        values = detection_item.value
        if not values or not all(
                (isinstance(v, SigmaString) and not isinstance(v, SigmaCasedString))
                or (isinstance(v, SigmaNumber) and not isinstance(v, SigmaTimestampPart))
                for v in values):
            return None
        detection_item.field = name + ".ci"
        detection_item.value = [v.lower() if isinstance(v, SigmaString) else v for v in values]
        return None


def cluster_pipeline() -> ProcessingPipeline:
    """The mapping pipeline, then case-insensitive keyword matching for the cluster."""
    from detection.sigma.mapping import mapping_pipeline

    pipeline = mapping_pipeline()
    pipeline.items.append(ProcessingItem(identifier="govsoc_case_insensitive",
                                         transformation=CaseInsensitiveFields()))
    return pipeline


def rule_queries(detector: SigmaDetector, backend_name: str = "elasticsearch"
                 ) -> list[tuple[int, dict[str, Any]]]:
    """Each rule as an Elasticsearch/OpenSearch query (pySigma's Lucene backend, DSL
    output) with its routing as a filter: ``(rule number, query)``."""
    from sigma.backends.elasticsearch import LuceneBackend
    from sigma.backends.opensearch import OpensearchLuceneBackend

    from detection.sigma.loader import parse_rule_text

    backend_class: Any = OpensearchLuceneBackend if backend_name == "opensearch" \
        else LuceneBackend
    out: list[tuple[int, dict[str, Any]]] = []
    texts: dict[str, str] = {}
    for n, rule in enumerate(detector.rules):
        try:
            text = texts.setdefault(rule.path, Path(rule.path).read_text(encoding="utf-8"))
        except OSError as exc:
            log.warning("cannot reread %s for a cluster hunt: %s", rule.path, exc)
            continue
        for parsed in parse_rule_text(text, rule.path).rules:
            if str(parsed.id or parsed.title) != rule.rule_id:
                continue
            if "_regex(" in rule.source or "_cidr(" in rule.source:
                # Lucene regular expressions are anchored and lack \s, \d, look-arounds,
                # and a CIDR cannot be tested on a keyword copy of an address:
                # the cluster selects the rule's route, the matcher decides
                out.append((n, _with_route({"query": {"match_all": {}}}, detector, n)))
                continue
            backend = backend_class(processing_pipeline=cluster_pipeline())
            try:
                (query,) = backend.convert_rule(parsed, "dsl_lucene")
            except Exception as exc:
                log.warning("rule %s cannot become a query: %s", rule.rule_id, exc)
                continue
            if _has_keywords(parsed) or json.dumps(query).count("*") > MAX_QUERY_WILDCARDS:
                # a value without a field is searched in every mapped field, and
                # thousands of *value* wildcards (hash and emoji lists) exhaust a node's
                # heap: for those the cluster selects the route, the matcher decides
                out.append((n, _with_route({"query": {"match_all": {}}}, detector, n)))
                continue
            audit = audit_route(parsed.logsource.product, parsed.logsource.category)
            if audit is None:
                out.append((n, _with_route(query, detector, n)))
                continue
            # Security audit events (4688) carry the category under other field names:
            # the rule as pySigma's windows_audit pipeline reads it, on their route
            audit_q = _audit_query(text, rule.path, parsed, backend_class)
            own = _spec(detector, n).without(audit)
            out.append((n, {"query": {"bool": {"should": [
                _routed(query, own)["query"], _routed(audit_q, audit)["query"]],
                "minimum_should_match": 1, "filter": []}}}))
    return out


def _has_keywords(rule: Any) -> bool:
    """True when a detection of the rule tests values without a field (keywords)."""
    from sigma.rule import SigmaDetection

    def walk(item: Any) -> bool:
        if isinstance(item, SigmaDetection):
            return any(walk(sub) for sub in item.detection_items)
        return isinstance(item, SigmaDetectionItem) and item.field is None

    return any(walk(d) for d in rule.detection.detections.values())


def _audit_query(text: str, path: str, parsed: Any, backend_class: Any) -> dict[str, Any]:
    """The rule's query through pySigma's windows_audit pipeline (the field names of
    Security audit events)."""
    from sigma.pipelines.windows.windows import windows_audit_pipeline

    from detection.sigma.loader import parse_rule_text

    # pySigma's pipelines change the rule they convert: a fresh copy of it
    again = next(r for r in parse_rule_text(text, path).rules
                 if str(r.id or r.title) == str(parsed.id or parsed.title))
    backend = backend_class(processing_pipeline=windows_audit_pipeline() + cluster_pipeline())
    try:
        (query,) = backend.convert_rule(again, "dsl_lucene")
    except Exception as exc:  # the audit events' route alone: the matcher decides
        log.warning("rule %s cannot become an audit-event query: %s", parsed.id, exc)
        query = {"query": {"match_all": {}}}
    return query


def _spec(detector: SigmaDetector, n: int) -> RouteSpec:
    rule = detector.rules[n]
    return route_for(rule.product, rule.category, rule.service, rule.event_ids)


def _with_route(query: dict[str, Any], detector: SigmaDetector, n: int) -> dict[str, Any]:
    return _routed(query, _spec(detector, n))


def _routed(query: dict[str, Any], spec: RouteSpec) -> dict[str, Any]:
    filters: list[dict[str, Any]] = []
    should: list[dict[str, Any]] = []
    for channel, ids in spec.windows:
        must: list[dict[str, Any]] = []
        if channel:
            must.append({"term": {"winlog.channel": {"value": channel,
                                                      "case_insensitive": True}}})
        if ids:
            must.append({"terms": {"winlog.event_id": sorted(ids)}})
        should.append({"bool": {"must": must}})
    if spec.datasets:
        should.append({"terms": {"event.dataset": sorted(spec.datasets)}})
    if should:
        filters.append({"bool": {"should": should, "minimum_should_match": 1}})
    inner = query.get("query", query)
    return {"query": {"bool": {"must": [inner], "filter": filters}}}


def hunt_cluster(detector: SigmaDetector, store: Any, *, since: datetime | None = None,
                 until: datetime | None = None) -> Iterator[Detection]:
    """Run each rule's query DSL on the cluster (the store's ``search_dsl``).

    Rules whose queries are the same (those the cluster can only narrow to their
    route: keyword, regular-expression and CIDR rules of one logsource) share one
    search, so the route's events are fetched and matched once for all of them.
    Detections come query by query (in the order of each query's first rule),
    oldest event first.
    """
    backend = "opensearch" if store.engine == "opensearch" else "elasticsearch"
    groups: dict[str, tuple[dict[str, Any], list[int]]] = {}
    for n, query in rule_queries(detector, backend):
        if since or until:
            span: dict[str, Any] = {}
            if since:
                span["gte"] = since.isoformat()
            if until:
                span["lt"] = until.isoformat()
            query["query"]["bool"]["filter"].append({"range": {"@timestamp": span}})
        key = json.dumps(query, sort_keys=True)
        groups.setdefault(key, (query, []))[1].append(n)
    rules = detector.rules
    queries = [query for query, _ in groups.values()]
    wanted = [set(numbers) for _, numbers in groups.values()]
    for number, event in store.search_dsl_each(queries):
        # the cluster's analysis of a field may be looser than Sigma's (a text field
        # matches words); the matcher has the last word, so a hunt never reports what
        # the stream would not
        for n in detector.match_numbers(event):
            if n in wanted[number]:
                rule = rules[n]
                yield Detection(rule.rule_id, rule.title, rule.level, list(rule.tags), event)
