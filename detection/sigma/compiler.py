"""Compiling a Sigma rule's detection into a fast Python predicate.

The rule is first processed by the field-mapping pipeline (:mod:`detection.sigma.mapping`),
then its parsed condition tree is turned into Python source: one function
``match(L, R)`` per rule, where ``L`` maps dotted field names to lower-cased
string values (a tuple for arrays) and ``R`` maps them to the raw values (see
:mod:`detection.sigma.eventview`). Generated source, not an interpreter walk,
so CPython evaluates a rule as one function call of plain comparisons; the
source is compiled once and its code object is what the rule cache keeps.

Semantics follow the Sigma specification and pySigma 1.5:

- strings compare case-insensitively (``cased`` makes them case-sensitive),
  ``*`` and ``?`` are wildcards, a list of values is an OR (``all``: AND);
- a string test on an absent field is false, so ``not filter`` holds for it;
- ``null`` matches an absent or null field, ``exists`` tests presence;
- ``re`` searches the raw value (case-sensitive unless ``i``), through
  google-re2 (linear time); a pattern re2 cannot run (back-references,
  look-around) falls back to the ``regex`` module with a per-match timeout and
  a warning, so an attacker-controlled value can never hang the pipeline;
- ``gt/gte/lt/lte/neq`` compare numerically (non-numbers never match);
  ``cidr`` tests IP membership; ``fieldref`` compares two fields;
  ``minute/hour/day/week/month/year`` compare parts of a timestamp field.

Each compiled rule also carries the literals one of which must occur in any
event it matches (for the Aho-Corasick prefilter, :mod:`detection.sigma.prefilter`).
"""

from __future__ import annotations

import ipaddress
import logging
import marshal
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import re2
import regex
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaQueryExpression,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
)

from govsoc.errors import RuleError

log = logging.getLogger("govsoc.detection.sigma")

#: Bumped whenever generated code changes meaning; part of the rule-cache key.
ENGINE_VERSION = "govsoc-sigma-7"

#: Shortest literal worth giving the prefilter (shorter ones occur everywhere).
MIN_LITERAL = 3

#: Seconds one fallback (non-re2) regex match may take before it counts as no match.
FALLBACK_REGEX_TIMEOUT = 0.05

Predicate = Callable[[dict[str, Any], dict[str, Any]], bool]

#: A prefilter atom: ``("lit", text)`` — the text occurs somewhere in the event's
#: lower-cased values; ``("eq", field, value)`` — the field's lower-cased value (or an
#: element of it) is ``value``; ``("base", field, name)`` — the part of the field's
#: lower-cased value after its last backslash is ``name`` (a file name);
#: ``("re", field, pattern)`` — the pattern (linear, re2) occurs in the field's value.
Atom = tuple[str, ...]


class RuleCompileError(RuleError):
    """A rule's detection uses something the matcher cannot evaluate."""


# --------------------------------------------------------------------------- runtime helpers
# These are the names generated code may call; they live in every rule's namespace.

_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False
_RE2_OPTIONS.max_mem = 64 << 20

_FALLBACK_WARNED: set[str] = set()


class _TimedRegex:
    """A pattern re2 cannot run, on the backtracking engine with a time budget."""

    def __init__(self, pattern: str) -> None:
        self.pattern = regex.compile(pattern, flags=regex.VERSION0)

    def search(self, text: str) -> Any:
        try:
            return self.pattern.search(text, timeout=FALLBACK_REGEX_TIMEOUT)
        except TimeoutError:
            if self.pattern.pattern not in _FALLBACK_WARNED:
                _FALLBACK_WARNED.add(self.pattern.pattern)
                log.warning("regular expression %r gave up after %.2fs on a %d-character value",
                            self.pattern.pattern, FALLBACK_REGEX_TIMEOUT, len(text))
            return None


def _re2_tester(compiled: Any) -> Callable[[str], bool]:
    """A boolean search that calls re2 directly: the wrapper's match objects cost more
    than the search itself."""
    try:
        match = compiled._regexp.Match
        unanchored = re2._Anchor.UNANCHORED
        null = re2._NULL_SPAN
    except AttributeError:  # a future binding without these internals
        return lambda text: compiled.search(text) is not None

    def test(text: str) -> bool:
        data = text.encode("utf-8", "surrogatepass")
        return bool(match(unanchored, data, 0, len(data))[0] != null)

    return test


