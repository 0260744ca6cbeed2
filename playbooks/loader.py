"""Load playbooks from YAML: validate against the JSON Schema, report errors by file and line.

A bad playbook is refused with a :class:`~govsoc.errors.RuleError` naming its file
and the line of the offending key; the other playbooks of a directory still load.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from govsoc.errors import RuleError
from playbooks.model import Approval, Playbook, Step, Text, Trigger

SCHEMA_PATH = Path(__file__).with_name("schema.json")
LIBRARY_DIR = Path(__file__).with_name("library")

#: actions that change something outside govsoc and so need an approval
DEFAULT_APPROVER_ROLES: tuple[str, ...] = ("manager", "admin")


@lru_cache(maxsize=1)
def playbook_schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return data


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (a silent overwrite hides mistakes)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode,
                       deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return dict(loader.construct_mapping(node, deep=deep))


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _line_of(root: yaml.Node | None, path: Sequence[Any]) -> int | None:
    """1-based line of the node at the JSON path ``path`` (closest existing parent)."""
    node = root
    line = node.start_mark.line + 1 if node is not None else None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for key_node, value_node in node.value:
                if key_node.value == part:
                    nxt = value_node
                    line = key_node.start_mark.line + 1
                    break
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) \
                and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
        if node is None:
            break
    return line


def _describe(error: jsonschema.ValidationError) -> str:
    where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "oneOf" and isinstance(error.instance, dict):
        # a step matches neither the task nor the action shape: say which keys are wrong
        kind = error.instance.get("type")
        task_keys = {"id", "type", "title", "description", "when", "owner_role", "blocking",
                     "evidence_required"}
        action_keys = {"id", "type", "title", "description", "when", "action", "with",
                       "timeout", "retries", "retry_delay", "on_error", "approval"}
        allowed = task_keys if kind == "task" else action_keys
        extra = sorted(set(error.instance) - allowed)
        if extra:
            return f"{where}: key(s) {', '.join(extra)} not allowed in a {kind} step"
        if kind == "action" and "action" not in error.instance:
            return f"{where}: an action step needs 'action'"
        best = jsonschema.exceptions.best_match(error.context or [])
        if best is not None:
            return f"{where}: {best.message}"
    if error.validator == "additionalProperties":
        return f"{where}: {error.message}"
    return f"{where}: {error.message}"


def _best_errors(errors: Iterable[jsonschema.ValidationError]) -> list[jsonschema.ValidationError]:
    return sorted(errors, key=lambda e: (len(list(e.absolute_path)), list(map(str, e.path))),
                  reverse=True)


def parse_playbook(text: str, path: str = "<playbook>",
                   known_actions: Iterable[str] | None = None) -> Playbook:
    """Validate the YAML ``text`` of one playbook and build it; raises RuleError."""
    try:
        root = yaml.compose(text, Loader=_UniqueKeyLoader)
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise RuleError(f"invalid YAML: {getattr(exc, 'problem', None) or exc}", path,
                        line) from None
    if not isinstance(document, dict):
        raise RuleError("a playbook must be a mapping (id, name, triggers, phases)", path, 1)
    validator = jsonschema.Draft202012Validator(playbook_schema())
    errors = _best_errors(validator.iter_errors(document))
    if errors:
        first = errors[0]
        raise RuleError(_describe(first), path, _line_of(root, list(first.absolute_path)))
    known = set(known_actions) if known_actions is not None else None
    steps: list[Step] = []
    seen_ids: dict[str, int] = {}
    for p_index, phase in enumerate(document["phases"]):
        for s_index, raw in enumerate(phase["steps"]):
            line = _line_of(root, ["phases", p_index, "steps", s_index])
            if raw["id"] in seen_ids:
                raise RuleError(f"step id {raw['id']!r} is used twice (first on line "
                                f"{seen_ids[raw['id']]})", path, line)
            seen_ids[raw["id"]] = line or 0
            if raw["type"] == "action" and known is not None and raw["action"] not in known:
                action_line = _line_of(root, ["phases", p_index, "steps", s_index, "action"])
                raise RuleError(f"unknown action {raw['action']!r}; known actions: "
                                f"{', '.join(sorted(known))}", path, action_line)
            approval = raw.get("approval")
            steps.append(Step(
                id=raw["id"], type=raw["type"], phase=phase["phase"],
                title=Text.parse(raw["title"]),
                description=Text.parse(raw["description"]) if "description" in raw else None,
                when=raw.get("when"),
                owner_role=raw.get("owner_role"),
                blocking=bool(raw.get("blocking", True)),
                evidence_required=bool(raw.get("evidence_required", False)),
                action=raw.get("action"),
                params=dict(raw.get("with") or {}),
                timeout=float(raw.get("timeout", 60)),
                retries=int(raw.get("retries", 0)),
                retry_delay=float(raw.get("retry_delay", 2)),
                on_error=raw.get("on_error", "pause"),
                approval=Approval(tuple(approval.get("roles", DEFAULT_APPROVER_ROLES)),
                                  bool(approval.get("required", True)))
                if approval else None,
                line=line,
            ))
    triggers = tuple(
        Trigger(rule_ids=tuple(t.get("rule_ids", ())),
                rule_name_contains=tuple(t.get("rule_name_contains", ())),
                tags=tuple(t.get("tags", ())),
                techniques=tuple(x.upper() for x in t.get("techniques", ())),
                datasets=tuple(t.get("datasets", ())),
                min_severity=t.get("min_severity"), on=t.get("on", "any"),
                auto_run=bool(t.get("auto_run", False)))
        for t in document["triggers"])
    return Playbook(
        id=document["id"], version=document["version"], name=Text.parse(document["name"]),
        description=Text.parse(document["description"]) if "description" in document else None,
        severity=document.get("severity"), tags=tuple(document.get("tags", ())),
        triggers=triggers, steps=tuple(steps), path=path, document=document)


def load_playbook(path: str | Path, known_actions: Iterable[str] | None = None) -> Playbook:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"cannot read the playbook: {exc}", str(path)) from None
    return parse_playbook(text, str(path), known_actions)


@dataclass
class PlaybookLibrary:
    """The playbooks that loaded, and the errors of those that did not."""

    playbooks: dict[str, Playbook] = field(default_factory=dict)
    errors: list[RuleError] = field(default_factory=list)

    def get(self, playbook_id: str) -> Playbook:
        try:
            return self.playbooks[playbook_id]
        except KeyError:
            known = ", ".join(sorted(self.playbooks)) or "none"
            raise RuleError(f"no playbook with id {playbook_id!r} (loaded: {known})") from None

    def __iter__(self) -> Any:
        return iter(sorted(self.playbooks.values(), key=lambda p: p.id))

    def __len__(self) -> int:
        return len(self.playbooks)


def playbook_files(dirs: Sequence[str | Path]) -> list[Path]:
    files: list[Path] = []
    for entry in dirs:
        base = LIBRARY_DIR if str(entry) == "builtin" else Path(entry)
        if base.is_file():
            files.append(base)
        else:
            files.extend(sorted(p for p in base.glob("*.y*ml") if p.is_file()))
    return files


def load_library(dirs: Sequence[str | Path] = ("builtin",),
                 known_actions: Iterable[str] | None = None) -> PlaybookLibrary:
    """Load every playbook under ``dirs`` ("builtin" is playbooks/library)."""
    if known_actions is None:
        from playbooks.actions import ACTIONS

        known_actions = ACTIONS.keys()
    known = list(known_actions)
    library = PlaybookLibrary()
    for path in playbook_files(dirs):
        try:
            playbook = load_playbook(path, known)
        except RuleError as exc:
            library.errors.append(exc)
            continue
        if playbook.id in library.playbooks:
            library.errors.append(RuleError(
                f"playbook id {playbook.id!r} is already used by "
                f"{library.playbooks[playbook.id].path}", str(path), 1))
            continue
        library.playbooks[playbook.id] = playbook
    return library
