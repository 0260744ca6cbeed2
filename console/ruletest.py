"""Checking and trying a rule from the console: validate a Sigma or YARA rule text
with the detection engines' own loaders, and run it over recent stored events.

Sigma rules go through ``detection.sigma`` (pySigma parsing, the govsoc field
mapping, the rule compiler and the streaming detector), so a rule that passes
here is the rule the detector runs. YARA rules are compiled with the same
external variables the scanner defines, and are run over the raw text
(``event.original``) of the events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from govsoc.events import get_field, utcnow
from store.base import EventQuery, Store

#: how much history a test reads at most
MAX_TEST_EVENTS = 20_000
MAX_SHOWN = 50
YARA_TIMEOUT_SECONDS = 2
_YARA_LINE = re.compile(r"^line (\d+)")


@dataclass
class Problem:
    message: str
    line: int | None = None
    severity: str = "error"


@dataclass
class Checked:
    """A validated rule text: the ids it defines and what is wrong with it."""

    language: str
    ids: list[str] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    compiled: Any = None

    @property
    def ok(self) -> bool:
        return bool(self.ids) and not any(p.severity == "error" for p in self.problems)


def check_sigma(text: str, path: str = "(uploaded rule)") -> Checked:
    from detection.sigma.loader import parse_rule_text, validate_rules
    from detection.sigma.ruleset import compile_rule_file

    checked = Checked("sigma")
    rule_file = parse_rule_text(text, path)
    compiled, problems = compile_rule_file(rule_file)
    found = [Problem(p.message, p.line, p.severity) for p in problems]
    try:
        found += [Problem(p.message, p.line, p.severity) for p in validate_rules([rule_file])]
    except Exception as exc:  # a validator's own failure must not hide the rule's state
        found.append(Problem(f"validators failed: {exc}", None, "warning"))
    seen: set[tuple[str, int | None]] = set()
    for problem in found:
        if (problem.message, problem.line) not in seen:
            seen.add((problem.message, problem.line))
            checked.problems.append(problem)
    checked.ids = [rule.rule_id for rule in compiled]
    checked.names = [rule.title for rule in compiled]
    checked.compiled = (compiled, rule_file.correlations)
    if not compiled and not checked.problems:
        checked.problems.append(Problem("the text holds no Sigma rule"))
    return checked


def check_yara(text: str) -> Checked:
    import yara

    from detection.yara.compiler import EXTERNALS

    checked = Checked("yara")
    try:
        rules = yara.compile(source=text, externals=dict(EXTERNALS))
    except yara.SyntaxError as exc:
        message = str(exc)
        match = _YARA_LINE.search(message)
        if match:
            message = message[match.end():].lstrip(": ") or message
        checked.problems.append(Problem(message, int(match.group(1)) if match else None))
        return checked
    except yara.Error as exc:
        checked.problems.append(Problem(str(exc)))
        return checked
    names = [rule.identifier for rule in rules]
    checked.ids = [f"yara:{name}" for name in names]
    checked.names = names
    checked.compiled = rules
    if not names:
        checked.problems.append(Problem("the text holds no YARA rule"))
    return checked


def check(language: str, text: str) -> Checked:
    return check_sigma(text) if language == "sigma" else check_yara(text)


@dataclass
class TestRun:
    """A rule run over recent events: how many were read and which matched."""

    scanned: int = 0
    matched: int = 0
    matches: list[tuple[dict[str, Any], list[str]]] = field(default_factory=list)
    hours: int = 24
    truncated: bool = False


def recent_events(store: Store, hours: int, limit: int = MAX_TEST_EVENTS) -> Any:
    """Events of the last ``hours``, newest first, at most ``limit``, page by page."""
    query = EventQuery(start=utcnow() - timedelta(hours=hours), limit=1000)
    read = 0
    while read < limit:
        page = store.search_events(query)
        for event in page.items:
            yield event
            read += 1
            if read >= limit:
                return
        if not page.next_cursor:
            return
        query.after = page.next_cursor


def run_test(store: Store, checked: Checked, hours: int, only: str | None = None) -> TestRun:
    """Run a checked rule text (or only the rule ``only``) over recent stored events."""
    run = TestRun(hours=hours)
    if checked.language == "sigma":
        from detection.sigma.engine import SigmaDetector
        from detection.sigma.ruleset import RuleSet

        compiled, _correlations = checked.compiled
        chosen = [r for r in compiled if only is None or r.rule_id == only]
        detector = SigmaDetector(RuleSet(rules=chosen), correlate=False)

        def matches(event: dict[str, Any]) -> list[str]:
            return [r.rule_id for r in detector.match_event(event)]
    else:
        rules = checked.compiled
        wanted = None if only is None else only.removeprefix("yara:")

        def matches(event: dict[str, Any]) -> list[str]:
            raw = get_field(event, "event.original")
            if not raw:
                return []
            data = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else bytes(raw)
            found = rules.match(data=data, timeout=YARA_TIMEOUT_SECONDS)
            return [f"yara:{m.rule}" for m in found if wanted is None or m.rule == wanted]
    for event in recent_events(store, hours):
        run.scanned += 1
        hit = matches(event)
        if hit:
            run.matched += 1
            if len(run.matches) < MAX_SHOWN:
                run.matches.append((event, hit))
    run.truncated = run.scanned >= MAX_TEST_EVENTS
    return run
