"""Playbook runs as records in the store, so a run survives a restart.

Each run is one JSON document under the setting key ``playbook_run:<id>``; the
key ``playbook_runs`` lists the run ids (oldest first). A run also carries the
playbook document it started with, so a playbook edited mid-run does not change
the steps of a run already under way.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from govsoc.errors import PlaybookError
from govsoc.events import format_timestamp, utcnow

INDEX_KEY = "playbook_runs"
RUN_KEY = "playbook_run:{}"

# run statuses
RUNNING = "running"        # the engine is (or was, before a restart) executing steps
WAITING = "waiting"        # a task for a person or an approval is open
PAUSED = "paused"          # a step failed and the playbook says to pause
COMPLETED = "completed"
FAILED = "failed"          # a step failed and the playbook says to abort
CANCELLED = "cancelled"
ACTIVE_STATUSES = (RUNNING, WAITING, PAUSED)

# step statuses
PENDING = "pending"
STEP_RUNNING = "running"
WAITING_TASK = "waiting_task"
WAITING_APPROVAL = "waiting_approval"
SUCCEEDED = "succeeded"
DONE = "done"              # a task a person finished
STEP_FAILED = "failed"
SKIPPED = "skipped"
REJECTED = "rejected"
PLANNED = "planned"        # dry run: what would happen was recorded
TERMINAL_STEP = (SUCCEEDED, DONE, STEP_FAILED, SKIPPED, REJECTED, PLANNED)


def now_text() -> str:
    return format_timestamp(utcnow())


@dataclass
class StepRecord:
    id: str
    status: str = PENDING
    attempts: int = 0
    started_at: str | None = None
    finished_at: str | None = None
    inputs: dict[str, Any] | None = None
    output: Any = None
    error: str | None = None
    #: every attempt's error, kept so nothing is lost when a retry succeeds
    errors: list[dict[str, Any]] = field(default_factory=list)
    approval: dict[str, Any] | None = None
    task: dict[str, Any] | None = None


@dataclass
class Run:
    id: str
    playbook_id: str
    playbook_version: int
    playbook: dict[str, Any]
    actor: str
    status: str
    created_at: str
    updated_at: str
    dry_run: bool = False
    case_id: str | None = None
    alert_id: str | None = None
    trigger: str = "manual"
    language: str = "vi"
    steps: dict[str, StepRecord] = field(default_factory=dict)
    finished_at: str | None = None
    #: why the run is paused or failed, for the people looking at it
    reason: str | None = None
    #: the process executing steps right now ({host, pid, since}); None when idle
    executor: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Run:
        data = dict(doc)
        data["steps"] = {k: StepRecord(**v) for k, v in (doc.get("steps") or {}).items()}
        return cls(**data)

    def step(self, step_id: str) -> StepRecord:
        try:
            return self.steps[step_id]
        except KeyError:
            raise PlaybookError(f"run {self.id} has no step {step_id!r}") from None

    @property
    def progress(self) -> tuple[int, int]:
        """(finished steps, all steps)."""
        done = sum(1 for s in self.steps.values() if s.status in TERMINAL_STEP)
        return done, len(self.steps)

    def summary(self) -> dict[str, Any]:
        done, total = self.progress
        return {"id": self.id, "playbook_id": self.playbook_id, "status": self.status,
                "case_id": self.case_id, "alert_id": self.alert_id, "dry_run": self.dry_run,
                "actor": self.actor, "trigger": self.trigger, "created_at": self.created_at,
                "updated_at": self.updated_at, "progress": f"{done}/{total}",
                "reason": self.reason}


def new_run_id(moment: datetime | None = None) -> str:
    moment = moment or utcnow()
    return f"{moment:%Y%m%d%H%M%S}-{secrets.token_hex(4)}"


class RunRepository:
    """Reads and writes runs through the store's settings."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def save(self, run: Run) -> None:
        run.updated_at = now_text()
        self.store.set_setting(RUN_KEY.format(run.id), run.to_json())

    def create(self, run: Run) -> None:
        self.save(run)
        def add(index: Any) -> list[str]:
            ids = list(index or [])
            return ids if run.id in ids else [*ids, run.id]

        # one atomic change: two processes adding runs at once keep both ids
        self.store.update_setting(INDEX_KEY, add)

    def get(self, run_id: str) -> Run:
        doc = self.store.get_setting(RUN_KEY.format(run_id))
        if not doc:
            raise PlaybookError(f"no playbook run with id {run_id!r}")
        return Run.from_json(doc)

    def ids(self) -> list[str]:
        return list(self.store.get_setting(INDEX_KEY) or [])

    def list(self, statuses: tuple[str, ...] = (), case_id: str | None = None,
             limit: int | None = None) -> list[Run]:
        """Runs newest first."""
        runs: list[Run] = []
        for run_id in reversed(self.ids()):
            doc = self.store.get_setting(RUN_KEY.format(run_id))
            if not doc:
                continue
            run = Run.from_json(doc)
            if statuses and run.status not in statuses:
                continue
            if case_id is not None and run.case_id != case_id:
                continue
            runs.append(run)
            if limit is not None and len(runs) >= limit:
                break
        return runs
