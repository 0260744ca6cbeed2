"""The playbook model: triggers, NIST SP 800-61 phases and their steps.

A playbook is data; :mod:`playbooks.loader` builds these records from YAML after
validating it against ``playbooks/schema.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: NIST SP 800-61 phases, in the order a response goes through them
PHASES: tuple[str, ...] = (
    "preparation", "detection_analysis", "containment", "eradication", "recovery",
    "post_incident",
)

PHASE_TITLES: dict[str, dict[str, str]] = {
    "preparation": {"vi": "Chuẩn bị", "en": "Preparation"},
    "detection_analysis": {"vi": "Phát hiện và phân tích", "en": "Detection and analysis"},
    "containment": {"vi": "Ngăn chặn", "en": "Containment"},
    "eradication": {"vi": "Loại bỏ", "en": "Eradication"},
    "recovery": {"vi": "Khôi phục", "en": "Recovery"},
    "post_incident": {"vi": "Rút kinh nghiệm sau sự cố", "en": "Post-incident activity"},
}


@dataclass(frozen=True)
class Text:
    """A text in Vietnamese and English."""

    vi: str
    en: str

    def get(self, language: str) -> str:
        return self.en if language == "en" else self.vi

    @classmethod
    def parse(cls, value: Any) -> Text:
        if isinstance(value, dict):
            return cls(str(value.get("vi", "")), str(value.get("en", "")))
        return cls(str(value or ""), str(value or ""))


@dataclass(frozen=True)
class Trigger:
    """Which alerts or cases a playbook fits. Conditions are ANDed, list items ORed."""

    rule_ids: tuple[str, ...] = ()
    rule_name_contains: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    techniques: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    min_severity: str | None = None
    on: str = "any"
    auto_run: bool = False


@dataclass(frozen=True)
class Approval:
    roles: tuple[str, ...]
    required: bool = True


@dataclass(frozen=True)
class Step:
    id: str
    type: str  # "task" | "action"
    phase: str
    title: Text
    description: Text | None = None
    when: str | None = None
    # tasks
    owner_role: str | None = None
    blocking: bool = True
    evidence_required: bool = False
    # actions
    action: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    timeout: float = 60.0
    retries: int = 0
    retry_delay: float = 2.0
    on_error: str = "pause"
    approval: Approval | None = None
    #: line of the step in its file, for error messages
    line: int | None = None


@dataclass(frozen=True)
class Playbook:
    id: str
    version: int
    name: Text
    triggers: tuple[Trigger, ...]
    steps: tuple[Step, ...]
    description: Text | None = None
    severity: str | None = None
    tags: tuple[str, ...] = ()
    path: str = ""
    #: the validated document, as loaded
    document: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def phases(self) -> list[str]:
        seen: list[str] = []
        for step in self.steps:
            if step.phase not in seen:
                seen.append(step.phase)
        return seen

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)