def compile_regex(pattern: str) -> tuple[Callable[[str], bool], bool]:
    """A search test for ``pattern`` and whether it runs in linear time (re2)."""
    try:
        return _re2_tester(re2.compile(pattern, _RE2_OPTIONS)), True
    except re2.error:
        pass
    try:
        timed = _TimedRegex(pattern)
    except regex.error as exc:
        raise RuleCompileError(f"invalid regular expression {pattern!r}: {exc}") from exc
    return (lambda text: timed.search(text) is not None), False


def regex_pattern(value: SigmaRegularExpression) -> str:
    """The pattern a field's ``re`` value is searched with, its flags inline."""
    flags = ""
    for flag, letter in ((SigmaRegularExpressionFlag.IGNORECASE, "i"),
                         (SigmaRegularExpressionFlag.MULTILINE, "m"),
                         (SigmaRegularExpressionFlag.DOTALL, "s")):
        if flag in value.flags:
            flags += letter
    pattern = value.regexp.to_plain() if isinstance(value.regexp, SigmaString) \
        else str(value.regexp)
    return (f"(?{flags})" if flags else "") + pattern


def _regex_test(pattern: str) -> Callable[[Any], bool]:
    search, _ = compile_regex(pattern)

    def test(value: Any) -> bool:
        if value is None:
            return False
        if isinstance(value, list | tuple):
            return any(test(v) for v in value)
        if not isinstance(value, str):
            value = _text(value)
        return search(value)

    return test


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _cidr_test(cidr: str) -> Callable[[Any], bool]:
    network = ipaddress.ip_network(cidr, strict=False)

    def test(value: Any) -> bool:
        if value is None:
            return False
        if isinstance(value, list | tuple):
            return any(test(v) for v in value)
        try:
            return ipaddress.ip_address(str(value).strip()) in network
        except ValueError:
            return False

    return test


def _to_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value
    try:
        text = str(value).strip()
        if text[:2].lower() == "0x":
            return int(text, 16)
        return float(text)
    except (TypeError, ValueError):
        return None


_COMPARE: dict[CompareOperators, Callable[[float, float], bool]] = {
    CompareOperators.LT: lambda a, b: a < b,
    CompareOperators.LTE: lambda a, b: a <= b,
    CompareOperators.GT: lambda a, b: a > b,
    CompareOperators.GTE: lambda a, b: a >= b,
    CompareOperators.NEQ: lambda a, b: a != b,
}


def _compare_test(op_name: str, number: float) -> Callable[[Any], bool]:
    op = _COMPARE[CompareOperators[op_name]]

    def test(value: Any) -> bool:
        if value is None:
            return False
        if isinstance(value, list | tuple):
            return any(test(v) for v in value)
        n = _to_number(value)
        return n is not None and op(n, number)

    return test


def _timestamp_part_test(part: str, number: int) -> Callable[[Any], bool]:
    def test(value: Any) -> bool:
        if value is None:
            return False
        if isinstance(value, list | tuple):
            return any(test(v) for v in value)
        try:
            moment = value if isinstance(value, datetime) else datetime.fromisoformat(
                str(value).replace("Z", "+00:00"))
        except ValueError:
            return False
        got = {"MINUTE": moment.minute, "HOUR": moment.hour, "DAY": moment.day,
               "WEEK": moment.isocalendar()[1], "MONTH": moment.month,
               "YEAR": moment.year}[part]
        return bool(got == number)

    return test


def _field_ref(value: Any, other: Any, starts: bool, ends: bool) -> bool:
    if value is None or other is None:
        return False
    values = value if isinstance(value, tuple) else (value,)
    others = other if isinstance(other, tuple) else (other,)
    for a in values:
        for b in others:
            if starts and ends:
                if b in a:
                    return True
            elif starts:
                if a.startswith(b):
                    return True
            elif ends:
                if a.endswith(b):
                    return True
            elif a == b:
                return True
    return False


#: Key under which the engine hands keyword rules their search scope
#: (see detection.sigma.eventview.keyword_view).
KEYWORD_SCOPE = "\x00keywords"


def _keyword(L: dict[str, Any], test: Callable[[str], bool]) -> bool:
    scope = L.get(KEYWORD_SCOPE, L)
    for value in scope.values():
        if value.__class__ is str:
            if test(value):
                return True
        elif any(test(v) for v in value):
            return True
    return False


def _cased(value: Any, test: Callable[[str], bool]) -> bool:
    if value is None:
        return False
    if isinstance(value, list | tuple):
        return any(_cased(v, test) for v in value)
    return test(value if isinstance(value, str) else _text(value))


def _glob_test(pattern: str) -> Callable[[str], bool]:
    return compile_regex(pattern)[0]


