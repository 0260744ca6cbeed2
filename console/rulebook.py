"""The rules the console shows: Sigma and YARA rule files from the configured rule
directories, plus rules uploaded in the console, and each rule's enabled state.

Rule files are read as text here (to show them); the detection engines own
compiling them. Uploaded rules and the set of disabled rules live in the store's
settings so every console and detector sharing the store sees the same:

- ``rules.disabled``: list of rule ids switched off;
- ``rules.custom``: {first rule id of the upload: {"language", "name", "text", "ids",
  "uploaded_by", "uploaded_at"}}; one upload may define several rules.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from console.app import get_config, get_store

DISABLED_KEY = "rules.disabled"
CUSTOM_KEY = "rules.custom"
BUILTIN = Path(__file__).resolve().parent.parent / "rules"
MAX_RULE_BYTES = 512 * 1024
_YARA_RULE = re.compile(r"^\s*(?:(?:private|global)\s+)*rule\s+([A-Za-z_][A-Za-z0-9_]{0,127})",
                        re.MULTILINE)


@dataclass
class RuleInfo:
    id: str
    name: str
    language: str  # sigma | yara
    origin: str  # file path, or "uploaded"
    text: str
    level: str = ""
    status: str = ""
    tags: tuple[str, ...] = ()


def _dirs(kind: str) -> list[Path]:
    key = "detection.sigma_rules" if kind == "sigma" else "detection.yara_rules"
    out: list[Path] = []
    for entry in get_config().get(key, ["builtin"]) or []:
        if entry == "builtin":
            out.append(BUILTIN / kind)
        else:
            out.append(get_config().data_path(entry))
    return out


def sigma_infos(path: str, text: str) -> list[RuleInfo]:
    infos = []
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        return []
    for doc in docs:
        if isinstance(doc, dict) and doc.get("title"):
            infos.append(RuleInfo(
                id=str(doc.get("id") or doc.get("name") or doc["title"]),
                name=str(doc["title"]), language="sigma", origin=path, text=text,
                level=str(doc.get("level", "")), status=str(doc.get("status", "")),
                tags=tuple(str(t) for t in doc.get("tags", []) or [])))
    return infos


def yara_infos(path: str, text: str) -> list[RuleInfo]:
    return [RuleInfo(id=f"yara:{name}", name=name, language="yara", origin=path, text=text)
            for name in _YARA_RULE.findall(text)]


@lru_cache(maxsize=8)
def _file_rules(paths: tuple[tuple[str, float], ...]) -> tuple[RuleInfo, ...]:
    infos: list[RuleInfo] = []
    for path_text, _mtime in paths:
        path = Path(path_text)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")[:MAX_RULE_BYTES]
        except OSError:
            continue
        if path.suffix in (".yml", ".yaml"):
            infos.extend(sigma_infos(str(path), text))
        else:
            infos.extend(yara_infos(str(path), text))
    return tuple(infos)


def _rule_files() -> tuple[tuple[str, float], ...]:
    files: list[tuple[str, float]] = []
    for kind, patterns in (("sigma", ("*.yml", "*.yaml")), ("yara", ("*.yar", "*.yara"))):
        for directory in _dirs(kind):
            if not directory.is_dir():
                continue
            for pattern in patterns:
                for path in sorted(directory.rglob(pattern)):
                    try:
                        files.append((str(path), path.stat().st_mtime))
                    except OSError:
                        continue
    return tuple(files)


def custom_rules() -> dict[str, dict[str, Any]]:
    value = get_store().get_setting(CUSTOM_KEY)
    return value if isinstance(value, dict) else {}


def catalogue() -> list[RuleInfo]:
    """Every rule: files first, then uploaded ones (an upload with a file's id wins)."""
    by_id: dict[str, RuleInfo] = {r.id: r for r in _file_rules(_rule_files())}
    for item in custom_rules().values():
        text = str(item.get("text", ""))
        parse = sigma_infos if item.get("language") == "sigma" else yara_infos
        for info in parse("uploaded", text):
            by_id[info.id] = info
    return sorted(by_id.values(), key=lambda r: (r.language, r.name.lower()))


def find_rule(rule_id: str) -> RuleInfo | None:
    return next((r for r in catalogue() if r.id == rule_id), None)


def disabled_rules() -> set[str]:
    value = get_store().get_setting(DISABLED_KEY)
    return {str(v) for v in value} if isinstance(value, list) else set()


def rule_source(rule_id: str, source: str = "") -> RuleInfo | None:
    """The rule behind an alert, to show its source; None when it is not known here."""
    try:
        return find_rule(rule_id)
    except OSError:
        return None
