"""The streaming Sigma detector the ingest pipeline runs on every new batch.

For each event: its routing key (dataset, channel, event id) picks the rules
of its logsource, one flat view of the fields those rules name (lower-cased
values computed once) is built, the prefilter of that route (Aho-Corasick over
literals, dictionary lookups of field values) picks the candidates, and only
those compiled predicates run. Matches become :class:`store.base.NewAlert` drafts
(rule id, title, level → severity, ATT&CK tags, the event id and fields, a
group key the store folds repeats by); suppressions (rule + field=value) are
honoured; matches of rules used by correlation rules feed
:mod:`detection.sigma.correlation`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from detection.sigma.compiler import KEYWORD_SCOPE, CompiledRule, Predicate
from detection.sigma.eventview import (
    _SEP,
    BULKY_FIELDS,
    FieldPlan,
    build_view,
    keyword_text,
    keyword_view,
    windows_text,
)
from detection.sigma.prefilter import Prefilter
from detection.sigma.routing import EventKey, RouteSpec, field_aliases, route_for
from detection.sigma.ruleset import RuleSet
from govsoc.events import Event, get_field, parse_timestamp, utcnow
from store.base import NewAlert, Severity, Suppression

log = logging.getLogger("govsoc.detection.sigma")

#: Fields every alert carries when the event has them (besides those the rule tested).
ALERT_FIELDS = (
    "event.dataset", "event.code", "event.action", "winlog.channel", "winlog.event_id",
    "winlog.computer_name", "host.name", "user.name", "user.domain", "source.ip",
    "source.port", "destination.ip", "destination.port", "process.executable",
    "process.command_line", "process.parent.executable", "file.path", "url.original",
    "dns.question.name", "log.file.path",
)

#: Fields whose value identifies "the same thing happening again" for folding.
GROUP_FIELDS = ("host.name", "winlog.computer_name", "user.name", "source.ip")


def group_key(rule: CompiledRule, raw: dict[str, Any]) -> str:
    """Repeats of a rule on the same host/user/source fold into one alert."""
    parts = [f"sigma:{rule.rule_id}"]
    host = raw.get("host.name") or raw.get("winlog.computer_name")
    if host:
        parts.append(f"host={str(host).lower()}")
    user = raw.get("user.name")
    if user:
        parts.append(f"user={str(user).lower()}")
    elif raw.get("source.ip"):
        parts.append(f"src={raw['source.ip']}")
    return "|".join(parts)


class _Route:
    """The rules of one routing key: field plan and prefilter."""

    __slots__ = ("aliased", "aliases", "keyword", "plan", "prefilter", "view", "wants_text")

    def __init__(self, prefilter: Prefilter, plan: FieldPlan, keyword: frozenset[int],
                 aliases: tuple[tuple[str, str], ...] = (),
                 aliased: frozenset[int] = frozenset()) -> None:
        self.prefilter = prefilter
        self.plan = plan
        self.view = plan.view
        #: rules searching values without a field (see eventview.keyword_view)
        self.keyword = keyword
        #: whether the prefilter searches the event's text at all
        self.wants_text = prefilter.has_literals
        #: (field a rule names, the event's field standing for it) on audit events
        self.aliases = aliases
        #: the rules that read the event through those aliases
        self.aliased = aliased


def event_key_of(event: Event) -> EventKey:
    """The routing key straight from the nested event."""
    ev = event.get("event")
    dataset = ev.get("dataset") if ev.__class__ is dict else None
    winlog = event.get("winlog")
    if winlog.__class__ is not dict:
        return (dataset, None, None)
    channel = winlog.get("channel")
    eid = winlog.get("event_id")
    return (dataset, channel.lower() if channel.__class__ is str else None,
            None if eid is None else str(eid))


def _event_time(event: Event) -> datetime:
    try:
        return parse_timestamp(event.get("@timestamp"))
    except (ValueError, TypeError):
        return datetime.now(UTC)


class SigmaDetector:
    """Streaming Sigma matcher over ECS events (implements ``detection.base.Detector``)."""

    name = "sigma"

    def __init__(self, ruleset: RuleSet, *, correlate: bool = True) -> None:
        self.ruleset = ruleset
        self.rules: list[CompiledRule] = list(ruleset.rules)
        self.predicates: list[Predicate] = [r.predicate for r in self.rules]
        self.literals = [r.literals for r in self.rules]
        self.atoms = [r.atoms for r in self.rules]
        self.also_atoms = [r.also_atoms for r in self.rules]
        self.specs: list[RouteSpec] = [route_for(r.product, r.category, r.service, r.event_ids)
                                       for r in self.rules]
        self.severities = [Severity.parse(r.level) for r in self.rules]
        self.keyword_rules = [r.keywords for r in self.rules]
        self._routes: dict[EventKey, _Route] = {}
        self._alert_readers: dict[int, Any] = {}
        used = {f for r in self.rules for f in r.fields}
        self.skip = frozenset(f for f in BULKY_FIELDS if f not in used)
        self.suppressions: dict[str, list[tuple[str, str, datetime | None]]] = {}
        #: rule ids switched off in the console (store setting ``rules.disabled``)
        self.disabled: frozenset[str] = frozenset()
        self.errors = 0
        self.correlator: Any = None
        if correlate and ruleset.correlations:
            from detection.sigma.correlation import CorrelationEngine

            self.correlator = CorrelationEngine(ruleset.correlations, self.rules)

    # ------------------------------------------------------------------ matching
    def _route(self, key: EventKey) -> _Route:
        route = self._routes.get(key)
        if route is None:
            members = [i for i, spec in enumerate(self.specs) if spec.accepts(key)]
            keyword = frozenset(i for i in members if self.keyword_rules[i])
            names = [f for i in members for f in self.rules[i].fields]
            aliases: tuple[tuple[str, str], ...] = ()
            aliased: frozenset[int] = frozenset()
            audit = field_aliases(key)
            if audit is not None:
                category, renames = audit
                aliased = frozenset(i for i in members if self.rules[i].product == "windows"
                                    and (self.rules[i].category or "").lower() == category)
                used = set(names)
                aliases = tuple((a, b) for a, b in sorted(renames.items()) if a in used)
                names += [b for _, b in aliases]
                if not aliased:
                    aliases = ()
            prefilter = Prefilter.build(members, self.atoms, self.also_atoms)
            # the view looks field atoms up as it reads the fields; on audit events the
            # aliased fields are looked up by the prefilter itself
            plan = FieldPlan(names, index=None if aliases else prefilter.field_index())
            route = _Route(prefilter, plan, keyword, aliases, aliased)
            if len(self._routes) > 65536:
                self._routes.clear()
            self._routes[key] = route
        return route

    def _evaluate(self, event: Event) -> list[int]:
        key = event_key_of(event)
        route = self._routes.get(key)
        if route is None:
            route = self._route(key)
        low, raw, text, hits = route.view(event)
        if route.wants_text:
            winlog = event.get("winlog")
            data = winlog.get("event_data") if winlog.__class__ is dict else None
            if data.__class__ is dict:
                # the whole event data, which holds every named field of it and
                # every value a keyword rule searches
                text = windows_text(data, event.get("message")) + _SEP + text
            elif route.keyword:
                text = text + _SEP + keyword_text(event)
        if route.aliases:
            return self._evaluate_aliased(event, route, low, raw, text)
        candidates = route.prefilter.candidates_from(text, raw, hits)
        if not candidates:
            return candidates
        out: list[int] = []
        keyword = route.keyword
        if keyword and not keyword.isdisjoint(candidates):
            self._run_keyword([n for n in candidates if n in keyword], low, raw, event, out)
            candidates = [n for n in candidates if n not in keyword]
        self._run_all(candidates, low, raw, event, out)
        if len(out) > 1:
            out.sort()
        return out

    def _run_keyword(self, numbers: list[int], low: dict[str, Any], raw: dict[str, Any],
                     event: Event, out: list[int]) -> None:
        kw_low, kw_raw, _ = keyword_view(event)
        full_low = {**low, **kw_low, KEYWORD_SCOPE: kw_low}
        self._run_all(numbers, full_low, {**raw, **kw_raw}, event, out)

    def _evaluate_aliased(self, event: Event, route: _Route, low: dict[str, Any],
                          raw: dict[str, Any], text: str) -> list[int]:
        """An audit event (Security 4688): the rules of the category it also carries read
        its fields under their Sigma names (``Image`` is ``NewProcessName``...), as
        pySigma's windows_audit pipeline maps them; the others read it as it is."""
        a_low, a_raw = dict(low), dict(raw)
        for name, source in route.aliases:
            if source in raw:
                a_raw[name] = raw[source]
                a_low[name] = low[source]
            else:
                a_raw.pop(name, None)
                a_low.pop(name, None)
        candidates = route.prefilter.candidates(text, a_low, a_raw)
        if any(name in raw for name, _ in route.aliases):
            # the event has a field of its own under an aliased name: the other
            # rules' candidates come from the event as it is
            candidates = sorted({*candidates, *route.prefilter.candidates(text, low, raw)})
        out: list[int] = []
        aliased = route.aliased
        keyword = route.keyword
        groups: dict[tuple[bool, bool], list[int]] = {}
        for n in candidates:
            groups.setdefault((n in aliased, n in keyword), []).append(n)
        for (is_aliased, is_keyword), numbers in groups.items():
            view_low, view_raw = (a_low, a_raw) if is_aliased else (low, raw)
            if is_keyword:
                self._run_keyword(numbers, view_low, view_raw, event, out)
            else:
                self._run_all(numbers, view_low, view_raw, event, out)
        out.sort()
        return out

    def _run_all(self, numbers: list[int], low: dict[str, Any], raw: dict[str, Any],
                 event: Event, out: list[int]) -> None:
        preds = self.predicates
        append = out.append
        start = len(out)
        try:  # one guard for the whole loop: a failing rule is rare
            for n in numbers:
                if preds[n](low, raw):
                    append(n)
        except Exception:
            del out[start:]
            for n in numbers:
                if self._run(preds[n], n, low, raw, event):
                    out.append(n)

    def _run(self, predicate: Predicate, n: int, low: dict[str, Any], raw: dict[str, Any],
             event: Event) -> bool:
        try:
            return predicate(low, raw)
        except Exception as exc:  # a rule must never stop the stream
            self.errors += 1
            if self.errors <= 20:
                log.warning("rule %s failed on event %s: %s", self.rules[n].rule_id,
                            get_field(event, "event.id"), exc)
            return False

    def match_numbers(self, event: Event) -> list[int]:
        """Numbers of the rules an event matches."""
        return self._evaluate(event)

    def match_event(self, event: Event) -> list[CompiledRule]:
        """The rules an event matches (all of them, whatever their ``generate``)."""
        return [self.rules[n] for n in self._evaluate(event)]

    def iter_matches(self, events: Iterable[Event]) -> Iterator[tuple[Event, list[int]]]:
        """``(event, rule numbers)`` for every event that matched something."""
        evaluate = self._evaluate
        for event in events:
            hits = evaluate(event)
            if hits:
                yield event, hits

    # ------------------------------------------------------------------ Detector
    def detect(self, events: Sequence[Event]) -> list[NewAlert]:
        alerts: list[NewAlert] = []
        for event, hits in self.iter_matches(events):
            flat: dict[str, Any] | None = None
            when: datetime | None = None
            for n in hits:
                rule = self.rules[n]
                if rule.rule_id in self.disabled:
                    continue
                if self.correlator is not None:
                    alerts.extend(a for a in self.correlator.observe(rule, event)
                                  if a.rule_id not in self.disabled)
                if not rule.generate:
                    continue
                if self.suppressions and (rule.rule_id in self.suppressions
                                          or "*" in self.suppressions):
                    if flat is None:
                        flat = build_view(event, self.skip)[1]
                    if self._suppressed(rule.rule_id, flat):
                        continue
                if when is None:
                    when = _event_time(event)
                alerts.append(self.alert(n, event, flat, when))
        return alerts

    def flush(self) -> list[NewAlert]:
        if self.correlator is None:
            return []
        return [a for a in self.correlator.flush() if a.rule_id not in self.disabled]

    def set_disabled_rules(self, rule_ids: Iterable[str]) -> None:
        """Rules switched off: they raise nothing and feed no correlation."""
        self.disabled = frozenset(str(r) for r in rule_ids)

    def set_suppressions(self, suppressions: Sequence[Suppression]) -> None:
        table: dict[str, list[tuple[str, str, datetime | None]]] = {}
        for s in suppressions:
            table.setdefault(s.rule_id, []).append((s.field, str(s.value).lower(), s.expires_at))
        self.suppressions = table

    def _suppressed(self, rule_id: str, flat: dict[str, Any]) -> bool:
        if not self.suppressions:
            return False
        now: datetime | None = None
        for key in (rule_id, "*"):
            for field_name, value, expires in self.suppressions.get(key, ()):
                if expires is not None:
                    now = now or utcnow()
                    if expires <= now:
                        continue
                got = flat.get(field_name)
                values = got if isinstance(got, list) else [got]
                if any(v is not None and str(v).lower() == value for v in values):
                    return True
        return False

    def alert(self, n: int, event: Event, flat: dict[str, Any] | None = None,
              when: datetime | None = None) -> NewAlert:
        """The alert draft for rule ``n`` matching ``event`` (``flat``: its flat fields,
        ``when``: its time, both worked out here when not given)."""
        rule = self.rules[n]
        if flat is None:
            # only the fields the alert carries, read by the rule's own generated reader
            reader = self._alert_readers.get(n)
            if reader is None:
                reader = FieldPlan((*ALERT_FIELDS, *rule.fields), raw_only=True).view
                self._alert_readers[n] = reader
            flat = reader(event)
        fields: dict[str, Any] = {}
        for name in (*ALERT_FIELDS, *rule.fields):
            value = flat.get(name)
            if value is not None and value != "":
                fields[name] = value
        if when is None:
            when = _event_time(event)
        ev = event.get("event")
        event_id = ev.get("id") if ev.__class__ is dict else None
        return NewAlert(
            rule_id=rule.rule_id, rule_name=rule.title, severity=self.severities[n],
            group_key=group_key(rule, fields), timestamp=when, source="sigma",
            event_ids=[str(event_id)] if event_id else [],
            tags=list(rule.tags), dataset=ev.get("dataset") if ev.__class__ is dict else None,
            description=rule.description, fields=fields, matched_fields=list(rule.fields))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_paths(cls, paths: Iterable[str], cache_dir: str | None = None,
                   profile: str = "govsoc") -> SigmaDetector:
        from detection.sigma.ruleset import load_ruleset

        ruleset = load_ruleset(paths, profile=profile, cache_dir=cache_dir)
        for problem in ruleset.problems:
            if problem.severity == "error":
                log.warning("%s", problem)
        return cls(ruleset)


def build_sigma_detector(config: Any, custom_texts: Sequence[str] = ()) -> SigmaDetector:
    """The streaming detector for ``detection.sigma_rules`` ("builtin" = ``rules/sigma``),
    its compiled rules cached under the data directory, plus rules uploaded in the
    console (``custom_texts``; an upload with a file rule's id replaces it)."""
    from detection.sigma.ruleset import compile_texts, load_ruleset

    paths = list(config.get("detection.sigma_rules", ["builtin"]) or [])
    ruleset = load_ruleset(paths, cache_dir=str(config.data_path("cache/sigma")))
    if custom_texts:
        uploaded = compile_texts(list(custom_texts))
        replaced = {r.rule_id for r in uploaded.rules} | {
            str(c.id) for c in uploaded.correlations}
        ruleset.rules = [r for r in ruleset.rules if r.rule_id not in replaced] + uploaded.rules
        ruleset.correlations = [c for c in ruleset.correlations
                                if str(c.id) not in replaced] + uploaded.correlations
        ruleset.problems.extend(uploaded.problems)
    for problem in ruleset.problems:
        if problem.severity == "error":
            log.warning("%s", problem)
    return SigmaDetector(ruleset)
