"""The prefilter: which rules can possibly match an event.

Most rules need, in any event they match, one of a few *atoms*
(:func:`detection.sigma.compiler.required_atoms`): a literal somewhere in the
event (a command-line fragment), or a plain value of one field (an image's
file name, an ``OriginalFileName``, a ``LogonType``). One Aho-Corasick automaton
(pyahocorasick) over the literals of all rules of a route finds, in one pass
over the event's lower-cased text, every rule whose literal occurs; one
dictionary lookup per indexed field finds the rules whose field value is
there. Only those rules and the few without atoms are evaluated in full.

The literals are searched with an RE2 set (google-re2): its lazily built DFA
reports each literal once, at a few nanoseconds a byte, where walking an
Aho-Corasick automaton from Python yields every occurrence. The set always
contains an empty pattern that matches every text, so a search the DFA gave
up on (its memory budget spent) is told apart from "no literal", and that
event is searched with the Aho-Corasick automaton (pyahocorasick) instead.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import ahocorasick
import re2

from detection.sigma.compiler import Atom, _text

log = logging.getLogger("govsoc.detection.sigma")

#: Memory one route's literal set may use for its DFA.
SET_MAX_MEM = 256 << 20

#: field name → (lower-cased value or file name → atom number)
FieldIndex = tuple[tuple[str, dict[str, int]], ...]


def _index(numbers: dict[Atom, int], kind: str) -> FieldIndex:
    tables: dict[str, dict[str, int]] = {}
    for atom, number in numbers.items():
        if atom[0] == kind:
            tables.setdefault(atom[1], {})[atom[2]] = number
    return tuple(sorted(tables.items()))


@dataclass
class Prefilter:
    """Candidate rules of one route.

    Every atom of the route has a number: literals first (their number is their
    pattern's in the RE2 set), then the empty pattern, then field atoms. An event
    gives the set of atom numbers that hold; a rule is a candidate when one of its
    atoms holds and, if it has a second group, one of those holds too.
    """

    #: rules evaluated on every event of the route (no atoms)
    always: tuple[int, ...]
    #: the literals, in number order (lower-cased)
    literals: tuple[str, ...]
    #: atom number → rules for which it is one of their (first group of) atoms
    owners: list[tuple[int, ...]]
    #: field atoms whose field must equal a value
    equal: FieldIndex
    #: field atoms whose field's file name (after the last backslash) must be a value
    file_name: FieldIndex
    #: rule → atom numbers of its second group
    also: dict[int, frozenset[int]]
    rule_count: int
    #: field → its regular-expression atoms (pattern, atom number)
    regexes: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = ()
    _set: Any = field(default=None, repr=False)
    _automaton: ahocorasick.Automaton | None = field(default=None, repr=False)
    #: field → (RE2 set search, pattern number → atom number, atoms of refused patterns)
    _regex_sets: list[tuple[str, Any, tuple[int, ...], tuple[int, ...]]] = field(
        default_factory=list, repr=False)

    def __post_init__(self) -> None:
        for name, patterns in self.regexes:
            self._regex_sets.append((name, *self._regex_set(patterns)))
        if self.literals:
            options = re2.Options()
            options.encoding = re2.Options.Encoding.LATIN1
            options.max_mem = SET_MAX_MEM
            options.log_errors = False
            literal_set = re2._re2.Set(re2._Anchor.UNANCHORED, options)
            # each literal as its UTF-8 bytes, matched byte for byte
            for literal in self.literals:
                data = literal.encode("utf-8", "surrogatepass")
                literal_set.Add("".join(f"\\x{b:02x}" for b in data).encode())
            literal_set.Add(b"")  # matches every text: an empty answer means "gave up"
            if not literal_set.Compile():
                raise re2.error("cannot compile the prefilter's literal set")
            self._set = literal_set.Match

    def _regex_set(self, patterns: tuple[tuple[str, int], ...]
                   ) -> tuple[Any, tuple[int, ...], tuple[int, ...]]:
        """One RE2 set of a field's patterns; a pattern the set refuses holds always."""
        options = re2.Options()
        options.max_mem = SET_MAX_MEM
        options.log_errors = False
        regex_set = re2._re2.Set(re2._Anchor.UNANCHORED, options)
        numbers: list[int] = []
        refused: list[int] = []
        for pattern, number in patterns:
            if regex_set.Add(pattern.encode("utf-8", "surrogatepass")) == -1:
                refused.append(number)
            else:
                numbers.append(number)
        regex_set.Add(b"")
        numbers.append(len(self.literals))  # the empty pattern: an atom no rule owns
        if not regex_set.Compile():
            raise re2.error("cannot compile the prefilter's regular-expression set")
        return regex_set.Match, tuple(numbers), tuple(refused)

    @property
    def has_literals(self) -> bool:
        return bool(self.literals)

    def _fallback(self, text: str) -> set[int]:
        """Literal numbers in ``text`` by Aho-Corasick, for when the DFA gives up."""
        if self._automaton is None:
            log.warning("prefilter DFA out of memory (%d literals); searching with "
                        "Aho-Corasick", len(self.literals))
            self._automaton = ahocorasick.Automaton()
            for number, literal in enumerate(self.literals):
                self._automaton.add_word(literal, number)
            self._automaton.make_automaton()
        return {n for _, n in self._automaton.iter(text)}

    @classmethod
    def build(cls, rules: Sequence[int], atoms: Sequence[Sequence[Atom] | None],
              also: Sequence[Sequence[Atom] | None] = ()) -> Prefilter:
        """``rules`` are rule numbers; ``atoms[n]`` is rule n's atom set or None,
        ``also[n]`` its second group or None."""
        always: list[int] = []
        chosen: list[tuple[int, Sequence[Atom], Sequence[Atom] | None]] = []
        for n in rules:
            if not atoms[n]:
                always.append(n)
            else:
                chosen.append((n, atoms[n] or (), also[n] if n < len(also) else None))
        every = {a for _, first, second in chosen for a in (*first, *(second or ()))}
        literals = sorted(a[1] for a in every if a[0] == "lit")
        numbers: dict[Atom, int] = {("lit", lit): i for i, lit in enumerate(literals)}
        for atom in sorted(a for a in every if a[0] != "lit"):
            numbers[atom] = len(literals) + 1 + len(numbers) - len(literals)
        owners: list[list[int]] = [[] for _ in range(len(literals) + 1 + len(numbers)
                                                     - len(literals))]
        second_groups: dict[int, frozenset[int]] = {}
        for n, first, second in chosen:
            for atom in first:
                owners[numbers[atom]].append(n)
            if second:
                second_groups[n] = frozenset(numbers[a] for a in second)
        regexes: dict[str, list[tuple[str, int]]] = {}
        for atom, number in numbers.items():
            if atom[0] == "re":
                regexes.setdefault(atom[1], []).append((atom[2], number))
        return cls(tuple(always), tuple(literals), [tuple(o) for o in owners],
                   _index(numbers, "eq"), _index(numbers, "base"), second_groups, len(rules),
                   tuple((name, tuple(p)) for name, p in sorted(regexes.items())))

    def field_index(self) -> dict[str, tuple[dict[str, int] | None, dict[str, int] | None]]:
        """Field → (value → atom number, file name → atom number), for a view that looks
        the values up as it reads them (:class:`detection.sigma.eventview.FieldPlan`)."""
        out: dict[str, tuple[dict[str, int] | None, dict[str, int] | None]] = {}
        equal = dict(self.equal)
        file_name = dict(self.file_name)
        for name in {*equal, *file_name}:
            out[name] = (equal.get(name), file_name.get(name))
        return out

    def candidates(self, text: str, low: dict[str, Any], raw: dict[str, Any]) -> list[int]:
        """Rule numbers worth evaluating on an event, sorted: ``text`` is its lower-cased
        text, ``low`` and ``raw`` its lower-cased and raw values by field name."""
        hits: set[int] = set()
        for name, table in self.equal:
            value = low.get(name)
            if value is None:
                continue
            if value.__class__ is str:
                number = table.get(value)
                if number is not None:
                    hits.add(number)
            else:
                for element in value:
                    number = table.get(element)
                    if number is not None:
                        hits.add(number)
        for name, table in self.file_name:
            value = low.get(name)
            if value is None:
                continue
            if value.__class__ is str:
                number = table.get(value.rpartition("\\")[2])
                if number is not None:
                    hits.add(number)
            else:
                for element in value:
                    number = table.get(element.rpartition("\\")[2])
                    if number is not None:
                        hits.add(number)
        return self.candidates_from(text, raw, hits)

    def candidates_from(self, text: str, raw: dict[str, Any], hits: set[int]) -> list[int]:
        """:meth:`candidates` for an event whose field atoms that hold are ``hits``
        already (looked up by the view; the set is extended)."""
        if self._set is not None:
            found = self._set(text.encode("utf-8", "surrogatepass"))
            hits.update(found if found else self._fallback(text))
        for name, search, pattern_atoms, refused in self._regex_sets:
            value = raw.get(name)
            if value is None:
                continue
            if refused:
                hits.update(refused)
            for element in value if value.__class__ is list or value.__class__ is tuple \
                    else (value,):
                if element is None:
                    continue
                if element.__class__ is not str:
                    element = _text(element)
                found = search(element.encode("utf-8", "surrogatepass"))
                if found:
                    hits.update(pattern_atoms[i] for i in found)
                else:  # the DFA gave up: every pattern may hold
                    hits.update(pattern_atoms)
        found_rules = set(self.always)
        owners = self.owners
        for number in hits:
            found_rules.update(owners[number])
        if self.also:
            also = self.also
            out = [n for n in found_rules
                   if (group := also.get(n)) is None or not group.isdisjoint(hits)]
            out.sort()
            return out
        if len(found_rules) > 1:
            return sorted(found_rules)
        return list(found_rules)
