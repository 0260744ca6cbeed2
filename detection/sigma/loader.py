"""Loading Sigma rule files: YAML → pySigma rule objects, with problems located.

Rules come from directories (ours in ``rules/sigma`` — "builtin" — and any
user directory such as a SigmaHQ checkout). Each file is parsed on its own
with pySigma (``SigmaCollection``, which handles multi-document files, global
actions and correlation rules); a file or rule that does not parse is
reported with its file and line and skipped, and the rest load. pySigma's
validators add warnings (dangling detections, invalid modifier combinations,
bad ATT&CK tags...) without stopping a rule.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError, SigmaRuleLocation
from sigma.rule import SigmaRule

from govsoc.errors import RuleError

RULE_SUFFIXES = (".yml", ".yaml")

#: pySigma validators whose findings point at a real defect in a rule.
VALIDATORS = (
    "dangling_condition", "dangling_detection", "identifier_existence",
    "invalid_modifier_combinations", "control_character", "attacktag",
    "all_of_them_condition", "them_condition_with_single_detection",
)


@dataclass
class RuleProblem:
    """Something wrong with a rule file; ``error`` problems kept the rule out."""

    path: str
    line: int | None
    message: str
    severity: str = "error"
    rule_id: str | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.severity}: {self.message}"

    def as_error(self) -> RuleError:
        return RuleError(self.message, self.path, self.line)


@dataclass
class RuleFile:
    """One parsed rule file."""

    path: str
    text: str
    digest: str
    rules: list[SigmaRule] = field(default_factory=list)
    correlations: list[SigmaCorrelationRule] = field(default_factory=list)
    problems: list[RuleProblem] = field(default_factory=list)


def builtin_rules_dir() -> Path:
    """``rules/sigma`` as shipped in the package."""
    return Path(str(importlib.resources.files("rules") / "sigma"))


def resolve_rule_paths(entries: Iterable[str | Path]) -> list[Path]:
    """Directories and files named in configuration; "builtin" is ``rules/sigma``."""
    out: list[Path] = []
    for entry in entries:
        out.append(builtin_rules_dir() if str(entry) == "builtin" else Path(entry))
    return out


def iter_rule_files(paths: Iterable[str | Path]) -> Iterator[Path]:
    """Rule files under ``paths`` (directories are walked in sorted order)."""
    for path in resolve_rule_paths(paths):
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*")
                              if p.suffix in RULE_SUFFIXES and p.is_file())
        elif path.exists():
            yield path
        else:
            raise RuleError("no such rule file or directory", str(path))


def content_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def error_line(text: str, exc: BaseException) -> int | None:
    """Best line for an error: YAML marks, pySigma locations, or the detection block."""
    mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
    if mark is not None:
        return int(mark.line) + 1
    source = getattr(exc, "source", None)
    if isinstance(source, SigmaRuleLocation) and source.line:
        return source.line
    message = str(exc)
    for quoted in re.findall(r"'([^'\n]{2,80})'", message):
        needle = quoted.split("|")[0]
        for number, line in enumerate(text.splitlines(), 1):
            if needle in line:
                return number
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("detection:"):
            return number
    return None


def _rule_line(text: str, rule_id: Any) -> int | None:
    if rule_id:
        for number, line in enumerate(text.splitlines(), 1):
            if str(rule_id) in line and line.lstrip().startswith("id:"):
                return number
    return None


def parse_rule_text(text: str, path: str = "<text>") -> RuleFile:
    """Parse one file's text; problems are collected, never raised."""
    rule_file = RuleFile(path=path, text=text, digest=content_digest(text))
    location = SigmaRuleLocation(Path(path))
    try:
        documents = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        rule_file.problems.append(RuleProblem(path, error_line(text, exc),
                                              f"not valid YAML: {exc}"))
        return rule_file
    documents = [d for d in documents if d is not None]
    for number, doc in enumerate(documents, 1):
        if not isinstance(doc, dict):
            rule_file.problems.append(RuleProblem(
                path, None, f"document {number} is not a mapping of rule keys"))
    documents = [d for d in documents if isinstance(d, dict)]
    try:
        collection = SigmaCollection.from_dicts(documents, collect_errors=True,
                                                source=location, resolve_references=False)
    except (SigmaError, ValueError, TypeError, KeyError, AttributeError) as exc:
        rule_file.problems.append(RuleProblem(path, error_line(text, exc), str(exc)))
        return rule_file
    for item in collection.rules:
        errors = list(getattr(item, "errors", []) or [])
        rule_id = str(getattr(item, "id", "") or "") or None
        if errors:
            for error in errors:
                rule_file.problems.append(RuleProblem(path, error_line(text, error), str(error),
                                                      rule_id=rule_id))
            continue
        if isinstance(item, SigmaCorrelationRule):
            rule_file.correlations.append(item)
        elif isinstance(item, SigmaRule):
            rule_file.rules.append(item)
    for error in collection.errors:
        if not any(str(error) == p.message for p in rule_file.problems):
            rule_file.problems.append(RuleProblem(path, error_line(text, error), str(error)))
    return rule_file


def load_rule_file(path: str | Path) -> RuleFile:
    """Read and parse one rule file."""
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        rule_file = RuleFile(path=str(path), text="", digest="")
        rule_file.problems.append(RuleProblem(str(path), None, f"cannot read: {exc.strerror}"))
        return rule_file
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        rule_file = RuleFile(path=str(path), text="", digest="")
        line = raw[: exc.start].count(b"\n") + 1
        rule_file.problems.append(RuleProblem(str(path), line, "not UTF-8 text"))
        return rule_file
    return parse_rule_text(text, str(path))


def validate_rules(files: Sequence[RuleFile]) -> list[RuleProblem]:
    """Run pySigma's validators over parsed rules; findings are warnings."""
    from sigma.validation import SigmaValidator
    from sigma.validators.core import validators

    chosen = [validators[name] for name in VALIDATORS if name in validators]
    validator = SigmaValidator(chosen)
    problems: list[RuleProblem] = []
    for rule_file in files:
        for rule in rule_file.rules:
            try:
                issues = validator.validate_rule(rule)
            except Exception as exc:
                issues = []
                problems.append(RuleProblem(rule_file.path, None, f"validator failed: {exc}",
                                            "warning", str(rule.id)))
            for issue in issues:
                problems.append(RuleProblem(
                    rule_file.path, _rule_line(rule_file.text, rule.id),
                    f"{issue.description} ({type(issue).__name__})", "warning",
                    str(rule.id) if rule.id else None))
    return problems
