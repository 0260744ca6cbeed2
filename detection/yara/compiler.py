"""Compiling YARA rule sets: finding rule files, leaving out the ones that fail,
and caching the compiled result by content hash.

A rule set is a list of directories (or single files). Every ``.yar``/``.yara``
file becomes its own namespace (its path relative to the directory it was found
in), so two files may define rules of the same name. Files that consist only of
``include`` statements (the ``*_index.yar`` files of community rule sets) are
left out: their members are loaded directly, and loading both would define every
rule twice.

A file that does not compile is reported (:class:`SkippedFile`, with file, line
and libyara's reason) and left out; the rest still load. A file that fails only
because it uses a rule defined in another file of the set (a shared private rule
such as ``is__elf``) is compiled again with that file included, as the rule set's
own index files would have done.

Rules are compiled with the external variables LOKI and THOR define for every
scanned file (``filename``, ``filepath``, ``extension``, ``filetype``, ``owner``);
the scanner sets their values per file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yara

from govsoc.errors import RuleError

log = logging.getLogger(__name__)

#: External variables real rule sets expect, with the value used at compile time.
EXTERNALS: dict[str, str] = {
    "filename": "", "filepath": "", "extension": "", "filetype": "", "owner": "",
}

RULE_SUFFIXES = (".yar", ".yara")

#: Bumped when the way rules are compiled changes, so old cache entries are not reused.
_CACHE_FORMAT = 2

_ERROR_LOCATION = re.compile(r"^(?P<path>.*?)\((?P<line>\d+)\): (?P<reason>.*)$", re.S)
_UNDEFINED = re.compile(r'undefined identifier "(?P<name>[A-Za-z0-9_]+)"')
_RULE_DEFINITION = re.compile(
    rb"^\s*(?:(?:private|global)\s+)*rule\s+([A-Za-z0-9_]+)", re.M)
_COMMENTS = re.compile(rb"/\*.*?\*/|//[^\n]*", re.S)
_INCLUDE = re.compile(rb'^\s*include\s+"[^"]*"\s*$', re.M)


@dataclass(frozen=True)
class SkippedFile:
    """A rule file left out of the compiled set, and why."""

    path: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.reason}"

    def as_error(self) -> RuleError:
        return RuleError(self.reason, self.path, self.line)


@dataclass
class CompileReport:
    """What went into a compiled rule set."""

    files: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    index_files: list[str] = field(default_factory=list)
    #: files compiled with the file defining a rule they use included first
    repaired: list[str] = field(default_factory=list)
    rules: int = 0
    warnings: list[str] = field(default_factory=list)
    key: str = ""
    from_cache: bool = False
    seconds: float = 0.0

    def summary(self) -> str:
        text = (f"{self.rules:,} rules from {len(self.files):,} files; "
                f"{len(self.skipped)} files skipped, {len(self.index_files)} index files "
                f"left out, {len(self.repaired)} compiled with a sibling's definitions, "
                f"{len(self.warnings)} warnings")
        return text + (" (cached)" if self.from_cache else f" ({self.seconds:.1f}s)")


@dataclass
class CompiledRules:
    """A compiled rule set: the file it was saved to and the report."""

    path: Path
    report: CompileReport

    def load(self) -> yara.Rules:
        """A fresh ``yara.Rules`` (one per scanning thread: externals are per object)."""
        return yara.load(str(self.path))


@dataclass(frozen=True)
class RuleFile:
    path: Path
    namespace: str
    content: bytes


def builtin_rules_dir() -> Path:
    """Our own rules, shipped in ``rules/yara``."""
    import rules

    return Path(rules.__file__).resolve().parent / "yara"


def resolve_rule_dirs(entries: Iterable[str]) -> list[Path]:
    """Rule directories from config/CLI entries; ``builtin`` means ``rules/yara``."""
    return [builtin_rules_dir() if e == "builtin" else Path(e) for e in entries]


def find_rule_files(sources: Sequence[Path]) -> list[RuleFile]:
    """Rule files under ``sources`` (directories or files), in a stable order."""
    found: list[RuleFile] = []
    seen: set[Path] = set()
    for source in sources:
        if source.is_file():
            candidates = [(source, source.name)]
        elif source.is_dir():
            candidates = []
            for dirpath, dirnames, filenames in os.walk(source):
                dirnames.sort()
                for name in sorted(filenames):
                    if name.lower().endswith(RULE_SUFFIXES):
                        path = Path(dirpath) / name
                        candidates.append((path, f"{source.name}/{path.relative_to(source)}"))
        else:
            raise RuleError("no such rule file or directory", str(source))
        for path, namespace in candidates:
            real = path.resolve()
            if real in seen:
                continue
            seen.add(real)
            try:
                content = path.read_bytes()
            except OSError as exc:
                raise RuleError(f"cannot read rule file: {exc.strerror}", str(path)) from exc
            found.append(RuleFile(path, namespace, content))
    return found


def is_index_file(content: bytes) -> bool:
    """True when a rule file holds nothing but ``include`` statements."""
    body = _COMMENTS.sub(b"", content)
    if not _INCLUDE.search(body):
        return False
    return not _INCLUDE.sub(b"", body).strip()


def _parse_error(error: yara.Error, fallback_path: str) -> SkippedFile:
    text = str(error)
    found = _ERROR_LOCATION.match(text)
    if found:
        return SkippedFile(found["path"], found["reason"], int(found["line"]))
    return SkippedFile(fallback_path, text)


def _set_key(files: Sequence[RuleFile]) -> str:
    digest = hashlib.sha256()
    digest.update(f"{_CACHE_FORMAT}|{yara.YARA_VERSION}|{sorted(EXTERNALS)}".encode())
    for rule_file in files:
        digest.update(rule_file.namespace.encode() + b"\0")
        digest.update(hashlib.sha256(rule_file.content).digest())
    return digest.hexdigest()


class RuleCompiler:
    """Compiles rule directories into one rule set, with a content-hash cache."""

    def __init__(self, cache_dir: Path | None = None) -> None:
        self.cache_dir = cache_dir

    def compile(self, sources: Sequence[Path]) -> CompiledRules:
        started = time.monotonic()
        files = find_rule_files(sources)
        key = _set_key(files)
        cached = self._cached(key)
        if cached is not None:
            return cached
        report = CompileReport(key=key)
        candidates: list[RuleFile] = []
        for rule_file in files:
            if is_index_file(rule_file.content):
                report.index_files.append(str(rule_file.path))
            else:
                candidates.append(rule_file)
        rules, loaded = self._compile_leaving_out_failures(candidates, report)
        report.files = [str(f.path) for f in loaded]
        report.rules = sum(1 for _ in rules) if rules is not None else 0
        report.warnings = list(getattr(rules, "warnings", []) or [])
        report.seconds = time.monotonic() - started
        path = self._save(rules, report)
        for skipped in report.skipped:
            log.warning("YARA rule file left out: %s", skipped)
        return CompiledRules(path, report)

    # ---------------------------------------------------------------- compiling
    def _compile_leaving_out_failures(
        self, candidates: list[RuleFile], report: CompileReport
    ) -> tuple[yara.Rules | None, list[RuleFile]]:
        """Compile all candidates; a failing file is repaired or left out, then retried.

        libyara stops at the first error and names its file, so each round removes
        (or repairs) exactly one file.
        """
        definers = self._rule_definers(candidates)
        sources = {f.namespace: self._source(f) for f in candidates}
        members = {f.namespace: f for f in candidates}
        repaired: set[str] = set()
        while sources:
            try:
                rules = yara.compile(sources=sources, externals=EXTERNALS,
                                     includes=True, error_on_warning=False)
                return rules, list(members.values())
            except yara.Error as exc:
                failure = _parse_error(exc, "")
            failed = self._locate(failure, sources, members)
            if failed is None:
                raise RuleError(f"cannot compile rule set: {failure}")
            fixed = self._with_definitions(failed, failure, definers, repaired)
            if fixed is not None:
                sources[failed.namespace] = fixed
                repaired.add(failed.namespace)
                report.repaired.append(f"{failed.path}: {failure.reason}; compiled with "
                                       f"the file that defines it")
                continue
            report.skipped.append(failure)
            del sources[failed.namespace]
            del members[failed.namespace]
        return None, []

    @staticmethod
    def _source(rule_file: RuleFile) -> str:
        # included rather than inlined, so libyara's errors name the real file and line
        return f'include "{_escape(str(rule_file.path.resolve()))}"\n'

    @staticmethod
    def _rule_definers(candidates: Sequence[RuleFile]) -> dict[str, RuleFile]:
        definers: dict[str, RuleFile] = {}
        for rule_file in candidates:
            for name in _RULE_DEFINITION.findall(rule_file.content):
                definers.setdefault(name.decode(), rule_file)
        return definers

    @staticmethod
    def _locate(failure: SkippedFile, sources: dict[str, str],
                members: dict[str, RuleFile]) -> RuleFile | None:
        """The namespace to blame: the failing file itself, else one including it."""
        if not failure.path:
            return None
        real = Path(failure.path).resolve()
        for member in members.values():
            if member.path.resolve() == real:
                return member
        quoted = f'"{_escape(str(real))}"'
        for namespace, text in sources.items():
            if quoted in text:
                return members[namespace]
        return None

    @staticmethod
    def _with_definitions(failed: RuleFile, failure: SkippedFile,
                          definers: dict[str, RuleFile], repaired: set[str]) -> str | None:
        """The file's source with the file defining its missing rule included first."""
        missing = _UNDEFINED.search(failure.reason)
        if missing is None or failed.namespace in repaired:
            return None
        definer = definers.get(missing["name"])
        if definer is None or definer.path == failed.path:
            return None
        return (f'include "{_escape(str(definer.path.resolve()))}"\n'
                f'include "{_escape(str(failed.path.resolve()))}"\n')

    # ---------------------------------------------------------------- cache
    def _cached(self, key: str) -> CompiledRules | None:
        if self.cache_dir is None:
            return None
        rules_path = self.cache_dir / f"{key}.yarc"
        report_path = self.cache_dir / f"{key}.json"
        if not (rules_path.is_file() and report_path.is_file()):
            return None
        try:
            data = json.loads(report_path.read_text())
            data["skipped"] = [SkippedFile(**s) for s in data["skipped"]]
            report = CompileReport(**data)
        except (OSError, ValueError, TypeError, KeyError):
            return None
        report.from_cache = True
        return CompiledRules(rules_path, report)

    def _save(self, rules: yara.Rules | None, report: CompileReport) -> Path:
        if rules is None:
            rules = yara.compile(source="", externals=EXTERNALS)
        directory = self.cache_dir
        if directory is None:
            directory = Path(tempfile.mkdtemp(prefix="govsoc-yara-"))
        directory.mkdir(parents=True, exist_ok=True)
        rules_path = directory / f"{report.key}.yarc"
        # write then rename, so a concurrent reader never loads half a file
        partial = directory / f".{report.key}.{os.getpid()}.tmp"
        rules.save(str(partial))
        os.replace(partial, rules_path)
        if self.cache_dir is not None:
            data = asdict(report)
            data.pop("from_cache")
            report_partial = directory / f".{report.key}.{os.getpid()}.json.tmp"
            report_partial.write_text(json.dumps(data))
            os.replace(report_partial, directory / f"{report.key}.json")
        return rules_path


def _escape(path: str) -> str:
    return path.replace("\\", "\\\\").replace('"', '\\"')


def compile_rules(sources: Sequence[Path], cache_dir: Path | None = None) -> CompiledRules:
    """Compile rule directories/files (see :class:`RuleCompiler`)."""
    return RuleCompiler(cache_dir).compile(sources)
