"""A rule set ready to run: files loaded, mapped, compiled — and cached.

Compiling thousands of rules means parsing YAML and running pySigma for each;
the result depends only on the file's bytes, the mapping profile and the
engine version, so it is cached per file under the data directory
(``cache/sigma/<key>.pickle``). A changed file recompiles on its own; an
unchanged rule set loads from the cache in a fraction of the time.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.processing.pipeline import ProcessingPipeline

from detection.sigma.compiler import ENGINE_VERSION, CompiledRule, RuleCompileError, compile_rule
from detection.sigma.loader import (
    RuleFile,
    RuleProblem,
    content_digest,
    error_line,
    iter_rule_files,
    parse_rule_text,
    validate_rules,
)
from detection.sigma.mapping import mapping_pipeline
from govsoc.errors import RuleError

log = logging.getLogger("govsoc.detection.sigma")


@dataclass
class RuleSet:
    """Compiled rules, correlation rules and every problem met on the way."""

    rules: list[CompiledRule] = field(default_factory=list)
    correlations: list[SigmaCorrelationRule] = field(default_factory=list)
    problems: list[RuleProblem] = field(default_factory=list)
    files: int = 0
    cached_files: int = 0

    @property
    def errors(self) -> list[RuleProblem]:
        return [p for p in self.problems if p.severity == "error"]


def compile_rule_file(rule_file: RuleFile, pipeline_profile: str = "govsoc"
                      ) -> tuple[list[CompiledRule], list[RuleProblem]]:
    """Map and compile every rule of a parsed file; a bad rule is a problem, not a stop."""
    compiled: list[CompiledRule] = []
    problems = list(rule_file.problems)
    for rule in rule_file.rules:
        pipeline: ProcessingPipeline = mapping_pipeline(pipeline_profile)
        try:
            pipeline.apply(rule)
            compiled.append(compile_rule(rule, rule_file.path))
        except RuleError as exc:
            line = exc.line if exc.line is not None else error_line(rule_file.text, exc)
            problems.append(RuleProblem(rule_file.path, line, exc.reason,
                                        rule_id=str(rule.id or "") or None))
        except (SigmaError, ValueError, TypeError, KeyError, AttributeError,
                RecursionError) as exc:
            problems.append(RuleProblem(rule_file.path, error_line(rule_file.text, exc),
                                        f"cannot compile: {type(exc).__name__}: {exc}",
                                        rule_id=str(rule.id or "") or None))
    for rule_c in compiled:
        for warning in rule_c.warnings:
            problems.append(RuleProblem(rule_file.path, None, warning, "warning", rule_c.rule_id))
    return compiled, problems


def _code_fingerprint() -> str:
    """Changes whenever the compiler or the mapping changes, invalidating cached rules."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        here = Path(__file__).parent
        h = hashlib.sha256(ENGINE_VERSION.encode())
        for name in ("compiler.py", "mapping.py", "loader.py"):
            h.update((here / name).read_bytes())
        _FINGERPRINT = h.hexdigest()[:16]
    return _FINGERPRINT


_FINGERPRINT: str | None = None


def _cache_key(digest: str, profile: str) -> str:
    return hashlib.sha256(f"{_code_fingerprint()}\0{profile}\0{digest}".encode()).hexdigest()


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_ruleset(paths: Iterable[str | Path], profile: str = "govsoc",
                 cache_dir: str | Path | None = None, validate: bool = False) -> RuleSet:
    """Load, map and compile every rule under ``paths`` (cached under ``cache_dir``)."""
    result = RuleSet()
    cache = Path(cache_dir) if cache_dir else None
    parsed_for_validation: list[RuleFile] = []
    for path in _rule_files(paths, result):
        result.files += 1
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            result.problems.append(RuleProblem(str(path), None, f"cannot read rule file: {exc}"))
            continue
        digest = content_digest(text)
        entry = cache / f"{_cache_key(digest, profile)}.pickle" if cache else None
        has_correlation = "correlation:" in text
        if entry is not None and not has_correlation and not validate and entry.exists():
            try:
                rules, problems = pickle.loads(entry.read_bytes())  # noqa: S301 - our own cache
                for rule in rules:
                    rule.path = str(path)
                for problem in problems:
                    problem.path = str(path)
                result.rules.extend(rules)
                result.problems.extend(problems)
                result.cached_files += 1
                continue
            except (OSError, pickle.UnpicklingError, EOFError, AttributeError, TypeError) as exc:
                log.warning("rule cache entry %s unreadable (%s); recompiling", entry, exc)
        rule_file = parse_rule_text(text, str(path))
        rules, problems = compile_rule_file(rule_file, profile)
        result.rules.extend(rules)
        result.problems.extend(problems)
        result.correlations.extend(rule_file.correlations)
        if validate:
            parsed_for_validation.append(rule_file)
        if entry is not None and not has_correlation:
            try:
                _write_atomic(entry, pickle.dumps((rules, problems), protocol=5))
            except OSError as exc:
                log.warning("cannot write rule cache %s: %s", entry, exc)
    if validate:
        result.problems.extend(validate_rules(parsed_for_validation))
    _mark_correlation_only(result)
    return result


def _rule_files(paths: Iterable[str | Path], result: RuleSet) -> Iterable[Path]:
    """Rule files of every path; a missing path is a problem, the others still load."""
    for entry in paths:
        try:
            yield from iter_rule_files([entry])
        except RuleError as exc:
            result.problems.append(RuleProblem(exc.path, exc.line, exc.reason))


def _mark_correlation_only(result: RuleSet) -> None:
    """Rules referenced by a correlation with ``generate: false`` raise no alerts alone."""
    silent: set[str] = set()
    for corr in result.correlations:
        if getattr(corr, "generate", False):
            continue
        for ref in corr.rules or ():
            silent.add(str(getattr(ref, "reference", ref)))
    for rule in result.rules:
        if rule.rule_id in silent or (rule.name and rule.name in silent):
            rule.generate = False


def compile_texts(texts: Sequence[str], profile: str = "govsoc") -> RuleSet:
    """Compile rules given as YAML text (tests, the console's rule editor)."""
    result = RuleSet()
    for number, text in enumerate(texts, 1):
        rule_file = parse_rule_text(text, f"<rule {number}>")
        rules, problems = compile_rule_file(rule_file, profile)
        result.rules.extend(rules)
        result.problems.extend(problems)
        result.correlations.extend(rule_file.correlations)
        result.files += 1
    _mark_correlation_only(result)
    return result


__all__ = ["RuleCompileError", "RuleSet", "compile_rule_file", "compile_texts", "load_ruleset"]
