"""The literal prefilter: which rules can possibly match an event.

Most rules need at least one literal (an image name, a command-line fragment)
somewhere in any event they match; :func:`detection.sigma.compiler.required_literals`
finds such a set per rule. One Aho-Corasick automaton (pyahocorasick) over the
literals of all rules of a route finds, in one pass over the event's
lower-cased text, every rule whose literal occurs; only those rules and the
few without literals are evaluated in full.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import ahocorasick


@dataclass
class Prefilter:
    """Candidate rules of one route."""

    #: rules evaluated on every event of the route (no required literal)
    always: tuple[int, ...]
    automaton: ahocorasick.Automaton | None
    #: literal number → rules needing it
    by_literal: list[tuple[int, ...]]
    rule_count: int

    @classmethod
    def build(cls, rules: Sequence[int], literals: Sequence[list[str] | None]) -> Prefilter:
        """``rules`` are rule numbers; ``literals[n]`` is rule n's literal set or None."""
        always: list[int] = []
        owners: dict[str, list[int]] = {}
        for n in rules:
            lits = literals[n]
            if not lits:
                always.append(n)
                continue
            for lit in lits:
                owners.setdefault(lit, []).append(n)
        automaton = None
        by_literal: list[tuple[int, ...]] = []
        if owners:
            automaton = ahocorasick.Automaton()
            for number, (lit, owner) in enumerate(owners.items()):
                automaton.add_word(lit, number)
                by_literal.append(tuple(owner))
            automaton.make_automaton()
        return cls(tuple(always), automaton, by_literal, len(rules))

    def candidates(self, text: str) -> list[int]:
        """Rule numbers worth evaluating on an event with this lower-cased text, sorted."""
        if self.automaton is None:
            return list(self.always)
        hits = {n for _, n in self.automaton.iter(text)}
        if not hits:
            return list(self.always)
        found = set(self.always)
        by_literal = self.by_literal
        for n in hits:
            found.update(by_literal[n])
        return sorted(found)
