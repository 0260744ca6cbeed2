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

from detection.sigma.compiler import Atom

log = logging.getLogger("govsoc.detection.sigma")

#: Memory one route's literal set may use for its DFA.
SET_MAX_MEM = 256 << 20

#: field name → (lower-cased value or file name → rules needing it)
FieldIndex = tuple[tuple[str, dict[str, tuple[int, ...]]], ...]


def _index(owners: dict[str, dict[str, list[int]]]) -> FieldIndex:
    return tuple((name, {v: tuple(rules) for v, rules in table.items()})
                 for name, table in sorted(owners.items()))


@dataclass
class Prefilter:
    """Candidate rules of one route."""

    #: rules evaluated on every event of the route (no atoms)
    always: tuple[int, ...]
    #: the literals, in number order (lower-cased)
    literals: tuple[str, ...]
    #: literal number → rules needing it
    by_literal: list[tuple[int, ...]]
    #: rules needing a field to equal a value
    equal: FieldIndex
    #: rules needing a field's file name (after the last backslash) to be a value
    file_name: FieldIndex
    rule_count: int
    _set: Any = field(default=None, repr=False)
    _automaton: ahocorasick.Automaton | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
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
            self.by_literal.append(())

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
    def build(cls, rules: Sequence[int], atoms: Sequence[Sequence[Atom] | None]) -> Prefilter:
        """``rules`` are rule numbers; ``atoms[n]`` is rule n's atom set or None."""
        always: list[int] = []
        literals: dict[str, list[int]] = {}
        equal: dict[str, dict[str, list[int]]] = {}
        file_name: dict[str, dict[str, list[int]]] = {}
        for n in rules:
            rule_atoms = atoms[n]
            if not rule_atoms:
                always.append(n)
                continue
            for atom in rule_atoms:
                if atom[0] == "lit":
                    owners = literals.setdefault(atom[1], [])
                else:
                    table = equal if atom[0] == "eq" else file_name
                    owners = table.setdefault(atom[1], {}).setdefault(atom[2], [])
                if not owners or owners[-1] != n:
                    owners.append(n)
        return cls(tuple(always), tuple(literals), [tuple(o) for o in literals.values()],
                   _index(equal), _index(file_name), len(rules))

    def candidates(self, text: str, low: dict[str, Any]) -> list[int]:
        """Rule numbers worth evaluating on an event, sorted: ``text`` is its lower-cased
        text, ``low`` its lower-cased values by field name."""
        found = set(self.always)
        if self._set is not None:
            hits = self._set(text.encode("utf-8", "surrogatepass"))
            by_literal = self.by_literal
            for n in hits if hits else self._fallback(text):
                found.update(by_literal[n])
        for name, table in self.equal:
            value = low.get(name)
            if value is None:
                continue
            if value.__class__ is str:
                hit = table.get(value)
                if hit is not None:
                    found.update(hit)
            else:
                for element in value:
                    hit = table.get(element)
                    if hit is not None:
                        found.update(hit)
        for name, table in self.file_name:
            value = low.get(name)
            if value is None:
                continue
            if value.__class__ is str:
                hit = table.get(value.rpartition("\\")[2])
                if hit is not None:
                    found.update(hit)
            else:
                for element in value:
                    hit = table.get(element.rpartition("\\")[2])
                    if hit is not None:
                        found.update(hit)
        if len(found) > 1:
            return sorted(found)
        return list(found)
