"""Which playbooks fit an alert or a case: rule ids, names, tags, ATT&CK techniques,
dataset and minimum severity."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from playbooks.model import Playbook, Trigger

_SEVERITY_RANK = {"informational": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
_TECHNIQUE = re.compile(r"(?:^|\.)(t\d{4}(?:\.\d{3})?)$", re.I)


def techniques_of(tags: Iterable[str]) -> set[str]:
    """ATT&CK technique ids in Sigma-style tags (``attack.t1505.003`` → T1505.003, T1505)."""
    found: set[str] = set()
    for tag in tags:
        match = _TECHNIQUE.search(str(tag).strip())
        if match:
            technique = match.group(1).upper()
            found.add(technique)
            found.add(technique.split(".")[0])
    return found


def _value(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def subject_facts(subject: Any) -> dict[str, Any]:
    """Rule ids, names, tags, dataset and severity of an alert, a case or a list of alerts."""
    rule_ids: set[str] = set()
    names: list[str] = []
    tags: set[str] = set()
    datasets: set[str] = set()
    severity = _value(subject, "severity")
    for item in subject if isinstance(subject, list) else [subject]:
        if _value(item, "rule_id"):
            rule_ids.add(str(_value(item, "rule_id")))
        if _value(item, "rule_name"):
            names.append(str(_value(item, "rule_name")))
        tags.update(str(t) for t in _value(item, "tags") or [])
        if _value(item, "dataset"):
            datasets.add(str(_value(item, "dataset")))
        sev = _value(item, "severity")
        if sev is not None and (severity is None or _SEVERITY_RANK.get(str(sev), 2)
                                > _SEVERITY_RANK.get(str(severity), 2)):
            severity = sev
    return {"rule_ids": rule_ids, "names": names, "tags": {t.lower() for t in tags},
            "techniques": techniques_of(tags), "datasets": datasets,
            "severity": str(severity.value if hasattr(severity, "value") else severity or "")}


def trigger_matches(trigger: Trigger, facts: dict[str, Any], kind: str = "alert") -> bool:
    if trigger.on not in ("any", kind):
        return False
    if trigger.rule_ids and not facts["rule_ids"] & set(trigger.rule_ids):
        return False
    if trigger.rule_name_contains and not any(
            needle.lower() in name.lower() for needle in trigger.rule_name_contains
            for name in facts["names"]):
        return False
    if trigger.tags and not facts["tags"] & {t.lower() for t in trigger.tags}:
        return False
    if trigger.techniques and not facts["techniques"] & set(trigger.techniques):
        return False
    if trigger.datasets and not facts["datasets"] & set(trigger.datasets):
        return False
    if trigger.min_severity:
        have = _SEVERITY_RANK.get(facts["severity"], -1)
        if have < _SEVERITY_RANK[trigger.min_severity]:
            return False
    return True


def matching_playbooks(playbooks: Iterable[Playbook], subject: Any, kind: str = "alert",
                       auto_only: bool = False) -> list[Playbook]:
    """The playbooks one of whose triggers fits ``subject`` (an alert, case or alert list)."""
    facts = subject_facts(subject)
    fitting = []
    for playbook in playbooks:
        for trigger in playbook.triggers:
            if auto_only and not trigger.auto_run:
                continue
            if trigger_matches(trigger, facts, kind):
                fitting.append(playbook)
                break
    return fitting