def _any_of(literals: list[str]) -> Callable[[str], bool]:
    """Whether any literal occurs in a string: one linear re2 scan for many literals."""
    return _re2_tester(re2.compile("|".join(re2.escape(lit) for lit in literals),
                                   _RE2_OPTIONS))


RUNTIME: dict[str, Any] = {
    "_anyof": _any_of,
    "_regex": _regex_test, "_cidr": _cidr_test, "_cmp": _compare_test,
    "_tspart": _timestamp_part_test, "_fref": _field_ref, "_kw": _keyword,
    "_cased": _cased, "_glob": _glob_test,
}


# --------------------------------------------------------------------------- code generation

@dataclass
class CompiledRule:
    """A rule ready to run: its metadata, its predicate and its prefilter literals."""

    rule_id: str
    title: str
    level: str
    tags: list[str]
    description: str
    product: str | None
    category: str | None
    service: str | None
    path: str
    source: str
    #: fields the rule tests (mapped names), for highlighting
    fields: list[str]
    #: one of these (lower-cased) must occur in a matching event; None: no such literal
    literals: list[str] | None
    warnings: list[str] = field(default_factory=list)
    code: bytes = b""
    #: Windows event ids the detection itself requires (narrows routing); None: any
    event_ids: list[str] | None = None
    #: the rule searches values without naming a field (looks at every field)
    keywords: bool = False
    #: the rule's ``name`` (what correlation rules refer to)
    name: str | None = None
    #: prefilter atoms one of which holds in every event the rule matches (see
    #: :func:`required_atom_groups`); None: no such set, the rule is evaluated on every event
    atoms: list[Atom] | None = None
    #: a second such group, which must hold too (None: none)
    also_atoms: list[Atom] | None = None
    #: False when only correlation rules should use this rule's matches
    generate: bool = True
    _predicate: Predicate | None = field(default=None, repr=False, compare=False)

    @property
    def predicate(self) -> Predicate:
        if self._predicate is None:
            self._predicate = load_predicate(self.code)
        return self._predicate

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_predicate"] = None
        return state


def load_predicate(code: bytes) -> Predicate:
    """Execute a rule's marshalled module code and return its ``match`` function."""
    namespace: dict[str, Any] = dict(RUNTIME)
    exec(marshal.loads(code), namespace)  # noqa: S102,S302 - our own generated code
    predicate: Predicate = namespace["match"]
    return predicate


def _segments(value: SigmaString) -> list[str | SpecialChars]:
    """The string as literal runs and wildcards (placeholders read as ``*``)."""
    out: list[str | SpecialChars] = []
    for part in value.s:
        if isinstance(part, Placeholder):
            part = SpecialChars.WILDCARD_MULTI
        if isinstance(part, str):
            if out and isinstance(out[-1], str):
                out[-1] += part
            elif part:
                out.append(part)
        else:
            out.append(part)
    return out


def _longest_literal(value: SigmaString) -> str | None:
    runs = [p.lower() for p in _segments(value) if isinstance(p, str)]
    if not runs:
        return None
    best = max(runs, key=_selectivity)
    return best if _usable(best) else None


#: Strings nearly every Windows event carries somewhere: a literal inside one of
#: them finds almost every event, so the prefilter prefers any other literal.
BACKGROUND = (
    "c:\\windows\\system32\\svchost.exe", "c:\\windows\\syswow64\\rundll32.exe",
    "c:\\program files (x86)\\microsoft\\", "c:\\programdata\\microsoft\\windows\\",
    "microsoft corporation", "microsoft windows operating system", "nt authority\\system",
    "s-1-5-21-", "s-1-5-18", "s-1-16-16384", "system", "high", "medium", "-", "true", "false",
    "c:\\users\\", "\\appdata\\local\\temp\\", ".exe", ".dll", "microsoft-windows-",
    "security", "windows powershell",
)


#: Characters rare enough in event values that two of them make a literal worth having
#: (``^^`` of caret-obfuscated command lines).
RARE_CHARACTERS = frozenset("^`~|;")


def _usable(literal: str) -> bool:
    return (len(literal) >= MIN_LITERAL or any(ord(ch) > 127 for ch in literal)
            or (len(literal) == 2 and all(ch in RARE_CHARACTERS for ch in literal)))


def _selectivity(literal: str) -> int:
    """How rare a literal is likely to be: its length, characters outside ASCII
    (emoji, other scripts) counted thrice, and nothing for background strings."""
    if any(literal in common for common in BACKGROUND):
        return 1
    return len(literal) + 2 * sum(1 for ch in literal if ord(ch) > 127)


