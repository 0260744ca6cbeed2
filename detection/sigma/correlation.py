"""Sigma correlation rules over the stream, on bounded windowed state.

A correlation rule (``event_count``, ``value_count``, ``temporal``,
``temporal_ordered``, and pySigma's ``value_sum``/``value_avg``/``value_median``)
refers to base rules by name or id; every match of those rules is fed here
with its event. Matches are grouped by the ``group-by`` fields (mapped through
the same pipeline as the base rule, aliases honoured) and kept for the rule's
``timespan`` in event time. When the condition holds the correlation raises
one alert with the events that made it, and the group starts over, so a
sustained attack raises one alert per window, which the store folds.

State is bounded: windows drop what is older than the timespan, a group keeps
at most :data:`MAX_EVENTS_PER_GROUP` matches and a rule at most
:data:`MAX_GROUPS` groups (the least recently seen go first).
"""

from __future__ import annotations

import logging
import statistics
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sigma.correlations import (
    SigmaCorrelationConditionOperator,
    SigmaCorrelationRule,
    SigmaCorrelationType,
)

from detection.sigma.compiler import CompiledRule
from detection.sigma.mapping import map_field
from govsoc.events import Event, get_field, parse_timestamp
from store.base import MAX_ALERT_EVENT_IDS, NewAlert, Severity

log = logging.getLogger("govsoc.detection.sigma")

MAX_GROUPS = 50_000
MAX_EVENTS_PER_GROUP = 10_000

_OPS = {
    SigmaCorrelationConditionOperator.LT: lambda a, b: a < b,
    SigmaCorrelationConditionOperator.LTE: lambda a, b: a <= b,
    SigmaCorrelationConditionOperator.GT: lambda a, b: a > b,
    SigmaCorrelationConditionOperator.GTE: lambda a, b: a >= b,
    SigmaCorrelationConditionOperator.EQ: lambda a, b: a == b,
    SigmaCorrelationConditionOperator.NEQ: lambda a, b: a != b,
}

#: conditions that can only be judged once the window is over ("fewer than")
_AT_WINDOW_END = (SigmaCorrelationConditionOperator.LT, SigmaCorrelationConditionOperator.LTE)


@dataclass
class _Match:
    when: float
    rule: int  # position of the base rule in the correlation's rule list
    value: Any
    event_id: str | None


@dataclass
class _Group:
    matches: deque[_Match] = field(default_factory=deque)
    values: dict[str, Any] = field(default_factory=dict)


