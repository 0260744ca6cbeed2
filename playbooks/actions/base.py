"""The one interface every playbook action implements, and what an action is given.

An action is a small plugin: a name, whether it is destructive (needs an approval),
a JSON Schema for its parameters, ``run`` (do it) and ``plan`` (describe what it
would do, for dry runs, without side effects). Actions must be idempotent: the
engine may run one again after a restart, with the same ``idempotency_key``.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import jsonschema

from govsoc.config import Config
from govsoc.errors import ActionError


@dataclass
class ActionContext:
    """What the engine hands an action for one attempt."""

    run_id: str
    step_id: str
    actor: str
    config: Config
    store: Any
    #: stable across attempts and restarts: hash of run id and step id
    idempotency_key: str
    #: time.monotonic() value after which the attempt is abandoned
    deadline: float
    dry_run: bool = False
    case_id: str | None = None
    alert_id: str | None = None
    language: str = "vi"
    #: the run's context (case, alert, observables, outputs of earlier steps)
    variables: dict[str, Any] = field(default_factory=dict)

    def remaining(self, cap: float | None = None) -> float:
        """Seconds left before the deadline (at least a little, for socket timeouts)."""
        left = max(0.5, self.deadline - time.monotonic())
        return min(left, cap) if cap else left

    @property
    def outputs_dir(self) -> Path:
        return self.config.data_path(str(self.config.get("playbooks.outputs_dir",
                                                         "playbook-outputs")))


class Action(abc.ABC):
    """One kind of response action."""

    name: ClassVar[str]
    #: changes something outside govsoc (firewall, accounts, hosts): needs an approval
    destructive: ClassVar[bool] = False
    description: ClassVar[str] = ""
    params_schema: ClassVar[dict[str, Any]] = {"type": "object"}

    def validate(self, params: dict[str, Any]) -> None:
        """Check rendered parameters against :attr:`params_schema`."""
        validator = jsonschema.Draft202012Validator(self.params_schema)
        error = jsonschema.exceptions.best_match(validator.iter_errors(params))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(parameters)"
            raise ActionError(self.name, f"invalid parameter {where}: {error.message}")

    @abc.abstractmethod
    def run(self, params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        """Do it; return a JSON-serialisable record of what was done."""

    def plan(self, params: dict[str, Any], ctx: ActionContext) -> dict[str, Any]:
        """What :meth:`run` would do, without side effects (dry run)."""
        return {"would_run": self.name, "params": params}