class _Codegen:
    def __init__(self, rule_path: str) -> None:
        self.path = rule_path
        self.consts: list[str] = []
        self.var = 0
        self.fields: list[str] = []
        self.warnings: list[str] = []
        self.keywords_used = False

    def const(self, expr: str) -> str:
        name = f"_c{len(self.consts)}"
        self.consts.append(f"{name} = {expr}")
        return name

    def new_var(self) -> str:
        self.var += 1
        return f"v{self.var}"

    # -- condition tree
    def node(self, node: Any) -> str:
        if isinstance(node, ConditionAND):
            return "(" + " and ".join(self.node(a) for a in node.args) + ")"
        if isinstance(node, ConditionOR):
            grouped = self.grouped_or(node.args)
            if grouped is not None:
                return grouped
            return "(" + " or ".join(self.node(a) for a in node.args) + ")"
        if isinstance(node, ConditionNOT):
            return "(not " + self.node(node.args[0]) + ")"
        if isinstance(node, ConditionFieldEqualsValueExpression):
            if node.field not in self.fields:
                self.fields.append(node.field)
            return self.field_value(node.field, node.value)
        if isinstance(node, ConditionValueExpression):
            return self.keyword(node.value)
        raise RuleCompileError(f"unsupported condition element {type(node).__name__}", self.path)

    def grouped_or(self, args: Sequence[Any]) -> str | None:
        """One field tested against many plain values: one lookup, C-level tests."""
        if len(args) < 2:
            return None
        name = None
        values: list[Any] = []
        for arg in args:
            if not isinstance(arg, ConditionFieldEqualsValueExpression):
                return None
            if name is None:
                name = arg.field
            elif arg.field != name:
                return None
            value = arg.value
            flat = value.values if isinstance(value, SigmaExpansion) else [value]
            for v in flat:
                if isinstance(v, SigmaCasedString) or not isinstance(v, SigmaString | SigmaNumber):
                    return None
                values.append(v)
        assert name is not None
        if name not in self.fields:
            self.fields.append(name)
        star = SpecialChars.WILDCARD_MULTI
        equal: list[str] = []
        starts: list[str] = []
        ends: list[str] = []
        contains: list[str] = []
        others: list[SigmaString] = []
        for v in values:
            if isinstance(v, SigmaNumber):
                equal.append(_text(v.number).lower())
                continue
            segs = [x.lower() if isinstance(x, str) else x for x in _segments(v)]
            if not segs:
                equal.append("")
            elif all(isinstance(x, str) for x in segs):
                equal.append(str(segs[0]))
            elif len(segs) == 2 and segs[0] == star and isinstance(segs[1], str):
                ends.append(segs[1])
            elif len(segs) == 2 and segs[1] == star and isinstance(segs[0], str):
                starts.append(segs[0])
            elif (len(segs) == 3 and segs[0] == star and segs[2] == star
                  and isinstance(segs[1], str)):
                contains.append(segs[1])
            else:
                others.append(v)

        def test(x: str) -> str:
            parts: list[str] = []
            if equal:
                parts.append(f"{x} == {equal[0]!r}" if len(equal) == 1
                             else f"{x} in {self.const(repr(frozenset(equal)))}")
            if starts:
                parts.append(f"{x}.startswith({self.const(repr(tuple(starts)))})")
            if ends:
                parts.append(f"{x}.endswith({self.const(repr(tuple(ends)))})")
            if contains:
                if len(contains) <= 4:
                    parts.extend(f"({c!r} in {x})" for c in contains)
                else:
                    fn = self.const(f"_anyof({sorted(set(contains))!r})")
                    parts.append(f"{fn}({x})")
            parts.extend(self.string_test(o, x, lower=True) for o in others)
            return "(" + " or ".join(parts) + ")"

        return self.on_lower(repr(name), test)

    # -- string tests on a lower-cased (or raw, for cased) string variable
    def string_test(self, value: SigmaString, x: str, lower: bool) -> str:
        segs = _segments(value)
        if lower:
            segs = [s.lower() if isinstance(s, str) else s for s in segs]
        star = SpecialChars.WILDCARD_MULTI
        if not segs:
            return f"{x} == ''"
        if all(isinstance(s, str) for s in segs):
            return f"{x} == {segs[0]!r}"
        if segs == [star]:
            return "True"
        if SpecialChars.WILDCARD_SINGLE not in segs:
            if len(segs) == 2 and segs[0] == star and isinstance(segs[1], str):
                return f"{x}.endswith({segs[1]!r})"
            if len(segs) == 2 and segs[1] == star and isinstance(segs[0], str):
                return f"{x}.startswith({segs[0]!r})"
            if len(segs) == 3 and segs[0] == star and segs[2] == star and isinstance(segs[1], str):
                return f"({segs[1]!r} in {x})"
            if (len(segs) == 3 and segs[1] == star and isinstance(segs[0], str)
                    and isinstance(segs[2], str)):
                a, b = segs[0], segs[2]
                return (f"(len({x}) >= {len(a) + len(b)} and {x}.startswith({a!r}) "
                        f"and {x}.endswith({b!r}))")
        pattern = "".join(
            re.escape(s) if isinstance(s, str) else (".*" if s == star else ".")
            for s in segs)
        fn = self.const(f"_glob({('(?s)^' + pattern + '$')!r})")
        return f"{fn}({x})"

    def field_value(self, name: str, value: Any) -> str:
        F = repr(name)
        if isinstance(value, SigmaExpansion):
            return "(" + " or ".join(self.field_value(name, v) for v in value.values) + ")"
        if isinstance(value, SigmaCasedString):
            fn = self.const(f"lambda y: {self.string_test(value, 'y', lower=False)}")
            return f"_cased(R.get({F}), {fn})"
        if isinstance(value, SigmaString):
            return self.on_lower(F, lambda x: self.string_test(value, x, lower=True))
        if isinstance(value, SigmaBool):
            lit = "true" if value.boolean else "false"
            return self.on_lower(F, lambda x: f"{x} == {lit!r}")
        if isinstance(value, SigmaTimestampPart):
            fn = self.const(f"_tspart({value.timestamp_part.name!r}, {int(value.number)!r})")
            return f"{fn}(R.get({F}))"
        if isinstance(value, SigmaNumber):
            lit = _text(value.number).lower()
            return self.on_lower(F, lambda x: f"{x} == {lit!r}")
        if isinstance(value, SigmaNull):
            return f"(R.get({F}) is None)"
        if isinstance(value, SigmaExists):
            return f"(R.get({F}) is {'not ' if value.exists else ''}None)"
        if isinstance(value, SigmaRegularExpression):
            pattern = regex_pattern(value)
            _, linear = compile_regex(pattern)
            if not linear:
                self.warnings.append(
                    f"regular expression {pattern!r} needs backtracking (not re2); "
                    f"each match is limited to {FALLBACK_REGEX_TIMEOUT}s")
            fn = self.const(f"_regex({pattern!r})")
            return f"{fn}(R.get({F}))"
        if isinstance(value, SigmaCIDRExpression):
            fn = self.const(f"_cidr({value.cidr!r})")
            return f"{fn}(R.get({F}))"
        if isinstance(value, SigmaCompareExpression):
            fn = self.const(f"_cmp({value.op.name!r}, {value.number.number!r})")
            return f"{fn}(R.get({F}))"
        if isinstance(value, SigmaFieldReference):
            if value.field not in self.fields:
                self.fields.append(value.field)
            return (f"_fref(L.get({F}), L.get({value.field!r}), "
                    f"{bool(value.starts_with)}, {bool(value.ends_with)})")
        if isinstance(value, SigmaQueryExpression):
            raise RuleCompileError("query expressions (unresolved placeholders bound to a "
                                   "backend query) cannot be evaluated by the matcher", self.path)
        raise RuleCompileError(f"unsupported value type {type(value).__name__}", self.path)

    def on_lower(self, F: str, test: Callable[[str], str]) -> str:
        """A test on the lower-cased value of a field, any element of an array."""
        v = self.new_var()
        y = v + "e"
        return (f"((({v} := L.get({F})).__class__ is str and {test(v)}) or "
                f"({v}.__class__ is tuple and any({test(y)} for {y} in {v})))")

    def keyword(self, value: Any) -> str:
        self.keywords_used = True
        if isinstance(value, SigmaExpansion):
            return "(" + " or ".join(self.keyword(v) for v in value.values) + ")"
        if isinstance(value, SigmaCasedString):
            # raw values are not kept per keyword; a cased keyword is matched case-insensitively
            self.warnings.append("case-sensitive keyword matched case-insensitively")
        if isinstance(value, SigmaString):
            # a keyword is found anywhere in a value, as full-text search backends do
            if not value.startswith(SpecialChars.WILDCARD_MULTI):
                value = SpecialChars.WILDCARD_MULTI + value
            if not value.endswith(SpecialChars.WILDCARD_MULTI):
                value = value + SpecialChars.WILDCARD_MULTI
            fn = self.const(f"lambda y: {self.string_test(value, 'y', lower=True)}")
            return f"_kw(L, {fn})"
        if isinstance(value, SigmaNumber | SigmaBool):
            lit = _text(value.number if isinstance(value, SigmaNumber) else value.boolean).lower()
            fn = self.const(f"lambda y: {lit!r} in y")
            return f"_kw(L, {fn})"
        if isinstance(value, SigmaRegularExpression):
            pattern = value.regexp.to_plain()
            fn = self.const(f"_regex({pattern!r})")
            return f"_kw(L, {fn})"
        raise RuleCompileError(f"unsupported keyword value {type(value).__name__}", self.path)