class CorrelationState:
    """One correlation rule's windows."""

    def __init__(self, rule: SigmaCorrelationRule, refs: list[list[CompiledRule]]) -> None:
        self.rule = rule
        self.refs = refs
        self.kind = rule.type
        self.span = float(rule.timespan.seconds)
        condition = rule.condition
        self.op = _OPS[getattr(condition, "op", SigmaCorrelationConditionOperator.GTE)]
        self.op_kind = getattr(condition, "op", SigmaCorrelationConditionOperator.GTE)
        self.threshold = getattr(condition, "count", 1)
        fieldref = getattr(condition, "fieldref", None)
        self.value_field = fieldref[0] if isinstance(fieldref, list) else fieldref
        self.group_by = list(rule.group_by or [])
        self.groups: OrderedDict[tuple[Any, ...], _Group] = OrderedDict()
        self.rule_id = str(rule.id or rule.name or rule.title)
        self.severity = Severity.parse(rule.level.name.lower() if rule.level else None)
        self.tags = [f"{t.namespace}.{t.name}" for t in rule.tags]
        # field to read per (base rule id, sigma field name)
        self._fields: dict[tuple[str, str], str] = {}
        aliases = {a.alias: {str(r.reference): f for r, f in a.mapping.items()}
                   for a in rule.aliases}
        for position, rules in enumerate(refs):
            ref_name = str(rule.rules[position].reference) if rule.rules else ""
            for base in rules:
                for name in [*self.group_by, *([self.value_field] if self.value_field else [])]:
                    sigma_name = aliases.get(name, {}).get(ref_name, name)
                    self._fields[(base.rule_id, name)] = map_field(
                        sigma_name, base.product, base.category, base.service)

    def observe(self, position: int, base: CompiledRule, event: Event) -> Iterator[NewAlert]:
        """A match of a base rule."""
        try:
            moment = parse_timestamp(event.get("@timestamp"))
        except (ValueError, TypeError):
            moment = datetime.now(UTC)
        key_values: dict[str, Any] = {}
        for name in self.group_by:
            value = get_field(event, self._fields[(base.rule_id, name)])
            if value is None:
                return  # an event without the group-by field cannot be grouped
            key_values[name] = value
        value = None
        if self.value_field:
            value = get_field(event, self._fields[(base.rule_id, self.value_field)])
            if value is None:
                return
        yield from self.add(position, key_values, value, moment, get_field(event, "event.id"))

    def observe_alert(self, position: int, alert: NewAlert) -> Iterator[NewAlert]:
        """An alert of a correlation this one refers to (correlations can chain)."""
        key_values: dict[str, Any] = {}
        for name in self.group_by:
            value = alert.fields.get(f"group.{name}")
            if value is None:
                return
            key_values[name] = value
        value = alert.fields.get(f"group.{self.value_field}") if self.value_field else None
        event_id = alert.event_ids[-1] if alert.event_ids else None
        yield from self.add(position, key_values, value, alert.timestamp, event_id)

    def add(self, position: int, key_values: dict[str, Any], value: Any, moment: datetime,
            event_id: str | None) -> Iterator[NewAlert]:
        when = moment.timestamp()
        key = tuple(str(v).lower() for v in key_values.values())
        group = self.groups.get(key)
        if group is None:
            group = _Group(values=key_values)
            self.groups[key] = group
            if len(self.groups) > MAX_GROUPS:
                self.groups.popitem(last=False)
        else:
            self.groups.move_to_end(key)
        matches = group.matches
        expired = self._expire(group, when)
        if expired is not None:
            yield expired
        matches.append(_Match(when, position, value, event_id))
        if len(matches) > MAX_EVENTS_PER_GROUP:
            matches.popleft()
        if self.op_kind in _AT_WINDOW_END:
            return
        if self._holds(matches):
            yield self._alert(group, moment)
            matches.clear()

    def _expire(self, group: _Group, now: float) -> NewAlert | None:
        """Drop matches older than the window; a "fewer than" window that closed may fire."""
        matches = group.matches
        if not matches or now - matches[0].when <= self.span:
            return None
        fired = None
        if self.op_kind in _AT_WINDOW_END and self._holds(matches):
            last = datetime.fromtimestamp(matches[-1].when, UTC)
            fired = self._alert(group, last)
            matches.clear()
        while matches and now - matches[0].when > self.span:
            matches.popleft()
        return fired

    def _holds(self, matches: deque[_Match]) -> bool:
        kind = self.kind
        if kind is SigmaCorrelationType.EVENT_COUNT:
            return bool(self.op(len(matches), self.threshold))
        if kind is SigmaCorrelationType.VALUE_COUNT:
            distinct = {str(m.value).lower() for m in matches}
            return bool(self.op(len(distinct), self.threshold))
        if kind in (SigmaCorrelationType.VALUE_SUM, SigmaCorrelationType.VALUE_AVG,
                    SigmaCorrelationType.VALUE_MEDIAN):
            numbers = [n for n in (_number(m.value) for m in matches) if n is not None]
            if not numbers:
                return False
            if kind is SigmaCorrelationType.VALUE_SUM:
                figure = sum(numbers)
            elif kind is SigmaCorrelationType.VALUE_AVG:
                figure = sum(numbers) / len(numbers)
            else:
                figure = statistics.median(numbers)
            return bool(self.op(figure, self.threshold))
        if kind is SigmaCorrelationType.TEMPORAL:
            return len({m.rule for m in matches}) == len(self.refs)
        if kind is SigmaCorrelationType.TEMPORAL_ORDERED:
            wanted = 0
            for m in matches:
                if m.rule == wanted:
                    wanted += 1
                    if wanted == len(self.refs):
                        return True
            return False
        return False

    def _alert(self, group: _Group, moment: datetime) -> NewAlert:
        matches = group.matches
        ids = [m.event_id for m in matches if m.event_id][-MAX_ALERT_EVENT_IDS:]
        fields: dict[str, Any] = {f"group.{k}": v for k, v in group.values.items()}
        # the grouped values under their ECS names too, so the alert's host, user and
        # addresses are filled in for the queue's filters and the case's observables
        for (_rule_id, name), target in self._fields.items():
            if name in group.values and target not in fields:
                fields[target] = group.values[name]
        fields["correlation.type"] = str(self.kind.name.lower())
        fields["correlation.events"] = len(matches)
        if self.value_field:
            fields["correlation.distinct_values"] = len({str(m.value).lower() for m in matches})
        key = "|".join(f"{k}={str(v).lower()}" for k, v in group.values.items())
        return NewAlert(
            rule_id=self.rule_id, rule_name=self.rule.title, severity=self.severity,
            group_key=f"sigma-correlation:{self.rule_id}|{key}", timestamp=moment,
            source="sigma", event_ids=ids, tags=list(self.tags),
            description=self.rule.description or "", fields=fields,
            matched_fields=list(self.group_by))

    def flush(self) -> Iterator[NewAlert]:
        if self.op_kind not in _AT_WINDOW_END:
            return
        for group in self.groups.values():
            if group.matches and self._holds(group.matches):
                yield self._alert(group, datetime.fromtimestamp(group.matches[-1].when, UTC))
                group.matches.clear()


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