# --------------------------------------------------------------------------- literals

def required_literals(node: Any) -> set[str] | None:
    """Lower-cased literals one of which occurs in every event ``node`` matches."""
    if isinstance(node, ConditionOR):
        out: set[str] = set()
        for arg in node.args:
            sub = required_literals(arg)
            if sub is None:
                return None
            out |= sub
        return out
    if isinstance(node, ConditionAND):
        best: set[str] | None = None
        best_key: tuple[int, int] = (0, 0)
        for arg in node.args:
            sub = required_literals(arg)
            if not sub:
                continue
            key = (min(_selectivity(s) for s in sub), -len(sub))
            if best is None or key > best_key:
                best, best_key = sub, key
        return best
    if isinstance(node, ConditionNOT):
        return None
    if isinstance(node, ConditionFieldEqualsValueExpression):
        if node.field in ROUTING_FIELDS:
            return None  # routing already sends only those events; the literal adds nothing
        return _value_literals(node.value)
    if isinstance(node, ConditionValueExpression):
        return _value_literals(node.value)
    return None


#: Process image names so common that finding one pins a field only a little.
COMMON_FILE_NAMES = frozenset({
    "cmd.exe", "powershell.exe", "pwsh.exe", "rundll32.exe", "regsvr32.exe", "svchost.exe",
    "conhost.exe", "explorer.exe", "wmic.exe", "reg.exe", "net.exe", "net1.exe",
    "msiexec.exe", "mshta.exe", "cscript.exe", "wscript.exe", "services.exe", "lsass.exe",
    "schtasks.exe", "sc.exe", "wmiprvse.exe", "taskhostw.exe", "dllhost.exe", "werfault.exe",
})


def _atom_score(atom: Atom) -> int:
    """How rare an atom is likely to be: a value pinned to one field is rarer than
    the same text anywhere in the event."""
    if atom[0] == "lit":
        return _selectivity(atom[1])
    if atom[0] == "re":
        return 10
    value = atom[2]
    if atom[0] == "base" and value in COMMON_FILE_NAMES:
        return 8
    if value and _selectivity(value) == 1:  # "high", "microsoft corporation"
        return 2
    return 12 + min(len(value), 20)


def _group_key(group: frozenset[Atom]) -> tuple[int, int]:
    return (min(_atom_score(a) for a in group), -len(group))


def required_atom_groups(node: Any) -> list[frozenset[Atom]]:
    """Groups of prefilter atoms such that, in every event ``node`` matches, some atom of
    *each* group holds; rarest group first (empty: no such group).

    Like :func:`required_literals`, but a plain value of a field (``Image|endswith:
    '\\cmd.exe'``, ``OriginalFileName: 'Cmd.Exe'``, ``LogonType: 3``) becomes an atom
    tied to that field, found by a dictionary lookup instead of anywhere in the event;
    and the selections of an ``and`` each give a group, so a rule that needs both
    ``cmd.exe`` and ``assoc`` is a candidate only where both are.
    """
    groups: list[frozenset[Atom]] = []
    if isinstance(node, ConditionOR):
        out: set[Atom] = set()
        for arg in node.args:
            sub = required_atom_groups(arg)
            if not sub:
                return []
            out |= sub[0]
        groups = [frozenset(out)]
    elif isinstance(node, ConditionAND):
        for arg in node.args:
            for group in required_atom_groups(arg):
                if group not in groups:
                    groups.append(group)
    elif isinstance(node, ConditionFieldEqualsValueExpression):
        if node.field not in ROUTING_FIELDS:
            atoms = _field_atoms(node.field, node.value)
            if atoms:
                groups = [frozenset(atoms)]
    elif isinstance(node, ConditionValueExpression):
        lits = _value_literals(node.value)
        if lits:
            groups = [frozenset(("lit", lit) for lit in lits)]
    return sorted(groups, key=_group_key, reverse=True)