class CorrelationEngine:
    """Every correlation rule of a rule set, fed with the matches of their base rules;
    a correlation may also refer to another correlation (by name or id)."""

    #: how deep correlations may chain (a cycle stops here)
    MAX_CHAIN = 4

    def __init__(self, correlations: Sequence[SigmaCorrelationRule],
                 rules: Sequence[CompiledRule]) -> None:
        by_ref: dict[str, list[CompiledRule]] = {}
        for base in rules:
            by_ref.setdefault(base.rule_id, []).append(base)
            if base.name:
                by_ref.setdefault(base.name, []).append(base)
        corr_refs: set[str] = set()
        for corr in correlations:
            corr_refs.add(str(corr.id or corr.title))
            if corr.name:
                corr_refs.add(corr.name)
        self.states: list[CorrelationState] = []
        #: base rule id → (state, position in the correlation's rule list)
        self.listeners: dict[str, list[tuple[CorrelationState, int]]] = {}
        #: correlation name or id → (state, position) of correlations referring to it
        self.chained: dict[str, list[tuple[CorrelationState, int]]] = {}
        self.problems: list[str] = []
        supported = (SigmaCorrelationType.EVENT_COUNT, SigmaCorrelationType.VALUE_COUNT,
                     SigmaCorrelationType.TEMPORAL, SigmaCorrelationType.TEMPORAL_ORDERED,
                     SigmaCorrelationType.VALUE_SUM, SigmaCorrelationType.VALUE_AVG,
                     SigmaCorrelationType.VALUE_MEDIAN)
        for corr in correlations:
            names = [str(r.reference) for r in (corr.rules or [])]
            missing = [n for n in names if n not in by_ref and n not in corr_refs]
            if missing:
                self.problems.append(f"correlation {corr.title!r}: no rule named "
                                     f"{', '.join(missing)}")
                continue
            if corr.type not in supported:
                self.problems.append(f"correlation {corr.title!r}: type "
                                     f"{corr.type.name.lower()} is not supported")
                continue
            state = CorrelationState(corr, [by_ref.get(n, []) for n in names])
            self.states.append(state)
            for position, name in enumerate(names):
                for base in by_ref.get(name, []):
                    self.listeners.setdefault(base.rule_id, []).append((state, position))
                if name in corr_refs:
                    self.chained.setdefault(name, []).append((state, position))
        for problem in self.problems:
            log.warning("%s", problem)

    def observe(self, rule: CompiledRule, event: Event) -> list[NewAlert]:
        out: list[NewAlert] = []
        for state, position in self.listeners.get(rule.rule_id, ()):
            for alert in state.observe(position, rule, event):
                out.append(alert)
                self._chain(state, alert, out, 1)
        return out

    def _chain(self, source: CorrelationState, alert: NewAlert, out: list[NewAlert],
               depth: int) -> None:
        if depth > self.MAX_CHAIN:
            return
        keys = {source.rule_id, str(source.rule.name or "")}
        for key in keys:
            for state, position in self.chained.get(key, ()):
                for chained in state.observe_alert(position, alert):
                    out.append(chained)
                    self._chain(state, chained, out, depth + 1)

    def flush(self) -> Iterable[NewAlert]:
        out: list[NewAlert] = []
        for state in self.states:
            for alert in state.flush():
                out.append(alert)
                self._chain(state, alert, out, 1)
        return out