def required_atoms(node: Any) -> set[Atom] | None:
    """The rarest group of :func:`required_atom_groups` (None: there is none)."""
    groups = required_atom_groups(node)
    return set(groups[0]) if groups else None


def _field_atoms(name: str, value: Any) -> set[Atom] | None:
    if isinstance(value, SigmaExpansion):
        out: set[Atom] = set()
        for v in value.values:
            sub = _field_atoms(name, v)
            if sub is None:
                return None
            out |= sub
        return out
    if isinstance(value, SigmaBool):
        return {("eq", name, "true" if value.boolean else "false")}
    if isinstance(value, SigmaNumber) and not isinstance(value, SigmaTimestampPart):
        return {("eq", name, _text(value.number).lower())}
    if isinstance(value, SigmaString) and not isinstance(value, SigmaCasedString):
        segs = [s.lower() if isinstance(s, str) else s for s in _segments(value)]
        if not segs:
            return {("eq", name, "")}
        if len(segs) == 1 and isinstance(segs[0], str):
            return {("eq", name, segs[0])}
        if (len(segs) == 2 and segs[0] == SpecialChars.WILDCARD_MULTI
                and isinstance(segs[1], str) and "\\" in segs[1]):
            # ends with "\\name": the value's file name is "name"
            base = segs[1].rpartition("\\")[2]
            if base:
                return {("base", name, base)}
    lits = _value_literals(value)
    if lits:
        return {("lit", lit) for lit in lits}
    if isinstance(value, SigmaRegularExpression):
        pattern = regex_pattern(value)
        if compile_regex(pattern)[1]:
            # no literal in it: the pattern itself, searched in the field's value by
            # one RE2 set per field (see detection.sigma.prefilter)
            return {("re", name, pattern)}
    return None


#: Fields routing decides on (see detection.sigma.routing).
ROUTING_FIELDS = frozenset({"winlog.event_id", "winlog.channel", "event.dataset"})


def required_values(node: Any, name: str) -> set[str] | None:
    """Exact (lower-cased) values field ``name`` must have for ``node`` to match, or None."""
    if isinstance(node, ConditionOR):
        out: set[str] = set()
        for arg in node.args:
            sub = required_values(arg, name)
            if sub is None:
                return None
            out |= sub
        return out
    if isinstance(node, ConditionAND):
        found: set[str] | None = None
        for arg in node.args:
            sub = required_values(arg, name)
            if sub is not None:
                found = sub if found is None else found & sub
        return found
    if isinstance(node, ConditionFieldEqualsValueExpression) and node.field == name:
        return _exact_values(node.value)
    return None


def _exact_values(value: Any) -> set[str] | None:
    if isinstance(value, SigmaExpansion):
        out: set[str] = set()
        for v in value.values:
            sub = _exact_values(v)
            if sub is None:
                return None
            out |= sub
        return out
    if isinstance(value, SigmaNumber) and not isinstance(value, SigmaTimestampPart):
        return {_text(value.number).lower()}
    if isinstance(value, SigmaString) and not isinstance(value, SigmaCasedString):
        segs = _segments(value)
        if len(segs) == 1 and isinstance(segs[0], str):
            return {segs[0].lower()}
    return None


def _value_literals(value: Any) -> set[str] | None:
    if isinstance(value, SigmaExpansion):
        out: set[str] = set()
        for v in value.values:
            sub = _value_literals(v)
            if sub is None:
                return None
            out |= sub
        return out
    if isinstance(value, SigmaString):
        lit = _longest_literal(value)
        return {lit} if lit else None
    if isinstance(value, SigmaRegularExpression):
        pattern = value.regexp.to_plain() if isinstance(value.regexp, SigmaString) \
            else str(value.regexp)
        lit = regex_literal(pattern)
        return {lit} if lit else None
    if isinstance(value, SigmaTimestampPart):
        return None
    if isinstance(value, SigmaNumber):
        text = _text(value.number).lower()
        return {text} if len(text) >= MIN_LITERAL else None
    if isinstance(value, SigmaBool):
        return {"true" if value.boolean else "false"}
    return None


def _regex_runs(parsed: Any) -> list[str]:
    """Literal runs every match of a parsed regex contains."""
    from re import _constants as c  # type: ignore[attr-defined]

    runs: list[str] = []
    current: list[str] = []

    def flush() -> None:
        if current:
            runs.append("".join(current))
            current.clear()

    for op, av in parsed:
        if op is c.LITERAL:
            current.append(chr(av))
        elif op is c.AT:
            continue
        elif op is c.SUBPATTERN:
            inner = list(av[3])
            if all(o is c.LITERAL for o, _ in inner):
                current.extend(chr(a) for _, a in inner)
            else:
                flush()
                runs.extend(_regex_runs(av[3]))
        elif op in (c.MAX_REPEAT, c.MIN_REPEAT, c.POSSESSIVE_REPEAT):
            flush()
            if av[0] >= 1:
                runs.extend(_regex_runs(av[2]))
        else:
            flush()
    flush()
    return runs


def regex_literal(pattern: str) -> str | None:
    """The most selective literal every match of ``pattern`` contains (lower-cased)."""
    from re import _parser  # type: ignore[attr-defined]

    try:
        runs = _regex_runs(_parser.parse(pattern))
    except (re.error, ValueError, TypeError, IndexError, OverflowError, RecursionError):
        return None
    runs = [r.lower() for r in runs if r]
    if not runs:
        return None
    best = max(runs, key=_selectivity)
    return best if _usable(best) else None


# --------------------------------------------------------------------------- entry point

def compile_rule(rule: SigmaRule, path: str = "") -> CompiledRule:
    """Compile a rule that has already been through the mapping pipeline."""
    where = path or str(getattr(rule.source, "path", "") or "")
    gen = _Codegen(where)
    exprs: list[str] = []
    literal_sets: list[set[str] | None] = []
    event_id_sets: list[set[str] | None] = []
    atom_groups: list[list[frozenset[Atom]]] = []
    try:
        for condition in rule.detection.parsed_condition:
            tree = condition.parsed
            exprs.append(gen.node(tree))
            literal_sets.append(required_literals(tree))
            atom_groups.append(required_atom_groups(tree))
            event_id_sets.append(required_values(tree, "winlog.event_id"))
    except SigmaError as exc:
        raise RuleCompileError(str(exc), where) from exc
    if not exprs:
        raise RuleCompileError("rule has no condition", where)
    body = exprs[0] if len(exprs) == 1 else "(" + " or ".join(exprs) + ")"
    source = "\n".join([*gen.consts, "def match(L, R):", f"    return bool({body})", ""])
    try:
        code = compile(source, f"<sigma {rule.id or rule.title}>", "exec")
    except (SyntaxError, RecursionError, MemoryError) as exc:
        raise RuleCompileError(f"generated matcher does not compile: {exc}", where) from exc
    literals: list[str] | None = None
    if all(s for s in literal_sets):
        merged: set[str] = set()
        for s in literal_sets:
            merged |= s or set()
        literals = sorted(merged)
    atoms: list[Atom] | None = None
    also_atoms: list[Atom] | None = None
    if all(atom_groups):
        atoms = sorted(set().union(*[g[0] for g in atom_groups]))
        if len(atom_groups) == 1 and len(atom_groups[0]) > 1:
            also_atoms = sorted(atom_groups[0][1])
    event_ids: list[str] | None = None
    if all(e is not None for e in event_id_sets):
        event_ids = sorted(set().union(*[e for e in event_id_sets if e is not None]))
    compiled = CompiledRule(
        rule_id=str(rule.id or rule.title), title=rule.title or "",
        level=rule.level.name.lower() if rule.level else "medium",
        tags=[f"{t.namespace}.{t.name}" for t in rule.tags],
        description=rule.description or "",
        product=rule.logsource.product, category=rule.logsource.category,
        service=rule.logsource.service, path=where, source=source, fields=gen.fields,
        literals=literals, warnings=gen.warnings, code=marshal.dumps(code),
        name=getattr(rule, "name", None), keywords=gen.keywords_used, event_ids=event_ids,
        atoms=atoms, also_atoms=also_atoms)
    # execute once now so constant errors (bad CIDR, bad regex) surface at compile time
    try:
        compiled._predicate = load_predicate(compiled.code)
    except (ValueError, TypeError, RuleError) as exc:
        raise RuleCompileError(f"rule constants do not load: {exc}", where) from exc
    return compiled


def compile_expression_tree(trees: Sequence[Any], path: str = "") -> Predicate:
    """Compile bare condition trees (used by tests and hunts on sub-conditions)."""
    gen = _Codegen(path)
    body = " or ".join(gen.node(t) for t in trees) or "False"
    source = "\n".join([*gen.consts, "def match(L, R):", f"    return bool({body})", ""])
    return load_predicate(marshal.dumps(compile(source, "<sigma>", "exec")))


def iter_fields(rules: Iterable[CompiledRule]) -> set[str]:
    return {f for r in rules for f in r.fields}
